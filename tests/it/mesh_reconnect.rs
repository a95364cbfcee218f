//! Disconnect and reconnect with real agents behind relays: a disconnected machine gets
//! no change sets; reconnected — from itself, or from another member — it links again
//! and catches up. Either way one end takes the other for disconnected when the new
//! link comes up and parks it, so what reconnects them is the membership change set the
//! silent link is sent (the runtime's `send_memberships_if_silent`).

use std::path::Path;
use std::time::Duration;

use crate::agent_support::{stderr, stdout};
use crate::mesh_support::{MeshHarness, wait_until};

const PASSPHRASE: &str = "correct horse battery staple";
const SETTLE: Duration = Duration::from_secs(30);

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// A repo declaring the three machines, with `dns` at cluster level set to `server`.
fn write_repo(dir: &Path, server: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("cluster.kdl"),
        format!(
            "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=100\n    dns {{ server \"{server}\"; }}\n}}\n\
             group \"Main_Group\"\n\
             machine \"lab1.example.com\"\nmachine \"lab2.example.com\"\nmachine \"lab3.example.com\"\n"
        ),
    )
    .unwrap();
}

fn apply(h: &MeshHarness, i: usize, repo: &Path) {
    ok(&h.strata(
        i,
        &["apply", "--repo", &repo.display().to_string(), "--yes"],
    ));
}

fn dns_of(h: &MeshHarness, i: usize) -> String {
    std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap_or_default()
}

/// Machine `i`'s own links that are up, by peer name.
fn links_up(h: &MeshHarness, i: usize) -> Vec<String> {
    let out = h.strata(i, &["cluster", "connstatus", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let me = h.machine(i).name.as_str();
    status["views"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["machine"] == me)
        .flat_map(|v| v["links"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["up"] == true)
        .filter_map(|l| l["to"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until machine `i` has exactly `n` links up.
fn wait_links(h: &MeshHarness, i: usize, n: usize) {
    wait_until(SETTLE, &format!("machine {i} with {n} links up"), || {
        let up = links_up(h, i);
        if up.len() == n {
            Ok(())
        } else {
            Err(format!("{up:?}"))
        }
    });
}

/// Waits until machine `i` runs dns server `server`.
fn wait_dns(h: &MeshHarness, i: usize, server: &str) {
    wait_until(SETTLE, &format!("machine {i} runs {server}"), || {
        let dns = dns_of(h, i);
        if dns.contains(server) {
            Ok(())
        } else {
            Err(dns)
        }
    });
}

#[test]
fn a_disconnected_machine_reconnects_from_itself_or_from_a_member_and_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    ok(&h.strata(1, &["cluster", "create", "americas"]));
    let repo = tmp.path().join("repo");
    write_repo(&repo, "10.0.0.53");
    apply(&h, 1, &repo);
    let pass = tmp.path().join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass = pass.display().to_string();
    ok(&h.strata(1, &["cluster", "passwd", "--passphrase-file", &pass]));
    for i in 2..=3 {
        let member = h.machine(1);
        let (addr, fp) = (member.relay.to_string(), member.fingerprint());
        ok(&h.strata(
            i,
            &[
                "cluster",
                "join",
                &addr,
                "--fingerprint",
                &fp,
                "--yes",
                "--passphrase-file",
                &pass,
            ],
        ));
    }
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }

    // Reconnected from itself: it dials members that still take it for disconnected.
    ok(&h.strata(1, &["cluster", "disconnect", "lab3.example.com"]));
    wait_links(&h, 3, 0);
    wait_links(&h, 1, 1);
    write_repo(&repo, "10.0.0.54");
    apply(&h, 1, &repo);
    wait_dns(&h, 2, "10.0.0.54");
    assert!(
        dns_of(&h, 3).contains("10.0.0.53"),
        "a disconnected machine gets no change sets: {}",
        dns_of(&h, 3)
    );
    ok(&h.strata(3, &["cluster", "reconnect", "lab3.example.com"]));
    wait_dns(&h, 3, "10.0.0.54");
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }

    // Reconnected from a member: the machine itself still holds itself disconnected.
    ok(&h.strata(1, &["cluster", "disconnect", "lab2.example.com"]));
    wait_links(&h, 2, 0);
    wait_links(&h, 3, 1);
    write_repo(&repo, "10.0.0.55");
    apply(&h, 3, &repo);
    wait_dns(&h, 1, "10.0.0.55");
    ok(&h.strata(1, &["cluster", "reconnect", "lab2.example.com"]));
    wait_dns(&h, 2, "10.0.0.55");
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }
}
