//! Reading pages: the mode tree (cluster → groups → machines) with the seed's "Change
//! mode" menu, a mode's sections (its own, and inherited ones greyed with where they
//! come from), and a section at a mode — its effective content, "Settings for this
//! feature are currently defined at:" with the machines each definition reaches, and
//! the actions the viewer's role allows.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::change::{self, Desired};
use super::page::{self, Part};
use super::{Shared, Viewer, blocking};
use crate::config::{ModeDecl, Repo};
use crate::model::Mode;
use crate::resolve::{Origin, at_mode, on_factory_default, where_defined};

/// A path segment with what a URL may not hold percent-encoded.
pub fn seg(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of a mode.
pub fn mode_url(mode: &Mode) -> String {
    format!("/modes/{}", seg(&mode.to_string()))
}

/// The page of a section at a mode.
pub fn section_url(mode: &Mode, section: &str) -> String {
    format!("{}/{}", mode_url(mode), seg(section))
}

/// The mode tree, `current` marked, with the "Change mode" menu.
pub fn tree(repo: &Repo, current: &Mode, section: Option<&str>) -> Markup {
    let link = |decl: &ModeDecl, label: String| {
        let href = match section {
            Some(s) => section_url(&decl.mode, s),
            None => mode_url(&decl.mode),
        };
        html! {
            @if decl.mode == *current {
                a.current href=(href) aria-current="true" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        nav.tree aria-label="Modes" {
            form method="get" action="/change-mode" {
                label for="mode" { "Change mode " }
                select #mode name="mode" {
                    @for decl in repo.modes() {
                        option value=(decl.mode.to_string()) selected[decl.mode == *current] {
                            (decl.mode.to_string())
                        }
                    }
                }
                @if let Some(s) = section { input type="hidden" name="section" value=(s); }
                " " button type="submit" { "Go" }
            }
            ul {
                @if let Some(cluster) = repo.cluster() {
                    li {
                        (link(cluster, format!("Cluster {}", repo.cluster_name().unwrap_or(""))))
                        ul {
                            @for group in &repo.groups {
                                li {
                                    (link(group, format!("Group {}", group.mode.name().unwrap_or(""))))
                                    ul {
                                        @for m in repo.machines_in(group.mode.name().unwrap_or("")) {
                                            li { (link(m, m.mode.name().unwrap_or("").to_owned())) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `?mode=…&section=…` of the "Change mode" menu.
#[derive(Debug, serde::Deserialize)]
pub struct ChangeMode {
    mode: String,
    #[serde(default)]
    section: Option<String>,
}

/// `GET /change-mode`: the menu's choice, as a redirect to the mode's page.
pub async fn change_mode(Query(q): Query<ChangeMode>) -> Response {
    match q.mode.parse::<Mode>() {
        Ok(mode) => Redirect::to(&match q.section.as_deref() {
            Some(s) if !s.is_empty() => section_url(&mode, s),
            _ => mode_url(&mode),
        })
        .into_response(),
        Err(e) => page::error(None, StatusCode::BAD_REQUEST, &e.to_string(), ""),
    }
}

/// The desired state and the viewer, or the response that says why not.
pub async fn load(console: &Shared, headers: &HeaderMap) -> Result<(Viewer, Desired), Response> {
    let Some(viewer) = console.viewer(headers) else {
        return Err(super::to_login());
    };
    let agent = console.agent.clone();
    match blocking(move || change::read(&agent)).await {
        Some(Ok(desired)) => Ok((viewer, desired)),
        Some(Err(e)) => Err(page::error(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &e,
            "",
        )),
        None => Err(page::error(
            Some(&viewer),
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the config repo failed",
            "",
        )),
    }
}

/// The declaration of the mode a URL names, or the 404 that says which exist.
pub fn find_mode<'r>(
    viewer: &Viewer,
    repo: &'r Repo,
    text: &str,
) -> Result<&'r ModeDecl, Response> {
    let not_found = |message: String| {
        page::error(
            Some(viewer),
            StatusCode::NOT_FOUND,
            &message,
            "pick one in the mode tree",
        )
    };
    let mode: Mode = text
        .parse()
        .map_err(|e: crate::model::ModeParseError| not_found(e.to_string()))?;
    repo.mode(&mode)
        .ok_or_else(|| not_found(format!("the config repo declares no {mode}")))
}

/// `GET /modes/{mode}`: the sections at a mode.
pub async fn mode(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(mode): Path<String>,
) -> Response {
    let (viewer, desired) = match load(&console, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (repo, catalogue) = (&desired.checked.repo, &desired.checked.catalogue);
    let decl = match find_mode(&viewer, repo, &mode) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let rows: Vec<_> = catalogue
        .sections
        .values()
        .filter(|s| s.allows(decl.mode.level()))
        .map(|schema| (schema, at_mode(repo, decl, schema)))
        .collect();
    let body = html! {
        div.layout {
            (tree(repo, &decl.mode, None))
            section {
                p.note { "Commit " code { (short(&desired.commit.to_string())) } " of this agent's config repo. " (decl.location()) }
                table {
                    thead { tr { th { "Section" } th { "AsyncOS" } th { "Defined" } } }
                    tbody {
                        @for (schema, eff) in &rows {
                            @let here = matches!(eff.origin, Origin::Mode(d, _) if d.mode == decl.mode);
                            tr class=[(!here).then_some("inherited")] {
                                td { a href=(section_url(&decl.mode, &schema.name)) { (schema.name) } }
                                td { (schema.command) }
                                td {
                                    @match eff.origin {
                                        Origin::Mode(d, s) if d.mode == decl.mode => { "here (" (s.location()) ")" }
                                        Origin::Mode(d, _) => { "inherited from " a href=(section_url(&d.mode, &schema.name)) { (d.mode.to_string()) } }
                                        Origin::Factory => { "factory default" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame(Some(&viewer), Part::Modes, &title(repo, &decl.mode), body),
    )
}

/// "Cluster americas", "Group Paris", "Machine lab1.example.com".
pub fn title(repo: &Repo, mode: &Mode) -> String {
    match mode {
        Mode::Cluster => format!("Cluster {}", repo.cluster_name().unwrap_or("")),
        Mode::Group(g) => format!("Group {g}"),
        Mode::Machine(m) => format!("Machine {m}"),
    }
}

/// The first ten hex digits of a commit.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// `GET /modes/{mode}/{section}`: a section at a mode.
pub async fn section(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path((mode, section)): Path<(String, String)>,
) -> Response {
    let (viewer, desired) = match load(&console, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (repo, catalogue) = (&desired.checked.repo, &desired.checked.catalogue);
    let decl = match find_mode(&viewer, repo, &mode) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(schema) = catalogue.get(&section) else {
        return page::error(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!("unknown section `{section}`"),
            &catalogue.unknown_section_help(&section),
        );
    };
    let followed = console.agent.followed();
    let body = html! {
        div.layout {
            (tree(repo, &decl.mode, Some(&schema.name)))
            section {
                (section_view(repo, catalogue, decl, schema))
                (super::actions::forms(&viewer, repo, catalogue, decl, schema, followed.as_ref()))
            }
        }
    };
    let title = format!("{} — {}", schema.name, title(repo, &decl.mode));
    page::respond(
        StatusCode::OK,
        page::frame(Some(&viewer), Part::Modes, &title, body),
    )
}

/// A section's effective content at a mode and where it is defined.
pub fn section_view(
    repo: &Repo,
    catalogue: &crate::schema::Catalogue,
    decl: &ModeDecl,
    schema: &crate::schema::SectionSchema,
) -> Markup {
    let eff = at_mode(repo, decl, schema);
    let defined = where_defined(repo, catalogue, &schema.name);
    let reached: usize = defined.iter().map(|(_, m)| m.len()).sum();
    let on_factory: Vec<&str> = on_factory_default(repo, &defined)
        .iter()
        .filter_map(|m| m.mode.name())
        .collect();
    html! {
        p.note { "AsyncOS " code { (schema.command) } " — " (schema.levels_text()) }
        @match eff.origin {
            Origin::Mode(d, s) if d.mode == decl.mode => {
                h2 { "Defined at this mode" }
                p.note { (s.location()) }
                pre.own { (page::shown(&eff.node.to_canonical())) }
            }
            Origin::Mode(d, s) => {
                h2 { "Inherited" }
                p.inherited { "From " a href=(section_url(&d.mode, &schema.name)) { (d.mode.to_string()) } " (" (s.location()) "): this mode does not define it." }
                pre.inherited { (page::shown(&eff.node.to_canonical())) }
            }
            Origin::Factory => {
                h2 { "Factory default" }
                p.inherited { "No mode this one inherits from defines it." }
                pre.inherited { (page::shown(&eff.node.to_canonical())) }
            }
        }
        h2 { "Settings for this feature are currently defined at:" }
        @if defined.is_empty() {
            p { "No mode: every machine runs the factory default." }
        } @else {
            table.defined-at {
                thead { tr { th { "Mode" } th { "Where" } th { "Machines it reaches" } } }
                tbody {
                    @for (d, machines) in &defined {
                        tr {
                            td { a href=(section_url(&d.mode, &schema.name)) { (d.mode.to_string()) } }
                            td { (d.section(&schema.name).map(|s| s.location()).unwrap_or_default()) }
                            td {
                                @if machines.is_empty() { span.inherited { "none (overridden below)" } }
                                @else { (machines.iter().filter_map(|m| m.mode.name()).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
            @if reached < repo.machines.len() {
                p.inherited { "On the factory default: " (on_factory.join(", ")) }
            }
        }
    }
}
