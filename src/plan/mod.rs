//! Planning, pure: desired entries (from a repo) against live entries (from an agent) →
//! typed actions, the base versions they were computed against, which machines' effective
//! sections change and from which mode, and shadowing notices.
//!
//! Nothing here touches files, sockets or the clock: the CLI fetches the live entries and
//! reads the repo, the agent commits the result.

mod desired;
mod digests;
mod explain;
mod machines;
pub mod ownership;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use desired::{Entries, desired, membership};
pub use digests::{DigestDiff, Digests, changed_since, compare, diff_fetched, digests_of};
pub use render::render_human;

use crate::model::{EntryValue, Mode};
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
    /// The member's old name, when the plan renames it (`was=`): its sections are
    /// compared with what it ran under that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
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
        let renamed = self.renamed();
        let mut out: Vec<Hazard> = self
            .actions
            .iter()
            .filter_map(|a| match (&a.key, &a.change) {
                (Key::Machine(m), Change::Remove { .. }) if renamed.contains(m.as_str()) => None,
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
        let applying_renamed = renamed.contains(applying);
        for m in self
            .machines
            .iter()
            .filter(|m| m.machine == applying && !applying_renamed)
        {
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

    /// The members this plan renames (`was=` in the repo): their old names, whose
    /// membership it removes while it writes their host key under a new name.
    fn renamed(&self) -> BTreeSet<&str> {
        machines::renames(&self.actions).into_values().collect()
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
    let mut notes: Vec<String> = notes
        .into_iter()
        .filter(|(k, _)| actions.iter().any(|a| a.key == *k))
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if !actions.is_empty()
        && let Some(waves) = staged_in(&live_values)
    {
        notes.push(format!(
            "applied, this rolls out in waves (the cluster's `rollout` section), each once the last one ran it clean: {waves}"
        ));
    }
    let base = actions
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                versions.get(&a.key).map(|e| e.stamp.version.clone()),
            )
        })
        .collect();
    let machines = machines::machine_changes(desired, catalogue, &live_values, &actions);
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

/// The waves an apply against `live` is staged in, as one line, if the cluster
/// declares a rollout ([`crate::rollout`]).
fn staged_in(live: &BTreeMap<&Key, &EntryValue>) -> Option<String> {
    let key = Key::section(
        Mode::Cluster,
        crate::model::SectionName::new(crate::rollout::SECTION).ok()?,
    );
    let EntryValue::Section(section) = live.get(&key)? else {
        return None;
    };
    let spec = crate::rollout::spec(section).ok()?;
    let members: Vec<_> = live
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Key::Machine(m), EntryValue::Machine(info)) => Some((m.clone(), info.group.clone())),
            _ => None,
        })
        .collect();
    let waves = crate::rollout::resolve(&spec, &members);
    (waves.len() > 1).then(|| {
        waves
            .iter()
            .map(|w| {
                let names: Vec<&str> = w.machines.iter().map(|m| m.as_str()).collect();
                format!("{}: {}", w.name, names.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
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
        let old = ownership::live_under_rename(key, new, |k| live.get(k).copied());
        let kept = ownership::over_live(key, new, old);
        if let (EntryValue::Machine(d), None) = (new, live.get(key))
            && let Some(was) = &d.was
            && old.is_some()
        {
            notes.push((
                key.clone(),
                format!("renamed from {was}: the member keeps its host key, group facts and history, and its agent restarts under the new name"),
            ));
        }
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

#[cfg(test)]
#[path = "tests.rs"]
pub(crate) mod tests;
