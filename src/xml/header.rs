//! The comment AsyncOS writes before `<config>`: `Product:`, `Model Number:`, `Version:`,
//! `Serial Number:`, `Current Time:` and `Feature "<name>": Quantity = 1, Time Remaining =
//! "Perpetual"` lines. Features become the machine's `feature-keys` section, the serial
//! number its `serial=`; the rest is shown as comments in the machine's KDL file.
//! `Current Time` changes on every export and is dropped.

use crate::model::{Node, Value};

/// Metadata read from (or written to) the header comment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// `Key: value` lines other than features, serial number and current time, in order.
    pub fields: Vec<(String, String)>,
    /// The `Serial Number:` line.
    pub serial: Option<String>,
    /// The `Feature` lines.
    pub features: Vec<Feature>,
}

/// One licensed feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// The feature's name, as AsyncOS spells it.
    pub name: String,
    /// `Quantity = N`.
    pub quantity: i128,
    /// `Time Remaining = "…"`: `Perpetual`, `N days`, or anything else AsyncOS wrote.
    pub remaining: String,
}

impl Header {
    /// Reads the comment's lines; lines that are not `Key: value` are ignored.
    pub fn parse(comment: &str) -> Header {
        let mut h = Header::default();
        for line in comment.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(f) = line.strip_prefix("Feature ").and_then(parse_feature) {
                h.features.push(f);
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "Serial Number" => h.serial = Some(value.to_owned()),
                "Current Time" => {}
                _ => h.fields.push((key.to_owned(), value.to_owned())),
            }
        }
        h
    }

    /// The comment's text, one `  Key: value` line each, starting and ending with a newline:
    /// `Product`, `Model Number` and `Version` (those given), the serial number, the other
    /// lines in order, then the features, as AsyncOS writes them.
    pub fn render(&self) -> String {
        let mut out = String::from("\n");
        let leading = self
            .fields
            .iter()
            .take_while(|(k, _)| matches!(k.as_str(), "Product" | "Model Number" | "Version"))
            .count();
        for (k, v) in &self.fields[..leading] {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        if let Some(s) = &self.serial {
            out.push_str(&format!("  Serial Number: {s}\n"));
        }
        for (k, v) in &self.fields[leading..] {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        for f in &self.features {
            out.push_str(&format!(
                "  Feature \"{}\": Quantity = {}, Time Remaining = \"{}\"\n",
                f.name, f.quantity, f.remaining
            ));
        }
        // `--` may not appear inside an XML comment.
        out.replace("--", "- -")
    }

    /// The features as a `feature-keys` section node, if there are any.
    pub fn feature_keys(&self) -> Option<Node> {
        if self.features.is_empty() {
            return None;
        }
        let mut section = Node::new("feature-keys");
        for f in &self.features {
            let mut key = Node::new("key");
            key.args.push(Value::String(f.name.clone()));
            let mut props = vec![("quantity".to_owned(), Value::Int(f.quantity))];
            match remaining_days(&f.remaining) {
                Some(days) => props.push(("days-remaining".into(), Value::Int(days))),
                None if f.remaining.eq_ignore_ascii_case("perpetual") => {
                    props.push(("perpetual".into(), Value::Bool(true)))
                }
                None => {}
            }
            props.sort_by(|a, b| a.0.cmp(&b.0));
            key.props = props;
            section.children.push(key);
        }
        Some(section)
    }

    /// Features from a `feature-keys` section node (the inverse of [`Header::feature_keys`]).
    pub fn set_features(&mut self, section: &Node) {
        self.features = section
            .children
            .iter()
            .filter(|k| k.name == "key")
            .filter_map(|k| {
                let name = k.args.first()?.as_str()?.to_owned();
                let quantity = match k.prop("quantity") {
                    Some(Value::Int(q)) => *q,
                    _ => 1,
                };
                let remaining = match (k.prop("perpetual"), k.prop("days-remaining")) {
                    (_, Some(Value::Int(d))) => format!("{d} days"),
                    (Some(Value::Bool(true)), _) => "Perpetual".to_owned(),
                    _ => "Unknown".to_owned(),
                };
                Some(Feature {
                    name,
                    quantity,
                    remaining,
                })
            })
            .collect();
    }
}

fn parse_feature(rest: &str) -> Option<Feature> {
    let rest = rest.trim().strip_prefix('"')?;
    let (name, rest) = rest.split_once('"')?;
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut f = Feature {
        name: name.to_owned(),
        quantity: 1,
        remaining: String::new(),
    };
    for part in rest.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "Quantity" => f.quantity = v.trim().parse().ok()?,
            "Time Remaining" => f.remaining = v.trim().trim_matches('"').to_owned(),
            _ => {}
        }
    }
    Some(f)
}

fn remaining_days(s: &str) -> Option<i128> {
    let (n, unit) = s.trim().split_once(' ')?;
    matches!(unit.trim(), "days" | "day")
        .then(|| n.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMENT: &str = r#"
  Product: Cisco C100V Email Security Virtual Appliance
  Model Number: C100V
  Version: 15.0.1-416
  Serial Number: 4229ABCDEF-1234567
  Current Time: Tue Jan 10 10:00:00 2023
  Feature "IronPort Anti-Spam": Quantity = 1, Time Remaining = "Perpetual"
  Feature "Sophos Anti-Virus": Quantity = 1, Time Remaining = "25 days"
"#;

    #[test]
    fn metadata_features_and_no_current_time() {
        let h = Header::parse(COMMENT);
        assert_eq!(h.serial.as_deref(), Some("4229ABCDEF-1234567"));
        assert_eq!(h.fields.len(), 3);
        assert_eq!(h.fields[1], ("Model Number".into(), "C100V".into()));
        assert_eq!(h.features.len(), 2);
        assert!(!h.render().contains("Current Time"));
        let keys = h.feature_keys().unwrap();
        assert_eq!(
            keys.children_canonical(),
            "key \"IronPort Anti-Spam\" perpetual=#true quantity=1\nkey \"Sophos Anti-Virus\" days-remaining=25 quantity=1\n"
        );
        let mut again = Header::default();
        again.set_features(&keys);
        assert_eq!(again.features, h.features);
    }
}
