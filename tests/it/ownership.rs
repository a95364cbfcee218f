//! Who owns what, end to end with real agents: a repo applied over a cluster keeps the
//! admin passphrase set with `cluster passwd` (a later passphrase join works), `cluster
//! list` calls the machines the repo declares managed or expected — never unmanaged, as
//! `check --repo` agrees — each member is listed with one address form, and a repo
//! that sets its own hash says so in the plan.

use crate::agent_support::{ok, stdout, strata};
use crate::cluster_support::{SETTLE, apply, check, dns, isolate, json, list_machines, write_repo};
use crate::mesh_support::{MeshHarness, PASSPHRASE, wait_until};

/// The machines of `cluster list --format json` on machine `i`, each as listed.
fn listed(h: &MeshHarness, i: usize) -> Vec<serde_json::Value> {
    let list = json(&h.strata(i, &["cluster", "list", "--format", "json"]));
    list_machines(&list)
        .into_iter()
        .map(|(_, m)| m.clone())
        .collect()
}

#[test]
fn a_repo_without_hashes_keeps_the_admin_passphrase_and_declares_its_machines() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    // Machine 1 creates the cluster and sets the admin passphrase; machine 2 joins.
    ok(&h.strata(1, &["cluster", "create", "americas"]));
    let pass = tmp.path().join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass_arg = pass.display().to_string();
    ok(&h.strata(1, &["cluster", "passwd", "--passphrase-file", &pass_arg]));
    h.join(2, &pass);

    // The repo declares all three machines and no users at all.
    let repo = tmp.path().join("repo");
    write_repo(&repo, 3, &dns("10.0.0.53"));
    let planned = h.strata(1, &["plan", "--repo", &repo.display().to_string()]);
    let plan = stdout(&planned);
    assert_eq!(planned.status.code(), Some(2), "{plan}");
    assert!(
        !plan.contains("cluster/users"),
        "the users section and its admin hash are left alone:\n{plan}"
    );
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    // The passphrase still admits a joiner.
    h.join(3, &pass);

    // Every member is managed (declared and joined): none is called unmanaged, and each
    // is listed as IP:PORT, the address the mesh dials.
    let machines = wait_until(SETTLE, "every member is listed as connected", || {
        let m = listed(&h, 1);
        let reach: Vec<&str> = m.iter().map(|m| m["reach"].as_str().unwrap()).collect();
        if reach.iter().filter(|r| **r == "connected").count() == 2 {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    });
    assert_eq!(machines.len(), 3, "{machines:?}");
    for (i, m) in machines.iter().enumerate() {
        assert_eq!(m["unmanaged"], false, "{m}");
        let relay = h.machine(i + 1).relay.to_string();
        assert_eq!(m["address"], relay.as_str(), "one address form: {m}");
    }
    let human = ok(&h.strata(1, &["cluster", "list"]));
    assert!(!human.contains("unmanaged"), "{human}");
    let (code, text) = check(&h, 1, &["--repo", &repo.display().to_string()]);
    assert_eq!(code, Some(0), "check --repo agrees: {text}");

    // A repo that sets its own hash for admin wins, and the plan says it replaces one.
    let hash = ok(&strata(&[
        "hash-passphrase",
        "--passphrase-file",
        &pass_arg,
    ]));
    write_repo(
        &repo,
        3,
        &format!(
            "{}\n    users {{ user \"admin\" role=\"administrator\" passphrase-hash=\"{}\"; }}",
            dns("10.0.0.53"),
            hash.trim()
        ),
    );
    let plan = stdout(&h.strata(1, &["plan", "--repo", &repo.display().to_string()]));
    assert!(
        plan.contains(
            "the repo sets the passphrase hash of admin, replacing the one set on the cluster"
        ),
        "{plan}"
    );
}

/// A join is the cluster's fact: an apply through a member that had not heard of it yet
/// (cut off while the machine joined elsewhere) rewrites that machine's membership from
/// what it knew — declared, no host key — and, its write being the later one, must not
/// undo the join when the cut heals.
#[test]
fn an_apply_through_a_member_that_missed_a_join_does_not_undo_it() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 4);
    let pass = h.create(tmp.path(), "americas");
    h.join(2, &pass);
    h.join(3, &pass);
    // The repo declares lab4 before it joins: every member holds it as expected.
    let repo = tmp.path().join("repo");
    write_repo(&repo, 4, &dns("10.0.0.53"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    isolate(&h, 3, 1);
    h.join(4, &pass);
    // On lab3, alone: lab4 moves to group Paris.
    let moved = tmp.path().join("moved");
    write_repo(&moved, 3, &dns("10.0.0.53"));
    let mut text = std::fs::read_to_string(moved.join("cluster.kdl")).unwrap();
    text.push_str("group \"Paris\"\nmachine \"lab4.example.com\" group=\"Paris\"\n");
    std::fs::write(moved.join("cluster.kdl"), text).unwrap();
    ok(&apply(&h, 3, &moved, &[]));
    h.relays.heal();
    for i in 1..=4 {
        wait_until(
            SETTLE,
            &format!("lab{i} lists lab4 connected, in Paris"),
            || {
                let list = json(&h.strata(i, &["cluster", "list", "--format", "json"]));
                let joined = list_machines(&list).iter().any(|(group, m)| {
                    *group == "Paris"
                        && m["name"] == "lab4.example.com"
                        && (i == 4 || m["reach"] == "connected")
                });
                if joined {
                    Ok(())
                } else {
                    Err(format!("{list}"))
                }
            },
        );
    }
    // lab4 records again what the stale write put back from the repo's side (the
    // address it joined with, where the repo gives none; its serial).
    wait_until(SETTLE, "lab4's address is the one it joined with", || {
        let (_, text) = check(&h, 1, &[]);
        if text.contains("do not resolve") || !text.contains("No inconsistencies found") {
            Err(text)
        } else {
            Ok(())
        }
    });
}
