//! `git push` to the agent's own SSH port, with the real git and OpenSSH clients: a push
//! of a valid commit to `main` is applied as one change set stamped with the commit; an
//! invalid one is refused with its diagnostics on the pusher's terminal and nothing
//! changes; a read-only user fetches but may not push.

use std::path::Path;
use std::process::{Command, Output};

use std::time::Duration;

use crate::agent_support::{
    MACHINES, TestAgent, apply_main, change_set_ids, created, git_repo, keypair, ok, p, sd, stderr,
    stdout, strata,
};
use crate::cluster_support::conflicts;
use crate::mesh_support::{MeshHarness, wait_until};
use crate::pusher::Pusher;

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

fn cluster_kdl(op_key: &str, ro_key: &str, dns: &str) -> String {
    format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        \
         user \"ada\" role=\"operator\" {{ key \"{op_key}\"; }}\n        \
         user \"rob\" role=\"read-only\" {{ key \"{ro_key}\"; }}\n    }}\n    \
         dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\ngroup \"Paris\"\n"
    )
}

/// An agent whose cluster came from `repo` (users `ada`, an operator, and `rob`,
/// read-only, with their keys), and ada ready to push to it.
struct Pushing {
    repo: std::path::PathBuf,
    agent: TestAgent,
    ada: Pusher,
    op_pub: String,
    ro_pub: String,
}

fn pushing(tmp: &Path) -> Pushing {
    let (op, ro) = (tmp.join("op"), tmp.join("ro"));
    let (op_pub, ro_pub) = (keypair(&op), keypair(&ro));
    let repo = tmp.join("repo");
    git_repo(
        &repo,
        &[
            ("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.53")),
            ("machines.kdl", MACHINES),
        ],
        "users",
    );
    let agent = created(&tmp.join("agent"));
    // The users (and their keys) come in by an ordinary apply first.
    apply_main(&p(&repo), &sd(&agent));
    let ada = Pusher::new(&agent, tmp, "ada", &op);
    Pushing {
        repo,
        agent,
        ada,
        op_pub,
        ro_pub,
    }
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
    let Pushing {
        repo,
        agent,
        ada,
        op_pub,
        ro_pub,
    } = pushing(tmp.path());

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
        .first()
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
    let rob = Pusher::new(&agent, tmp.path(), "rob", &tmp.path().join("ro"));
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

#[test]
fn a_push_reaches_every_member_and_the_same_commit_pushed_twice_is_one_change() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let cluster = |dns: &str| {
        format!(
            "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=200\n    \
             dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\n\
             machine \"lab1.example.com\"\nmachine \"lab2.example.com\"\nmachine \"lab3.example.com\"\n"
        )
    };
    git_repo(&repo, &[("cluster.kdl", &cluster("10.0.0.53"))], "three");

    let out = Pusher::admin_of(&h, 1, tmp.path()).push(&repo);
    let text = both(&out);
    assert!(out.status.success(), "{text}\n{}", h.machine(1).log());
    assert!(
        text.contains("propagation: applied on 3 of 3 machines"),
        "the push reports every member: {text}\nlab1's log:\n{}\nlab2's log:\n{}",
        h.machine(1).log(),
        h.machine(2).log()
    );
    for i in 1..=3 {
        let dns = std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap();
        assert!(dns.contains("10.0.0.53"), "lab{i}: {dns}");
    }

    // A new commit pushed to lab2, then the same commit to lab3: one change set
    // everywhere, no conflict. lab3's repository may already hold the commit (members
    // fetch the objects of what the cluster runs), and git then has nothing to send.
    let commit = git_repo(&repo, &[("cluster.kdl", &cluster("10.0.0.99"))], "dns .99");
    let out = Pusher::admin_of(&h, 2, tmp.path()).push(&repo);
    assert!(out.status.success(), "{}", both(&out));
    let ids = wait_until(
        Duration::from_secs(30),
        "lab3 has lab2's change set",
        || {
            let ids = change_set_ids(&h.machine(3).sd());
            if ids == change_set_ids(&h.machine(2).sd()) {
                Ok(ids)
            } else {
                Err(format!("{ids:?}"))
            }
        },
    );
    let out = Pusher::admin_of(&h, 3, tmp.path()).push(&repo);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("nothing to apply") || text.contains("Everything up-to-date"),
        "the cluster already runs the commit: {text}"
    );
    let pushed_to_3 = Command::new("git")
        .args(["--git-dir", &p(&h.machine(3).dir.join("config.git"))])
        .args(["rev-parse", "main"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&pushed_to_3).trim(),
        commit,
        "lab3's repository holds the commit"
    );
    for i in 1..=3 {
        assert_eq!(change_set_ids(&h.machine(i).sd()), ids, "lab{i}");
        assert_eq!(conflicts(&h, i), Vec::<serde_json::Value>::new(), "lab{i}");
        let dns = std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap();
        assert!(dns.contains("10.0.0.99"), "lab{i}: {dns}");
    }
}

#[test]
fn a_push_of_a_hostile_file_is_refused_with_a_bounded_report() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let admin = Pusher::new(&agent, tmp.path(), "admin", &agent.dir.join("local_key"));
    // 40,000 KDL syntax errors. Before the caps, the hook printed each (a 0.9 MB file
    // sent back 183 MB in 2,000,007 `remote:` lines).
    let hostile = format!("cluster \"x\\#{}", "\\u{1F600}".repeat(20_000));
    let repo = tmp.path().join("repo");
    git_repo(&repo, &[("cluster.kdl", &hostile)], "hostile");
    let out = admin.push(&repo);
    let text = both(&out);
    assert!(!out.status.success(), "{}", &text[..text.len().min(4_000)]);
    let remote = text.lines().filter(|l| l.starts_with("remote:")).count();
    assert!(
        text.len() < 64 * 1024 && remote < 1_000,
        "{} bytes, {remote} remote: lines",
        text.len()
    );
    assert!(
        text.contains("strata::kdl::syntax: and 39,980 more like this"),
        "{text}"
    );
    assert!(text.contains("(40000 errors)"), "{text}");
    assert!(text.contains("pre-receive hook declined"), "{text}");
}

/// `examples/git/post-receive`, installed in a central bare repo, pushes main onward:
/// past a member that is down, to one that takes it.
#[test]
fn the_example_post_receive_hook_pushes_onward_to_the_cluster() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let central = tmp.path().join("central.git");
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", both(&out));
    };
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", &p(&central)],
    );
    let hook = central.join("hooks/post-receive");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/git/post-receive");
    std::fs::copy(&example, &hook).unwrap();
    let (ip, port) = agent.addr.rsplit_once(':').unwrap();
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[{ip}]:{port} {}\n", agent.host_public_key()),
    )
    .unwrap();
    // A port nothing listens on: the first member is down.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let repo = tmp.path().join("repo");
    let commit = git_repo(
        &repo,
        &[
            (
                "cluster.kdl",
                "cluster \"americas\" {\n    dns { server \"10.9.9.9\"; }\n}\ngroup \"Main_Group\"\ngroup \"Paris\"\n",
            ),
            ("machines.kdl", MACHINES),
        ],
        "first",
    );
    let out = Command::new("git")
        .current_dir(&repo)
        .args(["push", &p(&central), "main"])
        .env("STRATA_MEMBERS", format!("{down} {}", agent.addr))
        .env("STRATA_KEY", agent.dir.join("local_key"))
        .env("STRATA_USER", "admin")
        .env("STRATA_KNOWN_HOSTS", &known_hosts)
        .output()
        .unwrap();
    let text = both(&out);
    assert!(out.status.success(), "{text}\n{}", agent.log());
    assert!(
        text.contains(&format!("{down} is unreachable, trying the next member")),
        "{text}"
    );
    assert!(text.contains("applied change set"), "{text}");
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.9.9.9"), "{dns}");
    let log = stdout(&strata(&["log", "--state-dir", &sd(&agent)]));
    assert!(log.contains(&commit[..10]), "{log}");
}

/// An agent started with a relative `--state-dir` from some directory takes pushes: the
/// hook git runs inside the agent's repository finds its agent (it was refused with "no
/// agent is running on st/lab2"), and so does a client run with a relative --state-dir
/// from the same directory.
#[test]
fn an_agent_started_with_a_relative_state_dir_accepts_a_push() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let agent = TestAgent::start_relative(&work, Path::new("st/lab2"), "lab2.example.com");
    let here = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(&work)
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    ok(&here(&[
        "cluster",
        "create",
        "americas",
        "--state-dir",
        "st/lab2",
    ]));
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[(
            "cluster.kdl",
            "cluster \"americas\" {\n    dns { server \"10.0.0.53\"; }\n}\n\
             group \"Main_Group\"\nmachine \"lab2.example.com\"\n",
        )],
        "dns",
    );
    let admin = Pusher::new(&agent, tmp.path(), "admin", &agent.dir.join("local_key"));
    let out = admin.push(&repo);
    let text = both(&out);
    assert!(out.status.success(), "{text}\n{}", agent.log());
    assert!(text.contains("applied change set"), "{text}");
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.53"), "{dns}");
    let log = ok(&here(&["log", "--state-dir", "st/lab2"]));
    assert!(log.contains("dns"), "{log}");
}

/// The newest change set of `agent`'s log, as JSON.
fn newest(agent: &TestAgent) -> serde_json::Value {
    let log = ok(&strata(&[
        "log",
        "--state-dir",
        &sd(agent),
        "--format",
        "json",
    ]));
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    log["change_sets"][0].clone()
}

#[test]
fn a_commit_is_verified_only_when_the_agents_own_repo_holds_it() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (op, ro) = (tmp.path().join("op"), tmp.path().join("ro"));
    let (op_pub, ro_pub) = (keypair(&op), keypair(&ro));
    let repo = tmp.path().join("repo");
    let first = git_repo(
        &repo,
        &[
            ("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.53")),
            ("machines.kdl", MACHINES),
        ],
        "users",
    );
    let agent = created(&tmp.path().join("agent"));
    let log = |format: &str| {
        ok(&strata(&[
            "log",
            "--state-dir",
            &sd(&agent),
            "--format",
            format,
        ]))
    };
    let status = || ok(&strata(&["status", "--state-dir", &sd(&agent)]));

    // `apply --ref` of a commit the agent's repo lacks: recorded as the user claimed it.
    apply_main(&p(&repo), &sd(&agent));
    let cs = newest(&agent);
    assert_eq!(cs["meta"]["source"]["commit"], first.as_str(), "{cs}");
    assert_eq!(cs["meta"]["origin_kind"], "claimed", "{cs}");
    let user = cs["meta"]["user"].as_str().unwrap().to_owned();
    let claimed = format!("git {} (claimed by {user})", &first[..12]);
    assert!(log("human").contains(&claimed), "{}", log("human"));
    assert!(
        status().contains(&format!("{} (claimed by {user})", &first[..10])),
        "{}",
        status()
    );

    // A push: the hook applies it while the commit is in the agent's repo; verified.
    let ada = Pusher::new(&agent, tmp.path(), "ada", &op);
    let pushed = git_repo(
        &repo,
        &[("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.99"))],
        "dns: move to .99",
    );
    let out = ada.push(&repo);
    assert!(out.status.success(), "{}\n{}", both(&out), agent.log());
    let cs = newest(&agent);
    assert_eq!(cs["meta"]["source"]["commit"], pushed.as_str(), "{cs}");
    assert_eq!(cs["meta"]["origin_kind"], "repo", "{cs}");
    assert!(
        log("human").contains(&format!("git {} (verified)", &pushed[..12])),
        "{}",
        log("human")
    );
    assert!(!status().contains("claimed by"), "{}", status());
    let json = ok(&strata(&[
        "status",
        "--state-dir",
        &sd(&agent),
        "--format",
        "json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["last_applied"]["origin_kind"], "repo", "{json}");

    // A saved plan whose origin claims the pushed commit with another author: the repo
    // holds the commit, not as claimed; recorded as claimed.
    std::fs::write(
        repo.join("cluster.kdl"),
        cluster_kdl(&op_pub, &ro_pub, "10.0.0.77"),
    )
    .unwrap();
    let saved = tmp.path().join("plan.json");
    let out = strata(&[
        "plan",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd(&agent),
        "--out",
        &p(&saved),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    plan["origin"] = serde_json::json!({
        "source": { "kind": "git", "commit": pushed },
        "author": "Security Team <security@example.com>",
        "message": "dns: move to .99",
    });
    std::fs::write(&saved, plan.to_string()).unwrap();
    ok(&strata(&[
        "apply",
        "--plan",
        &p(&saved),
        "--state-dir",
        &sd(&agent),
        "--yes",
    ]));
    let cs = newest(&agent);
    assert_eq!(
        cs["meta"]["author"], "Security Team <security@example.com>",
        "{cs}"
    );
    assert_eq!(cs["meta"]["origin_kind"], "claimed", "{cs}");
    assert!(
        log("human").contains(&format!("git {} (claimed by {user})", &pushed[..12])),
        "{}",
        log("human")
    );
    assert!(
        status().contains(&format!("{} (claimed by {user})", &pushed[..10])),
        "{}",
        status()
    );
}

#[test]
fn a_push_on_trial_is_reverted_unless_confirmed_and_an_unknown_option_is_refused() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Pushing {
        repo,
        agent,
        ada,
        op_pub,
        ro_pub,
    } = pushing(tmp.path());
    git_repo(
        &repo,
        &[("cluster.kdl", &cluster_kdl(&op_pub, &ro_pub, "10.0.0.99"))],
        "dns: try .99",
    );
    let running = || std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();

    // An option Strata does not know: refused, nothing applied.
    let out = ada.git(
        &repo,
        &["push", "-o", "confirm-whithin=2s", &ada.url, "main"],
    );
    assert!(!out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("unknown push option"), "{}", both(&out));
    assert!(running().contains("10.0.0.53"));

    // On trial for 5 s: applied, then reverted by the agent's clock.
    let out = ada.git(
        &repo,
        &["push", "-o", "confirm-within=5s", &ada.url, "main"],
    );
    assert!(out.status.success(), "{}\n{}", both(&out), agent.log());
    assert!(running().contains("10.0.0.99"));
    wait_until(Duration::from_secs(30), "the push is reverted", || {
        let text = running();
        if text.contains("10.0.0.53") {
            Ok(())
        } else {
            Err(text)
        }
    });
}
