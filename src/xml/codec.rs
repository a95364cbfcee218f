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
//!   back.
//!
//! Decoding never fails: a value that does not convert to its field's type is kept as a
//! string, and schema checking (which sees spans into the XML) reports it.

use std::collections::HashSet;

use miette::SourceSpan;

use super::extra::{self, element_node, set_attrs, value_text};
use super::reader::{XAttr, XElem, XNode};
use crate::model::{Node, Value};
use crate::schema::{FieldSpec, NodeSpec, ValueType, XML_EXTRA};

/// The id of a wrapper element made while encoding (`local_dns` in `local_dns/dns_ip`):
/// later content for the same wrapper, and the first `xml-extra` element of its name (the
/// leftovers of the one wrapper decoding used), merge into it.
pub const WRAPPER: usize = usize::MAX - 1;
/// The id of a section element made while encoding, which several sections may share
/// (`ldap-servers` and `ldap-queries` both live in `<ldap>`).
pub const SHARED: usize = usize::MAX - 2;

/// Where a field or child lives relative to its node's element.
enum Place<'a> {
    /// The element's own text (fields) or the element itself (children).
    Here,
    /// An attribute.
    Attr(&'a str),
    /// A path of element names.
    Path(Vec<String>),
}

fn place<'a>(xml: Option<&'a str>, name: &str) -> Place<'a> {
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
}

impl Decoder {
    /// Decodes `e` as a node called `name` with `spec`, leftovers in an `xml-extra` child.
    pub fn decode(&mut self, spec: &NodeSpec, e: &XElem, name: &str) -> Node {
        let mut node = self.decode_parts(spec, e, name);
        if let Some(rest) = self.residue(e) {
            node.children.push(rest);
        }
        node
    }

    /// Decodes what `spec` maps, without collecting leftovers (the caller does, once every
    /// mapping that shares the element has claimed its parts).
    pub fn decode_parts(&mut self, spec: &NodeSpec, e: &XElem, name: &str) -> Node {
        self.leaves.insert(e.id);
        let mut node = Node::new(name);
        node.span = e.span;
        node.name_span = e.name_span;
        if spec.open {
            return node;
        }
        for field in &spec.args {
            let values = self.field_values(field, e, field.variadic);
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
            if let Some((v, span)) = self.field_values(field, e, false).into_iter().next() {
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
    pub fn find_section<'e>(&mut self, root: &'e XElem, path: &[&str]) -> Option<&'e XElem> {
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
        self.leaves.insert(at.id);
        Some(at)
    }

    fn field_values(&mut self, f: &FieldSpec, e: &XElem, all: bool) -> Vec<(Value, SourceSpan)> {
        let mut out = Vec::new();
        match place(f.xml.as_deref(), &f.name) {
            Place::Here => {
                let has_text = e.children.iter().any(|c| matches!(c, XNode::Text(..)));
                if has_text && !self.texts.contains(&e.id) {
                    let (text, span) = e.text();
                    if !text.is_empty() {
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
                let limit = if all { usize::MAX } else { 1 };
                for leaf in self.find(e, &path, true, limit) {
                    let (text, span) = leaf.text();
                    let value = match &f.xml_netmask {
                        Some(mask) => self.with_netmask(e, mask, text.trim()),
                        None => convert(&f.ty, &text),
                    };
                    out.push((value, if text.is_empty() { leaf.span } else { span }));
                }
            }
        }
        out
    }

    fn with_netmask(&mut self, e: &XElem, mask: &str, address: &str) -> Value {
        let path: Vec<String> = mask.split('/').map(str::to_owned).collect();
        let Some(m) = self.find(e, &path, true, 1).into_iter().next() else {
            return Value::String(address.to_owned());
        };
        let raw = m.text().0.trim().to_owned();
        let len = crate::schema::parse_netmask(&raw).or_else(|| raw.parse::<u8>().ok());
        match len {
            Some(len) => Value::String(format!("{address}/{len}")),
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
            } else {
                self.unknown
                    .push((c.name_span, format!("element <{}>", c.name)));
            }
            node.children.push(element_node(c));
        }
        (!node.is_empty()).then_some(node)
    }
}

/// Text to a value of the field's type; what does not convert stays a string.
fn convert(ty: &ValueType, raw: &str) -> Value {
    let t = raw.trim();
    match ty {
        ValueType::Int { .. } => t
            .parse()
            .map_or_else(|_| Value::String(t.to_owned()), Value::Int),
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

/// Encodes `node` into `e` (whose name the caller chose) following `spec`.
pub fn encode(spec: &NodeSpec, node: &Node, e: &mut XElem) {
    let variadic = spec.args.last().filter(|a| a.variadic);
    for (i, v) in node.args.iter().enumerate() {
        match spec.args.get(i).or(variadic) {
            Some(f) => put(f, v, e),
            None => leaf(e, &[format!("arg{i}")], value_text(v)),
        }
    }
    for (k, v) in &node.props {
        match spec.props.get(k) {
            Some(f) => put(f, v, e),
            None => leaf(e, &[k.replace('-', "_")], value_text(v)),
        }
    }
    let mut extras = Vec::new();
    for child in &node.children {
        if extra::is_extra(child) {
            extras.push(child);
            continue;
        }
        let Some(cspec) = spec.children.get(&child.name) else {
            // Not in the schema (only in a repo that does not validate): keep it visible.
            let mut c = XElem::new(child.name.replace('-', "_"));
            encode(&NodeSpec::default(), child, &mut c);
            e.children.push(XNode::Elem(c));
            continue;
        };
        match place(cspec.xml.as_deref(), &child.name) {
            Place::Here | Place::Attr(_) => encode(&cspec.spec, child, e),
            Place::Path(path) => {
                let (last, wrappers) = path
                    .split_last()
                    .map_or(("", &[][..]), |(l, w)| (l.as_str(), w));
                let mut c = XElem::new(last);
                encode(&cspec.spec, child, &mut c);
                wrapper(e, wrappers).children.push(XNode::Elem(c));
            }
        }
    }
    for x in extras {
        extra::apply(x, e);
    }
}

fn put(f: &FieldSpec, v: &Value, e: &mut XElem) {
    let text = value_text(v);
    if let (Some(mask), Some((addr, len))) = (&f.xml_netmask, text.split_once('/'))
        && let Ok(len) = len.parse::<u8>()
    {
        put_text(f, addr.to_owned(), e);
        let v4 = addr.parse::<std::net::Ipv4Addr>().is_ok();
        let mask_text = match (v4, len) {
            (true, 0) => "0x00000000".to_owned(),
            (true, l) if l <= 32 => format!("0x{:08x}", u32::MAX << (32 - u32::from(l))),
            _ => len.to_string(),
        };
        let path: Vec<String> = mask.split('/').map(str::to_owned).collect();
        leaf(e, &path, mask_text);
        return;
    }
    put_text(f, text, e);
}

fn put_text(f: &FieldSpec, text: String, e: &mut XElem) {
    match place(f.xml.as_deref(), &f.name) {
        Place::Here => e.children.push(XNode::Text(text, e.span)),
        Place::Attr(a) => e.attrs.push(XAttr {
            name: a.to_owned(),
            value: text,
            span: e.span,
        }),
        Place::Path(path) => leaf(e, &path, text),
    }
}

fn leaf(e: &mut XElem, path: &[String], text: String) {
    let Some((last, wrappers)) = path.split_last() else {
        return;
    };
    let mut l = XElem::new(last.as_str());
    l.children.push(XNode::Text(text, l.span));
    wrapper(e, wrappers).children.push(XNode::Elem(l));
}

/// The wrapper element at `steps` under `e`, made if missing (see [`WRAPPER`]).
pub fn wrapper<'e>(e: &'e mut XElem, steps: &[impl AsRef<str>]) -> &'e mut XElem {
    let Some((first, rest)) = steps.split_first() else {
        return e;
    };
    let first = first.as_ref();
    let pos = e
        .children
        .iter()
        .position(|c| matches!(c, XNode::Elem(w) if w.name == first && w.id == WRAPPER));
    let pos = pos.unwrap_or_else(|| {
        let mut w = XElem::new(first);
        w.id = WRAPPER;
        e.children.push(XNode::Elem(w));
        e.children.len() - 1
    });
    match &mut e.children[pos] {
        XNode::Elem(w) => wrapper(w, rest),
        XNode::Text(..) => unreachable!("the position was found or pushed as an element"),
    }
}
