//! The in-memory twin of the disk store, for tests that need no files.

use std::collections::BTreeMap;

use super::{
    Base, ChangeSet, CommitError, Entry, Hlc, Key, Live, Merged, Proposal, Store, StoreError,
    Version, Writes, check_base, merged_entries, supersedes,
};

/// A store held in memory; same contract as [`super::DiskStore`], without durability.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    live: Live,
    sets: Vec<ChangeSet>,
    /// Each change set's version → its place in `sets`.
    versions: BTreeMap<Version, usize>,
    /// The clock reading before the last [`Store::replace`].
    floor: Hlc,
}

impl MemoryStore {
    fn record(&mut self, mut cs: ChangeSet, entries: Vec<(super::Key, Entry)>) -> &ChangeSet {
        cs.seq = self.sets.len() as u64 + 1;
        self.live.extend(entries);
        self.versions.insert(cs.version.clone(), self.sets.len());
        self.sets.push(cs);
        &self.sets[self.sets.len() - 1]
    }
}

impl Store for MemoryStore {
    fn live(&self) -> Result<Live, StoreError> {
        Ok(self.live.clone())
    }

    fn live_under(&self, prefixes: &[String]) -> Result<Live, StoreError> {
        Ok(self
            .live
            .iter()
            .filter(|(k, _)| {
                let text = k.to_string();
                prefixes.iter().any(|p| text.starts_with(p.as_str()))
            })
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect())
    }

    fn entries(&self, keys: &[Key]) -> Result<Live, StoreError> {
        Ok(keys
            .iter()
            .filter_map(|k| self.live.get_key_value(k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect())
    }

    fn commit(&mut self, p: Proposal) -> Result<ChangeSet, CommitError> {
        let conflicts = check_base(&p.base, |k| self.live.get(k));
        if !conflicts.is_empty() {
            return Err(CommitError::Stale(conflicts));
        }
        let mut writes = p.writes;
        super::facts::stamp(&mut writes, &p.version, &p.meta, |k| self.live.get(k));
        let supersedes = supersedes(&writes, |k| self.live.get(k));
        let cs = change_set(p.version, p.wall_ms, p.meta, writes, supersedes, p.settles);
        let entries = written(&cs);
        Ok(self.record(cs, entries).clone())
    }

    fn merge(&mut self, cs: ChangeSet) -> Result<Merged, StoreError> {
        if self.versions.contains_key(&cs.version) {
            return Ok(Merged::default());
        }
        let (won, entries) = merged_entries(&cs, |k| self.live.get(k));
        let replaced = won
            .iter()
            .filter_map(|k| self.live.get(k).map(|e| (k.clone(), e.clone())))
            .collect();
        let changed = entries.iter().map(|(k, _)| k.clone()).collect();
        self.record(cs, entries);
        Ok(Merged {
            new: true,
            changed,
            replaced,
        })
    }

    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        Ok(self.sets.clone())
    }

    fn replace(&mut self, change_sets: Vec<ChangeSet>) -> Result<(), StoreError> {
        let floor = self.last_hlc()?;
        let mut fresh = MemoryStore {
            floor,
            ..MemoryStore::default()
        };
        for cs in change_sets {
            fresh.merge(cs)?;
        }
        *self = fresh;
        Ok(())
    }

    fn change_sets_of(&self, versions: &[Version]) -> Result<Vec<ChangeSet>, StoreError> {
        Ok(versions
            .iter()
            .filter_map(|v| self.versions.get(v).map(|&i| self.sets[i].clone()))
            .collect())
    }

    fn last_hlc(&self) -> Result<Hlc, StoreError> {
        Ok(self
            .versions
            .keys()
            .map(|v| v.hlc)
            .max()
            .unwrap_or_default()
            .max(self.floor))
    }
}

/// A change set not yet given its place in a store's history.
pub(super) fn change_set(
    version: Version,
    wall_ms: u64,
    meta: super::ChangeMeta,
    writes: Writes,
    supersedes: Base,
    settles: Vec<Version>,
) -> ChangeSet {
    ChangeSet {
        seq: 0,
        version,
        wall_ms,
        meta,
        writes,
        supersedes: Some(supersedes),
        settles,
    }
}

/// The entries a change set committed here writes: every one of its writes.
pub(super) fn written(cs: &ChangeSet) -> Vec<(super::Key, Entry)> {
    cs.writes
        .iter()
        .map(|(k, value)| {
            let stamp = cs.stamp();
            (
                k.clone(),
                Entry {
                    value: value.clone(),
                    stamp,
                },
            )
        })
        .collect()
}
