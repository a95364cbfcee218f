//! How a secret shows wherever it is not needed in the clear: every age armoured text in
//! what a command prints (text or JSON) becomes `<secret sha256:…>` ([`super::masked`]),
//! and a secret in clear text that a diagnostic points at is starred in the snippet.

use super::{ARMOR_BEGIN, ARMOR_END, masked};
use crate::model::{EntryValue, Key, Node, Value};
use crate::plan::{Change, Plan};
use crate::schema::{Catalogue, NodeSpec, ValueType};
use std::borrow::Cow;

/// `text` with every armoured text in it (as stored, or escaped in a KDL or JSON string:
/// `\n` for its line breaks) replaced by its mask.
pub fn mask_text(text: &str) -> Cow<'_, str> {
    if !text.contains(ARMOR_BEGIN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = rest.find(ARMOR_BEGIN) {
        let Some(end) = rest[begin..].find(ARMOR_END) else {
            break;
        };
        let end = begin + end + ARMOR_END.len();
        out.push_str(&rest[..begin]);
        out.push_str(&masked(&rest[begin..end].replace("\\n", "\n")));
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Masks every armoured text in the strings of `value`.
pub fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if super::is_encrypted(s) => *s = masked(s),
        serde_json::Value::String(s) => {
            if let Cow::Owned(m) = mask_text(s) {
                *s = m;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_json),
        _ => {}
    }
}

pub use crate::schema::secret_value::starred;

/// `node` with every value of a `type="secret"` field of `spec` that is in clear text
/// (a repo migrating with `--allow-plaintext-secrets`) replaced by its mask; armoured
/// text is masked wherever output is printed ([`mask_text`]).
pub fn mask_clear(node: &Node, spec: &NodeSpec) -> Node {
    let mut out = node.clone();
    mask_clear_in(&mut out, spec);
    out
}

fn mask_clear_in(node: &mut Node, spec: &NodeSpec) {
    if spec.open {
        return;
    }
    let clear = |f: &crate::schema::FieldSpec, v: &mut Value| {
        if f.ty == ValueType::Secret
            && let Value::String(s) = v
            && !super::is_encrypted(s)
        {
            *s = masked(s);
        }
    };
    for (f, v) in spec.args.iter().zip(node.args.iter_mut()) {
        clear(f, v);
    }
    for (k, v) in node.props.iter_mut() {
        if let Some(f) = spec.props.get(k) {
            clear(f, v);
        }
    }
    for child in &mut node.children {
        if let Some(c) = spec.children.get(&child.name) {
            mask_clear_in(child, &c.spec);
        }
    }
}

/// `plan` as shown: the clear secrets of its sections masked ([`mask_clear`]), by the
/// schemas of `catalogue`. What it writes is the plan itself, never this.
pub fn shown_plan(plan: &Plan, catalogue: &Catalogue) -> Plan {
    let mut shown = plan.clone();
    for action in &mut shown.actions {
        let Key::Section { section, .. } = &action.key else {
            continue;
        };
        let Some(schema) = catalogue.get(section.as_str()) else {
            continue;
        };
        let values: Vec<&mut EntryValue> = match &mut action.change {
            Change::Create { new } => vec![new],
            Change::Change { old, new } => vec![old, new],
            Change::Remove { old } => vec![old],
        };
        for v in values {
            if let EntryValue::Section(n) = v {
                *n = mask_clear(n, &schema.body);
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_escaped_armour_mask_alike() {
        let r = age::x25519::Identity::generate().to_public();
        let stored = super::super::encrypt("hunter2", &[r]).unwrap();
        let escaped = format!("bind-password=\"{}\"", stored.trim().replace('\n', "\\n"));
        let shown = mask_text(&escaped);
        assert_eq!(shown, format!("bind-password=\"{}\"", masked(&stored)));
        let mut v = serde_json::json!({ "a": [stored.clone()], "b": 1 });
        mask_json(&mut v);
        assert_eq!(v["a"][0], masked(&stored));
        assert_eq!(mask_text("nothing"), "nothing");
    }

    #[test]
    fn clear_secrets_are_masked_by_their_schema() {
        let doc: kdl::KdlDocument = r#"ldap-servers { profile "corp" base="dc=x" bind-password="hunter2" { hosts "l1"; } }"#
            .parse()
            .unwrap();
        let node = Node::from_kdl(&doc.nodes()[0]);
        let cat = Catalogue::builtin();
        let shown = mask_clear(&node, &cat.get("ldap-servers").unwrap().body);
        let text = shown.to_canonical();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(&masked("hunter2")), "{text}");
        assert!(text.contains("base=\"dc=x\""), "{text}");
    }
}
