//! The canonical, span-free form of KDL content: what layering compares and plans diff.
//!
//! A [`Node`] keeps the span it was read from so diagnostics can point at it, but spans
//! never count for equality: reformatting a file must never show up in a plan.

use std::fmt;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

/// A scalar value, as KDL has them.
///
/// Encoded for the store and the wire by [`super::encoding`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (quoted or a bare identifier in the file).
    String(String),
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// `#true` or `#false`.
    Bool(bool),
    /// `#null`.
    Null,
}

impl Value {
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The name of this value's KDL type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        }
    }

    fn to_kdl(&self) -> KdlValue {
        match self {
            Value::String(s) => KdlValue::String(s.clone()),
            Value::Int(i) => KdlValue::Integer(*i),
            Value::Float(f) => KdlValue::Float(*f),
            Value::Bool(b) => KdlValue::Bool(*b),
            Value::Null => KdlValue::Null,
        }
    }
}

impl From<&KdlValue> for Value {
    fn from(v: &KdlValue) -> Self {
        match v {
            KdlValue::String(s) => Value::String(s.clone()),
            KdlValue::Integer(i) => Value::Int(*i),
            KdlValue::Float(f) => Value::Float(*f),
            KdlValue::Bool(b) => Value::Bool(*b),
            KdlValue::Null => Value::Null,
        }
    }
}

impl fmt::Display for Value {
    /// Displays the value as KDL would write it (strings quoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_kdl())
    }
}

/// One KDL node reduced to its meaning: name, arguments, properties (sorted by name, the
/// rightmost of duplicates winning, as KDL says) and children. Encoded for the store and
/// the wire by [`super::encoding`].
#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Positional arguments, in order.
    pub args: Vec<Value>,
    /// Properties, sorted by name.
    pub props: Vec<(String, Value)>,
    /// Child nodes, in order. An empty list and no children block are the same.
    pub children: Vec<Node>,
    /// Where the whole node was read from (not part of equality).
    pub span: SourceSpan,
    /// Where the node's name was read from (not part of equality).
    pub name_span: SourceSpan,
    /// Where each argument was read from, parallel to `args` (not part of equality).
    pub arg_spans: Vec<SourceSpan>,
    /// Where each property was read from, parallel to `props` (not part of equality).
    pub prop_spans: Vec<SourceSpan>,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.args == other.args
            && self.props == other.props
            && self.children == other.children
    }
}

impl Node {
    /// A node with a name and nothing else, at no particular place.
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            args: Vec::new(),
            props: Vec::new(),
            children: Vec::new(),
            span: SourceSpan::from(0..0),
            name_span: SourceSpan::from(0..0),
            arg_spans: Vec::new(),
            prop_spans: Vec::new(),
        }
    }

    /// Reads a parsed KDL node (and its children) into canonical form.
    pub fn from_kdl(node: &KdlNode) -> Node {
        let mut out = Node::new(node.name().value());
        out.span = node.span();
        out.name_span = node.name().span();
        for entry in node.entries() {
            let value = Value::from(entry.value());
            match entry.name() {
                None => {
                    out.args.push(value);
                    out.arg_spans.push(entry.span());
                }
                Some(name) => {
                    let name = name.value().to_owned();
                    match out.props.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
                        Ok(i) => {
                            out.props[i].1 = value;
                            out.prop_spans[i] = entry.span();
                        }
                        Err(i) => {
                            out.props.insert(i, (name, value));
                            out.prop_spans.insert(i, entry.span());
                        }
                    }
                }
            }
        }
        if let Some(children) = node.children() {
            out.children = children.nodes().iter().map(Node::from_kdl).collect();
        }
        out
    }

    /// The property called `name`, if present.
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets property `name`, keeping the properties sorted (and their spans parallel).
    pub fn set_prop(&mut self, name: &str, value: Value) {
        match self.props.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => self.props[i].1 = value,
            Err(i) => {
                if self.prop_spans.len() == self.props.len() {
                    self.prop_spans.insert(i, self.span);
                }
                self.props.insert(i, (name.to_owned(), value));
            }
        }
    }

    /// The children called `name` whose first argument is the string `arg`
    /// (`user "admin"` of a `users` section).
    pub fn child_named(&self, name: &str, arg: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name == name && c.args.first().and_then(Value::as_str) == Some(arg))
    }

    /// The span of the property called `name`, else the node's span.
    pub fn prop_span(&self, name: &str) -> SourceSpan {
        self.props
            .iter()
            .position(|(k, _)| k == name)
            .and_then(|i| self.prop_spans.get(i).copied())
            .unwrap_or(self.span)
    }

    /// The span of argument `i`, else the node's span.
    pub fn arg_span(&self, i: usize) -> SourceSpan {
        self.arg_spans.get(i).copied().unwrap_or(self.span)
    }

    /// This node as a KDL node with canonical formatting.
    pub fn to_kdl(&self) -> KdlNode {
        let mut node = KdlNode::new(self.name.as_str());
        for arg in &self.args {
            node.push(KdlEntry::new(arg.to_kdl()));
        }
        for (k, v) in &self.props {
            node.push(KdlEntry::new_prop(k.as_str(), v.to_kdl()));
        }
        if !self.children.is_empty() {
            let doc = node.ensure_children();
            for child in &self.children {
                doc.nodes_mut().push(child.to_kdl());
            }
        }
        node
    }

    /// The canonical KDL text of this node: the same meaning always prints the same way.
    pub fn to_canonical(&self) -> String {
        let mut doc = KdlDocument::new();
        doc.nodes_mut().push(self.to_kdl());
        doc.autoformat();
        doc.to_string()
    }

    /// The canonical KDL text of this node's children only, one node per line.
    pub fn children_canonical(&self) -> String {
        let mut doc = KdlDocument::new();
        for child in &self.children {
            doc.nodes_mut().push(child.to_kdl());
        }
        doc.autoformat();
        doc.to_string()
    }

    /// True when the node carries no arguments, properties or children.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty() && self.props.is_empty() && self.children.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let doc: KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    #[test]
    fn formatting_and_property_order_do_not_count() {
        let a = parse("dns { server \"10.0.0.1\" priority=0 weight=2 }");
        let b = parse("dns {\n  // a comment\n  server   \"10.0.0.1\" weight=2   priority=0\n}\n");
        assert_eq!(a, b);
        assert_eq!(a.to_canonical(), b.to_canonical());
    }

    #[test]
    fn the_rightmost_duplicate_property_wins() {
        let n = parse("route \"a\" port=25 port=587");
        assert_eq!(n.prop("port"), Some(&Value::Int(587)));
        assert_eq!(n.props.len(), 1);
    }

    #[test]
    fn an_empty_block_equals_no_block() {
        assert_eq!(parse("ldap-queries"), parse("ldap-queries {}"));
    }

    #[test]
    fn canonical_text_is_stable() {
        let n = parse("dns { server \"10.0.0.1\" priority=0; server \"10.0.0.2\" priority=1 }");
        assert_eq!(
            n.to_canonical(),
            "dns {\n    server \"10.0.0.1\" priority=0\n    server \"10.0.0.2\" priority=1\n}\n"
        );
    }
}
