//! Agents that follow a config repo (`source` in `agent.kdl`), with real agents and the
//! real git: a followed local repository's new commit is applied on every member (the
//! follower watches the repository: its interval is an hour) and `strata status` says
//! Synced everywhere; in mode report a new commit only marks the cluster OutOfSync;
//! an out-of-band apply is refused unless overridden, and self-heal reverts it after its
//! grace period; a rollback, or a change to what git owns from the command line, while the
//! cluster is followed is refused with a hint, and a passphrase set on the cluster is
//! neither refused nor reverted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::agent_support::{TestAgent, ok, stderr, stdout, strata};
use crate::mesh_support::{MeshHarness, wait_until};

const SETTLE: Duration = Duration::from_secs(60);

/// Runs the real `git` in `repo`.
fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(repo)
        .args([
            "-c",
            "user.name=Ada Lovelace",
            "-c",
            "user.email=ada@example.com",
        ])
        .args(args)
        .output()
        .expect("git is installed (.ci/run installs it)");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

/// An empty repository on `main`.
fn init(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "main"]);
}

/// Commits a repo declaring `machines` with `dns` at cluster level set to `server`;
/// returns the commit id.
fn commit(repo: &Path, machines: usize, server: &str, message: &str) -> String {
    let mut text = format!(
        "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=100\n    dns {{ server \"{server}\"; }}\n}}\ngroup \"Main_Group\"\n"
    );
    for i in 1..=machines {
        text.push_str(&format!("machine \"lab{i}.example.com\"\n"));
    }
    std::fs::write(repo.join("cluster.kdl"), text).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    let out = Command::new("git")
        .current_dir(repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    stdout(&out).trim().to_owned()
}

fn dns_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("running/dns.kdl")).unwrap_or_default()
}

/// Waits until `agent`'s running `dns` names `server`.
fn runs_dns(agent: &TestAgent, server: &str) {
    wait_until(SETTLE, &format!("the agent runs dns {server}"), || {
        let dns = dns_in(&agent.dir);
        if dns.contains(server) {
            Ok(())
        } else {
            Err(dns)
        }
    });
}

/// `strata status --format json` against a state dir: (exit code, the JSON).
fn status(sd: &str) -> (Option<i32>, serde_json::Value) {
    let out = strata(&["status", "--format", "json", "--state-dir", sd]);
    let json = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), json)
}

#[test]
fn a_followed_repos_new_commit_reaches_every_member_and_all_say_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    // An hour's interval: only the watch on the repository can notice the commits.
    let source = format!(
        "source \"{}\" branch=\"main\" interval=\"1h\"\n",
        repo.display()
    );
    let h = MeshHarness::start_with(tmp.path(), 3, |i| {
        if i == 1 {
            source.clone()
        } else {
            String::new()
        }
    });
    h.form(tmp.path(), "americas");
    // No commit yet: nothing to compare with.
    let (code, s) = status(&h.machine(1).sd());
    assert_eq!(
        (code, s["sync"].as_str()),
        (Some(1), Some("unknown")),
        "{s}"
    );

    let first = commit(&repo, 3, "10.0.0.53", "first");
    for m in h.machines() {
        wait_until(SETTLE, &format!("{} runs the first commit", m.name), || {
            let dns = dns_in(&m.dir);
            if dns.contains("10.0.0.53") {
                Ok(())
            } else {
                Err(dns)
            }
        });
    }
    let second = commit(&repo, 3, "10.0.0.54", "second");
    for m in h.machines() {
        wait_until(
            SETTLE,
            &format!("{} runs the second commit", m.name),
            || {
                let dns = dns_in(&m.dir);
                if dns.contains("10.0.0.54") {
                    Ok(())
                } else {
                    Err(dns)
                }
            },
        );
    }
    // Every member says Synced: the follower against its head, the others against what
    // the last applied commit left; all name the same last applied commit.
    for m in h.machines() {
        let (code, s) = wait_until(SETTLE, &format!("{} says synced", m.name), || {
            let (code, s) = status(&m.sd());
            if code == Some(0) {
                Ok((code, s))
            } else {
                Err(s.to_string())
            }
        });
        assert_eq!(code, Some(0));
        assert_eq!(s["sync"], "synced", "{s}");
        assert_eq!(s["last_applied"]["commit"], second.as_str(), "{s}");
        assert_eq!(s["last_applied"]["user"], "follow", "{s}");
    }
    let (_, s) = status(&h.machine(1).sd());
    assert_eq!(s["head"]["commit"], second.as_str(), "{s}");
    assert_eq!(s["compared_with"], "head");
    // One change set per commit, stamped with it, in every member's log.
    let log = ok(&h.strata(2, &["log"]));
    for c in [&first, &second] {
        assert_eq!(
            log.matches(&format!("git {}", &c[..12])).count(),
            1,
            "{log}"
        );
    }
    // The human output.
    let text = ok(&h.strata(1, &["status"]));
    assert!(
        text.contains("sync:          Synced (compared with the head)"),
        "{text}"
    );
    assert!(text.contains("branch main (mode apply)"), "{text}");
    // A rollback on a member that does not follow is refused too: the log says a
    // follower keeps the cluster at its branch.
    let ids = crate::agent_support::change_set_ids(&h.machine(2).sd());
    let out = h.strata(2, &["rollback", "--yes", "--to", &ids[0]]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("pin a commit"), "{}", stderr(&out));
}

/// One standalone agent, `lab1.example.com`, following `repo` with `source`: the first
/// commit applied (by the follower or by hand) makes it the cluster the repo declares,
/// as any apply of a repo does — no `cluster create` (which would race the follower).
fn follower(tmp: &Path, repo: &Path, properties: &str) -> TestAgent {
    let dir = tmp.join("lab1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nsource \"{}\" {properties}\n",
            repo.display()
        ),
    )
    .unwrap();
    TestAgent::start(&dir, "lab1.example.com")
}

#[test]
fn report_mode_marks_out_of_sync_without_applying() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    let first = commit(&repo, 1, "10.0.0.53", "first");
    let agent = follower(tmp.path(), &repo, "interval=\"200ms\" mode=\"report\"");
    let sd = agent.dir.display().to_string();
    // Report mode applies nothing: the head is out of sync until applied by hand.
    let (code, s) = status(&sd);
    assert_eq!(
        (code, s["sync"].as_str()),
        (Some(2), Some("out-of-sync")),
        "{s}"
    );
    assert!(dns_in(&agent.dir).is_empty() || !dns_in(&agent.dir).contains("10.0.0.53"));
    ok(&strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo.display().to_string(),
        "--yes",
        "--state-dir",
        &sd,
    ]));
    let (code, s) = status(&sd);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["last_applied"]["commit"], first.as_str());

    let second = commit(&repo, 1, "10.0.0.54", "second");
    let (code, s) = status(&sd);
    assert_eq!(code, Some(2), "{s}");
    assert_eq!(s["head"]["commit"], second.as_str(), "{s}");
    let reasons = s["reasons"].to_string();
    assert!(
        reasons.contains("is not applied yet") && reasons.contains("cluster/dns differs"),
        "{reasons}"
    );
    // The follower reports it in its log, and still applies nothing.
    wait_until(SETTLE, "the follower reports the new commit", || {
        let log = agent.log();
        if log.contains("(mode report)") {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(
        dns_in(&agent.dir).contains("10.0.0.53"),
        "{}",
        dns_in(&agent.dir)
    );
    let log = ok(&strata(&["log", "--state-dir", &sd]));
    assert!(!log.contains(&format!("git {}", &second[..12])), "{log}");
    let out = strata(&["status", "--state-dir", &sd]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("sync:          OutOfSync (compared with the head)"),
        "{text}"
    );
    assert!(
        text.contains("following:     ") && text.contains("(mode report)"),
        "{text}"
    );
}

#[test]
fn self_heal_reverts_an_out_of_band_apply_and_rollback_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    let head = commit(&repo, 1, "10.0.0.53", "first");
    let agent = follower(
        tmp.path(),
        &repo,
        "interval=\"200ms\" self-heal=#true grace=\"2s\"",
    );
    let sd = agent.dir.display().to_string();
    runs_dns(&agent, "10.0.0.53");
    // An out-of-band apply of another tree.
    let other = tmp.path().join("other");
    init(&other);
    commit(&other, 1, "10.6.6.6", "not from main");
    let other = other.display().to_string();
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", "--repo", &other, "--yes", "--state-dir", &sd];
        args.extend_from_slice(extra);
        strata(&args)
    };
    // Refused while the follower keeps the cluster at main: the next sync would undo it.
    let refused = apply(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    let why = stderr(&refused);
    assert!(
        why.contains("follows main of")
            && why.contains("would be undone by the next sync")
            && why.contains("--override-follower"),
        "{why}"
    );
    assert!(
        dns_in(&agent.dir).contains("10.0.0.53"),
        "nothing was applied"
    );
    ok(&apply(&["--override-follower"]));
    // Reported, with who made it, then reverted after the grace as a new change set.
    // `status` compares on demand; when the heal is due shows once the follower has seen
    // the drift on its own round.
    let seen = wait_until(
        SETTLE,
        "status reports the change and when it heals",
        || {
            let (code, s) = status(&sd);
            if code == Some(2) && s["heal_at_ms"].is_u64() {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    let reasons = seen["reasons"].to_string();
    assert!(
        reasons.contains("cluster/dns differs: written by admin on lab1.example.com (cli"),
        "{reasons}"
    );
    assert!(seen["heal_at_ms"].is_u64(), "{seen}");
    wait_until(SETTLE, "self-heal reverts it", || {
        let (code, s) = status(&sd);
        let dns = dns_in(&agent.dir);
        if code == Some(0) && dns.contains("10.0.0.53") {
            Ok(())
        } else {
            Err(format!("{dns} {s}"))
        }
    });
    assert!(
        agent
            .log()
            .contains("by a change that did not come from it"),
        "{}",
        agent.log()
    );
    let log = ok(&strata(&["log", "--state-dir", &sd]));
    assert!(log.contains("self-heal: back to commit"), "{log}");
    assert_eq!(
        log.matches(&format!("git {}", &head[..12])).count(),
        2,
        "{log}"
    );

    // A rollback (to the out-of-band state) would be undone by the next sync: refused,
    // with a hint.
    let ids = crate::agent_support::change_set_ids(&sd);
    let out = strata(&["rollback", "--yes", "--to", &ids[1], "--state-dir", &sd]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let why = stderr(&out);
    assert!(
        why.contains("follows main of") && why.contains("pin a commit"),
        "{why}"
    );

    // What git owns is refused on the command line too; what the cluster owns (the admin
    // passphrase) goes through, and self-heal leaves it alone.
    let out = strata(&["cluster", "setname", "emea", "--state-dir", &sd]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("@cluster would be undone by the next sync"),
        "{}",
        stderr(&out)
    );
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "open sesame\n").unwrap();
    ok(&strata(&[
        "cluster",
        "passwd",
        "--passphrase-file",
        &pass.display().to_string(),
        "--state-dir",
        &sd,
    ]));
    // Longer than the grace and many follower rounds: nothing reverts it.
    std::thread::sleep(Duration::from_secs(3));
    let log = ok(&strata(&["log", "--state-dir", &sd]));
    let newest = log
        .lines()
        .find(|l| l.contains("cluster passwd") || l.contains("self-heal"));
    assert!(
        newest.is_some_and(|l| l.contains("cluster passwd")),
        "the newest change set is still the passphrase's:\n{log}"
    );
    let (code, s) = status(&sd);
    assert_eq!(
        code,
        Some(0),
        "a passphrase set on the cluster is not drift: {s}"
    );
}

#[test]
fn self_heal_leaves_alone_what_a_drift_ignore_rule_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    std::fs::write(
        repo.join("cluster.kdl"),
        "cluster \"americas\" {\n    cluster-mesh ping-interval-ms=100\n    dns { server \"10.0.0.53\"; }\n\
         drift-ignore {\n        rule \"dns-by-hand\" mode=\"cluster\" section=\"dns\" path=\"server\" until=\"2100-01-01T00:00:00Z\" reason=\"INC-9: resolvers moved by hand\"\n    }\n}\n\
         group \"Main_Group\"\nmachine \"lab1.example.com\"\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "dns, and a rule for it"]);
    let agent = follower(
        tmp.path(),
        &repo,
        "interval=\"200ms\" self-heal=#true grace=\"1s\"",
    );
    let sd = agent.dir.display().to_string();
    runs_dns(&agent, "10.0.0.53");
    // Resolvers changed by hand, as the rule foresees.
    let other = tmp.path().join("other");
    init(&other);
    commit(&other, 1, "10.6.6.6", "by hand");
    let other = other.display().to_string();
    ok(&strata(&[
        "apply",
        "--repo",
        &other,
        "--yes",
        "--override-follower",
        "--state-dir",
        &sd,
    ]));
    // That tree has no drift-ignore section either: self-heal (grace 1 s, rounds every
    // 200 ms) puts the rule back, and leaves the server the rule covers as it is.
    wait_until(SETTLE, "the follower has looked at it", || {
        if agent
            .log()
            .contains("differences drift-ignore rules cover are left alone")
        {
            Ok(())
        } else {
            Err(agent.log())
        }
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        dns_in(&agent.dir).contains("10.6.6.6"),
        "{}",
        dns_in(&agent.dir)
    );
    let (code, s) = status(&sd);
    assert_eq!(code, Some(0), "{s}");
    let log = ok(&strata(&["log", "--state-dir", &sd]));
    let heal = log.split("\n\n").next().unwrap();
    assert!(heal.contains("self-heal: back to commit"), "{log}");
    assert!(heal.contains("touched 1: cluster/drift-ignore"), "{log}");
}
