//! Where desired state comes from: a config repo's working tree, or a git ref read
//! straight from the object database (no checkout), parsed and validated; and the
//! repo's objects moved between repositories ([`pack`]).
//!
//! This is an I/O edge: it reads files and git objects into in-memory
//! [`SourceFile`]s and hands them to the pure parser and validator.

mod held;
pub mod pack;

pub use held::holds;

use std::path::Path;
use std::sync::Arc;

use crate::config::sources::{MAX_KDL_BYTES, read_paths, too_large};
use crate::config::{Diagnostics, Problem, SourceFile, parse_files};
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
    /// Files that could not be read or decoded (not UTF-8), each an error at its file;
    /// [`check`] reports them with the rest.
    pub problems: Vec<Problem>,
    /// The names of those files.
    pub unread: Vec<String>,
    /// Commit id, author and message.
    pub origin: Origin,
}

/// A symbolic link in git: a blob of this mode whose content is the link's target path.
const LINK_MODE: i32 = 0o120000;
/// A directory in git.
const TREE_MODE: i32 = 0o040000;
/// How many links one path may go through before it counts as a loop (Linux's limit).
const MAX_LINKS: usize = 40;

/// Reads every `*.kdl` file of `refname` (a branch, tag, or commit id) in the git repo
/// at or above `dir`, from git objects, skipping hidden entries as the working-tree
/// reader does. `schemas/` at the top holds section schemas.
///
/// Symbolic links are followed as the working-tree reader follows them, but only inside
/// the commit: git stores a link as its target path (a blob of mode 120000), and a
/// commit holds nothing outside the repository. So a link to a file or directory of the
/// same commit is read as that file or directory, relative links resolved from the
/// link's own directory; a link that is absolute, leads out of the repository, names
/// nothing in the commit, or loops is refused, naming the link. A file that is not UTF-8
/// is a problem at that file, as in the working tree.
pub fn read_ref(dir: &Path, refname: &str) -> Result<Snapshot, SourceError> {
    let repo = git2::Repository::discover(dir)
        .map_err(|e| git_err(e, "--repo must be inside a git repository"))?;
    // The config repo may be a subdirectory of the git repository.
    let prefix: Vec<String> = subdir(&repo, dir)
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    read_in(&repo, refname, prefix)
}

/// The config repo at the top of `repo` (bare, say: one a push is received into) at
/// `refname`, read from git objects.
pub fn read_repo_ref(repo: &git2::Repository, refname: &str) -> Result<Snapshot, SourceError> {
    read_in(repo, refname, Vec::new())
}

/// The commit `refname` names in the git repo at or above `dir`: what a follower checks
/// before it reads the whole tree again.
pub fn head_of(dir: &Path, refname: &str) -> Result<String, SourceError> {
    let repo = git2::Repository::discover(dir)
        .map_err(|e| git_err(e, "the followed path must be inside a git repository"))?;
    repo_head_of(&repo, refname)
}

/// The commit `refname` names in `repo`.
pub fn repo_head_of(repo: &git2::Repository, refname: &str) -> Result<String, SourceError> {
    Ok(commit_of(repo, refname)?.id().to_string())
}

/// The commit `refname` (a branch, tag or commit id) resolves to in `repo`.
fn commit_of<'r>(
    repo: &'r git2::Repository,
    refname: &str,
) -> Result<git2::Commit<'r>, SourceError> {
    repo.revparse_single(refname)
        .map_err(|e| git_err(e, "give a branch, tag or commit id that exists in the repo"))?
        .peel_to_commit()
        .map_err(|e| git_err(e, "the ref must point at a commit"))
}

/// The git directory whose refs say where `dir`'s branches are (the common one, for a
/// worktree): what a follower watches.
pub fn refs_dir(dir: &Path) -> Result<std::path::PathBuf, SourceError> {
    let repo = git2::Repository::discover(dir)
        .map_err(|e| git_err(e, "the followed path must be inside a git repository"))?;
    Ok(repo.commondir().to_path_buf())
}

/// Fetches `branch` of the remote `url` into the bare repository `mirror` (created on
/// first use) as `refs/heads/BRANCH`. `file://` URLs are fetched with libgit2, which
/// needs no network library; `ssh://` and `https://` ones with the `git` program (the
/// one the agent serves pushes with), so that they use OpenSSH — its keys, agent,
/// `known_hosts` and config — and the system's TLS: this build links no libssh2 or
/// OpenSSL.
pub fn fetch(mirror: &Path, url: &str, branch: &str) -> Result<(), SourceError> {
    let repo = match git2::Repository::open_bare(mirror) {
        Ok(r) => r,
        Err(_) => git2::Repository::init_bare(mirror)
            .map_err(|e| git_err(e, "the agent's state dir must be writable"))?,
    };
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    if url.starts_with("file://") {
        let mut remote = repo
            .remote_anonymous(url)
            .map_err(|e| git_err(e, "check the source URL"))?;
        return remote.fetch(&[refspec.as_str()], None, None).map_err(|e| {
            git_err(
                e,
                &format!("check that {url} is a git repository with a branch {branch}"),
            )
        });
    }
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(mirror)
        .args(["fetch", "--quiet", "--no-tags", url, &refspec])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            std::env::var("GIT_SSH_COMMAND").unwrap_or_else(|_| "ssh -o BatchMode=yes".into()),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| SourceError::Git {
            message: format!("cannot run git to fetch {url}: {e}"),
            help: "install git (ssh:// and https:// sources are fetched with it)".into(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SourceError::Git {
            message: format!(
                "fetching {branch} of {url} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            help: "check the URL, the branch, and that the agent's user can reach it \
                   (its SSH key and known_hosts, for ssh://)"
                .into(),
        })
    }
}

/// The config repo at `prefix` (path components from the top) of `repo` at `refname`.
fn read_in(
    repo: &git2::Repository,
    refname: &str,
    prefix: Vec<String>,
) -> Result<Snapshot, SourceError> {
    let commit = commit_of(repo, refname)?;
    let tree = commit
        .tree()
        .map_err(|e| git_err(e, "the repository is damaged"))?;
    let root = if prefix.is_empty() {
        tree.clone()
    } else {
        let entry = tree
            .get_path(Path::new(&prefix.join("/")))
            .map_err(|e| git_err(e, "the directory does not exist at that ref"))?;
        entry
            .to_object(repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(|e| git_err(e, "--repo must be a directory"))?
    };
    let mut reader = TreeReader {
        repo,
        top: tree,
        files: Vec::new(),
        problems: Vec::new(),
        unread: Vec::new(),
    };
    reader.walk(&root, "", prefix, &mut Vec::new())?;
    let TreeReader {
        mut files,
        problems,
        unread,
        ..
    } = reader;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let (schemas, kdl): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(p, _)| p.starts_with("schemas/"));
    Ok(Snapshot {
        kdl: kdl.into_iter().map(|(_, f)| f).collect(),
        schemas: schemas.into_iter().map(|(_, f)| f).collect(),
        problems,
        unread,
        origin: origin_of(&commit),
    })
}

/// A commit's id, author and message, as plans and change sets record them.
fn origin_of(commit: &git2::Commit) -> Origin {
    let author = commit.author();
    Origin {
        source: Source::Git {
            commit: commit.id().to_string(),
        },
        author: format!(
            "{} <{}>",
            String::from_utf8_lossy(author.name_bytes()),
            String::from_utf8_lossy(author.email_bytes())
        ),
        message: commit.message().unwrap_or_default().trim().to_owned(),
    }
}

/// Walks a commit's trees for `*.kdl` files, following links inside the commit.
struct TreeReader<'r> {
    repo: &'r git2::Repository,
    /// The commit's whole tree: links resolve against it.
    top: git2::Tree<'r>,
    /// (name shown, file), names relative to the config repo.
    files: Vec<(String, Arc<SourceFile>)>,
    problems: Vec<Problem>,
    unread: Vec<String>,
}

/// Why a link cannot be followed, as "the link `machines` …" ends.
type LinkError = String;

impl<'r> TreeReader<'r> {
    /// Reads the `*.kdl` files of `tree`, shown under `shown` (empty, or ending in `/`),
    /// which is at `real` (path components from the top of the commit). `ancestors`
    /// holds the real paths of the directories being walked, to refuse a link back to one.
    fn walk(
        &mut self,
        tree: &git2::Tree<'r>,
        shown: &str,
        real: Vec<String>,
        ancestors: &mut Vec<Vec<String>>,
    ) -> Result<(), SourceError> {
        ancestors.push(real.clone());
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = format!("{shown}{name}");
            match entry.filemode() {
                TREE_MODE => {
                    let sub = self.tree_of(&entry)?;
                    let mut below = real.clone();
                    below.push(name);
                    self.walk(&sub, &format!("{path}/"), below, ancestors)?;
                }
                LINK_MODE => {
                    let (target, object) = self
                        .follow(&real, &entry)
                        .map_err(|why| link_refused(&path, &why))?;
                    if let Some(sub) = object.as_tree() {
                        if ancestors.contains(&target) {
                            return Err(link_refused(
                                &path,
                                &format!(
                                    "loops: it leads back to `{}`, which is being read already",
                                    shown_dir(&target)
                                ),
                            ));
                        }
                        self.walk(sub, &format!("{path}/"), target, ancestors)?;
                    } else if object.as_blob().is_some() && name.ends_with(".kdl") {
                        self.add_blob(path, object.id())?;
                    }
                }
                _ if entry.kind() == Some(git2::ObjectType::Blob) && name.ends_with(".kdl") => {
                    self.add_blob(path, entry.id())?;
                }
                // Submodules (commits) and other files.
                _ => {}
            }
        }
        ancestors.pop();
        Ok(())
    }

    fn tree_of(&self, entry: &git2::TreeEntry) -> Result<git2::Tree<'r>, SourceError> {
        self.repo
            .find_tree(entry.id())
            .map_err(|e| git_err(e, "the repository is damaged"))
    }

    /// Adds the KDL file `path` held in blob `id`, refused unread (its size is read from
    /// the object's header) when larger than [`MAX_KDL_BYTES`].
    fn add_blob(&mut self, path: String, id: git2::Oid) -> Result<(), SourceError> {
        let damaged = |e: git2::Error| git_err(e, "the repository is damaged");
        let (size, _) = self
            .repo
            .odb()
            .and_then(|o| o.read_header(id))
            .map_err(damaged)?;
        if size as u64 > MAX_KDL_BYTES {
            self.unread.push(path.clone());
            self.problems.push(*too_large(path, size as u64));
            return Ok(());
        }
        let blob = self.repo.find_blob(id).map_err(damaged)?;
        self.add(path, blob.content().to_vec());
        Ok(())
    }

    fn add(&mut self, path: String, bytes: Vec<u8>) {
        match crate::config::sources::not_utf8(path.clone(), bytes) {
            Ok(file) => self.files.push((path, file)),
            Err(problem) => {
                self.unread.push(path);
                self.problems.push(*problem);
            }
        }
    }

    /// Where the link `entry` in the directory at `dir` leads: the real path and the
    /// object there, following further links on the way.
    fn follow(
        &self,
        dir: &[String],
        entry: &git2::TreeEntry,
    ) -> Result<(Vec<String>, git2::Object<'r>), LinkError> {
        let mut hops = 0;
        let mut path: Vec<String> = dir.to_vec();
        let mut pending: Vec<String> = Vec::new();
        push_target(&mut pending, &self.link_target(entry.id())?)?;
        // `pending` holds the components still to walk, the next one last.
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => {}
                ".." => {
                    if path.pop().is_none() {
                        return Err("leads out of the repository".into());
                    }
                }
                _ => {
                    path.push(part);
                    let here = self.top.get_path(Path::new(&path.join("/"))).map_err(|_| {
                        format!("is broken: `{}` is not in the commit", path.join("/"))
                    })?;
                    if here.filemode() == LINK_MODE {
                        hops += 1;
                        if hops > MAX_LINKS {
                            return Err(format!("loops: more than {MAX_LINKS} links in a row"));
                        }
                        path.pop();
                        push_target(&mut pending, &self.link_target(here.id())?)?;
                    }
                }
            }
        }
        let object = if path.is_empty() {
            self.top.as_object().clone()
        } else {
            self.top
                .get_path(Path::new(&path.join("/")))
                .and_then(|e| e.to_object(self.repo))
                .map_err(|e| format!("cannot be read: {}", e.message()))?
        };
        Ok((path, object))
    }

    fn link_target(&self, id: git2::Oid) -> Result<String, LinkError> {
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| format!("cannot be read: {}", e.message()))?;
        String::from_utf8(blob.content().to_vec())
            .map_err(|_| "names a target that is not UTF-8".to_owned())
    }
}

/// Queues a link target's components (next one last); an absolute target is refused.
fn push_target(pending: &mut Vec<String>, target: &str) -> Result<(), LinkError> {
    if target.starts_with('/') {
        return Err(format!(
            "points to the absolute path `{target}`, which no commit holds"
        ));
    }
    pending.extend(target.split('/').rev().map(str::to_owned));
    Ok(())
}

fn shown_dir(real: &[String]) -> String {
    if real.is_empty() {
        "the top of the repository".into()
    } else {
        real.join("/")
    }
}

fn link_refused(path: &str, why: &str) -> SourceError {
    SourceError::Git {
        message: format!("the symbolic link `{path}` {why}"),
        help: "at a git ref Strata reads only what the commit holds: point the link at a \
               path inside the repository, or commit the files themselves"
            .into(),
    }
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
        problems: sources.problems,
        unread: sources.unread,
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
    let mut repo = parse_files(snapshot.kdl.clone(), &mut diags);
    // Files that could not be read or decoded are problems like any other.
    repo.unread.extend(snapshot.unread.iter().cloned());
    diags.extend(snapshot.problems.iter().cloned());
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
pub(crate) mod git;

#[cfg(test)]
mod tests;
