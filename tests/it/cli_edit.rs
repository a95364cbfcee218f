//! `strata copy`, `move` and `delete` through the real binary on a copy of the example.

use std::fs;

use crate::support::{copy_dir, example, strata, transcript};

fn americas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example("americas"), dir.path());
    dir
}

#[test]
fn copy_then_delete_restores_the_files_byte_for_byte() {
    let dir = americas();
    let before = fs::read_to_string(dir.path().join("groups.kdl")).unwrap();
    let out = strata(
        dir.path(),
        &["copy", "dns", "--from", "cluster", "--to", "group:Rome"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    let copied = fs::read_to_string(dir.path().join("groups.kdl")).unwrap();
    assert_ne!(copied, before);
    // The copy is what Rome's machines now get; lab5 keeps its own.
    let show = strata(
        dir.path(),
        &[
            "show",
            "--machine",
            "lab6.example.com",
            "dns",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["sections"]["dns"]["origin"]["mode"], "group:Rome");

    let out = strata(dir.path(), &["delete", "dns", "--at", "group:Rome"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(
        fs::read_to_string(dir.path().join("groups.kdl")).unwrap(),
        before
    );
}

#[test]
fn move_leaves_the_source_inheriting() {
    let dir = americas();
    let out = strata(
        dir.path(),
        &[
            "move",
            "smtp-routes",
            "--from",
            "group:Rome",
            "--to",
            "machine:lab6.example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let lab5 = strata(
        dir.path(),
        &[
            "show",
            "--machine",
            "lab5.example.com",
            "smtp-routes",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&lab5.stdout).unwrap();
    assert_eq!(v["sections"]["smtp-routes"]["origin"]["mode"], "cluster");
    let lab6 = strata(
        dir.path(),
        &[
            "show",
            "--machine",
            "lab6.example.com",
            "smtp-routes",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&lab6.stdout).unwrap();
    assert_eq!(
        v["sections"]["smtp-routes"]["origin"]["mode"],
        "machine:lab6.example.com"
    );
    let valid = strata(dir.path(), &["validate"]);
    assert_eq!(valid.status.code(), Some(0), "{}", transcript(&valid));
}

#[test]
fn a_move_across_a_level_restriction_is_refused_and_changes_nothing() {
    let dir = americas();
    let before = fs::read_to_string(dir.path().join("cluster.kdl")).unwrap();
    let out = strata(
        dir.path(),
        &["move", "users", "--from", "cluster", "--to", "group:Paris"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(
        fs::read_to_string(dir.path().join("cluster.kdl")).unwrap(),
        before
    );
}

/// `--to all-groups` from a group: the source keeps its section (it is one of the
/// groups, on a move too), a group with its own is skipped unless --replace-existing,
/// and the summary names every group with what happened to it.
#[test]
fn a_move_to_all_groups_keeps_the_source_and_names_every_group() {
    let dir = americas();
    let defined_at = |dir: &std::path::Path, group: &str| -> serde_json::Value {
        let out = strata(
            dir,
            &["show", "--group", group, "smtp-routes", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["sections"]["smtp-routes"]["kdl"].clone()
    };
    let paris_before = defined_at(dir.path(), "Paris");
    let rome_before = defined_at(dir.path(), "Rome");
    let out = strata(
        dir.path(),
        &[
            "move",
            "smtp-routes",
            "--from",
            "group:Rome",
            "--to",
            "all-groups",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!("move_to_all_groups", transcript(&out));
    assert_eq!(defined_at(dir.path(), "Rome"), rome_before, "Rome keeps it");
    assert_eq!(
        defined_at(dir.path(), "Paris"),
        paris_before,
        "Paris keeps its own"
    );
    let main = defined_at(dir.path(), "Main_Group").to_string();
    assert!(main.contains("mx.rome.example.com"), "{main}");

    // Asked to, Paris's own is replaced; the others already have Rome's.
    let out = strata(
        dir.path(),
        &[
            "copy",
            "smtp-routes",
            "--from",
            "group:Rome",
            "--to",
            "all-groups",
            "--replace-existing",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!("copy_to_all_groups_replacing", transcript(&out));
    let paris = defined_at(dir.path(), "Paris").to_string();
    assert!(paris.contains("mx.rome.example.com"), "{paris}");
    let valid = strata(dir.path(), &["validate"]);
    assert_eq!(valid.status.code(), Some(0), "{}", transcript(&valid));

    // --replace-existing means nothing for one mode: refused, nothing written.
    let out = strata(
        dir.path(),
        &[
            "copy",
            "dns",
            "--from",
            "cluster",
            "--to",
            "group:Rome",
            "--replace-existing",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--replace-existing is for `--to all-groups`"),
        "{}",
        transcript(&out)
    );
}

/// `copy SECTION --from factory --to MODE`: the schema's factory default (here from the
/// repo's own schema) written at MODE, with the shadowing notice any copy gives; a move
/// of a factory default is refused.
#[test]
fn a_factory_default_is_copied_from_the_repo_s_own_schema() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example("custom-schema"), dir.path());
    let out = strata(
        dir.path(),
        &["copy", "web-proxy", "--from", "factory", "--to", "cluster"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    let show = strata(
        dir.path(),
        &["show", "--cluster", "web-proxy", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        v["sections"]["web-proxy"]["kdl"], "web-proxy port=3128\n",
        "{v}"
    );
    let valid = strata(dir.path(), &["validate"]);
    assert_eq!(valid.status.code(), Some(0), "{}", transcript(&valid));

    let before = fs::read_to_string(dir.path().join("cluster.kdl")).unwrap();
    let out = strata(
        dir.path(),
        &[
            "move",
            "web-proxy",
            "--from",
            "factory",
            "--to",
            "group:Branch",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a factory default cannot be moved")
            && err.contains("strata copy web-proxy --from factory --to group:Branch"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("cluster.kdl")).unwrap(),
        before
    );
}

/// A delete that would leave the repo invalid (the `interfaces` a cluster listener names
/// on lab1) exits 1 with the errors it would cause, and writes nothing.
#[test]
fn a_delete_that_would_break_a_reference_is_refused_and_writes_nothing() {
    let dir = americas();
    let file = dir.path().join("machines/lab1.kdl");
    let before = fs::read_to_string(&file).unwrap();
    let args = ["delete", "interfaces", "--at", "machine:lab1.example.com"];
    let out = strata(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    let out = strata(dir.path(), &json);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "strata::edit::invalidates", "{v}");
    assert_eq!(v["related"][0]["code"], "strata::ref::unresolved", "{v}");
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
}
