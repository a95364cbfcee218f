//! `strata validate` through the real binary: exit codes and output formats.

use crate::support::{example, root, strata, transcript};

#[test]
fn a_valid_repo_exits_zero() {
    let out = strata(&root(), &["validate", "examples/americas"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn an_invalid_repo_exits_one_with_diagnostics_on_stderr() {
    let out = strata(&root(), &["validate", "examples/invalid/unknown-group"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn json_output_carries_file_line_and_column() {
    let out = strata(
        &example("invalid/unknown-section"),
        &["validate", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let p = &v["problems"][0];
    assert_eq!(p["code"], "strata::section::unknown");
    assert_eq!(p["file"], "cluster.kdl");
    assert_eq!(p["line"], 2);
    assert_eq!(p["column"], 5);
    assert_eq!(p["help"], "did you mean `dns`?");
}

#[test]
fn github_format_prints_workflow_annotations() {
    let out = strata(
        &example("invalid/enum-typo"),
        &["validate", "--format", "github"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn warnings_alone_keep_exit_zero() {
    let out = strata(&example("invalid/group-named-like-cluster"), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 50_000;
    let text = format!(
        "cluster \"a\" {{ dns {{ {}{} }} }}\ngroup \"Main_Group\"\n",
        "x { ".repeat(depth),
        "}".repeat(depth)
    );
    std::fs::write(dir.path().join("c.kdl"), text).unwrap();
    let out = strata(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["code"], "strata::kdl::too-deep");
    assert_eq!(v["errors"], 1, "no echoes of the refused file: {v}");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let out = strata(&root(), &["validate", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read no/such/dir"), "{err}");
}
