//! The one encoding of entry values, shared by the store and the wire: serde for
//! [`Node`] and [`Value`], and the format number both carry.
//!
//! A node is a JSON object: `{"name": "dns", "args": […], "props": {…}, "children": […]}`,
//! with empty parts left out. Scalars are JSON scalars; the few KDL values JSON cannot
//! hold exactly (integers beyond 64 bits, infinities and NaN) are tagged objects
//! (`{"int": "…"}`, `{"float": "inf"}`). Decoding checks what JSON alone cannot: property
//! names are unique (kept sorted, as [`Node`] keeps them). Spans are not encoded.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Node, Value};

/// The encoding this build writes and reads, in the store and on the wire. Bump it when
/// the meaning of a stored or sent record changes; readers refuse other numbers.
pub const ENCODING: u32 = 2;

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_str(v),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(small) => s.serialize_i64(small),
                Err(_) => {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry("int", &i.to_string())?;
                    m.end()
                }
            },
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(f) => {
                let text = if f.is_nan() {
                    "nan"
                } else if *f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("float", text)?;
                m.end()
            }
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Null => s.serialize_unit(),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a KDL value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some((tag, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::custom("an empty object is not a KDL value"));
        };
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom("a tagged KDL value has one field"));
        }
        match (tag.as_str(), text.as_str()) {
            ("int", t) => t
                .parse()
                .map(Value::Int)
                .map_err(|_| de::Error::custom(format!("`{t}` is not an integer"))),
            ("float", "inf") => Ok(Value::Float(f64::INFINITY)),
            ("float", "-inf") => Ok(Value::Float(f64::NEG_INFINITY)),
            ("float", "nan") => Ok(Value::Float(f64::NAN)),
            _ => Err(de::Error::custom(format!(
                "`{tag}: {text}` is not a KDL value"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Properties as a JSON object, in the node's (sorted) order.
struct Props<'a>(&'a [(String, Value)]);

impl Serialize for Props<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let parts = 1
            + usize::from(!self.args.is_empty())
            + usize::from(!self.props.is_empty())
            + usize::from(!self.children.is_empty());
        let mut m = s.serialize_map(Some(parts))?;
        m.serialize_entry("name", &self.name)?;
        if !self.args.is_empty() {
            m.serialize_entry("args", &self.args)?;
        }
        if !self.props.is_empty() {
            m.serialize_entry("props", &Props(&self.props))?;
        }
        if !self.children.is_empty() {
            m.serialize_entry("children", &self.children)?;
        }
        m.end()
    }
}

/// A node's properties as read: a duplicated name is an error, not "the last one wins"
/// (an encoder never writes one).
struct UniqueProps(BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for UniqueProps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UniqueProps, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueProps;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of properties")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueProps, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.insert(k.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("property `{k}` twice")));
                    }
                }
                Ok(UniqueProps(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a KDL node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut name: Option<String> = None;
                let mut node = Node::new("");
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        "name" if name.is_none() => name = Some(map.next_value()?),
                        "args" if node.args.is_empty() => node.args = map.next_value()?,
                        "props" if node.props.is_empty() => {
                            node.props = map.next_value::<UniqueProps>()?.0.into_iter().collect();
                        }
                        "children" if node.children.is_empty() => {
                            node.children = map.next_value()?;
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "unexpected or repeated field `{other}` in a node"
                            )));
                        }
                    }
                }
                node.name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                if node.name.is_empty() {
                    return Err(de::Error::custom("a node needs a name"));
                }
                Ok(node)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
                Err(de::Error::custom("a node is an object, not a list"))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let doc: kdl::KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    #[test]
    fn nodes_round_trip_through_the_encoding() {
        let n = parse(
            "listeners { listener \"in\" port=25 ratio=0.5 big=170141183460469231731687303715884105727 x=#null on=#true { hat \"a\\nb\"; } ; floats #inf #-inf #nan }",
        );
        let text = serde_json::to_string(&n).unwrap();
        let back: Node = serde_json::from_str(&text).unwrap();
        // NaN never equals itself: compare everything else, then the NaN's encoding.
        assert_eq!(back.children[0], n.children[0]);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert!(text.contains(r#"{"float":"nan"}"#), "{text}");
        assert!(text.contains(r#""big":{"int":"170141183460469231731687303715884105727"}"#));
        assert_eq!(
            serde_json::to_string(&parse("dns")).unwrap(),
            r#"{"name":"dns"}"#
        );
    }

    #[test]
    fn malformed_nodes_are_refused() {
        for bad in [
            r#"{"args":[]}"#,
            r#"{"name":""}"#,
            r#"{"name":"a","props":{"x":1,"x":2}}"#,
            r#"{"name":"a","name":"b"}"#,
            r#"{"name":"a","extra":1}"#,
            r#"{"name":"a","args":[{"int":"x"}]}"#,
            r#"{"name":"a","args":[{}]}"#,
            r#"["a"]"#,
        ] {
            assert!(serde_json::from_str::<Node>(bad).is_err(), "{bad}");
        }
        // Nesting far beyond any config is refused by the decoder, not a stack overflow.
        let deep = format!(
            "{}{}",
            r#"{"name":"a","children":["#.repeat(5000),
            "]}".repeat(5000)
        );
        assert!(serde_json::from_str::<Node>(&deep).is_err());
    }
}
