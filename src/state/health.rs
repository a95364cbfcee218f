//! Whether the store can be written: the I/O error that last failed it (a full disk, a
//! failing one), kept until a write succeeds again. While it is there the machine is
//! Degraded (`status`, `check`, what its pings tell its peers). A [`Health`] is a shared
//! handle, so the node reads it without waiting for the store's lock.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The store's writes fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreFailure {
    /// The last I/O error, as the store reported it.
    pub error: String,
    /// Since when writes fail (wall ms): the first error of this run of failures.
    pub since_ms: u64,
}

/// A handle on a store's failure, shared by the store and whoever reports on it.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<Option<StoreFailure>>>);

impl Health {
    /// The failure, while writes fail.
    pub fn failure(&self) -> Option<StoreFailure> {
        self.lock().clone()
    }

    /// Notes an I/O error at `now_ms`; a failure already noted keeps its start.
    pub fn failed(&self, error: &str, now_ms: u64) {
        let mut failure = self.lock();
        let since_ms = failure.as_ref().map_or(now_ms, |f| f.since_ms);
        *failure = Some(StoreFailure {
            error: error.to_owned(),
            since_ms,
        });
    }

    /// Notes a write that succeeded; returns the failure it ends, if there was one.
    pub fn recovered(&self) -> Option<StoreFailure> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<StoreFailure>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_keeps_its_start_until_a_write_ends_it() {
        let health = Health::default();
        let seen_by_others = health.clone();
        assert_eq!(health.recovered(), None);
        health.failed("No space left on device", 10);
        health.failed("Previous I/O error occurred", 20);
        assert_eq!(
            seen_by_others.failure(),
            Some(StoreFailure {
                error: "Previous I/O error occurred".into(),
                since_ms: 10
            })
        );
        assert_eq!(health.recovered().map(|f| f.since_ms), Some(10));
        assert_eq!(seen_by_others.failure(), None);
    }
}
