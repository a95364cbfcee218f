//! Benchmark: the agent with the generated 1,000-machine, 50-group fleet.
//!
//! - apply of the whole fleet (`strata apply --ref main`) to a fresh agent, end to end:
//!   process start, SSH login, git read, validation, plan, durable commit, running config;
//! - plan of the fleet against the applied agent with 1% of its sections changed;
//! - the agent's resident memory (VmRSS) once idle after the apply.
//!
//! Run with `cargo bench --bench agent`. Budget (issue 4): each under 1 s wall, agent idle
//! RSS under 30 MB.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/host.rs"]
mod host;

use fleet::{FleetSpec, generate};

const RUNS: usize = 5;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

fn commit(dir: &Path, message: &str) {
    git::commit_all(dir, ("Bench", "bench@example.com"), message).unwrap();
}

fn start_agent(dir: &Path) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"m0000.fleet.example.com\"\nlisten \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["agent", "--state-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.stderr")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("address").exists() {
        assert!(Instant::now() < deadline, "agent did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn strata(args: &[&str]) -> (Duration, std::process::Output) {
    let start = Instant::now();
    let out = Command::new(bin()).args(args).output().unwrap();
    (start.elapsed(), out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    // STRATA_BENCH_KEEP=1 keeps the fleet, state dirs and agent logs for inspection.
    let tmp_path = tmp.path().to_path_buf();
    let repo = tmp.path().join("repo");
    let spec = FleetSpec::default();
    let files = generate(spec);
    for (path, text) in &files {
        let p = repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    commit(&repo, "fleet");
    let repo_s = repo.display().to_string();

    // Apply to a fresh agent, RUNS times.
    let mut applies = Vec::new();
    let mut agents: Vec<(Child, std::path::PathBuf)> = Vec::new();
    let mut entries = 0;
    for run in 0..RUNS {
        let dir = tmp.path().join(format!("agent{run}"));
        let sd = dir.display().to_string();
        let agent = start_agent(&dir);
        let (_, out) = strata(&["cluster", "create", "fleet", "--state-dir", &sd]);
        assert!(out.status.success());
        let (t, out) = strata(&[
            "apply",
            "--yes",
            "--ref",
            "main",
            "--repo",
            &repo_s,
            "--state-dir",
            &sd,
            "--format",
            "json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        entries = json["change_set"]["keys"].as_array().map_or(0, Vec::len);
        applies.push(t);
        // Only the last agent is kept running for the plan measurements.
        if let Some((mut old, _)) = agents.pop() {
            let _ = old.kill();
            let _ = old.wait();
        }
        agents.push((agent, dir));
    }
    let (mut agent, dir) = agents.pop().unwrap();
    let sd = dir.display().to_string();
    // Idle: past the quiet time after which the agent gives freed memory back.
    std::thread::sleep(strata::agent::memory::QUIET * 3);
    let rss = host::status_kib(agent.id(), "VmRSS").unwrap_or(0);

    // 1% of the sections change: the default gateway of the first machines.
    let sections = entries - 1 - spec.groups - spec.machines;
    let changes = sections.div_ceil(100);
    for m in 0..changes {
        let p = repo.join(format!("machines/m{m:04}.kdl"));
        let text = std::fs::read_to_string(&p).unwrap();
        let text = text.replacen("default-gateway \"10.", "default-gateway \"172.", 1);
        std::fs::write(&p, text).unwrap();
    }
    commit(&repo, "1% changed");
    let mut plans = Vec::new();
    let mut actions = 0;
    for _ in 0..RUNS {
        let (t, out) = strata(&[
            "plan",
            "--ref",
            "main",
            "--repo",
            &repo_s,
            "--state-dir",
            &sd,
            "--format",
            "json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        actions = json["actions"].as_array().map_or(0, Vec::len);
        plans.push(t);
    }
    let _ = agent.kill();
    let _ = agent.wait();
    let store = std::fs::metadata(dir.join("store.redb")).map_or(0, |m| m.len());

    if std::env::var_os("STRATA_BENCH_KEEP").is_some() {
        println!("kept: {}", tmp_path.display());
        std::mem::forget(tmp);
    }
    applies.sort();
    plans.sort();
    println!(
        "apply fleet ({} machines, {} groups, {entries} entries) to a fresh agent: median {:.0} ms, max {:.0} ms over {RUNS} runs",
        spec.machines,
        spec.groups,
        ms(applies[RUNS / 2]),
        ms(applies[RUNS - 1])
    );
    println!(
        "plan with 1% of sections changed ({actions} of {sections} sections): median {:.0} ms, max {:.0} ms over {RUNS} runs",
        ms(plans[RUNS / 2]),
        ms(plans[RUNS - 1])
    );
    println!(
        "agent idle RSS after the apply: {:.1} MB; store file {:.1} MB",
        rss as f64 / 1024.0,
        store as f64 / 1_048_576.0
    );
}
