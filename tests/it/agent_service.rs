//! The agent as a service: what it tells systemd (READY, STATUS, WATCHDOG, STOPPING,
//! over a real `$NOTIFY_SOCKET` the test binds, as systemd does) and its JSON log.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent_support::{TestAgent, strata};
use crate::mesh_support::{MeshHarness, wait_until};

/// systemd's end of `$NOTIFY_SOCKET`: a datagram socket in `dir`.
struct Notifications {
    socket: UnixDatagram,
    path: String,
}

impl Notifications {
    fn bind(dir: &Path) -> Notifications {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Notifications {
            socket,
            path: path.display().to_string(),
        }
    }

    /// The next message, if one arrives within `within`.
    fn next(&self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    }

    /// Messages until one satisfies `done` (returned with all before it); panics after
    /// `within`, naming what arrived.
    fn until(&self, within: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.next(Duration::from_millis(200)) {
                let last = done(&m);
                seen.push(m);
                if last {
                    return seen;
                }
            }
        }
        panic!("not within {within:?}; arrived: {seen:?}");
    }
}

#[test]
fn the_agent_says_ready_once_it_listens_pings_the_watchdog_and_says_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let notify = Notifications::bind(tmp.path());
    // A 600 ms watchdog: the agent checks its health and pings every 200 ms.
    let mut agent = TestAgent::start_with_env(
        &tmp.path().join("lab1"),
        "lab1.example.com",
        "127.0.0.1:0",
        &[("NOTIFY_SOCKET", &notify.path), ("WATCHDOG_USEC", "600000")],
    );
    let ready = notify.next(Duration::from_secs(30)).expect("READY=1");
    assert_eq!(
        ready,
        format!("READY=1\nSTATUS=serving on {}\n", agent.addr)
    );
    // Ready means it listens: a connection is accepted at once.
    std::net::TcpStream::connect(&agent.addr).unwrap();

    // Pings follow its health checks; the first one says what `systemctl status` shows.
    let seen = notify.until(Duration::from_secs(30), |m| m == "WATCHDOG=1\n");
    assert!(
        seen.iter().all(|m| m.starts_with("WATCHDOG=1\n")),
        "{seen:?}"
    );
    assert_eq!(
        seen[0],
        format!("WATCHDOG=1\nSTATUS=serving on {}; no peers\n", agent.addr)
    );
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(
            notify.next(Duration::from_secs(5)).as_deref(),
            Some("WATCHDOG=1\n")
        );
    }
    // Three more pings, each a third of the period apart: well within 600 ms each.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let status = agent.terminate();
    assert!(status.success(), "{status}\n{}", agent.log());
    let rest = notify.until(Duration::from_secs(10), |m| m.starts_with("STOPPING=1\n"));
    assert_eq!(
        rest.last().unwrap(),
        "STOPPING=1\nSTATUS=stopping: finishing the requests in flight\n"
    );
}

#[test]
fn the_status_line_counts_the_peers_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = MeshHarness::start(tmp.path(), 2);
    h.form(tmp.path(), "americas");
    let notify = Notifications::bind(tmp.path());
    h.restart_with_env(
        1,
        &[("NOTIFY_SOCKET", &notify.path), ("WATCHDOG_USEC", "600000")],
    );
    let addr = h.machine(1).agent_addr();
    notify.until(Duration::from_secs(30), |m| {
        m == format!("WATCHDOG=1\nSTATUS=serving on {addr}; 1 of 1 peer linked\n")
    });
    // Its peer gone: still healthy (the watchdog pings on), and the status says so.
    h.kill9(2);
    let seen = notify.until(Duration::from_secs(30), |m| {
        m == format!("WATCHDOG=1\nSTATUS=serving on {addr}; 0 of 1 peer linked\n")
    });
    assert!(
        seen.iter().all(|m| m.starts_with("WATCHDOG=1\n")),
        "{seen:?}"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_json_log_is_one_object_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab1");
    let mut agent = TestAgent::start_with_env(
        &dir,
        "lab1.example.com",
        "127.0.0.1:0",
        &[("STRATA_LOG_FORMAT", "json")],
    );
    let fingerprint = agent.fingerprint();
    wait_until(Duration::from_secs(30), "the start logged", || {
        let log = agent.log();
        log.contains("agent started").then_some(()).ok_or(log)
    });
    agent.terminate();
    let log = agent.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{log}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["message"] == "agent started")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["machine"], "lab1.example.com");
    assert_eq!(started["listen"], agent.addr.as_str());
    assert_eq!(started["fingerprint"], fingerprint.as_str());
    assert_eq!(started["target"], "strata::cli::agent");
    let timestamp = started["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T'),
        "{timestamp}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "agent stopped"),
        "{log}"
    );
}

#[test]
fn an_unknown_log_format_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = tmp.path().join("lab1").display().to_string();
    let out = strata(&["agent", "--state-dir", &sd, "--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[possible values: text, json]"), "{err}");
    assert!(!tmp.path().join("lab1").exists(), "a state dir was made");
}
