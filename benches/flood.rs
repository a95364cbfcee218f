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

use std::time::{Duration, Instant};

#[path = "../tests/support/example_agent.rs"]
mod example_agent;
#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/host.rs"]
mod host;

use example_agent::ExampleAgent;

/// A non-blocking TCP connection from the loopback address `from`.
fn connect_from(rt: &tokio::runtime::Runtime, from: &str, to: SocketAddr) -> Option<TcpStream> {
    let stream = example_agent::connect_from(rt, from, to)?;
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

fn strata(args: &[&str]) -> (Duration, std::process::Output) {
    let start = Instant::now();
    let out = example_agent::strata(args);
    (start.elapsed(), out)
}

fn main() {
    // The bench holds 2,050 sockets of its own.
    example_agent::raise_open_files();
    let agent = ExampleAgent::start("login-timeout-ms 60000\n");
    let (addr, sd) = (agent.addr, agent.state_dir());
    let repo_s = agent.repo.display().to_string();
    let pid = agent.pid();
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
    drop(agent);
    if !answered {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
}
