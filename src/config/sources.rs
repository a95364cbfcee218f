//! Finding and reading the files of a config repo from disk. Files other than KDL (AsyncOS
//! XML) are only listed: the caller reads them (with the XML module's file reader), so that this
//! module knows no XML.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Problem, SourceFile};
use crate::text::thousands;

/// The files found under a repo or among paths given on the command line.
#[derive(Debug, Default)]
pub struct Sources {
    /// Configuration KDL files.
    pub kdl: Vec<Arc<SourceFile>>,
    /// Section schemas from the repo's own `schemas/` directory.
    pub schemas: Vec<Arc<SourceFile>>,
    /// Other files given explicitly (AsyncOS XML, for instance), not read here.
    pub other: Vec<PathBuf>,
    /// Files that were found but could not be read or decoded (not UTF-8, say): each is an
    /// error located at its file, reported with the other problems of the run, and the
    /// file declares nothing. Their names are in [`Sources::unread`].
    pub problems: Vec<Problem>,
    /// The names of those files, so that repo-level rules ("no cluster") that would only
    /// echo them are not reported.
    pub unread: Vec<String>,
}

/// How the files found under a directory are named where users see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Relative to the repo root (`machines/lab1.kdl`) when one directory is read: what
    /// `show` cites and what the edit commands write back to. Several paths read together
    /// are named as from the current directory.
    InRepo,
    /// As reached from the current directory (`examples/americas/machines/lab1.kdl`),
    /// for reports that cover several repos at once (`validate`).
    FromHere,
}

/// A path given on the command line could not be read (it does not exist, or a symbolic
/// link under it is broken or loops), with the path it happened on. A file found under a
/// repo that cannot be read is a [`Problem`] instead (see [`Sources::problems`]).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read {path}: {cause}")]
#[diagnostic(code(strata::io), help("check that the path exists and is readable"))]
pub struct ReadError {
    /// The path.
    pub path: String,
    /// The underlying error.
    pub cause: io::Error,
}

/// The problem for a file whose bytes are not UTF-8: an error at the first byte that is
/// not, in a copy of the text where each such byte reads U+FFFD (so the line can be
/// shown). Shared with the git-ref reader.
pub fn not_utf8(shown: String, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Box<Problem>> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(shown, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            let file = SourceFile::new(shown, String::from_utf8_lossy(e.as_bytes()).into_owned());
            let problem = Problem::error(
                "strata::repo::not-utf8",
                format!("the file is not UTF-8: byte 0x{byte:02X} cannot be decoded"),
            )
            // U+FFFD, which stands for the byte in the shown text, is three bytes long.
            .at(&file, (at, '\u{FFFD}'.len_utf8()).into(), "not UTF-8")
            .help("KDL files are UTF-8; convert it, e.g. with `iconv -f ISO-8859-1 -t UTF-8`");
            Err(Box::new(problem))
        }
    }
}

/// The largest KDL file Strata reads: 4 MiB, checked before reading it (the whole file
/// is held while it is checked). A config file is a few KB; a file past this is refused
/// with [`too_large`] rather than read.
pub const MAX_KDL_BYTES: u64 = 4 << 20;

/// The problem for a KDL file of `size` bytes, larger than [`MAX_KDL_BYTES`]: an error
/// located at the file, which is not read. Shared with the git-ref reader.
pub fn too_large(shown: String, size: u64) -> Box<Problem> {
    let file = SourceFile::new(shown, String::new());
    Box::new(
        Problem::error(
            "strata::repo::too-large",
            format!(
                "the file is {} bytes, more than the {} bytes (4 MiB) Strata reads in one file",
                thousands(size),
                thousands(MAX_KDL_BYTES)
            ),
        )
        .at(&file, (0, 0).into(), "not read")
        .help("config files are a few KB: split this one (a file per machine, say), or check that it is the file you meant to commit"),
    )
}

/// A file that cannot be read, as a problem located at it.
pub fn unreadable(shown: String, why: impl std::fmt::Display) -> Box<Problem> {
    let file = SourceFile::new(shown, String::new());
    Box::new(
        Problem::error(
            "strata::repo::unreadable",
            format!("cannot read the file: {why}"),
        )
        .at(&file, (0, 0).into(), "cannot be read")
        .help("check that the file is readable by the user running strata"),
    )
}

impl Sources {
    fn failed(&mut self, problem: Problem) {
        self.unread
            .extend(problem.at.as_ref().map(|at| at.file.name.clone()));
        self.problems.push(problem);
    }
}

/// Reads one KDL file, refusing it unread when larger than [`MAX_KDL_BYTES`] (and when
/// it grows past that while being read).
fn read(path: &Path, shown: String) -> Result<Arc<SourceFile>, Box<Problem>> {
    let read_at_most = || -> io::Result<Result<Vec<u8>, u64>> {
        let file = fs::File::open(path)?;
        let size = file.metadata()?.len();
        if size > MAX_KDL_BYTES {
            return Ok(Err(size));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(MAX_KDL_BYTES + 1).read_to_end(&mut bytes)?;
        Ok(match bytes.len() as u64 {
            n if n > MAX_KDL_BYTES => Err(n),
            _ => Ok(bytes),
        })
    };
    match read_at_most() {
        Ok(Ok(bytes)) => not_utf8(shown, bytes),
        Ok(Err(size)) => Err(too_large(shown, size)),
        Err(cause) => Err(unreadable(shown, cause)),
    }
}

/// Reads a repo directory or a list of files and directories, naming the files found in
/// a single directory relative to it. See [`read_paths_named`].
pub fn read_paths(paths: &[PathBuf]) -> Result<Sources, ReadError> {
    read_paths_named(paths, Names::InRepo)
}

/// Reads a repo directory or a list of files and directories. Directories are walked
/// recursively in path order, skipping hidden entries and following symbolic links (see
/// [`walk`]); `schemas/` at a directory's top holds section schemas. A path that cannot
/// be read fails the whole read; a file under it that cannot be read or decoded is one
/// of [`Sources::problems`].
pub fn read_paths_named(paths: &[PathBuf], names: Names) -> Result<Sources, ReadError> {
    let mut out = Sources::default();
    let from_here = names == Names::FromHere || paths.len() > 1;
    for path in paths {
        let meta = fs::metadata(path).map_err(|cause| ReadError {
            path: path.display().to_string(),
            cause,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, path, &mut Vec::new(), &mut files)?;
            files.sort();
            for rel in files {
                let shown = shown_name(path, &rel, from_here);
                match read(&path.join(&rel), shown) {
                    Ok(file) if rel.starts_with("schemas") => out.schemas.push(file),
                    Ok(file) => out.kdl.push(file),
                    Err(failed) => out.failed(*failed),
                }
            }
        } else if path.extension().is_some_and(|e| e == "kdl") {
            match read(path, path.display().to_string()) {
                Ok(file) => out.kdl.push(file),
                Err(failed) => out.failed(*failed),
            }
        } else {
            out.other.push(path.clone());
        }
    }
    Ok(out)
}

/// The name of `rel` under `root`: as is, or joined to the root as given (without `./`
/// steps, so `.` adds nothing and annotations match the checkout's paths).
fn shown_name(root: &Path, rel: &Path, from_here: bool) -> String {
    if from_here {
        let joined: PathBuf = root
            .join(rel)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect();
        joined.display().to_string()
    } else {
        rel.display().to_string()
    }
}

/// Collects the `*.kdl` files under `dir` (relative to `root`, as the walk reached them),
/// skipping hidden entries. A symbolic link is followed, to a file or a directory, inside
/// the repo or out of it, as `git` and editors see the tree; a link to a directory that
/// is being walked already (`machines/loop -> ..`) is refused, and so is a broken link:
/// skipping either silently would read a repo with parts missing ("0 machines").
/// `ancestors` holds the canonical paths of the directories being walked.
fn walk(
    root: &Path,
    dir: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> Result<(), ReadError> {
    let fail = |path: &Path, cause: io::Error| ReadError {
        path: path.display().to_string(),
        cause,
    };
    let real = fs::canonicalize(dir).map_err(|e| fail(dir, e))?;
    if let Some(outer) = ancestors.iter().find(|a| **a == real) {
        return Err(fail(
            dir,
            io::Error::other(format!(
                "a symbolic link loop: it leads back to {}, which is being read already; \
                 remove the link or point it elsewhere",
                outer.display()
            )),
        ));
    }
    ancestors.push(real);
    let mut entries: Vec<fs::DirEntry> = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| fail(dir, e))? {
        entries.push(entry.map_err(|e| fail(dir, e))?);
    }
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let mut kind = entry.file_type().map_err(|e| fail(&path, e))?;
        if kind.is_symlink() {
            kind = fs::metadata(&path)
                .map_err(|e| {
                    let target = fs::read_link(&path)
                        .map_or(String::new(), |t| format!(" to {}", t.display()));
                    fail(
                        &path,
                        io::Error::new(e.kind(), format!("a broken symbolic link{target}: {e}")),
                    )
                })?
                .file_type();
        }
        if kind.is_dir() {
            walk(root, &path, ancestors, out)?;
        } else if path.extension().is_some_and(|e| e == "kdl") {
            // Paths under the root are always relative to it.
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    ancestors.pop();
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cluster.kdl"), "cluster \"a\"\n").unwrap();
        fs::create_dir_all(dir.path().join("shared/machines")).unwrap();
        fs::write(
            dir.path().join("shared/machines/lab1.kdl"),
            "machine \"lab1\"\n",
        )
        .unwrap();
        dir
    }

    fn names(sources: &Sources) -> Vec<&str> {
        sources.kdl.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn a_symlinked_directory_is_read_under_the_links_name() {
        let dir = repo();
        symlink("shared/machines", dir.path().join("machines")).unwrap();
        // And one outside the repo, as a checkout might link a shared directory.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("g.kdl"), "group \"g\"\n").unwrap();
        symlink(outside.path(), dir.path().join("groups")).unwrap();
        let sources = read_paths(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            names(&sources),
            [
                "cluster.kdl",
                "groups/g.kdl",
                "machines/lab1.kdl",
                "shared/machines/lab1.kdl"
            ]
        );
    }

    #[test]
    fn a_link_loop_and_a_broken_link_are_refused_naming_the_link() {
        let dir = repo();
        symlink("..", dir.path().join("shared/machines/up")).unwrap();
        let err = read_paths(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(err.path.ends_with("shared/machines/up"), "{err}");
        assert!(err.to_string().contains("symbolic link loop"), "{err}");
        fs::remove_file(dir.path().join("shared/machines/up")).unwrap();

        symlink("no-such-dir", dir.path().join("machines")).unwrap();
        let err = read_paths(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(err.path.ends_with("machines"), "{err}");
        assert!(
            err.to_string()
                .contains("broken symbolic link to no-such-dir"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_a_problem_at_its_first_bad_byte() {
        let dir = repo();
        fs::write(dir.path().join("bad.kdl"), b"// ok\n// caf\xe9\n").unwrap();
        let sources = read_paths(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(names(&sources), ["cluster.kdl", "shared/machines/lab1.kdl"]);
        assert_eq!(sources.unread, ["bad.kdl"]);
        let p = &sources.problems[0];
        assert_eq!(p.code, "strata::repo::not-utf8");
        assert_eq!(p.line_col(), Some((2, 7)));
        assert!(p.message.contains("0xE9"), "{}", p.message);
    }

    #[test]
    fn files_can_be_named_from_the_current_directory() {
        let dir = repo();
        let sources = read_paths_named(&[dir.path().join(".")], Names::FromHere).unwrap();
        let want = dir.path().join("cluster.kdl").display().to_string();
        assert_eq!(names(&sources)[0], want);
        assert_eq!(
            shown_name(Path::new("."), Path::new("a.kdl"), true),
            "a.kdl"
        );
    }
}
