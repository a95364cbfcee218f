//! Whether a repository holds a commit as an origin claims it: the same id, author and
//! message. An agent asks it of its own config repo (`config.git`) before it records a
//! commit as verified rather than as claimed by the user who applied it.
//!
//! A push is applied from the repository's `pre-receive` hook, before git moves the
//! pushed objects out of quarantine (`objects/tmp_objdir-incoming-*`, see
//! git-receive-pack(1)): those directories are searched too. Only git and the agent write
//! them; a user reaches them only through a push, which puts the commit in the repo.

use std::path::Path;

use super::origin_of;
use crate::plan::Origin;
use crate::state::Source;

/// The prefix of the directories git's `receive-pack` quarantines a push's objects in.
const QUARANTINE_PREFIX: &str = "tmp_objdir-incoming-";

/// Whether the bare repository at `repo` holds `origin`'s commit with its author and
/// message. `false` for a working-tree origin, a missing or unreadable repository, or a
/// malformed id.
pub fn holds(repo: &Path, origin: &Origin) -> bool {
    let Source::Git { commit } = &origin.source else {
        return false;
    };
    let Ok(id) = git2::Oid::from_str(commit) else {
        return false;
    };
    // A full id only: a prefix could name another commit than the one claimed.
    if commit.len() != 40 {
        return false;
    }
    let Ok(repo) = git2::Repository::open_bare(repo) else {
        return false;
    };
    if let (Ok(odb), Ok(dirs)) = (repo.odb(), std::fs::read_dir(repo.path().join("objects"))) {
        for dir in dirs.flatten() {
            if dir
                .file_name()
                .to_string_lossy()
                .starts_with(QUARANTINE_PREFIX)
            {
                let _ = odb.add_disk_alternate(&dir.path().to_string_lossy());
            }
        }
    }
    repo.find_commit(id)
        .is_ok_and(|found| origin_of(&found) == *origin)
}

#[cfg(test)]
mod tests {
    use super::super::git::commit_all;
    use super::super::read_ref;
    use super::*;

    /// A repository with one commit; its `.git` directory and the commit's origin.
    fn repo(message: &str) -> (tempfile::TempDir, Origin) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster.kdl"), "cluster \"a\"\n").unwrap();
        commit_all(dir.path(), ("Ada", "ada@example.com"), message).unwrap();
        let origin = read_ref(dir.path(), "HEAD").unwrap().origin;
        (dir, origin)
    }

    #[test]
    fn only_the_commit_as_it_is_counts() {
        let (dir, origin) = repo("first");
        let git = dir.path().join(".git");
        assert!(holds(&git, &origin));
        let forged_author = Origin {
            author: "Linus <torvalds@example.com>".into(),
            ..origin.clone()
        };
        assert!(!holds(&git, &forged_author));
        let forged_message = Origin {
            message: "reviewed by security".into(),
            ..origin.clone()
        };
        assert!(!holds(&git, &forged_message));
        let Source::Git { commit } = &origin.source else {
            unreachable!()
        };
        let prefix = Origin {
            source: Source::Git {
                commit: commit[..12].into(),
            },
            ..origin.clone()
        };
        assert!(!holds(&git, &prefix));
        let unknown = Origin {
            source: Source::Git {
                commit: "8f2c1d0e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d".into(),
            },
            ..origin.clone()
        };
        assert!(!holds(&git, &unknown));
        let garbled = Origin {
            source: Source::Git {
                commit: "not a commit".into(),
            },
            ..origin.clone()
        };
        assert!(!holds(&git, &garbled));
        assert!(!holds(&dir.path().join("missing"), &origin));
    }

    #[test]
    fn a_push_in_quarantine_is_held() {
        let (ours, _) = repo("ours");
        let (theirs, pushed) = repo("pushed");
        let git = ours.path().join(".git");
        assert!(!holds(&git, &pushed));
        let quarantine = git.join("objects").join(format!("{QUARANTINE_PREFIX}x1"));
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(theirs.path().join(".git/objects"))
            .arg(&quarantine)
            .status()
            .unwrap();
        assert!(copied.success());
        assert!(holds(&git, &pushed));
    }
}
