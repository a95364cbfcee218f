//! Benchmark: `strata validate` on hostile KDL files (issue 20, item 1), as whole processes
//! measured by `/usr/bin/time -v`: peak RSS and bytes written, in each output format.
//!
//! - `cluster "x\#` then `\u{1F600}` 100,000 times (0.9 MB, the pushed file of the issue)
//!   and 400,000 times (3.6 MB): two KDL syntax errors per escape, 800,000 in the larger;
//!   before the caps they took 2.93 GB (`--format json`) and 1.41 GB (human).
//! - the same, 5,000,000 times (45 MB, 17.2 GB before): refused unread, over the size limit.
//! - the densest file Strata still parses: one node with 149,990 values (`1 1 1 …`), and one
//!   just over the limit of names and values, refused before parsing.
//!
//! Budget: every run under 200 MB peak RSS and 2 MB of output. Run with
//! `cargo bench --bench hostile` (needs GNU time at `/usr/bin/time`). Bounded: files are
//! written to a temporary directory and removed at the end.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RSS_BUDGET_KB: u64 = 200 * 1024;
const OUTPUT_BUDGET: usize = 2 * 1024 * 1024;

fn escapes(n: usize) -> String {
    format!("cluster \"x\\#{}", "\\u{1F600}".repeat(n))
}

/// Runs `strata validate --format FORMAT FILE` under `/usr/bin/time -v`: (peak RSS in
/// KiB, bytes written to stdout and stderr, seconds).
fn measure(dir: &Path, file: &str, format: &str) -> (u64, usize, f64) {
    let stats = dir.join("time.txt");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&stats)
        .arg(env!("CARGO_BIN_EXE_strata"))
        .args(["validate", "--format", format, file])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run /usr/bin/time (GNU time)");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(1), "{file} must be refused");
    let stats = std::fs::read_to_string(&stats).expect("time's report");
    let rss = stats
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .expect("time -v reports the peak RSS");
    (rss, out.stdout.len() + out.stderr.len(), seconds)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        ("escapes-0.9MB.kdl", escapes(100_000)),
        ("escapes-3.6MB.kdl", escapes(400_000)),
        ("escapes-45MB.kdl", escapes(5_000_000)),
        ("dense-149990.kdl", format!("x {}\n", "1 ".repeat(149_990))),
        ("dense-over.kdl", format!("x {}\n", "1 ".repeat(2_000_000))),
    ];
    println!("| file | bytes | format | peak RSS | output | wall |");
    println!("|---|---|---|---|---|---|");
    let mut over = Vec::new();
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).expect("write");
        for format in ["human", "json", "github"] {
            let (rss, bytes, seconds) = measure(dir.path(), name, format);
            println!(
                "| {name} | {} | {format} | {:.1} MB | {bytes} B | {seconds:.2} s |",
                text.len(),
                rss as f64 / 1024.0
            );
            if rss > RSS_BUDGET_KB || bytes > OUTPUT_BUDGET {
                over.push(format!(
                    "{name} --format {format}: {rss} KiB, {bytes} bytes"
                ));
            }
        }
        std::fs::remove_file(dir.path().join(name)).expect("remove");
    }
    assert!(over.is_empty(), "over budget: {over:?}");
}
