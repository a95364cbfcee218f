//! Reading records of the store format before typed entries (format 1, which had no
//! `meta` table): values were canonical KDL text and change sets were numbered locally.
//! [`super::DiskStore::open`] converts such a store in one transaction ([`upgrade`]);
//! nothing is ever read in the wrong format.

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};
use serde::Deserialize;

use super::disk::{CHANGE_SETS, ENTRIES, META, VERSIONS, backend, encoding, parse_key};

use super::{ChangeMeta, ChangeSet, Entry, EntryValue, Key, Stamp, StoreError, Version, Writes};

/// The format that had no number: what the first agents wrote.
pub const FORMAT_1: u32 = 1;

#[derive(Deserialize)]
struct EntryV1 {
    value: Option<String>,
    // Format 1 stamps also held the local change-set number; it is dropped.
    stamp: Stamp,
}

#[derive(Deserialize)]
struct ChangeSetV1 {
    id: u64,
    version: Version,
    wall_ms: u64,
    meta: ChangeMeta,
    writes: BTreeMap<Key, Option<String>>,
}

fn corrupt(record: &str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: format!("{record} (format {FORMAT_1})"),
        message: message.into(),
    }
}

fn value(key: &Key, text: Option<String>, record: &str) -> Result<Option<EntryValue>, StoreError> {
    text.map(|t| crate::config::value_from_text(key, &t).map_err(|e| corrupt(record, e)))
        .transpose()
}

/// A format-1 entry record.
pub fn entry(key: &Key, bytes: &[u8]) -> Result<Entry, StoreError> {
    let record = key.to_string();
    let old: EntryV1 =
        serde_json::from_slice(bytes).map_err(|e| corrupt(&record, e.to_string()))?;
    Ok(Entry {
        value: value(key, old.value, &record)?,
        stamp: old.stamp,
    })
}

/// A format-1 change-set record; its local number stays its display index.
pub fn change_set(bytes: &[u8]) -> Result<ChangeSet, StoreError> {
    let old: ChangeSetV1 =
        serde_json::from_slice(bytes).map_err(|e| corrupt("change set", e.to_string()))?;
    let record = format!("change set {}", old.id);
    let mut writes = Writes::new();
    for (k, v) in old.writes {
        let v = value(&k, v, &record)?;
        writes.insert(k, v);
    }
    Ok(ChangeSet {
        seq: old.id,
        version: old.version,
        wall_ms: old.wall_ms,
        meta: old.meta,
        writes,
        supersedes: None,
        settles: Vec::new(),
    })
}

/// Converts a format-1 store's records in `tx`, the transaction that opens it.
pub(super) fn upgrade(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut entries = Vec::new();
    {
        let table = tx.open_table(ENTRIES).map_err(backend)?;
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let key = parse_key(k.value())?;
            let entry = entry(&key, v.value())?;
            entries.push((key, entry));
        }
    }
    let mut sets = Vec::new();
    {
        let table = tx.open_table(CHANGE_SETS).map_err(backend)?;
        for row in table.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            sets.push(change_set(v.value())?);
        }
    }
    let mut table = tx.open_table(ENTRIES).map_err(backend)?;
    for (key, entry) in &entries {
        let bytes = serde_json::to_vec(entry).map_err(encoding)?;
        table
            .insert(key.to_string().as_str(), bytes.as_slice())
            .map_err(backend)?;
    }
    let mut table = tx.open_table(CHANGE_SETS).map_err(backend)?;
    let mut versions = tx.open_table(VERSIONS).map_err(backend)?;
    let mut last = 0;
    for cs in &sets {
        let bytes = serde_json::to_vec(cs).map_err(encoding)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_1_records_read_as_typed_values() {
        let key: Key = "cluster/dns".parse().unwrap();
        let stamp = r#"{"version":{"hlc":655360,"origin":"lab1"},"wall_ms":10,"change_set":1,"meta":{"author":"a","user":"a","host":"lab1","source":{"kind":"cli"},"message":"m"}}"#;
        let e = entry(
            &key,
            format!(r#"{{"value":"dns\n","stamp":{stamp}}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(e.value.unwrap().to_text(&key), "dns\n");
        let cs = change_set(
            br#"{"id":3,"version":{"hlc":655360,"origin":"lab1"},"wall_ms":10,"meta":{"author":"a","user":"a","host":"lab1","source":{"kind":"cli"},"message":"m"},"writes":{"@machine:lab1":"machine lab1 group=Paris\n","cluster/ntp":null}}"#,
        )
        .unwrap();
        assert_eq!(cs.seq, 3);
        assert_eq!(cs.writes.len(), 2);
        let bad = entry(
            &key,
            format!(r#"{{"value":"ntp\n","stamp":{stamp}}}"#).as_bytes(),
        );
        assert!(bad.unwrap_err().to_string().contains("format 1"));
    }
}
