//! Atomic file writing, the one place that does it: the new bytes go to a temporary file
//! beside the target (the atomic-write-file crate: an unnamed one where Linux has
//! O_TMPFILE, so a crash leaves nothing behind), which is fsync'd and renamed over the
//! target, and then the directory is fsync'd — a crash leaves the old file or the new
//! one, never a mix. [`write`](fn@write) does one file (the agent's state dir and running config,
//! `plan --out`); [`write_set`] does a set of repo files all or nothing, as far as a file
//! system allows (`copy`/`move`/`delete`, `import-xml`).
//!
//! Symbolic links: [`write`](fn@write) replaces a link itself, never the file it points to (in
//! the agent's own directories a planted link must not redirect a write). [`write_set`]
//! writes through a link to the file it points to and leaves the link in place: a repo
//! file that is a link is read through it (see [`crate::config::sources`]), so an edit
//! of it is an edit of that file.

use std::fs::{self, File};

use atomic_write_file::AtomicWriteFile;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The permissions a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0600: keys and other secrets.
    Private,
    /// 0644: what others may read, such as saved plans. (The agent's settings and
    /// running config are [`FileMode::Private`].)
    Shared,
    /// The mode of the file being replaced (not of a link's target); a new file gets the
    /// process's default (0666 less the umask). For files of a config repo.
    Keep,
}

/// A file could not be written; what was there before is intact.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WriteError {
    /// The file (or directory) the failing operation was on.
    pub path: PathBuf,
    /// What failed.
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_path_buf(),
        source,
    }
}

/// New bytes for a target, written and synced to a temporary file beside it, not yet in
/// place. Dropping it without [`Staged::commit`] discards the temporary file.
#[derive(Debug)]
pub struct Staged {
    file: AtomicWriteFile,
    target: PathBuf,
}

impl Staged {
    /// Writes `bytes` to a synced temporary file beside `target`.
    pub fn new(target: &Path, bytes: &[u8], mode: FileMode) -> Result<Staged, WriteError> {
        let mut opts = atomic_write_file::OpenOptions::new();
        #[cfg(unix)]
        {
            use atomic_write_file::unix::OpenOptionsExt as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            match mode {
                FileMode::Private => {
                    opts.mode(0o600).preserve_mode(false);
                }
                FileMode::Shared => {
                    opts.mode(0o644).preserve_mode(false);
                }
                // The replaced file's mode, never a link's target's: a link is replaced.
                FileMode::Keep => {
                    let is_file = fs::symlink_metadata(target).is_ok_and(|m| m.is_file());
                    opts.preserve_mode(is_file);
                }
            }
        }
        let mut file = opts.open(target).map_err(at(target))?;
        file.write_all(bytes).map_err(at(target))?;
        file.as_file().sync_all().map_err(at(target))?;
        Ok(Staged {
            file,
            target: target.to_path_buf(),
        })
    }

    /// The file this will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temporary file over the target and syncs the directory.
    pub fn commit(self) -> Result<(), WriteError> {
        self.file.commit().map_err(at(&self.target))
    }
}

/// Writes `path` atomically (see the module header).
pub fn write(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), WriteError> {
    Staged::new(path, bytes, mode)?.commit()
}

/// fsyncs a directory, so renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// One file of a set to write.
#[derive(Debug, Clone, Copy)]
pub struct NewFile<'a> {
    /// Its path, relative to the directory of the set.
    pub rel: &'a str,
    /// Its new text.
    pub text: &'a str,
    /// The text it must still have on disk (edits of files read earlier); `None` writes
    /// whatever is there, or creates it.
    pub expect: Option<&'a str>,
}

/// A set of files was not written.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// Nothing was changed: a directory, a temporary file or a check failed.
    #[error("{0}")]
    Unchanged(WriteError),
    /// A file was edited by someone else since it was read; nothing was changed.
    #[error("{} changed on disk while strata was editing it", .0.display())]
    ChangedMeanwhile(PathBuf),
    /// A rename failed after others had succeeded: the set is partly written.
    #[error("cannot replace {}: {source}", path.display())]
    Partial {
        /// The file that could not be replaced.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
        /// The files already replaced (possibly none).
        written: Vec<PathBuf>,
    },
}

/// Writes every file of `files` under `dir` (mode [`FileMode::Keep`]), or none if
/// anything fails before the renames begin: every target directory is made and every new
/// text written to a synced temporary file before the first rename, and a failure
/// before then removes the temporary files and the directories it made.
pub fn write_set(dir: &Path, files: &[NewFile]) -> Result<(), SetError> {
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let mut staged: Vec<Staged> = Vec::new();
    for file in files {
        match stage(dir, file, &mut made_dirs) {
            Ok(s) => staged.push(s),
            Err(err) => {
                drop(staged);
                for d in made_dirs.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
                return Err(err);
            }
        }
    }
    let mut written = Vec::new();
    for s in staged {
        let target = s.target().to_path_buf();
        match s.commit() {
            Ok(()) => written.push(target),
            Err(e) => {
                // The staged files not yet renamed are removed as they drop.
                return Err(SetError::Partial {
                    path: target,
                    source: e.source,
                    written,
                });
            }
        }
    }
    Ok(())
}

/// Makes `file`'s directory, checks `file.expect`, and stages the new text — beside the
/// file a symbolic link points to, if it is one, so the link stays a link.
fn stage(dir: &Path, file: &NewFile, made_dirs: &mut Vec<PathBuf>) -> Result<Staged, SetError> {
    let mut path = dir.join(file.rel);
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    make_dirs(&parent, made_dirs).map_err(|e| SetError::Unchanged(at(&parent)(e)))?;
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        path = fs::canonicalize(&path).map_err(|e| SetError::Unchanged(at(&path)(e)))?;
    }
    if let Some(expect) = file.expect {
        let current = fs::read_to_string(&path).map_err(|e| SetError::Unchanged(at(&path)(e)))?;
        if current != expect {
            return Err(SetError::ChangedMeanwhile(path));
        }
    }
    Staged::new(&path, file.text.as_bytes(), FileMode::Keep).map_err(SetError::Unchanged)
}

/// Creates `dir` and its missing ancestors, recording those it made (outermost first).
fn make_dirs(dir: &Path, made: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dirs(parent, made)?;
    }
    fs::create_dir(dir)?;
    made.push(dir.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit<'a>(rel: &'a str, before: &'a str, after: &'a str) -> NewFile<'a> {
        NewFile {
            rel,
            text: after,
            expect: Some(before),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn one_file_gets_its_mode_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        // A world-writable file in the way gets the mode asked for, not its own.
        fs::write(&key, "old").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o666)).unwrap();
        write(&key, b"secret", FileMode::Private).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read_to_string(&key).unwrap(), "secret");
        write(&key, b"public", FileMode::Shared).unwrap();
        assert_eq!(mode(&key), 0o644);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        write(&key, b"kept", FileMode::Keep).unwrap();
        assert_eq!(mode(&key), 0o640);
        assert_eq!(names(dir.path()), ["key"]);
    }

    #[test]
    fn files_are_replaced_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("groups")).unwrap();
        fs::write(dir.path().join("a.kdl"), "one").unwrap();
        fs::write(dir.path().join("groups/b.kdl"), "two").unwrap();
        write_set(
            dir.path(),
            &[
                edit("a.kdl", "one", "uno"),
                edit("groups/b.kdl", "two", "dos"),
            ],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("a.kdl")).unwrap(), "uno");
        assert_eq!(
            fs::read_to_string(dir.path().join("groups/b.kdl")).unwrap(),
            "dos"
        );
        assert_eq!(names(dir.path()), ["a.kdl", "groups"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_set_writes_through_a_link_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("shared")).unwrap();
        fs::write(dir.path().join("shared/lab1.kdl"), "one").unwrap();
        std::os::unix::fs::symlink("shared/lab1.kdl", dir.path().join("lab1.kdl")).unwrap();
        write_set(dir.path(), &[edit("lab1.kdl", "one", "uno")]).unwrap();
        let link = fs::symlink_metadata(dir.path().join("lab1.kdl")).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(
            fs::read_to_string(dir.path().join("shared/lab1.kdl")).unwrap(),
            "uno"
        );
        assert_eq!(names(dir.path()), ["lab1.kdl", "shared"]);
        assert_eq!(names(&dir.path().join("shared")), ["lab1.kdl"]);
        // One file alone replaces a link: the agent's files are never written through one.
        write(&dir.path().join("lab1.kdl"), b"own", FileMode::Private).unwrap();
        assert!(
            fs::symlink_metadata(dir.path().join("lab1.kdl"))
                .unwrap()
                .is_file()
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("shared/lab1.kdl")).unwrap(),
            "uno"
        );
    }

    #[test]
    fn a_file_changed_meanwhile_stops_everything() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.kdl"), "one").unwrap();
        fs::write(dir.path().join("b.kdl"), "edited meanwhile").unwrap();
        let err = write_set(
            dir.path(),
            &[edit("a.kdl", "one", "uno"), edit("b.kdl", "two", "dos")],
        )
        .unwrap_err();
        assert!(matches!(err, SetError::ChangedMeanwhile(_)), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("a.kdl")).unwrap(), "one");
        assert_eq!(names(dir.path()), ["a.kdl", "b.kdl"]);
    }

    #[test]
    fn a_failure_removes_the_directories_it_made() {
        let dir = tempfile::tempdir().unwrap();
        // `machines` is a file, so machines/x.kdl cannot be written.
        fs::write(dir.path().join("machines"), "not a directory").unwrap();
        let files = [
            NewFile {
                rel: "groups/g.kdl",
                text: "group \"g\"",
                expect: None,
            },
            NewFile {
                rel: "machines/x.kdl",
                text: "machine \"x\"",
                expect: None,
            },
        ];
        assert!(matches!(
            write_set(dir.path(), &files),
            Err(SetError::Unchanged(_))
        ));
        assert_eq!(names(dir.path()), ["machines"]);
    }
}
