//! Benchmark: the agent's idle resident memory (VmRSS) before and after bursts (issue 20,
//! item 8: idle RSS ≤ 30 MB after any burst).
//!
//! An agent runs the bundled example cluster. Its idle RSS is read once it has applied
//! the example, then again, once quiet, after each burst:
//! - hostile connections: 2,000 TCP connections that never speak (from 63 loopback
//!   addresses, 127.0.0.2–64) and 300 that send an SSH version line and then 64 KiB of
//!   garbage, all closed at the end;
//! - five `entries` requests of 200,000 keys each, as the agent's administrator.
//!
//! Run with `cargo bench --bench idle`. Bounded: every socket is closed and the agent
//! stopped at the end; traffic goes only to 127.0.0.0/8. Exits 1 if an idle reading is
//! above the budget.

use std::io::Write;
use std::net::TcpStream;

use std::time::{Duration, Instant};

use strata::agent::state_dir::Layout;
use strata::model::Key;
use strata::protocol::{BlockingClient, ClientOptions, HostKeyPin, Login, Request, Response};

#[path = "../tests/support/example_agent.rs"]
mod example_agent;
#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/host.rs"]
mod host;

use example_agent::ExampleAgent;

/// Idle RSS budget, KiB.
const BUDGET_KIB: u64 = 30 * 1024;

/// How long the agent is left alone before an idle reading: well past its trim's quiet
/// time (`agent::memory::QUIET`).
const SETTLE: Duration = Duration::from_secs(3);

use example_agent::connect_from;

/// The agent's RSS once it has been left alone for [`SETTLE`], in KiB: all of it
/// (VmRSS, the budget's figure), and the part that is the binary's and libraries' pages
/// (RssFile: a debug build's 300 MB binary makes most of it).
fn idle_rss(pid: u32) -> (u64, u64) {
    std::thread::sleep(SETTLE);
    (
        host::status_kib(pid, "VmRSS").unwrap_or(0),
        host::status_kib(pid, "RssFile").unwrap_or(0),
    )
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    // The bench holds 2,300 sockets of its own.
    example_agent::raise_open_files();
    let agent = ExampleAgent::start("");
    let addr = agent.addr;
    let pid = agent.pid();
    let mut readings = vec![("after the apply", idle_rss(pid))];

    // Hostile connections: silent ones, and ones that speak garbage after the version.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut held: Vec<TcpStream> = (0..2000u32)
        .filter_map(|i| connect_from(&rt, &format!("127.0.0.{}", 2 + i % 63), addr))
        .collect();
    let silent = held.len();
    let mut garbage = 0;
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for i in 0..300u32 {
        if let Some(mut s) = connect_from(&rt, &format!("127.0.1.{}", 1 + i % 200), addr) {
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            if s.write_all(b"SSH-2.0-hostile\r\n").is_ok() && s.write_all(&noise).is_ok() {
                garbage += 1;
            }
            held.push(s);
        }
    }
    let peak_hostile = host::status_kib(pid, "VmRSS").unwrap_or(0);
    drop(held);
    readings.push(("after the hostile connections", idle_rss(pid)));

    // Five `entries` requests of 200,000 keys each, as the administrator (local key).
    let layout = Layout::new(&agent.dir);
    let host_key = russh::keys::load_secret_key(layout.host_key(), None).unwrap();
    let local_key = russh::keys::load_secret_key(layout.local_key(), None).unwrap();
    let mut options = ClientOptions::new(
        "localhost",
        addr.port(),
        HostKeyPin::Key(host_key.public_key().clone()),
        "admin",
        Login::Key(Box::new(local_key)),
    );
    options.socket = Some(layout.socket());
    let mut client = BlockingClient::connect(options).unwrap();
    let keys: Vec<Key> = (0..200_000)
        .map(|i| {
            format!("machine:m{i:06}.fleet.example.com/dns")
                .parse()
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    for _ in 0..5 {
        match client.request(Request::Entries { keys: keys.clone() }) {
            Ok(Response::Entries { .. }) => {}
            other => panic!("entries answered {other:?}"),
        }
    }
    let took = start.elapsed();
    let peak_entries = host::status_kib(pid, "VmHWM").unwrap_or(0);
    drop(client);
    readings.push(("after 5 entries requests of 200,000 keys", idle_rss(pid)));
    readings.push(("idle again, 10 s later", {
        std::thread::sleep(Duration::from_secs(7));
        idle_rss(pid)
    }));

    println!(
        "hostile burst: {silent} silent connections, {garbage} sending 64 KiB of garbage; RSS {:.1} MB while they were open",
        mb(peak_hostile)
    );
    println!(
        "entries: 5 requests of 200,000 keys in {:.0} ms; peak RSS (VmHWM) {:.1} MB",
        took.as_secs_f64() * 1000.0,
        mb(peak_entries)
    );
    println!("| agent idle RSS | MB | of which file pages (RssFile) |");
    println!("|---|---|---|");
    for (when, (kib, file)) in &readings {
        println!("| {when} | {:.1} | {:.1} |", mb(*kib), mb(*file));
    }
    drop(agent);
    if let Some((when, (kib, _))) = readings.iter().find(|(_, (kib, _))| *kib > BUDGET_KIB) {
        eprintln!(
            "idle RSS {when}: {:.1} MB, above the {} MB budget",
            mb(*kib),
            BUDGET_KIB / 1024
        );
        std::process::exit(1);
    }
}
