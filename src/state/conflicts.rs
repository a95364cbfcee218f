//! The conflict log: writes that lost under last-writer-wins, read from history.
//!
//! Every change set records, per key, the version it replaced where it was committed
//! ([`ChangeSet::supersedes`]). A write some later write names there was *seen* and
//! replaced: superseded in history, not a conflict. The writes of a key that nothing
//! names are its heads; with more than one, they were made without knowing of each other
//! (a partition, a disconnected machine), the greatest version is the live entry on every
//! machine, and each other head is a lost write. Being a pure function of the set of
//! change sets, the log is the same on every machine that holds the same history, in
//! whatever order the change sets arrived.
//!
//! Two concurrent writes of the same value (the same git commit applied through two
//! members) lose nothing: they are no conflict.
//!
//! Change sets recorded before `supersedes` was kept count as having seen every earlier
//! write of their keys, so old histories show no conflicts they cannot prove.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ChangeSet, EntryValue, Key, Stamp, Version};

/// A write that lost to a concurrent one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LostWrite {
    /// The entry both wrote.
    pub key: Key,
    /// Who wrote the losing value, on which machine, when (and its change set).
    pub lost: Stamp,
    /// The value that lost (`None`: a removal), in the form its key gives it.
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<EntryValue>,
    /// The write that is live instead.
    pub winner: Stamp,
}

/// The writes of machine `me` that `winner`, just merged over `replaced` (the entries
/// it replaced, as they were), beat without having seen them: lost writes of this
/// machine, as the conflict log will list them. Writes of the same value lose nothing;
/// change sets recorded before `supersedes` was kept are taken to have seen everything.
pub fn lost_to(
    me: &crate::model::MachineName,
    winner: &ChangeSet,
    replaced: &super::Live,
) -> Vec<LostWrite> {
    let Some(seen) = &winner.supersedes else {
        return Vec::new();
    };
    replaced
        .iter()
        .filter(|(key, mine)| {
            mine.stamp.version.origin == *me
                && seen.get(*key).cloned().flatten().as_ref() != Some(&mine.stamp.version)
                && winner.writes.get(*key) != Some(&mine.value)
        })
        .map(|(key, mine)| LostWrite {
            key: key.clone(),
            lost: mine.stamp.clone(),
            value: mine.value.clone(),
            winner: winner.stamp(),
        })
        .collect()
}

/// Every lost write in `change_sets`, by key, then by the losing version.
pub fn conflicts(change_sets: &[ChangeSet]) -> Vec<LostWrite> {
    // Per key: every write (version → change set index), and the versions named as seen.
    let mut writes: BTreeMap<&Key, BTreeMap<&Version, usize>> = BTreeMap::new();
    let mut seen: BTreeSet<(&Key, &Version)> = BTreeSet::new();
    for (i, cs) in change_sets.iter().enumerate() {
        for key in cs.writes.keys() {
            writes.entry(key).or_default().insert(&cs.version, i);
        }
        if let Some(sup) = &cs.supersedes {
            for (key, v) in sup {
                if let Some(v) = v {
                    seen.insert((key, v));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (key, by_version) in writes {
        let mut heads: Vec<(&Version, usize)> = Vec::new();
        let mut legacy_floor: Option<&Version> = None;
        for (&v, &i) in &by_version {
            if change_sets[i].supersedes.is_none() {
                legacy_floor = Some(v);
            }
        }
        for (&v, &i) in &by_version {
            let known_seen = seen.contains(&(key, v));
            let before_legacy = legacy_floor.is_some_and(|floor| v < floor);
            if !known_seen && !before_legacy {
                heads.push((v, i));
            }
        }
        // The greatest (by precedence: a trial's revert ranks just above the trial) is
        // live everywhere; the other heads lost to it.
        let rank = |i: usize| {
            let cs = &change_sets[i];
            super::precedence(&cs.version, &cs.meta)
        };
        let Some(&(_, win)) = heads.iter().max_by(|a, b| rank(a.1).cmp(&rank(b.1))) else {
            continue;
        };
        let winner = change_sets[win].stamp();
        let won_value = change_sets[win].writes.get(key);
        for &(_, i) in heads.iter().filter(|(_, i)| *i != win) {
            let cs = &change_sets[i];
            if cs.writes.get(key) == won_value {
                // The same value written twice (one commit applied through two members):
                // nothing was lost.
                continue;
            }
            out.push(LostWrite {
                key: key.clone(),
                lost: cs.stamp(),
                value: cs.writes.get(key).cloned().flatten(),
                winner: winner.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{remote, version};
    use super::*;

    /// A change set from `origin` at `hlc` writing `key` after having seen `seen`.
    fn write(
        hlc: u64,
        origin: &str,
        key: &str,
        text: Option<&str>,
        seen: Option<(u64, &str)>,
    ) -> ChangeSet {
        let mut cs = remote(hlc, origin, &[(key, text)]);
        cs.supersedes = Some([(key.parse().unwrap(), seen.map(|(h, o)| version(h, o)))].into());
        cs
    }

    #[test]
    fn successors_are_history_and_concurrent_heads_are_conflicts() {
        let k = "cluster/dns";
        let a1 = write(10, "lab1", k, Some("dns { server a; }"), None);
        let a2 = write(20, "lab1", k, Some("dns { server b; }"), Some((10, "lab1")));
        // lab4, cut off, changed the same entry having seen only lab1's first write.
        let b = write(15, "lab4", k, Some("dns { server c; }"), Some((10, "lab1")));
        let sets = [a1.clone(), a2.clone(), b.clone()];
        let lost = conflicts(&sets);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].lost.version, b.version, "the smaller head lost");
        assert_eq!(lost[0].winner.version, a2.version);
        // Any arrival order, the same log.
        let mut rev = sets.to_vec();
        rev.reverse();
        assert_eq!(conflicts(&rev), lost);
        // A later write that saw the winner leaves the loser lost, and loses nothing new.
        let c = write(30, "lab2", k, None, Some((20, "lab1")));
        let lost = conflicts(&[a1, a2, b.clone(), c.clone()]);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].lost.version, b.version);
        assert_eq!(
            lost[0].winner.version, c.version,
            "a removal wins like any write"
        );
    }

    #[test]
    fn the_same_value_written_twice_is_no_conflict() {
        let k = "cluster/dns";
        let a = write(10, "lab1", k, Some("dns { server a; }"), None);
        let b = write(11, "lab2", k, Some("dns { server a; }"), None);
        assert!(conflicts(&[a, b]).is_empty());
    }

    #[test]
    fn concurrent_creations_conflict_and_old_histories_do_not() {
        let k = "group:Paris/dns";
        let x = write(5, "lab1", k, Some("dns"), None);
        let y = write(7, "lab2", k, None, None);
        let lost = conflicts(&[x.clone(), y.clone()]);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].lost.version, x.version);
        assert_eq!(lost[0].value, x.writes.values().next().cloned().flatten());
        // Change sets without the record count as successors of what came before.
        let old1 = remote(1, "lab1", &[(k, Some("dns"))]);
        let old2 = remote(2, "lab2", &[(k, None)]);
        assert!(conflicts(&[old1, old2.clone()]).is_empty());
        let z = write(9, "lab3", k, Some("dns"), Some((2, "lab2")));
        assert!(conflicts(&[old2, z]).is_empty());
    }
}
