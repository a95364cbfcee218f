//! End to end: real agents on loopback ports, driven through the real CLI — plan,
//! apply, log, rollback, stale plans, hooks, the state-dir lock and garbage from peers.

use crate::agent_support::{
    CLUSTER, HeldHook, MACHINES, TestAgent, change_set_ids, created, git_repo, p, sd, stderr,
    stdout, strata,
};

#[test]
fn plan_apply_plan_log_and_rollback_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let commit = git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "americas: first\n\nbody",
    );
    let agent = created(&tmp.path().join("agent"));
    let (sd, repo) = (sd(&agent), p(&repo));

    let plan = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(text.contains("+ cluster/ntp (created)"), "{text}");
    assert!(
        text.contains(
            "note: cluster/dns will not affect these modes, which define their own: group:Paris"
        ),
        "{text}"
    );
    assert!(text.contains("lab3.example.com: new machine"), "{text}");

    let apply = strata(&[
        "apply",
        "--yes",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ]);
    assert!(apply.status.success(), "{}", stderr(&apply));
    let ids = change_set_ids(&sd);
    assert!(
        stdout(&apply).contains(&format!("applied change set {}", ids[1])),
        "{}",
        stdout(&apply)
    );
    // The machine runs its effective config.
    let running = agent.dir.join("running");
    let dns = std::fs::read_to_string(running.join("dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.53"), "{dns}");
    assert!(
        std::fs::read_to_string(running.join("interfaces.kdl"))
            .unwrap()
            .contains("10.1.0.1/24")
    );

    let again = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert!(stdout(&again).contains("no changes"));

    // A second commit changes dns; JSON output for machines.
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &CLUSTER.replace("10.0.0.53", "10.0.0.99"))],
        "new resolver",
    );
    let plan = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]);
    assert_eq!(plan.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["actions"].as_array().unwrap().len(), 1);
    assert_eq!(json["actions"][0]["key"], "cluster/dns");
    assert_eq!(json["actions"][0]["action"], "change");
    assert!(
        strata(&[
            "apply",
            "--yes",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd
        ])
        .status
        .success()
    );

    let log = strata(&["log", "--state-dir", &sd, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    // Newest first, as for people: oldest first here.
    let sets: Vec<&serde_json::Value> = json["change_sets"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .collect();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[1]["meta"]["source"]["commit"], commit.as_str());
    assert_eq!(sets[1]["meta"]["author"], "Ada Lovelace <ada@example.com>");
    assert_eq!(sets[1]["meta"]["message"], "americas: first\n\nbody");
    assert_eq!(sets[2]["keys"], serde_json::json!(["cluster/dns"]));
    let ids = change_set_ids(&sd);
    assert_eq!(sets[2]["id"].as_str().unwrap()[..10], ids[2]);
    assert_eq!(sets[2]["seq"], 3);
    let human = stdout(&strata(&["log", "--state-dir", &sd]));
    assert!(
        human.contains(&format!("change set {}  #3", ids[2])) && human.contains("new resolver"),
        "{human}"
    );

    // Rollback to the second change set (named by a prefix of its id) is a new, fourth
    // change set that restores the old resolver.
    let rb = strata(&[
        "rollback",
        "--yes",
        "--to",
        &ids[1][..7],
        "--state-dir",
        &sd,
    ]);
    assert!(rb.status.success(), "{}", stderr(&rb));
    let ids = change_set_ids(&sd);
    assert_eq!(ids.len(), 4);
    assert!(
        stdout(&rb).contains(&format!("applied change set {}", ids[3])),
        "{}",
        stdout(&rb)
    );
    assert!(
        std::fs::read_to_string(running.join("dns.kdl"))
            .unwrap()
            .contains("10.0.0.53")
    );
    // The repo (at 10.0.0.99) now differs from the agent again.
    let plan = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(plan.status.code(), Some(2));
    let bad = strata(&["rollback", "--yes", "--to", "ffffffff", "--state-dir", &sd]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("there is no change set ffffffff"),
        "{}",
        stderr(&bad)
    );
    // A local sequence number is not an id: it differs between machines.
    let bad = strata(&["rollback", "--yes", "--to", "2", "--state-dir", &sd]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("`2` is not a change set id"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_stale_plan_is_refused_with_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let agent = created(&tmp.path().join("agent"));
    let (sd, repo) = (sd(&agent), p(&repo));
    let saved = p(&tmp.path().join("plan.json"));
    let plan = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
        "--out",
        &saved,
    ]);
    assert_eq!(plan.status.code(), Some(2));
    // Someone else applies first.
    assert!(
        strata(&[
            "apply",
            "--yes",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd
        ])
        .status
        .success()
    );
    let stale = strata(&["apply", "--yes", "--plan", &saved, "--state-dir", &sd]);
    assert_eq!(stale.status.code(), Some(1));
    let err = stderr(&stale);
    assert!(err.contains("the plan is stale"), "{err}");
    assert!(
        err.contains("cluster/dns was created by Ada Lovelace <ada@example.com> on"),
        "{err}"
    );
    let ids = change_set_ids(&sd);
    assert!(
        err.contains(&format!("in change set {} (git ", ids[1])),
        "{err}"
    );
    // Nothing was written by the refused apply.
    let log = strata(&["log", "--state-dir", &sd, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(json["change_sets"].as_array().unwrap().len(), 2);
    // A garbage plan file is a clear error.
    std::fs::write(&saved, "{}").unwrap();
    let bad = strata(&["apply", "--yes", "--plan", &saved, "--state-dir", &sd]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("is not a saved plan"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn an_invalid_repo_is_not_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[(
            "cluster.kdl",
            "cluster \"a\" { dns { bogus 1; } }\ngroup \"Main_Group\"\n",
        )],
        "bad",
    );
    let agent = created(&tmp.path().join("agent"));
    let out = strata(&[
        "apply",
        "--yes",
        "--ref",
        "main",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd(&agent),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is not a valid config repo"), "{err}");
    assert!(err.contains("cluster.kdl"), "{err}");
}

#[test]
fn a_second_agent_on_the_same_state_dir_is_refused_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let mut agent = TestAgent::start(&dir, "lab1");
    let out = strata(&["agent", "--state-dir", &p(&dir), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another agent is running on"),
        "{}",
        stderr(&out)
    );
    let status = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !dir.join("address").exists(),
        "a clean stop removes the address file"
    );
}

#[test]
fn a_peer_sending_garbage_is_disconnected() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(&tmp.path().join("agent"), "lab1");
    let mut s = std::net::TcpStream::connect(&agent.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    // The agent answers with its SSH banner and closes; read returns at EOF.
    let _ = s.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("SSH-2.0-"));
    // And it still serves others.
    assert!(
        strata(&["log", "--state-dir", &sd(&agent)])
            .status
            .success()
    );
}

#[test]
fn a_slow_hook_holds_up_no_log_request() {
    let tmp = tempfile::tempdir().unwrap();
    let held = HeldHook::start(tmp.path());
    let (agent, flag) = (&held.agent, |name: &str| held.flag(name));
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let apply = held.apply_held(&repo);
    // Should `log` wait for the hook, release it eventually so the test cannot hang.
    let release = flag("release");
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = std::fs::write(release, "");
    });
    let log = strata(&["log", "--state-dir", &sd(agent)]);
    assert!(log.status.success(), "{}", stderr(&log));
    assert!(
        !flag("done").exists(),
        "`log` waited for the hook to finish"
    );
    // The change set is committed (second in this machine's history) while its hook runs.
    assert!(stdout(&log).contains("  #2  "), "{}", stdout(&log));
    held.release();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(flag("done").exists());
    assert!(stdout(&out).contains("hook `sh -c"), "{}", stdout(&out));
    drop(guard);
}

#[test]
fn cluster_create_fails_when_the_hooks_it_ran_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let armed = tmp.path().join("armed");
    let script = format!(
        "[ -e {} ] || exit 0; echo 'reload failed: bad dns' >&2; exit 3",
        p(&armed)
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"sh\" \"-c\" {script:?} \"hook\"\n"
        ),
    )
    .unwrap();
    let agent = TestAgent::start(&dir, "lab1");
    // A running file lost out of band: the run after `cluster create` writes it again,
    // which runs the hooks.
    std::fs::remove_file(dir.join("running/dns.kdl")).unwrap();
    std::fs::write(&armed, "").unwrap();
    let out = strata(&["cluster", "create", "americas", "--state-dir", &sd(&agent)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    let ids = change_set_ids(&sd(&agent));
    assert!(
        err.contains(&format!(
            "change set {} was committed, but hooks failed on lab1",
            ids[0]
        )) && err.contains("reload failed: bad dns"),
        "{err}"
    );
    assert!(dir.join("running/dns.kdl").exists());
    assert!(agent.log().contains("hook failed"), "{}", agent.log());
}
