//! Crash safety: an agent killed with SIGKILL at random moments during large applies,
//! restarted each time, holds either the old state or the new one, never a mix.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::{FleetSpec, write};

use crate::agent_support::{TestAgent, git_repo, stderr, strata};

/// The keys a plan would change, and whether it is empty.
fn planned(repo: &str, git_ref: &str, sd: &str) -> Vec<String> {
    let out = strata(&[
        "plan",
        "--ref",
        git_ref,
        "--repo",
        repo,
        "--state-dir",
        sd,
        "--format",
        "json",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_owned())
        .collect()
}

fn change_sets(sd: &str) -> usize {
    let out = strata(&["log", "--state-dir", sd, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["change_sets"].as_array().unwrap().len()
}

#[test]
fn kill_9_during_large_applies_leaves_old_or_new_state_never_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    // Two large, different desired states to alternate between.
    let spec = |seed| FleetSpec {
        machines: 300,
        groups: 10,
        seed,
    };
    write(&repo_dir, spec(1)).unwrap();
    let a = git_repo(&repo_dir, &[], "fleet a");
    write(&repo_dir, spec(2)).unwrap();
    let b = git_repo(&repo_dir, &[], "fleet b");
    let repo = repo_dir.display().to_string();
    let dir = tmp.path().join("agent");
    let sd = dir.display().to_string();
    // A machine of the fleet: applying a repo that does not declare the agent's own
    // machine would remove it from the cluster, which apply refuses without a flag.
    let mut agent = TestAgent::start(&dir, "m0001.fleet.example.com");
    assert!(
        strata(&["cluster", "create", "fleet", "--state-dir", &sd])
            .status
            .success()
    );

    // One uninterrupted apply, to learn how long an apply takes here.
    let started = Instant::now();
    let out = strata(&[
        "apply",
        "--yes",
        "--ref",
        &a,
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let span = started.elapsed().as_millis() as u64;
    let mut current = a.clone();
    let mut committed_kills = 0;
    let mut aborted_kills = 0;
    for round in 0..10 {
        let target = if current == a { b.clone() } else { a.clone() };
        let before_keys = planned(&repo, &target, &sd);
        assert!(!before_keys.is_empty());
        let before_sets = change_sets(&sd);
        let mut apply = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "apply",
                "--yes",
                "--ref",
                &target,
                "--repo",
                &repo,
                "--state-dir",
                &sd,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Random moments across the whole apply, from before the request to after it.
        let delay = rand::random_range(0..=span + span / 4);
        std::thread::sleep(Duration::from_millis(delay));
        agent.kill9();
        let _ = apply.wait();
        agent = TestAgent::start(&dir, "m0001.fleet.example.com");
        let after_sets = change_sets(&sd);
        let after_keys = planned(&repo, &target, &sd);
        if after_keys.is_empty() {
            assert_eq!(
                after_sets,
                before_sets + 1,
                "round {round}: applied but not logged"
            );
            committed_kills += 1;
            current = target;
        } else {
            assert_eq!(
                after_sets, before_sets,
                "round {round}: logged but not applied"
            );
            assert_eq!(
                after_keys, before_keys,
                "round {round}: a partial apply (delay {delay} ms)"
            );
            aborted_kills += 1;
        }
        // No temporary file of an interrupted running-config write is left behind.
        for entry in std::fs::read_dir(dir.join("running")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.ends_with(".kdl") && !name.starts_with('.'),
                "round {round}: {name}"
            );
        }
    }
    eprintln!(
        "kill -9: {committed_kills} after commit, {aborted_kills} before (apply ≈ {span} ms)"
    );
    // Whatever happened, the agent still applies and converges.
    let out = strata(&[
        "apply",
        "--yes",
        "--ref",
        &b,
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(planned(&repo, &b, &sd).is_empty());
}
