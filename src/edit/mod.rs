//! Editing sections in place, as AsyncOS `clusterset` does: copy or move a section from
//! one mode to another (or to every group), copy a section's factory default to a mode
//! (the seed's "start with default settings"), or delete it at a mode so the mode
//! inherits again.
//!
//! Pure: [`edit`] takes the parsed repo and the catalogue and returns the new text of
//! each file it changes; the CLI writes them. Edits are text splices on the original
//! text at the declarations' spans, so every byte outside the touched section survives:
//! comments, blank lines, odd indentation. A section node travels with the `//` lines
//! directly above it and a trailing comment on its last line. Every edit is checked
//! before it is returned: the changed files are parsed again and must declare exactly
//! what was intended (else [`EditError::Internal`], and nothing is changed), and the
//! edited repo is validated again: an edit that would leave it invalid (a delete of the
//! `interfaces` a listener names, a copied listener whose interface the target lacks —
//! what the seed cautions about) is refused with the errors it would cause
//! ([`EditError::Invalidates`]); new warnings come back as notices.

mod error;
mod layout;
mod request;
mod splice;
mod verify;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::EditError;
pub use request::{CopySource, Request, Target, parse_mode};
use splice::{Splice, Text};

use crate::config::diagnostics::did_you_mean;
use crate::config::{ModeDecl, Problem, Repo, SectionDecl, SourceFile};
use crate::model::{Level, Mode};
use crate::schema::{Catalogue, SectionSchema};

/// What a copy or move to every group did to one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOutcome {
    /// It did not define the section; now it does.
    Copied,
    /// It defined its own, which was replaced (`replace_existing`).
    Replaced,
    /// It already defined the same: left as it is.
    Same,
    /// The source of the copy or move: it keeps the section.
    Source,
    /// It defines its own, which it keeps (no `replace_existing`).
    Skipped,
}

/// One group of a copy or move to every group, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct GroupEdit {
    /// The group.
    pub group: String,
    /// What happened to it.
    pub outcome: GroupOutcome,
    /// Where its own definition is (was, when replaced): `file:line`.
    pub own: Option<String>,
}

/// The new text of one changed file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// The file's name, as in [`SourceFile::name`] (relative to the repo root).
    pub name: String,
    /// Its text before the edit.
    pub before: String,
    /// Its text after the edit.
    pub after: String,
}

/// The result of an edit: the files to write and what to tell the operator.
#[derive(Debug, Clone)]
pub struct Edit {
    /// Each changed file, in repo order (empty when there is nothing to change).
    pub changes: Vec<FileChange>,
    /// Lines for the operator: shadowing notes, what a mode now inherits, warnings.
    pub notices: Vec<String>,
    /// Warnings the edited repo has and the original did not; each is also a notice.
    /// (New errors refuse the edit: [`EditError::Invalidates`].)
    pub problems: Vec<Problem>,
    /// Machines that got the section from the mode a move or delete takes it from and now
    /// get an empty factory default, where they had something (the seed: blank tables
    /// "will probably not process email"); a warning among the notices names them.
    pub left_blank: Vec<String>,
    /// For a copy or move to every group: each declared group, in repo order, and what
    /// happened to it (empty otherwise).
    pub groups: Vec<GroupEdit>,
}

/// What an edit does, in terms of declarations; `verify` checks the result against it.
struct Plan<'r> {
    section: &'r str,
    /// The section node copied, and the modes it is put into.
    copied: Option<(&'r SectionDecl, Vec<&'r ModeDecl>)>,
    /// Targets skipped because they already define the same contents.
    unchanged: Vec<&'r ModeDecl>,
    /// The mode the section is deleted at.
    removed: Option<&'r ModeDecl>,
    /// For a copy or move to every group: what happens to each group.
    groups: Vec<(&'r ModeDecl, GroupOutcome)>,
}

/// Computes an edit. Nothing is written; see [`Edit`].
pub fn edit(repo: &Repo, catalogue: &Catalogue, request: &Request) -> Result<Edit, EditError> {
    let section = request.section();
    let schema = catalogue
        .get(section)
        .ok_or_else(|| EditError::UnknownSection {
            section: section.to_owned(),
            help: catalogue.unknown_section_help(section),
        })?;
    let factory: SectionDecl;
    let plan = match request {
        Request::Copy {
            from: CopySource::Mode(from),
            to,
            ..
        } => copy_plan(
            repo,
            schema,
            "copy",
            source_of(repo, schema, from)?,
            Some(from),
            to,
        )?,
        Request::Copy {
            from: CopySource::Factory,
            to,
            ..
        } => {
            factory = factory_default(schema)?;
            copy_plan(repo, schema, "copy", &factory, None, to)?
        }
        Request::Move { from, to, .. } => {
            let src = source_of(repo, schema, from)?;
            let mut plan = copy_plan(repo, schema, "move", src, Some(from), to)?;
            // A group moving a section to every group is one of them: it keeps it.
            let source_is_a_target =
                matches!(to, Target::AllGroups { .. }) && matches!(from, Mode::Group(_));
            if !source_is_a_target {
                plan.removed = plan
                    .copied
                    .as_ref()
                    .map(|_| find_mode(repo, from))
                    .transpose()?;
            }
            plan
        }
        Request::Delete { at, .. } => {
            let decl = find_mode(repo, at)?;
            if decl.section(section).is_none() {
                return Err(EditError::NothingToDelete {
                    section: section.to_owned(),
                    mode: at.clone(),
                    help: where_help(repo, section),
                });
            }
            Plan {
                section: &schema.name,
                copied: None,
                unchanged: Vec::new(),
                removed: Some(decl),
                groups: Vec::new(),
            }
        }
    };
    let changes = splice_files(repo, &plan)?;
    let checked = verify::check(repo, catalogue, &plan, &changes)?;
    let errors: Vec<Problem> = checked
        .problems
        .iter()
        .filter(|p| p.is_error())
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(EditError::Invalidates {
            what: describe(request),
            count: crate::text::count(errors.len(), "error"),
            problems: errors,
        });
    }
    let groups = plan
        .groups
        .iter()
        .map(|(decl, outcome)| GroupEdit {
            group: decl.mode.name().unwrap_or_default().to_owned(),
            outcome: *outcome,
            own: match outcome {
                GroupOutcome::Replaced | GroupOutcome::Skipped => {
                    decl.section(plan.section).map(SectionDecl::location)
                }
                _ => None,
            },
        })
        .collect();
    Ok(Edit {
        changes,
        notices: checked.notices,
        problems: checked.problems,
        left_blank: checked.left_blank,
        groups,
    })
}

/// The section node `from` defines, or why there is none.
fn source_of<'r>(
    repo: &'r Repo,
    schema: &SectionSchema,
    from: &Mode,
) -> Result<&'r SectionDecl, EditError> {
    let section = schema.name.as_str();
    find_mode(repo, from)?
        .section(section)
        .ok_or_else(|| EditError::NotDefined {
            section: section.to_owned(),
            mode: from.clone(),
            help: where_help(repo, section),
        })
}

/// The schema's factory default as a section node of its own little file (`factory
/// default`), in canonical KDL: a source to copy from like any other.
fn factory_default(schema: &SectionSchema) -> Result<SectionDecl, EditError> {
    let body: String = schema
        .default
        .to_canonical()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let text = format!("cluster \"factory\" {{\n{body}}}\n");
    let mut diags = crate::config::Diagnostics::default();
    let parsed =
        crate::config::parse_files(vec![SourceFile::new("factory default", text)], &mut diags);
    parsed
        .clusters
        .first()
        .and_then(|(d, _)| d.sections.first())
        .filter(|s| s.node == schema.default && !diags.has_errors())
        .cloned()
        .ok_or_else(|| EditError::Internal {
            message: format!(
                "the factory default of `{}` does not read back",
                schema.name
            ),
        })
}

/// Plans putting `src` (which `from` defines, or the factory default) at `to`.
fn copy_plan<'r>(
    repo: &'r Repo,
    schema: &'r SectionSchema,
    verb: &'static str,
    src: &'r SectionDecl,
    from: Option<&Mode>,
    to: &Target,
) -> Result<Plan<'r>, EditError> {
    let section = schema.name.as_str();
    let same = |d: &ModeDecl| d.section(section).is_some_and(|s| s.node == src.node);
    let mode = match to {
        Target::Mode(mode) => mode,
        Target::AllGroups { replace_existing } => {
            allowed(schema, Level::Group, "every group")?;
            if repo.groups.iter().all(|g| Some(&g.mode) == from) {
                return Err(EditError::NoOtherGroups {
                    verb,
                    section: section.to_owned(),
                });
            }
            let groups: Vec<(&ModeDecl, GroupOutcome)> = repo
                .groups
                .iter()
                .map(|g| {
                    let outcome = if Some(&g.mode) == from {
                        GroupOutcome::Source
                    } else if g.section(section).is_none() {
                        GroupOutcome::Copied
                    } else if same(g) {
                        GroupOutcome::Same
                    } else if *replace_existing {
                        GroupOutcome::Replaced
                    } else {
                        GroupOutcome::Skipped
                    };
                    (g, outcome)
                })
                .collect();
            let with = |wanted: &[GroupOutcome]| -> Vec<&ModeDecl> {
                groups
                    .iter()
                    .filter(|(_, o)| wanted.contains(o))
                    .map(|(g, _)| *g)
                    .collect()
            };
            return Ok(Plan {
                section,
                copied: Some((src, with(&[GroupOutcome::Copied, GroupOutcome::Replaced]))),
                unchanged: with(&[GroupOutcome::Same]),
                removed: None,
                groups,
            });
        }
    };
    if Some(mode) == from {
        return Err(EditError::SameMode {
            verb,
            section: section.to_owned(),
            mode: mode.clone(),
        });
    }
    let decl = find_mode(repo, mode)?;
    allowed(schema, mode.level(), &mode.to_string())?;
    let (unchanged, targets) = if same(decl) {
        (vec![decl], vec![])
    } else {
        (vec![], vec![decl])
    };
    Ok(Plan {
        section,
        copied: Some((src, targets)),
        unchanged,
        removed: None,
        groups: Vec::new(),
    })
}

/// "deleting `interfaces` at machine:lab1.example.com", for refusals.
fn describe(request: &Request) -> String {
    let to = |t: &Target| match t {
        Target::Mode(m) => m.to_string(),
        Target::AllGroups { .. } => "every group".into(),
    };
    match request {
        Request::Copy {
            section,
            from,
            to: t,
        } => {
            format!("copying `{section}` from {from} to {}", to(t))
        }
        Request::Move {
            section,
            from,
            to: t,
        } => {
            format!("moving `{section}` from {from} to {}", to(t))
        }
        Request::Delete { section, at } => format!("deleting `{section}` at {at}"),
    }
}

/// Refuses a target level the section's schema does not allow (restricted commands).
fn allowed(schema: &SectionSchema, level: Level, target: &str) -> Result<(), EditError> {
    if schema.allows(level) {
        return Ok(());
    }
    let levels: Vec<&str> = schema.levels.iter().map(|l| l.as_str()).collect();
    let help = match levels.as_slice() {
        [] => format!("`{}` may not be defined at any level", schema.name),
        [one] => format!("`{}` may only be defined at {one} level", schema.name),
        _ => format!(
            "`{}` may be defined at {} level",
            schema.name,
            levels.join(" or ")
        ),
    };
    Err(EditError::LevelNotAllowed {
        section: schema.name.clone(),
        levels: schema.levels_text(),
        command: schema.command.clone(),
        target: target.to_owned(),
        help,
    })
}

/// The declaration of `mode`, or an error suggesting a near name.
fn find_mode<'r>(repo: &'r Repo, mode: &Mode) -> Result<&'r ModeDecl, EditError> {
    if let Some(decl) = repo.mode(mode) {
        return Ok(decl);
    }
    let unknown = |help: String| EditError::UnknownMode {
        mode: mode.clone(),
        help,
    };
    let (same, other, other_kind) = match mode {
        Mode::Cluster => return Err(unknown("the repo declares no `cluster` node".into())),
        Mode::Group(_) => (&repo.groups, &repo.machines, "machine"),
        Mode::Machine(_) => (&repo.machines, &repo.groups, "group"),
    };
    let wanted = mode.name().unwrap_or_default();
    let names: Vec<&str> = same.iter().filter_map(|d| d.mode.name()).collect();
    let level = mode.level();
    if let Some(s) = did_you_mean(wanted, names.iter().copied()) {
        return Err(unknown(format!("did you mean `{level}:{s}`?")));
    }
    if other.iter().any(|d| d.mode.name() == Some(wanted)) {
        return Err(unknown(format!(
            "`{wanted}` is a {other_kind}: write `{other_kind}:{wanted}`"
        )));
    }
    Err(unknown(if names.is_empty() {
        format!("the repo declares no {level}")
    } else {
        format!("declared {level}s: {}", names.join(", "))
    }))
}

/// "`dns` is defined at cluster, group:Paris", for refusals.
fn where_help(repo: &Repo, section: &str) -> String {
    let modes: Vec<String> = repo
        .modes()
        .filter(|d| d.section(section).is_some())
        .map(|d| d.mode.to_string())
        .collect();
    if modes.is_empty() {
        format!("no mode defines `{section}`: every machine has its factory default")
    } else {
        format!("`{section}` is defined at {}", modes.join(", "))
    }
}

/// Every mode node, duplicates included, in repo order.
fn all_modes(repo: &Repo) -> impl Iterator<Item = &ModeDecl> {
    repo.clusters
        .iter()
        .map(|(d, _)| d)
        .chain(&repo.groups)
        .chain(&repo.machines)
}

/// The splices of a plan, applied file by file.
fn splice_files(repo: &Repo, plan: &Plan) -> Result<Vec<FileChange>, EditError> {
    let texts: BTreeMap<&str, Text> = repo
        .files
        .iter()
        .map(|f| (f.name.as_str(), Text::new(f.text.as_str())))
        .collect();
    let text_of = |file: &Arc<SourceFile>| {
        texts
            .get(file.name.as_str())
            .ok_or_else(|| EditError::Internal {
                message: format!("{} is not among the repo's files", file.name),
            })
    };
    let mut splices: BTreeMap<&str, Vec<Splice>> = BTreeMap::new();
    if let Some((src, targets)) = &plan.copied {
        // Read from the source's own file: a factory default's is not the repo's.
        let from = Text::new(src.file.text.as_str());
        for dst in targets {
            let to = text_of(&dst.file)?;
            let same_file = all_modes(repo).filter(|d| d.file.name == dst.file.name);
            let unit = splice::indent_unit(to.text, same_file);
            let s = splice::put(&from, src, to, dst, &unit);
            splices.entry(dst.file.name.as_str()).or_default().push(s);
        }
    }
    if let Some(decl) = plan.removed {
        let section = decl
            .section(plan.section)
            .ok_or_else(|| EditError::Internal {
                message: format!("{} lost `{}` while planning", decl.mode, plan.section),
            })?;
        let s = splice::remove(text_of(&decl.file)?, decl, section);
        splices.entry(decl.file.name.as_str()).or_default().push(s);
    }
    let mut changes = Vec::new();
    for file in &repo.files {
        let Some(list) = splices.remove(file.name.as_str()) else {
            continue;
        };
        let after = splice::apply(&file.text, list).map_err(|message| EditError::Internal {
            message: format!("{}: {message}", file.name),
        })?;
        if after != *file.text {
            changes.push(FileChange {
                name: file.name.clone(),
                before: file.text.to_string(),
                after,
            });
        }
    }
    Ok(changes)
}
