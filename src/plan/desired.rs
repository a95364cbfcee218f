//! Desired state: the entries a config repo declares, keyed as the store keys them.

use std::collections::BTreeMap;

use kdl::{KdlDocument, KdlEntry, KdlNode};

use crate::config::Repo;
use crate::model::{MAIN_GROUP, Mode};
use crate::state::Key;

/// Key → canonical KDL text, for every entry the repo declares.
pub type Entries = BTreeMap<Key, String>;

/// The entries a (valid) repo declares: every section of every mode as canonical KDL, and
/// membership — the cluster, its groups, its machines with group and address.
pub fn desired(repo: &Repo) -> Entries {
    let mut out = Entries::new();
    if let Some(name) = repo.cluster_name() {
        out.insert(Key::Cluster, membership_node("cluster", name, &[]));
    }
    for g in &repo.groups {
        if let Some(name) = g.mode.name() {
            out.entry(Key::Group(name.to_owned()))
                .or_insert_with(|| membership_node("group", name, &[]));
        }
    }
    for m in &repo.machines {
        if let Some(name) = m.mode.name() {
            let props = [("group", m.group_name()), ("address", m.address())];
            out.entry(Key::Machine(name.to_owned()))
                .or_insert_with(|| membership_node("machine", name, &props));
        }
    }
    for decl in repo.modes() {
        for s in &decl.sections {
            // The first of duplicates wins, as for every lookup (validation reports them).
            out.entry(Key::section(decl.mode.clone(), s.name()))
                .or_insert_with(|| s.node.to_canonical());
        }
    }
    out
}

/// `machine "lab1" address="10.1.0.1" group="Paris"`, canonically formatted.
pub fn membership_node(kind: &str, name: &str, props: &[(&str, &str)]) -> String {
    let mut node = KdlNode::new(kind);
    node.push(KdlEntry::new(name));
    let mut props = props.to_vec();
    props.sort();
    for (k, v) in props {
        node.push(KdlEntry::new_prop(k, v));
    }
    let mut doc = KdlDocument::new();
    doc.nodes_mut().push(node);
    doc.autoformat();
    doc.to_string()
}

/// The group a machine membership entry names (`Main_Group` if none).
pub fn machine_group(value: &str) -> String {
    crate::config::parse_kdl(value)
        .ok()
        .and_then(|d| {
            d.nodes()
                .first()
                .and_then(|n| n.get("group"))
                .and_then(|v| v.as_string())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| MAIN_GROUP.to_owned())
}

/// Every machine's effective sections computed from entries: section → (defining mode,
/// canonical text). Sections no mode defines are absent (they take the factory default,
/// the same on both sides of a plan). Built with one pass over the entries, so a
/// thousand machines cost a thousand lookups, not a million.
pub struct Layers<'a> {
    cluster: BTreeMap<&'a str, &'a str>,
    groups: BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    machines: BTreeMap<&'a str, (String, BTreeMap<&'a str, &'a str>)>,
}

/// One machine's effective sections.
pub type Effective<'a> = BTreeMap<&'a str, (Mode, &'a str)>;

impl<'a> Layers<'a> {
    /// Indexes `entries` (tombstones already left out).
    pub fn new(entries: impl IntoIterator<Item = (&'a Key, &'a str)>) -> Layers<'a> {
        let mut l = Layers {
            cluster: BTreeMap::new(),
            groups: BTreeMap::new(),
            machines: BTreeMap::new(),
        };
        let mut sections = Vec::new();
        for (key, value) in entries {
            match key {
                Key::Machine(m) => {
                    l.machines.entry(m.as_str()).or_default().0 = machine_group(value);
                }
                Key::Section { mode, section } => sections.push((mode, section.as_str(), value)),
                _ => {}
            }
        }
        for (mode, section, value) in sections {
            match mode {
                Mode::Cluster => {
                    l.cluster.insert(section, value);
                }
                Mode::Group(g) => {
                    l.groups
                        .entry(g.as_str())
                        .or_default()
                        .insert(section, value);
                }
                Mode::Machine(m) => {
                    l.machines
                        .entry(m.as_str())
                        .or_default()
                        .1
                        .insert(section, value);
                }
            }
        }
        l
    }

    /// The machines the entries know (declared, or defining sections).
    pub fn machines(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.machines.keys().copied()
    }

    /// True when the entries know `machine`.
    pub fn knows(&self, machine: &str) -> bool {
        self.machines.contains_key(machine)
    }

    /// The effective sections of `machine`: none when the entries do not know it. A
    /// machine that defines sections but has no membership entry (a standalone agent's
    /// own settings) is in `Main_Group`.
    pub fn effective(&self, machine: &str) -> Effective<'a> {
        let Some((group, own)) = self.machines.get(machine) else {
            return BTreeMap::new();
        };
        let group = if group.is_empty() {
            MAIN_GROUP
        } else {
            group.as_str()
        };
        let mut out: Effective<'a> = BTreeMap::new();
        for (s, v) in &self.cluster {
            out.insert(s, (Mode::Cluster, v));
        }
        if let Some(gs) = self.groups.get(group) {
            for (s, v) in gs {
                out.insert(s, (Mode::Group(group.to_owned()), v));
            }
        }
        for (s, v) in own {
            out.insert(s, (Mode::Machine(machine.to_owned()), v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};

    pub const REPO: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53"; }
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1" address="10.1.0.1"
machine "lab3" group="Paris" address="10.1.0.3" {
    interfaces { interface "Data1" address="10.1.0.3/24"; }
}
"#;

    #[test]
    fn a_repo_declares_sections_and_membership() {
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("r.kdl", REPO)], &mut diags);
        let d = desired(&repo);
        let keys: Vec<String> = d.keys().map(Key::to_string).collect();
        assert_eq!(
            keys,
            [
                "@cluster",
                "@group:Main_Group",
                "@group:Paris",
                "@machine:lab1",
                "@machine:lab3",
                "cluster/dns",
                "group:Paris/dns",
                "machine:lab3/interfaces"
            ]
        );
        assert_eq!(
            d[&Key::Machine("lab3".into())],
            "machine lab3 address=\"10.1.0.3\" group=Paris\n"
        );
        assert_eq!(machine_group(&d[&Key::Machine("lab3".into())]), "Paris");
        assert_eq!(
            machine_group(&d[&Key::Machine("lab1".into())]),
            "Main_Group"
        );

        let layers = Layers::new(d.iter().map(|(k, v)| (k, v.as_str())));
        let lab3 = layers.effective("lab3");
        assert_eq!(lab3["dns"].0, Mode::Group("Paris".into()));
        assert_eq!(lab3["interfaces"].0, Mode::Machine("lab3".into()));
        assert_eq!(layers.effective("lab1")["dns"].0, Mode::Cluster);
        assert!(!layers.effective("lab1").contains_key("interfaces"));
    }
}
