//! The agent checks every write as `validate` checks a repo, whoever sends it: a
//! hand-edited saved plan that smuggles in bad values, sections at the wrong level,
//! unknown sections or sections of machines that are not members is refused whole.

use serde_json::{Value, json};

use crate::agent_support::{
    CLUSTER, MACHINES, change_set_ids, created, git_repo, p, sd, stderr, strata,
};

/// A saved plan whose action for `key` (replaced if it has one) creates it with `new`.
fn with_action(plan: &Value, key: &str, new: Value) -> Value {
    let mut plan = plan.clone();
    let actions = plan["actions"].as_array_mut().unwrap();
    actions.retain(|a| a["key"] != key);
    actions.push(json!({ "key": key, "action": "create", "new": new }));
    plan["base"][key] = Value::Null;
    plan
}

#[test]
fn a_hand_edited_plan_is_checked_like_a_repo_and_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let agent = created(&tmp.path().join("agent"));
    let saved = tmp.path().join("plan.json");
    let out = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd(&agent),
        "--out",
        &p(&saved),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let before = change_set_ids(&sd(&agent)).len();

    let section =
        |name: &str, children: Value| json!({ "section": { "name": name, "children": children } });
    let cases = [
        (
            with_action(
                &plan,
                "machine:lab1.example.com/ntp",
                section(
                    "ntp",
                    json!([{ "name": "server", "args": ["ntp.example.com"] }, { "name": "colour" }]),
                ),
            ),
            "unknown",
        ),
        (
            with_action(
                &plan,
                "machine:lab1.example.com/ssh",
                section("ssh", json!([])),
            ),
            "cannot be defined at machine:lab1.example.com",
        ),
        (
            with_action(
                &plan,
                "cluster/no-such-section",
                section("no-such-section", json!([])),
            ),
            "unknown section `no-such-section`",
        ),
        (
            with_action(
                &plan,
                "machine:stranger.example.com/dns",
                section("dns", json!([])),
            ),
            "machine:stranger.example.com is not part of the cluster",
        ),
        (
            with_action(
                &plan,
                "group:Paris/dns",
                section("dns", json!([{ "name": "server", "args": ["not-an-ip"] }])),
            ),
            "\"not-an-ip\" is not an IP address",
        ),
        // Issue 20: references are checked on the effective configs the plan produces,
        // as validate checks them.
        (
            with_action(
                &plan,
                "group:Main_Group/listeners",
                section(
                    "listeners",
                    json!([{ "name": "listener", "args": ["In"], "props": { "interface": "NoSuchIface" } }]),
                ),
            ),
            "listener \"In\" at group:Main_Group refers to interface \"NoSuchIface\", which is unavailable on machine lab1.example.com",
        ),
    ];
    for (edited, expected) in cases {
        std::fs::write(&saved, serde_json::to_string(&edited).unwrap()).unwrap();
        let out = strata(&[
            "apply",
            "--yes",
            "--plan",
            &p(&saved),
            "--state-dir",
            &sd(&agent),
        ]);
        assert_eq!(out.status.code(), Some(1), "{expected}");
        let err = stderr(&out);
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
        assert!(err.contains("nothing was written"), "{err}");
    }
    assert_eq!(
        change_set_ids(&sd(&agent)).len(),
        before,
        "nothing was committed"
    );
    // Two actions for one key (the last one used to win) do not load either.
    let mut twice = with_action(&plan, "cluster/ntp", section("ntp", json!([])));
    let again = twice["actions"].as_array().unwrap().last().unwrap().clone();
    twice["actions"].as_array_mut().unwrap().push(again);
    std::fs::write(&saved, serde_json::to_string(&twice).unwrap()).unwrap();
    let out = strata(&[
        "apply",
        "--yes",
        "--plan",
        &p(&saved),
        "--state-dir",
        &sd(&agent),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has two actions for cluster/ntp"),
        "{}",
        stderr(&out)
    );
    // A 300-character section name does not even load as a plan.
    let long = format!("cluster/{}", "s".repeat(300));
    let edited = with_action(&plan, &long, section("s", json!([])));
    std::fs::write(&saved, serde_json::to_string(&edited).unwrap()).unwrap();
    let out = strata(&[
        "apply",
        "--yes",
        "--plan",
        &p(&saved),
        "--state-dir",
        &sd(&agent),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a saved plan"),
        "{}",
        stderr(&out)
    );
    // The plan as it was still applies.
    std::fs::write(&saved, serde_json::to_string(&plan).unwrap()).unwrap();
    let out = strata(&[
        "apply",
        "--yes",
        "--plan",
        &p(&saved),
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
