//! `import-xml`, `export-xml` and `validate` on XML through the real binary: summaries,
//! refusals, diagnostics with line and column, hostile files.

use std::path::Path;

use crate::support::{copy_dir, root, strata, transcript};

fn snapshot(name: &str, text: &str, temp: &Path) {
    crate::temp_snapshot!(name, text, temp);
}

#[test]
fn import_new_cluster_writes_a_repo_that_validates() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--new-cluster",
            "emea",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    snapshot(
        "import_new_cluster",
        &String::from_utf8_lossy(&out.stdout),
        temp.path(),
    );
    for f in [
        "cluster.kdl",
        "groups.kdl",
        "machines/mail1.example.com.kdl",
    ] {
        assert!(temp.path().join(f).is_file(), "{f} missing");
    }
    let machine =
        std::fs::read_to_string(temp.path().join("machines/mail1.example.com.kdl")).unwrap();
    snapshot("import_new_cluster_machine_file", &machine, temp.path());
    let out = strata(temp.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    // A second import refuses to overwrite, and writes nothing.
    let before = std::fs::read(temp.path().join("cluster.kdl")).unwrap();
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--new-cluster",
            "other",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = crate::support::unwrapped(&out.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read(temp.path().join("cluster.kdl")).unwrap(),
        before
    );

    // Exported back, twice: the same bytes.
    let a = strata(
        temp.path(),
        &["export-xml", "--machine", "mail1.example.com"],
    );
    let b = strata(
        temp.path(),
        &["export-xml", "--machine", "mail1.example.com"],
    );
    assert_eq!(a.status.code(), Some(0), "{}", transcript(&a));
    assert_eq!(a.stdout, b.stdout);
    assert!(
        a.stdout
            .starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>")
    );
}

#[test]
fn import_as_a_machine_reports_what_now_overrides_the_cluster() {
    let temp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/americas"), temp.path());
    let dir = temp.path().to_str().unwrap();
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--machine",
            "lab7.example.com",
            "--group",
            "Paris",
            "--address",
            "10.1.0.7",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    snapshot(
        "import_machine",
        &String::from_utf8_lossy(&out.stdout),
        temp.path(),
    );
    let out = strata(temp.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    // The same name again is refused.
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--machine",
            "lab7.example.com",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::support::unwrapped(&out.stderr).contains("already declared"));
}

#[test]
fn import_refuses_an_invalid_file_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    let out = strata(
        &root(),
        &[
            "import-xml",
            "tests/fixtures/xml/invalid-values.xml",
            "--new-cluster",
            "x",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
    snapshot("import_invalid", &transcript(&out), temp.path());
}

#[test]
fn the_cluster_form_converts_back_to_a_repo() {
    let temp = tempfile::tempdir().unwrap();
    let xml = temp.path().join("americas.xml");
    let out = strata(
        &root(),
        &[
            "export-xml",
            "--cluster",
            "--repo",
            "examples/americas",
            "--out",
            xml.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = strata(temp.path(), &["validate", "americas.xml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let repo = temp.path().join("repo");
    let out = strata(
        temp.path(),
        &[
            "import-xml",
            "americas.xml",
            "--repo",
            repo.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let a = strata(
        &root(),
        &[
            "show",
            "--machine",
            "lab3.example.com",
            "--repo",
            "examples/americas",
            "--format",
            "json",
        ],
    );
    let b = strata(
        &repo,
        &["show", "--machine", "lab3.example.com", "--format", "json"],
    );
    let strip = |o: &std::process::Output| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // Provenance names files; the content must be the same.
        fn drop_locations(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.retain(|k, _| !matches!(k.as_str(), "location" | "file" | "origin" | "from"));
                    m.values_mut().for_each(drop_locations);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(drop_locations),
                _ => {}
            }
        }
        drop_locations(&mut v);
        v
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn validate_reports_xml_syntax_errors_with_line_and_column() {
    let out = strata(
        &root(),
        &["validate", "tests/fixtures/xml/syntax-error.xml"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
    let out = strata(
        &root(),
        &[
            "validate",
            "--format",
            "json",
            "tests/fixtures/xml/syntax-error.xml",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["problems"][0];
    assert_eq!(p["code"], "strata::xml::syntax");
    assert_eq!(p["line"], 9);
    assert_eq!(p["column"], 3);
}

#[test]
fn validate_runs_the_schema_and_reference_checks_on_xml() {
    let out = strata(
        &root(),
        &["validate", "tests/fixtures/xml/invalid-values.xml"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
    let out = strata(&root(), &["validate", "tests/fixtures/xml/appliance.xml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // Each XML file is a repo of its own: two appliances are not two clusters of one repo.
    let out = strata(
        &root(),
        &[
            "validate",
            "tests/fixtures/xml/appliance.xml",
            "tests/fixtures/xml/appliance.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn hostile_files_fail_fast_with_a_clear_error() {
    for name in [
        "billion-laughs.xml",
        "undefined-entity.xml",
        "deep-nesting.xml",
    ] {
        let path = format!("tests/fixtures/xml/hostile/{name}");
        // Refused before any expansion or deep recursion: the code says so. (Speed is
        // not asserted here; tests do not time things.)
        let out = strata(&root(), &["validate", "--format", "json", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["problems"][0]["code"], "strata::xml::refused",
            "{name}: {v}"
        );
        assert_eq!(v["errors"], 1, "{name}: only the one error, no echoes: {v}");
    }
    // A text far longer than any setting, and a file over the size limit.
    let temp = tempfile::tempdir().unwrap();
    let huge = temp.path().join("huge-text.xml");
    let mut text = String::from("<config><hostname>");
    text.push_str(&"a".repeat(5 << 20));
    text.push_str("</hostname></config>");
    std::fs::write(&huge, text).unwrap();
    let out = strata(temp.path(), &["validate", "huge-text.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::support::unwrapped(&out.stderr).contains("a text longer than"));
    let big = temp.path().join("big.xml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(65 << 20).unwrap();
    let out = strata(temp.path(), &["validate", "big.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::support::unwrapped(&out.stderr).contains("more than the"),
        "{}",
        transcript(&out)
    );
}

/// An import that fails while writing leaves no file of it behind, and a dangling symbolic
/// link counts as a file that exists and is never written through.
#[test]
fn a_failed_import_writes_no_file_at_all() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import-xml",
            "tests/fixtures/xml/appliance.xml",
            "--new-cluster",
            "emea",
            "--repo",
            dir,
        ];
        args.extend_from_slice(extra);
        strata(&root(), &args)
    };
    // `machines` is a file: the machine's file cannot be written.
    std::fs::write(temp.path().join("machines"), "not a directory").unwrap();
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let mut left: Vec<String> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["machines"], "{}", transcript(&out));
    std::fs::remove_file(temp.path().join("machines")).unwrap();

    // A dangling link where cluster.kdl goes is not followed, and is refused without --force.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere.kdl");
    std::os::unix::fs::symlink(&target, temp.path().join("cluster.kdl")).unwrap();
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(crate::support::unwrapped(&out.stderr).contains("cluster.kdl already exists"));
    assert!(!temp.path().join("groups.kdl").exists());
    let out = import(&["--force"]);
    assert!(
        !target.exists(),
        "the import wrote through the link: {}",
        transcript(&out)
    );
}
