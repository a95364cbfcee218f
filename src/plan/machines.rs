//! Which machines' effective configs a plan changes, section by section, and from which
//! mode: resolved before and after on every machine the actions can reach, and only the
//! sections they can change. A renamed member is compared with itself under its old name.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Entries, MachineChange, SectionChange};
use crate::config::Diagnostics;
use crate::model::EntryValue;
use crate::resolve::entries::{EntryLayers, catalogue_of};
use crate::schema::Catalogue;
use crate::state::Key;

pub(super) fn machine_changes(
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
    let renamed = renames(actions);
    let old_names: BTreeSet<&str> = renamed.values().copied().collect();
    let machines: BTreeSet<&str> = after
        .machines()
        .chain(before.machines())
        .filter(|m| !old_names.contains(m))
        .collect();
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
        let was = renamed.get(m).copied();
        let a = after.effective_of(catalogue, m, names.iter().copied());
        let b = before.effective_of(&live_catalogue, was.unwrap_or(m), names.iter().copied());
        let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
        // A machine that arrives or leaves lists the sections modes define for it; one
        // that stays also lists factory defaults that change (a schema's new default).
        let stays = was.is_some() || (after.knows(m) && before.knows(m));
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
        if !sections.is_empty() || was.is_some() {
            out.push(MachineChange {
                machine: m.to_owned(),
                new: was.is_none() && !before.knows(m),
                renamed_from: was.map(str::to_owned),
                sections,
            });
        }
    }
    out
}

/// The members `actions` rename (new name → old name): a membership removed while the
/// same host key is written under another name (`was=` in the repo).
pub(super) fn renames(actions: &[Action]) -> BTreeMap<&str, &str> {
    fn key_of(v: Option<&EntryValue>) -> Option<&str> {
        match v {
            Some(EntryValue::Machine(m)) => m.host_key.as_deref(),
            _ => None,
        }
    }
    let written: BTreeMap<&str, &str> = actions
        .iter()
        .filter_map(|a| match &a.key {
            Key::Machine(m) => key_of(a.new_value()).map(|k| (k, m.as_str())),
            _ => None,
        })
        .collect();
    actions
        .iter()
        .filter_map(|a| match (&a.key, &a.change) {
            (Key::Machine(old), super::Change::Remove { old: value }) => key_of(Some(value))
                .and_then(|k| written.get(k))
                .map(|new| (*new, old.as_str())),
            _ => None,
        })
        .collect()
}
