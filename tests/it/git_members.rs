//! Every member serves the commit the cluster runs, with real agents, the real git and
//! OpenSSH clients: a commit pushed to one member is what `git clone` returns from the
//! others; a push based on one member's clone is a fast-forward on another; a member
//! that was down during a push gets the objects when it comes back; a commit applied
//! from a repository no member has is shown as being fetched until someone pushes it;
//! a branch ahead of the cluster's commit is left alone; and a follower's commits reach
//! every member's branch.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::agent_support::{git_repo, p, stderr, stdout};
use crate::cluster_support::json;
use crate::mesh_support::{MeshHarness, wait_until};
use crate::pusher::Pusher;

const SETTLE: Duration = Duration::from_secs(60);

/// `cluster.kdl` for a repo declaring `lab1..=labN` with `dns` at cluster level.
fn cluster(n: usize, dns: &str) -> String {
    let machines: String = (1..=n)
        .map(|i| format!("machine \"lab{i}.example.com\"\n"))
        .collect();
    format!(
        "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=200\n    \
         dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\n{machines}"
    )
}

fn both(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// What `git clone` from machine `i` (as its administrator) checks out: the commit of
/// its `main`, or what went wrong (an empty repository has no HEAD).
fn clone_head(h: &MeshHarness, i: usize, tmp: &Path) -> Result<String, String> {
    let dir = tempfile::tempdir_in(tmp).unwrap();
    let pusher = Pusher::admin_of(h, i, dir.path());
    let out = pusher.clone_to("c");
    if !out.status.success() {
        return Err(both(&out));
    }
    let head = pusher.git(&dir.path().join("c"), &["rev-parse", "HEAD"]);
    if head.status.success() {
        Ok(stdout(&head).trim().to_owned())
    } else {
        Err(format!("{}{}", both(&out), both(&head)))
    }
}

/// Waits until a clone from machine `i` returns `commit`.
fn serves(h: &MeshHarness, i: usize, tmp: &Path, commit: &str) {
    wait_until(
        SETTLE,
        &format!("a clone from lab{i} returns {commit}"),
        || match clone_head(h, i, tmp) {
            Ok(head) if head == commit => Ok(()),
            Ok(head) => Err(format!("main at {head}\n{}", h.machine(i).log())),
            Err(e) => Err(format!("{e}\n{}", h.machine(i).log())),
        },
    );
}

/// Machine `i`'s `status --format json`, its `served` part.
fn served(h: &MeshHarness, i: usize) -> serde_json::Value {
    json(&h.strata(i, &["status", "--format", "json"]))["served"].clone()
}

#[test]
fn a_pushed_commit_is_cloned_from_every_member_and_a_push_based_on_it_fast_forwards() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let first = git_repo(&repo, &[("cluster.kdl", &cluster(3, "10.0.0.53"))], "three");
    let out = Pusher::admin_of(&h, 2, tmp.path()).push(&repo);
    assert!(out.status.success(), "{}", both(&out));

    // Nobody pushed to lab1 or lab3: both serve the commit all the same.
    for i in [1, 3] {
        serves(&h, i, tmp.path(), &first);
        let s = served(&h, i);
        assert_eq!(s["state"]["state"], "current", "lab{i}: {s}");
        assert_eq!(s["commit"], first.as_str(), "lab{i}: {s}");
    }
    let log = h.machine(1).log();
    assert!(
        log.contains(&format!(
            "the objects of commit {} came from lab2.example.com",
            &first[..10]
        )),
        "{log}"
    );
    let text = stdout(&h.strata(3, &["status"]));
    assert!(
        text.contains(&format!(
            "serves:        main at {} (the last applied commit)",
            &first[..10]
        )),
        "{text}"
    );

    // A follow-up commit on a clone from lab1, pushed to lab3 while lab1 is down: a
    // fast-forward there, applied everywhere that runs.
    let dir = tmp.path().join("from1");
    std::fs::create_dir_all(&dir).unwrap();
    let ada = Pusher::admin_of(&h, 1, &dir);
    assert!(ada.clone_to("c").status.success());
    let clone = dir.join("c");
    let second = git_repo(
        &clone,
        &[("cluster.kdl", &cluster(3, "10.0.0.99"))],
        "dns .99",
    );
    h.kill9(1);
    let out = Pusher::admin_of(&h, 3, tmp.path()).push(&clone);
    let text = both(&out);
    assert!(out.status.success(), "{text}\n{}", h.machine(3).log());
    assert!(
        text.contains(&format!("{}..{}  main -> main", &first[..7], &second[..7])),
        "a fast-forward, not a forced update: {text}"
    );
    assert!(text.contains("applied change set"), "{text}");
    serves(&h, 2, tmp.path(), &second);
    serves(&h, 3, tmp.path(), &second);

    // lab1 comes back: its change sets, then its repository, catch up.
    h.restart(1);
    serves(&h, 1, tmp.path(), &second);
    let dns = std::fs::read_to_string(h.machine(1).dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.99"), "{dns}");
}

#[test]
fn a_commit_no_member_has_is_fetched_once_pushed_and_a_branch_ahead_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 2);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let commit = git_repo(&repo, &[("cluster.kdl", &cluster(2, "10.0.0.53"))], "two");
    // Applied from the operator's own repository: the cluster runs the commit, and no
    // member holds its objects.
    let out = h.strata(1, &["apply", "--ref", "main", "--repo", &p(&repo), "--yes"]);
    assert!(out.status.success(), "{}", both(&out));
    for i in [1, 2] {
        let s = wait_until(SETTLE, &format!("lab{i} says it is fetching"), || {
            let s = served(&h, i);
            let tried = s["state"]["tries"].as_u64().unwrap_or(0) > 0;
            if s["state"]["state"] == "fetching" && tried {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        });
        assert_eq!(s["commit"], serde_json::Value::Null, "still empty: {s}");
        let why = s["state"]["last_error"].as_str().unwrap();
        assert!(
            why.contains(&format!("commit {} is not here", &commit[..10])),
            "{why}"
        );
    }
    let text = stdout(&h.strata(2, &["status"]));
    assert!(
        text.contains(&format!(
            "serves:        an empty repository (no main yet), not yet {}: its objects are being fetched from the members",
            &commit[..10]
        )),
        "{text}"
    );
    assert!(
        clone_head(&h, 2, tmp.path()).is_err(),
        "nothing to check out yet"
    );

    // Pushed to lab1 by hand: nothing to apply, and from there it reaches lab2.
    let out = Pusher::admin_of(&h, 1, tmp.path()).push(&repo);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("nothing to apply"), "{text}");
    serves(&h, 1, tmp.path(), &commit);
    serves(&h, 2, tmp.path(), &commit);

    // A commit with nothing to apply pushed to lab2 moves lab2's branch past the
    // cluster's commit; that is left alone, and said.
    let readme = git_repo(&repo, &[("README.md", "the americas\n")], "readme");
    let out = Pusher::admin_of(&h, 2, tmp.path()).push(&repo);
    assert!(both(&out).contains("nothing to apply"), "{}", both(&out));
    assert_eq!(clone_head(&h, 2, tmp.path()).unwrap(), readme);
    let s = served(&h, 2);
    assert_eq!(s["state"]["state"], "held", "{s}");
    assert!(
        s["state"]["why"]
            .as_str()
            .unwrap()
            .contains("which is older"),
        "{s}"
    );
    assert_eq!(clone_head(&h, 1, tmp.path()).unwrap(), commit);
}

#[test]
fn a_followers_commits_reach_every_members_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&upstream)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", both(&out));
    };
    git(&["init", "-q", "-b", "main"]);
    // A remote (`file://`): the follower fetches it into its mirror, `follow.git`.
    let source = format!(
        "source \"file://{}\" branch=\"main\" interval=\"200ms\"\n",
        upstream.display()
    );
    let h = MeshHarness::start_with(tmp.path(), 2, |i| {
        if i == 1 {
            source.clone()
        } else {
            String::new()
        }
    });
    h.form(tmp.path(), "americas");
    let first = git_repo(
        &upstream,
        &[("cluster.kdl", &cluster(2, "10.0.0.53"))],
        "first",
    );
    serves(&h, 1, tmp.path(), &first);
    serves(&h, 2, tmp.path(), &first);
    let log = h.machine(1).log();
    assert!(log.contains("came from the followed repository"), "{log}");
    let second = git_repo(
        &upstream,
        &[("cluster.kdl", &cluster(2, "10.0.0.54"))],
        "second",
    );
    serves(&h, 2, tmp.path(), &second);
    serves(&h, 1, tmp.path(), &second);
}
