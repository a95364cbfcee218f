//! Benchmark: `strata validate` on the generated 1,000-machine, 50-group fleet, as a whole
//! process (parse, schema checks, layering and references on every machine).
//!
//! Run with `cargo bench --bench validate`. Prints the median and worst wall time over
//! several runs and the peak RSS of the process. Budget (issue 2): under 0.5 s wall and
//! under 150 MB peak RSS on a 2-core machine.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../tests/support/fleet.rs"]
mod fleet;

use fleet::{FleetSpec, write};

const RUNS: usize = 11;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = FleetSpec::default();
    write(dir.path(), spec).expect("write fleet");
    let bin = env!("CARGO_BIN_EXE_strata");

    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = Command::new(bin)
            .arg("validate")
            .arg(dir.path())
            .output()
            .expect("run strata");
        times.push(start.elapsed());
        assert!(
            out.status.success(),
            "the fleet must validate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort();
    let rss_kib = peak_rss_of_children_kib();
    println!(
        "validate fleet ({} machines, {} groups): median {:.0} ms, max {:.0} ms over {RUNS} runs; peak RSS {:.1} MB",
        spec.machines,
        spec.groups,
        times[RUNS / 2].as_secs_f64() * 1000.0,
        times[RUNS - 1].as_secs_f64() * 1000.0,
        rss_kib as f64 / 1024.0,
    );
}

/// The largest peak RSS of any child process waited for so far (`getrusage`).
fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    usage.ru_maxrss
}
