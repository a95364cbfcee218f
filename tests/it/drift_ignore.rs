//! Drift-ignore rules with a real agent: a repo's rule in force makes `status` and
//! `check --repo` ignore a hand-made difference it covers, and say so; once the rule has
//! expired (a second commit dates it in the past) the same difference is drift again;
//! `validate` refuses a rule that does not read or covers an undeclared mode, and warns
//! of one already expired.

use crate::agent_support::{
    CLUSTER, apply_main, created, git_repo, ok, p, sd, stderr, stdout, strata,
};

/// The one machine of these tests, the agent's (the group `Paris` keeps its `dns`).
const MACHINES: &str = r#"
machine "lab1.example.com" address="10.1.0.1"
"#;

/// `CLUSTER` with a drift-ignore section of `rules` at cluster level.
fn with_rules(rules: &str) -> String {
    CLUSTER.replace(
        "cluster \"americas\" {",
        &format!("cluster \"americas\" {{\n    drift-ignore {{\n{rules}\n    }}"),
    )
}

/// The rule on Paris's resolvers, in force until `until`.
fn paris(until: &str) -> String {
    format!(
        "        rule \"paris-dns\" mode=\"group:Paris\" section=\"dns\" path=\"server\" until=\"{until}\" reason=\"INC-7: Paris moves resolvers\""
    )
}

/// Applies `cluster` from a plain directory (no commit): a change made by hand, which
/// the last applied commit does not account for.
fn by_hand(dir: &std::path::Path, cluster: &str, sd: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cluster.kdl"), cluster).unwrap();
    std::fs::write(dir.join("machines.kdl"), MACHINES).unwrap();
    ok(&strata(&[
        "apply",
        "--yes",
        "--repo",
        &p(dir),
        "--state-dir",
        sd,
    ]));
}

fn json(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let out = strata(&args);
    let json = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), json)
}

#[test]
fn a_rule_ignores_what_it_covers_until_it_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let repo = tmp.path().join("repo");
    let in_force = with_rules(&paris("2100-01-01T00:00:00Z"));
    git_repo(
        &repo,
        &[("cluster.kdl", &in_force), ("machines.kdl", MACHINES)],
        "Paris's resolvers may differ until the migration is done",
    );
    apply_main(&p(&repo), &sd);
    // By hand: Paris's resolver changes, outside git.
    let drifted = |cluster: &str| cluster.replace("192.0.2.53", "192.0.2.99");
    by_hand(&tmp.path().join("hand1"), &drifted(&in_force), &sd);

    // status: synced, what was ignored said, the rule listed.
    let status = ["status", "--state-dir", &sd];
    let out = strata(&status);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("sync:          Synced"), "{text}");
    assert!(
        text.contains("  1 difference ignored by drift-ignore rule `paris-dns` until 2100-01-01T00:00:00Z (group:Paris/dns)"),
        "{text}"
    );
    assert!(
        text.contains("drift-ignore:  `paris-dns` covers group:Paris/dns server until 2100-01-01T00:00:00Z: INC-7: Paris moves resolvers"),
        "{text}"
    );
    let (code, s) = json(&status);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["ignored"][0]["rule"], "paris-dns", "{s}");
    assert_eq!(s["ignored"][0]["entries"][0], "group:Paris/dns", "{s}");
    assert_eq!(s["drift_ignore"][0]["path"], "server", "{s}");
    assert_eq!(s["reasons"].as_array().map(Vec::len), Some(0), "{s}");

    // check --repo: in sync, and says what it ignored.
    let check = [
        "check",
        "--repo",
        &p(&repo),
        "--ref",
        "main",
        "--state-dir",
        &sd,
    ];
    let out = strata(&check);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("In sync with the repo (ref main).\n  1 difference ignored by drift-ignore rule `paris-dns` until 2100-01-01T00:00:00Z (group:Paris/dns)"),
        "{text}"
    );
    let (code, c) = json(&check);
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["drift"]["ignored"][0]["rule"], "paris-dns", "{c}");

    // A second commit dates the rule in the past: the same difference is drift again.
    let expired = with_rules(&paris("2001-01-01T00:00:00Z"));
    std::fs::write(repo.join("cluster.kdl"), &expired).unwrap();
    git_repo(&repo, &[], "the migration is over");
    let out = strata(&check);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("out of sync: group:Paris/dns (differs)") && !text.contains("ignored"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("drift-ignore rule `paris-dns` expired at 2001-01-01T00:00:00Z"),
        "the expired rule is a warning: {}",
        stderr(&out)
    );
    // status compares with the last applied commit: apply the second one (which puts the
    // resolver back), and change it by hand again.
    apply_main(&p(&repo), &sd);
    by_hand(&tmp.path().join("hand2"), &drifted(&expired), &sd);
    let (code, s) = json(&status);
    assert_eq!(code, Some(2), "{s}");
    assert!(
        s["reasons"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("group:Paris/dns differs: written by"),
        "{s}"
    );
    assert_eq!(s["ignored"].as_array().map(Vec::len), Some(0), "{s}");
    assert_eq!(s["drift_ignore"].as_array().map(Vec::len), Some(0), "{s}");
}

#[test]
fn validate_refuses_a_rule_that_does_not_read_and_warns_of_an_expired_one() {
    let tmp = tempfile::tempdir().unwrap();
    let validate = |rules: &str| {
        std::fs::write(tmp.path().join("cluster.kdl"), with_rules(rules)).unwrap();
        std::fs::write(tmp.path().join("machines.kdl"), MACHINES).unwrap();
        let out = strata(&["validate", &p(tmp.path())]);
        (
            out.status.code(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    };
    let (code, text) = validate(&paris("next week"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("until=\"next week\" is not an RFC 3339 time"),
        "{text}"
    );
    let (code, text) = validate(&paris("2100-01-01T00:00:00Z").replace("Paris\"", "Lyon\""));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "drift-ignore rule `paris-dns` covers group:Lyon, which the repo does not declare"
        ),
        "{text}"
    );
    let (code, text) = validate(&paris("2100-01-01T00:00:00Z").replace("\"dns\"", "\"dsn\""));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("covers section `dsn`, which the catalogue does not know"),
        "{text}"
    );
    let (code, text) = validate(&paris("2001-01-01T00:00:00Z"));
    assert_eq!(code, Some(0), "a warning: {text}");
    assert!(
        text.contains("drift-ignore rule `paris-dns` expired at 2001-01-01T00:00:00Z"),
        "{text}"
    );
}
