//! The agent's SSH server (russh): authentication against the `users` section and the
//! state dir's local key, the `strata` subsystem carrying the framed protocol, and a
//! tiny `exec` interface (`whoami`) so a plain OpenSSH client can check its access.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Auth, Handle, Msg, PublicKeyOffer, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::TcpListener;

use super::{Agent, Authed};
use crate::mesh::{Connection, FrameCodec, Request, Response, SUBSYSTEM};

/// Serves SSH on `listener` until `shutdown` completes, then disconnects every client.
pub async fn run(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    agent: Arc<Agent>,
) -> std::io::Result<()> {
    let config = russh::server::Config {
        keys: vec![agent.state.host_key.clone()],
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        // The constant floor of a rejection; `Agent::refused` grows it per address.
        auth_rejection_time: Duration::from_millis(agent.state.settings.auth_delay_ms),
        // OpenSSH probes with "none" first: answering that is not a refusal.
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    };
    let mut server = Server { agent };
    let running = server.run_on_socket(Arc::new(config), &listener);
    let handle = running.handle();
    tokio::select! {
        result = running => result,
        () = shutdown => {
            handle.shutdown("the agent is shutting down".into());
            Ok(())
        }
    }
}

struct Server {
    agent: Arc<Agent>,
}

impl russh::server::Server for Server {
    type Handler = Client;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Client {
        Client {
            agent: self.agent.clone(),
            peer,
            authed: None,
            channels: HashMap::new(),
        }
    }
}

/// One SSH connection.
struct Client {
    agent: Arc<Agent>,
    peer: Option<SocketAddr>,
    authed: Option<Authed>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Client {
    async fn refuse(&self, user: &str, method: &str, why: &str) -> Result<Auth, russh::Error> {
        let delay = self.agent.refused(self.peer.map(|p| p.ip()));
        tracing::warn!(peer = ?self.peer, user, method, delay_ms = delay.as_millis() as u64, "login refused: {why}");
        tokio::time::sleep(delay).await;
        Ok(Auth::reject())
    }

    fn accept(
        &mut self,
        user: &str,
        role: super::Role,
        method: &str,
    ) -> Result<Auth, russh::Error> {
        tracing::info!(peer = ?self.peer, user, role = role.as_str(), method, "login accepted");
        self.agent.accepted(self.peer.map(|p| p.ip()));
        self.authed = Some(Authed {
            user: user.to_owned(),
            role,
        });
        Ok(Auth::Accept)
    }
}

impl russh::server::Handler for Client {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.agent.authorize_key(user, offer.public_key).is_some() {
            Ok(Auth::Accept)
        } else {
            self.refuse(user, "publickey", "unknown key").await
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.agent.authorize_key(user, key.public_key) {
            Some(role) => self.accept(user, role, "publickey"),
            None => self.refuse(user, "publickey", "unknown key").await,
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        // argon2 is deliberately slow: keep it off the async threads.
        let (agent, u, p) = (self.agent.clone(), user.to_owned(), password.to_owned());
        let role = tokio::task::spawn_blocking(move || agent.authorize_passphrase(&u, &p))
            .await
            .ok()
            .flatten();
        match role {
            Some(role) => self.accept(user, role, "password"),
            None => {
                self.refuse(user, "password", "wrong user or passphrase")
                    .await
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
        tokio::spawn(serve(
            self.agent.clone(),
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

/// Serves the framed protocol on one channel until the client closes it. A client that
/// sends garbage is disconnected.
async fn serve(
    agent: Arc<Agent>,
    who: Authed,
    channel: Channel<Msg>,
    handle: Handle,
    peer: Option<SocketAddr>,
) {
    let mut conn: Connection<Response, Request> =
        Connection::new(channel.into_stream(), FrameCodec::default());
    while let Some(msg) = conn.recv().await {
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
        let (agent, who2) = (agent.clone(), who.clone());
        let response = tokio::task::spawn_blocking(move || agent.handle(&who2, request))
            .await
            .unwrap_or_else(|e| Response::error(format!("internal error: {e}"), None));
        if conn.send(&response).await.is_err() {
            return;
        }
    }
}
