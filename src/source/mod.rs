//! Where desired state comes from: a config repo's working tree, or a git ref read
//! straight from the object database (no checkout), parsed and validated.
//!
//! This is an I/O edge: it reads files and git objects into in-memory
//! [`SourceFile`]s and hands them to the pure parser and validator.

use std::path::Path;
use std::sync::Arc;

use crate::config::sources::read_paths;
use crate::config::{Diagnostics, SourceFile, parse_files};
use crate::plan::Origin;
use crate::schema::Catalogue;
use crate::state::Source;
use crate::validate::{Checked, validate};

/// Reading the desired state failed before validation could start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// git could not open the repo or resolve the ref.
    #[error("git: {message}")]
    #[diagnostic(code(strata::git), help("{help}"))]
    Git {
        /// What git said.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// A file of the working tree could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Read(#[from] crate::config::sources::ReadError),
}

fn git_err(e: git2::Error, help: &str) -> SourceError {
    SourceError::Git {
        message: e.message().to_owned(),
        help: help.to_owned(),
    }
}

/// The files of a repo at one commit, and that commit's provenance.
#[derive(Debug)]
pub struct Snapshot {
    /// Configuration KDL files.
    pub kdl: Vec<Arc<SourceFile>>,
    /// The repo's own section schemas.
    pub schemas: Vec<Arc<SourceFile>>,
    /// Commit id, author and message.
    pub origin: Origin,
}

/// Reads every `*.kdl` file of `refname` (a branch, tag, or commit id) in the git repo
/// at or above `dir`, from git objects, skipping hidden entries as the working-tree
/// reader does. `schemas/` at the top holds section schemas.
pub fn read_ref(dir: &Path, refname: &str) -> Result<Snapshot, SourceError> {
    let repo = git2::Repository::discover(dir)
        .map_err(|e| git_err(e, "--repo must be inside a git repository"))?;
    let object = repo
        .revparse_single(refname)
        .map_err(|e| git_err(e, "give a branch, tag or commit id that exists in the repo"))?;
    let commit = object
        .peel_to_commit()
        .map_err(|e| git_err(e, "the ref must point at a commit"))?;
    let tree = commit
        .tree()
        .map_err(|e| git_err(e, "the repository is damaged"))?;
    // The config repo may be a subdirectory of the git repository.
    let prefix = subdir(&repo, dir);
    let root = match &prefix {
        Some(p) if !p.as_os_str().is_empty() => {
            let entry = tree
                .get_path(p)
                .map_err(|e| git_err(e, "the directory does not exist at that ref"))?;
            entry
                .to_object(&repo)
                .and_then(|o| o.peel_to_tree())
                .map_err(|e| git_err(e, "--repo must be a directory"))?
        }
        _ => tree,
    };
    let mut files: Vec<(String, Arc<SourceFile>)> = Vec::new();
    let mut failure = None;
    root.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        if name.starts_with('.') {
            return git2::TreeWalkResult::Skip;
        }
        if entry.kind() == Some(git2::ObjectType::Blob) && name.ends_with(".kdl") {
            let path = format!("{parent}{name}");
            match repo.find_blob(entry.id()) {
                Ok(blob) => match std::str::from_utf8(blob.content()) {
                    Ok(text) => files.push((path.clone(), SourceFile::new(path, text))),
                    Err(_) => failure = Some(format!("{path} is not UTF-8")),
                },
                Err(e) => failure = Some(format!("{path}: {}", e.message())),
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| git_err(e, "the repository is damaged"))?;
    if let Some(message) = failure {
        return Err(SourceError::Git {
            message,
            help: "config files must be UTF-8 KDL".into(),
        });
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let (schemas, kdl): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(p, _)| p.starts_with("schemas/"));
    let author = commit.author();
    Ok(Snapshot {
        kdl: kdl.into_iter().map(|(_, f)| f).collect(),
        schemas: schemas.into_iter().map(|(_, f)| f).collect(),
        origin: Origin {
            source: Source::Git {
                commit: commit.id().to_string(),
            },
            author: format!(
                "{} <{}>",
                String::from_utf8_lossy(author.name_bytes()),
                String::from_utf8_lossy(author.email_bytes())
            ),
            message: commit.message().unwrap_or_default().trim().to_owned(),
        },
    })
}

/// `dir` relative to the repository's work tree, if it is inside it.
fn subdir(repo: &git2::Repository, dir: &Path) -> Option<std::path::PathBuf> {
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let dir = dir.canonicalize().ok()?;
    dir.strip_prefix(&workdir).ok().map(Path::to_path_buf)
}

/// Reads the working tree at `dir`; the author is `user` and the source is the CLI.
pub fn read_worktree(dir: &Path, user: &str) -> Result<Snapshot, SourceError> {
    let sources = read_paths(&[dir.to_path_buf()])?;
    Ok(Snapshot {
        kdl: sources.kdl,
        schemas: sources.schemas,
        origin: Origin {
            source: Source::Cli,
            author: user.to_owned(),
            message: format!("working tree of {}", dir.display()),
        },
    })
}

/// Parses and validates a snapshot.
pub fn check(snapshot: &Snapshot) -> Checked {
    let mut diags = Diagnostics::default();
    let catalogue = Catalogue::load(&snapshot.schemas, &mut diags);
    let repo = parse_files(snapshot.kdl.clone(), &mut diags);
    validate(&repo, &catalogue, &mut diags);
    diags.sort();
    Checked {
        repo,
        catalogue,
        diags,
    }
}

#[cfg(test)]
#[path = "../../tests/support/git.rs"]
mod git;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_is_read_from_git_objects_not_the_working_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cluster.kdl"),
            "cluster \"a\"\ngroup \"Main_Group\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        std::fs::write(dir.path().join(".hidden/x.kdl"), "garbage {").unwrap();
        let first =
            git::commit_all(dir.path(), ("Ada", "ada@example.com"), "first\n\nbody").unwrap();
        // An uncommitted edit is not seen through the ref.
        std::fs::write(dir.path().join("cluster.kdl"), "cluster \"b\"\n").unwrap();
        let snap = read_ref(dir.path(), "HEAD").unwrap();
        assert_eq!(snap.kdl.len(), 1);
        assert!(snap.kdl[0].text.contains("cluster \"a\""));
        assert_eq!(snap.origin.source, Source::Git { commit: first });
        assert_eq!(snap.origin.author, "Ada <ada@example.com>");
        assert_eq!(snap.origin.message, "first\n\nbody");
        let checked = check(&snap);
        assert!(!checked.diags.has_errors());
        assert_eq!(checked.repo.cluster_name(), Some("a"));

        let err = read_ref(dir.path(), "no-such-branch").unwrap_err();
        assert!(err.to_string().starts_with("git: "), "{err}");
    }
}
