//! Unit tests of [`super`] and of the pack exchange it uses ([`super::super::git_pack`]): packs sent in chunks, refused when bad, restarted when
//! rebuilt, and the keeper's target and pauses.

use super::super::git_pack::{CHUNK, MAX_PACK};
use super::*;
use crate::protocol::wire::Answer;

fn repo_with(dir: &Path, texts: &[&str]) -> (Repository, Vec<Oid>) {
    let repo = Repository::init_bare(dir).unwrap();
    let who = git2::Signature::new("Ada", "ada@example.com", &git2::Time::new(1, 0)).unwrap();
    let mut commits: Vec<Oid> = Vec::new();
    for text in texts {
        let mut tree = repo.treebuilder(None).unwrap();
        tree.insert("cluster.kdl", repo.blob(text.as_bytes()).unwrap(), 0o100644)
            .unwrap();
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let parent = commits.last().map(|p| repo.find_commit(*p).unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        commits.push(repo.commit(None, &who, &who, "c", &tree, &parents).unwrap());
    }
    (repo, commits)
}

/// A peer answering from `pack`, `chunk` bytes at a time, under checksum `id`.
fn serving(pack: Vec<u8>, chunk: usize, id: &str) -> impl FnMut(Query, Duration) -> Option<Answer> {
    let id = id.to_owned();
    move |q, _| {
        let Query::GitPack { offset, .. } = q else {
            panic!("{q:?}")
        };
        let start = offset as usize;
        let end = (start + chunk).min(pack.len());
        Some(Answer::GitPack {
            pack: id.clone(),
            total: pack.len() as u64,
            offset,
            data: hex::encode(&pack[start..end]),
        })
    }
}

#[test]
fn a_pack_sent_in_chunks_makes_the_commit_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let big: String = (0..4000).map(|i| format!("server 10.0.{i}.1\n")).collect();
    let (a, commits) = repo_with(&tmp.path().join("a"), &[&big, "two"]);
    let b = Repository::init_bare(tmp.path().join("b")).unwrap();
    let pack = pack::pack_of(&a, commits[1], &[], MAX_PACK).unwrap();
    assert!(pack.len() > 3 * 1024, "{}", pack.len());
    let mut asked = 0;
    let mut peer = serving(pack, 1024, "p1");
    fetch_from(&b, commits[1], &[], |q, w| {
        asked += 1;
        peer(q, w)
    })
    .unwrap();
    assert!(asked > 3, "{asked} questions");
    assert_eq!(pack::missing(&b, commits[1], &[]), None);
}

#[test]
fn a_peer_that_sends_a_bad_pack_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, commits) = repo_with(&tmp.path().join("a"), &["one", "two"]);
    let b = Repository::init_bare(tmp.path().join("b")).unwrap();
    let commit = commits[1];
    // The pack of another commit: it indexes, but the commit is not in it.
    let other = pack::pack_of(&a, commits[0], &[], MAX_PACK).unwrap();
    let e = fetch_from(&b, commit, &[], serving(other, CHUNK, "x")).unwrap_err();
    assert!(
        matches!(&e, FetchError::Untrusted(w) if w.contains("incomplete") && w.contains("not there")),
        "{e:?}"
    );
    // Garbage does not index.
    let e = fetch_from(
        &b,
        commit,
        &[],
        serving(b"PACK\0\0\0\x02junkjunk".to_vec(), CHUNK, "x"),
    )
    .unwrap_err();
    assert!(
        matches!(&e, FetchError::Untrusted(w) if w.contains("does not index")),
        "{e:?}"
    );
    // A pack cut short (announced whole, then nothing more).
    let whole = pack::pack_of(&a, commit, &[], MAX_PACK).unwrap();
    let total = whole.len() as u64;
    let e = fetch_from(&b, commit, &[], |q, _| {
        let Query::GitPack { offset, .. } = q else {
            panic!()
        };
        Some(Answer::GitPack {
            pack: "x".into(),
            total,
            offset,
            data: String::new(),
        })
    })
    .unwrap_err();
    assert!(
        matches!(&e, FetchError::Untrusted(w) if w.contains("bytes 0..0")),
        "{e:?}"
    );
    // Announcing more than the bound.
    let e = fetch_from(&b, commit, &[], |q, _| {
        let Query::GitPack { offset, .. } = q else {
            panic!()
        };
        Some(Answer::GitPack {
            pack: "x".into(),
            total: MAX_PACK as u64 + 1,
            offset,
            data: "00".into(),
        })
    })
    .unwrap_err();
    assert!(
        matches!(&e, FetchError::Untrusted(w) if w.contains("more than")),
        "{e:?}"
    );
    // Not holding the commit, or silence, is no reason for distrust.
    let e = fetch_from(&b, commit, &[], |_, _| {
        Some(Answer::Failed {
            message: "commit 0123456789 is not here".into(),
        })
    })
    .unwrap_err();
    assert_eq!(
        e,
        FetchError::Failed("commit 0123456789 is not here".into())
    );
    let e = fetch_from(&b, commit, &[], |_, _| None).unwrap_err();
    assert!(
        matches!(&e, FetchError::Failed(w) if w.contains("no answer")),
        "{e:?}"
    );
    // After all that, a good pack still makes it complete.
    fetch_from(&b, commit, &[], serving(whole, CHUNK, "y")).unwrap();
    assert_eq!(pack::missing(&b, commit, &[]), None);
}

#[test]
fn a_pack_that_changes_midway_restarts_the_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let big: String = (0..4000).map(|i| format!("server 10.0.{i}.1\n")).collect();
    let (a, commits) = repo_with(&tmp.path().join("a"), &[&big]);
    let b = Repository::init_bare(tmp.path().join("b")).unwrap();
    let pack = pack::pack_of(&a, commits[0], &[], MAX_PACK).unwrap();
    let mut first = serving(pack.clone(), 1024, "old");
    let mut second = serving(pack, 1024, "new");
    let mut calls = 0;
    // The first chunk from one build, every later one from another.
    fetch_from(&b, commits[0], &[], |q, w| {
        calls += 1;
        if calls == 1 {
            first(q, w)
        } else {
            second(q, w)
        }
    })
    .unwrap();
    assert_eq!(pack::missing(&b, commits[0], &[]), None);
    // A pack that never stays the same is given up.
    let pack = pack::pack_of(&a, commits[0], &[], MAX_PACK).unwrap();
    let c = Repository::init_bare(tmp.path().join("c")).unwrap();
    let mut n = 0;
    let e = fetch_from(&c, commits[0], &[], |q, w| {
        n += 1;
        serving(pack.clone(), 1024, &format!("build{}", n / 2))(q, w)
    })
    .unwrap_err();
    assert!(
        matches!(&e, FetchError::Failed(w) if w.contains("changed")),
        "{e:?}"
    );
}

#[test]
fn a_newer_applied_commit_replaces_the_target_and_resets_the_tries() {
    let git = GitFetch::default();
    let cs = |hlc: u64, source: Source| {
        let mut cs = crate::state::tests::remote(hlc, "lab2", &[]);
        cs.meta.source = source;
        cs
    };
    let git_cs = |hlc, c: &str| cs(hlc, Source::Git { commit: c.into() });
    assert!(git.offer(&git_cs(2, "b")));
    assert_eq!(git.failed("lab2: no".into()), RETRY_FIRST);
    assert_eq!(git.failed("lab2: no".into()), RETRY_FIRST * 2);
    assert_eq!(git.lock().tries, 2);
    assert!(!git.offer(&git_cs(1, "a")), "older");
    assert!(!git.offer(&cs(3, Source::Cli)), "no commit");
    assert!(!git.offer(&git_cs(2, "b")), "the same");
    assert_eq!(git.lock().tries, 2);
    assert!(git.offer(&git_cs(3, "c")));
    let p = git.lock();
    assert_eq!((p.tries, p.last_error.clone()), (0, None));
    drop(p);
    for _ in 0..20 {
        git.failed("again".into());
    }
    assert_eq!(git.failed("again".into()), RETRY_MAX);
    git.reread(&[git_cs(1, "a"), cs(9, Source::Cli)]);
    assert_eq!(git.lock().target.as_ref().unwrap().commit, "a");
    assert_eq!(git.lock().tries, 0);
    git.reread(&[cs(9, Source::Cli)]);
    assert!(git.lock().target.is_none());
}
