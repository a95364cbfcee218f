//! `strata completions` and `strata manpages`: the bash script really completes (run
//! through bash's own completion variables), the other shells' scripts parse where the
//! shell is installed, and the man pages are written whole or not at all.

use std::path::Path;
use std::process::Command;

use crate::support::{strata, transcript};

/// What bash's completion function offers for the words of `line` (the cursor at its
/// end; a trailing space starts a new, empty word), with the script sourced.
fn bash_complete(script: &Path, line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if line.ends_with(' ') {
        words.push("");
    }
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE='{line}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _strata strata '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words.get(words.len().wrapping_sub(2)).unwrap_or(&""),
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_subcommands_and_flag_values() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("bash is not installed: skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(tmp.path(), &["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let script = tmp.path().join("strata.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    assert_eq!(bash_complete(&script, "strata clu"), ["cluster"]);
    let commands = bash_complete(&script, "strata ");
    for c in ["validate", "agent", "cluster", "completions", "manpages"] {
        assert!(commands.contains(&c.to_owned()), "{c} not in {commands:?}");
    }
    assert_eq!(bash_complete(&script, "strata cluster jo"), ["join"]);
    assert_eq!(
        bash_complete(&script, "strata agent --log-format "),
        ["text", "json"]
    );
    let mut shells = bash_complete(&script, "strata completions ");
    shells.retain(|w| !w.starts_with('-'));
    assert_eq!(shells, ["bash", "elvish", "fish", "powershell", "zsh"]);
    let flags = bash_complete(&script, "strata agent --");
    for f in [
        "--state-dir",
        "--listen",
        "--machine",
        "--log-format",
        "--format",
    ] {
        assert!(flags.contains(&f.to_owned()), "{f} not in {flags:?}");
    }
}

#[test]
fn every_shell_gets_a_script_that_its_shell_parses() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, checker, marker) in [
        ("bash", Some("bash"), "complete -F _strata"),
        ("zsh", Some("zsh"), "#compdef strata"),
        ("fish", Some("fish"), "complete -c strata"),
        ("elvish", None, "edit:completion:arg-completer[strata]"),
        ("powershell", None, "Register-ArgumentCompleter"),
    ] {
        let out = strata(tmp.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", transcript(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("cluster"), "{shell}: no subcommands");
        let Some(checker) = checker else { continue };
        let path = tmp.path().join(format!("strata.{shell}"));
        std::fs::write(&path, &script).unwrap();
        // `-n`: parse only. A shell that is not installed is skipped.
        if let Ok(check) = Command::new(checker).arg("-n").arg(&path).output() {
            assert!(check.status.success(), "{shell}: {}", transcript(&check));
        }
    }
}

#[test]
fn completions_refuse_json_and_unknown_shells() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(tmp.path(), &["completions", "bash", "--format", "json"]);
    assert_eq!(out.status.code(), Some(64), "{}", transcript(&out));
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("_strata"));
    let out = strata(tmp.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(64), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'tcsh'")
            && err.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{err}"
    );
}

#[test]
fn manpages_writes_one_page_per_command_into_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share/man/man1");
    let out = strata(tmp.path(), &["manpages", "share/man/man1"]);
    crate::temp_snapshot!("manpages_human", transcript(&out), tmp.path());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for page in [
        "strata.1",
        "strata-agent.1",
        "strata-cluster-join.1",
        "strata-completions.1",
        "strata-manpages.1",
    ] {
        assert!(names.contains(&page.to_owned()), "no {page} in {names:?}");
    }
    // `man` renders a page, when it is installed.
    let page = dir.join("strata-agent.1");
    if let Ok(man) = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .output()
        && man.status.success()
    {
        let text = String::from_utf8_lossy(&man.stdout);
        assert!(text.contains("--log-format"), "{text}");
    }

    // JSON names every page written; a second run replaces them.
    let out = strata(
        tmp.path(),
        &["manpages", "share/man/man1", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pages: Vec<String> = json["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let mut sorted = pages.clone();
    sorted.sort();
    assert_eq!(sorted, names);
    assert_eq!(json["dir"], dir.display().to_string());
}

#[test]
fn manpages_into_a_file_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("man1"), "not a directory").unwrap();
    let out = strata(tmp.path(), &["manpages", "man1/pages"]);
    crate::temp_snapshot!("manpages_into_a_file", transcript(&out), tmp.path());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("man1")).unwrap(),
        "not a directory"
    );
}
