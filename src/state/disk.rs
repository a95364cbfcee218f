//! The durable store on disk, in redb.
//!
//! redb gives what the contract needs: one write transaction at a time, committed with
//! `Durability::Immediate` (fsync'd before `commit` returns), and copy-on-write pages with
//! a checksummed commit slot, so a crash at any point leaves the last committed state.
//! Records are JSON in the encoding the wire uses too ([`crate::model::ENCODING`]).
//!
//! Damage is found when the store opens, not at the first read: redb keeps a checksum of
//! every page in the page that points to it, and the open verifies every page of the
//! committed trees (`set_check_integrity_on_open`: ~10 ms for a 25 MB store here), so a
//! file changed outside redb is refused ([`StoreError::Damaged`]) instead of served. A
//! second checksum per record would find nothing more. Every commit is two-phase (the
//! commit slot is fsync'd before the byte that makes it current): so a current commit
//! that does not verify is damage, never a crash mid-commit, and the open refuses it
//! rather than fall back silently to the commit before — which was acknowledged. It costs
//! one more fsync per commit (2.1 → 4.0 ms on this machine's disk).
//!
//! Tables: `meta` (`format`, `last_hlc`), `entries` (key text → [`Entry`]),
//! `change_sets` (display index → [`ChangeSet`]), `versions` (version text → display
//! index, so merging a change set twice is noticed). A store without `meta` but with
//! entries is format 1 and is converted when opened ([`super::migrate`]).

use std::path::Path;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::memory::{change_set, entry_of};
use super::{
    ChangeSet, CommitError, Hlc, Key, Live, Merged, Proposal, Store, StoreError, Version,
    check_base, migrate, supersedes, winners,
};
use crate::model::ENCODING;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const CHANGE_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("change_sets");
const VERSIONS: TableDefinition<&str, u64> = TableDefinition::new("versions");

/// The redb-backed store.
#[derive(Debug)]
pub struct DiskStore {
    db: Database,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A write transaction as every write of the store takes it: durable when `commit`
/// returns, and two-phase (see the module header).
fn begin(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut tx = db.begin_write().map_err(backend)?;
    tx.set_durability(Durability::Immediate).map_err(backend)?;
    tx.set_two_phase_commit(true);
    Ok(tx)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

fn parse_key(text: &str) -> Result<Key, StoreError> {
    text.parse()
        .map_err(|e: super::KeyParseError| StoreError::Corrupt {
            key: text.to_owned(),
            message: e.to_string(),
        })
}

impl DiskStore {
    /// Opens the store at `path`, creating it if needed; converts a format-1 store and
    /// refuses one of any other format.
    pub fn open(path: &Path) -> Result<DiskStore, StoreError> {
        let db = match Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
        {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked(path.display().to_string()));
            }
            Err(DatabaseError::Storage(StorageError::Corrupted(message))) => {
                return Err(StoreError::Damaged {
                    path: path.display().to_string(),
                    message,
                });
            }
            Err(e) => return Err(backend(e)),
        };
        let tx = begin(&db)?;
        let names: Vec<String> = tx
            .list_tables()
            .map_err(backend)?
            .map(|t| t.name().to_owned())
            .collect();
        let has = |t: &str| names.iter().any(|n| n == t);
        let format = if has(META.name()) {
            let meta = tx.open_table(META).map_err(backend)?;
            let f = meta.get("format").map_err(backend)?.map(|v| v.value());
            f.map_or(u64::from(ENCODING), |f| f)
        } else if has(ENTRIES.name()) || has(CHANGE_SETS.name()) {
            u64::from(migrate::FORMAT_1)
        } else {
            u64::from(ENCODING)
        };
        if format == u64::from(migrate::FORMAT_1) {
            upgrade_from_format_1(&tx)?;
            tracing::info!(path = %path.display(), "store converted from format 1");
        } else if format != u64::from(ENCODING) {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found: u32::try_from(format).unwrap_or(u32::MAX),
                expected: ENCODING,
            });
        }
        // Create the tables up front so readers never meet a missing one.
        tx.open_table(ENTRIES).map_err(backend)?;
        tx.open_table(CHANGE_SETS).map_err(backend)?;
        tx.open_table(VERSIONS).map_err(backend)?;
        tx.open_table(META)
            .map_err(backend)?
            .insert("format", u64::from(ENCODING))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(DiskStore { db })
    }

    /// Records `cs` (given its display index here) and writes `keys` of it to the live
    /// entries, inside `tx`.
    fn record(
        tx: &WriteTransaction,
        mut cs: ChangeSet,
        keys: &[Key],
    ) -> Result<ChangeSet, StoreError> {
        let mut sets = tx.open_table(CHANGE_SETS).map_err(backend)?;
        cs.seq = sets
            .last()
            .map_err(backend)?
            .map_or(1, |(k, _)| k.value() + 1);
        let mut entries = tx.open_table(ENTRIES).map_err(backend)?;
        for key in keys {
            let value = cs.writes.get(key).cloned().flatten();
            let bytes = serde_json::to_vec(&entry_of(&cs, value)).map_err(backend)?;
            entries
                .insert(key.to_string().as_str(), bytes.as_slice())
                .map_err(backend)?;
        }
        let bytes = serde_json::to_vec(&cs).map_err(backend)?;
        sets.insert(cs.seq, bytes.as_slice()).map_err(backend)?;
        tx.open_table(VERSIONS)
            .map_err(backend)?
            .insert(cs.version.to_string().as_str(), cs.seq)
            .map_err(backend)?;
        let mut meta = tx.open_table(META).map_err(backend)?;
        let last = meta
            .get("last_hlc")
            .map_err(backend)?
            .map_or(0, |v| v.value());
        meta.insert("last_hlc", last.max(cs.version.hlc.0))
            .map_err(backend)?;
        Ok(cs)
    }

    /// The live entries of `keys`, read inside `tx`.
    fn entries_of<'k>(
        tx: &WriteTransaction,
        keys: impl Iterator<Item = &'k Key>,
    ) -> Result<Live, StoreError> {
        read_entries(&tx.open_table(ENTRIES).map_err(backend)?, keys)
    }
}

/// The entries of `keys` that `table` (the entries table, read or written) holds.
fn read_entries<'k>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    keys: impl Iterator<Item = &'k Key>,
) -> Result<Live, StoreError> {
    let mut found = Live::new();
    for key in keys {
        let text = key.to_string();
        if let Some(v) = table.get(text.as_str()).map_err(backend)? {
            found.insert(key.clone(), decode(&text, v.value())?);
        }
    }
    Ok(found)
}

/// Rewrites every format-1 record in the new encoding, inside the opening transaction:
/// the store is converted whole or not at all.
fn upgrade_from_format_1(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut entries = Vec::new();
    {
        let table = tx.open_table(ENTRIES).map_err(backend)?;
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let key = parse_key(k.value())?;
            let entry = migrate::entry(&key, v.value())?;
            entries.push((key, entry));
        }
    }
    let mut sets = Vec::new();
    {
        let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
        for row in table.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            sets.push(migrate::change_set(v.value())?);
        }
    }
    let mut table = tx.open_table(ENTRIES).map_err(backend)?;
    for (key, entry) in &entries {
        let bytes = serde_json::to_vec(entry).map_err(backend)?;
        table
            .insert(key.to_string().as_str(), bytes.as_slice())
            .map_err(backend)?;
    }
    let mut table = tx.open_table(CHANGE_SETS).map_err(backend)?;
    let mut versions = tx.open_table(VERSIONS).map_err(backend)?;
    let mut last = 0;
    for cs in &sets {
        let bytes = serde_json::to_vec(cs).map_err(backend)?;
        table.insert(cs.seq, bytes.as_slice()).map_err(backend)?;
        versions
            .insert(cs.version.to_string().as_str(), cs.seq)
            .map_err(backend)?;
        last = last.max(cs.version.hlc.0);
    }
    tx.open_table(META)
        .map_err(backend)?
        .insert("last_hlc", last)
        .map_err(backend)?;
    Ok(())
}

impl Store for DiskStore {
    fn live(&self) -> Result<Live, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(ENTRIES).map_err(backend)?;
        let mut live = Live::new();
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            live.insert(parse_key(k.value())?, decode(k.value(), v.value())?);
        }
        Ok(live)
    }

    fn live_under(&self, prefixes: &[String]) -> Result<Live, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(ENTRIES).map_err(backend)?;
        let mut live = Live::new();
        for prefix in prefixes {
            // Keys sort as their text: a prefix's keys are one range from the prefix on.
            for row in table.range(prefix.as_str()..).map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                live.insert(parse_key(k.value())?, decode(k.value(), v.value())?);
            }
        }
        Ok(live)
    }

    fn entries(&self, keys: &[Key]) -> Result<Live, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        read_entries(&tx.open_table(ENTRIES).map_err(backend)?, keys.iter())
    }

    fn commit(&mut self, p: Proposal) -> Result<ChangeSet, CommitError> {
        let tx = begin(&self.db)?;
        // The conflict check reads inside the write transaction: nothing can change
        // between the check and the writes.
        let seen = Self::entries_of(&tx, p.base.keys().chain(p.writes.keys()))?;
        let conflicts = check_base(&p.base, |k| seen.get(k));
        if !conflicts.is_empty() {
            // Dropping the transaction aborts it: nothing is written.
            return Err(CommitError::Stale(conflicts));
        }
        let keys: Vec<Key> = p.writes.keys().cloned().collect();
        let supersedes = supersedes(&p.writes, |k| seen.get(k));
        let cs = Self::record(
            &tx,
            change_set(
                p.version, p.wall_ms, p.meta, p.writes, supersedes, p.settles,
            ),
            &keys,
        )?;
        tx.commit().map_err(backend)?;
        Ok(cs)
    }

    fn merge(&mut self, cs: ChangeSet) -> Result<Merged, StoreError> {
        let tx = begin(&self.db)?;
        let known = tx
            .open_table(VERSIONS)
            .map_err(backend)?
            .get(cs.version.to_string().as_str())
            .map_err(backend)?
            .is_some();
        if known {
            return Ok(Merged::default());
        }
        let seen = Self::entries_of(&tx, cs.writes.keys())?;
        let won = winners(&cs, |k| seen.get(k));
        Self::record(&tx, cs, &won)?;
        tx.commit().map_err(backend)?;
        Ok(Merged { new: true, won })
    }

    fn replace(&mut self, change_sets: Vec<ChangeSet>) -> Result<(), StoreError> {
        let tx = begin(&self.db)?;
        // `meta` stays: its format, and its clock reading as the floor of the new one.
        tx.delete_table(ENTRIES).map_err(backend)?;
        tx.delete_table(VERSIONS).map_err(backend)?;
        tx.delete_table(CHANGE_SETS).map_err(backend)?;
        for cs in change_sets {
            let seen = Self::entries_of(&tx, cs.writes.keys())?;
            let won = winners(&cs, |k| seen.get(k));
            Self::record(&tx, cs, &won)?;
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }

    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push(decode(&format!("change set {}", k.value()), v.value())?);
        }
        Ok(out)
    }

    fn change_sets_of(&self, versions: &[Version]) -> Result<Vec<ChangeSet>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let seqs = tx.open_table(VERSIONS).map_err(backend)?;
        let sets = tx.open_table(CHANGE_SETS).map_err(backend)?;
        let mut out = Vec::with_capacity(versions.len());
        for version in versions {
            let Some(seq) = seqs.get(version.to_string().as_str()).map_err(backend)? else {
                continue;
            };
            let seq = seq.value();
            let row = sets
                .get(seq)
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("version {version}"),
                    message: format!("names change set {seq}, which is not there"),
                })?;
            out.push(decode(&format!("change set {seq}"), row.value())?);
        }
        Ok(out)
    }

    fn last_hlc(&self) -> Result<Hlc, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let meta = tx.open_table(META).map_err(backend)?;
        Ok(Hlc(meta
            .get("last_hlc")
            .map_err(backend)?
            .map_or(0, |v| v.value())))
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
        let mut store = DiskStore::open(&path).unwrap();
        assert_eq!(store.change_sets().unwrap().len(), 6);
        assert_eq!(store.last_hlc().unwrap(), Hlc::new(50, 0));
        // What was merged is still known after reopening: merging it again is a no-op.
        let again = super::super::tests::remote(40, "lab2", &[("cluster/ntp", Some("ntp"))]);
        assert_eq!(store.merge(again).unwrap(), Merged::default());
        drop(store);
        let other = dir.path().join("replaced.redb");
        super::super::tests::replace_contract(&mut DiskStore::open(&other).unwrap());
        // What replaced the store is what a reopened store holds.
        let store = DiskStore::open(&other).unwrap();
        assert_eq!(store.change_sets().unwrap().len(), 3);
        assert_eq!(store.last_hlc().unwrap(), Hlc::new(90, 0));
    }

    /// Flips `len` bytes at every place `needle` is in the file at `path`: whichever copy
    /// of a record is live (earlier versions linger in freed pages), it is hit.
    fn damage(path: &Path, needle: &[u8], len: usize) {
        let mut bytes = std::fs::read(path).unwrap();
        let at: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect();
        assert!(!at.is_empty(), "nothing to damage");
        for i in at {
            let end = (i + len).min(bytes.len());
            for b in &mut bytes[i..end] {
                *b ^= 0xa5;
            }
        }
        std::fs::write(path, &bytes).unwrap();
    }

    #[test]
    fn a_damaged_store_is_refused_when_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let mut store = DiskStore::open(&path).unwrap();
            super::super::tests::store_contract(&mut store);
        }
        // A record both live and in the history: every copy of it.
        damage(&path, br#""author":"bob""#, 100);
        let err = DiskStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("the store at {} is damaged: ", path.display())),
            "{err}"
        );
    }

    /// Writes a store as the first agents did: no `meta` table, KDL text values.
    fn write_format_1(path: &Path) {
        const OLD_ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
        const OLD_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("change_sets");
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        let stamp = r#"{"version":{"hlc":655360,"origin":"lab1"},"wall_ms":10,"change_set":1,"meta":{"author":"a","user":"a","host":"lab1","source":{"kind":"cli"},"message":"m"}}"#;
        tx.open_table(OLD_ENTRIES)
            .unwrap()
            .insert(
                "cluster/dns",
                format!(r#"{{"value":"dns {{\n    server \"10.0.0.53\"\n}}\n","stamp":{stamp}}}"#)
                    .as_bytes(),
            )
            .unwrap();
        tx.open_table(OLD_SETS)
            .unwrap()
            .insert(
                1,
                br#"{"id":1,"version":{"hlc":655360,"origin":"lab1"},"wall_ms":10,"meta":{"author":"a","user":"a","host":"lab1","source":{"kind":"cli"},"message":"m"},"writes":{"cluster/dns":"dns {\n    server \"10.0.0.53\"\n}\n"}}"#.as_slice(),
            )
            .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn a_format_1_store_is_converted_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        write_format_1(&path);
        let store = DiskStore::open(&path).unwrap();
        let dns: Key = "cluster/dns".parse().unwrap();
        let live = store.live().unwrap();
        assert_eq!(
            live[&dns].value.as_ref().unwrap().to_text(&dns),
            "dns {\n    server \"10.0.0.53\"\n}\n"
        );
        let sets = store.change_sets().unwrap();
        assert_eq!((sets.len(), sets[0].seq), (1, 1));
        assert_eq!(live[&dns].stamp.change_set(), sets[0].id());
        assert_eq!(store.last_hlc().unwrap(), Hlc::new(10, 0));
        drop(store);

        // A store from a later Strata is refused, not misread.
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META).unwrap().insert("format", 99).unwrap();
        tx.commit().unwrap();
        drop(db);
        let err = DiskStore::open(&path).unwrap_err();
        assert!(
            err.to_string()
                .contains("uses format 99; this Strata reads format 2"),
            "{err}"
        );
    }
}
