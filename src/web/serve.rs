//! Serving the console: binding its address, TLS handshakes (bounded, timed out, and
//! admitted by the SSH server's per-address rules), and handing finished connections to
//! the HTTP server (axum).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;

use super::session::Sessions;
use super::{Console, router, tls};
use crate::agent::Agent;
use crate::agent::server::gate::Gate;

/// TLS handshakes in progress at most; further connections wait to be accepted.
const HANDSHAKES: usize = 64;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A console bound to its address, with its certificate loaded.
pub struct Bound {
    listener: TcpListener,
    tls: tls::Tls,
    addr: SocketAddr,
    limits: crate::config::agent_kdl::Limits,
}

/// Binds the console `agent.kdl` asks for, if any.
pub async fn bind(agent: &Agent) -> Result<Option<Bound>, String> {
    let Some(web) = agent.state.settings.web.clone() else {
        return Ok(None);
    };
    let settings = &agent.state.settings;
    let mut names = vec![settings.machine.clone(), web.listen.ip().to_string()];
    names.extend(settings.address.clone());
    let tls = tls::load(&agent.state.layout.dir, &web, &names)?;
    let listener = TcpListener::bind(web.listen)
        .await
        .map_err(|e| format!("cannot serve the web console on {}: {e}", web.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(Some(Bound {
        listener,
        tls,
        addr,
        limits: settings.limits,
    }))
}

impl Bound {
    /// Where people open it.
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificate's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.tls.fingerprint
    }

    /// Serves until `stop` completes.
    pub async fn serve(self, agent: Arc<Agent>, stop: impl Future<Output = ()> + Send + 'static) {
        let console = Arc::new(Console {
            agent,
            sessions: Sessions::default(),
        });
        let (tx, rx) = mpsc::channel(HANDSHAKES);
        let gate = Gate::new(self.limits);
        tokio::spawn(handshakes(self.listener, self.tls.acceptor, gate, tx));
        let listener = TlsListener {
            rx,
            local: self.addr,
        };
        let app = router(console).into_make_service_with_connect_info::<Peer>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("web console: the server stopped: {e}");
        }
    }
}

/// Accepts TCP connections and runs their TLS handshakes, a bounded number at a time;
/// what completes goes to the HTTP server. Plain HTTP fails its handshake: no page.
/// Each connection is admitted by the SSH server's rules and limits (`agent.kdl`'s
/// `max-connections-per-address`, `max-unauthenticated`; a gate of its own): an
/// address holds its share at most, and a handshake counts as waiting to log in, so a
/// flood of idle sockets leaves room for everyone else.
async fn handshakes(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    gate: Arc<Gate>,
    tx: mpsc::Sender<(Admitted, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!("web console: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let mut ticket = match gate.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(full) => {
                tracing::debug!(%peer, "web console: connection closed: {full:?}");
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => done,
                () = ticket.evicted() => {
                    tracing::debug!(%peer, "web console: handshake evicted by a newcomer");
                    return;
                }
            };
            match tls {
                Ok(Ok(tls)) => {
                    ticket.logged_in();
                    let _ = tx
                        .send((
                            Admitted {
                                tls,
                                _ticket: ticket,
                            },
                            peer,
                        ))
                        .await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "web console: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "web console: TLS handshake timed out"),
            }
        });
    }
}

/// A TLS connection with its place in the gate, given back when the connection closes.
struct Admitted {
    tls: TlsStream<TcpStream>,
    _ticket: crate::agent::server::gate::Ticket,
}

impl tokio::io::AsyncRead for Admitted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Admitted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

/// The HTTP server's side of [`handshakes`].
struct TlsListener {
    rx: mpsc::Receiver<(Admitted, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = Admitted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for the login budget.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub(super) SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
