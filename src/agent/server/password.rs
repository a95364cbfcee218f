//! A passphrase login, one way for every door: SSH's password method
//! ([`super::client`]) and the web console's login form ([`crate::web`]). The
//! same argon2 hashes, the same growing refusal delays, the same per-address and
//! per-user budgets ([`crate::cluster::auth`]).

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::agent::Agent;
use crate::cluster::auth::Checked;
use crate::cluster::penalties::MAX_HOLD;
use crate::cluster::users::Role;
use crate::protocol::login_delay::{AFTER_FAILURES, BUSY};

/// What an argon2 check may take, waiting its turn included, when deciding whether a
/// held attempt can still be answered before the login's deadline.
const CHECK_ALLOWANCE: Duration = Duration::from_secs(1);

/// How a passphrase login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The passphrase is the user's: they have this role. Not yet recorded as accepted
    /// (the caller does, with [`crate::cluster::auth::Auth::accepted`]).
    Accepted(Role),
    /// Not checked: the address (or the user) must wait this long first, for the reason
    /// given ([`AFTER_FAILURES`], [`BUSY`]). Guesses meanwhile cost nothing.
    NotChecked(&'static str, Duration),
    /// Wrong user or passphrase; recorded, and answered no earlier than the refusal
    /// delay, so the time argon2 took does not show.
    Refused,
}

/// Checks `user`'s `passphrase` from `ip`, answering no earlier than `hold` on a refusal
/// and giving up (not checked) when the answer could not come before `deadline`.
pub async fn check(
    agent: &Agent,
    ip: Option<IpAddr>,
    user: &str,
    passphrase: &str,
    hold: Instant,
    deadline: Instant,
) -> Login {
    let started = Instant::now();
    let auth = &agent.node.auth;
    // An address whose own refusals earned a delay is told to wait it out, unchecked:
    // its guesses cost nothing and it learns when to come back.
    let wait = auth.address_delay(ip);
    if !wait.is_zero() {
        return Login::NotChecked(AFTER_FAILURES, wait);
    }
    // Refusals for this user from elsewhere are waited out before any hashing (at most
    // MAX_HOLD): everyone is then checked, so the real user gets in.
    let earned = auth.user_hold(user);
    if started + earned + CHECK_ALLOWANCE > deadline {
        return Login::NotChecked(AFTER_FAILURES, earned);
    }
    tokio::time::sleep_until(hold.max(started + earned)).await;
    match auth.authorize_passphrase(user, passphrase).await {
        Checked::Accepted(role) => Login::Accepted(role),
        Checked::Busy => Login::NotChecked(BUSY, Duration::from_secs(1)),
        Checked::Refused => {
            let delay = auth.refused_passphrase(ip, user, started.into_std());
            agent.metrics.login_failed("password");
            tracing::warn!(
                ?ip,
                user,
                method = "password",
                delay_ms = delay.as_millis() as u64,
                "login refused: wrong user or passphrase"
            );
            // Held from the start, so the time argon2 took does not show; within
            // MAX_HOLD of the wait above.
            let until = started + earned.max(delay).min(MAX_HOLD);
            tokio::time::sleep_until(Instant::now().max(until)).await;
            Login::Refused
        }
    }
}
