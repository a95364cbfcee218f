//! The follower against an in-memory node and real git repositories: commits applied
//! once and stamped, report mode, self-heal, a file:// remote fetched into the mirror.

use super::*;
use crate::cluster::applier::MemoryApplier;
use crate::cluster::node::tests::node;
use crate::cluster::users::Role;
use crate::model::OriginKind;
use crate::protocol::sync_status::Sync;
use crate::source::git;
use crate::state::{Key, MemoryStore};

type TestNode = Node<MemoryStore, MemoryApplier>;

fn commit(dir: &std::path::Path, dns: &str, message: &str) -> String {
    std::fs::write(
        dir.join("cluster.kdl"),
        format!(
            "cluster \"c\" {{\n    dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1\"\n"
        ),
    )
    .unwrap();
    git::commit_all(dir, ("Ada", "ada@example.com"), message).unwrap()
}

fn follower(dir: &std::path::Path, mode: FollowMode, self_heal: bool) -> Follower {
    Follower::new(
        Follow {
            url: dir.display().to_string(),
            branch: "main".into(),
            interval_ms: 1000,
            mode,
            self_heal,
            grace_ms: 1000,
        },
        dir.join("unused.git"),
    )
}

fn stamped(node: &TestNode) -> Vec<(String, String)> {
    node.change_sets()
        .unwrap()
        .iter()
        .map(|cs| (cs.meta.source.to_string(), cs.meta.user.clone()))
        .collect()
}

/// An out-of-band write of the cluster's dns, as an operator's `apply` would make.
fn apply_by_hand(node: &TestNode, dns: &str) {
    apply_as(
        node,
        &Authed::user("admin", Role::Administrator),
        dns,
        Source::Cli,
    );
}

/// As [`apply_by_hand`], by `who`, stamped with `source`.
fn apply_as(node: &TestNode, who: &Authed, dns: &str, source: Source) {
    let key: Key = "cluster/dns".parse().unwrap();
    let live = node.live().unwrap();
    let value =
        crate::config::value_from_text(&key, &format!("dns {{ server \"{dns}\"; }}")).unwrap();
    let r = node.handle(
        who,
        Request::Apply {
            writes: [(key.clone(), Some(value))].into(),
            base: [(key.clone(), Some(live[&key].stamp.version.clone()))].into(),
            origin: Origin {
                source,
                author: "admin".into(),
                message: "by hand".into(),
            },
            override_follower: false,
            break_glass: None,
            confirm_within_ms: None,
        },
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
}

#[test]
fn a_new_commit_is_applied_once_stamped_with_it_and_a_bad_one_is_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = commit(dir.path(), "10.0.0.53", "first");
    let (n, f) = (node(), follower(dir.path(), FollowMode::Apply, false));
    assert_eq!(f.reconcile(&n, true, 1), None);
    let sets = n.change_sets().unwrap();
    let last = sets.last().unwrap();
    assert_eq!(
        last.meta.source,
        Source::Git {
            commit: first.clone()
        }
    );
    assert_eq!(
        (last.meta.user.as_str(), last.meta.message.as_str()),
        ("follow", "first")
    );
    assert_eq!(last.meta.author, "Ada <ada@example.com>");
    assert_eq!(last.meta.origin_kind, OriginKind::Follower);
    // Nothing to do when the live state already equals the commit: no empty change set.
    let count = sets.len();
    f.reconcile(&n, true, 2);
    assert_eq!(n.change_sets().unwrap().len(), count);
    let s = status(&n, Some(&f)).unwrap();
    assert_eq!(
        (s.sync, s.head.unwrap().commit),
        (Sync::Synced, first.clone())
    );
    assert_eq!(s.last_applied.unwrap().commit.commit, first);
    assert!(followed_by_log(&n.change_sets().unwrap()).is_some());

    // A commit that does not validate is not applied: it is the last error.
    std::fs::write(dir.path().join("bad.kdl"), "group \"Main_Group\"\n").unwrap();
    let bad = git::commit_all(dir.path(), ("Ada", "ada@example.com"), "bad").unwrap();
    f.reconcile(&n, true, 3);
    assert_eq!(n.change_sets().unwrap().len(), count);
    let s = status(&n, Some(&f)).unwrap();
    assert_eq!(s.sync, Sync::Unknown);
    let error = s.last_error.unwrap();
    assert!(
        error.contains(&format!("commit {}", &bad[..10])) && error.contains("not applied"),
        "{error}"
    );
    // A member that follows nothing judges from the log: still what `first` left.
    assert_eq!(status(&n, None).unwrap().sync, Sync::Synced);
}

#[test]
fn report_mode_marks_out_of_sync_without_applying() {
    let dir = tempfile::tempdir().unwrap();
    commit(dir.path(), "10.0.0.53", "first");
    let n = node();
    follower(dir.path(), FollowMode::Apply, false).reconcile(&n, true, 1);
    let before = stamped(&n);
    let second = commit(dir.path(), "10.0.0.54", "second");
    let f = follower(dir.path(), FollowMode::Report, false);
    f.reconcile(&n, true, 2);
    assert_eq!(stamped(&n), before, "report mode applies nothing");
    let s = status(&n, Some(&f)).unwrap();
    assert_eq!(s.sync, Sync::OutOfSync);
    assert_eq!(s.head.unwrap().commit, second);
    assert!(
        s.reasons[0].contains("is not applied yet"),
        "{:?}",
        s.reasons
    );
    assert!(
        s.reasons[1].starts_with("cluster/dns differs: written by follow on lab1"),
        "{:?}",
        s.reasons
    );
}

#[test]
fn self_heal_reverts_an_out_of_band_change_after_the_grace_and_off_only_reports() {
    let dir = tempfile::tempdir().unwrap();
    let head = commit(dir.path(), "10.0.0.53", "first");
    let n = node();
    let healing = follower(dir.path(), FollowMode::Apply, true);
    healing.reconcile(&n, true, 1_000);
    apply_by_hand(&n, "10.6.6.6");

    // Reported, not reverted, without self-heal.
    let reporting = follower(dir.path(), FollowMode::Apply, false);
    assert_eq!(reporting.reconcile(&n, false, 2_000), None);
    let s = status(&n, Some(&reporting)).unwrap();
    assert_eq!(s.sync, Sync::OutOfSync);
    assert!(
        s.reasons[0].contains("written by admin on lab1 (cli"),
        "{:?}",
        s.reasons
    );
    assert_eq!(s.heal_at_ms, None);
    assert_eq!(
        status(&n, None).unwrap().sync,
        Sync::OutOfSync,
        "the log says so too"
    );

    // With it: due after the grace, then reverted as a new change set of the head.
    let count = n.change_sets().unwrap().len();
    assert_eq!(healing.reconcile(&n, false, 2_000), Some(3_000));
    assert_eq!(status(&n, Some(&healing)).unwrap().heal_at_ms, Some(3_000));
    assert_eq!(
        n.change_sets().unwrap().len(),
        count,
        "not before the grace"
    );
    assert_eq!(healing.reconcile(&n, false, 3_000), None);
    let sets = n.change_sets().unwrap();
    assert_eq!(sets.len(), count + 1);
    let healed = sets.last().unwrap();
    assert_eq!(healed.meta.source, Source::Git { commit: head });
    assert!(healed.meta.message.starts_with("self-heal: back to commit"));
    let dns: Key = "cluster/dns".parse().unwrap();
    let live = n.live().unwrap()[&dns].value.clone().unwrap().to_text(&dns);
    assert!(live.contains("10.0.0.53"), "{live}");
    assert_eq!(status(&n, Some(&healing)).unwrap().sync, Sync::Synced);
}

#[test]
fn a_file_url_is_fetched_into_the_mirror_and_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let head = commit(&repo, "10.0.0.53", "first");
    let remote = |url: String, mirror: &str| {
        let mut f = follower(&repo, FollowMode::Apply, false);
        f.settings.url = url;
        f.mirror = tmp.path().join(mirror);
        f
    };
    let f = remote(format!("file://{}", repo.display()), "follow.git");
    assert!(f.settings.is_remote());
    let n = node();
    let before = status(&n, Some(&f)).unwrap();
    assert_eq!(before.sync, Sync::Unknown);
    assert!(
        before
            .last_error
            .unwrap()
            .contains("has not been fetched yet")
    );
    f.reconcile(&n, true, 1);
    let sets = n.change_sets().unwrap();
    assert_eq!(
        sets.last().unwrap().meta.source,
        Source::Git { commit: head }
    );
    assert_eq!(status(&n, Some(&f)).unwrap().sync, Sync::Synced);

    let missing = remote(format!("file://{}/nowhere", tmp.path().display()), "m.git");
    missing.reconcile(&n, true, 2);
    let s = status(&n, Some(&missing)).unwrap();
    assert_eq!(s.sync, Sync::Unknown);
    assert!(s.last_error.is_some_and(|e| e.starts_with("git: ")));
    assert_eq!(n.change_sets().unwrap().len(), sets.len());
}

#[test]
fn a_user_called_follow_is_not_the_follower() {
    let dir = tempfile::tempdir().unwrap();
    commit(dir.path(), "10.0.0.53", "first");
    let (n, f) = (node(), follower(dir.path(), FollowMode::Apply, false));
    f.reconcile(&n, true, 1);
    let claimed = Source::Git {
        commit: "8f2c1d0e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d".into(),
    };
    apply_as(
        &n,
        &Authed::user(FOLLOW_USER, Role::Administrator),
        "10.0.0.54",
        claimed.clone(),
    );
    let sets = n.change_sets().unwrap();
    let last = sets.last().unwrap();
    assert_eq!(
        (&last.meta.source, last.meta.user.as_str()),
        (&claimed, "follow")
    );
    // Recorded as the user claimed it, and not taken for a follower's apply: the cluster
    // is not held at a branch by a user's name.
    assert_eq!(last.meta.origin_kind, OriginKind::Claimed);
    assert!(followed_by_log(&sets).is_none());
    assert!(last.meta.source_shown().ends_with("(claimed by follow)"));
}
