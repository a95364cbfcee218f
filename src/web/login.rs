//! The login form and logout. A login is checked the way SSH checks a passphrase
//! ([`crate::agent::server::password`]): the same hashes, refusal delays and budgets, so
//! guessing through the console costs what it costs over SSH. A successful login opens
//! a new session (a new id: a cookie set before login is never reused).

use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::Shared;
use super::page::{self, Part};
use super::serve::Peer;
use super::session::{self, same_token};
use crate::agent::server::password::{self, Login};

/// How long a login may take, waiting out holds included, before it is answered as not
/// checked.
const LOGIN_DEADLINE: Duration = Duration::from_secs(10);

/// The login form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    user: String,
    passphrase: String,
}

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
}

fn login_page(status: StatusCode, user: &str, message: Option<&str>) -> Response {
    page::respond(
        status,
        page::frame(None, Part::None, "Log in", form_body(user, message)),
    )
}

fn form_body(user: &str, message: Option<&str>) -> Markup {
    html! {
        form.login method="post" action="/login" {
            @if let Some(m) = message { p.error role="alert" { (m) } }
            label for="user" { "User" }
            input #user type="text" name="user" value=(user) autocomplete="username" required autofocus;
            label for="passphrase" { "Passphrase" }
            input #passphrase type="password" name="passphrase" autocomplete="current-password" required;
            p { button.primary type="submit" { "Log in" } }
            p.note { "The cluster's users log in here as they do over SSH." }
        }
    }
}

/// `GET /login`.
pub async fn form(State(console): State<Shared>, headers: HeaderMap) -> Response {
    if console.viewer(&headers).is_some() {
        return Redirect::to("/modes/cluster").into_response();
    }
    login_page(StatusCode::OK, "", None)
}

/// `POST /login`.
pub async fn submit(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Form(f): Form<LoginForm>,
) -> Response {
    let started = tokio::time::Instant::now();
    let agent = &console.agent;
    let ip = Some(peer.ip());
    let outcome = password::check(
        agent,
        ip,
        &f.user,
        &f.passphrase,
        started,
        started + LOGIN_DEADLINE,
    )
    .await;
    match outcome {
        Login::Accepted(role) => {
            agent.node.auth.accepted(ip, &f.user);
            tracing::info!(%peer, user = f.user, role = role.as_str(), method = "web", "login accepted");
            let id = console.sessions.open(&f.user, Instant::now());
            let mut r = Redirect::to("/modes/cluster").into_response();
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            page::secure(r)
        }
        Login::NotChecked(why, retry_in) => {
            tracing::warn!(%peer, user = f.user, method = "web", "login not checked: {why}");
            let mut r = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &f.user,
                Some(&format!(
                    "Not checked {why}: try again in {} s.",
                    retry_in.as_secs().max(1)
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_in.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Login::Refused => login_page(
            StatusCode::UNAUTHORIZED,
            &f.user,
            Some("Wrong user or passphrase."),
        ),
    }
}

/// `POST /logout`.
pub async fn logout(
    State(console): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let Some(viewer) = console.viewer(&headers) else {
        return super::to_login();
    };
    if !same_token(&viewer.csrf, &f.csrf) {
        return super::forbidden_csrf(&viewer);
    }
    if let Some(id) = session::id_of(&headers) {
        console.sessions.close(id);
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    page::secure(r)
}
