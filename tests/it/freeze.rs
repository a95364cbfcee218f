//! Change freezes with a real agent: a repo declares a window; while it is open every
//! change to what git owns is refused — an apply, a rollback, `cluster setname` — and a
//! passphrase is not; an administrator breaks the glass with a reason, which the change
//! set records; a window that does not read is refused by `validate`.

use crate::agent_support::{
    CLUSTER, MACHINES, apply_main, created, git_repo, p, sd, stderr, stdout, strata,
};

/// `CLUSTER` with a change-freeze section of `windows` at cluster level.
fn frozen(windows: &str) -> String {
    CLUSTER.replace(
        "cluster \"americas\" {",
        &format!("cluster \"americas\" {{\n    change-freeze {{\n{windows}\n    }}"),
    )
}

#[test]
fn an_open_freeze_refuses_changes_until_the_glass_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let repo = tmp.path().join("repo");
    // A window long past freezes nothing.
    let past = "        window \"y2k\" from=\"2000-01-01T00:00:00Z\" until=\"2000-01-02T00:00:00Z\" reason=\"y2k\"";
    git_repo(
        &repo,
        &[("cluster.kdl", &frozen(past)), ("machines.kdl", MACHINES)],
        "past",
    );
    apply_main(&p(&repo), &sd);
    // The freeze arrives with an apply (nothing is frozen until it is in).
    let open = "        window \"century\" from=\"2000-01-01T00:00:00Z\" until=\"2100-01-01T00:00:00Z\" reason=\"audit in progress\"";
    std::fs::write(repo.join("cluster.kdl"), frozen(open)).unwrap();
    git_repo(&repo, &[], "freeze");
    apply_main(&p(&repo), &sd);

    // Now a change is refused, and says why and how.
    std::fs::write(
        repo.join("cluster.kdl"),
        frozen(open).replace("10.0.0.53", "10.0.0.99"),
    )
    .unwrap();
    git_repo(&repo, &[], "during the freeze");
    let apply = |extra: &[&str]| {
        let repo = p(&repo);
        let mut args = vec![
            "apply",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--yes",
            "--state-dir",
            &sd,
        ];
        args.extend_from_slice(extra);
        strata(&args)
    };
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let why = stderr(&out);
    assert!(
        why.contains("change freeze `century` (audit in progress): nothing was written")
            && why.contains("--break-glass"),
        "{why}"
    );
    let out = strata(&["cluster", "setname", "emea", "--state-dir", &sd]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("change freeze"), "{}", stderr(&out));
    // What the cluster owns is no configuration: the passphrase still changes.
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "during the freeze\n").unwrap();
    let out = strata(&[
        "cluster",
        "passwd",
        "--passphrase-file",
        &p(&pass),
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Breaking the glass needs a reason, and records it.
    let out = apply(&["--break-glass", " "]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = apply(&["--break-glass", "INC-42: resolver down"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stdout(&strata(&[
        "log",
        "-n",
        "1",
        "--format",
        "json",
        "--state-dir",
        &sd,
    ]));
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let message = log["change_sets"][0]["meta"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message
            .contains("break glass during change freeze `century` by admin: INC-42: resolver down"),
        "{log}"
    );
    assert!(agent.log().contains("break glass"), "{}", agent.log());
}

#[test]
fn a_window_that_does_not_read_is_refused_by_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = "        window \"w\" days=\"someday\" from=\"22:00\" until=\"06:00\" reason=\"r\"";
    std::fs::write(tmp.path().join("cluster.kdl"), frozen(bad)).unwrap();
    let out = strata(&["validate", &p(tmp.path())]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("`someday` is not a day"), "{text}");
}
