//! Benchmark: `git push` to a member until every machine runs the commit (issue 11, item
//! 7), with real agents on loopback (each behind the tests' relay, started by
//! `tests/it/mesh_support.rs`), the real git and OpenSSH clients, and the cluster formed
//! as `benches/replication.rs` forms it (`tests/support/bench.rs`).
//!
//! For N agents (default 3 and 20; `STRATA_BENCH_PUSH=3,20` to choose), pinging every
//! [`PING_MS`]: the first push, as machine 1's local administrator, brings the `users`
//! section with the operator `ci` and its key to every member (not measured). Then
//! [`PUSHES`] pushes (`STRATA_BENCH_PUSHES` to change) as `ci`, each a new commit whose
//! cluster-level `dns` server is a fresh marker, pushed to member `k mod N` in turn
//! (`git push ssh://ci@IP:PORT/config main`, `GIT_SSH_COMMAND` with the key and a
//! known_hosts pinning that agent's host key; `tests/support/pusher.rs`). Measured, from
//! spawning `git push`: until the last machine's `running/dns.kdl` holds the marker (every
//! agent's file polled at ~1 ms by this process), and until `git push` exits (it prints
//! the cluster's answer, which waits up to 5 s for every member to report). A push that
//! does not exit 0 fails the bench.
//!
//! Run with `cargo bench --bench push`. Budget (issue 11): 20 agents, p50 under 1 s.
//! `STRATA_BENCH_KEEP=1` keeps the state dirs and agents' logs.

use std::path::Path;
use std::process::Output;

#[allow(dead_code)]
#[path = "../tests/it/agent_support.rs"]
mod agent_support;
#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/knobs.rs"]
mod knobs;
#[allow(dead_code)]
#[path = "../tests/it/mesh_support.rs"]
mod mesh_support;
#[path = "../tests/support/pusher.rs"]
mod pusher;
#[path = "../tests/support/readings.rs"]
mod readings;
#[path = "../tests/support/relay.rs"]
mod relay;

use agent_support::{keypair, stderr, stdout};
use bench::{dns_files, form, full_mesh, marker, ms, quantile, sorted, watch, write_repo};
use mesh_support::MeshHarness;
use pusher::Pusher;
use readings::{since, time_of_day};

/// Pushes measured per cluster size.
const PUSHES: usize = 50;

/// The cluster's ping interval (as in `benches/replication.rs` up to 20 agents).
const PING_MS: u64 = 500;

/// The operator who pushes, with a key declared in the repo's `users`.
const USER: &str = "ci";

/// The `users` section of the bench's repo: the administrator, and the operator with
/// public key `key`.
fn users(key: &str) -> String {
    format!(
        "    users {{\n        user \"admin\" role=\"administrator\"\n        user \"{USER}\" role=\"operator\" {{\n            key \"{key}\"\n        }}\n    }}\n"
    )
}

/// Writes commit `k` to `repo` and commits it on `main`.
fn commit(repo: &Path, n: usize, k: usize, users: &str) {
    write_repo(repo, n, PING_MS, k, users);
    git::commit_all(
        repo,
        ("Bench Operator", "ops@example.com"),
        &format!("dns: {}", marker(k)),
    )
    .unwrap();
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// A push that must succeed; panics with git's output and the agent's log otherwise.
fn pushed(h: &MeshHarness, origin: usize, pusher: &Pusher, repo: &Path) -> (f64, f64, Output) {
    let spawned = time_of_day();
    let out = pusher.push(repo);
    let exited = time_of_day();
    assert!(
        out.status.success(),
        "git push to lab{origin} exited {:?}:\n{}\nlab{origin}'s log:\n{}",
        out.status.code(),
        both(&out),
        h.machine(origin).log()
    );
    (spawned, exited, out)
}

/// One measured push, in wall seconds of the day.
struct Push {
    /// `git push` was spawned.
    spawned: f64,
    /// It exited (0).
    exited: f64,
    /// The last machine's `running/dns.kdl` held the marker.
    last: f64,
    /// Its answer said every member had applied it.
    reported_all: bool,
}

/// One row of the table.
struct Row {
    n: usize,
    formed_ms: f64,
    pushes: usize,
    everywhere: [f64; 3],
    exit: [f64; 3],
    reported_all: usize,
}

fn p50_p99_max(v: Vec<f64>) -> [f64; 3] {
    let v = sorted(v);
    [quantile(&v, 0.5), quantile(&v, 0.99), *v.last().unwrap()]
}

fn run(n: usize, pushes: usize) -> Row {
    let (_guard, root) = knobs::root();
    let h = MeshHarness::start(&root, n);
    let started = std::time::Instant::now();
    let joiners: Vec<usize> = (2..=n).collect();
    form(&h, &root, "bench", PING_MS, &joiners);
    let all: Vec<usize> = (1..=n).collect();
    full_mesh(&h, &all);
    let formed_ms = ms(started.elapsed().as_secs_f64());

    let key = root.join("ci_key");
    let users = users(&keypair(&key));
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let files = dns_files(&h);
    // Not measured: lab1's local administrator brings the users (and the operator's key)
    // to every member, as the first push of `examples/demo.sh` does.
    commit(&repo, n, 0, &users);
    pushed(&h, 1, &Pusher::admin_of(&h, 1, &root), &repo);
    watch(&files, &marker(0));

    let pushers: Vec<Pusher> = (1..=n)
        .map(|i| Pusher::to_machine(&h, i, &root, USER, &key))
        .collect();
    let everyone = format!("propagation: applied on {n} of {n} machines");
    let runs: Vec<Push> = (1..=pushes)
        .map(|k| {
            commit(&repo, n, k, &users);
            let origin = k % n + 1;
            let mark = marker(k);
            let ((spawned, exited, out), seen) = std::thread::scope(|s| {
                let poller = s.spawn(|| watch(&files, &mark));
                let push = pushed(&h, origin, &pushers[origin - 1], &repo);
                (push, poller.join().unwrap())
            });
            Push {
                spawned,
                exited,
                last: seen.iter().copied().fold(f64::MIN, f64::max),
                reported_all: both(&out).contains(&everyone),
            }
        })
        .collect();
    Row {
        n,
        formed_ms,
        pushes,
        everywhere: p50_p99_max(runs.iter().map(|p| ms(since(p.spawned, p.last))).collect()),
        exit: p50_p99_max(
            runs.iter()
                .map(|p| ms(since(p.spawned, p.exited)))
                .collect(),
        ),
        reported_all: runs.iter().filter(|p| p.reported_all).count(),
    }
}

fn main() {
    let pushes = knobs::count("STRATA_BENCH_PUSHES", PUSHES);
    let mut rows = Vec::new();
    for n in knobs::sizes("STRATA_BENCH_PUSH", "3,20") {
        let r = run(n, pushes);
        eprintln!(
            "push n={:>2} (ping interval {PING_MS} ms): formed in {:.0} ms; {} pushes: spawn to applied everywhere p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             git push exit p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} answers reported every member applied",
            r.n,
            r.formed_ms,
            r.pushes,
            r.everywhere[0],
            r.everywhere[1],
            r.everywhere[2],
            r.exit[0],
            r.exit[1],
            r.exit[2],
            r.reported_all,
        );
        rows.push(r);
    }
    eprintln!();
    eprintln!(
        "| agents | pushes | git push spawned → applied everywhere p50 | p99 | max | git push exits p50 | p99 | max | answer names every member applied |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        eprintln!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} of {} |",
            r.n,
            r.pushes,
            r.everywhere[0],
            r.everywhere[1],
            r.everywhere[2],
            r.exit[0],
            r.exit[1],
            r.exit[2],
            r.reported_all,
            r.pushes,
        );
    }
}
