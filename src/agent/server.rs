//! The agent's SSH server (russh): authentication against the `users` section and the
//! state dir's local key, the `strata` subsystem carrying the framed protocol, and a
//! tiny `exec` interface (`whoami`) so a plain OpenSSH client can check its access.
//!
//! Shutdown answers what was accepted: requests are tracked from the moment they are
//! read; when told to stop, the server stops accepting connections, refuses requests read
//! after that, waits for the tracked ones to be answered (at most [`DRAIN`]), gives their
//! clients a moment to hang up, and then disconnects everyone.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use russh::server::{Auth, Handle, Msg, PublicKeyOffer, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Agent, Authed};
use crate::mesh::{Connection, FrameCodec, Request, Response, SUBSYSTEM};

/// How long shutdown waits for requests already accepted to be answered.
pub const DRAIN: Duration = Duration::from_secs(60);

/// How long shutdown then waits for answered clients to hang up by themselves.
const HANG_UP: Duration = Duration::from_secs(2);

/// What shutdown waits for: requests being answered, and connections serving them.
#[derive(Clone, Default)]
struct InFlight {
    /// One token per request, from the moment it is read until its answer is sent.
    requests: TaskTracker,
    /// One task per protocol channel.
    channels: TaskTracker,
    /// Cancelled when the server stops: requests read after that are refused.
    stopping: CancellationToken,
}

/// Serves SSH on `listener` until `shutdown` completes, then answers the requests already
/// accepted and disconnects every client.
pub async fn run(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    agent: Arc<Agent>,
) -> std::io::Result<()> {
    let config = russh::server::Config {
        keys: vec![agent.state.host_key.clone()],
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        // No constant floor from russh: it would also hold the answer to a key that is
        // merely offered. Every delay is the agent's own (`Client::refusal`).
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    };
    let in_flight = InFlight::default();
    let mut server = Server {
        agent,
        in_flight: in_flight.clone(),
    };
    let running = server.run_on_socket(Arc::new(config), &listener);
    let handle = running.handle();
    tokio::select! {
        result = running => return result,
        () = shutdown => {}
    }
    // The accept loop is gone; sessions live on as their own tasks.
    in_flight.stopping.cancel();
    in_flight.requests.close();
    let pending = in_flight.requests.len();
    if pending > 0 {
        tracing::info!(pending, "answering the requests accepted before shutdown");
    }
    if tokio::time::timeout(DRAIN, in_flight.requests.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still unanswered after {DRAIN:?}; stopping anyway");
    }
    in_flight.channels.close();
    let _ = tokio::time::timeout(HANG_UP, in_flight.channels.wait()).await;
    handle.shutdown("the agent is shutting down".into());
    Ok(())
}

struct Server {
    agent: Arc<Agent>,
    in_flight: InFlight,
}

impl russh::server::Server for Server {
    type Handler = Client;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Client {
        Client {
            agent: self.agent.clone(),
            in_flight: self.in_flight.clone(),
            peer,
            authed: None,
            unsigned: None,
            channels: HashMap::new(),
        }
    }
}

/// One SSH connection.
struct Client {
    agent: Arc<Agent>,
    in_flight: InFlight,
    peer: Option<SocketAddr>,
    authed: Option<Authed>,
    /// The user whose key was accepted on offer, until its verified login arrives. russh
    /// rejects a bad signature without calling the handler, so a login still pending
    /// when the next attempt (or the end of the connection) comes counts as a refusal.
    unsigned: Option<String>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

const NO_SIGNATURE: &str = "no valid signature for an accepted key";

impl Client {
    /// Records a refused login; returns when its answer may go out (`started` plus the
    /// address's growing delay, so the time argon2 took does not show).
    fn refusal(&self, user: &str, method: &str, why: &str, started: Instant) -> Instant {
        let delay = self.agent.node.auth.refused(self.peer.map(|p| p.ip()));
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

    fn accept(
        &mut self,
        user: &str,
        role: super::users::Role,
        method: &str,
    ) -> Result<Auth, russh::Error> {
        tracing::info!(peer = ?self.peer, user, role = role.as_str(), method, "login accepted");
        self.agent.node.auth.accepted(self.peer.map(|p| p.ip()));
        self.authed = Some(Authed {
            user: user.to_owned(),
            role,
        });
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
        let known = self
            .agent
            .node
            .auth
            .authorize_key(user, offer.public_key)
            .is_some();
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
        let started = Instant::now();
        let mut hold = self.settle_unsigned(started);
        // argon2 is deliberately slow: keep it off the async threads.
        let (agent, u, p) = (self.agent.clone(), user.to_owned(), password.to_owned());
        let role =
            tokio::task::spawn_blocking(move || agent.node.auth.authorize_passphrase(&u, &p))
                .await
                .ok()
                .flatten();
        match role {
            Some(role) => self.accept(user, role, "password"),
            None => {
                hold =
                    hold.max(self.refusal(user, "password", "wrong user or passphrase", started));
                tokio::time::sleep_until(hold).await;
                Ok(Auth::reject())
            }
        }
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
            self.peer,
        ));
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

/// Serves the framed protocol on one channel until the client closes it. A client that
/// sends garbage is disconnected.
async fn serve(
    agent: Arc<Agent>,
    in_flight: InFlight,
    who: Authed,
    channel: Channel<Msg>,
    handle: Handle,
    peer: Option<SocketAddr>,
) {
    let mut conn: Connection<Response, Request> =
        Connection::new(channel.into_stream(), FrameCodec::default());
    // Set once a request is answered after shutdown began: the channel then stays until
    // the client hangs up (or shutdown's grace ends), so the answer is not cut off.
    let mut answered_late = false;
    loop {
        // An idle channel ends at shutdown; one mid-request is answered first.
        let msg = tokio::select! {
            msg = conn.recv() => msg,
            () = in_flight.stopping.cancelled(), if !answered_late => None,
        };
        let Some(msg) = msg else {
            // Whatever was answered is written out before the channel closes.
            conn.finish().await;
            return;
        };
        // Counted before the check: shutdown either sees this request or refuses it.
        let token = in_flight.requests.token();
        let request = match msg {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(?peer, user = %who.user, "disconnecting a client that sent garbage: {e}");
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ProtocolError,
                        format!("protocol error: {e}"),
                        String::new(),
                    )
                    .await;
                return;
            }
        };
        if in_flight.stopping.is_cancelled() {
            let _ = conn
                .send(&Response::error(
                    "the agent is shutting down; nothing was done",
                    Some("try again once it is back"),
                ))
                .await;
            conn.finish().await;
            return;
        }
        let (agent, who2) = (agent.clone(), who.clone());
        let response = tokio::task::spawn_blocking(move || agent.handle(&who2, request))
            .await
            .unwrap_or_else(|e| Response::error(format!("internal error: {e}"), None));
        let sent = conn.send(&response).await;
        answered_late = in_flight.stopping.is_cancelled();
        drop(token);
        if sent.is_err() {
            return;
        }
    }
}
