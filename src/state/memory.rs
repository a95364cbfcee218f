//! The in-memory twin of the disk store, for tests that need no files.

use super::{
    ChangeSet, CommitError, Entry, Hlc, Live, Proposal, Stamp, Store, StoreError, check_base,
};

/// A store held in memory; same contract as [`super::DiskStore`], without durability.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    live: Live,
    sets: Vec<ChangeSet>,
}

impl Store for MemoryStore {
    fn live(&self) -> Result<Live, StoreError> {
        Ok(self.live.clone())
    }

    fn commit(&mut self, p: Proposal) -> Result<ChangeSet, CommitError> {
        let conflicts = check_base(&p.base, |k| self.live.get(k));
        if !conflicts.is_empty() {
            return Err(CommitError::Stale(conflicts));
        }
        let cs = ChangeSet {
            id: self.sets.last().map_or(1, |c| c.id + 1),
            version: p.version,
            wall_ms: p.wall_ms,
            meta: p.meta,
            writes: p.writes,
        };
        for (key, value) in &cs.writes {
            self.live.insert(key.clone(), entry_of(&cs, value.clone()));
        }
        self.sets.push(cs.clone());
        Ok(cs)
    }

    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        Ok(self.sets.clone())
    }

    fn last_hlc(&self) -> Result<Hlc, StoreError> {
        Ok(self.sets.last().map(|c| c.version.hlc).unwrap_or_default())
    }
}

/// The entry a change set writes for one key.
pub(super) fn entry_of(cs: &ChangeSet, value: Option<String>) -> Entry {
    Entry {
        value,
        stamp: Stamp {
            version: cs.version.clone(),
            wall_ms: cs.wall_ms,
            change_set: cs.id,
            meta: cs.meta.clone(),
        },
    }
}
