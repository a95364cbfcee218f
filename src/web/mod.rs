//! The web console: the seed's GUI, served by the agent over HTTPS (`agent.kdl`'s `web
//! listen=`), GitOps-native. People log in with the cluster's users (the same hashes,
//! delays and budgets as SSH); pages are rendered on the server and work without
//! JavaScript; every edit becomes a commit on the agent's config repo, validated,
//! planned, shown and — once confirmed — applied as one change set, the way a push goes.
//!
//! - [`tls`]: the certificate (made on first start, or the operator's) and rustls.
//! - [`session`]: session cookies and CSRF tokens.
//! - `login`: the login form and logout.
//! - `modes`: the mode tree, a mode's sections, a section with where it is defined.
//! - `actions`: the seed's edits — override, copy, move, delete, edit as KDL — as forms
//!   and as file changes; `preview` shows each with its plan, then commits and applies it.
//! - `cluster`: members, links, sync status, check, the change log, conflicts.
//! - `change`: reading the config repo, committing an edit, planning and applying it.
//! - `serve`: binding, TLS handshakes (bounded, admitted per address), HTTP.
//!
//! Roles are checked on the server for every request: read-only users see everything
//! and change nothing, operators change settings, administrators also users and
//! membership; the role is looked up at each request, not kept in the session.

mod actions;
mod change;
mod cluster;
mod login;
mod modes;
mod page;
mod preview;
mod serve;
pub mod session;
pub mod tls;

pub use serve::{Bound, bind};

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::agent::Agent;
use crate::cluster::Authed;
use crate::cluster::users::Role;
use session::Sessions;

/// The file in the state dir that says where the console listens (`ADDR:PORT`), once it
/// does.
pub const ADDRESS_FILE: &str = "web.address";

/// The console of one agent.
pub struct Console {
    agent: Arc<Agent>,
    sessions: Sessions,
}

/// Who is asking: a logged-in user with the role they have now.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// Their role, looked up for this request.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
    /// The machine this console runs on.
    pub machine: String,
}

impl Viewer {
    /// The caller requests to the agent are made as.
    pub fn authed(&self) -> Authed {
        Authed::user(self.user.clone(), self.role)
    }
}

/// Shared with every handler.
type Shared = Arc<Console>;

impl Console {
    /// The logged-in user of a request, if its session is open and the account still
    /// may log in.
    fn viewer(&self, headers: &HeaderMap) -> Option<Viewer> {
        let id = session::id_of(headers)?;
        let s = self.sessions.get(id, Instant::now())?;
        let role = self.agent.node.auth.role_of(&s.user)?;
        Some(Viewer {
            user: s.user,
            role,
            csrf: s.csrf,
            machine: self.agent.state.settings.machine.clone(),
        })
    }
}

/// The response for a request without a session: to the login page.
fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn router(console: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/modes/cluster") }))
        .route("/console.css", get(css))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/change-mode", get(modes::change_mode))
        .route("/modes/{mode}", get(modes::mode))
        .route("/modes/{mode}/{section}", get(modes::section))
        .route("/modes/{mode}/{section}/preview", post(preview::preview))
        .route("/modes/{mode}/{section}/apply", post(preview::apply))
        .route("/cluster", get(cluster::members))
        .route("/check", get(cluster::check))
        .route("/check/resolve", post(cluster::resolve))
        .route("/log", get(cluster::log))
        .route("/log/{id}", get(cluster::change_set))
        .route("/conflicts", get(cluster::conflicts))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(guard))
        .with_state(console)
}

/// Around every request: a form posted from another site is refused (its `Origin` is
/// not this console's; the CSRF token would refuse it too, and the login form has
/// none), and every answer says how long the server took (`Server-Timing: app;dur=MS`,
/// which browsers' developer tools and the console's benchmark read).
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    if request.method() == axum::http::Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let same = match (origin.to_str().ok(), host) {
            (Some(origin), Some(host)) => origin == format!("https://{host}"),
            _ => false,
        };
        if !same {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return page::error(
                None,
                StatusCode::FORBIDDEN,
                &format!(
                    "This form was posted from another site ({origin}, not https://{}); nothing changed.",
                    host.unwrap_or("?")
                ),
                "Behind a proxy, keep the Host header the browser sent.",
            );
        }
    }
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = header::HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

async fn css() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::CSS,
    )
        .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=300"),
    );
    r
}

async fn not_found(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let viewer = console.viewer(&headers);
    page::error(
        viewer.as_ref(),
        StatusCode::NOT_FOUND,
        "There is no such page.",
        "",
    )
}

/// Runs blocking work (the store, git, argon2's queue aside) off the runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// The answer to a form without the session's CSRF token.
fn forbidden_csrf(viewer: &Viewer) -> Response {
    page::error(
        Some(viewer),
        StatusCode::FORBIDDEN,
        "This form did not come from this console session (its CSRF token is missing or wrong); nothing changed.",
        "Reload the page and submit the form again.",
    )
}

/// The answer to a change a role may not make.
fn forbidden_role(viewer: &Viewer, what: &str) -> Response {
    page::error(
        Some(viewer),
        StatusCode::FORBIDDEN,
        &format!(
            "{} is {}: {} may not {what}; nothing changed.",
            viewer.user,
            viewer.role.as_str(),
            viewer.role.as_str()
        ),
        "Ask an operator or an administrator.",
    )
}
