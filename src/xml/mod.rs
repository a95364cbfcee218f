//! AsyncOS configuration XML: reading (`saveconfig` files and Strata's cluster XML form),
//! the generic codec to and from section nodes driven by the catalogue's `xml=` mappings,
//! and deterministic writing. Pure: bytes and text in, nodes, problems and bytes out.
//!
//! - [`encoding`]: bytes → text, as the XML declaration says.
//! - [`reader`]: text → raw tree with spans; hardening (no entities, limits).
//! - [`header`]: the metadata comment (product, serial number, features).
//! - [`codec`]: raw tree ↔ section nodes through the schema's mappings.
//! - [`extra`]: what the catalogue does not know, kept verbatim in `xml-extra`.
//! - [`cluster`]: the cluster XML form (`<strata_cluster>`) and the appliance form's
//!   place in a repo.
//! - [`import`]: the KDL files an import writes, and its summary.
//! - [`writer`]: raw tree → bytes.

pub mod cluster;
pub mod codec;
pub mod encoding;
pub mod extra;
pub mod header;
pub mod import;
pub mod reader;
pub mod writer;

use std::sync::Arc;

use crate::config::{Diagnostics, Problem, SourceFile};
use crate::model::Node;
use crate::schema::{Catalogue, XML_EXTRA};
use codec::{Decoder, SHARED, encode, steps, wrapper};
pub use encoding::decode_bytes;
pub use header::Header;
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
/// `xml-extra` section for what the catalogue does not know.
pub fn decode_sections(dec: &mut Decoder, e: &XElem, catalogue: &Catalogue) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let mut owners: Vec<(&XElem, usize)> = Vec::new();
    for schema in catalogue.sections.values() {
        let path = steps(&schema.xml);
        if schema.name == XML_EXTRA || path.is_empty() || path == ["."] {
            continue;
        }
        if let Some(el) = dec.find_section(e, &path) {
            out.push(dec.decode_parts(&schema.body, el, &schema.name));
            if !owners.iter().any(|(o, _)| o.id == el.id) {
                owners.push((el, out.len() - 1));
            }
        }
    }
    // Leftovers of an element several sections share go with the first of them.
    for (el, i) in owners {
        if let Some(rest) = dec.residue(el) {
            out[i].children.push(rest);
        }
    }
    if let Some(rest) = dec.residue(e) {
        out.push(rest);
    }
    out
}

/// Encodes section nodes into `e`, in the order given; an `xml-extra` section is applied
/// last (its elements merge into wrappers such as `<reporting>`). Sections the catalogue
/// does not know are skipped (a validated repo has none).
pub fn encode_sections<'n>(
    e: &mut XElem,
    sections: impl IntoIterator<Item = &'n Node>,
    catalogue: &Catalogue,
) {
    let mut extras = Vec::new();
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
            encode(&schema.body, node, target);
        }
    }
    for x in extras {
        extra::apply(x, e);
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
