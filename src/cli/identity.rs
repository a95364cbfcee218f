//! Which keys the client logs in with, in OpenSSH's order: the ssh-agent's
//! (`SSH_AUTH_SOCK`), then the key files (`IdentityFile` from the SSH config, else
//! `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), then `STRATA_PASSPHRASE`. `--identity
//! FILE` names the one key to use. An encrypted key is signed by the ssh-agent when it
//! holds it; otherwise its passphrase is asked on the terminal, only once the other keys
//! were refused — and without a terminal it is refused, naming ssh-agent as the way.

use std::path::{Path, PathBuf};

use russh::keys::{PrivateKey, PublicKey};

use super::{CliError, Failure};
use crate::protocol::Login;

/// The keys OpenSSH tries when no `IdentityFile` is configured, in its order.
pub const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// The ssh-agent the environment names (`SSH_AUTH_SOCK`) and the keys it holds; none
/// when it is not set or does not answer (as OpenSSH, which then goes on without it).
pub fn agent() -> Option<(PathBuf, Vec<PublicKey>)> {
    let socket = PathBuf::from(std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty())?);
    match crate::protocol::ssh_agent::list(&socket) {
        Ok(keys) => Some((socket, keys)),
        Err(why) => {
            tracing::debug!("{why}");
            None
        }
    }
}

/// A private key file, as read without its passphrase.
enum KeyFile {
    Plain(Box<PrivateKey>),
    /// Encrypted: its public half when the file (OpenSSH's format) or `FILE.pub` shows it.
    Encrypted {
        public: Option<PublicKey>,
        text: String,
    },
}

fn open(path: &Path) -> Result<KeyFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(KeyFile::Plain(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let public = PrivateKey::from_openssh(&text)
                .map(|k| k.public_key().clone())
                .ok()
                .or_else(|| russh::keys::load_public_key(pub_path(path)).ok());
            Ok(KeyFile::Encrypted { public, text })
        }
        Err(e) => Err(e.to_string()),
    }
}

fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn held(agent: Option<&(PathBuf, Vec<PublicKey>)>, public: &PublicKey) -> Option<Login> {
    let (socket, keys) = agent?;
    keys.iter()
        .find(|k| k.key_data() == public.key_data())
        .map(|k| Login::AgentKey {
            socket: socket.clone(),
            key: k.clone(),
        })
}

/// An encrypted key file the ssh-agent does not hold: tried last, once its passphrase
/// is asked.
#[derive(Debug)]
pub struct Locked {
    path: PathBuf,
    text: String,
}

/// The ways to log in, and the encrypted keys left for later.
#[derive(Debug, Default)]
pub struct Identities {
    /// Ready to try, in order.
    pub ways: Vec<Login>,
    /// Encrypted keys not in the agent.
    pub locked: Vec<Locked>,
}

/// `--identity FILE`: that key alone, through the ssh-agent (asked for by `agent` only
/// then) if it holds it, else read (its passphrase asked on the terminal when it is
/// encrypted).
pub fn explicit(
    path: &Path,
    agent: impl FnOnce() -> Option<(PathBuf, Vec<PublicKey>)>,
) -> Result<Login, CliError> {
    let unreadable = |e: String| {
        Failure::new(
            format!("cannot read the identity {}: {e}", path.display()),
            "give an OpenSSH private key (ssh-keygen -t ed25519)",
        )
    };
    match open(path).map_err(unreadable)? {
        KeyFile::Plain(key) => Ok(Login::Key(key)),
        KeyFile::Encrypted { public, text } => {
            let agent = agent();
            if let Some(login) = public.as_ref().and_then(|p| held(agent.as_ref(), p)) {
                return Ok(login);
            }
            let locked = Locked {
                path: path.to_path_buf(),
                text,
            };
            let key = unlock(&locked)?.ok_or_else(|| {
                Failure::new(
                    format!("no passphrase given for the identity {}", path.display()),
                    "type the key's passphrase, or add the key to your ssh-agent (ssh-add)",
                )
            })?;
            Ok(Login::Key(Box::new(key)))
        }
    }
}

/// Without `--identity`: the agent's keys (only those of `files` with `only`, as
/// IdentitiesOnly), then `files` (the configured identity files, else the default ones
/// in `~/.ssh`) that exist and the agent does not hold.
pub fn implicit(
    files: &[PathBuf],
    only: bool,
    home: &Path,
    agent: Option<&(PathBuf, Vec<PublicKey>)>,
) -> Identities {
    let files: Vec<PathBuf> = if files.is_empty() {
        DEFAULT_KEYS
            .iter()
            .map(|k| home.join(".ssh").join(k))
            .collect()
    } else {
        files.to_vec()
    };
    let read: Vec<(PathBuf, KeyFile)> = files
        .into_iter()
        .filter_map(|path| match open(&path) {
            Ok(key) => Some((path, key)),
            Err(why) => {
                // As OpenSSH: a missing or unreadable key is passed over.
                tracing::debug!("identity {} skipped: {why}", path.display());
                None
            }
        })
        .collect();
    let public = |key: &KeyFile| match key {
        KeyFile::Plain(k) => Some(k.public_key().clone()),
        KeyFile::Encrypted { public, .. } => public.clone(),
    };
    let mut out = Identities::default();
    if let Some((socket, keys)) = agent {
        for key in keys {
            let listed = read
                .iter()
                .any(|(_, f)| public(f).is_some_and(|p| p.key_data() == key.key_data()));
            if !only || listed {
                out.ways.push(Login::AgentKey {
                    socket: socket.clone(),
                    key: key.clone(),
                });
            }
        }
    }
    for (path, file) in read {
        if public(&file).is_some_and(|p| held(agent, &p).is_some()) {
            continue; // Already tried through the agent.
        }
        match file {
            KeyFile::Plain(key) => out.ways.push(Login::Key(key)),
            KeyFile::Encrypted { text, .. } => out.locked.push(Locked { path, text }),
        }
    }
    out
}

/// The key of `locked`, decrypted with the passphrase asked on the terminal (three
/// tries, as OpenSSH); `None` if the user gave an empty one (skip this key). Without a
/// terminal: refused, naming ssh-agent.
pub fn unlock(locked: &Locked) -> Result<Option<PrivateKey>, CliError> {
    let path = locked.path.display();
    if !super::tty::attended() {
        return Err(Failure::new(
            format!(
                "the key {path} is encrypted, and there is no terminal to ask its passphrase on"
            ),
            format!(
                "add it to your ssh-agent (`ssh-add {path}`, with SSH_AUTH_SOCK set): Strata uses the agent's keys; or run from a terminal"
            ),
        ));
    }
    // As OpenSSH words it; the retries say why they ask again.
    let mut prompt = format!("Enter passphrase for key '{path}': ");
    for _ in 0..3 {
        let pass = super::tty::ask(&prompt, false).map_err(|e| {
            Failure::new(
                format!("no terminal to ask the passphrase of {path} on: {e}"),
                "add the key to your ssh-agent (ssh-add)",
            )
        })?;
        if pass.is_empty() {
            return Ok(None);
        }
        if let Ok(key) = russh::keys::decode_secret_key(&locked.text, Some(&pass)) {
            return Ok(Some(key));
        }
        prompt = format!("Bad passphrase, try again for {path}: ");
    }
    Err(Failure::new(
        format!("wrong passphrase for the key {path}, three times"),
        "add the key to your ssh-agent (ssh-add), or check its passphrase with `ssh-keygen -y -f FILE`",
    ))
}

/// The help for a login refused while encrypted keys waited: without a terminal, says
/// which and how to use them.
pub fn locked_help(locked: &[Locked]) -> String {
    let names: Vec<String> = locked
        .iter()
        .map(|l| l.path.display().to_string())
        .collect();
    format!(
        "{} encrypted and there is no terminal to ask the passphrase on: add it to your ssh-agent (`ssh-add`, with SSH_AUTH_SOCK set)",
        names.join(", ") + if names.len() == 1 { " is" } else { " are" }
    )
}
