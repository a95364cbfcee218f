//! An apply that would remove members, or the interfaces of the machine it runs through,
//! is refused on `--yes` alone, says so in `plan` and `apply` (human and JSON), and goes
//! ahead only with its own flags; a repo whose `machines/` is a symbolic link is read
//! through it, from the working tree and from a git ref (issue 8, item 6).

use crate::agent_support::{
    CLUSTER, MACHINES, change_set_ids, created, git_repo, p, sd, stderr, stdout, strata,
};

#[cfg(unix)]
#[test]
fn a_symlinked_machines_dir_is_read_and_removing_members_needs_its_own_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let git = tmp.path().join("git");
    // The config repo is `git/config`; its machines live beside it, linked in.
    git_repo(
        &git,
        &[
            ("config/cluster.kdl", CLUSTER),
            ("fleet/machines.kdl", MACHINES),
        ],
        "first",
    );
    std::os::unix::fs::symlink("../fleet", git.join("config/machines")).unwrap();
    git_repo(&git, &[], "link the machines");
    let config = p(&git.join("config"));

    let out = strata(&["validate", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 machines"), "{}", stdout(&out));

    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", "--repo", &config, "--state-dir", &sd, "--yes"];
        args.extend(extra);
        strata(&args)
    };
    let out = apply(&["--ref", "main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let interfaces = agent.dir.join("running/interfaces.kdl");
    assert!(
        std::fs::read_to_string(&interfaces)
            .unwrap()
            .contains("10.1.0.1/24")
    );
    let applied = change_set_ids(&sd).len();

    // The link goes: the working tree now declares no machine at all.
    std::fs::remove_file(git.join("config/machines")).unwrap();
    let plan = strata(&["plan", "--repo", &config, "--state-dir", &sd]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("warning: this plan removes machine lab1.example.com from the cluster: the machine this apply runs through; `strata apply` does that only with --allow-member-removal"),
        "{text}"
    );
    let plan = strata(&[
        "plan",
        "--repo",
        &config,
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["agent"], "lab1.example.com");
    let kinds: Vec<&str> = json["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hazard"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["removes-member", "removes-member", "resets-own-network"]
    );

    // --yes alone: refused, saying what it would do and which flags allow it.
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    for line in [
        "not applied: through lab1.example.com, this plan",
        "removes machine lab1.example.com from the cluster: the machine this apply runs through",
        "removes machine lab3.example.com from the cluster",
        "resets interfaces of lab1.example.com, the machine this apply runs through, to the factory default (now defined at machine:lab1.example.com): its addresses change",
        "apply again with --allow-member-removal --allow-own-interfaces",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    let out = apply(&["--allow-member-removal", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "refused");
    let help = json["help"].as_str().unwrap();
    assert!(
        help.contains("--allow-own-interfaces") && !help.contains("--allow-member-removal"),
        "{help}"
    );
    assert_eq!(change_set_ids(&sd).len(), applied, "nothing was written");
    assert!(
        std::fs::read_to_string(&interfaces)
            .unwrap()
            .contains("10.1.0.1/24")
    );

    // Both flags: applied, and the JSON says what was allowed.
    let out = apply(&[
        "--allow-member-removal",
        "--allow-own-interfaces",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["applied"], true);
    assert_eq!(json["hazards"].as_array().unwrap().len(), 3, "{json}");
    assert_eq!(change_set_ids(&sd).len(), applied + 1);
}
