//! The disk store's tests: the contract, reopening, damage, format 1, and I/O errors
//! injected through a redb backend that fails writes on demand.

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

/// A disk that can fill up: while full, the store's file cannot grow past the length it
/// had when the disk filled (blocks it has can be rewritten, as on a full file system;
/// new ones cannot be had), and such a write fails with ENOSPC.
#[derive(Debug, Clone, Default)]
struct Disk {
    /// The length writes may not pass; `None`: room enough.
    limit: std::sync::Arc<std::sync::Mutex<Option<u64>>>,
}

impl Disk {
    fn fill(&self, path: &Path) {
        *self.limit.lock().unwrap() = Some(std::fs::metadata(path).unwrap().len());
    }

    fn free(&self) {
        *self.limit.lock().unwrap() = None;
    }

    /// Opens the store at `path` on this disk.
    fn open(&self, path: &Path) -> DiskStore {
        let disk = self.clone();
        DiskStore::open_with(
            path,
            Box::new(move |path| {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)?;
                Database::builder()
                    .set_check_integrity_on_open(true)
                    .create_with_backend(OnDisk {
                        file: redb::backends::FileBackend::new(file)?,
                        disk: disk.clone(),
                    })
            }),
        )
        .unwrap()
    }
}

/// redb's file backend on a [`Disk`].
#[derive(Debug)]
struct OnDisk {
    file: redb::backends::FileBackend,
    disk: Disk,
}

use std::ops::Bound;

impl redb::StorageBackend for OnDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if let Some(limit) = *self.disk.limit.lock().unwrap()
            && offset + data.len() as u64 > limit
        {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.file.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }
    fn try_lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.file.try_lock_range(a, b)
    }
    fn try_lock_shared_range(
        &self,
        a: Bound<u64>,
        b: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.file.try_lock_shared_range(a, b)
    }
    fn lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.lock_range(a, b)
    }
    fn lock_shared_range(&self, a: Bound<u64>, b: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.lock_shared_range(a, b)
    }
    fn unlock_range(&self, a: Bound<u64>, b: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.unlock_range(a, b)
    }
    fn query_lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.file.query_lock_range(a, b)
    }
}

/// A local commit of `cluster/dns` server `server`, against what the store holds now,
/// with a message of `size` bytes.
fn commit_dns(
    store: &mut DiskStore,
    hlc: u64,
    server: &str,
    size: usize,
) -> Result<ChangeSet, CommitError> {
    let dns: Key = "cluster/dns".parse().unwrap();
    let base = [(
        dns.clone(),
        store
            .entries(std::slice::from_ref(&dns))
            .unwrap()
            .get(&dns)
            .map(|e| e.stamp.version.clone()),
    )]
    .into();
    let text = format!("dns {{ server \"{server}\"; }}");
    let mut p = super::super::tests::proposal(hlc, &[("cluster/dns", Some(&text))], base);
    p.meta.message = "x".repeat(size);
    store.commit(p)
}

/// A commit that needs more room than the file has free (1 MiB).
const LARGE: usize = 1 << 20;

/// The error of a commit that must fail.
fn refused(result: Result<ChangeSet, CommitError>) -> CommitError {
    match result {
        Ok(cs) => panic!("change set {} was committed", cs.id()),
        Err(e) => e,
    }
}

#[test]
fn a_full_disk_fails_writes_until_space_is_back_then_the_store_writes_again_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let disk = Disk::default();
    let mut store = disk.open(&path);
    let health = store.health();
    commit_dns(&mut store, 10, "10.0.0.1", 10).unwrap();
    disk.fill(&path);

    // Full: the commit fails, nothing of it is kept, and the failure is reported.
    let err = refused(commit_dns(&mut store, 20, "10.0.0.2", LARGE));
    assert!(
        matches!(&err, CommitError::Store(StoreError::Io(m)) if m.contains("No space left on device")),
        "{err}"
    );
    let failure = health.failure().expect("the failure is reported");
    assert!(
        failure.error.contains("No space left on device"),
        "{failure:?}"
    );
    // Reads still work (the store is reopened for them), and show no trace of it.
    assert_eq!(store.change_sets().unwrap().len(), 1);
    refused(commit_dns(&mut store, 30, "10.0.0.3", LARGE));
    assert_eq!(health.failure().unwrap().since_ms, failure.since_ms);

    // Space is back: the next write works, with no restart, and clears the failure.
    disk.free();
    store.probe().unwrap();
    assert_eq!(health.failure(), None);
    let cs = commit_dns(&mut store, 40, "10.0.0.4", LARGE).unwrap();
    assert_eq!(cs.seq, 2);
    let merged = store
        .merge(super::super::tests::remote(
            50,
            "lab2",
            &[("cluster/ntp", Some("ntp"))],
        ))
        .unwrap();
    assert!(merged.new);
    drop(store);
    // What was acknowledged is what a fresh open finds: nothing of the failed commits.
    let store = DiskStore::open(&path).unwrap();
    let sets = store.change_sets().unwrap();
    assert_eq!(
        sets.iter()
            .map(|c| c.version.hlc.0 >> 16)
            .collect::<Vec<_>>(),
        [10, 40, 50]
    );
}

#[test]
fn the_disk_store_ranks_reverts_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    super::super::tests::revert_contract(&mut || {
        n += 1;
        Box::new(DiskStore::open(&dir.path().join(format!("store{n}.redb"))).unwrap())
    });
}
