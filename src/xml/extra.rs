//! XML the catalogue does not know, kept verbatim as `xml-extra` nodes (see
//! `schemas/xml-extra.kdl`): `element "name" ["text"] attr="…" { … }` for an element,
//! `text "…"` for text among elements, and the `xml-extra` node's own properties for
//! unknown attributes of the element it sits in. The codec adds `order` and `as-written`
//! entries (see [`super::codec`]), and an appliance's `xml-extra` section `header` entries
//! (see [`super::header`]); applying a node skips them.

use crate::model::{Node, Value};
use crate::schema::XML_EXTRA;

use super::reader::{LEAF, SHARED, WRAPPER, XElem, XNode};

/// A whole element as an `element` node.
pub fn element_node(e: &XElem) -> Node {
    let mut node = Node::new("element");
    node.span = e.span;
    node.name_span = e.name_span;
    node.args.push(Value::String(e.name.clone()));
    node.arg_spans.push(e.name_span);
    set_attrs(
        &mut node,
        e.attrs.iter().map(|a| (a.name.clone(), a.value.clone())),
    );
    if e.elements().next().is_none() {
        let (text, span) = e.text();
        if !text.is_empty() {
            node.args.push(Value::String(text));
            node.arg_spans.push(span);
        }
        return node;
    }
    for c in &e.children {
        match c {
            XNode::Elem(child) => node.children.push(element_node(child)),
            XNode::Text(t, span) if !t.trim().is_empty() => {
                let mut text = Node::new("text");
                text.span = *span;
                text.name_span = *span;
                text.args.push(Value::String(t.clone()));
                node.children.push(text);
            }
            XNode::Text(..) => {}
        }
    }
    node
}

/// Sets properties from attributes, sorted by name as [`Node`] keeps them.
pub fn set_attrs(node: &mut Node, attrs: impl Iterator<Item = (String, String)>) {
    for (k, v) in attrs {
        match node.props.binary_search_by(|(n, _)| n.cmp(&k)) {
            Ok(i) => node.props[i].1 = Value::String(v),
            Err(i) => {
                node.props.insert(i, (k, Value::String(v)));
                node.prop_spans.insert(i, node.name_span);
            }
        }
    }
}

/// An `element` node back as an element.
pub fn element_from(node: &Node) -> Option<XElem> {
    let name = node.args.first()?.as_str()?;
    let mut e = XElem::new(name);
    apply(node, &mut e);
    if let Some(Value::String(t)) = node.args.get(1) {
        e.children.insert(0, XNode::Text(t.clone(), e.span));
    }
    Some(e)
}

/// Applies the content of an `xml-extra` (or `element`) node to `e`: properties become
/// attributes (unless `e` has one of that name), `text` children text, and `element`
/// children elements. The first `element` of a name merges into a wrapper element of that
/// name that the codec made, so that what a wrapper held beyond the known parts goes back
/// into it; later ones of the name are elements of their own (decoding uses only the first
/// of same-named wrappers and keeps the others whole, see [`super::codec`]).
pub fn apply(node: &Node, e: &mut XElem) {
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in &node.props {
        if e.attr(k).is_none() {
            e.attrs.push(super::reader::XAttr {
                name: k.clone(),
                value: value_text(v),
                span: e.span,
            });
        }
    }
    for child in &node.children {
        match child.name.as_str() {
            "text" => {
                if let Some(t) = child.args.first().and_then(Value::as_str) {
                    e.children.push(XNode::Text(t.to_owned(), e.span));
                }
            }
            "element" => {
                let Some(name) = child.args.first().and_then(Value::as_str) else {
                    continue;
                };
                // The placeholder of an element that was empty on import gives way to a
                // value the codec wrote since.
                let placeholder = is_placeholder(child);
                let written = |w: &XElem| w.name == name && matches!(w.id, LEAF | SHARED);
                if placeholder && e.elements().any(written) {
                    continue;
                }
                let first = !seen.contains(&name);
                seen.push(name);
                let wrapper = e
                    .elements_mut()
                    .find(|w| first && w.name == name && w.id == WRAPPER);
                match wrapper {
                    Some(w) => {
                        apply(child, w);
                        if let Some(Value::String(t)) = child.args.get(1) {
                            w.children.push(XNode::Text(t.clone(), w.span));
                        }
                        let order = super::order::recorded(&child.children);
                        if order.is_some() {
                            super::order::arrange(w, &[], &[], order.as_deref());
                        }
                    }
                    None => {
                        if let Some(x) = element_from(child) {
                            e.children.push(XNode::Elem(x));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A value as XML text: strings as they are, booleans as AsyncOS's `1` and `0`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Null => String::new(),
    }
}

/// True for `element NAME ""`: an element that was empty where a field could have had a
/// value (see [`super::codec`]).
pub fn is_placeholder(node: &Node) -> bool {
    node.name == "element"
        && matches!(node.args.as_slice(), [Value::String(_), Value::String(t)] if t.is_empty())
        && node.props.is_empty()
        && node.children.is_empty()
}

/// True for a node that is an `xml-extra` holder.
pub fn is_extra(node: &Node) -> bool {
    node.name == XML_EXTRA
}
