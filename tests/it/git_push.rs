//! `git push` to the agent's own SSH port, with the real git and OpenSSH clients: a push
//! of a valid commit to `main` is applied as one change set stamped with the commit; an
//! invalid one is refused with its diagnostics on the pusher's terminal and nothing
//! changes; a read-only user fetches but may not push.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::agent_support::{
    MACHINES, TestAgent, created, git_repo, keypair, p, sd, stderr, stdout, strata,
};

/// The git and ssh clients, if installed (.ci/run installs both).
fn clients() -> Option<()> {
    let have = |name: &str| {
        Command::new(name)
            .arg("-V")
            .output()
            .or_else(|_| Command::new(name).arg("--version").output())
            .is_ok()
    };
    if have("git") && have("ssh") {
        return Some(());
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have git and ssh");
    eprintln!("skipping: no git or ssh client on this machine");
    None
}

struct Pusher {
    dir: PathBuf,
    ssh: String,
    url: String,
}

impl Pusher {
    fn new(agent: &TestAgent, tmp: &Path, user: &str, key: &Path) -> Pusher {
        let port = agent.addr.rsplit_once(':').unwrap().1.to_owned();
        let kh = tmp.join(format!("known_hosts_{user}"));
        std::fs::write(
            &kh,
            format!("[127.0.0.1]:{port} {}\n", agent.host_public_key()),
        )
        .unwrap();
        Pusher {
            dir: tmp.to_path_buf(),
            ssh: format!(
                "ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
                 -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes",
                key.display(),
                kh.display()
            ),
            url: format!("ssh://{user}@127.0.0.1:{port}/config"),
        }
    }

    fn git(&self, repo: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(repo)
            .args(args)
            .env("GIT_SSH_COMMAND", &self.ssh)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
    }

    fn push(&self, repo: &Path) -> Output {
        self.git(repo, &["push", &self.url, "main"])
    }

    fn clone_to(&self, name: &str) -> Output {
        Command::new("git")
            .current_dir(&self.dir)
            .args(["clone", &self.url, name])
            .env("GIT_SSH_COMMAND", &self.ssh)
            .output()
            .unwrap()
    }
}

fn cluster_kdl(op_key: &str, ro_key: &str, dns: &str) -> String {
    format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        \
         user \"ada\" role=\"operator\" {{ key \"{op_key}\"; }}\n        \
         user \"rob\" role=\"read-only\" {{ key \"{ro_key}\"; }}\n    }}\n    \
         dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\ngroup \"Paris\"\n"
    )
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

#[test]
fn a_push_to_main_is_validated_planned_and_applied_or_refused() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (op, ro) = (tmp.path().join("op"), tmp.path().join("ro"));
    let (op_pub, ro_pub) = (keypair(&op), keypair(&ro));
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[
            ("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.53")),
            ("machines.kdl", MACHINES),
        ],
        "users",
    );
    let agent = created(&tmp.path().join("agent"));
    // The users (and their keys) come in by an ordinary apply first.
    let out = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ada = Pusher::new(&agent, tmp.path(), "ada", &op);

    // A new commit, pushed: applied, stamped with the commit, reported per machine.
    let commit = git_repo(
        &repo,
        &[("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.99"))],
        "dns: move to .99",
    );
    let out = ada.push(&repo);
    let text = both(&out);
    assert!(out.status.success(), "{text}\n{}", agent.log());
    assert!(
        text.contains("remote:"),
        "the hook's report reaches the pusher: {text}"
    );
    assert!(text.contains("applied change set"), "{text}");
    assert!(
        text.contains("propagation: applied on 1 of 1 machines"),
        "{text}"
    );
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.99"), "{dns}");
    let log = stdout(&strata(&[
        "log",
        "--state-dir",
        &sd(&agent),
        "--format",
        "json",
    ]));
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let newest = log["change_sets"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        newest["meta"]["source"]["commit"],
        commit.as_str(),
        "{newest}"
    );
    assert_eq!(
        newest["meta"]["user"], "ada",
        "applied with the pusher's authority: {newest}"
    );
    assert_eq!(newest["meta"]["message"], "dns: move to .99");

    // An invalid commit: refused with the diagnostic, and nothing changes.
    let before = stdout(&strata(&["log", "--state-dir", &sd(&agent)]));
    git_repo(
        &repo,
        &[(
            "broken.kdl",
            "group \"Rome\" {\n    dns { server 12; }\n}\n",
        )],
        "broken",
    );
    let out = ada.push(&repo);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("remote:"), "{text}");
    assert!(
        text.contains("broken.kdl:2:"),
        "the diagnostic points at the line: {text}"
    );
    assert!(text.contains("pre-receive hook declined"), "{text}");
    assert_eq!(
        stdout(&strata(&["log", "--state-dir", &sd(&agent)])),
        before
    );
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.99"), "{dns}");

    // A read-only user clones what the agent holds, but may not push.
    let rob = Pusher::new(&agent, tmp.path(), "rob", &ro);
    let out = rob.clone_to("robs");
    assert!(out.status.success(), "{}", both(&out));
    let robs = tmp.path().join("robs");
    let head = rob.git(&robs, &["rev-parse", "HEAD"]);
    assert_eq!(
        stdout(&head).trim(),
        commit,
        "the accepted commit is main's head"
    );
    git_repo(
        &robs,
        &[("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "6.6.6.6"))],
        "rob",
    );
    let out = rob.push(&robs);
    assert!(!out.status.success());
    assert!(
        both(&out).contains("may fetch the config repo but not push"),
        "{}",
        both(&out)
    );
    // Only the one repository is served.
    let out = ada.git(
        &repo,
        &["push", &ada.url.replace("/config", "/etc"), "main"],
    );
    assert!(
        both(&out).contains("serves one repository"),
        "{}",
        both(&out)
    );
}
