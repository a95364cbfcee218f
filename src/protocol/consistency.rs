//! `strata check` (the seed's `clustercheck`): what each machine says of what it holds,
//! the report the checking member puts together, and the pure comparison behind it.
//!
//! A machine answers first with its [`MachineState`]: the replication summary of the
//! change sets it holds ([`crate::replica::Summary`]) and the running-config files edited
//! by hand. Machines whose summaries are equal hold the same change sets, and last writer
//! wins makes the same live entries of them everywhere; only when summaries differ does
//! the checking member ask those machines for the stamp of every entry ([`Stamps`]) and
//! name each entry whose version differs ([`inconsistencies`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::run::{LocalEdit, RunState};
use super::status::Reach;
use crate::model::{Key, MachineName, Membership, Mode, Stamp, Version};
use crate::replica::Summary;
use crate::state::{ChangeSet, Live, LostWrite, StoreFailure};

/// What one machine says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MachineState {
    /// Which change sets it holds.
    pub summary: Summary,
    /// Its running-config files that differ from its effective config.
    pub local_edits: Vec<LocalEdit>,
    /// Since when, and why, it cannot write its store (it is Degraded); `None` while it
    /// can, or from a machine that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<StoreFailure>,
}

/// The stamp of an entry one machine holds, and whether it is a removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Held {
    /// The last write's version and provenance.
    pub stamp: Stamp,
    /// True when that write removed the entry.
    pub removed: bool,
}

/// Every entry a machine holds, by key, without values.
pub type Stamps = BTreeMap<Key, Held>;

/// The stamps of `live`.
pub fn stamps_of(live: &Live) -> Stamps {
    live.iter()
        .map(|(k, e)| {
            (
                k.clone(),
                Held {
                    stamp: e.stamp.clone(),
                    removed: e.value.is_none(),
                },
            )
        })
        .collect()
}

/// One machine in a check report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MachineCheck {
    /// The machine.
    pub machine: MachineName,
    /// How the checking member reached it (`local`, `connected`, `routed`), or why it
    /// could not (`unreachable`, `disconnected`).
    pub reach: Reach,
    /// False when it was reachable but did not answer in time.
    pub answered: bool,
    /// How many change sets it holds (when it answered).
    pub change_sets: Option<u64>,
    /// Its running-config files edited by hand.
    pub local_edits: Vec<LocalEdit>,
    /// Since when, and why, it cannot write its store (when it answered so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<StoreFailure>,
}

/// Where a change set stands on one member, for apply's per-machine report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MachinePropagation {
    /// The member.
    pub machine: MachineName,
    /// How it is reached from the member that answered.
    pub reach: Reach,
    /// What it said (`None`: it could not be asked, or did not answer).
    pub state: Option<RunState>,
}

/// An entry the machines do not agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Inconsistency {
    /// The entry.
    pub key: Key,
    /// What each checked machine holds of it (`None`: nothing at all).
    pub held: BTreeMap<MachineName, Option<Held>>,
}

/// What `check` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// The cluster's name (`None`: a standalone machine).
    pub cluster: Option<String>,
    /// The member that ran the check.
    pub checked_from: MachineName,
    /// Every member (and this machine), sorted by name.
    pub machines: Vec<MachineCheck>,
    /// Entries whose versions differ between machines that answered.
    pub inconsistent: Vec<Inconsistency>,
    /// Writes that lost to concurrent ones and that no `check --resolve` has settled:
    /// what an operator may want to look at (they do not make the cluster inconsistent).
    pub conflicts: Vec<LostWrite>,
    /// What is worth a look but is no inconsistency: members whose recorded appliance
    /// versions differ ([`version_warnings`]), members whose hostnames do not resolve on
    /// the checking member ([`resolution_warnings`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<CheckWarning>,
}

/// Something `check` found worth a look that is no inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckWarning {
    /// What it is.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl CheckReport {
    /// True when every member answered, all agree, no running config was edited and
    /// every store is written.
    pub fn agrees(&self) -> bool {
        self.inconsistent.is_empty()
            && self
                .machines
                .iter()
                .all(|m| m.answered && m.local_edits.is_empty() && m.store_failure.is_none())
    }

    /// True when the members agree ([`CheckReport::agrees`]) and no lost write is left
    /// unsettled: the seed resolves a conflict, it does not just log it.
    pub fn is_consistent(&self) -> bool {
        self.agrees() && self.conflicts.is_empty()
    }
}

/// The entries on which the machines of `stamps` disagree: a key some machine lacks or
/// holds at another version than the others.
pub fn inconsistencies(stamps: &BTreeMap<MachineName, Stamps>) -> Vec<Inconsistency> {
    let keys: BTreeSet<&Key> = stamps.values().flat_map(|s| s.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let held: BTreeMap<MachineName, Option<Held>> = stamps
                .iter()
                .map(|(m, s)| (m.clone(), s.get(key).cloned()))
                .collect();
            let mut versions = held.values().map(|h| h.as_ref().map(|h| &h.stamp.version));
            let first = versions.next()?;
            versions.any(|v| v != first).then(|| Inconsistency {
                key: key.clone(),
                held,
            })
        })
        .collect()
}

/// The warnings of a check about `members`' recorded versions: the seed's rule is that a
/// cluster's machines run the same appliance version, so members whose agents report
/// different ones are named, with each version.
pub fn version_warnings(members: &BTreeMap<MachineName, Membership>) -> Vec<CheckWarning> {
    let known = members
        .iter()
        .filter_map(|(m, info)| Some((m.as_str(), info.appliance_version.as_deref()?)));
    match crate::model::appliance::mixed_versions(known) {
        Some(by) => vec![CheckWarning {
            message: format!(
                "the members run different appliance versions: {}",
                crate::model::appliance::describe_versions(&by)
            ),
            help: crate::model::appliance::MIXED_VERSIONS_HELP.to_owned(),
        }],
        None => Vec::new(),
    }
}

/// A member whose hostname did not resolve on the checking member: the machine, the
/// hostname, and what the lookup said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The member.
    pub machine: MachineName,
    /// Its address, a hostname.
    pub hostname: String,
    /// Why it did not resolve.
    pub why: String,
}

/// The help line for hostnames that do not resolve.
pub const UNRESOLVED_HELP: &str = "the seed's rule: machines in a cluster have hostnames that resolve in DNS (or all are addressed by IP address); add the name to DNS, or to /etc/hosts on every member, or give the machine address=\"IP\" in the repo (every machine then by IP address)";

/// The warning of a check run on `checked_from` about members' hostnames that do not
/// resolve there, naming each with its hostname and what the lookup said: the seed's
/// cluster communication starts from the DNS hostnames of the machines. A warning, not an
/// inconsistency: a member its peers cannot reach is reported unreachable anyway, and one
/// dialled at an IP address still talks.
pub fn resolution_warnings(
    checked_from: &MachineName,
    unresolved: &[Unresolved],
) -> Vec<CheckWarning> {
    if unresolved.is_empty() {
        return Vec::new();
    }
    let named: Vec<String> = unresolved
        .iter()
        .map(|u| format!("{} at {} ({})", u.machine, u.hostname, u.why))
        .collect();
    vec![CheckWarning {
        message: format!(
            "machine hostnames that do not resolve on {checked_from}: {}",
            named.join("; ")
        ),
        help: UNRESOLVED_HELP.to_owned(),
    }]
}

/// The lost writes of `lost` that no change set of `history` settles (`check --resolve`
/// of the entry) and that still concern the cluster's `members`: what `check` still
/// lists, and what keeps it from exiting 0. The conflicts of a removed machine settle
/// with its removal: the writes it lost and the entries of its own can no longer be
/// forced from it, nor matter to the others.
pub fn unresolved(
    lost: Vec<LostWrite>,
    history: &[ChangeSet],
    members: &BTreeSet<&MachineName>,
) -> Vec<LostWrite> {
    let settled: BTreeSet<&Version> = history.iter().flat_map(|cs| &cs.settles).collect();
    let of_a_member = |l: &LostWrite| {
        let own = match &l.key {
            Key::Machine(m)
            | Key::Section {
                mode: Mode::Machine(m),
                ..
            } => Some(m),
            _ => None,
        };
        members.contains(&l.lost.version.origin) && own.is_none_or(|m| members.contains(m))
    };
    lost.into_iter()
        .filter(|l| !settled.contains(&l.lost.version) && of_a_member(l))
        .collect()
}

/// The members of the cluster in `live`.
pub fn members_of(live: &Live) -> BTreeSet<&MachineName> {
    live.iter()
        .filter_map(|(k, e)| match (k, &e.value) {
            (Key::Machine(m), Some(crate::model::EntryValue::Machine(_))) => Some(m),
            _ => None,
        })
        .collect()
}

/// How the seed names where an entry lives: `dns at Cluster americas`, `dns at Group
/// Paris`, `dns at Machine lab2.example.com`; membership and catalogue entries by what
/// they are.
pub fn describe(key: &Key, cluster: Option<&str>) -> String {
    match key {
        Key::Section { mode, section } => match mode {
            Mode::Cluster => match cluster {
                Some(c) => format!("{section} at Cluster {c}"),
                None => format!("{section} at Cluster"),
            },
            Mode::Group(g) => format!("{section} at Group {g}"),
            Mode::Machine(m) => format!("{section} at Machine {m}"),
        },
        Key::Cluster => "the cluster's name".into(),
        Key::Group(g) => format!("the membership of group {g}"),
        Key::Machine(m) => format!("the membership of machine {m}"),
        Key::Pending(m) => format!("the pending join of {m}"),
        Key::Identity(id) => format!("the cluster's identity {id}"),
        Key::Catalogue => "the catalogue (built-in sections)".into(),
        Key::Schema(s) => format!("the schema of section {s}"),
    }
}

/// Parses what `check --resolve` names: `SECTION@MODE` (`dns@cluster`,
/// `dns@group:Paris`, `dns@machine:lab2`) or an entry key as the store writes it
/// (`cluster/dns`, `@machine:lab2`).
pub fn parse_entry(text: &str) -> Result<Key, String> {
    let bad = || {
        format!(
            "`{text}` names no entry: write SECTION@MODE (dns@cluster, dns@group:Paris, dns@machine:lab2)"
        )
    };
    if let Some((section, mode)) = text.split_once('@')
        && !section.is_empty()
    {
        let mode: Mode = mode.parse().map_err(|_| bad())?;
        let section = crate::model::SectionName::new(section).map_err(|_| bad())?;
        return Ok(Key::section(mode, section));
    }
    text.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeMeta, Hlc, Source, Version};

    fn held(hlc: u64, origin: &str, removed: bool) -> Held {
        Held {
            stamp: Stamp {
                version: Version {
                    hlc: Hlc::new(hlc, 0),
                    origin: MachineName::new(origin).unwrap(),
                },
                wall_ms: hlc,
                meta: ChangeMeta {
                    author: "admin".into(),
                    user: "admin".into(),
                    host: origin.into(),
                    source: Source::Cli,
                    message: String::new(),
                    origin_kind: Default::default(),
                    confirm: None,
                    rollout: None,
                },
            },
            removed,
        }
    }

    fn m(name: &str) -> MachineName {
        MachineName::new(name).unwrap()
    }

    #[test]
    fn a_removed_machine_s_conflicts_settle() {
        let lost = |key: &str, loser: &str| LostWrite {
            key: key.parse().unwrap(),
            lost: held(2, loser, false).stamp,
            value: None,
            winner: held(3, "lab1", false).stamp,
        };
        let all = vec![
            lost("cluster/dns", "lab3"),
            lost("cluster/ntp", "lab2"),
            lost("machine:lab3/interfaces", "lab2"),
        ];
        let (lab1, lab2, lab3) = (m("lab1"), m("lab2"), m("lab3"));
        let everyone: BTreeSet<&MachineName> = [&lab1, &lab2, &lab3].into();
        assert_eq!(unresolved(all.clone(), &[], &everyone).len(), 3);
        let without_lab3: BTreeSet<&MachineName> = [&lab1, &lab2].into();
        let left = unresolved(all, &[], &without_lab3);
        let keys: Vec<String> = left.iter().map(|l| l.key.to_string()).collect();
        assert_eq!(
            keys,
            ["cluster/ntp"],
            "lab3's lost write and its own entries settle"
        );
    }

    #[test]
    fn entries_differing_in_version_or_presence_are_inconsistent() {
        let dns: Key = "cluster/dns".parse().unwrap();
        let ntp: Key = "group:Paris/ntp".parse().unwrap();
        let users: Key = "cluster/users".parse().unwrap();
        let stamps: BTreeMap<MachineName, Stamps> = [
            (
                m("lab1"),
                [
                    (dns.clone(), held(10, "lab1", false)),
                    (ntp.clone(), held(5, "lab1", false)),
                    (users.clone(), held(3, "lab1", false)),
                ]
                .into(),
            ),
            (
                m("lab2"),
                [
                    (dns.clone(), held(12, "lab2", true)),
                    (users.clone(), held(3, "lab1", false)),
                ]
                .into(),
            ),
        ]
        .into();
        let found = inconsistencies(&stamps);
        let keys: Vec<&Key> = found.iter().map(|i| &i.key).collect();
        assert_eq!(keys, [&dns, &ntp], "in key order; users agree");
        assert_eq!(found[1].held[&m("lab2")], None);
        assert!(found[0].held[&m("lab2")].as_ref().unwrap().removed);
        assert!(inconsistencies(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn entries_are_named_as_the_seed_names_them() {
        let key = parse_entry("dns@cluster").unwrap();
        assert_eq!(key, "cluster/dns".parse().unwrap());
        assert_eq!(describe(&key, Some("americas")), "dns at Cluster americas");
        let key = parse_entry("listeners@group:Paris").unwrap();
        assert_eq!(describe(&key, None), "listeners at Group Paris");
        assert_eq!(
            parse_entry("machine:lab2/dns").unwrap(),
            parse_entry("dns@machine:lab2").unwrap()
        );
        assert!(
            parse_entry("dns@nowhere")
                .unwrap_err()
                .contains("SECTION@MODE")
        );
        assert!(parse_entry("@").is_err());
    }
}
