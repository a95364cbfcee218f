//! Benchmark: `strata validate` on generated fleets of 50 groups (1,000 and 10,000
//! machines), as a whole process (parse, schema checks, layering and references on every
//! machine), and — when `ansible-inventory` is on PATH — `ansible-inventory --list` on the
//! same fleet written as an inventory (`tests/support/ansible.rs`), with the ratio.
//!
//! Run with `cargo bench --bench validate`. Prints, per size, the median and worst wall
//! time and the peak RSS of each. Knobs: `STRATA_BENCH_VALIDATE=1000,10000` (the sizes;
//! 1,000 alone by default: ansible-inventory takes minutes at 10,000),
//! `STRATA_BENCH_BIN` (another strata binary to time, to compare builds). Budgets: at
//! 1,000 machines under 0.5 s wall and under 150 MB peak RSS on a 2-core machine (issue
//! 2); at least 25× faster than ansible-inventory (issue 26).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/fleet.rs"]
mod fleet;

#[path = "../tests/support/ansible.rs"]
mod ansible;

use fleet::{FleetSpec, generate};

const STRATA_RUNS: usize = 11;
const ANSIBLE_RUNS: usize = 3;

fn main() {
    let sizes: Vec<usize> = std::env::var("STRATA_BENCH_VALIDATE")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("STRATA_BENCH_VALIDATE: sizes like 1000,10000")
        })
        .collect();
    let bin =
        std::env::var("STRATA_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_strata").into());
    let ansible = which("ansible-inventory");
    if ansible.is_none() {
        println!("ansible-inventory is not on PATH: timing strata validate alone");
    }
    for machines in sizes {
        let spec = FleetSpec {
            machines,
            ..FleetSpec::default()
        };
        let files = generate(spec);
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo");
        for (path, text) in &files {
            let path = repo.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
            std::fs::write(path, text).expect("write fleet");
        }
        let strata = time_runs(STRATA_RUNS, || {
            let mut cmd = Command::new(&bin);
            cmd.arg("validate").arg(&repo);
            cmd
        });
        println!(
            "validate fleet ({machines} machines, {} groups): median {:.0} ms, max {:.0} ms over {STRATA_RUNS} runs; peak RSS {:.1} MB",
            spec.groups,
            ms(strata.median),
            ms(strata.max),
            strata.peak_rss_mb,
        );
        let Some(ansible) = &ansible else { continue };
        let inventory = ansible::write_inventory(&dir.path().join("inventory"), &files)
            .expect("write inventory");
        let theirs = time_runs(ANSIBLE_RUNS, || {
            let mut cmd = Command::new(ansible);
            cmd.arg("-i").arg(&inventory).arg("--list");
            cmd
        });
        println!(
            "ansible-inventory --list, same fleet: median {:.0} ms, max {:.0} ms over {ANSIBLE_RUNS} runs; peak RSS {:.1} MB; strata validate is {:.1}x faster",
            ms(theirs.median),
            ms(theirs.max),
            theirs.peak_rss_mb,
            theirs.median.as_secs_f64() / strata.median.as_secs_f64(),
        );
    }
}

struct Timing {
    median: Duration,
    max: Duration,
    peak_rss_mb: f64,
}

/// Runs the command `make` gives `runs` times, each to success, output discarded.
fn time_runs(runs: usize, make: impl Fn() -> Command) -> Timing {
    let mut times = Vec::new();
    let mut peak_kib = 0;
    for _ in 0..runs {
        let mut cmd = make();
        let start = Instant::now();
        // Reaped by wait4 below, which also gives its peak RSS.
        #[allow(clippy::zombie_processes)]
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        let (status, rss_kib) = wait_with_rss(child.id());
        times.push(start.elapsed());
        assert!(
            status.success(),
            "{cmd:?} must succeed on the fleet: {status}"
        );
        peak_kib = peak_kib.max(rss_kib);
    }
    times.sort();
    Timing {
        median: times[runs / 2],
        max: times[runs - 1],
        peak_rss_mb: peak_kib as f64 / 1024.0,
    }
}

/// Waits for child `pid` (`wait4`): its exit status and peak RSS in KiB.
fn wait_with_rss(pid: u32) -> (ExitStatus, i64) {
    let mut status = 0;
    // SAFETY: wait4 only writes into the status and the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid as libc::pid_t, "wait4 failed");
    (ExitStatus::from_raw(status), usage.ru_maxrss)
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
