//! The SSH client of the protocol: connect to an agent over russh, check its host key
//! against a pin ([`HostKeyPin`]), log in with a key or a passphrase, open the `strata`
//! subsystem and say hello (protocol revision check), then exchange typed messages.
//!
//! [`Client`] is async and creates no runtime, so it runs inside an existing one (the
//! agent's, for a peer); [`BlockingClient`] wraps it in a current-thread runtime of its
//! own, for the CLI.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tokio::runtime::Runtime;

use super::peer::{Peer, PeerError};
use super::pin::{HostKeyPin, PinReport, Verifier, VerifierError};
use super::{Connection, FrameCodec, PROTOCOL, Request, Response, SUBSYSTEM};

/// How to prove who we are.
pub enum Login {
    /// A private key (public-key authentication).
    Key(Box<PrivateKey>),
    /// A key the user's ssh-agent holds: the agent listening on `socket` signs.
    AgentKey {
        /// The agent's socket (`SSH_AUTH_SOCK`).
        socket: std::path::PathBuf,
        /// The key's public half, as the agent listed it.
        key: PublicKey,
    },
    /// A passphrase (password authentication, checked against an argon2id hash).
    Passphrase(String),
    /// Each way in turn, on one connection, until one is accepted (OpenSSH's order: the
    /// agent's keys, the key files, then a passphrase). Keys the agent does not know
    /// are refused at no cost: only a signature or a passphrase counts as a try.
    Each(Vec<Login>),
}

impl Login {
    /// The ways this login tries, in order, with `Each` flattened.
    fn ways(self) -> Vec<Login> {
        match self {
            Login::Each(ways) => ways.into_iter().flat_map(Login::ways).collect(),
            one => vec![one],
        }
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        match self {
            Login::Key(_) => f.write_str("Login::Key(..)"),
            Login::AgentKey { socket, key } => write!(
                f,
                "Login::AgentKey({}, {})",
                socket.display(),
                key.fingerprint(russh::keys::HashAlg::Sha256)
            ),
            Login::Passphrase(_) => f.write_str("Login::Passphrase(..)"),
            Login::Each(ways) => f.debug_tuple("Login::Each").field(ways).finish(),
        }
    }
}

/// How long connecting, the key exchange and the login may take by default. An agent
/// holds a login for at most `agent::penalties::MAX_HOLD`, which is tied to this (a
/// held login must be answered well before the client gives up on the agent: issue 20),
/// and answers an attempt it will not check at once, with a [`super::login_delay`]
/// notice.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the agent is, which host key it must have, and who we are.
#[derive(Debug)]
pub struct ClientOptions {
    /// Host name or address.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// The host key the agent must present.
    pub pin: HostKeyPin,
    /// The user to log in as.
    pub user: String,
    /// How to log in.
    pub login: Login,
    /// How often to probe an idle connection; three missed probes end it. russh clients
    /// send none by default, which would leave a dead link unnoticed.
    pub keepalive: Duration,
    /// How long connecting, the key exchange and the login may take.
    pub connect_timeout: Duration,
    /// The local address to connect from (a peer connects from the address it listens
    /// on); any when `None`.
    pub bind: Option<std::net::IpAddr>,
    /// A unix socket to connect through instead of `host:port`: the agent's own, in its
    /// state dir, for `--state-dir` on the appliance (outside the network's budget).
    pub socket: Option<std::path::PathBuf>,
}

impl ClientOptions {
    /// Options with the default keepalive (15 s) and connect timeout
    /// ([`CONNECT_TIMEOUT`]).
    pub fn new(
        host: impl Into<String>,
        port: u16,
        pin: HostKeyPin,
        user: impl Into<String>,
        login: Login,
    ) -> ClientOptions {
        ClientOptions {
            host: host.into(),
            port,
            pin,
            user: user.into(),
            login,
            keepalive: Duration::from_secs(15),
            connect_timeout: CONNECT_TIMEOUT,
            bind: None,
            socket: None,
        }
    }

    /// `host:port` (`[v6]:port` for IPv6 addresses), or the socket's path, as errors
    /// name the agent.
    pub fn addr(&self) -> String {
        if let Some(socket) = &self.socket {
            socket.display().to_string()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `HOST[:PORT]` (or `[V6]:PORT`, or a bare IPv6 address) into host and port,
/// `default_port` when none is given; `None` if the port is not a number.
pub fn split_host_port(target: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some((host, port)) = crate::model::split_port(target) {
        return Some((host.to_owned(), port));
    }
    // A port that is not a number is an error, not part of the host.
    let bracketed = target.starts_with('[') && !target.ends_with(']');
    let bad_port = target
        .rsplit_once(':')
        .is_some_and(|(host, _)| !host.contains(':') && !host.starts_with('['));
    if bracketed || bad_port {
        return None;
    }
    Some((crate::model::host_of(target).to_owned(), default_port))
}

/// Who the agent is and who it took us for, from its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's machine name.
    pub machine: String,
    /// The agent's Strata version.
    pub version: String,
    /// The user we are logged in as.
    pub user: String,
    /// That user's role.
    pub role: String,
}

/// Connects to `host:port` (every address it resolves to, in turn), from `bind` if given.
async fn tcp_connect(
    host: &str,
    port: u16,
    bind: Option<std::net::IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = bind.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
        }
        match socket.connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address")))
}

/// The agent's login-delay notice and its seconds, if a refusal offering
/// keyboard-interactive alone says the attempt was not checked: the notice is the
/// instructions of the one keyboard-interactive question (see [`super::login_delay`]).
async fn delay_notice(
    session: &mut client::Handle<Verifier>,
    user: &str,
    remaining: &russh::MethodSet,
) -> Option<(String, u64)> {
    if remaining.as_ref() != [russh::MethodKind::KeyboardInteractive] {
        return None;
    }
    match session
        .authenticate_keyboard_interactive_start(user, None)
        .await
    {
        Ok(client::KeyboardInteractiveAuthResponse::InfoRequest { instructions, .. }) => {
            let secs = super::login_delay::retry_in(&instructions)?;
            Some((instructions, secs))
        }
        _ => None,
    }
}

/// Tries each way of `login` in turn until one is accepted; the last answer. A key the
/// ssh-agent cannot sign with (the agent gone, a key it refuses to use) is passed over.
async fn log_in(
    session: &mut client::Handle<Verifier>,
    user: &str,
    login: Login,
) -> Result<client::AuthResult, russh::Error> {
    let mut agent: Option<super::ssh_agent::Agent> = None;
    let mut last = client::AuthResult::Failure {
        remaining_methods: russh::MethodSet::empty(),
        partial_success: false,
    };
    for way in login.ways() {
        let rsa_hash = || async {
            session
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten()
        };
        last = match way {
            Login::Key(key) => {
                let hash = rsa_hash().await;
                session
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(*key), hash))
                    .await?
            }
            Login::AgentKey { socket, key } => {
                let hash = if key.algorithm().is_rsa() {
                    rsa_hash().await
                } else {
                    None
                };
                if agent.is_none() {
                    match super::ssh_agent::connect(&socket).await {
                        Ok(a) => agent = Some(a),
                        Err(why) => {
                            tracing::debug!("{why}");
                            continue;
                        }
                    }
                }
                let Some(signer) = agent.as_mut() else {
                    continue;
                };
                match session
                    .authenticate_publickey_with(user, key, hash, signer)
                    .await
                {
                    Ok(result) => result,
                    Err(russh::AgentAuthError::Send(_)) => return Err(russh::Error::SendError),
                    Err(why) => {
                        tracing::debug!("the ssh-agent did not sign: {why}");
                        continue;
                    }
                }
            }
            Login::Passphrase(pass) => session.authenticate_password(user, pass).await?,
            // Flattened by `ways`.
            Login::Each(_) => continue,
        };
        if last.success() {
            break;
        }
    }
    Ok(last)
}

/// An SSH session kept open for a connection taken over with [`Client::into_link`];
/// dropping it disconnects.
pub struct Session {
    _handle: client::Handle<Verifier>,
}

/// A logged-in connection to an agent, with the `strata` subsystem open.
pub struct Client {
    addr: String,
    conn: Connection<Request, Response>,
    // Keeps the SSH session up; dropping it disconnects.
    _session: client::Handle<Verifier>,
    info: AgentInfo,
    notices: Vec<String>,
}

impl Client {
    /// Connects, checks the host key, logs in, opens the subsystem and says hello.
    pub async fn connect(options: ClientOptions) -> Result<Client, PeerError> {
        let addr = options.addr();
        let timeout = options.connect_timeout;
        match tokio::time::timeout(timeout, Client::connect_now(options, addr.clone())).await {
            Ok(result) => result,
            Err(_) => Err(PeerError::Connect {
                addr,
                reason: format!("no answer within {} s", timeout.as_secs()),
            }),
        }
    }

    async fn connect_now(options: ClientOptions, addr: String) -> Result<Client, PeerError> {
        let connect = |reason: String| PeerError::Connect {
            addr: addr.clone(),
            reason,
        };
        let protocol = |reason: String| PeerError::Protocol {
            addr: addr.clone(),
            reason,
        };
        let report = Arc::new(Mutex::new(PinReport::default()));
        let verifier = Verifier {
            pin: options.pin,
            host: options.host.clone(),
            port: options.port,
            report: report.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(options.keepalive),
            keepalive_max: 3,
            inactivity_timeout: Some(Duration::from_secs(3600)),
            nodelay: true,
            ..Default::default()
        });
        let session = match &options.socket {
            #[cfg(unix)]
            Some(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| connect(e.to_string()))?;
                client::connect_stream(config, stream, verifier).await
            }
            #[cfg(not(unix))]
            Some(_) => return Err(connect("unix sockets need a unix system".into())),
            None => {
                let stream = tcp_connect(&options.host, options.port, options.bind)
                    .await
                    .map_err(|e| connect(e.to_string()))?;
                client::connect_stream(config, stream, verifier).await
            }
        };
        let mut session = match session {
            Ok(s) => s,
            Err(VerifierError::Refused(reason)) => {
                return Err(PeerError::HostKey {
                    addr: addr.clone(),
                    reason,
                });
            }
            Err(VerifierError::Ssh(e)) => return Err(connect(e.to_string())),
        };
        let user = options.user;
        let authed = log_in(&mut session, &user, options.login)
            .await
            .map_err(|e| connect(format!("the login failed: {e}")))?;
        if let client::AuthResult::Failure {
            remaining_methods, ..
        } = authed
        {
            // A session the agent closed answers every pending attempt with a failure: that
            // is no refusal of the key or passphrase (an agent too busy to finish the login
            // within its login-timeout-ms closes it so).
            if session.is_closed() {
                return Err(connect(
                    "the agent closed the connection before the login finished (a busy agent does so once its login-timeout-ms has passed); try again".into(),
                ));
            }
            return Err(
                match delay_notice(&mut session, &user, &remaining_methods).await {
                    Some((notice, retry_in)) => PeerError::Delayed {
                        addr: addr.clone(),
                        user,
                        notice,
                        retry_in,
                    },
                    None => PeerError::Login {
                        addr: addr.clone(),
                        user,
                    },
                },
            );
        }
        let channel = session
            .channel_open_session()
            .await
            .map_err(|e| protocol(format!("cannot open a channel: {e}")))?;
        channel
            .request_subsystem(true, SUBSYSTEM)
            .await
            .map_err(|e| protocol(format!("no `{SUBSYSTEM}` subsystem: {e}")))?;
        let conn = Connection::new(channel.into_stream(), FrameCodec::default());
        let notices = report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .learned
            .take()
            .into_iter()
            .collect();
        let mut client = Client {
            addr: addr.clone(),
            conn,
            _session: session,
            info: AgentInfo {
                machine: String::new(),
                version: String::new(),
                user: String::new(),
                role: String::new(),
            },
            notices,
        };
        let hello = Request::Hello {
            protocol: PROTOCOL,
            version: super::strata_version().into(),
        };
        let incompatible = |reason: String| PeerError::Incompatible {
            addr: addr.clone(),
            reason,
        };
        match client.request(hello).await? {
            Response::Hello {
                protocol: theirs, ..
            } if theirs != PROTOCOL => Err(incompatible(format!(
                "it speaks protocol {theirs}, this client {PROTOCOL}"
            ))),
            Response::Hello {
                machine,
                version,
                user,
                role,
                ..
            } => {
                client.info = AgentInfo {
                    machine,
                    version,
                    user,
                    role,
                };
                Ok(client)
            }
            // An agent answers a hello of another revision with an error saying so.
            Response::Error { message, .. } => Err(incompatible(message)),
            other => Err(protocol(format!("a hello answered with {other:?}"))),
        }
    }

    /// Who the agent is and who it took us for.
    pub fn info(&self) -> &AgentInfo {
        &self.info
    }

    /// `host:port` of the agent.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Things worth telling the user that were not errors (a host key recorded on
    /// first use).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The connection from now on carries other messages (a mesh link), and the SSH
    /// session that must be kept for as long as it is used.
    pub fn into_link<Out, In>(self) -> (Connection<Out, In>, Session) {
        (
            self.conn.retype(),
            Session {
                _handle: self._session,
            },
        )
    }

    /// Sends one request and waits for its answer.
    pub async fn request(&mut self, request: Request) -> Result<Response, PeerError> {
        let lost = |reason: String| PeerError::Lost {
            addr: self.addr.clone(),
            reason,
        };
        self.conn
            .send(&request)
            .await
            .map_err(|e| lost(e.to_string()))?;
        match self.conn.recv().await {
            Some(Ok(response)) => Ok(response),
            Some(Err(super::ConnectionError::Malformed(reason))) => Err(PeerError::Protocol {
                addr: self.addr.clone(),
                reason: format!("a malformed answer: {reason}"),
            }),
            Some(Err(e)) => Err(lost(e.to_string())),
            None => Err(lost("the connection closed".into())),
        }
    }
}

impl Peer for Client {
    async fn request(&mut self, request: Request) -> Result<Response, PeerError> {
        Client::request(self, request).await
    }
}

/// [`Client`] for code that is not async: it owns a current-thread runtime, which runs
/// the connection's tasks while a call waits. Not for use inside a runtime.
pub struct BlockingClient {
    // Fields drop in order: the client (and its session) before the runtime that runs
    // their tasks.
    client: Client,
    rt: Runtime,
}

impl BlockingClient {
    /// Connects as [`Client::connect`] does.
    pub fn connect(options: ClientOptions) -> Result<BlockingClient, PeerError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PeerError::Connect {
                addr: options.addr(),
                reason: format!("cannot start a runtime: {e}"),
            })?;
        let client = rt.block_on(Client::connect(options))?;
        Ok(BlockingClient { client, rt })
    }

    /// Who the agent is and who it took us for.
    pub fn info(&self) -> &AgentInfo {
        self.client.info()
    }

    /// Things worth telling the user that were not errors.
    pub fn notices(&self) -> &[String] {
        self.client.notices()
    }

    /// Sends one request and waits for its answer.
    pub fn request(&mut self, request: Request) -> Result<Response, PeerError> {
        self.rt.block_on(self.client.request(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_default_port() {
        let split = |t| split_host_port(t, 2222);
        assert_eq!(split("lab1:22"), Some(("lab1".into(), 22)));
        assert_eq!(split("lab1"), Some(("lab1".into(), 2222)));
        assert_eq!(split("[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(split("[::1]"), Some(("::1".into(), 2222)));
        assert_eq!(split("::1"), Some(("::1".into(), 2222)));
        assert_eq!(split("lab1:x"), None);
        assert_eq!(split("[::1]x"), None);
    }
}
