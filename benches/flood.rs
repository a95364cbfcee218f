//! Benchmark: the agent under a flood from other addresses on this machine (loopback).
//!
//! 2,000 TCP connections that never speak (from 63 loopback addresses, 127.0.0.2–64) and
//! 50 slowloris connections that dribble their SSH version a byte at a time (127.0.1.x)
//! are opened against an agent that runs the bundled example cluster; meanwhile a
//! legitimate `strata plan` from 127.0.0.1 must answer. Reports how long that plan took,
//! how many flood connections the agent kept open, and its resident memory (now and
//! peak). Budget (issue 8): the plan answers, RSS stays under 64 MB.
//!
//! Run with `cargo bench --bench flood`. Bounded: every socket is closed and the agent
//! stopped at the end; traffic goes only to 127.0.0.0/8.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/host.rs"]
mod host;

use host::copy_dir;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

/// A TCP connection from the loopback address `from`.
fn connect_from(rt: &tokio::runtime::Runtime, from: &str, to: SocketAddr) -> Option<TcpStream> {
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(format!("{from}:0").parse().ok()?).ok()?;
        let stream = socket.connect(to).await.ok()?;
        let stream = stream.into_std().ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    })
}

fn strata(args: &[&str]) -> (Duration, std::process::Output) {
    let start = Instant::now();
    let out = Command::new(bin()).args(args).output().unwrap();
    (start.elapsed(), out)
}

fn main() {
    // The bench holds 2,050 sockets of its own: raise its open-file limit to the hard one.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/americas"),
        &repo,
    );
    git::commit_all(&repo, ("Bench", "bench@example.com"), "americas").unwrap();
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nlogin-timeout-ms 60000\n",
    )
    .unwrap();
    let mut agent = Command::new(bin())
        .args(["agent", "--state-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("address").exists() {
        assert!(Instant::now() < deadline, "agent did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let addr: SocketAddr = std::fs::read_to_string(dir.join("address"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sd = dir.display().to_string();
    let repo_s = repo.display().to_string();
    assert!(
        strata(&["cluster", "create", "americas", "--state-dir", &sd])
            .1
            .status
            .success()
    );
    let (_, out) = strata(&[
        "apply",
        "--yes",
        "--ref",
        "main",
        "--repo",
        &repo_s,
        "--state-dir",
        &sd,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = agent.id();
    let rss_before = host::status_kib(pid, "VmRSS").unwrap_or(0);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut idle = Vec::new();
    for i in 0..2000u32 {
        let from = format!("127.0.0.{}", 2 + i % 63);
        if let Some(s) = connect_from(&rt, &from, addr) {
            idle.push(s);
        }
    }
    let mut slow: Vec<TcpStream> = (0..50u32)
        .filter_map(|i| connect_from(&rt, &format!("127.0.1.{}", 1 + i), addr))
        .collect();
    // Dribble the version line, a byte per connection per round, while the plan runs.
    let version = b"SSH-2.0-slowloris";
    let dribbler = {
        let mut slow = std::mem::take(&mut slow);
        std::thread::spawn(move || {
            for round in 0..version.len() {
                for s in &mut slow {
                    let _ = s.write(&version[round..round + 1]);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            slow
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (took, out) = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &repo_s,
        "--state-dir",
        &sd,
    ]);
    let answered = out.status.code() == Some(0);
    let rss = host::status_kib(pid, "VmRSS").unwrap_or(0);
    let peak = host::status_kib(pid, "VmHWM").unwrap_or(0);
    // Which flood connections does the agent still hold? Those it closed read EOF.
    let mut held = 0;
    for s in &mut idle {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            _ => held += 1,
        }
    }
    let slow = dribbler.join().unwrap();
    println!(
        "flood: {} idle connections attempted from 63 addresses ({} still held by the agent), {} slowloris",
        idle.len(),
        held,
        slow.len()
    );
    println!(
        "legitimate plan during the flood: {} in {:.0} ms",
        if answered {
            "answered (no changes)"
        } else {
            "FAILED"
        },
        took.as_secs_f64() * 1000.0
    );
    println!(
        "agent RSS: {:.1} MB before the flood, {:.1} MB during it, peak {:.1} MB",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drop(idle);
    drop(slow);
    let _ = agent.kill();
    let _ = agent.wait();
    if !answered {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
}
