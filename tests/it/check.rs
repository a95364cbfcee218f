//! `strata check`, `apply --wait` and the conflict log with real agents behind real relays:
//! a clean three-machine cluster checks clean (exit 0); apply reports each member; a
//! hand-edited running-config file, an isolated machine and a disconnected one are
//! reported (exit 2), and the next run restores the edited file; a partition in which
//! both sides change one entry heals to one winner everywhere with the loser in every
//! machine's conflict log and in check; `--resolve` forces a version; `--repo` reports
//! drift.

use crate::cluster_support::{
    SETTLE, apply, check, clean, cluster, dns, isolate, json, ok, running, write_repo,
};
use crate::mesh_support::wait_until;

/// What machine `i` runs as its `dns`.
fn dns_of(h: &crate::mesh_support::MeshHarness, i: usize) -> String {
    running(h, i, "dns")
}

#[test]
fn a_clean_cluster_checks_clean_and_each_fault_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
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
    write_repo(&repo, 3, &dns("10.0.0.54"));
    let text = ok(&apply(&h, 1, &repo, &["--wait", "30"]));
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
    let out = apply(&h, 1, &repo, &["--format", "json"]);
    assert_eq!(json(&out)["changes"], false, "nothing left to apply");

    // In sync with the repo; then the repo moves on and check names the drift.
    let (code, text) = check(&h, 3, &["--repo", &repo.display().to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("In sync with the repo"), "{text}");
    write_repo(&repo, 3, &dns("10.0.0.99"));
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

    // The next run restores it: a change to another section (cluster `ntp`; `dns` stays
    // 10.0.0.54), applied through lab1, runs on lab3 and writes its whole running config.
    write_repo(
        &repo,
        3,
        &format!(
            "{}\n    ntp {{ server \"ntp9.example.com\"; }}",
            crate::cluster_support::dns("10.0.0.54")
        ),
    );
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    assert!(
        running(&h, 3, "ntp").contains("ntp9.example.com"),
        "lab3 ran the change: {}",
        running(&h, 3, "ntp")
    );
    assert_eq!(dns_of(&h, 3), dns_of(&h, 1), "lab3's dns.kdl is restored");
    assert!(dns_of(&h, 3).contains("10.0.0.54"), "{}", dns_of(&h, 3));
    let (code, text) = check(&h, 1, &[]);
    assert!(!text.contains("edited by hand"), "{text}");
    assert_eq!(code, Some(0), "{text}");

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
    let h = cluster(tmp.path(), 3);
    clean(&h, 1);
    // lab3 on one side, lab1 and lab2 on the other; each side changes cluster dns.
    isolate(&h, 3, 1);
    let side_a = tmp.path().join("a");
    write_repo(&side_a, 3, &dns("10.1.1.1"));
    ok(&apply(&h, 3, &side_a, &[]));
    let side_b = tmp.path().join("b");
    write_repo(&side_b, 3, &dns("10.2.2.2"));
    ok(&apply(&h, 1, &side_b, &[]));
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
    // Everyone agrees, but check names the unsettled conflict and exits 2 until it is
    // settled.
    let text = clean(&h, 3);
    assert!(text.contains("Writes lost to concurrent ones"), "{text}");
    assert_eq!(
        check(&h, 3, &[]).0,
        Some(2),
        "an unsettled conflict is not consistent"
    );
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
    assert_eq!(check(&h, 1, &[]).0, Some(0), "settled: consistent again");
    // The history still keeps the loss.
    let v = json(&h.strata(1, &["log", "--conflicts", "--format", "json"]));
    assert_eq!(v["conflicts"].as_array().map(Vec::len), Some(1), "{v}");
}

/// The seed: "machines in a cluster must have resolvable hostnames in DNS". The repo
/// addresses lab1 as `localhost` (in /etc/hosts) and lab2 and lab3 by names under
/// `.invalid`, which never resolve (RFC 6761); the mesh still dials each member where its
/// agent said when it joined, so the cluster agrees and check exits 0, with a warning
/// naming both machines and their hostnames, in text and JSON.
#[test]
fn check_warns_about_hostnames_that_do_not_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");
    write_repo(&repo, 0, &dns("10.0.0.53"));
    let mut text = std::fs::read_to_string(repo.join("cluster.kdl")).unwrap();
    text.push_str(
        "machine \"lab1.example.com\" address=\"localhost\"\n\
         machine \"lab2.example.com\" address=\"lab2.strata-test.invalid\"\n\
         machine \"lab3.example.com\" address=\"lab3.strata-test.invalid\"\n",
    );
    std::fs::write(repo.join("cluster.kdl"), text).unwrap();
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    let text = clean(&h, 1);
    let (code, text_again) = check(&h, 1, &[]);
    assert_eq!(
        code,
        Some(0),
        "a warning, not an inconsistency: {text_again}"
    );
    assert!(
        text.contains("warning: machine hostnames that do not resolve on lab1.example.com: lab2.example.com at lab2.strata-test.invalid ("),
        "{text}"
    );
    assert!(
        text.contains("; lab3.example.com at lab3.strata-test.invalid ("),
        "{text}"
    );
    assert!(!text.contains("at localhost"), "localhost resolves: {text}");
    assert!(
        text.contains("/etc/hosts on every member"),
        "the help says how: {text}"
    );

    let out = h.strata(2, &["check", "--format", "json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["consistent"], true, "{v}");
    let warnings = v["report"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("machine hostnames that do not resolve on lab2.example.com: lab2.example.com at lab2.strata-test.invalid"),
        "{message}"
    );
    assert!(!message.contains("lab1.example.com at"), "{message}");
}
