//! `strata check`, `apply --wait` and the conflict log with real agents behind real relays:
//! a clean three-machine cluster checks clean (exit 0); apply reports each member; a
//! hand-edited running-config file, an isolated machine and a disconnected one are
//! reported (exit 2); a partition in which both sides change one entry heals to one
//! winner everywhere with the loser in every machine's conflict log and in check;
//! `--resolve` forces a version; `--repo` reports drift.

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

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
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

/// Three machines in one cluster, every link up, the repo applied.
fn cluster(tmp: &Path) -> MeshHarness {
    let h = MeshHarness::start(tmp, 3);
    ok(&h.strata(1, &["cluster", "create", "americas"]));
    let pass = tmp.join("passphrase");
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
    let repo = tmp.join("repo");
    write_repo(&repo, "10.0.0.53");
    ok(&h.strata(
        1,
        &[
            "apply",
            "--repo",
            &repo.display().to_string(),
            "--yes",
            "--wait",
            "30",
        ],
    ));
    h
}

fn check(h: &MeshHarness, i: usize, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    let out = h.strata(i, &args);
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// Waits until a check from machine `i` exits 0.
fn clean(h: &MeshHarness, i: usize) -> String {
    wait_until(SETTLE, "the cluster checks clean", || {
        let (code, text) = check(h, i, &[]);
        if code == Some(0) { Ok(text) } else { Err(text) }
    })
}

fn dns_of(h: &MeshHarness, i: usize) -> String {
    std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap_or_default()
}

#[test]
fn a_clean_cluster_checks_clean_and_each_fault_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path());
    let text = clean(&h, 2);
    for i in 1..=3 {
        assert!(
            text.contains(&format!("Checking lab{i}.example.com...")),
            "{text}"
        );
    }
    assert!(text.contains("No inconsistencies found."), "{text}");

    // apply --wait says where the change set is on every member.
    let repo = tmp.path().join("repo");
    write_repo(&repo, "10.0.0.54");
    let out = h.strata(
        1,
        &[
            "apply",
            "--repo",
            &repo.display().to_string(),
            "--yes",
            "--wait",
            "30",
        ],
    );
    let text = ok(&out);
    assert!(
        text.contains("propagation: applied on 3 of 3 machines"),
        "{text}"
    );
    for i in 1..=3 {
        assert!(
            dns_of(&h, i).contains("10.0.0.54"),
            "lab{i}: {}",
            dns_of(&h, i)
        );
    }
    let out = h.strata(
        1,
        &[
            "apply",
            "--repo",
            &repo.display().to_string(),
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(json(&out)["changes"], false, "nothing left to apply");

    // In sync with the repo; then the repo moves on and check names the drift.
    let (code, text) = check(&h, 3, &["--repo", &repo.display().to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("In sync with the repo"), "{text}");
    write_repo(&repo, "10.0.0.99");
    let (code, text) = check(&h, 3, &["--repo", &repo.display().to_string()]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("out of sync: cluster/dns (differs)"),
        "{text}"
    );

    // A running-config file edited by hand on lab3.
    let dns = h.machine(3).dir.join("running/dns.kdl");
    std::fs::write(&dns, "dns { server \"6.6.6.6\"; }\n").unwrap();
    let (code, text) = check(&h, 1, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("Running config edited by hand:\nlab3.example.com: dns.kdl edited"),
        "{text}"
    );
    let (_, text) = check(&h, 1, &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["consistent"], false);

    // lab3 cut off: unreachable, not checked.
    h.relays.isolate(3);
    let text = wait_until(SETTLE, "lab3 reported unreachable", || {
        let (code, text) = check(&h, 1, &[]);
        if code == Some(2) && text.contains("lab3.example.com is unreachable") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(text.contains("Checking lab2.example.com..."), "{text}");
    h.relays.heal();
}

#[test]
fn a_partition_heals_to_one_winner_with_the_loser_in_every_conflict_log() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path());
    clean(&h, 1);
    // lab3 on one side, lab1 and lab2 on the other; each side changes cluster dns.
    h.relays.isolate(3);
    wait_until(SETTLE, "lab1 sees lab3 unreachable", || {
        let (_, text) = check(&h, 1, &[]);
        if text.contains("lab3.example.com is unreachable") {
            Ok(())
        } else {
            Err(text)
        }
    });
    let side_a = tmp.path().join("a");
    write_repo(&side_a, "10.1.1.1");
    ok(&h.strata(
        3,
        &["apply", "--repo", &side_a.display().to_string(), "--yes"],
    ));
    let side_b = tmp.path().join("b");
    write_repo(&side_b, "10.2.2.2");
    ok(&h.strata(
        1,
        &["apply", "--repo", &side_b.display().to_string(), "--yes"],
    ));
    // Whichever write has the greater version wins; which one that is shows after healing.
    h.relays.heal();
    clean(&h, 2);
    let winner = dns_of(&h, 1);
    for i in 2..=3 {
        wait_until(SETTLE, &format!("lab{i} runs the winner"), || {
            let d = dns_of(&h, i);
            if d == winner { Ok(()) } else { Err(d) }
        });
    }
    let (lost_server, won_server) = if winner.contains("10.2.2.2") {
        ("10.1.1.1", "lab1.example.com")
    } else {
        ("10.2.2.2", "lab3.example.com")
    };
    let mut logs = Vec::new();
    for i in 1..=3 {
        let out = h.strata(i, &["log", "--conflicts", "--format", "json"]);
        let v = json(&out);
        let lost = v["conflicts"].as_array().cloned().unwrap_or_default();
        assert_eq!(lost.len(), 1, "lab{i}: {v}");
        assert_eq!(lost[0]["key"], "cluster/dns");
        assert_eq!(
            lost[0]["winner"]["version"]["origin"], won_server,
            "lab{i}: {v}"
        );
        let value = lost[0]["value"].to_string();
        assert!(
            value.contains(lost_server),
            "lab{i}: the lost value is kept: {value}"
        );
        logs.push(lost[0].clone());
    }
    assert!(
        logs.windows(2).all(|w| w[0] == w[1]),
        "the same log everywhere: {logs:?}"
    );
    // Check is clean (everyone agrees) and names the unresolved conflict.
    let text = clean(&h, 3);
    assert!(text.contains("Writes lost to concurrent ones"), "{text}");
    assert!(text.contains("dns at Cluster americas:"), "{text}");
    let human = ok(&h.strata(2, &["log", "--conflicts"]));
    assert!(human.contains("cluster/dns write lost"), "{human}");

    // Forcing a member's version writes the entry again: the conflict is settled.
    let out = h.strata(
        2,
        &[
            "check",
            "--resolve",
            "dns@cluster",
            "--use",
            "lab3.example.com",
        ],
    );
    let text = ok(&out);
    assert!(text.contains("applied change set"), "{text}");
    let text = clean(&h, 1);
    assert!(!text.contains("Writes lost"), "settled: {text}");
    // The history still keeps the loss.
    let v = json(&h.strata(1, &["log", "--conflicts", "--format", "json"]));
    assert_eq!(v["conflicts"].as_array().map(Vec::len), Some(1), "{v}");
}
