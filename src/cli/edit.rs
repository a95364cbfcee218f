//! `strata copy`, `strata move` and `strata delete`: compute the edit (pure, in
//! [`crate::edit`]), write the changed files atomically, report files and notices.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::{CopyArgs, DeleteArgs, Format};
use super::output::{Output, problem_json};
use super::{CliError, Failure, Outcome, load_valid};
use crate::edit::{Edit, FileChange, Request, Target, edit, parse_mode};

/// Runs `strata copy`.
pub fn copy(args: CopyArgs, out: &Output) -> Result<Outcome, CliError> {
    let request = Request::Copy {
        section: args.section,
        from: parse_mode(&args.from).map_err(boxed)?,
        to: args.to.parse().map_err(boxed)?,
    };
    run(&args.repo.repo, &request, out)
}

/// Runs `strata move`.
pub fn move_(args: CopyArgs, out: &Output) -> Result<Outcome, CliError> {
    let request = Request::Move {
        section: args.section,
        from: parse_mode(&args.from).map_err(boxed)?,
        to: args.to.parse().map_err(boxed)?,
    };
    run(&args.repo.repo, &request, out)
}

/// Runs `strata delete`.
pub fn delete(args: DeleteArgs, out: &Output) -> Result<Outcome, CliError> {
    let request = Request::Delete {
        section: args.section,
        at: parse_mode(&args.at).map_err(boxed)?,
    };
    run(&args.repo.repo, &request, out)
}

fn boxed(e: crate::edit::EditError) -> CliError {
    Box::new(e)
}

fn run(dir: &Path, request: &Request, out: &Output) -> Result<Outcome, CliError> {
    let checked = load_valid(dir, out)?;
    let result = edit(&checked.repo, &checked.catalogue, request).map_err(boxed)?;
    write_all(dir, &result.changes)?;
    report(request, &result, out);
    Ok(Outcome::Ok)
}

/// "Copied dns from cluster to group:Rome", for the summary.
fn summary(request: &Request) -> String {
    let to = |t: &Target| match t {
        Target::Mode(m) => m.to_string(),
        Target::AllGroups => "every group".into(),
    };
    match request {
        Request::Copy {
            section,
            from,
            to: t,
        } => format!("Copied {section} from {from} to {}", to(t)),
        Request::Move {
            section,
            from,
            to: t,
        } => format!("Moved {section} from {from} to {}", to(t)),
        Request::Delete { section, at } => format!("Deleted {section} at {at}"),
    }
}

fn report(request: &Request, result: &Edit, out: &Output) {
    let names: Vec<&str> = result.changes.iter().map(|c| c.name.as_str()).collect();
    if out.format == Format::Json {
        out.json(&json!({
            "summary": summary(request),
            "changed": names,
            "notices": result.notices,
            "problems": result.problems.iter().map(problem_json).collect::<Vec<_>>(),
        }));
        return;
    }
    let mut text = if names.is_empty() {
        "No files changed\n".to_owned()
    } else {
        format!("{}\n", summary(request))
    };
    for name in &names {
        text.push_str(&format!("  changed {name}\n"));
    }
    for notice in &result.notices {
        text.push_str(notice);
        text.push('\n');
    }
    out.print(&text);
}

/// Writes every changed file, as close to all-or-nothing as a file system allows: each
/// new text goes to a hidden temporary file next to its target (synced), and only when
/// all are written are they renamed over the targets. A file that changed on disk since
/// it was read is not overwritten.
fn write_all(dir: &Path, changes: &[FileChange]) -> Result<(), CliError> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for change in changes {
        let path = dir.join(&change.name);
        match stage(&path, change) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(err) => {
                cleanup(&staged);
                return Err(err);
            }
        }
    }
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            cleanup(&staged[i..]);
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
                        "already written: {}; `git diff` shows the partial edit",
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

/// Writes `change.after` to a temporary file beside `path` and returns its path.
fn stage(path: &Path, change: &FileChange) -> Result<PathBuf, CliError> {
    let fail = |what: &str, e: std::io::Error| {
        Failure::new(
            format!("cannot {what} {}: {e}", path.display()),
            "no file was changed",
        )
    };
    let current = fs::read_to_string(path).map_err(|e| fail("read", e))?;
    if current != change.before {
        return Err(Failure::new(
            format!(
                "{} changed on disk while strata was editing it",
                path.display()
            ),
            "no file was changed; run the command again",
        ));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.strata-{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(change.after.as_bytes())?;
        if let Ok(meta) = fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write a temporary file for", e));
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &str, before: &str, after: &str) -> FileChange {
        FileChange {
            name: name.into(),
            before: before.into(),
            after: after.into(),
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
                change("a.kdl", "one", "uno"),
                change("groups/b.kdl", "two", "dos"),
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
            &[change("a.kdl", "one", "uno"), change("b.kdl", "two", "dos")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("a.kdl")).unwrap(), "one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
