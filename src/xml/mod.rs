//! AsyncOS configuration XML: reading (`saveconfig` files and Strata's cluster XML form),
//! the generic codec to and from section nodes driven by the catalogue's `xml=` mappings,
//! and deterministic writing. Pure: bytes and text in, nodes, problems and bytes out.
//!
//! - [`file`](mod@file): the one reader of XML files from disk (size cap, encoding).
//! - [`encoding`]: bytes → text, as the XML declaration says.
//! - [`reader`]: text → raw tree with spans; hardening (no entities, limits).
//! - [`header`]: the metadata comment (product, serial number, features).
//! - [`codec`]: raw tree ↔ section nodes through the schema's mappings.
//! - [`extra`]: what the catalogue does not know, kept verbatim in `xml-extra`.
//! - [`order`]: the order export writes elements in, and the order records of imports.
//! - [`cluster`]: the cluster XML form (`<strata_cluster>`) and the appliance form's
//!   place in a repo.
//! - [`import`]: the KDL files an import writes, and its summary.
//! - [`writer`]: raw tree → bytes.

pub mod assign;
pub mod cluster;
pub mod codec;
mod encode;
pub mod encoding;
pub mod export;
pub mod extra;
pub mod file;
pub mod header;
pub mod import;
pub mod order;
pub mod reader;
pub mod writer;

use std::sync::Arc;

use crate::config::{Diagnostics, Problem, SourceFile};
use crate::model::Node;
use crate::schema::{Catalogue, XML_EXTRA};
use codec::{Decoder, steps, wrapper};
pub use encoding::decode_bytes;
pub use header::Header;
use reader::{SHARED, WRAPPER};
pub use reader::{XDocument, XElem, XNode};

/// Caps that make a hostile file fail fast instead of exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Longest text of one element, in bytes.
    pub max_text: usize,
    /// Most elements in one file.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_FILE_BYTES,
            max_depth: 64,
            max_text: 4 << 20,
            max_elements: 1_000_000,
        }
    }
}

/// The largest XML file Strata reads (64 MiB); checked before reading it.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// True if `text` looks like XML (its first non-blank character is `<`).
pub fn looks_like_xml(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
}

/// Decodes the sections held by `e` (a `<config>` element or a cluster-form mode element):
/// one node per catalogue section whose element is present, in catalogue order, and an
/// `xml-extra` section for what the catalogue does not know. Where `e`, or an element
/// several sections share, has its elements in another order than export would write
/// them, an `order` entry in the `xml-extra` that holds its leftovers records it.
pub fn decode_sections(dec: &mut Decoder, e: &XElem, catalogue: &Catalogue) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let mut owners: Vec<(&XElem, Vec<usize>)> = Vec::new();
    for schema in catalogue.sections.values() {
        let path = steps(&schema.xml);
        if schema.name == XML_EXTRA || path.is_empty() || path == ["."] {
            continue;
        }
        if let Some(el) = dec.find_section(e, &path, &schema.body) {
            let parent = (path.len() == 1).then_some(e);
            out.push(dec.decode_section_parts(&schema.body, el, parent, &schema.name));
            match owners.iter_mut().find(|(o, _)| o.id == el.id) {
                Some((_, sections)) => sections.push(out.len() - 1),
                None => owners.push((el, vec![out.len() - 1])),
            }
        }
    }
    // Leftovers of an element several sections share go with the first of them.
    for (el, sections) in &owners {
        if let Some(rest) = dec.residue(el) {
            out[sections[0]].children.push(rest);
        }
    }
    for (el, sections) in &owners {
        let mut probe = XElem::new(e.name.clone());
        encode_sections(&mut probe, sections.iter().map(|&i| &out[i]), catalogue);
        let path = catalogue
            .get(&out[sections[0]].name)
            .map(|s| steps(&s.xml))
            .unwrap_or_default();
        let mut at = Some(&probe);
        for step in &path {
            at = at.and_then(|p| p.elements().find(|c| c.name == *step));
        }
        if let Some(order) = at.and_then(|p| order::order_entry(el, p)) {
            extra_of(&mut out[sections[0]]).children.push(order);
        }
    }
    let mut rest = dec.residue(e);
    let mut probe = XElem::new(e.name.clone());
    encode_sections(&mut probe, out.iter().chain(rest.as_ref()), catalogue);
    let mut orders = Vec::new();
    if let Some(order) = order::order_entry(e, &probe) {
        orders.push((None, order));
    }
    // Wrappers of sections (<reporting> around <periodic_reports>): their order too.
    for w in probe.elements().filter(|w| w.id == WRAPPER) {
        let original = e.elements().find(|o| o.name == w.name);
        if let Some(order) = original.and_then(|o| order::order_entry(o, w)) {
            orders.push((Some(w.name.clone()), order));
        }
    }
    if !orders.is_empty() {
        let x = rest.get_or_insert_with(|| {
            let mut x = Node::new(XML_EXTRA);
            x.span = e.span;
            x.name_span = e.name_span;
            x
        });
        for (wrapper, order) in orders {
            match wrapper {
                None => x.children.push(order),
                Some(name) => order::wrapper_entry(x, &name).children.push(order),
            }
        }
    }
    out.extend(rest);
    out
}

/// The `xml-extra` child of a section node, added if missing.
fn extra_of(node: &mut Node) -> &mut Node {
    let at = match node.children.iter().position(|c| c.name == XML_EXTRA) {
        Some(i) => i,
        None => {
            node.children.push(Node::new(XML_EXTRA));
            node.children.len() - 1
        }
    };
    &mut node.children[at]
}

/// Encodes section nodes into `e`, in the order given; an `xml-extra` section is applied
/// last (its elements merge into wrappers such as `<reporting>`, and its `order` entry,
/// if any, orders the elements of `e`). Sections the catalogue does not know are skipped
/// (a validated repo has none).
pub fn encode_sections<'n>(
    e: &mut XElem,
    sections: impl IntoIterator<Item = &'n Node>,
    catalogue: &Catalogue,
) {
    let mut extras = Vec::new();
    // Per section element: its path, rank, child-node elements, order record, sections.
    type Shared = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Option<Vec<String>>,
        usize,
    );
    let mut shared: Vec<Shared> = Vec::new();
    for node in sections {
        if node.name == XML_EXTRA {
            extras.push(node);
            continue;
        }
        let Some(schema) = catalogue.get(&node.name) else {
            continue;
        };
        let path = steps(&schema.xml);
        let Some((last, wrappers)) = path.split_last() else {
            continue;
        };
        let parent = wrapper(e, wrappers);
        let pos = parent
            .children
            .iter()
            .position(|c| matches!(c, XNode::Elem(s) if s.name == *last && s.id == SHARED));
        let pos = pos.unwrap_or_else(|| {
            let mut s = XElem::new(*last);
            s.id = SHARED;
            parent.children.push(XNode::Elem(s));
            parent.children.len() - 1
        });
        if let XNode::Elem(target) = &mut parent.children[pos] {
            codec::encode(&schema.body, node, target);
        }
        codec::encode_outside(&schema.body, node, parent);
        // Sections sharing an element: order it as a whole once all are in.
        let at: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        let extras = node.children.iter().filter(|c| c.name == XML_EXTRA);
        let record = order::recorded(extras.flat_map(|x| x.children.iter()));
        match shared.iter_mut().find(|(p, ..)| *p == at) {
            Some((_, rank, block, rec, count)) => {
                rank.extend(schema.body.xml_order.iter().cloned());
                block.extend(codec::child_elements(&schema.body));
                if rec.is_none() {
                    *rec = record;
                }
                *count += 1;
            }
            None => shared.push((
                at,
                schema.body.xml_order.clone(),
                codec::child_elements(&schema.body),
                record,
                1,
            )),
        }
    }
    for (path, rank, block, record, _) in shared.iter().filter(|s| s.4 > 1) {
        let (last, wrappers) = path.split_last().expect("section paths are not empty");
        let parent = wrapper(e, wrappers);
        if let Some(target) = parent
            .elements_mut()
            .find(|c| c.name == *last && c.id == SHARED)
        {
            // Sections' child kinds are ordered by rank here: each section has its own.
            let _ = block;
            order::arrange(target, rank, &[], record.as_deref());
        }
    }
    for x in &extras {
        extra::apply(x, e);
    }
    let record = order::recorded(extras.iter().flat_map(|x| x.children.iter()));
    if record.is_some() {
        order::arrange(e, &[], &[], record.as_deref());
    }
}

/// Warnings for what the decoder kept in `xml-extra`.
pub fn unknown_warnings(dec: &Decoder, file: &Arc<SourceFile>, diags: &mut Diagnostics) {
    for (span, what) in &dec.unknown {
        diags.push(
            Problem::warning(
                "strata::xml::unknown-element",
                format!("{what} is not in the section catalogue; kept verbatim in xml-extra"),
            )
            .at(file, *span, "unknown here")
            .help("export-xml writes it back unchanged; a schema in the repo's schemas/ can make it a managed section"),
        );
    }
    for (span, why) in &dec.kept_values {
        diags.push(
            Problem::warning("strata::xml::unknown-value", format!("{why}; kept verbatim in xml-extra"))
                .at(file, *span, "not a known value")
                .help("export-xml writes it back unchanged; the field stays unset (its default applies) until a value Strata knows is given"),
        );
    }
    for (span, name) in &dec.repeated_wrappers {
        diags.push(
            Problem::warning(
                "strata::xml::unknown-element",
                format!("<{name}> appears more than once here; only the first is read through the schema, this one is kept verbatim in xml-extra"),
            )
            .at(file, *span, "a repeated wrapper")
            .help("export-xml writes it back unchanged, after the first; merge them into one element to manage their content as schema children"),
        );
    }
}
