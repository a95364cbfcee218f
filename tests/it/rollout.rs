//! Staged rollouts (the cluster's `rollout` section): a change reaches the canary first,
//! the rest once the canary ran it clean and the pause is over; a machine not reached
//! yet runs what it ran, and that is not drift. A gate that fails halts the rollout and,
//! with `on-failure "revert"`, undoes the change where it ran; the rest never run it.

use crate::agent_support::{ok, stdout};
use crate::cluster_support::{apply, check, clean, dns, running, runs_dns as runs, write_repo};
use crate::mesh_support::{MeshHarness, wait_until};

const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// A rollout section: lab1 first, then the rest, `pause` between, and `failure`.
fn rollout(pause: &str, failure: &str) -> String {
    format!(
        "rollout pause=\"{pause}\" gate-timeout=\"20s\" on-failure=\"{failure}\" {{\n        wave \"canary\" {{ machine \"lab1.example.com\"; }}\n        wave \"rest\"\n    }}"
    )
}

#[test]
fn a_change_reaches_the_canary_then_the_rest_and_waiting_is_not_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let sections = |server: &str| format!("{}\n    {}", rollout("8s", "halt"), dns(server));
    write_repo(&repo, 3, &sections("10.0.0.53"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    // Planned: the plan says how it will roll out.
    write_repo(&repo, 3, &sections("10.0.0.99"));
    let plan = stdout(&h.strata(2, &["plan", "--repo", &repo.display().to_string()]));
    assert!(
        plan.contains("rolls out in waves")
            && plan.contains("canary: lab1.example.com; rest: lab2.example.com, lab3.example.com"),
        "{plan}"
    );
    // Applied through lab2, which drives it: the canary runs it, the rest wait.
    let applied = ok(&apply(&h, 2, &repo, &[]));
    assert!(
        applied.contains("staged: it reaches the waves canary, rest")
            && applied.contains("waits for its wave"),
        "{applied}"
    );
    runs(&h, 1, "10.0.0.99");
    assert!(
        running(&h, 2, "dns").contains("10.0.0.53"),
        "lab2 waits for its wave"
    );
    assert!(
        running(&h, 3, "dns").contains("10.0.0.53"),
        "lab3 waits for its wave"
    );
    let status = stdout(&h.strata(3, &["status"]));
    assert!(
        status.contains("rollout:")
            && status.contains("wave 1 of 2 (canary: lab1.example.com) running"),
        "{status}"
    );
    // Waiting for a wave is not drift: the members agree, no running config was edited.
    let (code, text) = check(&h, 3, &[]);
    assert_eq!(code, Some(0), "{text}");
    // After the pause the rest run it.
    runs(&h, 2, "10.0.0.99");
    runs(&h, 3, "10.0.0.99");
    clean(&h, 1);
    let log = stdout(&h.strata(1, &["log"]));
    assert!(log.contains("wave 2 of 2 (rest) released"), "{log}");
    let status = stdout(&h.strata(3, &["status"]));
    assert!(!status.contains("rollout:"), "{status}");
}

#[test]
fn a_failed_gate_halts_the_rollout_and_reverts_it_where_it_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let lab1 = tmp.path().join("lab1");
    // lab1's hook fails once it runs 10.0.0.99.
    let h = MeshHarness::start_with(tmp.path(), 3, |i| {
        if i == 1 {
            format!(
                "hook \"/bin/sh\" \"-c\" \"! grep -q 10.0.0.99 {}/running/dns.kdl\"\n",
                lab1.display()
            )
        } else {
            String::new()
        }
    });
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let sections = |server: &str| format!("{}\n    {}", rollout("1s", "revert"), dns(server));
    write_repo(&repo, 3, &sections("10.0.0.53"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    write_repo(&repo, 3, &sections("10.0.0.99"));
    ok(&apply(&h, 2, &repo, &[]));
    // The canary runs it, its hook fails: halted and reverted there; the rest never ran it.
    wait_until(SETTLE, "the rollout halts", || {
        let log = stdout(&h.strata(2, &["log"]));
        if log.contains("halted at wave 1") {
            Ok(log)
        } else {
            Err(log)
        }
    });
    runs(&h, 1, "10.0.0.53");
    std::thread::sleep(std::time::Duration::from_secs(2));
    for i in [2, 3] {
        assert!(
            running(&h, i, "dns").contains("10.0.0.53"),
            "lab{i} never ran it"
        );
    }
    let log = stdout(&h.strata(3, &["log"]));
    assert!(log.contains("failed on lab1.example.com"), "{log}");
    assert!(log.contains("its rollout halted at wave 1"), "{log}");
    clean(&h, 1);
    // Why it halted stays in view.
    let status = stdout(&h.strata(3, &["status"]));
    assert!(
        status.contains("halted at wave 1 of 2 (canary: lab1.example.com): hook /bin/sh")
            && status.contains("failed on lab1.example.com; reverted"),
        "{status}"
    );
}

#[test]
fn an_operator_halts_promotes_and_undoes_a_rollout_through_any_member() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let sections = |server: &str| format!("{}\n    {}", rollout("1h", "halt"), dns(server));
    write_repo(&repo, 3, &sections("10.0.0.53"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    write_repo(&repo, 3, &sections("10.0.0.99"));
    ok(&apply(&h, 2, &repo, &[]));
    runs(&h, 1, "10.0.0.99");

    // Halted through lab3: status says why; nothing more is released.
    ok(&h.strata(
        3,
        &["rollout", "halt", "--reason", "INC-42: canary looks slow"],
    ));
    wait_until(SETTLE, "lab1 shows the halt", || {
        let status = stdout(&h.strata(1, &["status"]));
        if status.contains("halted at wave 1 of 2") && status.contains("INC-42") {
            Ok(())
        } else {
            Err(status)
        }
    });
    let again = h.strata(3, &["rollout", "halt", "--reason", "twice"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a halted rollout is not moving"
    );
    // Promoted: the rest run it at once, the pause of an hour notwithstanding.
    let doc = crate::json_schemas::matching_schema(
        "rollout",
        &h.strata(1, &["rollout", "promote", "--format", "json"]),
    );
    assert_eq!(doc["action"], "promoted");
    runs(&h, 2, "10.0.0.99");
    runs(&h, 3, "10.0.0.99");
    // Undone, naming it by its id: reverted everywhere.
    let id = stdout(&h.strata(1, &["log", "--format", "json"]));
    let log: serde_json::Value = serde_json::from_str(&id).unwrap();
    let staged = log["change_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cs| cs["meta"]["rollout"]["kind"] == "staged")
        .map(|cs| cs["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(
        h.strata(2, &["rollout", "undo"]).status.code(),
        Some(1),
        "none is open"
    );
    ok(&h.strata(2, &["rollout", "undo", &staged]));
    for i in 1..=3 {
        runs(&h, i, "10.0.0.53");
    }
    clean(&h, 1);
}
