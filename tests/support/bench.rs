//! What the cluster benchmarks (`benches/replication.rs`, `benches/push.rs`) share: forming
//! a cluster of real agents at a chosen ping interval, waiting for a full mesh, the repo
//! whose cluster-level `dns` server is the marker of commit `k`, watching every machine's
//! `running/dns.kdl` for it, and the figures (nearest-rank quantiles, milliseconds). Not
//! part of the library: included with `#[path]` by the benches, which also include
//! `tests/it/agent_support.rs`, `tests/it/mesh_support.rs` and `tests/support/readings.rs`.

#![allow(dead_code)] // each bench uses some of it

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent_support::ok;
use crate::mesh_support::{MeshHarness, wait_until};
use crate::readings::time_of_day;

/// The admin passphrase of the clusters [`form`] makes.
pub const PASSPHRASE: &str = "bench passphrase";

/// How long anything the mesh does may take before a bench gives up.
pub const SETTLE: Duration = Duration::from_secs(120);

pub fn ms(seconds: f64) -> f64 {
    seconds * 1000.0
}

/// The value at quantile `q` (nearest rank) of sorted `v`.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Waits until each of `members` sees a direct link up to every other one (to each of its
/// overlay neighbours above the cluster's full-mesh size).
pub fn full_mesh(h: &MeshHarness, members: &[usize]) -> Duration {
    let started = Instant::now();
    // Above the cluster's default full-mesh size, the overlay's links.
    let names: std::collections::BTreeSet<strata::model::MachineName> = members
        .iter()
        .map(|i| strata::model::MachineName::new(&h.machine(*i).name).unwrap())
        .collect();
    for &i in members {
        let me = strata::model::MachineName::new(&h.machine(i).name).unwrap();
        let want = strata::protocol::overlay::neighbors(
            &names,
            &me,
            strata::protocol::overlay::FULL_MESH_UP_TO,
        )
        .len();
        wait_until(
            SETTLE,
            "every member linked (a full mesh, or the overlay above it)",
            || {
                let up = h.links_up(i).len();
                if up == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{} sees {up} links up, not {want}",
                        h.machine(i).name
                    ))
                }
            },
        );
    }
    started.elapsed()
}

/// Machine 1 creates cluster `name` from a one-machine repo (ping interval `ping`, ms),
/// sets the admin passphrase, and `joiners` join through it one after another; returns
/// the passphrase file.
pub fn form(h: &MeshHarness, root: &Path, name: &str, ping: u64, joiners: &[usize]) -> PathBuf {
    ok(&h.strata(1, &["cluster", "create", name]));
    let seed = root.join(format!("seed-{name}"));
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("cluster.kdl"),
        format!(
            "cluster \"{name}\" {{\n    cluster-mesh ping-interval-ms={ping}\n}}\ngroup \"Main_Group\"\nmachine \"{}\"\n",
            h.machine(1).name
        ),
    )
    .unwrap();
    ok(&h.strata(
        1,
        &["apply", "--repo", &seed.display().to_string(), "--yes"],
    ));
    let pass = root.join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    set_passphrase(h, &pass);
    for &i in joiners {
        h.join(i, &pass);
    }
    pass
}

/// Sets the cluster's admin passphrase, through machine 1, to the one in file `pass`.
pub fn set_passphrase(h: &MeshHarness, pass: &Path) {
    let pass = pass.display().to_string();
    ok(&h.strata(1, &["cluster", "passwd", "--passphrase-file", &pass]));
}

/// Every machine's `running/dns.kdl`, in order.
pub fn dns_files(h: &MeshHarness) -> Vec<PathBuf> {
    h.machines()
        .map(|m| m.dir.join("running/dns.kdl"))
        .collect()
}

/// Polls `files` every millisecond until each contains `marker`; returns when each was
/// first seen to (wall seconds of the day).
pub fn watch(files: &[PathBuf], marker: &str) -> Vec<f64> {
    let started = Instant::now();
    let mut seen: Vec<Option<f64>> = vec![None; files.len()];
    loop {
        let mut all = true;
        for (file, at) in files.iter().zip(seen.iter_mut()) {
            if at.is_none() {
                if std::fs::read_to_string(file).is_ok_and(|t| t.contains(marker)) {
                    *at = Some(time_of_day());
                } else {
                    all = false;
                }
            }
        }
        if all {
            return seen.into_iter().flatten().collect();
        }
        assert!(
            started.elapsed() < SETTLE,
            "{marker} did not reach every machine within {SETTLE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Commit number `k`: `dns` at cluster level changes to server `10.A.B.53`.
pub fn marker(k: usize) -> String {
    format!("\"10.{}.{}.53\"", k / 250 + 1, k % 250)
}

/// Writes `repo/cluster.kdl`: cluster `bench` pinging every `ping` ms, with `sections`
/// (KDL lines, each indented and ending in a newline; may be empty) and a `dns` naming
/// [`marker`]`(k)`, group `Main_Group`, and machines `lab1..=labN`.
pub fn write_repo(repo: &Path, n: usize, ping: u64, k: usize, sections: &str) {
    let mut text = format!(
        "cluster \"bench\" {{\n    cluster-mesh ping-interval-ms={ping}\n{sections}    dns {{\n        server {} priority=0\n    }}\n}}\ngroup \"Main_Group\"\n",
        marker(k)
    );
    for i in 1..=n {
        text.push_str(&format!("machine \"lab{i}.example.com\"\n"));
    }
    std::fs::write(repo.join("cluster.kdl"), text).unwrap();
}
