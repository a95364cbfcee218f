//! The durable store on disk, in redb.
//!
//! redb gives what the contract needs: one write transaction at a time, committed with
//! `Durability::Immediate` (fsync'd before `commit` returns), and copy-on-write pages with
//! a checksummed commit slot, so a crash at any point leaves the last committed state.
//! Records are JSON: small, readable in a debugger, and versioned by their fields.
//!
//! Tables: `entries` (key text → [`Entry`]), `change_sets` (id → [`ChangeSet`]).

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::memory::entry_of;
use super::{
    ChangeSet, CommitError, Entry, Hlc, Key, Live, Proposal, Store, StoreError, check_base,
};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const CHANGE_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("change_sets");

/// The redb-backed store.
#[derive(Debug)]
pub struct DiskStore {
    db: Database,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

impl DiskStore {
    /// Opens the store at `path`, creating it if needed.
    pub fn open(path: &Path) -> Result<DiskStore, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked(path.display().to_string()));
            }
            Err(e) => return Err(backend(e)),
        };
        // Create the tables up front so readers never meet a missing one.
        let tx = db.begin_write().map_err(backend)?;
        tx.open_table(ENTRIES).map_err(backend)?;
        tx.open_table(CHANGE_SETS).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(DiskStore { db })
    }
}

impl Store for DiskStore {
    fn live(&self) -> Result<Live, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(ENTRIES).map_err(backend)?;
        let mut live = Live::new();
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let key: Key =
                k.value()
                    .parse()
                    .map_err(|e: super::KeyParseError| StoreError::Corrupt {
                        key: k.value().to_owned(),
                        message: e.to_string(),
                    })?;
            live.insert(key, decode(k.value(), v.value())?);
        }
        Ok(live)
    }

    fn commit(&mut self, p: Proposal) -> Result<ChangeSet, CommitError> {
        let mut tx = self.db.begin_write().map_err(backend)?;
        tx.set_durability(Durability::Immediate).map_err(backend)?;
        let cs = {
            let mut entries = tx.open_table(ENTRIES).map_err(backend)?;
            // The conflict check reads inside the write transaction: nothing can change
            // between the check and the writes.
            let mut seen: BTreeMap<Key, Entry> = BTreeMap::new();
            for key in p.base.keys() {
                let text = key.to_string();
                if let Some(v) = entries.get(text.as_str()).map_err(backend)? {
                    seen.insert(key.clone(), decode(&text, v.value())?);
                }
            }
            let conflicts = check_base(&p.base, |k| seen.get(k));
            if !conflicts.is_empty() {
                // Dropping the transaction aborts it: nothing is written.
                return Err(CommitError::Stale(conflicts));
            }
            let mut sets = tx.open_table(CHANGE_SETS).map_err(backend)?;
            let id = sets
                .last()
                .map_err(backend)?
                .map_or(1, |(k, _)| k.value() + 1);
            let cs = ChangeSet {
                id,
                version: p.version,
                wall_ms: p.wall_ms,
                meta: p.meta,
                writes: p.writes,
            };
            for (key, value) in &cs.writes {
                let bytes = serde_json::to_vec(&entry_of(&cs, value.clone())).map_err(backend)?;
                entries
                    .insert(key.to_string().as_str(), bytes.as_slice())
                    .map_err(backend)?;
            }
            let bytes = serde_json::to_vec(&cs).map_err(backend)?;
            sets.insert(id, bytes.as_slice()).map_err(backend)?;
            cs
        };
        tx.commit().map_err(backend)?;
        Ok(cs)
    }

    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push(decode(&k.value().to_string(), v.value())?);
        }
        Ok(out)
    }

    fn last_hlc(&self) -> Result<Hlc, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
        match table.last().map_err(backend)? {
            Some((k, v)) => Ok(decode::<ChangeSet>(&k.value().to_string(), v.value())?
                .version
                .hlc),
            None => Ok(Hlc::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_store_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let mut store = DiskStore::open(&path).unwrap();
            super::super::tests::store_contract(&mut store);
            // A second open of the same file is refused while the first is alive.
            assert!(matches!(DiskStore::open(&path), Err(StoreError::Locked(_))));
        }
        let store = DiskStore::open(&path).unwrap();
        assert_eq!(store.change_sets().unwrap().len(), 2);
        assert_eq!(store.last_hlc().unwrap(), Hlc::new(30, 0));
    }
}
