//! Writing a set of repo files all or nothing, as far as a file system allows: every
//! target directory is made and every new text written to a synced temporary file beside
//! its target before the first rename; a failure before then leaves the repo as it was.
//! Used by the commands that edit a repo (`copy`/`move`/`delete`, `import-xml`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{CliError, Failure};

/// One file to write.
#[derive(Debug, Clone, Copy)]
pub struct NewFile<'a> {
    /// Its path, relative to the repo directory.
    pub rel: &'a str,
    /// Its new text.
    pub text: &'a str,
    /// The text it must still have on disk (edits of files read earlier); `None` writes
    /// whatever is there, or creates it.
    pub expect: Option<&'a str>,
}

/// Writes every file, or none if anything fails before the renames begin.
pub fn write_all(dir: &Path, files: &[NewFile]) -> Result<(), CliError> {
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let undo = |staged: &[(PathBuf, PathBuf)], made_dirs: &[PathBuf]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
        for d in made_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    };
    for file in files {
        let path = dir.join(file.rel);
        if let Err(err) =
            stage(dir, &path, file, &mut made_dirs).map(|tmp| staged.push((tmp, path)))
        {
            undo(&staged, &made_dirs);
            return Err(err);
        }
    }
    for (i, (tmp, path)) in staged.iter().enumerate() {
        // A rename replaces a symbolic link itself, never the file it points to.
        if let Err(e) = fs::rename(tmp, path) {
            undo(&staged[i..], &[]);
            let done: Vec<String> = staged[..i]
                .iter()
                .map(|(_, p)| p.display().to_string())
                .collect();
            return Err(Failure::new(
                format!("cannot replace {}: {e}", path.display()),
                if done.is_empty() {
                    "no file was changed".to_owned()
                } else {
                    format!(
                        "already written: {}; `git diff` shows the partial change",
                        done.join(", ")
                    )
                },
            ));
        }
        if let Some(parent) = path.parent().and_then(|p| fs::File::open(p).ok()) {
            // Makes the rename durable; not every platform can sync a directory.
            let _ = parent.sync_all();
        }
    }
    Ok(())
}

/// Makes `path`'s directory, checks `file.expect`, and writes the text to a synced
/// temporary file beside `path`, returning the temporary file's path.
fn stage(
    dir: &Path,
    path: &Path,
    file: &NewFile,
    made_dirs: &mut Vec<PathBuf>,
) -> Result<PathBuf, CliError> {
    let fail = |what: String, e: std::io::Error| {
        Failure::new(format!("{what}: {e}"), "no file was changed")
    };
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    make_dirs(&parent, made_dirs)
        .map_err(|e| fail(format!("cannot create {}", parent.display()), e))?;
    if let Some(expect) = file.expect {
        let current = fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read {}", path.display()), e))?;
        if current != expect {
            return Err(Failure::new(
                format!(
                    "{} changed on disk while strata was editing it",
                    path.display()
                ),
                "no file was changed; run the command again",
            ));
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.strata-{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(file.text.as_bytes())?;
        // Keep the mode of the file being replaced (not of a link's target).
        if let Some(meta) = fs::symlink_metadata(path).ok().filter(|m| m.is_file()) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(
            format!("cannot write a temporary file for {}", path.display()),
            e,
        ));
    }
    Ok(tmp)
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

    #[test]
    fn files_are_replaced_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("groups")).unwrap();
        fs::write(dir.path().join("a.kdl"), "one").unwrap();
        fs::write(dir.path().join("groups/b.kdl"), "two").unwrap();
        write_all(
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
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_file_changed_meanwhile_stops_everything() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.kdl"), "one").unwrap();
        fs::write(dir.path().join("b.kdl"), "edited meanwhile").unwrap();
        let err = write_all(
            dir.path(),
            &[edit("a.kdl", "one", "uno"), edit("b.kdl", "two", "dos")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("a.kdl")).unwrap(), "one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
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
        assert!(write_all(dir.path(), &files).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["machines"]);
    }
}
