//! The agent's SSH server (russh) and its resource budget.
//!
//! - [`gate`]: admission — connections per address, connections waiting to log in.
//! - [`local`]: the on-box way in, a unix socket in the state dir, outside that budget.
//! - [`client`]: one SSH connection's handler — logins against the `users` section and
//!   the state dir's local key, the `strata` subsystem, `whoami` for a plain OpenSSH
//!   client, and a clear answer to a shell request.
//! - [`serve`]: the framed protocol on one channel — hello first, requests per user
//!   bounded, in-flight requests tracked.
//!
//! The accept loop is the agent's own rather than russh's, so that a connection is
//! admitted (or closed at once) before any work is done for it, one that has not logged in
//! within the login timeout is closed, and a failing accept (out of file descriptors) is
//! logged and survived instead of ending the server.
//!
//! Shutdown answers what was accepted: when told to stop, the server stops accepting,
//! refuses requests read after that, waits for the requests in progress to be answered (at
//! most [`DRAIN`]), gives their clients a moment to hang up, then disconnects everyone.

mod client;
pub mod gate;
#[cfg(unix)]
pub mod local;
pub mod password;
mod serve;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::{MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::client::Client;
use self::gate::{Full, Gate, Ticket};
use self::serve::UserSlots;
use super::Agent;

/// How long shutdown waits for requests already accepted to be answered.
pub const DRAIN: Duration = Duration::from_secs(60);

/// How long shutdown then waits for answered clients to hang up by themselves.
const HANG_UP: Duration = Duration::from_secs(2);

/// How long a session told to disconnect may take to go.
const LEAVE: Duration = Duration::from_secs(5);

/// What the server's tasks share: what shutdown waits for, and the per-user budget.
#[derive(Clone)]
struct InFlight {
    /// One token per request, from the moment it is read until its answer is sent.
    requests: TaskTracker,
    /// One task per protocol channel.
    channels: TaskTracker,
    /// One task per connection.
    connections: TaskTracker,
    /// Cancelled when the server stops: requests read after that are refused.
    stopping: CancellationToken,
    /// Cancelled last: every connection disconnects.
    closing: CancellationToken,
    /// Requests in progress per user.
    slots: Arc<UserSlots>,
}

fn config(agent: &Agent) -> russh::server::Config {
    russh::server::Config {
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
    }
}

/// Where the server accepts connections: the network, and the state dir's socket for the
/// on-box CLI ([`local`]).
pub struct Listeners {
    /// Peers, operators and CI, under the budget ([`gate`]).
    pub network: TcpListener,
    /// The on-box CLI, outside it (see [`local::bind`]); `None`: none.
    #[cfg(unix)]
    pub local: Option<tokio::net::UnixListener>,
}

impl From<TcpListener> for Listeners {
    fn from(network: TcpListener) -> Listeners {
        Listeners {
            network,
            #[cfg(unix)]
            local: None,
        }
    }
}

/// A connection accepted on either listener.
enum Accepted {
    Network(std::io::Result<(tokio::net::TcpStream, SocketAddr)>),
    #[cfg(unix)]
    Local(std::io::Result<tokio::net::UnixStream>),
}

/// The next connection on `listeners`.
async fn accept(listeners: &Listeners) -> Accepted {
    #[cfg(unix)]
    if let Some(local) = &listeners.local {
        return tokio::select! {
            a = listeners.network.accept() => Accepted::Network(a),
            a = local.accept() => Accepted::Local(a.map(|(s, _)| s)),
        };
    }
    Accepted::Network(listeners.network.accept().await)
}

/// Serves SSH on `listeners` until `shutdown` completes, then answers the requests
/// already accepted and disconnects every client.
pub async fn run(
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()>,
    agent: Arc<Agent>,
) -> std::io::Result<()> {
    let listeners = listeners.into();
    let listener = &listeners.network;
    #[cfg(unix)]
    let owner = local::owner_of(&agent.state.layout.dir)?;
    if let Ok(bound) = listener.local_addr() {
        super::mesh::start(&agent, bound);
        // Listening, and the mesh runs: READY, then the watchdog.
        #[cfg(unix)]
        super::systemd::ready(&agent, bound);
    }
    let _ = agent.notifier.set(super::notify::Notifier::start(
        agent.state.running_dir(),
        agent.state.settings.machine.clone(),
    ));
    super::follow::spawn(agent.clone());
    spawn_trial_reverts(agent.clone());
    super::memory::spawn_releaser();
    let metrics_stop = CancellationToken::new();
    if let Some(addr) = agent.state.settings.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}"))
        })?;
        let bound = listener.local_addr()?;
        tracing::info!("metrics on http://{bound}/metrics");
        super::metrics::watch(&agent);
        let stop = metrics_stop.clone();
        tokio::spawn(super::metrics::serve(listener, agent.clone(), async move {
            stop.cancelled().await
        }));
    }
    let _stop_metrics = metrics_stop.drop_guard();
    let limits = agent.state.settings.limits;
    let config = Arc::new(config(&agent));
    let gate = Gate::new(limits);
    let in_flight = InFlight {
        requests: TaskTracker::new(),
        channels: TaskTracker::new(),
        connections: TaskTracker::new(),
        stopping: CancellationToken::new(),
        closing: CancellationToken::new(),
        slots: Arc::new(UserSlots::new(limits.max_requests_per_user)),
    };
    let login_timeout = Duration::from_millis(limits.login_timeout_ms);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listeners) => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Accepted::Network(Ok((stream, peer))) => match gate.admit(peer.ip()) {
                Ok(ticket) => {
                    let _ = stream.set_nodelay(true);
                    let task = connection(
                        stream,
                        Some(peer),
                        Some(ticket),
                        agent.clone(),
                        config.clone(),
                        in_flight.clone(),
                        login_timeout,
                    );
                    in_flight.connections.spawn(task);
                }
                // Closed at once: no SSH work is done for it.
                Err(Full::Address) => {
                    tracing::debug!(%peer, "connection closed: its address holds its share already");
                }
                Err(Full::Unauthenticated) => {
                    tracing::debug!(%peer, "connection closed: too many connections are waiting to log in");
                }
            },
            #[cfg(unix)]
            Accepted::Local(Ok(stream)) => match local::peer_uid(&stream) {
                Some(uid) if local::admitted(uid, owner) => {
                    let task = connection(
                        stream,
                        None,
                        None,
                        agent.clone(),
                        config.clone(),
                        in_flight.clone(),
                        login_timeout,
                    );
                    in_flight.connections.spawn(task);
                }
                uid => {
                    tracing::warn!(
                        ?uid,
                        owner,
                        "local connection refused: only the state dir's owner and root may use its socket"
                    );
                }
            },
            #[cfg(unix)]
            Accepted::Local(Err(e)) | Accepted::Network(Err(e)) => {
                // Out of file descriptors, say: keep serving those already connected and
                // try again shortly, rather than end the server.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            #[cfg(not(unix))]
            Accepted::Network(Err(e)) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listeners);
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
    in_flight.closing.cancel();
    in_flight.connections.close();
    let _ = tokio::time::timeout(LEAVE, in_flight.connections.wait()).await;
    Ok(())
}

/// Completes when `ticket` (a network connection's place in the budget) was given to a
/// newcomer; never for a connection outside the budget.
async fn evicted(ticket: Option<&Ticket>) {
    match ticket {
        Some(t) => t.evicted().await,
        None => std::future::pending().await,
    }
}

/// One connection (from `peer` over the network, or `None`: the state dir's socket),
/// from the SSH version exchange to its end: closed if it has not logged in within
/// `login_timeout`, disconnected when the server closes.
async fn connection(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    peer: Option<SocketAddr>,
    mut ticket: Option<Ticket>,
    agent: Arc<Agent>,
    config: Arc<russh::server::Config>,
    in_flight: InFlight,
    login_timeout: Duration,
) {
    // However it ends, what the connection held is freed: trim once things are quiet.
    let _release = crate::agent::memory::ReleaseOnDrop;
    let logged_in = Arc::new(Notify::new());
    let login_by = tokio::time::Instant::now() + login_timeout;
    let handler = Client::new(agent, in_flight.clone(), peer, logged_in.clone(), login_by);
    let from = peer.map_or_else(|| "the local socket".to_owned(), |p| p.to_string());
    let deadline = tokio::time::sleep_until(login_by);
    tokio::pin!(deadline);
    // The version exchange happens here, under the login deadline too: a client that
    // never sends its version (slowloris) is dropped with its socket.
    let session = tokio::select! {
        session = russh::server::run_stream(config, stream, handler) => match session {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %from, "connection setup failed: {e:?}");
                return;
            }
        },
        () = &mut deadline => {
            tracing::info!(peer = %from, "connection closed: no login within {login_timeout:?}");
            return;
        }
        () = evicted(ticket.as_ref()) => {
            tracing::info!(peer = %from, "connection closed: its place went to a newcomer from a less busy address");
            return;
        }
        () = in_flight.closing.cancelled() => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    let why = tokio::select! {
        _ = &mut session => return,
        () = logged_in.notified() => None,
        () = &mut deadline => Some(format!("no login within {login_timeout:?}")),
        () = evicted(ticket.as_ref()) => Some("its place went to a newcomer from a less busy address".to_owned()),
        () = in_flight.closing.cancelled() => Some("the agent is shutting down".to_owned()),
    };
    let why = match why {
        Some(why) => why,
        None => {
            if let Some(t) = &mut ticket {
                t.logged_in();
            }
            tokio::select! {
                _ = &mut session => return,
                () = in_flight.closing.cancelled() => "the agent is shutting down".to_owned(),
            }
        }
    };
    tracing::info!(peer = %from, "disconnecting: {why}");
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, why, String::new())
        .await;
    // The place is given back once the session is gone (or has had its time to go).
    let _ = tokio::time::timeout(LEAVE, &mut session).await;
}

/// How often the agent looks for trials (commit confirmed) whose time ran out.
const TRIAL_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// How much later than the deadline this machine reverts a trial: members take turns by
/// name ([`REVERT_STAGGER`] each, at most ten turns), so the first revert usually reaches
/// the others before they make their own; a member cut off still reverts, a little later.
fn revert_stagger(agent: &Agent) -> u64 {
    let me = agent.node.machine();
    let rank = agent
        .node
        .live_under(&["@machine:".into()])
        .map(|live| {
            crate::cluster::membership::members(&live)
                .take_while(|(m, _)| *m < me)
                .count()
        })
        .unwrap_or(0);
    rank.min(10) as u64 * REVERT_STAGGER.as_millis() as u64
}

/// One member's turn in [`revert_stagger`].
const REVERT_STAGGER: std::time::Duration = std::time::Duration::from_millis(300);

/// Reverts, by this machine's clock, each trial whose time ran out unconfirmed
/// ([`crate::cluster::trial`]).
fn spawn_trial_reverts(agent: Arc<Agent>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = crate::state::wall_ms();
            let due = agent.node.pending_trials().iter().any(|(_, by)| *by <= now);
            if due {
                let node = agent.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let stagger = revert_stagger(&node);
                    node.node.revert_expired(now, stagger)
                })
                .await;
            }
        }
    });
}
