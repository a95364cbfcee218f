//! The smaller hardening items of issue 8 (item 12) through the real binary: reports over
//! several repos, files that are not UTF-8, edits through symbolic links, the seed's
//! warning about moving a section with no factory default, `export-xml --format json`,
//! `--format github` where it means nothing, and `~/.ssh/known_hosts` read as a pin.

use std::path::Path;

use crate::support::{copy_dir, example, root, strata, transcript};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", transcript(out)))
}

#[test]
fn problems_of_several_repos_name_files_from_here_and_their_repo() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("invalid/unknown-section"), &tmp.path().join("a"));
    copy_dir(&example("invalid/enum-typo"), &tmp.path().join("b"));
    let out = strata(tmp.path(), &["validate", "a", "b", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{v}");
    for p in problems {
        let (repo, file) = (p["repo"].as_str().unwrap(), p["file"].as_str().unwrap());
        assert!(file.starts_with(&format!("{repo}/")), "{p}");
        assert!(
            tmp.path().join(file).is_file(),
            "{file} is not a path from here"
        );
    }
    let out = strata(tmp.path(), &["validate", "a", "b", "--format", "github"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("::error file=a/cluster.kdl,line=2,col=5,"),
        "{text}"
    );
    assert!(text.contains("file=b/"), "{text}");
    // One repo in the current directory: names as before, without `./`.
    let out = strata(
        &tmp.path().join("a"),
        &["validate", ".", "--format", "json"],
    );
    assert_eq!(json(&out)["problems"][0]["file"], "cluster.kdl");
}

#[test]
fn a_file_that_is_not_utf8_is_a_problem_with_a_place_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("americas"), tmp.path());
    std::fs::write(tmp.path().join("notes.kdl"), b"// caf\xe9\n").unwrap();
    let out = strata(tmp.path(), &["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["repos"][0]["machines"], 6,
        "the rest of the repo is read: {v}"
    );
    assert_eq!(v["errors"], 1, "no echoes: {v}");
    let p = &v["problems"][0];
    assert_eq!(p["code"], "strata::repo::not-utf8");
    assert_eq!(
        (p["file"].as_str(), p["line"].as_u64(), p["column"].as_u64()),
        (Some("notes.kdl"), Some(1), Some(7))
    );
    let out = strata(tmp.path(), &["validate", "--format", "github"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("::error file=notes.kdl,line=1,col=7,title=strata%3A%3Arepo%3A%3Anot-utf8::the file is not UTF-8: byte 0xE9 cannot be decoded"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn edits_write_through_a_symlinked_file_and_keep_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&example("americas"), &repo);
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::rename(repo.join("machines/lab5.kdl"), shared.join("lab5.kdl")).unwrap();
    std::os::unix::fs::symlink(shared.join("lab5.kdl"), repo.join("machines/lab5.kdl")).unwrap();
    let out = strata(
        &repo,
        &[
            "copy",
            "dns",
            "--from",
            "cluster",
            "--to",
            "machine:lab5.example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let link = std::fs::symlink_metadata(repo.join("machines/lab5.kdl")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    assert!(
        std::fs::read_to_string(shared.join("lab5.kdl"))
            .unwrap()
            .contains("dns {")
    );
    let out = strata(
        &repo,
        &["delete", "dns", "--at", "machine:lab5.example.com"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(
        std::fs::symlink_metadata(repo.join("machines/lab5.kdl"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        !std::fs::read_to_string(shared.join("lab5.kdl"))
            .unwrap()
            .contains("dns {")
    );
}

#[test]
fn moving_a_section_with_no_factory_default_names_the_machines_left_blank() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("americas"), tmp.path());
    let args = [
        "move",
        "listeners",
        "--from",
        "cluster",
        "--to",
        "machine:lab1.example.com",
    ];
    let out = strata(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    // JSON carries the machines as data.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("americas"), tmp.path());
    let mut with_json = args.to_vec();
    with_json.extend(["--format", "json"]);
    let v = json(&strata(tmp.path(), &with_json));
    assert_eq!(
        v["left_blank"],
        serde_json::json!([
            "lab2.example.com",
            "lab3.example.com",
            "lab4.example.com",
            "lab5.example.com",
            "lab6.example.com"
        ])
    );
    // A copy leaves everyone their listeners: no warning.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("americas"), tmp.path());
    let out = strata(
        tmp.path(),
        &[
            "copy",
            "listeners",
            "--from",
            "cluster",
            "--to",
            "machine:lab1.example.com",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("no factory default"),
        "{}",
        transcript(&out)
    );
}

#[test]
fn export_xml_in_json_is_a_json_document() {
    let out = strata(
        &root(),
        &[
            "export-xml",
            "--repo",
            "examples/americas",
            "--machine",
            "lab1.example.com",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let v = json(&out);
    assert_eq!(v["exported"], "machine");
    assert_eq!(v["machine"], "lab1.example.com");
    assert_eq!(v["encoding"], "ISO-8859-1");
    assert!(v["xml"].as_str().unwrap().starts_with("<?xml"), "{v}");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cluster.xml");
    let out = strata(
        &root(),
        &[
            "export-xml",
            "--repo",
            "examples/americas",
            "--cluster",
            "--out",
            file.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let v = json(&out);
    assert_eq!(v["exported"], "cluster");
    assert_eq!(v["out"], file.to_str().unwrap());
    assert!(v.get("xml").is_none(), "{v}");
    assert_eq!(
        v["bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
}

#[test]
fn format_github_is_a_usage_error_where_it_means_nothing() {
    for args in [
        &[
            "show",
            "--repo",
            "examples/americas",
            "--cluster",
            "--format",
            "github",
        ][..],
        &["plan", "--state-dir", "/nonexistent", "--format", "github"],
        &[
            "--format",
            "github",
            "export-xml",
            "--repo",
            "examples/americas",
            "--cluster",
        ],
    ] {
        let out = strata(&root(), args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            transcript(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("`--format github` is only for `strata validate`"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// `strata log --target` against an agent, with HOME set to `home`.
fn remote_log(home: &Path, addr: &str, key: &Path, extra: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400")
        .args([
            "log",
            "--target",
            addr,
            "--identity",
            key.to_str().unwrap(),
            "--user",
            "root",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_known_hosts_file_trust_on_first_use_writes_is_read_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = crate::agent_support::created(&tmp.path().join("agent"));
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let key = agent.dir.join("local_key");
    let out = remote_log(&home, &agent.addr, &key, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host key is not pinned") && err.contains(".ssh/known_hosts has no key for"),
        "{err}"
    );
    let out = remote_log(&home, &agent.addr, &key, &["--trust-on-first-use"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recorded the agent's host key"));
    // Afterwards no pin needs to be given: the recorded key is the pin.
    let out = remote_log(&home, &agent.addr, &key, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // And a changed key is refused.
    let kh = home.join(".ssh/known_hosts");
    let other = crate::agent_support::keypair(&tmp.path().join("other"));
    let text = std::fs::read_to_string(&kh).unwrap();
    let host = text.split_whitespace().next().unwrap().to_owned();
    std::fs::write(&kh, format!("{host} {other}\n")).unwrap();
    let out = remote_log(&home, &agent.addr, &key, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
}
