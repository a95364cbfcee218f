//! Membership entries the disk store decoded before, kept beside the bytes they came
//! from. Every member reads every membership again after each join and each change to
//! one (the logins' keys, the mesh's members): at 100 machines, decoding the same JSON
//! over and over was a twentieth of all the agents' CPU while a cluster formed. An entry
//! is served from here only when the stored bytes are exactly those it was decoded
//! from, so nothing here can go stale; only keys under `@` (the cluster, groups,
//! machines, pending joins, identities: about one per machine) are kept.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Entry, StoreError};

/// How many entries are kept before all are dropped (a removed membership's stays
/// until then).
const MAX_KEPT: usize = 8192;

/// An entry as decoded, with the bytes it was decoded from.
type Kept = (Box<[u8]>, Entry);

/// Decoded membership entries by key text.
#[derive(Default)]
pub(super) struct Decoded {
    kept: Mutex<HashMap<String, Kept>>,
}

impl Decoded {
    /// The entry stored as `bytes` under `key`: decoded by `decode`, or as it was
    /// decoded before from the same bytes.
    pub(super) fn entry(
        &self,
        key: &str,
        bytes: &[u8],
        decode: impl FnOnce() -> Result<Entry, StoreError>,
    ) -> Result<Entry, StoreError> {
        if !key.starts_with('@') {
            return decode();
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((was, entry)) = kept.get(key)
            && **was == *bytes
        {
            return Ok(entry.clone());
        }
        let entry = decode()?;
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(key.to_owned(), (bytes.into(), entry.clone()));
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntryValue, Stamp};
    use crate::state::tests::{meta, version};

    fn cluster(name: &str) -> Vec<u8> {
        serde_json::to_vec(&Entry {
            value: Some(EntryValue::Cluster { name: name.into() }),
            stamp: Stamp {
                version: version(1, "lab1"),
                wall_ms: 0,
                meta: meta("admin"),
            },
        })
        .unwrap()
    }

    fn entry(bytes: &[u8]) -> Result<Entry, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            key: "k".into(),
            message: e.to_string(),
        })
    }

    #[test]
    fn an_entry_is_decoded_again_when_its_bytes_change() {
        let decoded = Decoded::default();
        let (a, b) = (cluster("a"), cluster("b"));
        let calls = std::cell::Cell::new(0);
        let read = |bytes: &[u8]| {
            decoded.entry("@cluster", bytes, || {
                calls.set(calls.get() + 1);
                entry(bytes)
            })
        };
        let first = read(&a).unwrap();
        assert_eq!(read(&a).unwrap(), first);
        let second = read(&b).unwrap();
        assert_ne!(second, first);
        assert_eq!(read(&a).unwrap(), first);
        assert_eq!(
            calls.get(),
            3,
            "decoded once per change of bytes, not per read"
        );
    }

    #[test]
    fn bytes_that_do_not_decode_are_an_error_every_time() {
        let decoded = Decoded::default();
        for _ in 0..2 {
            assert!(decoded.entry("@cluster", b"{", || entry(b"{")).is_err());
        }
    }
}
