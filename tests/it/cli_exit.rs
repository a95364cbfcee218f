//! Exit codes through the real binary: usage errors, an unreachable agent, `--help`,
//! and a stdout closed by the reader.

use std::process::{Command, Stdio};

use crate::agent_support::{keypair, stderr, stdout, strata};
use crate::support::root;

#[test]
fn a_usage_error_is_not_mistaken_for_changes_and_help_is_success() {
    let out = strata(&["plan", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let out = strata(&["valdate"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    // A command that needs an agent and is told none is missing an argument too.
    let out = strata(&["log"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("which agent?"), "{}", stderr(&out));
    // -h and --help give the same exit codes (a subcommand's own).
    for flag in ["-h", "--help"] {
        let out = strata(&["cluster", "list", flag]);
        assert!(
            stdout(&out)
                .contains("Exit codes: 0 listed, 1 refused, 69 unreachable, 75 login delayed; 64"),
            "{flag}: {}",
            stdout(&out)
        );
    }
    let out = strata(&["plan", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("Exit codes: 0 no changes, 2 changes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_agent_that_cannot_be_reached_exits_69_with_its_kind_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id");
    keypair(&key);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let args = [
        "log",
        "--target",
        &target,
        "--identity",
        key.to_str().unwrap(),
        "--fingerprint",
        "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ];
    let out = strata(&args);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot connect to 127.0.0.1"),
        "{}",
        stderr(&out)
    );
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    let out = strata(&json);
    assert_eq!(out.status.code(), Some(69));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "unreachable", "{v}");
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(root())
        .args([
            "show",
            "--repo",
            "examples/americas",
            "--machine",
            "lab1.example.com",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// The `run:` script of the step named `name` in the example GitHub Actions workflow,
/// with the workflow's `${{ … }}` expressions replaced by plain words.
fn workflow_step(name: &str) -> String {
    let text = std::fs::read_to_string(root().join("examples/ci/github-actions.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("no step `{name}`"));
    let run = (start..lines.len())
        .find(|i| lines[*i].trim() == "run: |")
        .unwrap();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let body: Vec<&str> = lines[run + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > indent(lines[run]))
        .copied()
        .collect();
    let mut script = body.join("\n");
    while let Some(i) = script.find("${{") {
        let end = script[i..].find("}}").unwrap() + i + 2;
        script.replace_range(i..end, "x");
    }
    script
}

#[test]
fn the_example_ci_plan_step_passes_on_exactly_no_changes_and_changes() {
    let script = workflow_step("Plan against the live cluster");
    assert!(script.contains("strata plan"), "{script}");
    let tmp = tempfile::tempdir().unwrap();
    for (code, passes) in [
        (0, true),
        (2, true),
        (1, false),
        (64, false),
        (69, false),
        (70, false),
    ] {
        // GitHub runs `run:` scripts with `bash -e -o pipefail`; `strata` answers `code`.
        let status = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(format!("strata() {{ return {code}; }}\n{script}"))
            .env("RUNNER_TEMP", tmp.path())
            .env("STRATA_KEY", "key")
            .status()
            .unwrap();
        assert_eq!(status.success(), passes, "exit {code}:\n{script}");
    }
}
