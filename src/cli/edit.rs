//! `strata copy`, `strata move` and `strata delete`: compute the edit (pure, in
//! [`crate::edit`]), write the changed files atomically, report files and notices.

use std::path::Path;

use serde_json::json;

use super::args::{CopyArgs, DeleteArgs, Format};
use super::files::{NewFile, write_all};
use super::output::{Output, problem_json};
use super::{CliError, Outcome, load_valid};
use crate::edit::{Edit, Request, Target, edit, parse_mode};

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
    CliError::invalid(e)
}

fn run(dir: &Path, request: &Request, out: &Output) -> Result<Outcome, CliError> {
    let checked = load_valid(dir, out)?;
    let result = edit(&checked.repo, &checked.catalogue, request).map_err(boxed)?;
    let files: Vec<NewFile> = result
        .changes
        .iter()
        .map(|c| NewFile {
            rel: &c.name,
            text: &c.after,
            expect: Some(&c.before),
        })
        .collect();
    write_all(dir, &files)?;
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
            "left_blank": result.left_blank,
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
