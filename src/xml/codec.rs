//! The one generic codec between XML elements and section [`Node`]s, driven by the
//! schema's `xml=` mappings (see `schemas/README.md`, "XML"):
//!
//! - a field is read from the element's text (`.`), an attribute (`@name`) or a
//!   descendant element's text (`a/b`; by default the element named like the field with
//!   `-` → `_`); a `cidr` field with `xml-netmask=` joins an address element and a
//!   netmask element (dotted or hex; written hex);
//! - a child node is read from each element at its path (by default named like the child),
//!   through wrapper elements (`local_dns/dns_ip`), or from the parent element itself (`.`);
//!   where same-named wrapper elements repeat, only the first is a wrapper: a node does not
//!   record which of several held it, so the others (repeated wrappers, or unknown
//!   elements named like one) are kept whole in `xml-extra`, after an `element` entry for
//!   the first (even an empty one) that marks where its leftovers go back;
//! - whatever no mapping claims (attributes, elements, text) is kept in an `xml-extra`
//!   child of the node whose element held it, so that nothing is lost and encoding puts it
//!   back;
//! - an empty element (`<ntp_source_ip_interface></ntp_source_ip_interface>`) means "not
//!   set": its field stays unset and the element is kept as a placeholder entry, `element
//!   NAME ""`, which export writes back unless the field has been given a value since;
//! - an enumeration value the schema does not know is not the field's value: the element
//!   is kept verbatim (with a warning), so that the appliance's own file never fails on it;
//! - a value spelled otherwise than export would write it (a netmask `255.255.255.0` or
//!   `0xffffff00` where export writes `24`, a boolean `true`) is noted as an `as-written`
//!   entry and written back as it came while it still means the same value;
//! - export writes a node's elements in the schema's `xml_order`; where the document had
//!   another order, an `order` entry lists its element names and export follows it.
//!
//! Decoding never fails: a value that does not convert to its field's type is kept as a
//! string, and schema checking (which sees spans into the XML) reports it.

use std::collections::{HashMap, HashSet};

use miette::SourceSpan;

pub use super::encode::{child_elements, encode, encode_outside, wrapper};
use super::extra::{self, element_node, set_attrs, value_text};
use super::order::{order_entry, wrapper_entry};
use super::reader::{WRAPPER, XAttr, XElem, XNode};
use crate::model::{Node, Value};
use crate::schema::{FieldSpec, NodeSpec, ValueType, XML_EXTRA};

/// The `xml-extra` entry keeping a value's spelling: `as-written "netmask" "255.255.255.0"`.
pub const AS_WRITTEN: &str = "as-written";

/// Where a field or child lives relative to its node's element.
pub(super) enum Place<'a> {
    /// The element's own text (fields) or the element itself (children).
    Here,
    /// An attribute.
    Attr(&'a str),
    /// A path of element names.
    Path(Vec<String>),
}

pub(super) fn place<'a>(xml: Option<&'a str>, name: &str) -> Place<'a> {
    match xml {
        Some(".") => Place::Here,
        Some(x) => match x.strip_prefix('@') {
            Some(a) => Place::Attr(a),
            None => Place::Path(x.split('/').map(str::to_owned).collect()),
        },
        None => Place::Path(vec![name.replace('-', "_")]),
    }
}

/// An element name from the catalogue (a section's `xml`) as path steps.
pub fn steps(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Decoding state for one document: which elements, attributes and texts some mapping
/// has claimed, and the unknown parts found (for warnings).
#[derive(Debug, Default)]
pub struct Decoder {
    leaves: HashSet<usize>,
    wrappers: HashSet<usize>,
    texts: HashSet<usize>,
    attrs: HashSet<(usize, usize)>,
    /// Elements not used as wrappers because an earlier sibling of their name is one.
    repeated: HashSet<usize>,
    /// Unknown elements and attributes kept in `xml-extra`: where, and what.
    pub unknown: Vec<(SourceSpan, String)>,
    /// Repeated wrapper elements kept in `xml-extra`: where, and their name.
    pub repeated_wrappers: Vec<(SourceSpan, String)>,
    /// Elements that were empty where a mapping expected a value ("not set"): kept in
    /// `xml-extra` without a warning.
    empties: HashSet<usize>,
    /// Elements whose value a field cannot take (an enumeration value the schema does not
    /// know): kept in `xml-extra` with a warning of their own.
    odd: HashSet<usize>,
    /// Values kept verbatim rather than read into a field: where, and why.
    pub kept_values: Vec<(SourceSpan, String)>,
    /// Spellings to keep, by the id of the element whose node's field read them: (path
    /// from that element, text as written).
    spellings: HashMap<usize, Vec<(String, String)>>,
    /// True for the appliance form, where an empty section element means "not set" (the
    /// cluster form lists the sections a mode defines, empty ones included).
    pub empty_sections_unset: bool,
}

impl Decoder {
    /// Decodes `e` as a node called `name` with `spec`, leftovers in an `xml-extra` child,
    /// and an `order` entry there if export would otherwise write its elements in another
    /// order.
    pub fn decode(&mut self, spec: &NodeSpec, e: &XElem, name: &str) -> Node {
        let mut node = self.decode_parts(spec, e, name);
        if let Some(rest) = self.residue(e) {
            node.children.push(rest);
        }
        let mut probe = XElem::new(e.name.clone());
        encode(spec, &node, &mut probe);
        if let Some(order) = order_entry(e, &probe) {
            extra_child(&mut node).children.push(order);
        }
        // The wrappers of fields and children (<rat_params>, <direct>) too.
        for w in probe.elements().filter(|w| w.id == WRAPPER) {
            let original = e.elements().find(|o| o.name == w.name);
            if let Some(order) = original.and_then(|o| order_entry(o, w)) {
                let x = extra_child(&mut node);
                wrapper_entry(x, &w.name).children.push(order);
            }
        }
        node
    }

    /// Decodes what `spec` maps, without collecting leftovers (the caller does, once every
    /// mapping that shares the element has claimed its parts).
    pub fn decode_parts(&mut self, spec: &NodeSpec, e: &XElem, name: &str) -> Node {
        self.decode_section_parts(spec, e, None, name)
    }

    /// [`Decoder::decode_parts`] for a section's element, whose fields may also name
    /// elements beside it in `parent` (`xml="../dns_interface"`).
    pub fn decode_section_parts(
        &mut self,
        spec: &NodeSpec,
        e: &XElem,
        parent: Option<&XElem>,
        name: &str,
    ) -> Node {
        self.leaves.insert(e.id);
        let mut node = Node::new(name);
        node.span = e.span;
        node.name_span = e.name_span;
        if spec.open {
            return node;
        }
        for field in &spec.args {
            let values = self.field_values(field, e, parent, field.variadic);
            if values.is_empty() {
                // Arguments are positional: the rest stay unclaimed, kept in xml-extra.
                break;
            }
            for (v, span) in values {
                node.args.push(v);
                node.arg_spans.push(span);
            }
        }
        for field in spec.props.values() {
            if let Some((v, span)) = self
                .field_values(field, e, parent, false)
                .into_iter()
                .next()
            {
                node.props.push((field.name.clone(), v));
                node.prop_spans.push(span);
            }
        }
        let mut children: Vec<(usize, Node)> = Vec::new();
        for (cname, cspec) in &spec.children {
            match place(cspec.xml.as_deref(), cname) {
                Place::Here => {
                    let child = self.decode_parts(&cspec.spec, e, cname);
                    if !child.is_empty() {
                        children.push((0, child));
                    }
                }
                Place::Path(path) => {
                    for found in self.find(e, &path, false, usize::MAX) {
                        children.push((found.id, self.decode(&cspec.spec, found, cname)));
                    }
                }
                Place::Attr(_) => {}
            }
        }
        children.sort_by_key(|(id, _)| *id);
        node.children = children.into_iter().map(|(_, n)| n).collect();
        node
    }

    /// Elements at `path` under `e` not yet claimed (only simple ones if `simple`), at most
    /// `limit`; they are claimed, and the wrappers leading to them marked. Only the first
    /// element of a wrapper's name is one (see the module docs).
    fn find<'e>(
        &mut self,
        e: &'e XElem,
        path: &[String],
        simple: bool,
        limit: usize,
    ) -> Vec<&'e XElem> {
        let mut out = Vec::new();
        let Some((first, rest)) = path.split_first() else {
            return out;
        };
        if !rest.is_empty() {
            let Some(w) = self.first_of(e, first) else {
                return out;
            };
            if !self.leaves.contains(&w.id) {
                out = self.find(w, rest, simple, limit);
                if !out.is_empty() {
                    self.wrappers.insert(w.id);
                } else if is_empty(w) {
                    // An empty wrapper (`<rat></rat>`): nothing set, nothing unknown.
                    self.empties.insert(w.id);
                }
            }
            return out;
        }
        for c in e.elements().filter(|c| &c.name == first) {
            if out.len() >= limit {
                break;
            }
            if self.leaves.contains(&c.id)
                || self.wrappers.contains(&c.id)
                || (simple && !c.is_simple())
            {
                continue;
            }
            self.leaves.insert(c.id);
            out.push(c);
        }
        out
    }

    /// The first element called `name` in `e`; later ones are noted as repeated.
    fn first_of<'e>(&mut self, e: &'e XElem, name: &str) -> Option<&'e XElem> {
        let mut same = e.elements().filter(|c| c.name == name);
        let first = same.next()?;
        self.repeated.extend(same.map(|c| c.id));
        Some(first)
    }

    /// Marks attribute `name` of `e` as known (the cluster form's `name=`, `group=`, …).
    pub fn claim_attr(&mut self, e: &XElem, name: &str) {
        if let Some(i) = e.attrs.iter().position(|a| a.name == name) {
            self.attrs.insert((e.id, i));
        }
    }

    /// The element for a section at `path` under the root: the first of each name along
    /// the way (only the first wrapper of a name is one, as for children), whether or not
    /// another section claimed it (sections may share elements).
    /// In the appliance form ([`Decoder::empty_sections_unset`]), an empty element of a
    /// section that an empty node cannot satisfy (`<hostname></hostname>`) is "not set":
    /// `None`, and the element is kept.
    pub fn find_section<'e>(
        &mut self,
        root: &'e XElem,
        path: &[&str],
        spec: &NodeSpec,
    ) -> Option<&'e XElem> {
        let (last, wrappers) = path.split_last()?;
        let mut at = root;
        let mut way = Vec::new();
        for step in wrappers {
            at = self.first_of(at, step)?;
            if self.leaves.contains(&at.id) {
                return None;
            }
            way.push(at.id);
        }
        at = at.elements().find(|c| c.name == *last)?;
        // Mark the way only once found.
        self.wrappers.extend(way);
        if self.empty_sections_unset && is_empty(at) && !accepts_empty(spec) {
            // `<hostname></hostname>`: the section is not set; the element is kept.
            self.empties.insert(at.id);
            return None;
        }
        self.leaves.insert(at.id);
        Some(at)
    }

    fn field_values(
        &mut self,
        f: &FieldSpec,
        e: &XElem,
        parent: Option<&XElem>,
        all: bool,
    ) -> Vec<(Value, SourceSpan)> {
        let mut out = Vec::new();
        match place(f.xml.as_deref(), &f.name) {
            Place::Here => {
                let has_text = e.children.iter().any(|c| matches!(c, XNode::Text(..)));
                if has_text && !self.texts.contains(&e.id) {
                    let (text, span) = e.text();
                    if !is_unset(&f.ty, &text) {
                        self.texts.insert(e.id);
                        out.push((convert(&f.ty, &text), span));
                    }
                }
            }
            Place::Attr(a) => {
                if let Some(i) = e.attrs.iter().position(|x| x.name == a)
                    && self.attrs.insert((e.id, i))
                {
                    out.push((convert(&f.ty, &e.attrs[i].value), e.attrs[i].span));
                }
            }
            Place::Path(path) => {
                let (at, path) = match (path.split_first(), parent) {
                    (Some((up, rest)), Some(p)) if up == ".." => (p, rest.to_vec()),
                    (Some((up, _)), None) if up == ".." => return out,
                    _ => (e, path),
                };
                let limit = if all { usize::MAX } else { 1 };
                for leaf in self.find(at, &path, true, limit) {
                    let (text, span) = leaf.text();
                    if is_unset(&f.ty, &text) && leaf.attrs.is_empty() {
                        // An empty element: the field is not set; the element is kept.
                        self.leaves.remove(&leaf.id);
                        self.empties.insert(leaf.id);
                        continue;
                    }
                    let value = match &f.xml_netmask {
                        Some(mask) => self.with_netmask(e, mask, text.trim()),
                        None => convert(&f.ty, &text),
                    };
                    if let (ValueType::Enum(values), Value::String(v)) = (&f.ty, &value)
                        && !values.contains(v)
                    {
                        self.leaves.remove(&leaf.id);
                        self.odd.insert(leaf.id);
                        self.kept_values.push((
                            span,
                            format!(
                                "<{}> holds \"{v}\", which is not one of the values Strata knows for `{}` ({})",
                                leaf.name,
                                f.name,
                                values.join(", ")
                            ),
                        ));
                        continue;
                    }
                    if std::ptr::eq(at, e) && f.xml_netmask.is_none() {
                        self.note_spelling(e.id, &path.join("/"), &f.ty, &value, text.trim());
                    }
                    out.push((value, if text.is_empty() { leaf.span } else { span }));
                }
            }
        }
        out
    }

    /// Notes `raw` as the spelling of `value` at `path` under element `id` if export would
    /// spell it otherwise.
    fn note_spelling(&mut self, id: usize, path: &str, ty: &ValueType, value: &Value, raw: &str) {
        if matches!(ty, ValueType::Text) || raw.contains('\n') {
            return;
        }
        if value_text(value) != raw && *value != Value::String(raw.to_owned()) {
            self.spellings
                .entry(id)
                .or_default()
                .push((path.to_owned(), raw.to_owned()));
        }
    }

    fn with_netmask(&mut self, e: &XElem, mask: &str, address: &str) -> Value {
        let path: Vec<String> = mask.split('/').map(str::to_owned).collect();
        let Some(m) = self.find(e, &path, true, 1).into_iter().next() else {
            return Value::String(address.to_owned());
        };
        let raw = m.text().0.trim().to_owned();
        let v4 = address.parse::<std::net::Ipv4Addr>().is_ok();
        match mask_len(&raw) {
            Some(len) => {
                if raw != mask_text(v4, len) {
                    self.spellings
                        .entry(e.id)
                        .or_default()
                        .push((mask.to_owned(), raw.clone()));
                }
                Value::String(format!("{address}/{len}"))
            }
            None => Value::String(format!("{address}/{raw}")),
        }
    }

    /// What of `e` no mapping claimed, as an `xml-extra` node, if anything.
    pub fn residue(&mut self, e: &XElem) -> Option<Node> {
        let mut node = Node::new(XML_EXTRA);
        node.span = e.span;
        node.name_span = e.name_span;
        let attrs: Vec<&XAttr> = e
            .attrs
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.attrs.contains(&(e.id, *i)))
            .map(|(_, a)| a)
            .collect();
        for a in &attrs {
            self.unknown
                .push((a.span, format!("attribute `{}` of <{}>", a.name, e.name)));
        }
        set_attrs(
            &mut node,
            attrs.iter().map(|a| (a.name.clone(), a.value.clone())),
        );
        for (path, raw) in self.spellings.remove(&e.id).unwrap_or_default() {
            let mut w = Node::new(AS_WRITTEN);
            w.span = e.span;
            w.name_span = e.name_span;
            w.args = vec![Value::String(path), Value::String(raw)];
            node.children.push(w);
        }
        if !self.texts.contains(&e.id) {
            let (text, span) = e.text();
            // Layout whitespace is not content; text beside known parts is.
            if !text.trim().is_empty() {
                let mut t = Node::new("text");
                t.span = span;
                t.name_span = span;
                t.args.push(Value::String(text));
                self.unknown.push((span, format!("text in <{}>", e.name)));
                node.children.push(t);
            }
        }
        for c in e.elements() {
            if self.leaves.contains(&c.id) {
                continue;
            }
            if self.wrappers.contains(&c.id) {
                // A wrapper whose name repeats gets an entry even when empty: export merges
                // the first entry of a name into the wrapper it makes, the rest go after.
                let repeats = e.elements().filter(|x| x.name == c.name).nth(1).is_some();
                let rest = self.residue(c);
                if let Some(rest) = rest.or_else(|| repeats.then(|| Node::new(XML_EXTRA))) {
                    let mut el = Node::new("element");
                    el.span = c.span;
                    el.name_span = c.name_span;
                    el.args.push(Value::String(c.name.clone()));
                    el.props = rest.props;
                    el.prop_spans = rest.prop_spans;
                    el.children = rest.children;
                    node.children.push(el);
                }
                continue;
            }
            if self.repeated.contains(&c.id) {
                self.repeated_wrappers.push((c.name_span, c.name.clone()));
            } else if self.empties.contains(&c.id) {
                // Not set: a placeholder, `element NAME ""`, which a value given later
                // replaces (see `extra::apply`).
                let mut el = element_node(c);
                el.args.push(Value::String(String::new()));
                el.arg_spans.push(c.span);
                node.children.push(el);
                continue;
            } else if self.odd.contains(&c.id) {
                // A value kept verbatim (warned about on its own).
            } else {
                self.unknown
                    .push((c.name_span, format!("element <{}>", c.name)));
            }
            node.children.push(element_node(c));
        }
        (!node.is_empty()).then_some(node)
    }
}

/// True when a node with nothing in it conforms to `spec` (nothing is required).
fn accepts_empty(spec: &NodeSpec) -> bool {
    spec.open
        || (!spec.args.first().is_some_and(|a| a.required)
            && !spec.props.values().any(|p| p.required)
            && !spec.children.values().any(|c| c.required))
}

/// True for an element with nothing in it: no attributes, no elements, no text.
fn is_empty(e: &XElem) -> bool {
    e.attrs.is_empty() && e.elements().next().is_none() && e.text().0.trim().is_empty()
}

/// True when `text` means "not set" for a field of type `ty`: empty, or only blanks where
/// blanks are not part of the value.
fn is_unset(ty: &ValueType, text: &str) -> bool {
    match ty {
        ValueType::Text => text.is_empty(),
        _ => text.trim().is_empty(),
    }
}

/// A netmask in any spelling AsyncOS accepts (`24`, `255.255.255.0`, `0xffffff00`) as a
/// prefix length.
pub fn mask_len(raw: &str) -> Option<u8> {
    crate::schema::parse_netmask(raw).or_else(|| raw.parse::<u8>().ok().filter(|l| *l <= 128))
}

/// The netmask export writes: the prefix length, as appliances write it (`24`).
pub(super) fn mask_text(_v4: bool, len: u8) -> String {
    len.to_string()
}

/// The `xml-extra` child of `node`, added if missing.
fn extra_child(node: &mut Node) -> &mut Node {
    let at = match node.children.iter().position(extra::is_extra) {
        Some(i) => i,
        None => {
            let mut x = Node::new(XML_EXTRA);
            x.span = node.span;
            x.name_span = node.name_span;
            node.children.push(x);
            node.children.len() - 1
        }
    };
    &mut node.children[at]
}

/// Text to a value of the field's type; what does not convert stays a string.
pub(super) fn convert(ty: &ValueType, raw: &str) -> Value {
    let t = raw.trim();
    match ty {
        ValueType::Int { .. } => t
            .parse()
            .map_or_else(|_| Value::String(t.to_owned()), Value::Int),
        // A known value in another case (`ACCEPT`) reads as the value; its spelling is
        // kept as written.
        ValueType::Enum(values) => Value::String(
            values
                .iter()
                .find(|v| *v == t)
                .or_else(|| values.iter().find(|v| v.eq_ignore_ascii_case(t)))
                .map_or(t, String::as_str)
                .to_owned(),
        ),
        ValueType::Bool => match t.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Value::Bool(true),
            "0" | "false" | "no" | "off" => Value::Bool(false),
            _ => Value::String(t.to_owned()),
        },
        // Text (a HAT, a disclaimer) and any multi-line value are kept verbatim; other
        // one-line values trimmed.
        ValueType::Text => Value::String(raw.to_owned()),
        _ if raw.contains('\n') => Value::String(raw.to_owned()),
        _ => Value::String(t.to_owned()),
    }
}
