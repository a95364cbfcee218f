//! The seed's actions on a section at a mode: "Override settings" (start with the
//! factory default, or copy from a mode), "Manage settings" (copy, move or delete to
//! another mode, copy to all groups) and editing the section's KDL — the forms a section
//! page shows as the viewer's role allows, and what each asks as file changes
//! ([`crate::edit`], or a splice of the section's text). [`super::preview`] shows and
//! applies them.

use maud::{Markup, html};

use super::Viewer;
use super::modes::section_url;
use super::page::{self, csrf};
use crate::cluster::caller::Followed;
use crate::config::{ModeDecl, Repo};
use crate::edit::{self, CopySource, FileChange, Target};
use crate::model::Level;
use crate::schema::{Catalogue, SectionSchema};

/// A form of the section page, or of the preview's Confirm.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub(super) csrf: String,
    /// `override`, `copy`, `move`, `delete` or `text`.
    #[serde(default)]
    pub(super) action: String,
    /// Override: `factory` or the mode to copy from.
    #[serde(default)]
    pub(super) from: String,
    /// Copy or move: a mode, or `all-groups`.
    #[serde(default)]
    pub(super) to: String,
    /// Copy or move to every group: replace the groups' own definitions too.
    #[serde(default)]
    pub(super) replace_existing: Option<String>,
    /// Edit: the section's new KDL.
    #[serde(default)]
    pub(super) text: String,
    /// Confirm: the previewed commit.
    #[serde(default)]
    pub(super) commit: String,
    /// Confirm: the digest of the previewed plan's writes.
    #[serde(default)]
    pub(super) plan: String,
}

/// Why the viewer may not change this section here, if they may not.
pub(super) fn may_not(
    viewer: &Viewer,
    schema: &SectionSchema,
    followed: Option<&Followed>,
) -> Option<String> {
    if let Some(f) = followed {
        return Some(format!(
            "{}: edit the config in git, and the follower applies it",
            f.by
        ));
    }
    if !viewer.role.may_apply() {
        return Some(format!(
            "{} is {}, which reads and changes nothing",
            viewer.user,
            viewer.role.as_str()
        ));
    }
    if schema.name == "users" && !viewer.role.may_administer() {
        return Some("only administrators change users".into());
    }
    None
}

/// The action forms of a section page, as the viewer's role allows.
pub fn forms(
    viewer: &Viewer,
    repo: &Repo,
    catalogue: &Catalogue,
    decl: &ModeDecl,
    schema: &SectionSchema,
    followed: Option<&Followed>,
) -> Markup {
    if let Some(why) = may_not(viewer, schema, followed) {
        return html! { h2 { "Actions" } p.note { "Editing is off: " (why) "." } };
    }
    let here = decl.section(&schema.name);
    let preview = format!("{}/preview", section_url(&decl.mode, &schema.name));
    let sources: Vec<&ModeDecl> = crate::resolve::where_defined(repo, catalogue, &schema.name)
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| d.mode != decl.mode)
        .collect();
    let targets: Vec<&ModeDecl> = repo
        .modes()
        .filter(|d| d.mode != decl.mode && schema.allows(d.mode.level()))
        .collect();
    let groups_allowed = schema.allows(Level::Group);
    html! {
        h2 { "Actions" }
        @match here {
            None => {
                form.action method="post" action=(preview) {
                    (csrf(viewer))
                    input type="hidden" name="action" value="override";
                    fieldset {
                        legend { "Override settings" }
                        label { input type="radio" name="from" value="factory" checked; " Start with the factory default" }
                        br;
                        @for s in &sources {
                            label { input type="radio" name="from" value=(s.mode.to_string()); " Copy from " (s.mode.to_string()) }
                            br;
                        }
                    }
                    button.primary #override type="submit" { "Override…" }
                }
            }
            Some(s) => {
                form.action method="post" action=(preview) {
                    (csrf(viewer))
                    fieldset {
                        legend { "Manage settings" }
                        select name="action" aria-label="Action" {
                            option value="copy" { "Copy" }
                            option value="move" { "Move" }
                        }
                        " to "
                        select name="to" aria-label="Target" {
                            @if groups_allowed { option value="all-groups" { "all groups" } }
                            @for t in &targets { option value=(t.mode.to_string()) { (t.mode.to_string()) } }
                        }
                        " "
                        label { input type="checkbox" name="replace_existing" value="yes"; " replace groups' own (all groups)" }
                    }
                    button.primary #manage type="submit" { "Preview…" }
                }
                form.action method="post" action=(preview) {
                    (csrf(viewer))
                    input type="hidden" name="action" value="delete";
                    fieldset { legend { "Delete" } p.note { "Delete " (schema.name) " at " (decl.mode.to_string()) "; it then inherits." } }
                    button #delete type="submit" { "Delete…" }
                }
                @if hides_something(schema, s) {
                    p.note { "This section holds secrets or passphrase hashes, which the console never shows: edit it in git (`strata secret encrypt`, `strata cluster passwd`)." }
                } @else {
                form.action method="post" action=(preview) {
                    (csrf(viewer))
                    input type="hidden" name="action" value="text";
                    fieldset {
                        legend { "Edit as KDL" }
                        textarea name="text" aria-label="KDL" spellcheck="false" { (own_text(s)) }
                    }
                    button.primary #preview-text type="submit" { "Validate and preview…" }
                }
                }
            }
        }
    }
}

/// Whether the section holds what the console never shows — passphrase hashes (the
/// `users` section) or secrets — so that it is not offered for editing as text.
fn hides_something(schema: &SectionSchema, s: &crate::config::SectionDecl) -> bool {
    let text = own_text(s);
    schema.name == "users" || page::shown(&text) != text
}

/// The section's text as written in its file, its indentation removed.
fn own_text(s: &crate::config::SectionDecl) -> String {
    let text = s.file.text.as_str();
    let (start, end) = (
        s.node.span.offset(),
        s.node.span.offset() + s.node.span.len(),
    );
    let indent = indentation(text, start);
    text[start..end.min(text.len())]
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                line
            } else {
                line.strip_prefix(indent.as_str()).unwrap_or(line)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whitespace before the node on its line.
fn indentation(text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect()
}

/// What a form asks, as file changes and notices, or why it cannot be made.
pub(super) fn compute(
    repo: &Repo,
    catalogue: &Catalogue,
    decl: &ModeDecl,
    schema: &SectionSchema,
    f: &ActionForm,
) -> Result<(String, edit::Edit), Markup> {
    let section = schema.name.clone();
    let mode = decl.mode.clone();
    let target = |to: &str| -> Result<Target, Markup> {
        match to.parse::<Target>() {
            Ok(Target::AllGroups { .. }) => Ok(Target::AllGroups {
                replace_existing: f.replace_existing.is_some(),
            }),
            Ok(t) => Ok(t),
            Err(e) => Err(edit_error(&e)),
        }
    };
    let (what, request) = match f.action.as_str() {
        "override" => {
            let from: CopySource = f.from.parse().map_err(|e| edit_error(&e))?;
            (
                format!("override {section} at {mode}, starting with {from}"),
                edit::Request::Copy {
                    section,
                    from,
                    to: Target::Mode(mode),
                },
            )
        }
        "copy" | "move" => {
            let to = target(&f.to)?;
            let to_text = match &to {
                Target::Mode(m) => m.to_string(),
                Target::AllGroups { .. } => "all groups".into(),
            };
            let what = format!("{} {section} from {mode} to {to_text}", f.action);
            let request = if f.action == "copy" {
                edit::Request::Copy {
                    section,
                    from: CopySource::Mode(mode),
                    to,
                }
            } else {
                edit::Request::Move {
                    section,
                    from: mode,
                    to,
                }
            };
            (what, request)
        }
        "delete" => (
            format!("delete {section} at {mode}"),
            edit::Request::Delete { section, at: mode },
        ),
        "text"
            if decl
                .section(&schema.name)
                .is_some_and(|s| hides_something(schema, s)) =>
        {
            return Err(
                html! { p.error { "this section holds secrets or passphrase hashes, which the console never shows: edit it in git" } },
            );
        }
        "text" => return text_edit(decl, schema, &f.text),
        other => {
            return Err(html! { p.error { "unknown action `" (other) "`" } });
        }
    };
    match edit::edit(repo, catalogue, &request) {
        Ok(e) => Ok((what, e)),
        Err(e) => Err(edit_error(&e)),
    }
}

/// Replaces the section's node at the mode with `text` (validated with the whole repo
/// afterwards, like any commit).
pub(super) fn text_edit(
    decl: &ModeDecl,
    schema: &SectionSchema,
    text: &str,
) -> Result<(String, edit::Edit), Markup> {
    let Some(s) = decl.section(&schema.name) else {
        return Err(
            html! { p.error { (schema.name) " is not defined at " (decl.mode.to_string()) ": override it first" } },
        );
    };
    let before = s.file.text.as_str();
    let (start, end) = (
        s.node.span.offset(),
        s.node.span.offset() + s.node.span.len(),
    );
    let indent = indentation(before, start);
    let text = text.replace("\r\n", "\n");
    let replacement = text
        .trim()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_owned()
            } else {
                format!("{indent}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let after = format!(
        "{}{replacement}{}",
        &before[..start],
        &before[end.min(before.len())..]
    );
    let changes = if after == before {
        Vec::new()
    } else {
        vec![FileChange {
            name: s.file.name.clone(),
            before: before.to_owned(),
            after,
        }]
    };
    Ok((
        format!("edit {} at {}", schema.name, decl.mode),
        edit::Edit {
            changes,
            notices: Vec::new(),
            problems: Vec::new(),
            left_blank: Vec::new(),
            groups: Vec::new(),
        },
    ))
}

fn edit_error(e: &edit::EditError) -> Markup {
    use miette::Diagnostic;
    let problems: Vec<String> = match e {
        edit::EditError::Invalidates { problems, .. } => problems
            .iter()
            .map(|p| crate::config::diagnostics::render(p, 100, false))
            .collect(),
        _ => Vec::new(),
    };
    html! {
        p.error role="alert" { (e.to_string()) }
        @if let Some(help) = e.help() { p.help { (help.to_string()) } }
        @for p in &problems { (page::pre(p)) }
    }
}
