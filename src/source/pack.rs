//! The config repo's git objects between repositories, with libgit2: the pack of what a
//! commit reaches that the other side lacks ([`pack_of`], [`copy`]), whether a commit
//! and everything it reaches are present ([`missing`]: what a pack from a peer must
//! leave true), and moving a branch to a commit only forward ([`advance`]). Blocking:
//! the agent calls it off its runtime (its mesh's git fetch decides when and from where).

use std::collections::HashSet;
use std::path::Path;

use git2::{ErrorCode, ObjectType, Oid, Repository};

/// The most commits' worth of branch tips an asker names as what it has.
const MAX_TIPS: usize = 64;

/// A commit id as logs and messages print it.
pub fn short(commit: &Oid) -> String {
    commit.to_string()[..10].to_owned()
}

/// The pack of `commit` and everything it reaches, minus what the commits of `have`
/// reach (those this repository does not hold are ignored): the bytes of a pack file,
/// refused when it would be larger than `max` bytes.
pub fn pack_of(
    repo: &Repository,
    commit: Oid,
    have: &[Oid],
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut pack = builder(repo, commit, have)?;
    let mut buf = git2::Buf::new();
    pack.write_buf(&mut buf)
        .map_err(|e| format!("cannot pack commit {}: {}", short(&commit), e.message()))?;
    if buf.len() > max {
        return Err(format!(
            "the objects of commit {} make a pack of {} MiB, more than the {} MiB a member sends",
            short(&commit),
            buf.len().div_ceil(1 << 20),
            max >> 20
        ));
    }
    Ok(buf.to_vec())
}

/// Copies what `commit` reaches from `from` into `to` (a bare repository), minus what
/// `to`'s branch tips reach, as one pack file written straight into `to`'s object
/// directory: for a repository of this machine's own (the follower's), with no bound.
pub fn copy(from: &Repository, to: &Repository, commit: Oid) -> Result<(), String> {
    let have = tips(to);
    let mut pack = builder(from, commit, &have)?;
    pack.write(&to.path().join("objects").join("pack"), 0)
        .map_err(|e| format!("cannot copy commit {}: {}", short(&commit), e.message()))?;
    to.odb()
        .and_then(|odb| odb.refresh())
        .map_err(|e| e.message().to_owned())
}

/// A pack builder holding the history of `commit` minus that of `have`.
fn builder<'r>(
    repo: &'r Repository,
    commit: Oid,
    have: &[Oid],
) -> Result<git2::PackBuilder<'r>, String> {
    let fail = |e: git2::Error| format!("cannot pack commit {}: {}", short(&commit), e.message());
    let odb = repo.odb().map_err(fail)?;
    if !odb.exists(commit) {
        return Err(format!("commit {} is not here", short(&commit)));
    }
    let mut walk = repo.revwalk().map_err(fail)?;
    walk.push(commit).map_err(fail)?;
    for h in have.iter().filter(|h| odb.exists(**h)) {
        // A tip that is no commit (a tag of a blob, say) hides nothing.
        let _ = walk.hide(*h);
    }
    let mut pack = repo.packbuilder().map_err(fail)?;
    // One thread: the agent shares its cores with what the appliance does, and one
    // thread builds the same pack from the same objects.
    pack.set_threads(1);
    pack.insert_walk(&mut walk).map_err(fail)?;
    Ok(pack)
}

/// The commits `repo`'s branches and tags point at (each complete: git checks what a
/// push brings, and [`missing`] what a fetch brings), at most [`MAX_TIPS`]: what an
/// asker says it has.
pub fn tips(repo: &Repository) -> Vec<Oid> {
    let mut out = Vec::new();
    for glob in ["refs/heads/*", "refs/tags/*"] {
        let Ok(refs) = repo.references_glob(glob) else {
            continue;
        };
        for r in refs.flatten() {
            if let Ok(c) = r.peel_to_commit()
                && !out.contains(&c.id())
            {
                out.push(c.id());
            }
        }
    }
    out.truncate(MAX_TIPS);
    out
}

/// What `repo` lacks of `commit`: the commit, a commit of its history, or a tree or blob
/// one of them reaches. What the commits of `complete` reach is taken as present.
/// `None`: the commit is complete, and a clone of a branch at it would succeed.
pub fn missing(repo: &Repository, commit: Oid, complete: &[Oid]) -> Option<String> {
    let c = short(&commit);
    let odb = match repo.odb() {
        Ok(odb) => odb,
        Err(e) => return Some(e.message().to_owned()),
    };
    if !odb.exists(commit) {
        return Some(format!("commit {c} is not there"));
    }
    let mut walk = match repo.revwalk() {
        Ok(w) => w,
        Err(e) => return Some(e.message().to_owned()),
    };
    if let Err(e) = walk.push(commit) {
        return Some(format!("{c} is not a commit: {}", e.message()));
    }
    for h in complete.iter().filter(|h| **h != commit && odb.exists(**h)) {
        let _ = walk.hide(*h);
    }
    let mut seen: HashSet<Oid> = HashSet::new();
    for next in walk {
        let id = match next {
            Ok(id) => id,
            Err(e) => return Some(format!("the history of {c} is incomplete: {}", e.message())),
        };
        let tree = match repo.find_commit(id) {
            Ok(found) => found.tree_id(),
            Err(e) => return Some(format!("commit {} is missing: {}", short(&id), e.message())),
        };
        let mut trees = vec![tree];
        while let Some(t) = trees.pop() {
            if !seen.insert(t) {
                continue;
            }
            let tree = match repo.find_tree(t) {
                Ok(tree) => tree,
                Err(_) => {
                    return Some(format!(
                        "tree {} of commit {} is missing",
                        short(&t),
                        short(&id)
                    ));
                }
            };
            for entry in tree.iter() {
                match entry.kind() {
                    Some(ObjectType::Tree) => trees.push(entry.id()),
                    Some(ObjectType::Blob)
                        if seen.insert(entry.id()) && !odb.exists(entry.id()) =>
                    {
                        return Some(format!(
                            "blob {} ({}) of commit {} is missing",
                            short(&entry.id()),
                            entry.name().unwrap_or("?"),
                            short(&id)
                        ));
                    }
                    // A blob seen or present; a submodule's commit, which lives in
                    // another repository.
                    _ => {}
                }
            }
        }
    }
    None
}

/// What [`advance`] did with a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// The branch did not exist: it now points at the commit.
    Created,
    /// The commit descends from the branch's tip: the branch moved forward to it.
    Moved {
        /// The tip it moved from.
        from: Oid,
    },
    /// The branch is at the commit already.
    Already,
    /// The branch's tip descends from the commit: left alone.
    Ahead {
        /// The tip.
        tip: Oid,
    },
    /// Neither descends from the other: left alone.
    Diverged {
        /// The tip.
        tip: Oid,
    },
}

/// Moves `refs/heads/BRANCH` of `repo` to `commit` when that is forward (the commit
/// descends from its tip) or the branch does not exist; never backwards or sideways.
/// The ref is updated only if it still holds the tip read (compare and swap): a push
/// that moved it in between wins.
pub fn advance(repo: &Repository, branch: &str, commit: Oid) -> Result<Advance, git2::Error> {
    let name = format!("refs/heads/{branch}");
    let why = "strata: the commit the cluster runs";
    let tip = match repo.find_reference(&name) {
        Err(e) if e.code() == ErrorCode::NotFound => {
            repo.reference(&name, commit, false, why)?;
            return Ok(Advance::Created);
        }
        Err(e) => return Err(e),
        Ok(r) => r.peel_to_commit()?.id(),
    };
    if tip == commit {
        Ok(Advance::Already)
    } else if repo.graph_descendant_of(commit, tip)? {
        repo.reference_matching(&name, commit, true, tip, why)?;
        Ok(Advance::Moved { from: tip })
    } else if repo.graph_descendant_of(tip, commit)? {
        Ok(Advance::Ahead { tip })
    } else {
        Ok(Advance::Diverged { tip })
    }
}

/// The commit `refs/heads/BRANCH` of the bare repository at `dir` points at; `None`
/// when there is no such repository or branch.
pub fn tip_of(dir: &Path, branch: &str) -> Option<Oid> {
    let repo = Repository::open_bare(dir).ok()?;
    let r = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
    r.peel_to_commit().ok().map(|c| c.id())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A bare repository in `dir`.
    fn bare(dir: &Path) -> Repository {
        Repository::init_bare(dir).unwrap()
    }

    /// Commits `files` on top of `parent` in `repo` (no branch moved).
    fn commit(repo: &Repository, parent: Option<Oid>, files: &[(&str, &str)]) -> Oid {
        let mut tree = repo.treebuilder(None).unwrap();
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            tree.insert(name, blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let who = git2::Signature::new("Ada", "ada@example.com", &git2::Time::new(1, 0)).unwrap();
        let parents: Vec<git2::Commit> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &who, &who, "c", &tree, &parents).unwrap()
    }

    /// Writes `pack` into `repo` with the odb's pack writer.
    fn take(repo: &Repository, pack: &[u8]) -> Result<(), git2::Error> {
        let odb = repo.odb()?;
        let mut w = odb.packwriter()?;
        w.write_all(pack)
            .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        w.commit().map(|_| ())
    }

    #[test]
    fn a_pack_brings_what_the_other_side_lacks_and_no_more() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (bare(&tmp.path().join("a")), bare(&tmp.path().join("b")));
        let big: String = (0..4000)
            .map(|i| format!("server 10.{}.{}.1\n", i / 256, i % 256))
            .collect();
        let first = commit(&a, None, &[("cluster.kdl", &big)]);
        let second = commit(
            &a,
            Some(first),
            &[("cluster.kdl", &big), ("paris.kdl", "x")],
        );
        assert!(missing(&b, second, &[]).unwrap().contains("is not there"));

        let whole = pack_of(&a, first, &[], 1 << 20).unwrap();
        take(&b, &whole).unwrap();
        assert_eq!(missing(&b, first, &[]), None);
        assert_eq!(advance(&b, "main", first).unwrap(), Advance::Created);

        // The next pack, against what b has, leaves the big blob out.
        let have = tips(&b);
        assert_eq!(have, vec![first]);
        let next = pack_of(&a, second, &have, 1 << 20).unwrap();
        assert!(
            next.len() < whole.len() / 2,
            "{} of {}",
            next.len(),
            whole.len()
        );
        take(&b, &next).unwrap();
        assert_eq!(missing(&b, second, &have), None);
        assert_eq!(
            missing(&b, second, &[]),
            None,
            "complete without the hint too"
        );
        assert_eq!(
            advance(&b, "main", second).unwrap(),
            Advance::Moved { from: first }
        );
        assert_eq!(tip_of(b.path(), "main"), Some(second));
        // A have b's peer does not know is ignored.
        let unknown = Oid::from_str("0123456789012345678901234567890123456789").unwrap();
        assert!(pack_of(&a, second, &[unknown], 1 << 20).is_ok());
        // Past the bound, refused with the size.
        let e = pack_of(&a, second, &[], 64).unwrap_err();
        assert!(e.contains("more than the"), "{e}");
        let e = pack_of(&b, unknown, &[], 1 << 20).unwrap_err();
        assert!(e.contains("is not here"), "{e}");
    }

    #[test]
    fn an_incomplete_or_broken_pack_is_found_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (bare(&tmp.path().join("a")), bare(&tmp.path().join("b")));
        let first = commit(&a, None, &[("cluster.kdl", "one")]);
        let second = commit(&a, Some(first), &[("cluster.kdl", "two")]);
        // A pack of the commit object alone: it indexes, but the tree is missing.
        let mut only = a.packbuilder().unwrap();
        only.insert_object(second, None).unwrap();
        let mut buf = git2::Buf::new();
        only.write_buf(&mut buf).unwrap();
        take(&b, &buf).unwrap();
        let why = missing(&b, second, &[]).unwrap();
        assert!(
            why.contains("is incomplete") || why.contains("is missing"),
            "{why}"
        );
        // Its tree, but not its parent.
        let mut some = a.packbuilder().unwrap();
        some.insert_commit(second).unwrap();
        let mut buf = git2::Buf::new();
        some.write_buf(&mut buf).unwrap();
        take(&b, &buf).unwrap();
        let why = missing(&b, second, &[]).unwrap();
        assert!(why.contains("history"), "{why}");
        // A parent known complete is not walked.
        let mut parent = a.packbuilder().unwrap();
        parent.insert_commit(first).unwrap();
        let mut buf = git2::Buf::new();
        parent.write_buf(&mut buf).unwrap();
        take(&b, &buf).unwrap();
        assert_eq!(missing(&b, second, &[first]), None);

        // Garbage and a cut pack do not index.
        assert!(take(&b, b"PACK\0\0\0\x02garbage").is_err());
        let whole = pack_of(&a, second, &[], 1 << 20).unwrap();
        assert!(take(&b, &whole[..whole.len() - 5]).is_err());
    }

    #[test]
    fn a_branch_moves_only_forward() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a"));
        let first = commit(&repo, None, &[("a", "1")]);
        let second = commit(&repo, Some(first), &[("a", "2")]);
        let other = commit(&repo, Some(first), &[("a", "3")]);
        assert_eq!(advance(&repo, "main", second).unwrap(), Advance::Created);
        assert_eq!(advance(&repo, "main", second).unwrap(), Advance::Already);
        assert_eq!(
            advance(&repo, "main", first).unwrap(),
            Advance::Ahead { tip: second }
        );
        assert_eq!(
            advance(&repo, "main", other).unwrap(),
            Advance::Diverged { tip: second }
        );
        assert_eq!(tip_of(repo.path(), "main"), Some(second));
        assert_eq!(tip_of(repo.path(), "other"), None);
        assert_eq!(tip_of(&tmp.path().join("none"), "main"), None);
    }

    #[test]
    fn a_local_copy_brings_the_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (bare(&tmp.path().join("a")), bare(&tmp.path().join("b")));
        let first = commit(&a, None, &[("cluster.kdl", "one")]);
        let second = commit(&a, Some(first), &[("cluster.kdl", "two")]);
        copy(&a, &b, first).unwrap();
        advance(&b, "main", first).unwrap();
        copy(&a, &b, second).unwrap();
        assert_eq!(missing(&b, second, &[]), None);
    }
}
