//! Staged rollouts, pure: the cluster's `rollout` section (waves of machines, the pause
//! between them, the gate's timeout, what a failed gate does), the waves a change set is
//! staged in, how far each staged change set got (from the change sets that release its
//! waves, halt it or revert it), and the view a machine whose wave is not reached yet
//! runs: the live entries with the staged change set's writes held back.
//!
//! No controller: the machine that took a staged change set drives its waves, committing
//! a change set per wave it releases (or one that halts it); every machine reads the same
//! history and so agrees on how far the rollout got. Stores hold the staged change set
//! everywhere from the start — replication, `check` and digests are unchanged — and only
//! what a machine runs waits for its wave.

use std::collections::BTreeMap;

use crate::model::{Confirm, GroupName, Key, MachineName, Node, Rollout, Value, Version, Wave};
use crate::state::{ChangeSet, Entry, Live};

/// The section that declares the waves.
pub const SECTION: &str = "rollout";

/// The cluster's `rollout` section, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Each wave's name, machines and groups (none of either: the rest).
    pub waves: Vec<(String, Vec<String>, Vec<String>)>,
    /// The pause between a gate passing and the next release (ms).
    pub pause_ms: u64,
    /// How long a gate waits for its wave's machines (ms).
    pub gate_timeout_ms: u64,
    /// Whether a failed gate also reverts the waves already done.
    pub revert_on_failure: bool,
}

/// Reads a `rollout` section (as the schema checked it).
pub fn spec(section: &Node) -> Result<Spec, String> {
    let duration = |name: &str, default: &str| -> Result<u64, String> {
        let text = section
            .prop(name)
            .and_then(Value::as_str)
            .unwrap_or(default);
        crate::config::agent_kdl::parse_duration(text)
            .map(|d| d.as_millis() as u64)
            .map_err(|_| format!("rollout {name}=\"{text}\" is not a duration (30s, 5m, 1h30m)"))
    };
    let waves = section
        .children
        .iter()
        .filter(|c| c.name == "wave")
        .map(|w| {
            let names = |kind: &str| -> Vec<String> {
                w.children
                    .iter()
                    .filter(|c| c.name == kind)
                    .filter_map(|c| c.args.first()?.as_str().map(str::to_owned))
                    .collect()
            };
            let name = w.args.first().and_then(Value::as_str).unwrap_or_default();
            (name.to_owned(), names("machine"), names("group"))
        })
        .collect();
    Ok(Spec {
        waves,
        pause_ms: duration("pause", "0s")?,
        gate_timeout_ms: duration("gate-timeout", "60s")?,
        revert_on_failure: section.prop("on-failure").and_then(Value::as_str) == Some("revert"),
    })
}

/// The waves of `spec` over the members `members` (name and group): each machine in the
/// first wave that names it or its group; the rest in the wave that names none, or in a
/// last wave `rest`. Waves left empty are dropped.
pub fn resolve(spec: &Spec, members: &[(MachineName, GroupName)]) -> Vec<Wave> {
    let mut placed: BTreeMap<&MachineName, usize> = BTreeMap::new();
    for (i, (_, machines, groups)) in spec.waves.iter().enumerate() {
        for (m, g) in members {
            let named =
                machines.iter().any(|n| n == m.as_str()) || groups.iter().any(|n| n == g.as_str());
            if named {
                placed.entry(m).or_insert(i);
            }
        }
    }
    let rest = spec
        .waves
        .iter()
        .position(|(_, m, g)| m.is_empty() && g.is_empty())
        .unwrap_or(spec.waves.len());
    let mut waves: Vec<Wave> = spec
        .waves
        .iter()
        .map(|(name, _, _)| Wave {
            name: name.clone(),
            machines: Vec::new(),
        })
        .collect();
    if rest == waves.len() {
        waves.push(Wave {
            name: "rest".into(),
            machines: Vec::new(),
        });
    }
    for (m, _) in members {
        let at = placed.get(m).copied().unwrap_or(rest);
        waves[at].machines.push(m.clone());
    }
    waves.retain(|w| !w.machines.is_empty());
    waves
}

/// How far one staged change set got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The staged change set.
    pub version: Version,
    /// Its waves.
    pub waves: Vec<Wave>,
    /// How many waves run it (the first from the start).
    pub released: usize,
    /// When the last wave was released (wall ms of the change set that released it).
    pub released_at_ms: u64,
    /// The change set that released the last wave (the staged one, for the first): what
    /// that wave's machines ran it with.
    pub released_by: Version,
    /// The wave whose gate failed, and why.
    pub halted: Option<(usize, String)>,
    /// Reverted (a failed gate with `on-failure "revert"`, or commit confirmed).
    pub reverted: bool,
    /// The pause between waves (ms).
    pub pause_ms: u64,
    /// The gate's timeout (ms).
    pub gate_timeout_ms: u64,
    /// Whether a failed gate reverts.
    pub revert_on_failure: bool,
}

impl Progress {
    /// Every wave runs it.
    pub fn finished(&self) -> bool {
        self.released >= self.waves.len()
    }

    /// Still moving: neither finished, halted nor reverted.
    pub fn moving(&self) -> bool {
        !self.finished() && self.halted.is_none() && !self.reverted
    }

    /// Whether `machine` waits for its wave: the waves it may still reach are not
    /// released (a machine in no wave, one that joined since, is in the last).
    pub fn holds_back(&self, machine: &MachineName) -> bool {
        if self.finished() || self.reverted {
            return false;
        }
        let wave = self
            .waves
            .iter()
            .position(|w| w.machines.contains(machine))
            .unwrap_or(self.waves.len().saturating_sub(1));
        wave >= self.released
    }

    /// One line for people: `wave 2 of 3 (paris: lab3, lab4)`, `halted at wave 2 …`.
    pub fn describe(&self) -> String {
        let wave = |i: usize| {
            self.waves.get(i).map_or(String::new(), |w| {
                let names: Vec<&str> = w.machines.iter().map(MachineName::as_str).collect();
                format!("{}: {}", w.name, names.join(", "))
            })
        };
        let n = self.waves.len();
        match (&self.halted, self.reverted, self.finished()) {
            (Some((at, why)), reverted, _) => format!(
                "halted at wave {} of {n} ({}): {why}{}",
                at + 1,
                wave(*at),
                if reverted { "; reverted" } else { "" }
            ),
            (None, true, _) => "reverted".to_owned(),
            (None, _, true) => format!("every wave done ({n})"),
            (None, _, false) => format!(
                "wave {} of {n} ({}) running; next: {}",
                self.released,
                wave(self.released - 1),
                wave(self.released)
            ),
        }
    }
}

/// The staged change sets of a history and how far each got, kept up to date one change
/// set at a time (in any order: a release may arrive before what it releases).
#[derive(Debug, Default)]
pub struct Rollouts {
    staged: BTreeMap<Version, Progress>,
    /// Releases, halts and reverts seen before their staged change set.
    early: Vec<ChangeSet>,
}

impl Rollouts {
    /// Notes what `cs` says of a rollout.
    pub fn note(&mut self, cs: &ChangeSet) {
        if let Some(Rollout::Staged {
            waves,
            pause_ms,
            gate_timeout_ms,
            revert_on_failure,
        }) = &cs.meta.rollout
        {
            self.staged.insert(
                cs.version.clone(),
                Progress {
                    version: cs.version.clone(),
                    waves: waves.clone(),
                    released: 1,
                    released_at_ms: cs.wall_ms,
                    released_by: cs.version.clone(),
                    halted: None,
                    reverted: false,
                    pause_ms: *pause_ms,
                    gate_timeout_ms: *gate_timeout_ms,
                    revert_on_failure: *revert_on_failure,
                },
            );
            let early = std::mem::take(&mut self.early);
            for e in early {
                self.note(&e);
            }
            return;
        }
        let target = match (&cs.meta.rollout, &cs.meta.confirm) {
            (Some(Rollout::Released { version, .. } | Rollout::Halted { version, .. }), _)
            | (_, Some(Confirm::Reverts { version })) => version,
            _ => return,
        };
        let Some(p) = self.staged.get_mut(target) else {
            if cs.meta.rollout.is_some() {
                self.early.push(cs.clone());
            }
            return;
        };
        match &cs.meta.rollout {
            Some(Rollout::Released { wave, .. }) if *wave + 1 > p.released => {
                p.released = wave + 1;
                p.released_at_ms = cs.wall_ms;
                p.released_by = cs.version.clone();
            }
            Some(Rollout::Halted { wave, reason, .. }) if p.halted.is_none() => {
                p.halted = Some((*wave, reason.clone()));
            }
            _ => {}
        }
        if matches!(cs.meta.confirm, Some(Confirm::Reverts { .. })) {
            p.reverted = true;
        }
    }

    /// Forgets everything and notes `history`.
    pub fn reset(&mut self, history: &[ChangeSet]) {
        *self = Rollouts::default();
        for cs in history {
            self.note(cs);
        }
    }

    /// Every staged change set and how far it got, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Progress> {
        self.staged.values()
    }

    /// The staged change sets `machine` must not run yet.
    pub fn held_back(&self, machine: &MachineName) -> Vec<Version> {
        self.staged
            .values()
            .filter(|p| p.holds_back(machine))
            .map(|p| p.version.clone())
            .collect()
    }
}

/// `view` (live entries) without the writes of the staged change sets `held`, newest
/// first: each key still at a held change set's version gets back the value it replaced
/// (`earlier` holds the change sets those values come from), going further back while
/// that one is held too. A key a held change set created is removed.
pub fn hold_back(view: &mut Live, held: &[ChangeSet], earlier: &[ChangeSet]) {
    let by_version: BTreeMap<&Version, &ChangeSet> = held
        .iter()
        .chain(earlier)
        .map(|cs| (&cs.version, cs))
        .collect();
    let held_versions: Vec<&Version> = held.iter().map(|cs| &cs.version).collect();
    let keys: Vec<Key> = held
        .iter()
        .flat_map(|cs| cs.writes.keys().cloned())
        .collect();
    for key in keys {
        let mut guard = 0;
        while let Some(at) = view.get(&key).map(|e| e.stamp.version.clone())
            && held_versions.contains(&&at)
            && guard < 64
        {
            guard += 1;
            let Some(cs) = by_version.get(&at) else { break };
            let replaced = cs
                .supersedes
                .as_ref()
                .and_then(|s| s.get(&key).cloned().flatten());
            match replaced.and_then(|v| by_version.get(&v).copied()) {
                Some(before) => {
                    view.insert(
                        key.clone(),
                        Entry {
                            value: before.writes.get(&key).cloned().flatten(),
                            stamp: before.stamp(),
                        },
                    );
                }
                None => {
                    view.remove(&key);
                }
            }
        }
    }
}

/// The versions whose change sets [`hold_back`] needs besides the held ones: the values
/// they replaced.
pub fn replaced_by(held: &[ChangeSet]) -> Vec<Version> {
    held.iter()
        .filter_map(|cs| cs.supersedes.as_ref())
        .flat_map(|s| s.values().flatten().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{meta, remote};

    fn machine(n: &str) -> MachineName {
        MachineName::new(n).unwrap()
    }

    fn section(text: &str) -> Node {
        let doc: kdl::KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    #[test]
    fn waves_take_named_machines_then_groups_then_the_rest() {
        let spec = spec(&section(
            r#"rollout pause="30s" on-failure="revert" {
                wave "canary" { machine "lab1"; }
                wave "paris" { group "Paris"; }
                wave "empty" { machine "nobody"; }
            }"#,
        ))
        .unwrap();
        assert_eq!((spec.pause_ms, spec.gate_timeout_ms), (30_000, 60_000));
        assert!(spec.revert_on_failure);
        let members = [
            (machine("lab1"), GroupName::new("Paris").unwrap()),
            (machine("lab2"), GroupName::main()),
            (machine("lab3"), GroupName::new("Paris").unwrap()),
        ];
        let waves = resolve(&spec, &members);
        let shown: Vec<(String, Vec<&str>)> = waves
            .iter()
            .map(|w| {
                (
                    w.name.clone(),
                    w.machines.iter().map(MachineName::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("canary".to_owned(), vec!["lab1"]),
                ("paris".to_owned(), vec!["lab3"]),
                ("rest".to_owned(), vec!["lab2"]),
            ]
        );
    }

    #[test]
    fn a_machine_runs_a_staged_change_once_its_wave_is_released() {
        let waves = vec![
            Wave {
                name: "canary".into(),
                machines: vec![machine("lab1")],
            },
            Wave {
                name: "rest".into(),
                machines: vec![machine("lab2"), machine("lab3")],
            },
        ];
        let before = remote(
            5,
            "lab1",
            &[("cluster/dns", Some("dns { server \"10.0.0.1\"; }\n"))],
        );
        let mut staged = remote(
            10,
            "lab1",
            &[
                ("cluster/dns", Some("dns { server \"10.9.9.9\"; }\n")),
                ("cluster/ntp", Some("ntp { server \"10.9.9.1\"; }\n")),
            ],
        );
        staged.supersedes = Some(
            [
                ("cluster/dns".parse().unwrap(), Some(before.version.clone())),
                ("cluster/ntp".parse().unwrap(), None),
            ]
            .into(),
        );
        staged.meta.rollout = Some(Rollout::Staged {
            waves,
            pause_ms: 0,
            gate_timeout_ms: 1000,
            revert_on_failure: false,
        });
        let release = |wave: usize| ChangeSet {
            meta: crate::model::ChangeMeta {
                rollout: Some(Rollout::Released {
                    version: staged.version.clone(),
                    wave,
                }),
                ..meta("lab1")
            },
            ..remote(20, "lab1", &[])
        };
        let mut r = Rollouts::default();
        // The release may arrive first.
        r.note(&release(1));
        assert!(r.held_back(&machine("lab2")).is_empty());
        r.note(&staged);
        assert!(r.held_back(&machine("lab2")).is_empty(), "released already");
        r.reset(&[before.clone(), staged.clone()]);
        assert!(
            r.held_back(&machine("lab1")).is_empty(),
            "the canary runs it"
        );
        assert_eq!(r.held_back(&machine("lab2")), vec![staged.version.clone()]);
        assert_eq!(
            r.held_back(&machine("lab9")),
            vec![staged.version.clone()],
            "a newcomer waits for the last wave"
        );
        let p = r.all().next().unwrap();
        assert!(
            p.describe()
                .starts_with("wave 1 of 2 (canary: lab1) running; next: rest: lab2, lab3"),
            "{}",
            p.describe()
        );

        // What lab2 runs meanwhile: dns as before, no ntp.
        let mut store = crate::state::MemoryStore::default();
        use crate::state::Store;
        store.merge(before.clone()).unwrap();
        store.merge(staged.clone()).unwrap();
        let mut view = store.live().unwrap();
        let held = [staged.clone()];
        assert_eq!(replaced_by(&held), vec![before.version.clone()]);
        hold_back(&mut view, &held, std::slice::from_ref(&before));
        let dns: Key = "cluster/dns".parse().unwrap();
        assert_eq!(view[&dns].stamp.version, before.version);
        assert!(!view.contains_key(&"cluster/ntp".parse::<Key>().unwrap()));

        r.note(&release(1));
        assert!(r.held_back(&machine("lab2")).is_empty());
        assert_eq!(r.all().next().unwrap().describe(), "every wave done (2)");
    }
}
