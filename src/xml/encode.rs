//! Section nodes → XML elements, the other half of [`super::codec`]: fields and children
//! where their `xml=` mappings say, in the schema's element order (or the node's recorded
//! `order`), values in the spelling they came in while they mean the same, and what
//! `xml-extra` keeps merged back in.

use super::codec::{AS_WRITTEN, Place, convert, mask_len, mask_text, place};
use super::extra::{self, value_text};
use super::order::{arrange, arrange_wrappers, recorded};
use super::reader::{LEAF, WRAPPER, XAttr, XElem, XNode};
use crate::model::{Node, Value};
use crate::schema::{FieldSpec, NodeSpec};

/// Encodes `node` into `e` (whose name the caller chose) following `spec`, in the schema's
/// element order (or the node's recorded `order`). Fields that live beside a section's
/// element (`../name`) are left to [`encode_outside`].
pub fn encode(spec: &NodeSpec, node: &Node, e: &mut XElem) {
    let extras: Vec<&Node> = node
        .children
        .iter()
        .filter(|c| extra::is_extra(c))
        .collect();
    let spellings: Vec<(&str, &str)> = extras
        .iter()
        .flat_map(|x| x.children.iter())
        .filter(|c| c.name == AS_WRITTEN)
        .filter_map(|c| Some((c.args.first()?.as_str()?, c.args.get(1)?.as_str()?)))
        .collect();
    let variadic = spec.args.last().filter(|a| a.variadic);
    for (i, v) in node.args.iter().enumerate() {
        match spec.args.get(i).or(variadic) {
            Some(f) => put(f, v, e, &spellings),
            None => leaf(e, &[format!("arg{i}")], value_text(v)),
        }
    }
    for (k, v) in &node.props {
        match spec.props.get(k) {
            Some(f) => put(f, v, e, &spellings),
            None => leaf(e, &[k.replace('-', "_")], value_text(v)),
        }
    }
    for child in &node.children {
        if extra::is_extra(child) {
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
    arrange_wrappers(e, &spec.xml_order);
    for x in &extras {
        extra::apply(x, e);
    }
    let record = recorded(extras.iter().flat_map(|x| x.children.iter()));
    arrange(e, &spec.xml_order, &child_elements(spec), record.as_deref());
}

/// The element names (first steps) of the children `spec` maps to elements.
pub fn child_elements(spec: &NodeSpec) -> Vec<String> {
    spec.children
        .iter()
        .filter_map(|(name, c)| match place(c.xml.as_deref(), name) {
            Place::Path(p) => p.into_iter().next(),
            _ => None,
        })
        .collect()
}

/// Writes the fields of a section node that live beside its element (`xml="../name"`)
/// into `parent`, the element that holds the section's.
pub fn encode_outside(spec: &NodeSpec, node: &Node, parent: &mut XElem) {
    let fields = node
        .args
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((spec.args.get(i)?, v)))
        .chain(
            node.props
                .iter()
                .filter_map(|(k, v)| Some((spec.props.get(k)?, v))),
        );
    for (f, v) in fields {
        if let Some(rest) = f.xml.as_deref().and_then(|x| x.strip_prefix("../")) {
            let path: Vec<String> = rest.split('/').map(str::to_owned).collect();
            leaf(parent, &path, value_text(v));
        }
    }
}

fn put(f: &FieldSpec, v: &Value, e: &mut XElem, spellings: &[(&str, &str)]) {
    if f.xml.as_deref().is_some_and(|x| x.starts_with("../")) {
        return;
    }
    let text = value_text(v);
    if let (Some(mask), Some((addr, len))) = (&f.xml_netmask, text.split_once('/'))
        && let Ok(len) = len.parse::<u8>()
    {
        put_text(f, addr.to_owned(), e, spellings);
        let v4 = addr.parse::<std::net::Ipv4Addr>().is_ok();
        let written = spellings
            .iter()
            .find(|(p, raw)| *p == mask && mask_len(raw) == Some(len))
            .map(|(_, raw)| (*raw).to_owned());
        let path: Vec<String> = mask.split('/').map(str::to_owned).collect();
        leaf(e, &path, written.unwrap_or_else(|| mask_text(v4, len)));
        return;
    }
    put_text(f, text, e, spellings);
}

fn put_text(f: &FieldSpec, text: String, e: &mut XElem, spellings: &[(&str, &str)]) {
    match place(f.xml.as_deref(), &f.name) {
        Place::Here => e.children.push(XNode::Text(text, e.span)),
        Place::Attr(a) => e.attrs.push(XAttr {
            name: a.to_owned(),
            value: text,
            span: e.span,
        }),
        Place::Path(path) => {
            // The spelling the value came in, while it still reads as the same value.
            let joined = path.join("/");
            let written = spellings
                .iter()
                .find(|(p, raw)| *p == joined && convert(&f.ty, raw) == convert(&f.ty, &text))
                .map(|(_, raw)| (*raw).to_owned());
            leaf(e, &path, written.unwrap_or(text));
        }
    }
}

fn leaf(e: &mut XElem, path: &[String], text: String) {
    let Some((last, wrappers)) = path.split_last() else {
        return;
    };
    let mut l = XElem::new(last.as_str());
    l.id = LEAF;
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
