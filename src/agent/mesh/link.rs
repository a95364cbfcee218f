//! One mesh link's tasks, and dialing a peer.
//!
//! A link is a `strata` channel turned over to [`Envelope`]s after a `PeerLink` request:
//! a reader task hands what arrives to the runtime, a writer task sends what the runtime
//! queues (two tasks: one task that both reads and writes a russh channel can stall, see
//! [`crate::protocol::connection`]). A link ends when either side closes it, when it brings
//! garbage, or when the runtime drops it (gone quiet, or no longer a peer).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use tokio::sync::mpsc;

use super::runtime::Event;
use crate::cluster::auth::PEER_USER;
use crate::cluster::membership::OwnFacts;
use crate::model::MachineName;
use crate::protocol::client::Session;
use crate::protocol::wire::Envelope;
use crate::protocol::{
    Client, ClientOptions, Connection, HostKeyPin, Login, Request, Response, strata_version,
};

/// How many envelopes may wait for a link's writer; a peer that reads slower than that
/// loses the surplus (pings come again, and sync repairs lost change sets).
const QUEUE: usize = 256;

/// The runtime's end of a link.
pub struct LinkHandle {
    /// Which link this is (links to one peer come and go).
    pub link_id: u64,
    /// The machine that dialed it.
    pub dialer: MachineName,
    /// Envelopes to send.
    pub out: mpsc::Sender<Envelope>,
    /// Stops both tasks (dropping the handle does too).
    pub stop: tokio_util::sync::CancellationToken,
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs a link over `conn` (keeping `session` open, for a dialed link); returns the
/// runtime's handle. The tasks report what arrives, and the end, to `events`.
pub fn spawn(
    peer: MachineName,
    dialer: MachineName,
    link_id: u64,
    conn: Connection<Envelope, Envelope>,
    session: Option<Session>,
    events: mpsc::UnboundedSender<Event>,
) -> LinkHandle {
    let (out, mut queue) = mpsc::channel::<Envelope>(QUEUE);
    let stop = tokio_util::sync::CancellationToken::new();
    let (sender, mut receiver) = conn.split();
    let writer_stop = stop.clone();
    tokio::spawn(async move {
        // Holds the SSH session for as long as the link is used.
        let _session = session;
        loop {
            tokio::select! {
                env = queue.recv() => match env {
                    Some(env) => if sender.send(&env).await.is_err() { break },
                    None => break,
                },
                () = writer_stop.cancelled() => break,
            }
        }
        // Whatever was queued before the stop is written before the channel closes.
        let _ = tokio::time::timeout(Duration::from_secs(1), sender.finish()).await;
    });
    let reader_stop = stop.clone();
    tokio::spawn(async move {
        let why = loop {
            let msg = tokio::select! {
                msg = receiver.recv() => msg,
                () = reader_stop.cancelled() => break None,
            };
            match msg {
                Some(Ok(env)) => {
                    if events
                        .send(Event::Inbound {
                            via: peer.clone(),
                            link_id,
                            env,
                        })
                        .is_err()
                    {
                        break None;
                    }
                }
                Some(Err(e)) => break Some(format!("the peer sent garbage: {e}")),
                None => break Some("the link closed".to_owned()),
            }
        };
        reader_stop.cancel();
        let _ = events.send(Event::Closed { peer, link_id, why });
    });
    LinkHandle {
        link_id,
        dialer,
        out,
        stop,
    }
}

/// Who this machine is to its peers.
#[derive(Clone)]
pub struct Identity {
    /// Its machine name.
    pub machine: MachineName,
    /// Its host key: it logs in to peers with it.
    pub host_key: Arc<PrivateKey>,
    /// Its serial number.
    pub serial: String,
    /// Where it takes peer connections (`host:port`), as it tells the cluster.
    pub peer_address: String,
    /// The address it connects to peers from (the one it listens on).
    pub bind: Option<IpAddr>,
    /// Its appliance's version, as `agent.kdl` gives it.
    pub appliance_version: Option<String>,
}

impl Identity {
    /// Its host key as an OpenSSH public-key line.
    pub fn public_key(&self) -> String {
        self.host_key.public_key().to_openssh().unwrap_or_default()
    }

    /// What its membership must say of it (see [`OwnFacts::fill`]).
    pub fn facts(&self) -> OwnFacts {
        OwnFacts {
            host_key: self.public_key(),
            peer: self.peer_address.clone(),
            serial: self.serial.clone(),
            strata_version: strata_version().to_owned(),
            appliance_version: self.appliance_version.clone(),
        }
    }
}

/// Logs in to `peer` at `address` as a peer (with this machine's host key, checking the
/// peer's is `key`) and says hello: the client knows its version then
/// ([`Client::info`]). Within `timeout`.
pub async fn connect(
    me: &Identity,
    peer: &MachineName,
    address: &str,
    key: PublicKey,
    timeout: Duration,
) -> Result<Client, String> {
    let (host, port) =
        crate::protocol::split_host_port(address, crate::config::agent_kdl::DEFAULT_PORT)
            .ok_or_else(|| format!("`{address}` is not HOST:PORT"))?;
    let mut options = ClientOptions::new(
        host,
        port,
        HostKeyPin::Key(key),
        PEER_USER,
        Login::Key(Box::new((*me.host_key).clone())),
    );
    options.bind = me.bind;
    options.connect_timeout = timeout;
    options.keepalive = timeout.max(Duration::from_secs(1));
    let client = Client::connect(options).await.map_err(|e| e.to_string())?;
    if client.info().machine != peer.as_str() {
        return Err(format!(
            "the agent at {address} says it is {}, not {peer}",
            client.info().machine
        ));
    }
    Ok(client)
}

/// Why a dial gave no link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialError {
    /// The peer runs another Strata release: by the version rule
    /// ([`crate::protocol::version`]) no link forms until both run the same.
    Version(String),
    /// Anything else: unreachable, refused, timed out.
    Failed(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Version(why) | DialError::Failed(why) => f.write_str(why),
        }
    }
}

/// Dials `peer` at `address`, checks its host key is `key`, logs in with this machine's
/// host key, checks it runs this machine's Strata release, and turns the channel into a
/// link.
pub async fn dial(
    me: &Identity,
    peer: &MachineName,
    address: &str,
    key: PublicKey,
    timeout: Duration,
) -> Result<(Connection<Envelope, Envelope>, Session), DialError> {
    let failed = DialError::Failed;
    let mut client = connect(me, peer, address, key, timeout)
        .await
        .map_err(failed)?;
    let theirs = &client.info().version;
    if !crate::protocol::version::compatible(theirs, strata_version()) {
        let (message, _) = crate::protocol::version::mismatch(
            peer.as_str(),
            theirs,
            &format!("{} (this machine)", me.machine),
            strata_version(),
        );
        return Err(DialError::Version(message));
    }
    match client
        .request(Request::PeerLink {
            machine: me.machine.clone(),
        })
        .await
        .map_err(|e| failed(e.to_string()))?
    {
        Response::PeerLinked => {
            let (conn, session) = client.into_link();
            Ok((conn.packing(), session))
        }
        Response::Error { message, .. } | Response::Denied { message } => Err(failed(message)),
        other => Err(failed(format!("a link request answered with {other:?}"))),
    }
}
