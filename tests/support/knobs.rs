//! What a benchmark run is told through the environment, read one way by every bench:
//! the cluster sizes to measure (`STRATA_BENCH_MESH=5,20`, …), counts
//! (`STRATA_BENCH_COMMITS=200`, …), and `STRATA_BENCH_KEEP`, which keeps the state dirs
//! (and the agents' logs) for a look after. Not part of the library: included with
//! `#[path]`.

#![allow(dead_code)] // each bench uses some of it

use std::path::PathBuf;

/// The sizes listed in `var` (comma-separated), else those of `default`.
pub fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The number in `var`, else `default`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The state dirs' root: removed with the returned guard, or kept (and said where) when
/// `STRATA_BENCH_KEEP` is set.
pub fn root() -> (Option<tempfile::TempDir>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("STRATA_BENCH_KEEP").is_some() {
        let root = dir.keep();
        eprintln!("state dirs kept in {}", root.display());
        (None, root)
    } else {
        let root = dir.path().to_path_buf();
        (Some(dir), root)
    }
}
