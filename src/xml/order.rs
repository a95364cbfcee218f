//! The order of elements: export writes a node's elements in its schema's `xml_order`
//! (the declaration order, or `xml-order=`); where an imported file had another order, an
//! `order` entry in the node's `xml-extra` lists its element names, and export follows it.
//! Pure functions over the raw tree, used by [`super::codec`] and [`super`].

use std::collections::HashMap;

use super::reader::{WRAPPER, XElem, XNode};
use crate::model::{Node, Value};

/// The `xml-extra` entry listing a node's child element names in document order.
pub const ORDER: &str = "order";
/// The element names of the first `order` entry among `entries` (the children of an
/// `xml-extra` or `element` node), if there is one.
pub fn recorded<'n>(entries: impl IntoIterator<Item = &'n Node>) -> Option<Vec<String>> {
    let order = entries.into_iter().find(|c| c.name == ORDER)?;
    Some(
        order
            .args
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
    )
}

/// An `order` entry naming the child elements of `original` in document order, if
/// `encoded` (the same content, as export writes it) has them in another order.
pub fn order_entry(original: &XElem, encoded: &XElem) -> Option<Node> {
    let want: Vec<&str> = original.elements().map(|c| c.name.as_str()).collect();
    let got: Vec<&str> = encoded.elements().map(|c| c.name.as_str()).collect();
    if want == got {
        return None;
    }
    // Only a difference of order: another difference is not one an order can mend.
    let (mut a, mut b) = (want.clone(), got);
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        return None;
    }
    let mut n = Node::new(ORDER);
    n.span = original.span;
    n.name_span = original.name_span;
    n.args = want
        .into_iter()
        .map(|w| Value::String(w.to_owned()))
        .collect();
    Some(n)
}

/// Puts the child elements of `e` in the order an `order` entry gives, or else in `rank`
/// (element names and, for wrappers the codec made, `wrapper/name` paths); elements
/// neither names go after, in the order they were made. The elements named in `block`
/// (those of child nodes) keep the order they were made in, as one block at the place of
/// the first of them in `rank`: a node's children come back in the order it has them.
/// Mixed content is left alone.
pub fn arrange(e: &mut XElem, rank: &[String], block: &[String], record: Option<&[String]>) {
    let mixed = e
        .children
        .iter()
        .any(|c| matches!(c, XNode::Text(t, _) if !t.trim().is_empty()));
    if mixed || e.children.len() < 2 {
        return;
    }
    let position = |name: &str| rank.iter().position(|r| r == name).unwrap_or(rank.len());
    let block_rank = e
        .elements()
        .filter(|c| block.contains(&c.name))
        .map(|c| position(&c.name))
        .min();
    let children = std::mem::take(&mut e.children);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<((usize, usize), usize, XNode)> = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let XNode::Elem(el) = c else {
            continue;
        };
        let k = seen.entry(el.name.clone()).or_default();
        let by_rank = match block_rank {
            Some(b) if block.contains(&el.name) => b,
            _ => position(&el.name),
        };
        let key = match record {
            Some(order) => match order
                .iter()
                .enumerate()
                .filter(|(_, n)| **n == el.name)
                .nth(*k)
            {
                Some((at, _)) => (at, 0),
                None => (order.len(), by_rank),
            },
            None => (by_rank, 0),
        };
        *k += 1;
        keyed.push((key, i, XNode::Elem(el)));
    }
    keyed.sort_by_key(|(key, i, _)| (*key, *i));
    e.children = keyed.into_iter().map(|(_, _, c)| c).collect();
}

/// Puts the children of the wrappers the codec made under `e` (`direct` in
/// `direct/jack`) in the order `rank` gives for them (`direct/jack`, `direct/jack_mtu`).
pub(super) fn arrange_wrappers(e: &mut XElem, rank: &[String]) {
    for c in e.elements_mut().filter(|c| c.id == WRAPPER) {
        let sub = sub_rank(rank, &c.name);
        arrange(c, &sub, &[], None);
        arrange_wrappers(c, &sub);
    }
}

/// The first `element NAME` entry of an `xml-extra` node (what a wrapper held beyond the
/// mapped parts), added if missing.
pub fn wrapper_entry<'x>(x: &'x mut Node, name: &str) -> &'x mut Node {
    let is_it =
        |c: &Node| c.name == "element" && c.args.first().and_then(Value::as_str) == Some(name);
    let at = match x.children.iter().position(is_it) {
        Some(i) => i,
        None => {
            let mut el = Node::new("element");
            el.args.push(Value::String(name.to_owned()));
            x.children.push(el);
            x.children.len() - 1
        }
    };
    &mut x.children[at]
}

fn sub_rank(rank: &[String], wrapper: &str) -> Vec<String> {
    rank.iter()
        .filter_map(|r| r.strip_prefix(wrapper)?.strip_prefix('/'))
        .map(str::to_owned)
        .collect()
}
