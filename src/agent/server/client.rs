//! One SSH connection's handler: logins against the `users` section and the state dir's
//! local key (with growing refusal delays; a passphrase from an address with a delay
//! pending is answered at once, unchecked, with a [`crate::protocol::login_delay`] notice, and
//! one for a user with a delay pending is held at most [`crate::cluster::penalties::MAX_HOLD`], then hashed with the
//! others one at a time), the `strata` subsystem, a tiny `exec` interface
//! (`whoami`) so a plain OpenSSH client can check its access, git's push and fetch of
//! the config repo ([`crate::agent::git_serve`]), and a clear refusal of shells.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::InFlight;
use super::password::{self, Login};
use super::serve::serve;
use crate::agent::{Agent, git_serve};
use crate::cluster::Authed;
use crate::protocol::SUBSYSTEM;
use crate::protocol::login_delay;

/// One SSH connection.
pub struct Client {
    agent: Arc<Agent>,
    in_flight: InFlight,
    peer: Option<SocketAddr>,
    /// Told once the connection logs in (it then no longer counts as waiting).
    logged_in: Arc<Notify>,
    /// When the connection is closed if it has not logged in (`login-timeout-ms`).
    deadline: Instant,
    /// The login-delay notice of the last attempt that was not checked, for the client
    /// that asks for it (see [`Client::delayed`]).
    notice: Option<String>,
    authed: Option<Authed>,
    /// The user whose key was accepted on offer, until its verified login arrives. russh
    /// rejects a bad signature without calling the handler, so a login still pending
    /// when the next attempt (or the end of the connection) comes counts as a refusal.
    unsigned: Option<String>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

/// How long a machine login with a key unknown here waits for the membership to bring
/// it ([`crate::cluster::auth::Auth::authorize_machine_within`]) before it is refused.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(1);

const NO_SIGNATURE: &str = "no valid signature for an accepted key";

/// Machines log in with their host keys under these names; anyone else is a user.
fn is_machine_login(user: &str) -> bool {
    user == crate::cluster::auth::PEER_USER || user == crate::cluster::auth::JOIN_USER
}

impl Client {
    /// The handler of a new connection from `peer` (`None`: the state dir's socket), which
    /// must log in by `deadline`.
    pub fn new(
        agent: Arc<Agent>,
        in_flight: InFlight,
        peer: Option<SocketAddr>,
        logged_in: Arc<Notify>,
        deadline: Instant,
    ) -> Client {
        Client {
            agent,
            in_flight,
            peer,
            logged_in,
            deadline,
            notice: None,
            authed: None,
            unsigned: None,
            channels: HashMap::new(),
        }
    }

    /// Records a refused login; returns when its answer may go out (`started` plus the
    /// address's growing delay, so the time argon2 took does not show).
    fn refusal(&self, user: &str, method: &str, why: &str, started: Instant) -> Instant {
        let delay = (self.agent.node.auth).refused(self.peer.map(|p| p.ip()), started.into_std());
        self.agent.metrics.login_failed(method);
        tracing::warn!(peer = ?self.peer, user, method, delay_ms = delay.as_millis() as u64, "login refused: {why}");
        started + delay
    }

    /// Counts an accepted key whose signature failed or never came (see `unsigned`);
    /// returns when the current attempt may be answered.
    fn settle_unsigned(&mut self, started: Instant) -> Instant {
        match self.unsigned.take() {
            Some(user) => self.refusal(&user, "publickey", NO_SIGNATURE, started),
            None => started,
        }
    }

    /// Answers an attempt that was not checked. SSH's refusal carries no message, so the
    /// refusal offers keyboard-interactive alone (a normal one offers public keys), and a
    /// keyboard-interactive request then gets the notice as its instructions, with no
    /// prompt: the `strata` client reads the seconds from it, and OpenSSH prints it.
    fn delayed(&mut self, user: &str, why: &str, retry_in: Duration) -> Auth {
        let notice = login_delay::notice(why, retry_in);
        tracing::warn!(peer = ?self.peer, user, method = "password", "login not checked: {notice}");
        self.notice = Some(notice);
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
            partial_success: false,
        }
    }

    fn accept(
        &mut self,
        user: &str,
        role: crate::cluster::users::Role,
        method: &str,
    ) -> Result<Auth, russh::Error> {
        tracing::info!(peer = ?self.peer, user, role = role.as_str(), method, "login accepted");
        self.agent
            .node
            .auth
            .accepted(self.peer.map(|p| p.ip()), user);
        self.logged_in.notify_one();
        self.authed = Some(Authed::user(user, role));
        Ok(Auth::Accept)
    }
}

impl russh::server::Handler for Client {
    type Error = russh::Error;

    /// A key offered (probed, or signed without a probe): an unknown one is no refusal
    /// and is answered at once, so a client holding several keys soon reaches the right
    /// one; guessing keys is hopeless anyway.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let hold = self.settle_unsigned(Instant::now());
        let known = if is_machine_login(user) {
            match self
                .agent
                .node
                .auth
                .authorize_machine_within(user, offer.public_key, MEMBERSHIP_WAIT)
                .await
            {
                Ok(_) => true,
                Err(why) => {
                    // A machine has one key: an unknown one is a refusal, said and slowed.
                    let hold = self.refusal(user, "host key", &why, hold);
                    tokio::time::sleep_until(hold).await;
                    return Ok(Auth::reject());
                }
            }
        } else {
            self.agent
                .node
                .auth
                .authorize_key(user, offer.public_key)
                .is_some()
        };
        if known {
            self.unsigned = Some(user.to_owned());
        } else {
            tracing::debug!(peer = ?self.peer, user, "offered key not accepted (not counted as a refusal)");
        }
        tokio::time::sleep_until(hold).await;
        Ok(if known { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.unsigned = None;
        if is_machine_login(user) {
            return match self
                .agent
                .node
                .auth
                .authorize_machine_within(user, key.public_key, MEMBERSHIP_WAIT)
                .await
            {
                Ok(principal) => {
                    let auth =
                        self.accept(user, crate::cluster::users::Role::ReadOnly, "host key")?;
                    if let Some(a) = &mut self.authed {
                        a.principal = principal;
                    }
                    Ok(auth)
                }
                Err(why) => {
                    let hold = self.refusal(user, "host key", &why, Instant::now());
                    tokio::time::sleep_until(hold).await;
                    Ok(Auth::reject())
                }
            };
        }
        match self.agent.node.auth.authorize_key(user, key.public_key) {
            Some(role) => self.accept(user, role, "publickey"),
            None => {
                let hold = self.refusal(user, "publickey", "unknown key", Instant::now());
                tokio::time::sleep_until(hold).await;
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let hold = self.settle_unsigned(Instant::now());
        let ip = self.peer.map(|p| p.ip());
        match password::check(&self.agent, ip, user, password, hold, self.deadline).await {
            Login::Accepted(role) => self.accept(user, role, "password"),
            Login::NotChecked(why, retry_in) => Ok(self.delayed(user, why, retry_in)),
            Login::Refused => Ok(Auth::reject()),
        }
    }

    /// Only ever the question that follows an attempt that was not checked (the agent
    /// does not offer keyboard-interactive otherwise): answered with the notice, and no
    /// prompt; what comes back is refused, and a key may still log in.
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(match (self.notice.take(), response) {
            (Some(notice), None) => Auth::Partial {
                name: "strata".into(),
                instructions: notice.into(),
                prompts: Vec::new().into(),
            },
            _ => Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
                partial_success: false,
            },
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Keep the channel until the client says what to run on it.
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(who), true) = (self.authed.clone(), name == SUBSYSTEM) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let Some(channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        // Long work never runs inside a handler callback: the connection gets its task.
        self.in_flight.channels.spawn(serve(
            self.agent.clone(),
            self.in_flight.clone(),
            who,
            channel,
            session.handle(),
            self.peer
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        ));
        Ok(())
    }

    /// A terminal is accepted (OpenSSH's `-tt` gives up when refused one), so that the
    /// shell request that follows gets its answer.
    async fn pty_request(
        &mut self,
        id: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.authed.is_some() {
            session.channel_success(id)?;
        } else {
            session.channel_failure(id)?;
        }
        Ok(())
    }

    /// A shell is answered with what this server does run, then the channel closes.
    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.authed.is_none() {
            session.channel_failure(id)?;
            return Ok(());
        }
        session.channel_success(id)?;
        let text = format!(
            "strata agent: no shell here; this server runs `whoami` and the `{SUBSYSTEM}` subsystem (use the strata command)\n"
        );
        session.extended_data(id, 1, text.into_bytes())?;
        session.exit_status_request(id, 1)?;
        session.eof(id)?;
        session.close(id)?;
        self.channels.remove(&id);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(who) = self.authed.clone() else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        let command = String::from_utf8_lossy(data).trim().to_owned();
        if let Some(service) = git_serve::parse(&command) {
            let handle = session.handle();
            let channel = self.channels.remove(&id);
            let refused = service.and_then(|s| git_serve::allowed(&who, s).map(|()| s));
            match (refused, channel) {
                (Ok(service), Some(channel)) => {
                    self.in_flight.channels.spawn(git_serve::serve(
                        self.agent.clone(),
                        who,
                        service,
                        channel,
                        handle,
                    ));
                }
                (Err(why), _) => {
                    tracing::warn!(user = %who.user, "config repo refused: {why}");
                    tokio::spawn(async move {
                        git_serve::finish(&handle, id, &format!("strata agent: {why}\n"), 1).await;
                    });
                }
                (Ok(_), None) => session.channel_failure(id)?,
            }
            return Ok(());
        }
        let (text, status) = match command.as_str() {
            "whoami" => (
                format!(
                    "{} {} on {}\n",
                    who.user,
                    who.role.as_str(),
                    self.agent.state.settings.machine
                ),
                0,
            ),
            _ => (
                format!(
                    "strata agent: unknown command `{command}`; this server runs `whoami` and the `{SUBSYSTEM}` subsystem\n"
                ),
                1,
            ),
        };
        if status == 0 {
            session.data(id, text.into_bytes())?;
        } else {
            session.extended_data(id, 1, text.into_bytes())?;
        }
        session.exit_status_request(id, status)?;
        session.eof(id)?;
        session.close(id)?;
        self.channels.remove(&id);
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The connection ended with an accepted key still unsigned: count it.
        if let Some(user) = self.unsigned.take() {
            self.refusal(&user, "publickey", NO_SIGNATURE, Instant::now());
        }
    }
}
