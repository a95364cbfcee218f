//! Commit confirmed, mesh-wide (`apply --confirm-within`, `strata confirm`): a trial
//! nobody confirms is reverted on every machine, each by its own clock — on both sides
//! of a partition too; on heal the revert stands, and nothing written after the trial
//! is lost.

use crate::agent_support::{ok, stderr, stdout};
use crate::cluster_support::{apply, clean, cluster, dns, isolate, running, write_repo};
use crate::mesh_support::MeshHarness;

/// Waits until every machine of `on` runs cluster dns `server`.
fn every_runs(h: &MeshHarness, on: &[usize], server: &str) {
    for &i in on {
        crate::cluster_support::runs_dns(h, i, server);
    }
}

/// Applies cluster dns `server` through machine 1 on trial for `window`, and waits until
/// every member runs it.
fn trial(h: &MeshHarness, repo: &std::path::Path, server: &str, window: &str) {
    write_repo(repo, h.len(), &dns(server));
    ok(&apply(
        h,
        1,
        repo,
        &["--confirm-within", window, "--wait", "30"],
    ));
    every_runs(h, &(1..=h.len()).collect::<Vec<_>>(), server);
}

/// The groups machine `i` lists.
fn groups(h: &MeshHarness, i: usize) -> String {
    stdout(&h.strata(i, &["cluster", "list", "--format", "json"]))
}

#[test]
fn a_trial_nobody_confirms_is_reverted_everywhere_and_a_confirmed_one_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");

    trial(&h, &repo, "10.0.0.99", "5s");
    every_runs(&h, &[1, 2, 3], "10.0.0.53");
    let log = stdout(&h.strata(2, &["log"]));
    assert!(log.contains("not confirmed by"), "{log}");
    clean(&h, 1);
    // Too late: it was reverted.
    let out = h.strata(2, &["confirm"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no change set is waiting"),
        "{}",
        stderr(&out)
    );

    // Confirmed through another member before its time: it stays everywhere.
    trial(&h, &repo, "10.0.0.77", "6s");
    let out = h.strata(2, &["confirm", "--format", "json"]);
    let doc = crate::json_schemas::matching_schema("confirm", &out);
    assert!(doc["change_set"].is_object(), "{doc}");
    std::thread::sleep(std::time::Duration::from_secs(7));
    every_runs(&h, &[1, 2, 3], "10.0.0.77");
    clean(&h, 1);
    // Nothing waits now.
    assert_eq!(h.strata(1, &["confirm"]).status.code(), Some(1));
}

#[test]
fn a_partition_during_a_trial_reverts_both_sides_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");
    // Long enough to be cut off while on trial.
    trial(&h, &repo, "10.0.0.99", "15s");
    isolate(&h, 3, 1);
    // Cut off while on trial: what follows is each side's own revert.
    for i in 1..=3 {
        assert!(
            running(&h, i, "dns").contains("10.0.0.99"),
            "lab{i} still on trial"
        );
    }
    // Written on each side after the trial: kept by both.
    ok(&h.strata(1, &["cluster", "addgroup", "Paris"]));
    ok(&h.strata(3, &["cluster", "addgroup", "Rome"]));
    // Each side reverts by its own clock, before the heal.
    every_runs(&h, &[1, 2, 3], "10.0.0.53");
    for side in [1, 3] {
        let log = stdout(&h.strata(side, &["log"]));
        assert!(
            log.contains(&format!("by lab{side}.example.com's clock")),
            "lab{side} reverted it itself: {log}"
        );
    }
    h.relays.heal();
    clean(&h, 1);
    for i in 1..=3 {
        let listed = groups(&h, i);
        assert!(
            listed.contains("\"Paris\"") && listed.contains("\"Rome\""),
            "lab{i}: {listed}"
        );
    }
    every_runs(&h, &[1, 2, 3], "10.0.0.53");
}

#[test]
fn a_revert_made_where_the_confirmation_did_not_reach_stands_on_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");
    // Long enough to confirm after the cut is seen.
    trial(&h, &repo, "10.0.0.99", "15s");
    isolate(&h, 3, 1);
    ok(&h.strata(1, &["confirm"]));
    // lab3 never hears of the confirmation: its clock reverts the trial there.
    every_runs(&h, &[3], "10.0.0.53");
    assert!(running(&h, 1, "dns").contains("10.0.0.99"));
    h.relays.heal();
    // The revert reaches the others and stands; the log says why.
    every_runs(&h, &[1, 2, 3], "10.0.0.53");
    clean(&h, 1);
    let log = stdout(&h.strata(1, &["log"]));
    assert!(
        log.contains("not confirmed by") && log.contains("by lab3.example.com's clock"),
        "{log}"
    );
}
