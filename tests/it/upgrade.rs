//! The seed's "Upgrading Machines in a Cluster" with real agents: machines of different
//! Strata releases are refused (a joiner, a mesh link, a reconnect), each refusal naming
//! both versions; the cluster is upgraded machine by machine — disconnect, upgrade,
//! reconnect — and once the versions agree, reconnect and join are accepted. Two versions
//! without two builds: a debug build says the version `STRATA_TEST_VERSION` gives
//! ([`MeshHarness::restart_as`]). Also the versions `cluster list` and `check` show, and
//! the seed's 20-appliance note at join (the threshold lowered to 2 by the repo).

use std::process::Output;

use crate::agent_support::{stderr, stdout};
use crate::cluster_support::{SETTLE, apply, check, json, list_machines, ok};
use crate::mesh_support::{MeshHarness, wait_until};

const OLD: &str = "1.4.2";
const NEW: &str = "1.5.0";
/// A patch release of NEW: it mixes with NEW (the compatibility window).
const PATCH: &str = "1.5.1";

/// Waits until machine `i` has exactly `n` links up.
fn wait_links(h: &MeshHarness, i: usize, n: usize) {
    wait_until(SETTLE, &format!("lab{i} with {n} links up"), || {
        let up = h.links_up(i);
        if up.len() == n {
            Ok(())
        } else {
            Err(format!("{up:?}"))
        }
    });
}

/// Machine `from`'s `cluster list` as JSON, waiting until `machine`'s recorded Strata
/// version is `version`; returns that machine's listing.
fn wait_version(h: &MeshHarness, from: usize, machine: usize, version: &str) -> serde_json::Value {
    let name = h.machine(machine).name.clone();
    wait_until(
        SETTLE,
        &format!("lab{from} records {name} at {version}"),
        || {
            let list = json(&h.strata(from, &["cluster", "list", "--format", "json"]));
            let found = list_machines(&list)
                .into_iter()
                .find(|(_, m)| m["name"] == name.as_str());
            match found {
                Some((_, m)) if m["strata_version"] == version => Ok(m.clone()),
                other => Err(format!("{other:?}")),
            }
        },
    )
}

/// A refused command: non-zero exit, and what it said on stderr.
fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal: {}{}",
        stdout(out),
        stderr(out)
    );
    stderr(out)
}

#[test]
fn a_cluster_is_upgraded_machine_by_machine_and_mixed_releases_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let appliance = |i: usize| if i == 3 { "14.2.0-620" } else { "15.0.1-416" };
    let mut h = MeshHarness::start_with(tmp.path(), 3, |i| {
        format!("appliance-version \"{}\"\n", appliance(i))
    });
    for i in 1..=3 {
        h.restart_as(i, OLD);
    }
    let pass = h.create(tmp.path(), "americas");
    h.join(2, &pass);
    wait_links(&h, 1, 1);

    // Each member records the Strata version it runs and its appliance's version.
    let lab2 = wait_version(&h, 1, 2, OLD);
    assert_eq!(lab2["appliance_version"], "15.0.1-416", "{lab2}");
    wait_version(&h, 1, 1, OLD);
    let human = ok(&h.strata(1, &["cluster", "list"]));
    assert!(
        human.contains(&format!(
            "lab2.example.com ({}) serial ",
            h.machine(2).relay
        )) && human.contains(", Strata 1.4.2, appliance 15.0.1-416: connected"),
        "{human}"
    );

    // A joiner of another release is refused before anything is written, naming both.
    h.restart_as(3, NEW);
    let why = refused(&h.try_join(3, &pass));
    assert!(
        why.contains("machines of a cluster run the same Strata version")
            && why.contains("lab1.example.com runs 1.4.2, lab3.example.com (this machine) 1.5.0")
            && why.contains("`strata cluster disconnect`"),
        "{why}"
    );
    assert!(ok(&h.strata(3, &["cluster", "list"])).contains("standalone"));

    // Upgraded before it was disconnected (what the seed warns against): no link forms
    // between the releases, and connstatus says why.
    h.restart_as(2, NEW);
    let shown = wait_until(SETTLE, "lab1 says why lab2's link is down", || {
        let text = ok(&h.strata(1, &["cluster", "connstatus"]));
        if text.contains("-> lab2.example.com: down, unreachable (last dial: machines of a cluster run the same Strata version") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(
        shown.contains("lab2.example.com runs 1.5.0, lab1.example.com (this machine) 1.4.2"),
        "{shown}"
    );
    assert!(h.machine(1).log().contains("link refused"), "logged too");
    assert!(h.links_up(2).is_empty());
    // A member of the old release may not reconnect it either (it asks lab2 its version).
    let why = refused(&h.strata(1, &["cluster", "reconnect", "lab2.example.com"]));
    assert!(
        why.contains("lab2.example.com is not reconnected")
            && why.contains("lab2.example.com runs 1.5.0, lab1.example.com (this machine) 1.4.2"),
        "{why}"
    );

    // The seed's way: disconnect the upgraded machine; it cannot reconnect while the
    // others run the old release.
    ok(&h.strata(2, &["cluster", "disconnect", "lab2.example.com"]));
    let why = refused(&h.strata(2, &["cluster", "reconnect", "lab2.example.com"]));
    assert!(
        why.contains("lab1.example.com runs 1.4.2, lab2.example.com (this machine) 1.5.0"),
        "{why}"
    );

    // The last machine: disconnected, upgraded, reconnected. Each machine's record of the
    // other is stale (neither heard of the other's upgrade): what they say now counts.
    ok(&h.strata(1, &["cluster", "disconnect", "lab1.example.com"]));
    h.restart_as(1, NEW);
    ok(&h.strata(1, &["cluster", "reconnect", "lab1.example.com"]));
    ok(&h.strata(2, &["cluster", "reconnect", "lab2.example.com"]));
    wait_links(&h, 1, 1);
    wait_links(&h, 2, 1);
    wait_version(&h, 1, 2, NEW);
    wait_version(&h, 2, 1, NEW);

    // The repo lowers the seed's 20-appliance threshold to 2: the third joiner is told.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("cluster.kdl"),
        "cluster \"americas\" {\n    cluster-mesh ping-interval-ms=100 max-machines-warning=2\n}\n\
         group \"Main_Group\"\n\
         machine \"lab1.example.com\"\nmachine \"lab2.example.com\"\nmachine \"lab3.example.com\"\n",
    )
    .unwrap();
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    // A patch release mixes with its release: lab3 at 1.5.1 joins and links with both.
    h.restart_as(3, PATCH);
    let joined = ok(&h.try_join(3, &pass));
    assert!(
        joined.contains(
            "note: the cluster has 3 machines, more than 2 (cluster-mesh max-machines-warning=2)"
        ) && joined.contains("3 links, growing as n²"),
        "{joined}"
    );
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }
    let lab3 = wait_version(&h, 1, 3, PATCH);
    assert_eq!(lab3["appliance_version"], "14.2.0-620", "{lab3}");

    // `check` names the members whose appliance versions differ; it is no inconsistency.
    let (code, text) = wait_until(SETTLE, "check sees every member", || {
        let (code, text) = check(&h, 1, &[]);
        if text.contains("No inconsistencies found.") {
            Ok((code, text))
        } else {
            Err(text)
        }
    });
    assert!(
        text.contains("warning: the members run different appliance versions: 14.2.0-620 on lab3.example.com; 15.0.1-416 on lab1.example.com, lab2.example.com"),
        "{text}"
    );
    assert_ne!(code, Some(1), "a warning is no error: {text}");
}
