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
//! An I/O error (a full disk, a failing one) latches redb: every later transaction fails
//! with "Previous I/O error occurred" until the database is closed and opened again. So
//! the store closes its database at the first I/O error, records the failure in its
//! [`Health`] (the machine is Degraded meanwhile), and reopens the file at the next use
//! — verified as at start. The transaction that failed wrote nothing; the next write that
//! succeeds (a commit, a merge, [`Store::probe`]) clears the failure.
//!
//! Tables: `meta` (`format`, `last_hlc`), `entries` (key text → [`Entry`]),
//! `change_sets` (display index → [`ChangeSet`]), `versions` (version text → display
//! index, so merging a change set twice is noticed). A store without `meta` but with
//! entries is format 1 and is converted when opened ([`super::migrate`]).

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::decoded::Decoded;
use super::memory::{change_set, written};
use super::{
    ChangeSet, CommitError, Entry, Health, Hlc, Key, Live, Merged, Proposal, Store, StoreError,
    Version, check_base, merged_entries, migrate, supersedes, wall_ms,
};
use crate::model::ENCODING;

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
pub(super) const CHANGE_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("change_sets");
pub(super) const VERSIONS: TableDefinition<&str, u64> = TableDefinition::new("versions");

/// How much room the store's file system must have before a store that failed to write
/// is written again ([`Store::probe`]).
pub const PROBE_ROOM: u64 = 1 << 20;

/// The bytes free for the agent's user on the file system of `path`, if it can be told.
fn free_space(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty())?;
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Opens the database file: the real file, or in tests one behind a backend that fails
/// on demand.
type OpenDb = dyn Fn(&Path) -> Result<Database, DatabaseError> + Send + Sync;

/// The redb-backed store.
pub struct DiskStore {
    path: PathBuf,
    open_db: Box<OpenDb>,
    /// `None` once an I/O error closed it, until the next use opens it again.
    db: RwLock<Option<Database>>,
    health: Health,
    /// Membership entries decoded before ([`super::decoded`]).
    decoded: Decoded,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .field("health", &self.health.failure())
            .finish()
    }
}

/// A redb error as a store error: [`StoreError::Io`] when the file could not be read or
/// written (or redb latched an earlier such error), which closes the database.
pub(super) fn backend(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed => {
            StoreError::Io(e.to_string())
        }
        e => StoreError::Backend(e.to_string()),
    }
}

pub(super) fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("cannot encode a record: {e}"))
}

/// The I/O failure an error of an operation on the database carries, if it is one.
trait IoFailure {
    fn io_failure(&self) -> Option<&str>;
}

impl IoFailure for StoreError {
    fn io_failure(&self) -> Option<&str> {
        match self {
            StoreError::Io(message) => Some(message),
            _ => None,
        }
    }
}

impl IoFailure for CommitError {
    fn io_failure(&self) -> Option<&str> {
        match self {
            CommitError::Store(e) => e.io_failure(),
            CommitError::Stale(_) => None,
        }
    }
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

pub(super) fn parse_key(text: &str) -> Result<Key, StoreError> {
    text.parse()
        .map_err(|e: super::KeyParseError| StoreError::Corrupt {
            key: text.to_owned(),
            message: e.to_string(),
        })
}

impl DiskStore {
    /// Opens the store at `path`, creating it if needed; converts a format-1 store and
    /// refuses one of any other format, and one that does not verify.
    pub fn open(path: &Path) -> Result<DiskStore, StoreError> {
        DiskStore::open_with(
            path,
            Box::new(|path| {
                Database::builder()
                    .set_check_integrity_on_open(true)
                    .create(path)
            }),
        )
    }

    /// Opens the store at `path` through `open_db`, which it calls again to reopen it.
    fn open_with(path: &Path, open_db: Box<OpenDb>) -> Result<DiskStore, StoreError> {
        let db = prepare(path, &open_db)?;
        Ok(DiskStore {
            path: path.to_path_buf(),
            open_db,
            db: RwLock::new(Some(db)),
            health: Health::default(),
            decoded: Decoded::default(),
        })
    }

    /// Runs `op` on the database, opening it again first if an I/O error closed it; an
    /// I/O error of `op` closes it (see the module header).
    fn with_db<T, E: IoFailure + From<StoreError>>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = match self.opened()?.as_ref() {
            Some(db) => op(db),
            None => Err(StoreError::Io("the store is closed".into()).into()),
        };
        if let Some(error) = result.as_ref().err().and_then(IoFailure::io_failure) {
            self.health.failed(error, wall_ms());
            tracing::error!(path = %self.path.display(), "store I/O error, the store is closed to be reopened: {error}");
            drop(self.db.write().unwrap_or_else(|e| e.into_inner()).take());
        }
        result
    }

    /// As [`DiskStore::with_db`], for a write: one that succeeds clears the failure.
    fn write<T, E: IoFailure + From<StoreError>>(
        &mut self,
        op: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = self.with_db(op);
        if result.is_ok()
            && let Some(was) = self.health.recovered()
        {
            tracing::info!(path = %self.path.display(), failing_since_ms = was.since_ms, "the store is written again");
        }
        result
    }

    /// The database, opened again if an I/O error closed it.
    fn opened(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        if db.is_some() {
            return Ok(db);
        }
        drop(db);
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            match prepare(&self.path, &self.open_db) {
                Ok(db) => {
                    tracing::info!(path = %self.path.display(), "store reopened after an I/O error");
                    *slot = Some(db);
                }
                Err(e) => {
                    if let Some(error) = e.io_failure() {
                        self.health.failed(error, wall_ms());
                    }
                    return Err(e);
                }
            }
        }
        drop(slot);
        Ok(self.db.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records `cs` (given its display index here) and writes `keys` of it to the live
    /// entries, inside `tx`.
    fn record(
        tx: &WriteTransaction,
        mut cs: ChangeSet,
        written: &[(Key, Entry)],
    ) -> Result<ChangeSet, StoreError> {
        let mut sets = tx.open_table(CHANGE_SETS).map_err(backend)?;
        cs.seq = sets
            .last()
            .map_err(backend)?
            .map_or(1, |(k, _)| k.value() + 1);
        let mut entries = tx.open_table(ENTRIES).map_err(backend)?;
        for (key, entry) in written {
            let bytes = serde_json::to_vec(entry).map_err(encoding)?;
            entries
                .insert(key.to_string().as_str(), bytes.as_slice())
                .map_err(backend)?;
        }
        let bytes = serde_json::to_vec(&cs).map_err(encoding)?;
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

    /// The entry stored as `bytes` under `key`, decoded (or as decoded before).
    fn entry(&self, key: &str, bytes: &[u8]) -> Result<Entry, StoreError> {
        self.decoded.entry(key, bytes, || decode(key, bytes))
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
/// Opens the database at `path` through `open_db`: converts a format-1 store, refuses one
/// of any other format, and creates the tables.
fn prepare(path: &Path, open_db: &OpenDb) -> Result<Database, StoreError> {
    let db = match open_db(path) {
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
        migrate::upgrade(&tx)?;
        tracing::info!(path = %path.display(), "store converted from format 1");
    } else if format != u64::from(ENCODING) {
        return Err(StoreError::Format {
            path: path.display().to_string(),
            found: u32::try_from(format).unwrap_or(u32::MAX),
            expected: ENCODING,
        });
    }
    let ready = [
        META.name(),
        ENTRIES.name(),
        CHANGE_SETS.name(),
        VERSIONS.name(),
    ]
    .into_iter()
    .all(has);
    if ready && format == u64::from(ENCODING) {
        // Nothing to write: a store reopened on a full disk opens all the same.
        tx.abort().map_err(backend)?;
        return Ok(db);
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
    Ok(db)
}

impl Store for DiskStore {
    fn live(&self) -> Result<Live, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(ENTRIES).map_err(backend)?;
            let mut live = Live::new();
            for row in table.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                live.insert(parse_key(k.value())?, self.entry(k.value(), v.value())?);
            }
            Ok(live)
        })
    }

    fn live_under(&self, prefixes: &[String]) -> Result<Live, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(ENTRIES).map_err(backend)?;
            let mut live = Live::new();
            for prefix in prefixes {
                // Keys sort as their text: a prefix's keys are one range from the prefix on.
                for row in table.range(prefix.as_str()..).map_err(backend)? {
                    let (k, v) = row.map_err(backend)?;
                    if !k.value().starts_with(prefix.as_str()) {
                        break;
                    }
                    live.insert(parse_key(k.value())?, self.entry(k.value(), v.value())?);
                }
            }
            Ok(live)
        })
    }

    fn entries(&self, keys: &[Key]) -> Result<Live, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
            read_entries(&tx.open_table(ENTRIES).map_err(backend)?, keys.iter())
        })
    }

    fn commit(&mut self, p: Proposal) -> Result<ChangeSet, CommitError> {
        self.write(|db| {
            let tx = begin(db)?;
            // The conflict check reads inside the write transaction: nothing can change
            // between the check and the writes.
            let seen = Self::entries_of(&tx, p.base.keys().chain(p.writes.keys()))?;
            let conflicts = check_base(&p.base, |k| seen.get(k));
            if !conflicts.is_empty() {
                // Dropping the transaction aborts it: nothing is written.
                return Err(CommitError::Stale(conflicts));
            }
            let mut writes = p.writes;
            super::facts::stamp(&mut writes, &p.version, &p.meta, |k| seen.get(k));
            let supersedes = supersedes(&writes, |k| seen.get(k));
            let cs = change_set(p.version, p.wall_ms, p.meta, writes, supersedes, p.settles);
            let entries = written(&cs);
            let cs = Self::record(&tx, cs, &entries)?;
            tx.commit().map_err(backend)?;
            Ok(cs)
        })
    }

    fn merge(&mut self, cs: ChangeSet) -> Result<Merged, StoreError> {
        self.write(|db| {
            let tx = begin(db)?;
            let known = tx
                .open_table(VERSIONS)
                .map_err(backend)?
                .get(cs.version.to_string().as_str())
                .map_err(backend)?
                .is_some();
            if known {
                return Ok(Merged::default());
            }
            let mut seen = Self::entries_of(&tx, cs.writes.keys())?;
            let (won, entries) = merged_entries(&cs, |k| seen.get(k));
            Self::record(&tx, cs, &entries)?;
            tx.commit().map_err(backend)?;
            seen.retain(|k, _| won.binary_search(k).is_ok());
            Ok(Merged {
                new: true,
                changed: entries.into_iter().map(|(k, _)| k).collect(),
                replaced: seen,
            })
        })
    }

    fn replace(&mut self, change_sets: Vec<ChangeSet>) -> Result<(), StoreError> {
        self.write(|db| {
            let tx = begin(db)?;
            // `meta` stays: its format, and its clock reading as the floor of the new one.
            tx.delete_table(ENTRIES).map_err(backend)?;
            tx.delete_table(VERSIONS).map_err(backend)?;
            tx.delete_table(CHANGE_SETS).map_err(backend)?;
            // Created again even when nothing is written to them: an empty store reads.
            tx.open_table(ENTRIES).map_err(backend)?;
            tx.open_table(VERSIONS).map_err(backend)?;
            tx.open_table(CHANGE_SETS).map_err(backend)?;
            for cs in change_sets {
                let seen = Self::entries_of(&tx, cs.writes.keys())?;
                let (_, entries) = merged_entries(&cs, |k| seen.get(k));
                Self::record(&tx, cs, &entries)?;
            }
            tx.commit().map_err(backend)?;
            Ok(())
        })
    }

    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
            let mut out = Vec::new();
            for row in table.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                out.push(decode(&format!("change set {}", k.value()), v.value())?);
            }
            Ok(out)
        })
    }

    fn change_sets_of(&self, versions: &[Version]) -> Result<Vec<ChangeSet>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
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
        })
    }

    fn last_hlc(&self) -> Result<Hlc, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let meta = tx.open_table(META).map_err(backend)?;
            Ok(Hlc(meta
                .get("last_hlc")
                .map_err(backend)?
                .map_or(0, |v| v.value())))
        })
    }

    fn health(&self) -> Health {
        self.health.clone()
    }

    /// Checks that the file system has [`PROBE_ROOM`] free, then rewrites the format
    /// number: a real write transaction, two-phase and durable, which changes nothing. The
    /// room comes first because the write alone may fit in pages the file already has,
    /// and pass while the disk is still full: the next merge would fail again.
    fn probe(&mut self) -> Result<(), StoreError> {
        if let Some(free) = free_space(&self.path)
            && free < PROBE_ROOM
        {
            return Err(StoreError::Io(format!(
                "{} KiB free on the store's file system, fewer than the {} KiB it waits for",
                free / 1024,
                PROBE_ROOM / 1024
            )));
        }
        self.write(|db| {
            let tx = begin(db)?;
            tx.open_table(META)
                .map_err(backend)?
                .insert("format", u64::from(ENCODING))
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
