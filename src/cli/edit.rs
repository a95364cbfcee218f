//! `strata copy`, `strata move` and `strata delete`: compute the edit (pure, in
//! [`crate::edit`]), write the changed files atomically, report files and notices.

use std::path::Path;

use super::args::{CopyArgs, DeleteArgs, Format};
use super::files::{NewFile, write_all};
use super::json::{EditJson, ProblemJson};
use super::output::Output;
use super::{CliError, Failure, Outcome, load_valid};
use crate::edit::{Edit, GroupEdit, GroupOutcome, Request, Target, edit, parse_mode};

/// Runs `strata copy`.
pub fn copy(args: CopyArgs, out: &Output) -> Result<Outcome, CliError> {
    let request = Request::Copy {
        from: args.from.parse().map_err(boxed)?,
        to: target(&args)?,
        section: args.section,
    };
    run(&args.repo.repo, &request, out)
}

/// Runs `strata move`.
pub fn move_(args: CopyArgs, out: &Output) -> Result<Outcome, CliError> {
    if args.from == "factory" {
        return Err(Failure::new(
            format!(
                "a factory default cannot be moved: no mode defines `{}` there",
                args.section
            ),
            format!(
                "`strata copy {} --from factory --to {}` writes it at {}",
                args.section, args.to, args.to
            ),
        ));
    }
    let request = Request::Move {
        from: parse_mode(&args.from).map_err(boxed)?,
        to: target(&args)?,
        section: args.section,
    };
    run(&args.repo.repo, &request, out)
}

/// `--to`, with `--replace-existing` (which only `all-groups` takes).
fn target(args: &CopyArgs) -> Result<Target, CliError> {
    match args.to.parse().map_err(boxed)? {
        Target::AllGroups { .. } => Ok(Target::AllGroups {
            replace_existing: args.replace_existing,
        }),
        Target::Mode(m) if args.replace_existing => Err(Failure::new(
            format!("--replace-existing is for `--to all-groups`, not {m}"),
            format!("a copy to {m} replaces what it defines anyway; drop --replace-existing"),
        )),
        t => Ok(t),
    }
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
        Target::AllGroups { .. } => "every group".into(),
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
        out.json(&EditJson {
            summary: summary(request),
            changed: names.iter().map(|n| (*n).to_owned()).collect(),
            notices: result.notices.clone(),
            left_blank: result.left_blank.clone(),
            groups: result.groups.clone(),
            problems: result.problems.iter().map(ProblemJson::of).collect(),
        });
        return;
    }
    let mut text = if names.is_empty() {
        "No files changed\n".to_owned()
    } else {
        format!("{}\n", summary(request))
    };
    text.push_str(&group_lines(request, result));
    for name in &names {
        text.push_str(&format!("  changed {name}\n"));
    }
    for notice in &result.notices {
        text.push_str(notice);
        text.push('\n');
    }
    out.print(&text);
}

/// What became of each group of a copy or move to every group, one line each.
fn group_lines(request: &Request, result: &Edit) -> String {
    let section = match request {
        Request::Copy { section, .. } | Request::Move { section, .. } => section,
        Request::Delete { .. } => return String::new(),
    };
    let own = |g: &GroupEdit| {
        g.own
            .as_deref()
            .map_or(String::new(), |at| format!(" ({at})"))
    };
    let mut lines = Vec::new();
    for g in &result.groups {
        let what = match g.outcome {
            GroupOutcome::Copied => "copied".to_owned(),
            GroupOutcome::Replaced => format!("replaced its own {section}{}", own(g)),
            GroupOutcome::Same => format!("already defines the same {section}: left as it is"),
            GroupOutcome::Source => format!("the source: keeps its {section}"),
            GroupOutcome::Skipped => format!(
                "skipped: defines its own {section}{}; --replace-existing replaces it",
                own(g)
            ),
        };
        lines.push(format!("  group:{}\t{what}", g.group));
    }
    crate::text::columns(lines)
}
