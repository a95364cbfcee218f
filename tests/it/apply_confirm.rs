//! `apply` and `rollback` show what they change and ask, as Terraform does: on a
//! terminal (a real pseudo-terminal, through util-linux `script`) only `yes` goes ahead;
//! without a terminal, and with `--format json`, they refuse unless `--yes` is given,
//! naming it; `--yes` goes ahead without asking. Nothing is written when they refuse.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::agent_support::{
    CLUSTER, MACHINES, change_set_ids, created, git_repo, ok, p, sd, stderr, stdout, strata,
};

/// `strata ARGS` run on a pseudo-terminal (`script`), typing `answer` and Enter; its
/// output (the terminal's: the prompt and the echoed answer among it) and exit code.
/// `None` when `script` is not installed.
fn on_terminal(args: &[&str], answer: &str) -> Option<(i32, String)> {
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let mut command = quote(env!("CARGO_BIN_EXE_strata"));
    for a in args {
        command.push(' ');
        command.push_str(&quote(a));
    }
    let spawned = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        assert!(std::env::var_os("CI").is_none(), "CI must have `script`");
        eprintln!("skipping: no `script` (util-linux) on this machine");
        return None;
    };
    // The terminal keeps what is typed until the question reads it.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    drop(stdin);
    let out: Output = child.wait_with_output().unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out)).replace("\r\n", "\n");
    Some((out.status.code().unwrap_or(-1), text))
}

const QUESTION: &str = "Do you want to perform these actions (through lab1.example.com)?";

fn running_dns(agent_dir: &Path) -> String {
    std::fs::read_to_string(agent_dir.join("running/dns.kdl")).unwrap_or_default()
}

#[test]
fn apply_and_rollback_ask_on_a_terminal_and_refuse_without_one_unless_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "americas",
    );
    let agent = created(&tmp.path().join("agent"));
    let (sd, repo) = (sd(&agent), p(&repo));
    let apply = [
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ];
    let before = change_set_ids(&sd);
    let dns_before = running_dns(&agent.dir);
    assert!(!dns_before.contains("10.0.0.53"), "{dns_before}");

    // No terminal (the streams are pipes), no --yes: the plan is shown, then refused.
    let out = strata(&apply);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("+ cluster/ntp (created)"),
        "the plan is shown: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("not applied: there is no terminal to ask on, and --yes was not given"),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");
    // --format json asks nothing either.
    let mut json = apply.to_vec();
    json.extend(["--format", "json"]);
    let out = strata(&json);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("--format json asks no question"),
        "{}",
        stdout(&out)
    );
    assert_eq!(change_set_ids(&sd), before, "nothing was applied");
    assert_eq!(running_dns(&agent.dir), dns_before);

    // On a terminal: the plan, the question; "no" applies nothing.
    let Some((code, text)) = on_terminal(&apply, "no") else {
        return;
    };
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("+ cluster/ntp (created)"), "{text}");
    assert!(
        text.contains(QUESTION) && text.contains("Only 'yes' will be accepted to approve."),
        "{text}"
    );
    assert!(
        text.contains("not applied: the answer was not `yes`"),
        "{text}"
    );
    // A `y` is not a yes either.
    let (code, text) = on_terminal(&apply, "y").unwrap();
    assert_eq!(code, 1, "{text}");
    assert_eq!(change_set_ids(&sd), before, "nothing was applied");

    // "yes" applies.
    let (code, text) = on_terminal(&apply, "yes").unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("applied change set"), "{text}");
    let applied = change_set_ids(&sd);
    assert_eq!(applied.len(), before.len() + 1);
    assert!(running_dns(&agent.dir).contains("10.0.0.53"));

    // Rollback to the cluster as created: shown first, and asked as apply asks.
    let rollback = ["rollback", "--to", &before[0], "--state-dir", &sd];
    let out = strata(&rollback);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains("desired: cli by ")
            && shown.contains(&format!("rollback to change set {}", &before[0])),
        "{shown}"
    );
    assert!(shown.contains("- cluster/ntp (removed)"), "{shown}");
    assert!(shown.contains("plan: "), "{shown}");
    assert!(
        stderr(&out).contains("not rolled back: there is no terminal to ask on, and --yes"),
        "{}",
        stderr(&out)
    );
    let (code, text) = on_terminal(&rollback, "no").unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("- cluster/ntp (removed)") && text.contains(QUESTION),
        "{text}"
    );
    assert!(
        text.contains("not rolled back: the answer was not `yes`"),
        "{text}"
    );
    assert_eq!(change_set_ids(&sd), applied, "nothing was rolled back");
    assert!(running_dns(&agent.dir).contains("10.0.0.53"));

    let (code, text) = on_terminal(&rollback, "yes").unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("applied change set"), "{text}");
    assert_eq!(change_set_ids(&sd).len(), applied.len() + 1);
    assert_eq!(running_dns(&agent.dir), dns_before);

    // --yes goes ahead without a terminal, for apply and rollback alike.
    let mut yes = apply.to_vec();
    yes.push("--yes");
    let out = ok(&strata(&yes));
    assert!(out.contains("applied change set"), "{out}");
    assert!(running_dns(&agent.dir).contains("10.0.0.53"));
    let mut yes = rollback.to_vec();
    yes.push("--yes");
    let out = ok(&strata(&yes));
    assert!(out.contains("applied change set"), "{out}");
    assert_eq!(running_dns(&agent.dir), dns_before);
    // Nothing left to roll back: said so, nothing asked.
    let out = ok(&strata(&rollback));
    assert!(out.contains("no changes"), "{out}");
}
