//! The in-memory twin of the disk store, for tests that need no files.

use std::collections::BTreeMap;

use super::{
    Base, ChangeSet, CommitError, Entry, Hlc, Key, Live, Merged, Proposal, Store, StoreError,
    Version, Writes, check_base, supersedes, winners,
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
    fn record(
        &mut self,
        mut cs: ChangeSet,
        keys: impl IntoIterator<Item = super::Key>,
    ) -> &ChangeSet {
        cs.seq = self.sets.len() as u64 + 1;
        for key in keys {
            let value = cs.writes.get(&key).cloned().flatten();
            self.live.insert(key, entry_of(&cs, value));
        }
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
        let keys: Vec<_> = p.writes.keys().cloned().collect();
        let supersedes = supersedes(&p.writes, |k| self.live.get(k));
        Ok(self
            .record(
                change_set(
                    p.version, p.wall_ms, p.meta, p.writes, supersedes, p.settles,
                ),
                keys,
            )
            .clone())
    }

    fn merge(&mut self, cs: ChangeSet) -> Result<Merged, StoreError> {
        if self.versions.contains_key(&cs.version) {
            return Ok(Merged::default());
        }
        let won = winners(&cs, |k| self.live.get(k));
        let replaced = won
            .iter()
            .filter_map(|k| self.live.get(k).map(|e| (k.clone(), e.clone())))
            .collect();
        self.record(cs, won.clone());
        Ok(Merged {
            new: true,
            won,
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

/// The entry a change set writes for one key.
pub(super) fn entry_of(cs: &ChangeSet, value: Option<super::EntryValue>) -> Entry {
    Entry {
        value,
        stamp: cs.stamp(),
    }
}
