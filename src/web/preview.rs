//! Preview and Confirm of an action ([`super::actions`]): the preview computes the
//! edit, writes it as a commit on the agent's config repo (not yet on the branch),
//! validates and plans it, and shows the notices (the seed's "will not affect groups …"),
//! the diff, the plan and a Confirm button; Confirm applies that commit as one change
//! set, if neither the repo nor the plan moved meanwhile.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use git2::Oid;
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use super::actions::{ActionForm, compute, may_not};
use super::change::{self, Desired};
use super::modes::{self, find_mode, section_url};
use super::page::{self, Part, csrf};
use super::session::same_token;
use super::{Shared, Viewer, blocking};
use crate::config::ModeDecl;
use crate::edit::FileChange;
use crate::schema::SectionSchema;

/// The digest of a plan's writes: what Confirm checks it is still applying.
fn plan_digest(plan: &crate::plan::Plan) -> String {
    let json = serde_json::to_vec(&plan.writes()).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Everything a preview or a confirm needs, resolved from the request.
struct Asked<'a> {
    viewer: Viewer,
    desired: &'a Desired,
    decl: &'a ModeDecl,
    schema: &'a SectionSchema,
}

impl Asked<'_> {
    /// A page about this section at this mode, with the way back to it (and to the sync
    /// status, after an apply).
    fn show(&self, status: StatusCode, body: Markup, sync_link: bool) -> Response {
        let repo = &self.desired.checked.repo;
        let title = format!(
            "{} — {}",
            self.schema.name,
            modes::title(repo, &self.decl.mode)
        );
        let back = section_url(&self.decl.mode, &self.schema.name);
        page::respond(
            status,
            page::frame(
                Some(&self.viewer),
                Part::Modes,
                &title,
                html! {
                    (body)
                    p {
                        a href=(back) { "Back to " (self.schema.name) " at " (self.decl.mode.to_string()) }
                        @if sync_link { " · " a href="/cluster" { "Sync status" } }
                    }
                },
            ),
        )
    }
}

fn checked_request<'a>(
    console: &Shared,
    viewer: Viewer,
    desired: &'a Desired,
    mode: &str,
    section: &str,
    f: &ActionForm,
) -> Result<Asked<'a>, Response> {
    if !same_token(&viewer.csrf, &f.csrf) {
        return Err(super::forbidden_csrf(&viewer));
    }
    let repo = &desired.checked.repo;
    let decl = find_mode(&viewer, repo, mode)?;
    let Some(schema) = desired.checked.catalogue.get(section) else {
        return Err(page::error(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!("unknown section `{section}`"),
            "",
        ));
    };
    if let Some(why) = may_not(&viewer, schema, console.agent.followed().as_ref()) {
        return Err(super::forbidden_role(
            &viewer,
            &format!("change {section} ({why})"),
        ));
    }
    Ok(Asked {
        viewer,
        desired,
        decl,
        schema,
    })
}

/// `POST /modes/{mode}/{section}/preview`.
pub async fn preview(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path((mode, section)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    answer(console, headers, mode, section, f, preview_page).await
}

/// Resolves a form's request, checks its token and the viewer's role, and answers it
/// with `page` off the runtime (git, the store).
async fn answer(
    console: Shared,
    headers: HeaderMap,
    mode: String,
    section: String,
    f: ActionForm,
    page: fn(&Shared, &Asked<'_>, &ActionForm) -> Response,
) -> Response {
    let (viewer, desired) = match modes::load(&console, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    blocking(
        move || match checked_request(&console, viewer, &desired, &mode, &section, &f) {
            Ok(t) => page(&console, &t, &f),
            Err(r) => r,
        },
    )
    .await
    .unwrap_or_else(|| {
        page::error(
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed; see the agent's log",
            "",
        )
    })
}

fn preview_page(console: &Shared, t: &Asked<'_>, f: &ActionForm) -> Response {
    let (repo, catalogue) = (&t.desired.checked.repo, &t.desired.checked.catalogue);
    let show = |status: StatusCode, body: Markup| t.show(status, body, false);
    let (what, edit) = match compute(repo, catalogue, t.decl, t.schema, f) {
        Ok(x) => x,
        Err(why) => return show(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    if edit.changes.is_empty() {
        return show(
            StatusCode::OK,
            html! { p { "Nothing to change: " (what) " changes no file." } },
        );
    }
    let message = format!("{what}\n\nMade in the web console of {}.", t.viewer.machine);
    let agent = &console.agent;
    let commit = match change::commit(
        agent,
        t.desired.commit,
        &edit.changes,
        &t.viewer.user,
        &message,
    ) {
        Ok(c) => c,
        Err(e) => {
            return show(
                StatusCode::INTERNAL_SERVER_ERROR,
                html! { p.error { "cannot write the commit: " (e) } },
            );
        }
    };
    let (snapshot, checked) = match change::read_commit(agent, commit) {
        Ok(x) => x,
        Err(e) => return show(StatusCode::INTERNAL_SERVER_ERROR, html! { p.error { (e) } }),
    };
    let diff = file_diff(&edit.changes);
    if checked.diags.has_errors() {
        let rendered: Vec<String> = checked
            .diags
            .problems()
            .iter()
            .map(|p| crate::config::diagnostics::render(p, 100, false))
            .collect();
        return show(
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                p.error role="alert" { "This would not be a valid config repo (" (crate::text::count(checked.diags.error_count(), "error")) "); nothing changed." }
                div.diagnostics { @for r in &rendered { (page::pre(r)) } }
                @if f.action == "text" {
                    form.action method="post" action=(format!("{}/preview", section_url(&t.decl.mode, &t.schema.name))) {
                        (csrf(&t.viewer))
                        input type="hidden" name="action" value="text";
                        fieldset {
                            legend { "Edit as KDL" }
                            textarea name="text" aria-label="KDL" spellcheck="false" { (f.text) }
                        }
                        button.primary #preview-text type="submit" { "Validate and preview…" }
                    }
                }
                h2 { "The change" }
                (page::pre(&diff))
            },
        );
    }
    let plan = match change::plan(agent, &t.viewer.authed(), &snapshot, &checked) {
        Ok(p) => p,
        Err(e) => return show(StatusCode::SERVICE_UNAVAILABLE, html! { p.error { (e) } }),
    };
    let hazards = plan.hazards(&t.viewer.machine);
    let plan_text = crate::secret::mask::mask_text(&crate::plan::render_human(&plan)).into_owned();
    let apply = format!("{}/apply", section_url(&t.decl.mode, &t.schema.name));
    show(
        StatusCode::OK,
        html! {
            p { "Preview: " strong { (what) } ", as commit " code { (modes::short(&commit.to_string())) } " by " (t.viewer.user) "." }
            @if !edit.notices.is_empty() {
                div.notice role="note" { @for n in &edit.notices { p { (n) } } }
            }
            h2 { "The change" }
            (page::pre(&diff))
            h2 { "Plan" }
            (page::pre(&plan_text))
            @if plan.is_empty() {
                p { "The cluster already runs this: nothing to apply." }
            } @else if !hazards.is_empty() {
                p.error { "Refused here, as a push would be:" }
                ul { @for h in &hazards { li { (h.to_string()) } } }
                p.help { "Apply it from the command line with the flag it names if that is what you mean." }
            } @else {
                form.action method="post" action=(apply) {
                    (csrf(&t.viewer))
                    input type="hidden" name="commit" value=(commit.to_string());
                    input type="hidden" name="plan" value=(plan_digest(&plan));
                    button.primary #confirm type="submit" { "Confirm and apply" }
                }
            }
        },
    )
}

/// The edit as a unified diff per file.
fn file_diff(changes: &[FileChange]) -> String {
    changes
        .iter()
        .map(|c| {
            similar::TextDiff::from_lines(&c.before, &c.after)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", c.name), &format!("b/{}", c.name))
                .to_string()
        })
        .collect()
}

/// `POST /modes/{mode}/{section}/apply`: applies the previewed commit.
pub async fn apply(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path((mode, section)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    answer(console, headers, mode, section, f, apply_page).await
}

fn apply_page(console: &Shared, t: &Asked<'_>, f: &ActionForm) -> Response {
    let show = |status: StatusCode, body: Markup| t.show(status, body, true);
    let stale = |why: &str| {
        show(
            StatusCode::CONFLICT,
            html! { p.error role="alert" { (why) " Nothing changed." } p.help { "Review the change again." } },
        )
    };
    let agent = &console.agent;
    let Ok(commit) = Oid::from_str(&f.commit) else {
        return stale("This confirmation names no commit.");
    };
    // Only a commit made on the branch as it is now: no second apply of an old preview.
    let parent = git2::Repository::open_bare(crate::agent::git_serve::path(agent))
        .and_then(|r| r.find_commit(commit).and_then(|c| c.parent_id(0)));
    if parent.ok() != Some(t.desired.commit) {
        return stale(
            "The config repo moved since this was previewed (or the commit is not a preview of it).",
        );
    }
    let (snapshot, checked) = match change::read_commit(agent, commit) {
        Ok(x) => x,
        Err(e) => return show(StatusCode::INTERNAL_SERVER_ERROR, html! { p.error { (e) } }),
    };
    if checked.diags.has_errors() {
        return stale("The previewed commit is not valid.");
    }
    let who = t.viewer.authed();
    let plan = match change::plan(agent, &who, &snapshot, &checked) {
        Ok(p) => p,
        Err(e) => return show(StatusCode::SERVICE_UNAVAILABLE, html! { p.error { (e) } }),
    };
    if plan_digest(&plan) != f.plan {
        return stale(
            "The cluster changed since this was previewed: the plan is no longer the one shown.",
        );
    }
    if !plan.hazards(&t.viewer.machine).is_empty() {
        return stale(
            "This plan needs the command line (it removes members or resets this machine's network).",
        );
    }
    match change::apply(agent, &who, &plan, commit) {
        Ok(id) => {
            tracing::info!(user = t.viewer.user, commit = %commit, change_set = id, "web console: applied");
            show(
                StatusCode::OK,
                html! {
                    p.ok role="status" { "Applied as change set " code { (modes::short(&id)) } " (commit " code { (modes::short(&commit.to_string())) } ")." }
                    h2 { "Machines whose config changes" }
                    ul.machines {
                        @for m in &plan.machines { li { (m.machine) } }
                    }
                },
            )
        }
        Err(e) => show(
            StatusCode::CONFLICT,
            html! { p.error role="alert" { (e) } p.help { "Nothing changed." } },
        ),
    }
}
