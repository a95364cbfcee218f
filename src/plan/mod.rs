//! Planning, pure: desired entries (from a repo) against live entries (from an agent) →
//! typed actions, the base versions they were computed against, which machines' effective
//! sections change and from which mode, and shadowing notices.
//!
//! Nothing here touches files, sockets or the clock: the CLI fetches the live entries and
//! reads the repo, the agent commits the result.

mod desired;
mod digests;
mod explain;
pub mod ownership;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use desired::{Entries, desired, membership};
pub use digests::{DigestDiff, Digests, changed_since, compare, diff_fetched, digests_of};
pub use render::render_human;

use crate::config::Diagnostics;
use crate::model::{EntryValue, Mode};
use crate::resolve::entries::{EntryLayers, catalogue_of};
use crate::schema::Catalogue;
use crate::state::{Base, Key, Live, Source, Writes};

/// What happens to one entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// The entry is new.
    Create {
        /// Its value.
        #[schemars(with = "serde_json::Value")]
        new: EntryValue,
    },
    /// The entry's value changes.
    Change {
        /// The live value.
        #[schemars(with = "serde_json::Value")]
        old: EntryValue,
        /// The desired value.
        #[schemars(with = "serde_json::Value")]
        new: EntryValue,
    },
    /// The repo no longer declares it: it becomes a tombstone.
    Remove {
        /// The live value.
        #[schemars(with = "serde_json::Value")]
        old: EntryValue,
    },
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Action {
    /// The entry.
    pub key: Key,
    /// What happens to it.
    #[serde(flatten)]
    pub change: Change,
}

impl Action {
    /// True when the action deletes something that exists (a section or a member).
    pub fn is_destructive(&self) -> bool {
        matches!(self.change, Change::Remove { .. })
    }

    /// The value written (`None`: a tombstone).
    pub fn new_value(&self) -> Option<&EntryValue> {
        match &self.change {
            Change::Create { new } | Change::Change { new, .. } => Some(new),
            Change::Remove { .. } => None,
        }
    }
}

/// One effective section of one machine that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SectionChange {
    /// The section.
    pub section: String,
    /// The mode that will define it (`None`: the factory default).
    pub from: Option<Mode>,
    /// The mode that defines it now (`None`: the factory default).
    pub was: Option<Mode>,
}

/// A machine whose effective config changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MachineChange {
    /// The machine.
    pub machine: String,
    /// True when the live state does not know the machine yet.
    pub new: bool,
    /// Its sections that change.
    pub sections: Vec<SectionChange>,
}

/// The sections whose reset to the factory default on the machine an apply runs through
/// is a [`Hazard`]: on an appliance they carry its addresses, so the agent the operator
/// is talking to would drop off the network.
pub const OWN_NETWORK_SECTIONS: &[&str] = &["interfaces"];

/// Something a plan does that can cut the cluster off from a machine, or the operator
/// off from the machine the apply runs through. An `apply` does not do these on `--yes`
/// alone: each needs its own explicit consent (the CLI's `--allow-…` flags), because a
/// mistake in the repo (a `machines/` directory that was not read, say) looks exactly
/// like an intended removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "hazard", rename_all = "kebab-case")]
pub enum Hazard {
    /// A member of the cluster is removed from the membership.
    RemovesMember {
        /// The machine removed.
        machine: String,
        /// True when it is the machine the apply runs through (the agent's own).
        applying: bool,
    },
    /// After the apply no administrator can log in: the last administrator with a
    /// passphrase hash or a key loses it, is locked, or is removed.
    RemovesAdminCredential {
        /// The entry that does it (`cluster/users`).
        key: String,
    },
    /// The applying machine's own network section goes back to the factory default.
    ResetsOwnNetwork {
        /// The machine (the agent's own).
        machine: String,
        /// The section (see [`OWN_NETWORK_SECTIONS`]).
        section: String,
        /// The mode that defines it now.
        was: Mode,
    },
}

impl std::fmt::Display for Hazard {
    /// One line saying what happens, for people.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hazard::RemovesMember {
                machine,
                applying: false,
            } => write!(f, "removes machine {machine} from the cluster"),
            Hazard::RemovesMember {
                machine,
                applying: true,
            } => write!(
                f,
                "removes machine {machine} from the cluster: the machine this apply runs through"
            ),
            Hazard::RemovesAdminCredential { key } => write!(
                f,
                "leaves no administrator able to log in ({key} keeps no administrator with a passphrase or a key)"
            ),
            Hazard::ResetsOwnNetwork {
                machine,
                section,
                was,
            } => write!(
                f,
                "resets {section} of {machine}, the machine this apply runs through, to the \
                 factory default (now defined at {was}): its addresses change"
            ),
        }
    }
}

/// A changed section that lower modes override, so the change does not reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shadow {
    /// The changed section's key.
    pub key: Key,
    /// The lower modes that define the section themselves.
    pub by: Vec<Mode>,
}

/// A change at a mode that does not reach one machine: a lower level sets the section
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unreached {
    /// The machine.
    pub machine: String,
    /// The section.
    pub section: String,
    /// The mode the plan changes it at.
    pub changed_at: Mode,
    /// The lower mode that sets it for the machine, before and after.
    pub set_by: Mode,
}

/// Where the desired state came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Origin {
    /// A git commit, or the CLI (a working tree).
    pub source: Source,
    /// The commit's author (or the local user).
    pub author: String,
    /// The commit message (or a description).
    pub message: String,
}

/// A plan: what applying it does, and what it was computed against. Saved with
/// `plan --out` and loaded by `apply --plan`; the format is this struct as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// The saved-plan format version.
    pub format: u32,
    /// Where the desired state came from.
    pub origin: Origin,
    /// Entry changes, in key order.
    pub actions: Vec<Action>,
    /// The live version of every key an action writes, as seen when planning.
    pub base: Base,
    /// Machines whose effective config changes.
    pub machines: Vec<MachineChange>,
    /// Changes that lower modes shadow.
    pub shadows: Vec<Shadow>,
    /// Per machine, the changes that do not reach it and the level that sets the
    /// section instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreached: Vec<Unreached>,
    /// What the plan keeps of, or replaces on, the state the cluster owns (see
    /// [`ownership`]), for people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The saved-plan format this build writes and reads (2: typed entry values).
pub const PLAN_FORMAT: u32 = 2;

impl Plan {
    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// What applying this plan through the agent of machine `applying` does that needs
    /// more than `--yes` (see [`Hazard`]): members removed, and the applying machine's
    /// own network sections reset to the factory default.
    pub fn hazards(&self, applying: &str) -> Vec<Hazard> {
        let mut out: Vec<Hazard> = self
            .actions
            .iter()
            .filter_map(|a| match (&a.key, &a.change) {
                (Key::Machine(m), Change::Remove { .. }) => Some(Hazard::RemovesMember {
                    machine: m.to_string(),
                    applying: m.as_str() == applying,
                }),
                (
                    Key::Section { section, .. },
                    Change::Change { old, .. } | Change::Remove { old },
                ) if section.as_str() == "users" => {
                    let node = |v: Option<&EntryValue>| match v {
                        Some(EntryValue::Section(n)) => Some(n.clone()),
                        _ => None,
                    };
                    let before = ownership::has_admin_credential(node(Some(old)).as_ref());
                    let after = ownership::has_admin_credential(node(a.new_value()).as_ref());
                    (before && !after).then(|| Hazard::RemovesAdminCredential {
                        key: a.key.to_string(),
                    })
                }
                _ => None,
            })
            .collect();
        for m in self.machines.iter().filter(|m| m.machine == applying) {
            for s in &m.sections {
                if let (None, Some(was)) = (&s.from, &s.was)
                    && OWN_NETWORK_SECTIONS.contains(&s.section.as_str())
                {
                    out.push(Hazard::ResetsOwnNetwork {
                        machine: m.machine.clone(),
                        section: s.section.clone(),
                        was: was.clone(),
                    });
                }
            }
        }
        out
    }

    /// A key two actions write, if any: a plan has one action per entry, and a saved one
    /// that has more was edited (which of them would win is not for a map to decide).
    pub fn duplicate_key(&self) -> Option<&Key> {
        let mut seen = std::collections::BTreeSet::new();
        self.actions
            .iter()
            .map(|a| &a.key)
            .find(|k| !seen.insert(*k))
    }

    /// What applying writes: key → value (`None`: a tombstone).
    pub fn writes(&self) -> Writes {
        self.actions
            .iter()
            .map(|a| (a.key.clone(), a.new_value().cloned()))
            .collect()
    }
}

/// Plans the change from `live` to `desired`, which was validated with `catalogue`. The
/// machines' effective configs before are resolved with the catalogue the live entries
/// record, after with `catalogue`: a changed factory default shows as a change.
pub fn diff(desired: &Entries, catalogue: &Catalogue, live: &Live, origin: Origin) -> Plan {
    let live_values: BTreeMap<&Key, &EntryValue> = live
        .iter()
        .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v)))
        .collect();
    plan_against(desired, catalogue, live_values, live, origin)
}

/// [`diff`] against the live values `live_values` (tombstones left out), with `versions`
/// holding the live entry, tombstone or value, of at least every key an action writes:
/// the plan's base is read from it.
fn plan_against(
    desired: &Entries,
    catalogue: &Catalogue,
    live_values: BTreeMap<&Key, &EntryValue>,
    versions: &Live,
    origin: Origin,
) -> Plan {
    let (desired, notes) = ownership_applied(desired, catalogue, &live_values);
    let desired: &Entries = &desired;
    let mut actions = Vec::new();
    for (key, new) in desired {
        match live_values.get(key) {
            None => actions.push(Action {
                key: key.clone(),
                change: Change::Create { new: new.clone() },
            }),
            Some(old) if *old != new => actions.push(Action {
                key: key.clone(),
                change: Change::Change {
                    old: (*old).clone(),
                    new: new.clone(),
                },
            }),
            Some(_) => {}
        }
    }
    for (key, old) in &live_values {
        if key.is_declared_by_repos() && !desired.contains_key(*key) {
            actions.push(Action {
                key: (*key).clone(),
                change: Change::Remove {
                    old: (*old).clone(),
                },
            });
        }
    }
    actions.sort_by(|a, b| a.key.cmp(&b.key));
    // A note about an entry the plan does not touch would be noise on every plan.
    let notes = notes
        .into_iter()
        .filter(|(k, _)| actions.iter().any(|a| a.key == *k))
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let base = actions
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                versions.get(&a.key).map(|e| e.stamp.version.clone()),
            )
        })
        .collect();
    let machines = machine_changes(desired, catalogue, &live_values, &actions);
    let shadows = explain::shadows(desired, &actions);
    let unreached = explain::unreached(desired, &actions);
    Plan {
        format: PLAN_FORMAT,
        origin,
        actions,
        base,
        machines,
        shadows,
        unreached,
        notes,
    }
}

/// The desired entries as applying them over `live` writes them (see [`ownership`]):
/// each with what the cluster owns kept, plus what must remain of live entries the repo
/// does not declare; and a note for each passphrase hash kept from, or replaced on, the
/// cluster. Borrowed when nothing changes.
fn ownership_applied<'a>(
    desired: &'a Entries,
    catalogue: &Catalogue,
    live: &BTreeMap<&Key, &EntryValue>,
) -> (std::borrow::Cow<'a, Entries>, Vec<(Key, String)>) {
    let mut notes = Vec::new();
    let mut adjusted: Vec<(Key, EntryValue)> = Vec::new();
    for (key, new) in desired {
        let old = live.get(key).copied();
        let kept = ownership::over_live(key, new, old);
        if let (Some(EntryValue::Section(old)), EntryValue::Section(n)) = (old, &kept) {
            let replaced = ownership::replaced_hashes(old, n);
            if !replaced.is_empty() {
                notes.push((
                    key.clone(),
                    format!(
                        "the repo sets the passphrase hash of {}, replacing the one set on the cluster",
                        replaced.join(", ")
                    ),
                ));
            }
        }
        if kept != *new {
            adjusted.push((key.clone(), kept));
        }
    }
    for (key, old) in live {
        if key.is_declared_by_repos()
            && !desired.contains_key(*key)
            && let Some(kept) = ownership::without_repo(key, old, catalogue)
        {
            adjusted.push(((*key).clone(), kept));
        }
    }
    for (key, _) in adjusted
        .iter()
        .filter(|(k, _)| matches!(k, Key::Section { .. }))
    {
        notes.push((
            key.clone(),
            "keeps the passphrase hashes set on the cluster (`strata cluster passwd`) for the users the repo gives none".to_owned(),
        ));
    }
    if adjusted.is_empty() {
        return (std::borrow::Cow::Borrowed(desired), notes);
    }
    let mut out = desired.clone();
    out.extend(adjusted);
    (std::borrow::Cow::Owned(out), notes)
}

fn machine_changes(
    desired: &Entries,
    catalogue: &Catalogue,
    live: &BTreeMap<&Key, &EntryValue>,
    actions: &[Action],
) -> Vec<MachineChange> {
    if actions.is_empty() {
        return Vec::new();
    }
    let live_catalogue = catalogue_of(
        live.iter().map(|(k, v)| (*k, *v)),
        &mut Diagnostics::default(),
    );
    let after = EntryLayers::new(desired.iter());
    let before = EntryLayers::new(live.iter().map(|(k, v)| (*k, *v)));
    let machines: BTreeSet<&str> = after.machines().chain(before.machines()).collect();
    // What the actions can change: the sections they write, on every machine — or every
    // section, where the catalogue changes (factory defaults) or a machine's membership
    // does (its group). A thousand-machine plan resolves only what it must.
    let catalogue_changes = actions
        .iter()
        .any(|a| matches!(a.key, Key::Catalogue | Key::Schema(_)));
    let written: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match &a.key {
            Key::Section { section, .. } => Some(section.as_str()),
            _ => None,
        })
        .collect();
    let moved: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match &a.key {
            Key::Machine(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    let every: BTreeSet<&str> = catalogue.names().chain(live_catalogue.names()).collect();
    let mut out = Vec::new();
    for m in machines {
        let names = if catalogue_changes || moved.contains(m) {
            &every
        } else {
            &written
        };
        let a = after.effective_of(catalogue, m, names.iter().copied());
        let b = before.effective_of(&live_catalogue, m, names.iter().copied());
        let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
        // A machine that arrives or leaves lists the sections modes define for it; one
        // that stays also lists factory defaults that change (a schema's new default).
        let stays = after.knows(m) && before.knows(m);
        let sections: Vec<SectionChange> = names
            .into_iter()
            .filter(|s| a.get(s).map(|x| x.0) != b.get(s).map(|x| x.0))
            .filter(|s| {
                stays
                    || a.get(s).is_some_and(|x| x.1.is_some())
                    || b.get(s).is_some_and(|x| x.1.is_some())
            })
            .map(|s| SectionChange {
                section: s.to_owned(),
                from: a.get(s).and_then(|x| x.1.cloned()),
                was: b.get(s).and_then(|x| x.1.cloned()),
            })
            .collect();
        if !sections.is_empty() {
            out.push(MachineChange {
                machine: m.to_owned(),
                new: !before.knows(m),
                sections,
            });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};
    use crate::state::{ChangeMeta, MemoryStore, Proposal, Store};

    pub(super) fn entries(text: &str) -> Entries {
        let mut diags = Diagnostics::default();
        desired(
            &parse_files(vec![SourceFile::new("r.kdl", text)], &mut diags),
            &Catalogue::builtin(),
        )
    }

    /// Plans against the built-in catalogue.
    fn diff(desired: &Entries, live: &Live, origin: Origin) -> Plan {
        super::diff(desired, &Catalogue::builtin(), live, origin)
    }

    pub(super) fn origin() -> Origin {
        Origin {
            source: Source::Cli,
            author: "alice".into(),
            message: "test".into(),
        }
    }

    pub fn apply(store: &mut MemoryStore, plan: &Plan, hlc: u64) {
        store
            .commit(Proposal {
                writes: plan.writes(),
                base: plan.base.clone(),
                meta: ChangeMeta {
                    author: "alice".into(),
                    user: "alice".into(),
                    host: "lab1".into(),
                    source: Source::Cli,
                    message: "t".into(),
                    origin_kind: Default::default(),
                },
                version: crate::state::tests::version(hlc, "lab1"),
                wall_ms: hlc,
                settles: Vec::new(),
            })
            .unwrap();
    }

    /// A cluster with dns and ntp, Paris overriding dns, machines lab1 and lab3 (Paris).
    pub(crate) const V1: &str = r#"
cluster "americas" { dns { server "10.0.0.53"; }; ntp { server "ntp1"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1"
machine "lab3" group="Paris"
"#;
    const V2: &str = r#"
cluster "americas" { dns { server "10.0.0.99"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1"
machine "lab3" group="Paris"
machine "lab4" group="Paris"
"#;

    #[test]
    fn plan_apply_plan_reaches_a_fixed_point() {
        let mut store = MemoryStore::default();
        let p1 = diff(&entries(V1), &store.live().unwrap(), origin());
        assert!(
            p1.actions
                .iter()
                .all(|a| matches!(a.change, Change::Create { .. }))
        );
        assert!(p1.base.values().all(Option::is_none));
        apply(&mut store, &p1, 1);
        assert!(diff(&entries(V1), &store.live().unwrap(), origin()).is_empty());

        let p2 = diff(&entries(V2), &store.live().unwrap(), origin());
        let summary: Vec<(String, bool)> = p2
            .actions
            .iter()
            .map(|a| (a.key.to_string(), a.is_destructive()))
            .collect();
        assert_eq!(
            summary,
            [
                ("@machine:lab4".to_owned(), false),
                ("cluster/dns".to_owned(), false),
                ("cluster/ntp".to_owned(), true)
            ]
        );
        // The base names the versions the plan saw; a created key saw nothing.
        assert!(p2.base[&"@machine:lab4".parse::<Key>().unwrap()].is_none());
        assert!(p2.base[&"cluster/dns".parse::<Key>().unwrap()].is_some());
        // Paris overrides dns: the cluster's change does not reach it.
        assert_eq!(p2.shadows.len(), 1);
        assert_eq!(p2.shadows[0].by, ["group:Paris".parse::<Mode>().unwrap()]);
        // lab1 gets the new dns and loses ntp; lab3 loses ntp; lab4 is new.
        let m: Vec<(String, Vec<String>)> = p2
            .machines
            .iter()
            .map(|m| {
                (
                    m.machine.clone(),
                    m.sections.iter().map(|s| s.section.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            m,
            [
                ("lab1".to_owned(), vec!["dns".to_owned(), "ntp".to_owned()]),
                ("lab3".to_owned(), vec!["ntp".to_owned()]),
                ("lab4".to_owned(), vec!["dns".to_owned()]),
            ]
        );
        apply(&mut store, &p2, 2);
        assert!(diff(&entries(V2), &store.live().unwrap(), origin()).is_empty());
        // A tombstone stays in the store but counts as absent.
        assert_eq!(
            store.live().unwrap()[&"cluster/ntp".parse::<Key>().unwrap()].value,
            None
        );
        assert_eq!(
            diff(&entries(V1), &store.live().unwrap(), origin())
                .actions
                .len(),
            3
        );
    }

    #[test]
    fn removing_members_or_the_applying_machines_interfaces_is_a_hazard() {
        const BEFORE: &str = r#"
cluster "americas" { dns { server "10.0.0.53"; } }
group "Main_Group"
machine "lab1" { interfaces { interface "Data1" address="10.1.0.1/24" hostname="lab1"; } }
machine "lab2" { interfaces { interface "Data1" address="10.1.0.2/24" hostname="lab2"; } }
"#;
        let mut store = MemoryStore::default();
        apply(
            &mut store,
            &diff(&entries(BEFORE), &Live::new(), origin()),
            1,
        );
        let live = store.live().unwrap();
        // The repo as read when `machines/` was skipped: no machine at all.
        let gone = diff(
            &entries(
                "cluster \"americas\" { dns { server \"10.0.0.53\"; } }\ngroup \"Main_Group\"\n",
            ),
            &live,
            origin(),
        );
        let hazards: Vec<String> = gone.hazards("lab1").iter().map(|h| h.to_string()).collect();
        assert_eq!(
            hazards,
            [
                "removes machine lab1 from the cluster: the machine this apply runs through",
                "removes machine lab2 from the cluster",
                "resets interfaces of lab1, the machine this apply runs through, to the factory default (now defined at machine:lab1): its addresses change",
            ]
        );
        // Only the applying machine's interfaces count; an ordinary change is no hazard.
        let lab2_bare = BEFORE.replace(
            "machine \"lab2\" { interfaces { interface \"Data1\" address=\"10.1.0.2/24\" hostname=\"lab2\"; } }",
            "machine \"lab2\"",
        );
        let plan = diff(&entries(&lab2_bare), &live, origin());
        assert!(!plan.is_empty());
        assert!(plan.hazards("lab1").is_empty());
        assert_eq!(plan.hazards("lab2").len(), 1);
        let v = serde_json::to_value(&gone.hazards("lab1")[1]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"hazard": "removes-member", "machine": "lab2", "applying": false})
        );
    }

    #[test]
    fn a_plan_renders_diffs_machines_and_notices() {
        let mut store = MemoryStore::default();
        apply(&mut store, &diff(&entries(V1), &Live::new(), origin()), 1);
        let plan = diff(&entries(V2), &store.live().unwrap(), origin());
        insta::assert_snapshot!(render_human(&plan), @r#"
        desired: cli by alice: test

        + @machine:lab4 (created)
          + machine lab4 address=lab4 declared="true" group=Paris

        ~ cluster/dns (changed)
          @@ -1,3 +1,3 @@
           dns {
          -    server "10.0.0.53"
          +    server "10.0.0.99"
           }

        - cluster/ntp (removed)
          - ntp {
          -     server ntp1
          - }

        machines whose effective config changes:
          lab1
              dns  from cluster
              ntp  from factory default (was cluster)
          lab4: new machine, 1 section defined
          lab3
              ntp  from factory default (was cluster)

        changes that do not reach these machines (a lower level sets the section):
          lab3, lab4
              dns  changed at cluster, set by group:Paris

        note: cluster/dns will not affect these modes, which define their own: group:Paris

        plan: 1 to create, 1 to change, 1 to remove
        "#);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["actions"][0]["action"], "create");
        assert_eq!(json["actions"][0]["key"], "@machine:lab4");
    }

    #[test]
    fn a_plan_with_two_actions_for_one_key_is_found_out() {
        let mut plan = diff(&entries(V1), &Live::new(), origin());
        assert_eq!(plan.duplicate_key(), None);
        let again = plan.actions[0].clone();
        plan.actions.push(again);
        assert_eq!(plan.duplicate_key(), Some(&plan.actions[0].key));
    }

    #[test]
    fn a_saved_plan_round_trips_through_json() {
        let plan = diff(&entries(V1), &Live::new(), origin());
        let text = serde_json::to_string(&plan).unwrap();
        let back: Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plan);
    }
}
