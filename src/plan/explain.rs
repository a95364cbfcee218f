//! Why a change reaches some machines and not others: the lower modes that shadow a
//! changed section ([`shadows`]) and, per machine, the change that does not reach it and
//! the level that sets the section instead ([`unreached`]) — what `plan` prints under
//! the effective changes, so every line of a plan is explained.

use std::collections::BTreeMap;

use super::{Action, Entries, Shadow, Unreached};
use crate::model::{EntryValue, Key, Mode};

/// Machine → its group, as the desired entries say.
fn groups(desired: &Entries) -> BTreeMap<&str, &str> {
    desired
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Key::Machine(m), EntryValue::Machine(info)) => Some((m.as_str(), info.group.as_str())),
            _ => None,
        })
        .collect()
}

/// The section changes at cluster or group level that is not a removal: the ones lower
/// modes can shadow.
fn shadowable(actions: &[Action]) -> impl Iterator<Item = (&Mode, &str)> {
    actions
        .iter()
        .filter(|a| !a.is_destructive())
        .filter_map(|a| match &a.key {
            Key::Section { mode, section } if !matches!(mode, Mode::Machine(_)) => {
                Some((mode, section.as_str()))
            }
            _ => None,
        })
}
/// Each changed section at cluster or group level that lower modes define themselves,
/// with those modes.
pub(super) fn shadows(desired: &Entries, actions: &[Action]) -> Vec<Shadow> {
    let group_of: BTreeMap<&str, &str> = desired
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Key::Machine(m), EntryValue::Machine(info)) => Some((m.as_str(), info.group.as_str())),
            _ => None,
        })
        .collect();
    // Section name → the modes that define it, built once: a thousand-machine plan
    // must not scan every entry for every action.
    let mut definers: BTreeMap<&str, Vec<&Mode>> = BTreeMap::new();
    for key in desired.keys() {
        if let Key::Section { mode, section } = key {
            definers.entry(section.as_str()).or_default().push(mode);
        }
    }
    let mut out = Vec::new();
    for a in actions.iter().filter(|a| !a.is_destructive()) {
        let Key::Section { mode, section } = &a.key else {
            continue;
        };
        if *mode == Mode::Cluster || matches!(mode, Mode::Group(_)) {
            let below = |m: &Mode| match (mode, m) {
                (Mode::Cluster, Mode::Group(_) | Mode::Machine(_)) => true,
                (Mode::Group(g), Mode::Machine(name)) => {
                    group_of.get(name.as_str()) == Some(&g.as_str())
                }
                _ => false,
            };
            let by: Vec<Mode> = definers
                .get(section.as_str())
                .into_iter()
                .flatten()
                .filter(|m| below(m))
                .map(|m| (*m).clone())
                .collect();
            if !by.is_empty() {
                out.push(Shadow {
                    key: a.key.clone(),
                    by,
                });
            }
        }
    }
    out
}

/// Per machine the change reaches by level (every machine for the cluster, its machines
/// for a group), the section changes it does not get because a lower level defines the
/// section for it: its own machine level, or (for a cluster change) its group.
pub(super) fn unreached(desired: &Entries, actions: &[Action]) -> Vec<Unreached> {
    let group_of = groups(desired);
    let mut out = Vec::new();
    for (mode, section) in shadowable(actions) {
        let defines = |m: Mode| {
            crate::model::SectionName::new(section)
                .is_ok_and(|s| desired.contains_key(&Key::section(m, s)))
        };
        for (&machine, &group) in &group_of {
            let reached = match mode {
                Mode::Group(g) => g.as_str() == group,
                _ => true,
            };
            if !reached {
                continue;
            }
            let own = crate::model::MachineName::new(machine).map(Mode::Machine);
            let in_group = crate::model::GroupName::new(group).map(Mode::Group);
            let set_by = match (own, in_group) {
                (Ok(own), _) if defines(own.clone()) => own,
                (_, Ok(g)) if *mode == Mode::Cluster && defines(g.clone()) => g,
                _ => continue,
            };
            out.push(Unreached {
                machine: machine.to_owned(),
                section: section.to_owned(),
                changed_at: mode.clone(),
                set_by,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{entries, origin};
    use crate::schema::Catalogue;
    use crate::state::Live;

    #[test]
    fn every_machine_a_change_does_not_reach_is_named_with_what_sets_it() {
        let desired = entries(
            r#"
cluster "c" { dns { server "10.0.0.53"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1"
machine "lab3" group="Paris"
machine "lab4" group="Paris" { dns { server "192.0.2.54"; } }
"#,
        );
        let plan = crate::plan::diff(&desired, &Catalogue::builtin(), &Live::new(), origin());
        let lines: Vec<String> = plan
            .unreached
            .iter()
            .map(|u| {
                format!(
                    "{} {} at {} by {}",
                    u.machine, u.section, u.changed_at, u.set_by
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "lab3 dns at cluster by group:Paris",
                "lab4 dns at cluster by machine:lab4",
                "lab4 dns at group:Paris by machine:lab4",
            ]
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["unreached"][0]["set_by"], "group:Paris", "{json}");
    }
}
