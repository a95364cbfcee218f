//! The frame of every page (navigation, who is logged in, logout), the error page, and
//! the pieces pages share. maud escapes every interpolated value, so a section value
//! holding `<script>` is shown as text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Viewer;

/// The stylesheet, served at `/console.css` (no inline styles: the content security
/// policy allows none).
pub const CSS: &str = include_str!("console.css");

/// Security headers every page carries: nothing from elsewhere, no inline script or
/// style, no framing, no caching of pages that show configuration.
pub fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not no-referrer: with it, browsers send `Origin: null` on the console's own forms,
        // which the same-origin check below them would refuse.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Which part of the console a page belongs to (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Modes and sections.
    Modes,
    /// Members, links and sync status.
    Cluster,
    /// clustercheck.
    Check,
    /// The change log.
    Log,
    /// The conflict log.
    Conflicts,
    /// Login and errors.
    None,
}

/// A whole page.
pub fn frame(viewer: Option<&Viewer>, part: Part, title: &str, body: Markup) -> Markup {
    let nav = [
        (Part::Modes, "/modes/cluster", "Modes"),
        (Part::Cluster, "/cluster", "Cluster"),
        (Part::Check, "/check", "Check"),
        (Part::Log, "/log", "Change log"),
        (Part::Conflicts, "/conflicts", "Conflicts"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Strata" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    span.brand { "Strata" }
                    @if let Some(v) = viewer {
                        nav {
                            @for (p, href, label) in nav {
                                @if p == part {
                                    a.current href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        span.who {
                            (v.user) " · " (v.role.as_str()) " · " (v.machine)
                        }
                        form.logout method="post" action="/logout" {
                            (csrf(v))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field every form carries.
pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A page's response: status, security headers, HTML.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    secure((status, axum::response::Html(page.into_string())).into_response())
}

/// An error page: what went wrong and what to do.
pub fn error(viewer: Option<&Viewer>, status: StatusCode, message: &str, help: &str) -> Response {
    respond(
        status,
        frame(
            viewer,
            Part::None,
            status.canonical_reason().unwrap_or("Error"),
            html! {
                p.error { (message) }
                @if !help.is_empty() { p.help { (help) } }
                p { a href="/modes/cluster" { "Back to the modes" } }
            },
        ),
    )
}

/// Text shown as it is (KDL, diagnostics, plans, diffs): secrets masked, passphrase
/// hashes hidden, escaped.
pub fn pre(text: &str) -> Markup {
    html! { pre { (shown(text)) } }
}

/// What a page may show of `text`: every age armoured secret masked, as every output
/// masks them, and every argon2 passphrase hash replaced — a hash is never rendered.
pub fn shown(text: &str) -> String {
    let masked = crate::secret::mask::mask_text(text);
    let mut out = String::with_capacity(masked.len());
    let mut rest: &str = &masked;
    while let Some(at) = rest.find("$argon2") {
        out.push_str(&rest[..at]);
        out.push_str(HIDDEN_HASH);
        let end = rest[at..]
            .find(|c: char| c == '"' || c.is_whitespace())
            .map_or(rest.len(), |e| at + e);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// What a passphrase hash shows as.
pub const HIDDEN_HASH: &str = "(passphrase hash hidden)";
