//! Every command's `--format json` output validates against its schema under
//! `schemas/json/` (generated from the types the command prints; a unit test keeps the
//! files current), on real runs: valid and invalid repos, several at once, a hash, an error.

use std::path::Path;

use crate::support::{root, strata};

/// Fails unless `output`'s stdout is JSON that `schemas/json/NAME.json` accepts, and
/// returns the document.
pub fn matching_schema(name: &str, output: &std::process::Output) -> serde_json::Value {
    let path = root().join("schemas/json").join(format!("{name}.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc:#}");
    doc
}

#[test]
fn validate_output_matches_its_schema() {
    let out = strata(
        &root(),
        &["validate", "--format", "json", "examples/americas"],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc = matching_schema("validate", &out);
    assert_eq!(doc["repos"][0]["cluster"], "americas");

    let out = strata(
        &root(),
        &[
            "validate",
            "--format",
            "json",
            "examples/invalid/unknown-section",
            "examples/invalid/enum-typo",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc = matching_schema("validate", &out);
    assert_eq!(doc["repos"].as_array().unwrap().len(), 2);
    assert_eq!(doc["problems"][0]["severity"], "error");
    assert_eq!(
        doc["problems"][0]["repo"],
        "examples/invalid/unknown-section"
    );
}

#[test]
fn show_where_and_export_output_matches_their_schemas() {
    let repo = ["--repo", "examples/americas", "--format", "json"];
    let run = |args: &[&str]| strata(&root(), &[args, &repo[..]].concat());
    let doc = matching_schema(
        "show-machine",
        &run(&["show", "--machine", "lab3.example.com"]),
    );
    // Both origins: a section some mode defines, and one on the factory default.
    let origins: Vec<&serde_json::Value> = doc["sections"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| &s["origin"])
        .collect();
    assert!(origins.iter().any(|o| o.is_object()));
    assert!(origins.iter().any(|o| *o == "factory-default"));
    matching_schema("show-mode", &run(&["show", "--cluster"]));
    matching_schema("show-mode", &run(&["show", "--group", "Paris"]));
    let doc = matching_schema("show-sections", &run(&["show", "--sections"]));
    assert!(doc["sections"].as_array().is_some_and(|s| s.len() > 10));
    let doc = matching_schema(
        "export-xml",
        &run(&["export-xml", "--machine", "lab3.example.com"]),
    );
    assert!(doc["xml"].as_str().is_some_and(|x| x.contains("<config")));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cluster.xml").display().to_string();
    let doc = matching_schema(
        "export-xml",
        &run(&["export-xml", "--cluster", "--out", &file]),
    );
    assert_eq!(doc["out"], file.as_str());
    let doc = matching_schema("where", &run(&["where", "dns"]));
    assert!(doc["defined_at"].as_array().is_some_and(|d| !d.is_empty()));
}

#[test]
fn copy_and_delete_output_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    crate::support::copy_dir(&root().join("examples/americas"), tmp.path());
    let doc = matching_schema(
        "edit",
        &strata(
            tmp.path(),
            &[
                "copy",
                "dns",
                "--from",
                "cluster",
                "--to",
                "all-groups",
                "--format",
                "json",
            ],
        ),
    );
    assert!(doc["groups"].as_array().is_some_and(|g| !g.is_empty()));
    matching_schema(
        "edit",
        &strata(
            tmp.path(),
            &["delete", "dns", "--at", "group:Rome", "--format", "json"],
        ),
    );
}

#[test]
fn import_xml_output_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--new-cluster",
            "emea",
            "--repo",
            &dir,
            "--format",
            "json",
        ],
    );
    let doc = matching_schema("import-xml", &out);
    assert!(doc["files"].as_array().is_some_and(|f| !f.is_empty()));
}

#[test]
fn hash_passphrase_output_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pass"), "correct horse\n").unwrap();
    let out = strata(
        tmp.path(),
        &[
            "hash-passphrase",
            "--passphrase-file",
            "pass",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc = matching_schema("hash-passphrase", &out);
    assert_eq!(doc["algorithm"], "argon2id");
}

#[test]
fn manpages_output_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(tmp.path(), &["manpages", "man", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = matching_schema("manpages", &out);
    assert!(doc["pages"].as_array().is_some_and(|p| p.len() > 10));
}

#[test]
fn an_error_matches_the_error_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .current_dir(tmp.path())
        .env("HOME", tmp.path())
        .args(["status", "--format", "json", "--target", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = matching_schema("error", &out);
    assert_eq!(doc["kind"], "invalid");
}

#[test]
fn every_schema_file_is_one_the_binary_describes() {
    let names: Vec<&str> = strata::cli::json::schemas()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for entry in std::fs::read_dir(Path::new(&root()).join("schemas/json")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let name = file.strip_suffix(".json").unwrap_or(&file);
        assert!(
            names.contains(&name),
            "schemas/json/{file} describes no output"
        );
    }
}

#[test]
fn what_agents_answer_matches_its_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let h = crate::mesh_support::MeshHarness::start(tmp.path(), 2);
    let pass = h.create(tmp.path(), "americas");
    let doc = matching_schema(
        "cluster-join",
        &h.try_join_with(2, &pass, &["--format", "json"]),
    );
    assert_eq!(doc["joined"], "americas");
    let doc = matching_schema("status", &h.strata(1, &["status", "--format", "json"]));
    assert_eq!(doc["machine"], h.machine(1).name);
    let doc = matching_schema(
        "cluster-list",
        &h.strata(2, &["cluster", "list", "--format", "json"]),
    );
    assert_eq!(doc["cluster"], "americas");
    let doc = matching_schema(
        "cluster-connstatus",
        &h.strata(1, &["cluster", "connstatus", "--format", "json"]),
    );
    assert!(doc["views"].as_array().is_some_and(|v| !v.is_empty()));
    let doc = matching_schema(
        "secret-recipients",
        &h.strata(2, &["secret", "recipient", "--format", "json"]),
    );
    assert!(doc["recipients"].as_array().is_some_and(|r| !r.is_empty()));
    let doc = matching_schema("log", &h.strata(2, &["log", "--format", "json"]));
    assert!(doc["change_sets"].as_array().is_some_and(|v| !v.is_empty()));
    let doc = matching_schema(
        "log-conflicts",
        &h.strata(2, &["log", "--conflicts", "--format", "json"]),
    );
    assert_eq!(doc["conflicts"], serde_json::json!([]));
    let doc = matching_schema("check", &h.strata(1, &["check", "--format", "json"]));
    assert_eq!(doc["agree"], true);
    // Against a repo that declares other machines: drift, in the same document.
    let repo = root().join("examples/americas").display().to_string();
    let doc = matching_schema(
        "check",
        &h.strata(1, &["check", "--repo", &repo, "--format", "json"]),
    );
    assert_eq!(doc["consistent"], false);
    assert!(
        doc["drift"]["not_joined"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    let out = h.strata(1, &["plan", "--repo", &repo, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = matching_schema("plan", &out);
    assert_eq!(doc["changes"], true);
    assert!(doc["hazards"].is_array());

    // A repo of these machines: applied, then nothing left to apply.
    let own = tmp.path().join("repo");
    crate::cluster_support::write_repo(&own, 2, &crate::cluster_support::dns("10.0.0.53"));
    let out = crate::cluster_support::apply(&h, 1, &own, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = matching_schema("apply", &out);
    assert_eq!(doc["applied"], true);
    let doc = matching_schema(
        "apply",
        &crate::cluster_support::apply(&h, 1, &own, &["--format", "json"]),
    );
    assert_eq!(doc["applied"], false);

    // The cluster administration commands: committed, and nothing to change.
    let json = |args: &[&str]| h.strata(1, &[args, &["--format", "json"][..]].concat());
    let second = h.machine(2).name.clone();
    let doc = matching_schema("cluster-addgroup", &json(&["cluster", "addgroup", "Paris"]));
    assert!(doc["change_set"].is_object());
    let doc = matching_schema(
        "cluster-setgroup",
        &json(&["cluster", "setgroup", &second, "Main_Group"]),
    );
    assert!(doc["change_set"].is_null());
    matching_schema(
        "cluster-setgroup",
        &json(&["cluster", "setgroup", &second, "Paris"]),
    );
    matching_schema(
        "cluster-renamegroup",
        &json(&["cluster", "renamegroup", "Paris", "Lyon"]),
    );
    let doc = matching_schema(
        "cluster-deletegroup",
        &json(&["cluster", "deletegroup", "Lyon", "--move-to", "Main_Group"]),
    );
    assert_eq!(doc["move_to"], "Main_Group");
    matching_schema("cluster-setname", &json(&["cluster", "setname", "emea"]));
    let pass_arg = pass.display().to_string();
    matching_schema(
        "cluster-passwd",
        &json(&["cluster", "passwd", "--passphrase-file", &pass_arg]),
    );
    let key_file = tmp.path().join("lab9");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_file)
        .status()
        .unwrap();
    assert!(keygen.success());
    let key = std::fs::read_to_string(key_file.with_extension("pub")).unwrap();
    let host = "lab9.example.com";
    let add = [
        "cluster",
        "prepjoin",
        "add",
        host,
        "--serial",
        "S9",
        "--key",
        key.trim(),
    ];
    let doc = matching_schema("cluster-prepjoin-add", &json(&add));
    assert_eq!(doc["host"], host);
    let doc = matching_schema(
        "cluster-prepjoin-list",
        &json(&["cluster", "prepjoin", "list"]),
    );
    assert_eq!(doc["entries"][0]["host"], host);
    matching_schema(
        "cluster-prepjoin-print",
        &h.strata(2, &["cluster", "prepjoin", "print", "--format", "json"]),
    );
    matching_schema(
        "cluster-prepjoin-delete",
        &json(&["cluster", "prepjoin", "delete", host]),
    );

    // Membership: committed, nothing to change, and the member named in a fixed field.
    let doc = matching_schema(
        "cluster-disconnect",
        &json(&["cluster", "disconnect", &second]),
    );
    assert_eq!(doc["action"], "disconnected");
    assert_eq!(doc["member"], second.as_str());
    assert!(doc["change_set"].is_object());
    let doc = matching_schema(
        "cluster-disconnect",
        &json(&["cluster", "disconnect", &second]),
    );
    assert!(doc["change_set"].is_null());
    let doc = matching_schema(
        "cluster-reconnect",
        &json(&["cluster", "reconnect", &second]),
    );
    assert_eq!(doc["action"], "reconnected");
    let doc = matching_schema("cluster-remove", &json(&["cluster", "remove", &second]));
    assert_eq!(doc["action"], "removed");
}

#[test]
fn cluster_create_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let h = crate::mesh_support::MeshHarness::start(tmp.path(), 1);
    let doc = matching_schema(
        "cluster-create",
        &h.strata(1, &["cluster", "create", "americas", "--format", "json"]),
    );
    assert_eq!(doc["cluster"], "americas");
    assert!(doc["change_set"].is_object());
}
