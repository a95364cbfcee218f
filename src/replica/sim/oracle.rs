//! What every machine of the simulation must end with, computed from the committed
//! change sets alone — independently of the stores' merge — and the check of each
//! machine's end state against it, and of the conflict log against the writes.

use std::collections::BTreeSet;

use super::Sim;
use crate::model::{EntryValue, Key, Version};
use crate::replica::ChangeSetId;
use crate::state::{ChangeSet, Live, Store};

impl Sim<'_> {
    /// What last writer wins (a revert ranking just above its trial:
    /// [`crate::state::precedence`]) gives over every committed change set.
    fn expected_live(&self) -> Vec<(Key, Option<EntryValue>, Version)> {
        type Rank<'a> = (&'a Version, bool, &'a Version);
        let mut best: std::collections::BTreeMap<&Key, (Rank<'_>, &Option<EntryValue>)> =
            Default::default();
        for cs in &self.committed {
            let rank = crate::state::precedence(&cs.version, &cs.meta);
            for (k, v) in &cs.writes {
                if best.get(k).is_none_or(|(seen, _)| *seen < rank) {
                    best.insert(k, (rank, v));
                }
            }
        }
        let member = &self.catalogue.member;
        best.into_iter()
            .map(|(k, ((_, _, version), v))| {
                let v = if k == member {
                    self.expected_member(v)
                } else {
                    v.clone()
                };
                (k.clone(), v, version.clone())
            })
            .collect()
    }

    /// The membership every machine must end with, from `winner` (the write of greatest
    /// precedence): its group, with the facts of the write of greatest stamp, a removal
    /// counting as a write of no facts at the version it ranks by
    /// ([`crate::state::facts`]).
    fn expected_member(&self, winner: &Option<EntryValue>) -> Option<EntryValue> {
        let Some(EntryValue::Machine(base)) = winner else {
            return winner.clone();
        };
        let writes = self.committed.iter().filter_map(|cs| {
            let at = crate::state::precedence(&cs.version, &cs.meta).0;
            cs.writes.get(&self.catalogue.member).map(|v| (v, at))
        });
        let newest = writes
            .map(|(v, version)| match v {
                Some(EntryValue::Machine(m)) => (m.facts_at.as_deref(), Some(m)),
                _ => (Some(version), None),
            })
            .max_by(|a, b| a.0.cmp(&b.0));
        Some(EntryValue::Machine(match newest {
            Some((stamp, Some(m))) if stamp > base.facts_at.as_deref() => {
                base.clone().with_facts_of(m)
            }
            Some((Some(removed), None)) if Some(removed) > base.facts_at.as_deref() => {
                base.clone().without_facts(Some(removed))
            }
            _ => base.clone(),
        }))
    }

    /// Checks the end state; returns how many writes the conflict log holds.
    pub(super) fn check(&self) -> usize {
        let all: BTreeSet<ChangeSetId> = self.committed.iter().map(ChangeSet::id).collect();
        assert_eq!(all.len(), self.committed.len(), "ids are unique");
        let expected = self.expected_live();
        let first: Live = self.machines[0].store.live().unwrap();
        for m in &self.machines {
            let held: BTreeSet<ChangeSetId> = m
                .store
                .change_sets()
                .unwrap()
                .iter()
                .map(ChangeSet::id)
                .collect();
            assert_eq!(held, all, "{} holds every committed change set", m.name);
            assert_eq!(m.replica.index().len(), all.len(), "{}'s index", m.name);
            assert!(all.iter().all(|id| m.replica.index().contains(id)));
            let live = m.store.live().unwrap();
            assert_eq!(live, first, "{} has the same live entries as lab0", m.name);
            let got: Vec<(Key, Option<EntryValue>, Version)> = live
                .into_iter()
                .map(|(k, e)| (k, e.value, e.stamp.version))
                .collect();
            assert_eq!(got, expected, "{}: last writer wins", m.name);
        }
        // The conflict log is the same everywhere, whatever order change sets arrived in,
        // and no acknowledged write is lost silently: each is live, or superseded by a
        // write that saw it, or in the conflict log.
        let lost = crate::state::conflicts(&self.machines[0].store.change_sets().unwrap());
        for m in &self.machines[1..] {
            let theirs = crate::state::conflicts(&m.store.change_sets().unwrap());
            assert_eq!(theirs, lost, "{} has the same conflict log as lab0", m.name);
        }
        let in_log: BTreeSet<(&Key, &Version)> =
            lost.iter().map(|l| (&l.key, &l.lost.version)).collect();
        let seen: BTreeSet<(&Key, &Version)> = self
            .committed
            .iter()
            .filter_map(|cs| cs.supersedes.as_ref())
            .flat_map(|sup| sup.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))))
            .collect();
        let live_versions: BTreeSet<(&Key, &Version)> =
            expected.iter().map(|(k, _, v)| (k, v)).collect();
        // What the live entry's own write wrote (a membership's facts may be another's).
        let live_values: std::collections::BTreeMap<&Key, &Option<EntryValue>> = expected
            .iter()
            .filter_map(|(k, _, version)| {
                let cs = self.committed.iter().find(|cs| cs.version == *version)?;
                Some((k, cs.writes.get(k)?))
            })
            .collect();
        for cs in &self.committed {
            for (k, value) in &cs.writes {
                let w = (k, &cs.version);
                let accounted = [&live_versions, &seen, &in_log]
                    .iter()
                    .filter(|set| set.contains(&w))
                    .count();
                // A write of the value that is live lost nothing.
                let same_as_live = live_values.get(k) == Some(&value);
                assert!(
                    accounted >= 1 || same_as_live,
                    "{k} written by {} is neither live, superseded nor in the conflict log",
                    cs.version.origin
                );
                assert!(
                    !(in_log.contains(&w) && (live_versions.contains(&w) || seen.contains(&w))),
                    "{k} by {} is in the conflict log though it is live or was seen",
                    cs.version.origin
                );
            }
        }
        lost.len()
    }
}
