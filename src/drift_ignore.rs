//! Drift-ignore rules, pure: the rules of a `drift-ignore` section and which differences
//! between the repo and the live cluster they cover at a given time. `check --repo` and
//! `status` ask this before they call a difference drift, and say what they ignored.
//!
//! A rule names a mode (`cluster`, `group:Paris`, `machine:lab1`), a section, and
//! optionally a field path inside it; it is in force until its `until` (RFC 3339, UTC),
//! then the differences it covered are reported again. A path is segments joined by `.`,
//! each the name of a property or of child nodes, `[KEY]` picking the children whose
//! first argument is KEY: `server`, `server[192.0.2.53]`, `server[192.0.2.53].priority`,
//! `mode`. Without a path the rule covers the whole section, its creation and removal
//! too. A difference is covered when one rule covers all of it: the two sides are equal
//! once what the path names is left out of both.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{EntryValue, Key, Mode, Node, Value};

/// The section that declares drift-ignore rules.
pub const SECTION: &str = "drift-ignore";

/// The key of the cluster's drift-ignore rules.
pub fn key() -> Key {
    Key::section(
        Mode::Cluster,
        crate::model::SectionName::new(SECTION).expect("a valid section name"),
    )
}

/// The section node `value` holds, if it is a section (the rules' entry's value).
pub fn section_of(value: Option<&EntryValue>) -> Option<&Node> {
    match value {
        Some(EntryValue::Section(node)) => Some(node),
        _ => None,
    }
}

/// One rule, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name in the section.
    pub name: String,
    /// The mode whose section it covers.
    pub mode: Mode,
    /// The section it covers.
    pub section: String,
    /// What inside the section it covers (empty: all of it).
    pub path: Vec<Segment>,
    /// Until when (Unix ms, excluded).
    pub until_ms: i64,
    /// `until` as written.
    pub until: String,
    /// Why the difference is tolerated.
    pub reason: String,
}

/// One step of a field path: a property or the children called `name`, only those whose
/// first argument is `key` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The property's or the children's name.
    pub name: String,
    /// The first argument the children must have.
    pub key: Option<String>,
}

/// A rule as `status` lists it: plain text, the same on the wire and in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shown {
    /// The rule's name.
    pub name: String,
    /// `cluster`, `group:NAME` or `machine:NAME`.
    pub mode: String,
    /// The section.
    pub section: String,
    /// The field path, empty for the whole section.
    pub path: String,
    /// The expiry, as written.
    pub until: String,
    /// Why.
    pub reason: String,
}

/// What one rule made `check` or `status` ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ignored {
    /// The rule's name.
    pub rule: String,
    /// Its expiry, as written.
    pub until: String,
    /// The entries whose difference it covered (`group:Paris/dns`).
    pub entries: Vec<String>,
}

impl Ignored {
    /// `1 difference ignored by drift-ignore rule `NAME` until DATE`.
    pub fn line(&self) -> String {
        format!(
            "{} ignored by drift-ignore rule `{}` until {} ({})",
            crate::text::count(self.entries.len(), "difference"),
            self.rule,
            self.until,
            self.entries.join(", ")
        )
    }
}

impl Rule {
    /// True while the rule is in force at `ms` (Unix ms).
    pub fn in_force(&self, ms: u64) -> bool {
        i64::try_from(ms).unwrap_or(i64::MAX) < self.until_ms
    }

    /// True when this rule covers every difference between `repo` and `live` for `key`
    /// (whatever the time).
    pub fn covers(&self, key: &Key, repo: Option<&EntryValue>, live: Option<&EntryValue>) -> bool {
        let Key::Section { mode, section } = key else {
            return false;
        };
        if *mode != self.mode || section.as_str() != self.section {
            return false;
        }
        if self.path.is_empty() {
            return true;
        }
        let masked = |v: Option<&EntryValue>| match v {
            Some(EntryValue::Section(node)) => Some(mask(node, &self.path)),
            _ => None,
        };
        match (repo, live) {
            (Some(_), Some(_)) => masked(repo).is_some() && masked(repo) == masked(live),
            _ => false,
        }
    }

    /// The rule as `status` lists it.
    pub fn shown(&self) -> Shown {
        Shown {
            name: self.name.clone(),
            mode: self.mode.to_string(),
            section: self.section.clone(),
            path: path_text(&self.path),
            until: self.until.clone(),
            reason: self.reason.clone(),
        }
    }
}

impl Segment {
    fn matches(&self, child: &Node) -> bool {
        child.name == self.name
            && self
                .key
                .as_deref()
                .is_none_or(|k| child.args.first().map(arg_text).as_deref() == Some(k))
    }
}

/// A first argument as a path's `[KEY]` writes it: a string bare, anything else as KDL.
fn arg_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// `node` without what `path` (not empty) names.
fn mask(node: &Node, path: &[Segment]) -> Node {
    let mut out = Node::new(node.name.clone());
    out.args = node.args.clone();
    out.props = node.props.clone();
    let Some((first, rest)) = path.split_first() else {
        return out;
    };
    if rest.is_empty() {
        if first.key.is_none() {
            out.props.retain(|(name, _)| *name != first.name);
        }
        out.children = node
            .children
            .iter()
            .filter(|c| !first.matches(c))
            .cloned()
            .collect();
    } else {
        out.children = node
            .children
            .iter()
            .map(|c| {
                if first.matches(c) {
                    mask(c, rest)
                } else {
                    c.clone()
                }
            })
            .collect();
    }
    out
}

/// A path as written: `server[192.0.2.53].priority`.
pub fn path_text(path: &[Segment]) -> String {
    path.iter()
        .map(|s| match &s.key {
            Some(k) => format!("{}[{k}]", s.name),
            None => s.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Reads a field path, or says what is wrong with it.
pub fn parse_path(text: &str) -> Result<Vec<Segment>, String> {
    let bad = |why: &str| format!("path=\"{text}\" does not read: {why}");
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains(']') {
            return Err(bad(
                "each segment is a name, then [KEY] to pick one child by its first argument",
            ));
        }
        rest = &rest[end..];
        let key = match rest.strip_prefix('[') {
            Some(after) => {
                let close = after.find(']').ok_or_else(|| bad("a `[` is not closed"))?;
                let key = &after[..close];
                if key.is_empty() {
                    return Err(bad("`[]` names no key"));
                }
                rest = &after[close + 1..];
                Some(key.to_owned())
            }
            None => None,
        };
        out.push(Segment {
            name: name.to_owned(),
            key,
        });
        match rest.strip_prefix('.') {
            Some(after) => rest = after,
            None if rest.is_empty() => return Ok(out),
            None => return Err(bad("segments are joined by `.`")),
        }
    }
}

/// The rules of a `drift-ignore` section, or what is wrong with one of them (its name
/// and the problem).
pub fn rules(section: &Node) -> Result<Vec<Rule>, String> {
    section
        .children
        .iter()
        .filter(|n| n.name == "rule")
        .map(rule)
        .collect()
}

fn rule(node: &Node) -> Result<Rule, String> {
    let name = node
        .args
        .first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let text = |k: &str| node.prop(k).and_then(Value::as_str).unwrap_or_default();
    let fail = |what: String| format!("drift-ignore rule `{name}`: {what}");
    let mode: Mode = text("mode")
        .parse()
        .map_err(|e| fail(format!("mode=\"{}\": {e}", text("mode"))))?;
    let section = text("section").to_owned();
    if section.is_empty() {
        return Err(fail("`section` names no section".into()));
    }
    let path = match node.prop("path") {
        None => Vec::new(),
        Some(_) => parse_path(text("path")).map_err(fail)?,
    };
    let until_ms = OffsetDateTime::parse(text("until"), &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            fail(format!(
                "until=\"{}\" is not an RFC 3339 time (2027-01-31T00:00:00Z)",
                text("until")
            ))
        })?;
    Ok(Rule {
        until: text("until").to_owned(),
        reason: text("reason").to_owned(),
        name,
        mode,
        section,
        path,
        until_ms,
    })
}

/// The rules of a section in force at a time, and what they were found to cover: what
/// `check --repo` and `status` filter their differences through.
#[derive(Debug, Default)]
pub struct Ignoring {
    rules: Vec<Rule>,
    ignored: Vec<Ignored>,
}

impl Ignoring {
    /// The rules of `section` in force at `now_ms`. A section whose rules do not read
    /// (which `validate` and the agent's checks refuse to store) ignores nothing.
    pub fn new(section: Option<&Node>, now_ms: u64) -> Ignoring {
        let rules = section
            .and_then(|s| rules(s).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.in_force(now_ms))
            .collect();
        Ignoring {
            rules,
            ignored: Vec::new(),
        }
    }

    /// True when a rule in force covers the difference for `key` (and notes it).
    pub fn ignores(
        &mut self,
        key: &Key,
        repo: Option<&EntryValue>,
        live: Option<&EntryValue>,
    ) -> bool {
        let Some(rule) = self.rules.iter().find(|r| r.covers(key, repo, live)) else {
            return false;
        };
        match self.ignored.iter_mut().find(|i| i.rule == rule.name) {
            Some(i) => i.entries.push(key.to_string()),
            None => self.ignored.push(Ignored {
                rule: rule.name.clone(),
                until: rule.until.clone(),
                entries: vec![key.to_string()],
            }),
        }
        true
    }

    /// The rules in force, as `status` lists them.
    pub fn in_force(&self) -> Vec<Shown> {
        self.rules.iter().map(Rule::shown).collect()
    }

    /// What each rule was found to cover, in the order first met.
    pub fn ignored(&self) -> Vec<Ignored> {
        self.ignored.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        let doc: kdl::KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    fn dns(text: &str) -> EntryValue {
        EntryValue::Section(node(text))
    }

    fn key(mode: &str, section: &str) -> Key {
        Key::section(
            mode.parse().unwrap(),
            crate::model::SectionName::new(section).unwrap(),
        )
    }

    /// Unix ms of an RFC 3339 time.
    fn at(t: &str) -> u64 {
        (OffsetDateTime::parse(t, &Rfc3339).unwrap().unix_timestamp() * 1000) as u64
    }

    fn one(text: &str) -> Rule {
        rules(&node(&format!("drift-ignore {{ {text}; }}")))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_path_covers_what_it_names_and_nothing_else() {
        let servers = one(
            r#"rule "r" mode="group:Paris" section="dns" path="server" until="2027-01-31T00:00:00Z""#,
        );
        let paris = key("group:Paris", "dns");
        let repo = dns(r#"dns mode="local" { server "192.0.2.53"; ptr-timeout 5; }"#);
        let other_server =
            dns(r#"dns mode="local" { server "192.0.2.99" priority=3; ptr-timeout 5; }"#);
        let no_server = dns(r#"dns mode="local" { ptr-timeout 5; }"#);
        let other_timeout = dns(r#"dns mode="local" { server "192.0.2.99"; ptr-timeout 9; }"#);
        assert!(servers.covers(&paris, Some(&repo), Some(&other_server)));
        assert!(servers.covers(&paris, Some(&repo), Some(&no_server)));
        assert!(
            !servers.covers(&paris, Some(&repo), Some(&other_timeout)),
            "a difference outside the path is not covered, even beside one inside"
        );
        assert!(
            !servers.covers(&key("group:Lyon", "dns"), Some(&repo), Some(&other_server)),
            "another mode"
        );
        assert!(
            !servers.covers(&key("group:Paris", "ntp"), Some(&repo), Some(&other_server)),
            "another section"
        );
        assert!(
            !servers.covers(&paris, Some(&repo), None),
            "a path does not cover the section's removal"
        );

        // A property of the section, and one child by its key.
        let mode = one(
            r#"rule "m" mode="cluster" section="dns" path="mode" until="2027-01-31T00:00:00Z""#,
        );
        let cluster = key("cluster", "dns");
        let root = dns(r#"dns mode="root" { server "192.0.2.53"; ptr-timeout 5; }"#);
        assert!(mode.covers(&cluster, Some(&repo), Some(&root)));
        assert!(!mode.covers(&cluster, Some(&repo), Some(&other_server)));
        let one_server = one(
            r#"rule "p" mode="cluster" section="dns" path="server[192.0.2.53].priority" until="2027-01-31T00:00:00Z""#,
        );
        let reprioritised =
            dns(r#"dns mode="local" { server "192.0.2.53" priority=7; ptr-timeout 5; }"#);
        assert!(one_server.covers(&cluster, Some(&repo), Some(&reprioritised)));
        assert!(
            !one_server.covers(&cluster, Some(&repo), Some(&other_server)),
            "another server is outside `server[192.0.2.53]`"
        );

        // No path: the whole section, its creation and removal too.
        let whole = one(r#"rule "w" mode="cluster" section="dns" until="2027-01-31T00:00:00Z""#);
        assert!(whole.covers(&cluster, Some(&repo), None));
        assert!(whole.covers(&cluster, None, Some(&repo)));
        assert!(!whole.covers(&key("cluster", "ntp"), None, Some(&repo)));
    }

    #[test]
    fn a_rule_ignores_until_it_expires_and_says_what_it_ignored() {
        let section = node(
            r#"drift-ignore {
                rule "paris-dns" mode="group:Paris" section="dns" path="server" until="2027-01-31T00:00:00Z" reason="INC-7"
                rule "old" mode="cluster" section="dns" until="2020-01-01T00:00:00Z" reason="gone"
            }"#,
        );
        let repo = dns(r#"dns { server "192.0.2.53"; }"#);
        let live = dns(r#"dns { server "192.0.2.99"; }"#);
        let paris = key("group:Paris", "dns");
        let mut now = Ignoring::new(Some(&section), at("2027-01-30T23:59:59Z"));
        assert_eq!(
            now.in_force()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["paris-dns"],
            "an expired rule is not in force"
        );
        assert!(now.ignores(&paris, Some(&repo), Some(&live)));
        assert!(
            !now.ignores(&key("cluster", "dns"), Some(&repo), Some(&live)),
            "the expired rule covers nothing"
        );
        assert_eq!(
            now.ignored()[0].line(),
            "1 difference ignored by drift-ignore rule `paris-dns` until 2027-01-31T00:00:00Z (group:Paris/dns)"
        );
        let mut later = Ignoring::new(Some(&section), at("2027-01-31T00:00:00Z"));
        assert!(
            !later.ignores(&paris, Some(&repo), Some(&live)),
            "until is excluded"
        );
        assert!(later.in_force().is_empty() && later.ignored().is_empty());
        assert!(Ignoring::new(None, 0).in_force().is_empty());
    }

    #[test]
    fn a_rule_that_does_not_read_says_which_and_why() {
        let bad = |t: &str| rules(&node(&format!("drift-ignore {{ {t}; }}"))).unwrap_err();
        assert!(
            bad(r#"rule "x" mode="group" section="dns" until="2027-01-31T00:00:00Z""#)
                .contains("drift-ignore rule `x`: mode=\"group\": `group` is not a mode")
        );
        assert!(
            bad(r#"rule "x" mode="cluster" section="dns" until="next week""#)
                .contains("until=\"next week\" is not an RFC 3339 time")
        );
        assert!(
            bad(r#"rule "x" mode="cluster" section="dns" path="server[1.2.3.4" until="2027-01-31T00:00:00Z""#)
                .contains("a `[` is not closed")
        );
        assert!(
            bad(r#"rule "x" mode="cluster" section="dns" path="server..priority" until="2027-01-31T00:00:00Z""#)
                .contains("each segment is a name")
        );
        assert!(
            bad(r#"rule "x" mode="cluster" section="dns" path="" until="2027-01-31T00:00:00Z""#)
                .contains("each segment is a name")
        );
        assert_eq!(
            path_text(&parse_path("listener[public].hat[default].action").unwrap()),
            "listener[public].hat[default].action"
        );
        assert_eq!(
            parse_path("server[10.0.0.1]").unwrap()[0].key.as_deref(),
            Some("10.0.0.1")
        );
    }
}
