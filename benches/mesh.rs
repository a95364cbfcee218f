//! Benchmark: the peer mesh with real agents on loopback, each behind the tests'
//! fault-injecting relay (`tests/support/relay.rs`).
//!
//! For N agents (default 5, 20 and 50; `STRATA_BENCH_MESH=5,20` to choose):
//! - **formation**: machine 1 creates the cluster (ping interval [`PING_MS`]), the others
//!   join it one after another with the admin passphrase (`STRATA_BENCH_MESH_JOIN_FORKS=K`:
//!   K at a time); measured are the joins, and the time from the last join until every
//!   member has the links it should (every other member, or its overlay neighbours above
//!   `full-mesh-up-to`: `STRATA_BENCH_MESH_FULL_UP_TO`);
//! - **detection**: one machine is isolated (its relay black-holes every link); measured
//!   is the time until every other member has raised its alert, read from the agents'
//!   own log timestamps, in ping intervals;
//! - **memory**: resident set (VmRSS) of every agent once the full mesh is idle;
//! - **idle CPU**: the CPU time all agents use over 10 s of the idle full mesh, per agent,
//!   as a share of one core.
//!
//! Run with `cargo bench --bench mesh` (`STRATA_BENCH_MESH_PING_MS` sets the interval).
//! Budgets: 20 agents form a full mesh in under 5 s; detection within 3 ping intervals;
//! under 30 MB RSS per idle agent; at 100 agents and 2 s pings, formation within 30 s and
//! idle CPU under 1% of a core per agent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/host.rs"]
mod host;
#[path = "../tests/support/knobs.rs"]
mod knobs;
#[path = "../tests/support/readings.rs"]
mod readings;
#[path = "../tests/support/relay.rs"]
mod relay;

use relay::{Relays, machine_ip};

/// The cluster's ping interval in the benchmark (`STRATA_BENCH_MESH_PING_MS` to change).
const PING_MS: u64 = 500;

fn ping_ms() -> u64 {
    knobs::count("STRATA_BENCH_MESH_PING_MS", PING_MS as usize) as u64
}

/// How many joins run at once (`STRATA_BENCH_MESH_JOIN_FORKS`; default 1: one after
/// another), as a fan-out tool (Ansible's forks, `parallel-ssh`) would run them.
fn join_forks() -> usize {
    knobs::count("STRATA_BENCH_MESH_JOIN_FORKS", 1).max(1)
}

/// Up to how many members the cluster keeps a full mesh (`STRATA_BENCH_MESH_FULL_UP_TO`;
/// the cluster's default otherwise).
fn full_mesh_up_to() -> usize {
    knobs::count(
        "STRATA_BENCH_MESH_FULL_UP_TO",
        strata::protocol::overlay::FULL_MESH_UP_TO,
    )
}

/// The links machine `name` keeps among `n` members: every other one in a full mesh,
/// its ring neighbours above it.
fn expected_links(n: usize, name: &str) -> usize {
    let all: std::collections::BTreeSet<strata::model::MachineName> = (1..=n)
        .map(|i| strata::model::MachineName::new(format!("lab{i}.example.com")).unwrap())
        .collect();
    let me = strata::model::MachineName::new(name).unwrap();
    strata::protocol::overlay::neighbors(&all, &me, full_mesh_up_to()).len()
}

const PASSPHRASE: &str = "bench passphrase";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

struct Machine {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strata(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = strata(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start(
    dir: &Path,
    name: &str,
    ip: std::net::Ipv4Addr,
    advertised: std::net::SocketAddr,
) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(dir, perms).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"{name}\"\nlisten \"{ip}:0\"\naddress \"{advertised}\"\nauth-delay-ms 20\n"
        ),
    )
    .unwrap();
    Command::new(bin())
        .args(["agent", "--state-dir"])
        .arg(dir)
        .env("RUST_LOG", "info,russh=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.stderr")).unwrap())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

fn sd(m: &Machine) -> String {
    m.dir.display().to_string()
}

/// How many of `m`'s own links are up.
fn links_up(m: &Machine) -> usize {
    let out = strata(&[
        "cluster",
        "connstatus",
        "--format",
        "json",
        "--state-dir",
        &sd(m),
    ]);
    readings::links_up(&out.stdout, &m.name).len()
}

fn run(n: usize) -> Vec<String> {
    let (_guard, root) = knobs::root();
    let relays = Relays::new(n);
    let mut machines = Vec::new();
    let started = Instant::now();
    for i in 1..=n {
        let name = format!("lab{i}.example.com");
        let ip = machine_ip(i);
        let advertised = relays.add(i, None);
        let dir = root.as_path().join(format!("lab{i}"));
        let child = start(&dir, &name, ip, advertised);
        machines.push(Machine { name, dir, child });
    }
    for (i, m) in machines.iter().enumerate() {
        wait_for("agent start", Duration::from_secs(60), || {
            m.dir.join("address").exists()
        });
        let addr = std::fs::read_to_string(m.dir.join("address")).unwrap();
        relays.set_target(i + 1, Some(addr.trim().parse().unwrap()));
    }
    let boot = started.elapsed();
    let first = &machines[0];
    ok(&["cluster", "create", "bench", "--state-dir", &sd(first)]);
    let repo = root.as_path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("cluster.kdl"),
        format!(
            "cluster \"bench\" {{\n    cluster-mesh ping-interval-ms={} full-mesh-up-to={}\n}}\ngroup \"Main_Group\"\nmachine \"{}\"\n",
            ping_ms(),
            full_mesh_up_to(),
            first.name
        ),
    )
    .unwrap();
    ok(&[
        "apply",
        "--repo",
        &repo.display().to_string(),
        "--yes",
        "--state-dir",
        &sd(first),
    ]);
    let pass = root.as_path().join("pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass = pass.display().to_string();
    ok(&[
        "cluster",
        "passwd",
        "--passphrase-file",
        &pass,
        "--state-dir",
        &sd(first),
    ]);
    let fp = {
        let log = std::fs::read_to_string(first.dir.join("agent.stderr")).unwrap();
        log.split("fingerprint: ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let member = relays.addr(1).to_string();
    let joins = Instant::now();
    let joiners: Vec<String> = machines[1..].iter().map(sd).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..join_forks() {
            scope.spawn(|| {
                while let Some(dir) =
                    joiners.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    ok(&[
                        "cluster",
                        "join",
                        &member,
                        "--fingerprint",
                        &fp,
                        "--passphrase-file",
                        &pass,
                        "--yes",
                        "--state-dir",
                        dir,
                    ]);
                }
            });
        }
    });
    let joined = joins.elapsed();
    let formed = wait_for("full mesh", Duration::from_secs(180), || {
        machines
            .iter()
            .all(|m| links_up(m) == expected_links(n, &m.name))
    });
    // Idle a little, then read every agent's memory.
    std::thread::sleep(Duration::from_secs(2));
    let rss: Vec<u64> = machines
        .iter()
        .filter_map(|m| host::status_kib(m.child.id(), "VmRSS"))
        .collect();
    let mean = rss.iter().sum::<u64>() as f64 / rss.len().max(1) as f64 / 1024.0;
    let max = *rss.iter().max().unwrap_or(&0) as f64 / 1024.0;
    // Idle CPU: what every agent used over 10 s of a full, quiet mesh (ticks are 1/100 s
    // on Linux), as a share of one core.
    let ticks = |ms: &[Machine]| -> u64 {
        ms.iter()
            .filter_map(|m| host::cpu_ticks(m.child.id()))
            .sum()
    };
    let idle = Duration::from_secs(10);
    let before = ticks(&machines);
    std::thread::sleep(idle);
    let used = ticks(&machines).saturating_sub(before);
    let cpu_per_agent = used as f64 / 100.0 / idle.as_secs_f64() / n as f64 * 100.0;

    // Isolate the last machine; every other one must alert.
    let victim = machines.last().unwrap().name.clone();
    let cut_at = readings::time_of_day();
    relays.isolate(n);
    let mut detect: Vec<f64> = Vec::new();
    wait_for("every member alerts", Duration::from_secs(180), || {
        detect.clear();
        for m in &machines[..n - 1] {
            let log = std::fs::read_to_string(m.dir.join("agent.stderr")).unwrap_or_default();
            let at = log
                .lines()
                .filter(|l| l.contains("peer unreachable") && l.contains(&victim))
                .filter_map(readings::log_time)
                .find(|t| *t >= cut_at);
            match at {
                Some(t) => detect.push(t - cut_at),
                None => return false,
            }
        }
        true
    });
    detect.sort_by(f64::total_cmp);
    let worst = detect.last().copied().unwrap_or_default();
    println!(
        "mesh n={n:>2}, ping interval {} ms: agents up in {:>6.0} ms; {} joins, {} at a time, in {:>6.0} ms ({:.0} ms each); every member linked as it should be (full mesh or ring) {:>5.0} ms after the last join; \
         isolation detected by all in {:>5.0} ms = {:.2} ping intervals (median {:.0} ms); RSS per idle agent mean {mean:.1} MB, max {max:.1} MB; idle CPU per agent {cpu_per_agent:.2}% of a core",
        ping_ms(),
        boot.as_secs_f64() * 1000.0,
        n - 1,
        join_forks(),
        joined.as_secs_f64() * 1000.0,
        joined.as_secs_f64() * 1000.0 / (n - 1).max(1) as f64,
        formed.as_secs_f64() * 1000.0,
        worst * 1000.0,
        worst * 1000.0 / ping_ms() as f64,
        detect[detect.len() / 2] * 1000.0,
    );
    let formation = (joined + formed).as_secs_f64();
    println!(
        "mesh n={n:>2}: formation (first join to every member linked) {:.1} s",
        formation
    );
    over_budget(
        n,
        formation,
        worst / ping_ms() as f64 * 1000.0,
        max,
        cpu_per_agent,
    )
}

fn main() {
    let mut missed = Vec::new();
    for n in knobs::sizes("STRATA_BENCH_MESH", "5,20,50") {
        missed.extend(run(n));
    }
    if !missed.is_empty() {
        eprintln!("over budget: {}", missed.join("; "));
        std::process::exit(1);
    }
}

/// The budgets a cluster of `n` agents missed (the scale issue's, from 100 agents at the
/// default 2 s interval; detection within 3 intervals and 30 MB at every size).
fn over_budget(n: usize, formed_s: f64, intervals: f64, rss_max_mb: f64, cpu: f64) -> Vec<String> {
    let mut missed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            missed.push(format!("n={n}: {what}"));
        }
    };
    check(
        intervals <= 3.0,
        format!("detection {intervals:.2} intervals (budget 3)"),
    );
    check(
        rss_max_mb <= 30.0,
        format!("RSS {rss_max_mb:.1} MB (budget 30)"),
    );
    if n >= 100 && ping_ms() == 2000 {
        check(
            formed_s <= 30.0,
            format!("formation {formed_s:.1} s (budget 30)"),
        );
        check(
            cpu <= 1.0,
            format!("idle CPU {cpu:.2}% of a core (budget 1%)"),
        );
    }
    missed
}
