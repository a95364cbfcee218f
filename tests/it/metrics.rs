//! Prometheus metrics (`metrics listen="ADDR:PORT"` in agent.kdl, issue 23 item 1),
//! scraped over plain HTTP from real agents: a three-agent cluster after an apply
//! through machine 1 (sync status, change sets by origin, propagation and apply
//! histograms, each peer's link), a refused login and the hook runs of one agent, and a
//! setting that names no address.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::agent_support::{TestAgent, created, log_with_passphrase, sd, stderr, strata};
use crate::cluster_support::{SETTLE, apply, dns, ok, write_repo};
use crate::mesh_support::{MeshHarness, wait_until};

/// The address the agent logged for its metrics (`metrics on http://ADDR/metrics`).
pub(crate) fn metrics_addr(log: &str) -> String {
    let at = log
        .find("metrics on http://")
        .expect("the metrics address in the log");
    let rest = &log[at + "metrics on http://".len()..];
    rest[..rest.find("/metrics").unwrap()].to_owned()
}

/// `GET /metrics`: the status line and the body.
pub(crate) fn scrape(addr: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name` (with its labels, as printed) in `body`.
pub(crate) fn value(body: &str, sample: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn a_cluster_scraped_shows_sync_change_sets_propagation_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start_with(tmp.path(), 3, |i| {
        format!("metrics listen=\"127.0.0.{}:0\"\n", 10 + i)
    });
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    write_repo(&repo, 3, &dns("10.0.0.53"));
    let commit = crate::git::commit_all(&repo, ("Ada Lovelace", "ada@example.com"), "dns").unwrap();
    ok(&apply(&h, 1, &repo, &["--ref", "main", "--wait", "30"]));
    let addr2 = metrics_addr(&h.machine(2).log());
    let (status, body) = wait_until(
        SETTLE,
        "machine 2's links and merges in its metrics",
        || {
            let (status, body) = scrape(&addr2);
            let linked = ["lab1.example.com", "lab3.example.com"]
                .iter()
                .all(|p| value(&body, &format!("strata_peer_up{{peer=\"{p}\"}}")) == Some(1.0));
            let merged = value(&body, "strata_propagation_seconds_count").unwrap_or(0.0) >= 1.0;
            if linked && merged {
                Ok((status, body))
            } else {
                Err(body)
            }
        },
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        value(&body, "strata_sync_status{status=\"Synced\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "strata_sync_status{status=\"OutOfSync\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &body,
            &format!("strata_last_applied_commit_info{{commit=\"{commit}\"}}")
        ),
        Some(1.0),
        "{body}"
    );
    assert!(value(&body, "strata_change_sets_total{origin=\"peer\"}").unwrap() >= 1.0);
    assert!(value(&body, "strata_peer_rtt_seconds{peer=\"lab1.example.com\"}").is_some());
    assert_eq!(value(&body, "strata_store_writable"), Some(1.0));
    assert!(value(&body, "strata_store_size_bytes").unwrap() > 0.0);
    assert_eq!(value(&body, "strata_conflicts_total"), Some(0.0));
    assert!(
        body.contains("# HELP strata_propagation_seconds "),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    // The apply went through machine 1: its apply histogram counted it, and what it
    // committed is local there.
    let (_, body1) = scrape(&metrics_addr(&h.machine(1).log()));
    assert!(
        value(&body1, "strata_apply_duration_seconds_count").unwrap() >= 1.0,
        "{body1}"
    );
    assert!(value(&body1, "strata_change_sets_total{origin=\"local\"}").unwrap() >= 1.0);
    // Anything but /metrics is not found.
    let mut s = TcpStream::connect(&addr2).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
}

#[test]
fn refused_logins_and_hook_runs_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\n\
         metrics listen=\"127.0.0.1:0\"\nhook \"/bin/true\"\nhook \"/bin/false\"\n",
    )
    .unwrap();
    let agent = created(&dir);
    let out = log_with_passphrase(&agent, "admin", "not the passphrase")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let (_, body) = scrape(&metrics_addr(&agent.log()));
    assert!(
        value(&body, "strata_login_failures_total{method=\"password\"}").unwrap() >= 1.0,
        "{body}"
    );
    // `cluster create` ran the hooks: one succeeded, one failed.
    assert!(
        value(&body, "strata_hook_runs_total{result=\"ok\"}").unwrap() >= 1.0,
        "{body}"
    );
    assert!(value(&body, "strata_hook_runs_total{result=\"failed\"}").unwrap() >= 1.0);
    assert!(
        body.contains("strata_info{machine=\"lab1.example.com\",version=\""),
        "{body}"
    );
    drop(sd(&agent));
}

#[test]
fn a_metrics_setting_without_an_address_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nmetrics listen=\"localhost\"\n",
    )
    .unwrap();
    let out = strata(&["agent", "--state-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "`metrics listen=\"localhost\"` is not an address and port, e.g. \"127.0.0.1:9464\""
        ),
        "{err}"
    );
    let _ = TestAgent::start;
}
