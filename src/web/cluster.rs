//! The cluster as the seed's GUI shows it, from the same answers the CLI gets: members
//! with their versions and reach, the links each member sees (connstatus), sync status
//! as Argo CD shows it (Synced / OutOfSync / Unknown, health, last error), check's
//! inconsistencies (resolved by administrators), the change log and the conflict log.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::modes::short;
use super::page::{self, Part, csrf};
use super::session::same_token;
use super::{Shared, Viewer, blocking};
use crate::protocol::{Request, Response as Answer};
use crate::text::utc;

/// Asks the agent, as the viewer, off the runtime.
async fn ask(console: &Shared, viewer: &Viewer, request: Request) -> Answer {
    let (agent, who) = (console.agent.clone(), viewer.authed());
    blocking(move || agent.handle(&who, request))
        .await
        .unwrap_or_else(|| Answer::Error {
            message: "the agent did not answer".into(),
            help: None,
        })
}

fn unexpected(viewer: &Viewer, answer: &Answer) -> Response {
    page::error(
        Some(viewer),
        StatusCode::SERVICE_UNAVAILABLE,
        &super::change::answer_text(answer),
        "",
    )
}

/// `GET /cluster`: sync status, members, links.
pub async fn members(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    let status = match ask(&console, &viewer, Request::Status).await {
        Answer::Status(s) => s,
        other => return unexpected(&viewer, &other),
    };
    let listing = match ask(&console, &viewer, Request::ClusterList).await {
        Answer::ClusterList(l) => l,
        other => return unexpected(&viewer, &other),
    };
    let conn = match ask(&console, &viewer, Request::ConnStatus).await {
        Answer::ConnStatus(c) => Some(c),
        _ => None,
    };
    let sync = status.sync.as_str();
    let body = html! {
        h2 { "Sync status" }
        table.sync {
            tr { th { "Sync" } td { span class={"badge " (sync)} { (sync) } " compared with " (status.compared_with) } }
            tr { th { "Health" } td { (status.last_run.health.as_str()) @if let Some(at) = status.last_run.at_ms { " (last run " (utc(at)) ")" } } }
            @if let Some(a) = &status.last_applied {
                tr { th { "Last applied" } td { "commit " code { (short(&a.commit.commit)) } " as " code { (short(&a.change_set.to_string())) } " by " (a.user) " on " (a.host) ", " (utc(a.wall_ms)) } }
            }
            @if let Some(f) = &status.source {
                tr { th { "Follows" } td { (f.url) } }
            }
            @if let Some(e) = &status.last_error {
                tr { th { "Last error" } td.error { (e) } }
            }
        }
        @if !status.reasons.is_empty() {
            h2 { "Out of sync because" }
            ul { @for r in &status.reasons { li { (r) } } }
        }
        h2 { "Members" }
        table.members {
            thead { tr { th { "Group" } th { "Machine" } th { "Address" } th { "Reach" } th { "Strata" } th { "Appliance" } } }
            tbody {
                @for g in &listing.groups {
                    @for m in &g.machines {
                        tr {
                            td { (g.name) }
                            td { (m.name) }
                            td { (m.address) }
                            td { (m.reach.as_str()) @if m.store_failure.is_some() { " " span.warn { "store failing" } } }
                            td { (m.strata_version.as_deref().unwrap_or("?")) }
                            td { (m.appliance_version.as_deref().unwrap_or("?")) }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &conn {
            h2 { "Links (connstatus)" }
            table.links {
                thead { tr { th { "Seen by" } th { "To" } th { "State" } th { "Round trip" } } }
                tbody {
                    @for v in &c.views {
                        @for l in &v.links {
                            tr {
                                td { (v.machine) }
                                td { (l.to) }
                                td {
                                    @if l.up { span.ok { "up" } }
                                    @else if let Some(via) = &l.via { "down, routed via " (via) }
                                    @else { span.error { "down" } }
                                    @if let Some(why) = &l.why { " (" (why) ")" }
                                }
                                td { @if let Some(rtt) = l.rtt_ms { (format!("{rtt:.1} ms")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(
            Some(&viewer),
            Part::Cluster,
            &format!("Cluster {}", listing.cluster.as_deref().unwrap_or("")),
            body,
        ),
    )
}

/// `GET /check`: clustercheck.
pub async fn check(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    let report = match ask(&console, &viewer, Request::Check).await {
        Answer::Check(r) => r,
        other => return unexpected(&viewer, &other),
    };
    let admin = viewer.role.may_administer();
    let body = html! {
        p.note { "Checked from " (report.checked_from.to_string()) "." }
        @if report.inconsistent.is_empty() {
            p.ok { "Every member that answered holds the same configuration." }
        } @else {
            h2 { "Inconsistencies" }
            table.inconsistent {
                thead { tr { th { "Entry" } th { "Machine" } th { "Holds" } @if admin { th { "Resolve" } } } }
                tbody {
                    @for inc in &report.inconsistent {
                        @for (machine, held) in &inc.held {
                            tr {
                                td { (inc.key.to_string()) }
                                td { (machine.to_string()) }
                                td {
                                    @match held {
                                        Some(h) => {
                                            @if h.removed { "removed" } @else { "a value" }
                                            " by " (h.stamp.meta.user) " on " (h.stamp.meta.host) ", " (utc(h.stamp.wall_ms))
                                        }
                                        None => { span.inherited { "nothing" } }
                                    }
                                }
                                @if admin {
                                    td {
                                        form method="post" action="/check/resolve" {
                                            (csrf(&viewer))
                                            input type="hidden" name="key" value=(inc.key.to_string());
                                            input type="hidden" name="host" value=(machine.to_string());
                                            button type="submit" { "Use this one" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for w in &report.warnings { p.warn { (w.message) } }
        h2 { "Machines" }
        table {
            thead { tr { th { "Machine" } th { "Reach" } th { "Answered" } th { "Change sets" } th { "Local edits" } } }
            tbody {
                @for m in &report.machines {
                    tr {
                        td { (m.machine.to_string()) }
                        td { (m.reach.as_str()) }
                        td { @if m.answered { "yes" } @else { span.error { "no" } } }
                        td { (m.change_sets.map(|n| n.to_string()).unwrap_or_default()) }
                        td { (m.local_edits.len()) }
                    }
                }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(Some(&viewer), Part::Check, "Check", body),
    )
}

/// The resolve form.
#[derive(Debug, serde::Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    key: String,
    host: String,
}

/// `POST /check/resolve`: an administrator picks the version that wins.
pub async fn resolve(
    State(console): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<ResolveForm>,
) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    if !same_token(&viewer.csrf, &f.csrf) {
        return super::forbidden_csrf(&viewer);
    }
    if !viewer.role.may_administer() {
        return super::forbidden_role(&viewer, "resolve inconsistencies");
    }
    let (Ok(key), Ok(host)) = (f.key.parse(), f.host.parse()) else {
        return page::error(
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "not an entry and a machine",
            "",
        );
    };
    match ask(&console, &viewer, Request::CheckResolve { key, host }).await {
        Answer::Applied { .. } | Answer::Unchanged => Redirect::to("/check").into_response(),
        other => unexpected(&viewer, &other),
    }
}

/// `GET /log`: the change log, newest first.
pub async fn log(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    let sets = match ask(&console, &viewer, Request::Log).await {
        Answer::Log { change_sets } => change_sets,
        other => return unexpected(&viewer, &other),
    };
    let body = html! {
        table.log {
            thead { tr { th { "#" } th { "Change set" } th { "When" } th { "Who" } th { "Source" } th { "Message" } th { "Entries" } } }
            tbody {
                @for s in sets.iter().rev() {
                    tr {
                        td { (s.seq) }
                        td { a href={"/log/" (s.id.to_string())} { code { (short(&s.id.to_string())) } } }
                        td { (utc(s.wall_ms)) }
                        td { (s.meta.user) " on " (s.meta.host) }
                        td { (source(&s.meta.source)) }
                        td { (s.meta.message.lines().next().unwrap_or("")) }
                        td { (s.keys.len()) }
                    }
                }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(Some(&viewer), Part::Log, "Change log", body),
    )
}

fn source(s: &crate::model::Source) -> Markup {
    match s {
        crate::model::Source::Git { commit } => html! { "commit " code { (short(commit)) } },
        crate::model::Source::Cli => html! { "command line" },
    }
}

/// `GET /log/{id}`: one change set — who, why, and what it wrote.
pub async fn change_set(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    let sets = match ask(&console, &viewer, Request::Log).await {
        Answer::Log { change_sets } => change_sets,
        other => return unexpected(&viewer, &other),
    };
    let Some(s) = sets.iter().find(|s| s.id.to_string() == id) else {
        return page::error(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!("no change set {id}"),
            "",
        );
    };
    let diff = match &s.meta.source {
        crate::model::Source::Git { commit } => commit_diff(&console, commit),
        crate::model::Source::Cli => None,
    };
    let body = html! {
        table {
            tr { th { "Change set" } td { code { (s.id.to_string()) } } }
            tr { th { "When" } td { (utc(s.wall_ms)) } }
            tr { th { "Who" } td { (s.meta.user) " on " (s.meta.host) } }
            tr { th { "Source" } td { (source(&s.meta.source)) } }
        }
        (page::pre(&s.meta.message))
        h2 { "Entries written" }
        ul { @for k in &s.keys { li { code { (k.to_string()) } } } }
        @if let Some(d) = diff {
            h2 { "The commit's diff" }
            (page::pre(&crate::secret::mask::mask_text(&d)))
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(
            Some(&viewer),
            Part::Log,
            &format!("Change set {}", short(&id)),
            body,
        ),
    )
}

/// The diff of a commit of the config repo against its parent, if the repo holds it.
fn commit_diff(console: &Shared, commit: &str) -> Option<String> {
    let repo = git2::Repository::open_bare(crate::agent::git_serve::path(&console.agent)).ok()?;
    let c = repo.find_commit(git2::Oid::from_str(commit).ok()?).ok()?;
    let tree = c.tree().ok()?;
    let parent = c.parent(0).ok().and_then(|p| p.tree().ok());
    let diff = repo
        .diff_tree_to_tree(parent.as_ref(), Some(&tree), None)
        .ok()?;
    let mut out = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin());
        }
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })
    .ok()?;
    Some(out)
}

/// `GET /conflicts`: the conflict log.
pub async fn conflicts(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    let lost = match ask(&console, &viewer, Request::Conflicts).await {
        Answer::Conflicts { lost, .. } => lost,
        other => return unexpected(&viewer, &other),
    };
    let body = html! {
        @if lost.is_empty() {
            p.ok { "No write was lost to a concurrent one." }
        } @else {
            table.conflicts {
                thead { tr { th { "Entry" } th { "Lost" } th { "To" } } }
                tbody {
                    @for l in &lost {
                        tr {
                            td { code { (l.key.to_string()) } }
                            td { (l.lost.meta.user) " on " (l.lost.meta.host) ", " (utc(l.lost.wall_ms)) }
                            td { (l.winner.meta.user) " on " (l.winner.meta.host) ", " (utc(l.winner.wall_ms)) }
                        }
                    }
                }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(Some(&viewer), Part::Conflicts, "Conflicts", body),
    )
}
