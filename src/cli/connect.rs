//! Reaching an agent from the command line: `--target`/`--state-dir`, `--fingerprint`/
//! `--known-hosts`, `--identity`/`STRATA_PASSPHRASE` turned into
//! [`ClientOptions`] for the mesh's [`BlockingClient`], and its failures into CLI errors
//! of the right kind.

use std::path::Path;

use super::agent_args::TargetArgs;
use super::{CliError, ErrorKind, Failure};
use crate::agent::state_dir::Layout;
use crate::config::agent_kdl::DEFAULT_PORT;
use crate::model::Key;
use crate::plan::Digests;
use crate::protocol::{
    BlockingClient, ClientOptions, HostKeyPin, Login, PeerError, Request, Response, split_host_port,
};
use crate::state::Live;

/// A logged-in connection to an agent.
pub struct Client {
    inner: BlockingClient,
    /// The agent's machine name.
    pub machine: String,
    /// Who the agent thinks we are.
    pub user: String,
}

fn fail(message: impl Into<String>, help: &str) -> CliError {
    Failure::new(message, help)
}

fn read_key(path: &Path) -> Result<russh::keys::PrivateKey, CliError> {
    russh::keys::load_secret_key(path, None).map_err(|e| {
        fail(
            format!("cannot read the identity {}: {e}", path.display()),
            "give an unencrypted OpenSSH private key (ssh-keygen -t ed25519 -N '')",
        )
    })
}

/// The client options `args` ask for.
fn options(args: &TargetArgs) -> Result<ClientOptions, CliError> {
    let layout = args.state_dir.as_ref().map(Layout::new);
    // On the appliance (`--state-dir` without `--target`), through the state dir's socket:
    // outside the network's budget, so no flood from 127.0.0.1 locks the CLI out.
    let (host, port, socket) = match (&args.target, &layout) {
        (Some(target), _) => {
            let (host, port) = split_host_port(target, DEFAULT_PORT)
                .ok_or_else(|| fail(format!("bad target `{target}`"), "write HOST[:PORT]"))?;
            (host, port, None)
        }
        (None, Some(l)) => {
            let socket = l.socket();
            if !socket.exists() {
                return Err(Failure::of(
                    ErrorKind::Unreachable,
                    format!(
                        "no agent is running on {}: it has no {}",
                        l.dir.display(),
                        socket.display()
                    ),
                    "start it with `strata agent --state-dir DIR`",
                ));
            }
            ("localhost".to_owned(), DEFAULT_PORT, Some(socket))
        }
        (None, None) => {
            // A missing argument, as clap would report one: a usage error.
            return Err(Failure::of(
                ErrorKind::Usage,
                "which agent? no --target or --state-dir given",
                "pass --target HOST[:PORT] (with --identity and --fingerprint), or --state-dir DIR on the appliance",
            ));
        }
    };
    // Named in messages as the user gave it (only `--target` reaches the known hosts).
    let target = args.target.clone().unwrap_or_default();
    let pin = match (&args.fingerprint, &args.known_hosts, &layout) {
        (Some(f), _, _) => HostKeyPin::Fingerprint(f.trim().to_owned()),
        (None, Some(p), _) => HostKeyPin::KnownHosts {
            path: p.clone(),
            learn: args.trust_on_first_use,
        },
        (None, None, Some(l)) if args.target.is_none() => {
            HostKeyPin::Key(read_key(&l.host_key())?.public_key().clone())
        }
        // No pin given: ~/.ssh/known_hosts, as OpenSSH reads it, once it knows the host
        // (or to learn it, with --trust-on-first-use, which records the key there).
        (None, None, _) => {
            let path = default_known_hosts();
            if !args.trust_on_first_use && !knows(&path, &host, port) {
                return Err(fail(
                    format!(
                        "the agent's host key is not pinned ({} has no key for {target})",
                        path.display()
                    ),
                    "pass --fingerprint SHA256:… (the agent prints it when it starts) or --known-hosts FILE; \
                     --trust-on-first-use records a new key",
                ));
            }
            HostKeyPin::KnownHosts {
                path,
                learn: args.trust_on_first_use,
            }
        }
    };
    let login = match (&args.identity, &layout) {
        (Some(p), _) => Login::Key(Box::new(read_key(p)?)),
        (None, Some(l)) => Login::Key(Box::new(read_key(&l.local_key())?)),
        (None, None) => Login::Passphrase(std::env::var("STRATA_PASSPHRASE").map_err(|_| {
            fail(
                "no identity and no passphrase",
                "pass --identity FILE, or set STRATA_PASSPHRASE",
            )
        })?),
    };
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "admin".into());
    let mut options = ClientOptions::new(host, port, pin, user, login);
    options.socket = socket;
    Ok(options)
}

/// `~/.ssh/known_hosts`, where `--trust-on-first-use` records keys and pins are read
/// when no other is given.
fn default_known_hosts() -> std::path::PathBuf {
    std::env::home_dir()
        .unwrap_or_default()
        .join(".ssh/known_hosts")
}

/// Whether the known-hosts file at `path` records any key for the host.
fn knows(path: &Path, host: &str, port: u16) -> bool {
    russh::keys::known_hosts::known_host_keys_path(host, port, path)
        .is_ok_and(|keys| !keys.is_empty())
}

/// Connects and logs in as `args` say, then says hello.
pub fn connect(args: &TargetArgs) -> Result<Client, CliError> {
    let inner = BlockingClient::connect(options(args)?)?;
    for notice in inner.notices() {
        eprintln!("{notice}");
    }
    let info = inner.info().clone();
    Ok(Client {
        inner,
        machine: info.machine,
        user: info.user,
    })
}

impl From<PeerError> for CliError {
    fn from(e: PeerError) -> CliError {
        let (kind, help) = match &e {
            PeerError::Connect { .. } => (
                ErrorKind::Unreachable,
                "is `strata agent` running there, and is the port open?".to_owned(),
            ),
            PeerError::HostKey { .. } => (
                ErrorKind::Refused,
                "check that you reach the right machine; pin its key with --fingerprint".to_owned(),
            ),
            PeerError::Login { .. } => (
                ErrorKind::Refused,
                "check --user and --identity against the cluster's `users` section; each refusal makes the next one slower".to_owned(),
            ),
            PeerError::Delayed { retry_in, .. } => (
                ErrorKind::Delayed,
                format!(
                    "wait {retry_in} s and try again; failed passphrases from this address earned the delay (a key logs in at once)"
                ),
            ),
            PeerError::Lost { .. } => (
                ErrorKind::Unreachable,
                "check `strata log` for the change before trying again".to_owned(),
            ),
            PeerError::Protocol { .. } => (
                ErrorKind::Unreachable,
                "is this a Strata agent?".to_owned(),
            ),
            PeerError::Incompatible { .. } => (
                ErrorKind::Refused,
                "use the same Strata version on both ends".to_owned(),
            ),
        };
        Failure::of(kind, e.to_string(), help)
    }
}

/// An answer the command did not expect, as an error (`Error` and `Denied` keep their
/// message).
pub fn unexpected(response: Response) -> CliError {
    match response {
        Response::Error { message, help } => {
            CliError::new(ErrorKind::Refused, Failure { message, help })
        }
        Response::Denied { message } => Failure::refused(
            format!("refused: {message}"),
            "ask an administrator for a role that may: operator to apply and roll back, administrator for users and membership",
        ),
        other => Failure::bug(format!("unexpected answer from the agent: {other:?}")),
    }
}

impl Client {
    /// Sends one request and waits for its answer.
    pub fn request(&mut self, request: Request) -> Result<Response, CliError> {
        Ok(self.inner.request(request)?)
    }

    /// Every live entry of the agent.
    pub fn live(&mut self) -> Result<Live, CliError> {
        match self.request(Request::Live)? {
            Response::Live { entries, .. } => Ok(entries),
            other => Err(unexpected(other)),
        }
    }

    /// The digest of every live entry of the agent.
    pub fn digests(&mut self) -> Result<Digests, CliError> {
        match self.request(Request::Digests)? {
            Response::Digests { digests, .. } => Ok(digests),
            other => Err(unexpected(other)),
        }
    }

    /// The live entries of `keys` that the agent holds.
    pub fn entries(&mut self, keys: Vec<Key>) -> Result<Live, CliError> {
        match self.request(Request::Entries { keys })? {
            Response::Entries { entries, .. } => Ok(entries),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_mid_request_says_the_outcome_is_unknown() {
        let err = CliError::from(PeerError::Lost {
            addr: "lab1:2222".into(),
            reason: "the connection closed".into(),
        });
        assert_eq!(err.kind, ErrorKind::Unreachable);
        assert!(err.to_string().contains("unknown"), "{err}");
        let help = err
            .diagnostic
            .help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(help.contains("strata log"), "{help}");
        let refused = CliError::from(PeerError::Login {
            addr: "lab1:2222".into(),
            user: "ada".into(),
        });
        assert_eq!(refused.kind, ErrorKind::Refused);
    }

    #[test]
    fn a_delayed_login_is_its_own_kind_never_unreachable() {
        let err = CliError::from(PeerError::Delayed {
            addr: "lab1:2222".into(),
            user: "admin".into(),
            notice: "login delayed after failed attempts; retry in 4 s".into(),
            retry_in: 4,
        });
        assert_eq!(err.kind, ErrorKind::Delayed);
        assert_eq!(
            err.to_string(),
            "the agent at lab1:2222 did not log in user `admin`: login delayed after failed attempts; retry in 4 s"
        );
        let help = err.diagnostic.help().map(|h| h.to_string());
        assert!(help.is_some_and(|h| h.starts_with("wait 4 s")));
    }
}
