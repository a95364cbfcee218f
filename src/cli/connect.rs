//! The client side of talking to an agent: resolve where it is and which host key to
//! expect, connect over SSH (russh), log in, open the `strata` subsystem, exchange typed
//! messages. One current-thread runtime per command.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use tokio::runtime::Runtime;

use super::agent_args::TargetArgs;
use super::pin::{Pin, Verifier};
use super::{CliError, Failure};
use crate::agent::settings::DEFAULT_PORT;
use crate::agent::state_dir::Layout;
use crate::mesh::{Connection, FrameCodec, PROTOCOL, Request, Response, SUBSYSTEM};
use crate::state::Live;

/// A logged-in connection to an agent.
pub struct Client {
    rt: Runtime,
    conn: Connection<Request, Response>,
    _session: client::Handle<Verifier>,
    /// The agent's machine name.
    pub machine: String,
    /// Who the agent thinks we are.
    pub user: String,
    /// Our role.
    pub role: String,
}

fn fail(message: impl Into<String>, help: &str) -> CliError {
    Failure::new(message, help)
}

fn split_target(target: &str) -> Result<(String, u16), CliError> {
    // [v6]:port, host:port, or host.
    if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest
            .split_once(']')
            .ok_or_else(|| fail(format!("bad target `{target}`"), "write HOST[:PORT]"))?;
        let port = port.strip_prefix(':').map_or(Ok(DEFAULT_PORT), str::parse);
        return Ok((
            host.to_owned(),
            port.map_err(|_| fail(format!("bad port in `{target}`"), "write HOST[:PORT]"))?,
        ));
    }
    match target.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((
            host.to_owned(),
            port.parse()
                .map_err(|_| fail(format!("bad port in `{target}`"), "write HOST[:PORT]"))?,
        )),
        _ => Ok((target.to_owned(), DEFAULT_PORT)),
    }
}

fn read_key(path: &Path) -> Result<russh::keys::PrivateKey, CliError> {
    russh::keys::load_secret_key(path, None).map_err(|e| {
        fail(
            format!("cannot read the identity {}: {e}", path.display()),
            "give an unencrypted OpenSSH private key (ssh-keygen -t ed25519 -N '')",
        )
    })
}

/// Connects and logs in as `args` say, then says hello.
pub fn connect(args: &TargetArgs) -> Result<Client, CliError> {
    let layout = args.state_dir.as_ref().map(Layout::new);
    let target = match (&args.target, &layout) {
        (Some(t), _) => t.clone(),
        (None, Some(l)) => std::fs::read_to_string(l.address())
            .map(|s| s.trim().to_owned())
            .map_err(|e| {
                fail(
                    format!("no agent is running on {}: {e}", l.dir.display()),
                    "start it with `strata agent --state-dir DIR`",
                )
            })?,
        (None, None) => {
            return Err(fail(
                "which agent? no --target or --state-dir given",
                "pass --target HOST[:PORT] (with --identity and --fingerprint), or --state-dir DIR on the appliance",
            ));
        }
    };
    let (host, port) = split_target(&target)?;
    let pin = match (&args.fingerprint, &args.known_hosts, &layout) {
        (Some(f), _, _) => Pin::Fingerprint(f.trim().to_owned()),
        (None, Some(p), _) => Pin::KnownHosts {
            path: p.clone(),
            learn: args.trust_on_first_use,
        },
        (None, None, Some(l)) if args.target.is_none() => {
            Pin::Key(read_key(&l.host_key())?.public_key().clone())
        }
        (None, None, _) if args.trust_on_first_use => Pin::KnownHosts {
            path: std::env::home_dir()
                .unwrap_or_default()
                .join(".ssh/known_hosts"),
            learn: true,
        },
        _ => {
            return Err(fail(
                "the agent's host key is not pinned",
                "pass --fingerprint SHA256:… (the agent prints it when it starts) or --known-hosts FILE; \
                 --trust-on-first-use records a new key",
            ));
        }
    };
    let identity = match (&args.identity, &layout) {
        (Some(p), _) => Some(read_key(p)?),
        (None, Some(l)) => Some(read_key(&l.local_key())?),
        (None, None) => None,
    };
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "admin".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}"), "this is a bug"))?;
    let refusal = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        pin,
        host: host.clone(),
        port,
        refusal: refusal.clone(),
    };
    let (session, conn) = rt.block_on(async {
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            inactivity_timeout: Some(Duration::from_secs(3600)),
            nodelay: true,
            ..Default::default()
        });
        let mut session = match client::connect(config, (host.as_str(), port), verifier).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(why) = refusal.lock().unwrap().take() {
                    return Err(fail(
                        format!("refusing to talk to {host}:{port}: {why}"),
                        "check that you reach the right machine; pin its key with --fingerprint",
                    ));
                }
                return Err(fail(
                    format!("cannot connect to {host}:{port}: {e}"),
                    "is `strata agent` running there, and is the port open?",
                ));
            }
        };
        let authed = match identity {
            Some(key) => {
                let hash = session.best_supported_rsa_hash().await.ok().flatten().flatten();
                session
                    .authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
            }
            None => {
                let pass = std::env::var("STRATA_PASSPHRASE").map_err(|_| {
                    fail(
                        "no identity and no passphrase",
                        "pass --identity FILE, or set STRATA_PASSPHRASE",
                    )
                })?;
                session.authenticate_password(&user, pass).await
            }
        }
        .map_err(|e| fail(format!("login to {host}:{port} failed: {e}"), "try again"))?;
        if !authed.success() {
            return Err(fail(
                format!("the agent at {host}:{port} refused user `{user}`: wrong key or passphrase"),
                "check --user and --identity against the cluster's `users` section; each refusal makes the next one slower",
            ));
        }
        let channel = session
            .channel_open_session()
            .await
            .map_err(|e| fail(format!("cannot open a channel: {e}"), "try again"))?;
        channel
            .request_subsystem(true, SUBSYSTEM)
            .await
            .map_err(|e| fail(format!("the agent refused the strata subsystem: {e}"), "is this a Strata agent?"))?;
        let conn: Connection<Request, Response> = Connection::new(channel.into_stream(), FrameCodec::default());
        Ok((session, conn))
    })?;
    let mut client = Client {
        rt,
        conn,
        _session: session,
        machine: String::new(),
        user: String::new(),
        role: String::new(),
    };
    match client.request(Request::Hello {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").into(),
    })? {
        Response::Hello {
            machine,
            user,
            role,
            ..
        } => {
            client.machine = machine;
            client.user = user;
            client.role = role;
            Ok(client)
        }
        other => Err(unexpected(other)),
    }
}

/// An answer the command did not expect, as an error (`Error` and `Denied` keep their
/// message).
pub fn unexpected(response: Response) -> CliError {
    match response {
        Response::Error { message, help } => Box::new(Failure { message, help }),
        Response::Denied { message } => fail(
            format!("refused: {message}"),
            "ask an administrator for the operator or administrator role",
        ),
        other => fail(
            format!("unexpected answer from the agent: {other:?}"),
            "this is a bug",
        ),
    }
}

impl Client {
    /// Sends one request and waits for its answer.
    pub fn request(&mut self, request: Request) -> Result<Response, CliError> {
        let conn = &mut self.conn;
        self.rt.block_on(async {
            conn.send(&request)
                .await
                .map_err(|e| fail(format!("lost the agent: {e}"), "try again"))?;
            match conn.recv().await {
                Some(Ok(r)) => Ok(r),
                Some(Err(e)) => Err(fail(format!("bad answer from the agent: {e}"), "try again")),
                None => Err(fail(
                    "the agent closed the connection",
                    "see the agent's log",
                )),
            }
        })
    }

    /// Every live entry of the agent.
    pub fn live(&mut self) -> Result<Live, CliError> {
        match self.request(Request::Live)? {
            Response::Live { entries, .. } => Ok(entries),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_default_port() {
        assert_eq!(split_target("lab1:22").unwrap(), ("lab1".into(), 22));
        assert_eq!(split_target("lab1").unwrap(), ("lab1".into(), 2222));
        assert_eq!(split_target("[::1]:9").unwrap(), ("::1".into(), 9));
        assert_eq!(split_target("::1").unwrap(), ("::1".into(), 2222));
        assert!(split_target("lab1:x").is_err());
    }
}
