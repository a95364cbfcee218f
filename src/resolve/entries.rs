//! Layering over store entries: each machine's effective sections from the entries a
//! store holds (or a repo declares, in the same form), with the same engine and the same
//! catalogue as for a parsed repo. Plan compares two of these; the agent writes one to its
//! running config.

use std::collections::{BTreeMap, HashMap};

use super::{Layer, resolve_in};
use crate::config::Diagnostics;
use crate::model::{EntryValue, GroupName, Key, MAIN_GROUP, Mode, Node};
use crate::schema::Catalogue;

/// The sections one mode defines, by name.
#[derive(Debug)]
pub struct ModeSections<'a> {
    mode: &'a Mode,
    sections: HashMap<&'a str, &'a Node>,
}

impl<'a> Layer<'a> for &ModeSections<'a> {
    /// The defining mode.
    type Def = &'a Mode;

    fn mode(&self) -> &Mode {
        self.mode
    }

    fn get(&self, name: &str) -> Option<(&'a Node, &'a Mode)> {
        self.sections.get(name).map(|n| (*n, self.mode))
    }
}

/// A machine the entries know: its group (from its membership entry) and its sections.
#[derive(Debug, Default)]
struct Member<'a> {
    group: Option<&'a GroupName>,
    own: Option<ModeSections<'a>>,
}

/// Entries indexed for layering, built with one pass so a thousand machines cost a
/// thousand lookups, not a million.
#[derive(Debug, Default)]
pub struct EntryLayers<'a> {
    cluster: Option<ModeSections<'a>>,
    groups: HashMap<&'a str, ModeSections<'a>>,
    machines: BTreeMap<&'a str, Member<'a>>,
}

/// The catalogue entries record: the built-in sections selected (all, without a
/// [`Key::Catalogue`] entry) and the repo's own schemas.
pub fn catalogue_of<'a>(
    entries: impl IntoIterator<Item = (&'a Key, &'a EntryValue)>,
    diags: &mut Diagnostics,
) -> Catalogue {
    let mut only = None;
    let mut schemas = Vec::new();
    for (key, value) in entries {
        match (key, value) {
            (Key::Catalogue, EntryValue::Catalogue(spec)) => only = Some(spec.builtin.as_slice()),
            (Key::Schema(_), EntryValue::Schema(node)) => schemas.push(node),
            _ => {}
        }
    }
    Catalogue::from_stored(only, schemas, diags)
}

/// One effective section: its contents and the mode that defines it (`None`: the
/// factory default).
pub type Resolved<'a> = (&'a Node, Option<&'a Mode>);

fn add<'a>(slot: &mut Option<ModeSections<'a>>, mode: &'a Mode, name: &'a str, node: &'a Node) {
    slot.get_or_insert_with(|| ModeSections {
        mode,
        sections: HashMap::new(),
    })
    .sections
    .insert(name, node);
}

impl<'a> EntryLayers<'a> {
    /// Indexes entries (tombstones left out by the caller: pass live values only).
    pub fn new(entries: impl IntoIterator<Item = (&'a Key, &'a EntryValue)>) -> EntryLayers<'a> {
        let mut l = EntryLayers::default();
        for (key, value) in entries {
            match (key, value) {
                (Key::Machine(m), EntryValue::Machine(info)) => {
                    l.machines.entry(m.as_str()).or_default().group = Some(&info.group);
                }
                (Key::Section { mode, section }, EntryValue::Section(node)) => match mode {
                    Mode::Cluster => add(&mut l.cluster, mode, section, node),
                    Mode::Group(g) => {
                        l.groups
                            .entry(g.as_str())
                            .or_insert_with(|| ModeSections {
                                mode,
                                sections: HashMap::new(),
                            })
                            .sections
                            .insert(section, node);
                    }
                    Mode::Machine(m) => {
                        add(
                            &mut l.machines.entry(m.as_str()).or_default().own,
                            mode,
                            section,
                            node,
                        );
                    }
                },
                _ => {}
            }
        }
        l
    }

    /// The machines the entries know: members, and machines that define sections (a
    /// standalone agent's own settings).
    pub fn machines(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.machines.keys().copied()
    }

    /// True when the entries know `machine`.
    pub fn knows(&self, machine: &str) -> bool {
        self.machines.contains_key(machine)
    }

    /// The group of `machine`: its membership's, else `Main_Group`.
    pub fn group_of(&self, machine: &str) -> &str {
        self.machines
            .get(machine)
            .and_then(|m| m.group)
            .map_or(MAIN_GROUP, GroupName::as_str)
    }

    /// Every catalogue section of `machine`, resolved; empty when the entries do not
    /// know the machine.
    pub fn effective<'c: 'a>(
        &self,
        catalogue: &'c Catalogue,
        machine: &str,
    ) -> BTreeMap<&'c str, Resolved<'a>> {
        self.effective_of(
            catalogue,
            machine,
            catalogue.sections.keys().map(String::as_str),
        )
    }

    /// The sections called `names` (those the catalogue knows) of `machine`, resolved;
    /// empty when the entries do not know the machine. A plan asks only for the sections
    /// its actions touch.
    pub fn effective_of<'c: 'a, 'n>(
        &self,
        catalogue: &'c Catalogue,
        machine: &str,
        names: impl IntoIterator<Item = &'n str>,
    ) -> BTreeMap<&'c str, Resolved<'a>> {
        let Some(member) = self.machines.get(machine) else {
            return BTreeMap::new();
        };
        let chain: Vec<&ModeSections<'a>> = member
            .own
            .iter()
            .chain(self.groups.get(self.group_of(machine)))
            .chain(self.cluster.iter())
            .collect();
        names
            .into_iter()
            .filter_map(|name| catalogue.get(name))
            .map(|schema| (schema.name.as_str(), resolve_in(&chain, schema)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};
    use crate::plan::desired;

    const REPO: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53"; }
    users
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1" address="10.1.0.1" {
    users { user "x" role="operator"; }
}
machine "lab3" group="Paris" address="10.1.0.3" {
    interfaces { interface "Data1" address="10.1.0.3/24"; }
}
"#;

    #[test]
    fn entries_resolve_like_the_repo_they_came_from() {
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("r.kdl", REPO)], &mut diags);
        let cat = Catalogue::builtin();
        let d = desired(&repo, &cat);
        let layers = EntryLayers::new(d.iter());
        for m in ["lab1", "lab3"] {
            let from_repo = crate::resolve::effective(&repo, &cat, repo.machine(m).unwrap());
            let from_entries = layers.effective(&cat, m);
            assert_eq!(from_entries.len(), from_repo.sections.len());
            for (name, (node, mode)) in &from_entries {
                let r = &from_repo.sections[name];
                assert_eq!(*node, r.node, "{m} {name}");
                assert_eq!(*mode, r.origin.mode(), "{m} {name}");
            }
        }
        let lab3 = layers.effective(&cat, "lab3");
        assert_eq!(lab3["dns"].1, Some(&"group:Paris".parse().unwrap()));
        assert_eq!(lab3["interfaces"].1, Some(&"machine:lab3".parse().unwrap()));
        // users is cluster-only: lab1's own (invalid) definition does not count.
        assert_eq!(
            layers.effective(&cat, "lab1")["users"].1,
            Some(&Mode::Cluster)
        );
        assert!(layers.effective(&cat, "nobody").is_empty());
        assert_eq!(layers.group_of("lab3"), "Paris");
    }
}
