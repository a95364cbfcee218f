//! Checking an edit before it is handed out, and saying what it means: the changed files
//! must parse and declare exactly what the plan intended; the edited repo is validated
//! again and its new problems returned (errors refuse the edit, warnings are told); then
//! the notices (shadowing, inheritance, and machines a move or delete leaves on an empty
//! factory default).

use std::collections::HashSet;

use super::{EditError, FileChange, Plan, all_modes};
use crate::config::{Diagnostics, ModeDecl, Problem, Repo, SourceFile, parse_files};
use crate::model::{Mode, Node};
use crate::resolve::{shadowed_by, where_defined};
use crate::schema::Catalogue;
use crate::validate::validate;

/// What an edit means, besides its files: see [`super::Edit`].
pub(super) struct Checked {
    pub notices: Vec<String>,
    pub problems: Vec<Problem>,
    pub left_blank: Vec<String>,
}

/// Re-parses and re-validates the edited repo; returns the notices, new problems and the
/// machines left on an empty factory default.
pub(super) fn check(
    repo: &Repo,
    catalogue: &Catalogue,
    plan: &Plan,
    changes: &[FileChange],
) -> Result<Checked, EditError> {
    let internal = |message: String| EditError::Internal { message };
    for change in changes {
        let old = parse_alone(&change.name, &change.before);
        let new = parse_alone(&change.name, &change.after);
        if let Some(p) = new
            .problems()
            .iter()
            .find(|p| !old.problems().iter().any(|o| same(o, p)))
        {
            return Err(internal(format!(
                "the edited {} would not parse: {} (at {})",
                change.name,
                p.message,
                p.line_col().map_or("?".into(), |(l, c)| format!("{l}:{c}")),
            )));
        }
    }
    let files = repo
        .files
        .iter()
        .map(|f| match changes.iter().find(|c| c.name == f.name) {
            Some(c) => SourceFile::new(c.name.clone(), c.after.clone()),
            None => f.clone(),
        })
        .collect();
    let edited = parse_files(files, &mut Diagnostics::default());
    if let Some(message) = mismatch(&expected(repo, plan), &declared(&edited)) {
        return Err(internal(format!(
            "the edited files do not say what was intended: {message}"
        )));
    }

    let mut before = Diagnostics::default();
    validate(repo, catalogue, &mut before);
    let mut after = Diagnostics::default();
    validate(&edited, catalogue, &mut after);
    after.sort();
    let problems: Vec<Problem> = after
        .into_problems()
        .into_iter()
        .filter(|p| !before.problems().iter().any(|o| same(o, p)))
        .collect();

    let mut notices = notices(&edited, catalogue, plan);
    let left_blank = left_blank(repo, &edited, catalogue, plan);
    if let Some(warning) = blank_warning(plan, &left_blank) {
        notices.push(warning);
    }
    for p in &problems {
        let at = p.at.as_ref().map_or(String::new(), |l| {
            let (line, _) = l.file.line_col(l.span.offset());
            format!(" ({}:{line})", l.file.name)
        });
        let help = p.help.as_ref().map_or(String::new(), |h| format!("; {h}"));
        // Errors refuse the edit (see `super::edit`); warnings are told.
        if !p.is_error() {
            notices.push(format!("Warning: {}{at}{help}", p.message));
        }
    }
    Ok(Checked {
        notices,
        problems,
        left_blank,
    })
}

/// How many machine names a warning lists before "and N more".
const NAMES_SHOWN: usize = 10;

/// The machines that got `plan.section` from the mode it is removed at and, after the
/// edit, get its factory default — when that default is empty and what they had was not:
/// the seed's warning that moving a setting with no factory default (a HAT, SMTP routes,
/// LDAP profiles) leaves the machines inheriting it with blank tables.
fn left_blank(before: &Repo, edited: &Repo, catalogue: &Catalogue, plan: &Plan) -> Vec<String> {
    let (Some(removed), Some(schema)) = (plan.removed, catalogue.get(plan.section)) else {
        return Vec::new();
    };
    let had_something = removed
        .section(plan.section)
        .is_some_and(|s| !s.node.is_empty());
    if !schema.default.is_empty() || !had_something {
        return Vec::new();
    }
    let reached: Vec<&str> = where_defined(before, catalogue, plan.section)
        .into_iter()
        .find(|(d, _)| std::ptr::eq(*d, removed))
        .map(|(_, machines)| machines.iter().filter_map(|m| m.mode.name()).collect())
        .unwrap_or_default();
    let defined_after: HashSet<&str> = where_defined(edited, catalogue, plan.section)
        .into_iter()
        .flat_map(|(_, machines)| machines)
        .filter_map(|m| m.mode.name())
        .collect();
    reached
        .into_iter()
        .filter(|m| !defined_after.contains(m))
        .map(str::to_owned)
        .collect()
}

fn blank_warning(plan: &Plan, machines: &[String]) -> Option<String> {
    let removed = plan.removed?;
    if machines.is_empty() {
        return None;
    }
    let section = plan.section;
    let mut names = machines[..machines.len().min(NAMES_SHOWN)].join(", ");
    if machines.len() > NAMES_SHOWN {
        names.push_str(&format!(" and {} more", machines.len() - NAMES_SHOWN));
    }
    let (who, verb) = if machines.len() == 1 {
        ("machine", "has")
    } else {
        ("machines", "have")
    };
    let help = if plan.copied.is_some() {
        "to give only the destination its own, `strata copy` it there instead of moving it"
    } else {
        "define it where those machines inherit from, or undo the edit (`git checkout`)"
    };
    Some(format!(
        "Warning: {section} has no factory default: {who} {names} got it from {} and now {verb} an empty {section}, \
         and a machine left with blank tables will probably not process email; {help}",
        removed.mode
    ))
}

fn parse_alone(name: &str, text: &str) -> Diagnostics {
    let mut diags = Diagnostics::default();
    parse_files(vec![SourceFile::new(name, text)], &mut diags);
    diags
}

/// Two problems say the same thing (positions aside: the edit moves text around).
fn same(a: &Problem, b: &Problem) -> bool {
    a.code == b.code && a.message == b.message && a.severity == b.severity
}

/// One mode node as declared: its mode, machine properties and section contents.
type Declared = Vec<(Mode, [Option<String>; 3], Vec<Node>)>;

fn props(d: &ModeDecl) -> [Option<String>; 3] {
    [
        d.group.as_ref().map(|g| g.value.clone()),
        d.address.as_ref().map(|a| a.value.clone()),
        d.serial.clone(),
    ]
}

fn declared(repo: &Repo) -> Declared {
    all_modes(repo)
        .map(|d| {
            (
                d.mode.clone(),
                props(d),
                d.sections.iter().map(|s| s.node.clone()).collect(),
            )
        })
        .collect()
}

/// What the repo should declare after the plan: the copied node replaces the target's
/// own or comes last; the deleted one is gone.
fn expected(repo: &Repo, plan: &Plan) -> Declared {
    all_modes(repo)
        .map(|d| {
            let mut nodes: Vec<Node> = d.sections.iter().map(|s| s.node.clone()).collect();
            let here = |n: &Node| n.name == plan.section;
            if let Some((src, targets)) = &plan.copied
                && targets.iter().any(|t| std::ptr::eq(*t, d))
            {
                match nodes.iter().position(here) {
                    Some(i) => nodes[i] = src.node.clone(),
                    None => nodes.push(src.node.clone()),
                }
            }
            if plan.removed.is_some_and(|r| std::ptr::eq(r, d))
                && let Some(i) = nodes.iter().position(here)
            {
                nodes.remove(i);
            }
            (d.mode.clone(), props(d), nodes)
        })
        .collect()
}

fn mismatch(want: &Declared, got: &Declared) -> Option<String> {
    if want.len() != got.len() {
        return Some(format!(
            "{} instead of {}",
            crate::text::count(got.len(), "mode node"),
            want.len()
        ));
    }
    want.iter().zip(got).find(|(w, g)| w != g).map(|(w, g)| {
        let names = |nodes: &[Node]| {
            nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if w.0 != g.0 || w.1 != g.1 {
            format!("{} became {}", w.0, g.0)
        } else {
            format!(
                "{} would define [{}] instead of [{}]",
                w.0,
                names(&g.2),
                names(&w.2)
            )
        }
    })
}

/// Shadowing notes for each target, what a mode now inherits, replaced definitions.
fn notices(edited: &Repo, catalogue: &Catalogue, plan: &Plan) -> Vec<String> {
    let section = plan.section;
    let mut out = Vec::new();
    // A copy to every group says what became of each group in its summary instead.
    let one_target = plan.groups.is_empty();
    for decl in plan.unchanged.iter().filter(|_| one_target) {
        out.push(format!(
            "{} already defines the same {section}: left as it is",
            decl.mode
        ));
    }
    if let Some((_, targets)) = &plan.copied {
        for decl in targets.iter().filter(|_| one_target) {
            if let Some(old) = decl.section(section) {
                out.push(format!(
                    "Replaced the {section} that {} defined ({})",
                    decl.mode,
                    old.location()
                ));
            }
        }
        let mut seen = HashSet::new();
        for decl in targets.iter().chain(&plan.unchanged) {
            let shadows: Vec<String> = shadowed_by(edited, &decl.mode, section)
                .iter()
                .map(|d| d.mode.to_string())
                .filter(|m| seen.insert((decl.mode.clone(), m.clone())))
                .collect();
            if !shadows.is_empty() {
                out.push(format!(
                    "Note: changes to {section} at {} will not affect the following groups and machines because they define their own: {}",
                    decl.mode,
                    shadows.join(", ")
                ));
            }
        }
    }
    if let Some(decl) = plan.removed {
        let from = inherited(edited, catalogue, &decl.mode, section);
        out.push(format!(
            "{} no longer defines {section}: it now inherits {from}",
            decl.mode
        ));
    }
    out
}

/// Where `mode` gets `section` from when it does not define it: the nearest mode above
/// that does, else the factory default.
fn inherited(repo: &Repo, catalogue: &Catalogue, mode: &Mode, section: &str) -> String {
    let allowed = |d: &ModeDecl| {
        catalogue
            .get(section)
            .is_some_and(|s| s.allows(d.mode.level()))
    };
    let mut chain: Vec<&ModeDecl> = Vec::new();
    if let Mode::Machine(_) = mode
        && let Some(group) = repo.mode(mode).and_then(|m| repo.group(m.group_name()))
    {
        chain.push(group);
    }
    if !matches!(mode, Mode::Cluster) {
        chain.extend(repo.cluster());
    }
    chain
        .into_iter()
        .filter(|d| allowed(d))
        .find_map(|d| {
            d.section(section)
                .map(|s| format!("from {} ({})", d.mode, s.location()))
        })
        .unwrap_or_else(|| "the factory default".into())
}
