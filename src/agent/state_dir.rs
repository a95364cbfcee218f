//! The agent's state directory: created on first start, locked while an agent runs.
//!
//! ```text
//! agent.kdl      local settings (machine name, listen address, hooks, standalone settings)
//! agent.lock     held (flock) by the running agent; a second agent is refused
//! host_key       the SSH host key (ed25519, OpenSSH format, 0600)
//! local_key      a client key (0600) that grants administrator to whoever can read it:
//!                `strata … --state-dir DIR` on the appliance itself
//! store.redb     the durable store
//! address        the address the agent is listening on (written after binding)
//! running/       the machine's effective config, one KDL file per section
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

use super::settings::{DEFAULT_PORT, Settings};
use crate::atomic_file::{self, FileMode};

/// The state dir could not be prepared.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateDirError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    #[diagnostic(code(strata::agent::state_dir))]
    Io {
        /// Where.
        path: String,
        /// What.
        source: std::io::Error,
    },
    /// Another agent holds the lock.
    #[error("another agent is running on {0}")]
    #[diagnostic(
        code(strata::agent::locked),
        help("stop it first, or give this agent another --state-dir")
    )]
    Locked(String),
    /// A key file did not parse.
    #[error("{path}: {message}")]
    #[diagnostic(code(strata::agent::key))]
    Key {
        /// Which file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `agent.kdl` is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Settings(#[from] super::settings::SettingsError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StateDirError + '_ {
    move |source| StateDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Paths inside a state dir.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }
    /// `agent.kdl`.
    pub fn settings(&self) -> PathBuf {
        self.dir.join("agent.kdl")
    }
    /// `host_key`.
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("host_key")
    }
    /// `local_key`.
    pub fn local_key(&self) -> PathBuf {
        self.dir.join("local_key")
    }
    /// `store.redb`.
    pub fn store(&self) -> PathBuf {
        self.dir.join("store.redb")
    }
    /// `address`.
    pub fn address(&self) -> PathBuf {
        self.dir.join("address")
    }
    /// `agent.lock`.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("agent.lock")
    }
}

/// An opened, locked state dir. The lock is released when this is dropped (or the
/// process dies: it is an OS file lock).
#[derive(Debug)]
pub struct StateDir {
    /// Its paths.
    pub layout: Layout,
    /// Its settings.
    pub settings: Settings,
    /// The SSH host key.
    pub host_key: PrivateKey,
    /// The public half of the local administrator key.
    pub local_key: PublicKey,
    _lock: File,
}

impl StateDir {
    /// Opens `dir`, creating it and everything in it on first start. `machine` and
    /// `listen` seed a new `agent.kdl`; `listen` also overrides an existing one.
    pub fn open(
        dir: &Path,
        machine: Option<&str>,
        listen: Option<&str>,
    ) -> Result<StateDir, StateDirError> {
        let layout = Layout::new(dir);
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = layout.lock();
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StateDirError::Locked(dir.display().to_string()));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let settings_path = layout.settings();
        let mut settings = if settings_path.exists() {
            let text = fs::read_to_string(&settings_path).map_err(io(&settings_path))?;
            Settings::parse(&settings_path.display().to_string(), &text)?
        } else {
            let machine = machine.map(str::to_owned).unwrap_or_else(system_hostname);
            let s = Settings::new(
                machine,
                listen.map_or(format!("0.0.0.0:{DEFAULT_PORT}"), str::to_owned),
            );
            write_atomic(&settings_path, s.to_text().as_bytes(), false)?;
            s
        };
        if let Some(l) = listen {
            settings.listen = l.to_owned();
        }
        let host_key = load_or_create_key(&layout.host_key())?;
        let local_key = load_or_create_key(&layout.local_key())?
            .public_key()
            .clone();
        Ok(StateDir {
            layout,
            settings,
            host_key,
            local_key,
            _lock: lock,
        })
    }

    /// The host key's fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.host_key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// Where the running config goes.
    pub fn running_dir(&self) -> PathBuf {
        self.settings
            .running_dir
            .clone()
            .unwrap_or_else(|| self.layout.dir.join("running"))
    }
}

fn system_hostname() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn load_or_create_key(path: &Path) -> Result<PrivateKey, StateDirError> {
    let key_err = |message: String| StateDirError::Key {
        path: path.display().to_string(),
        message,
    };
    if path.exists() {
        check_private(path)?;
        return russh::keys::load_secret_key(path, None).map_err(|e| key_err(e.to_string()));
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| key_err(e.to_string()))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| key_err(e.to_string()))?;
    write_atomic(path, text.as_bytes(), true)?;
    Ok(key)
}

/// Refuses a key file that others than its owner may read or write, as sshd does: the
/// local key makes whoever reads it an administrator, the host key is the agent's identity.
fn check_private(path: &Path) -> Result<(), StateDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StateDirError::Key {
                path: path.display().to_string(),
                message: format!(
                    "mode {mode:04o} lets others than its owner use it; `chmod 600` it \
                     (or replace it, if it may have been read)"
                ),
            });
        }
    }
    Ok(())
}

/// Writes `path` atomically through [`crate::atomic_file`] (0600 if `private`, else 0644).
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), StateDirError> {
    let mode = if private {
        FileMode::Private
    } else {
        FileMode::Shared
    };
    atomic_file::write(path, bytes, mode).map_err(StateDirError::from)
}

/// fsyncs a directory, so renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StateDirError> {
    atomic_file::sync_dir(dir).map_err(StateDirError::from)
}

impl From<atomic_file::WriteError> for StateDirError {
    fn from(e: atomic_file::WriteError) -> StateDirError {
        StateDirError::Io {
            path: e.path.display().to_string(),
            source: e.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_is_created_once_and_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path(), Some("lab1"), Some("127.0.0.1:0")).unwrap();
        assert!(sd.fingerprint().starts_with("SHA256:"));
        assert_eq!(sd.settings.machine, "lab1");
        assert!(matches!(
            StateDir::open(dir.path(), None, None),
            Err(StateDirError::Locked(_))
        ));
        let fp = sd.fingerprint();
        drop(sd);
        // Reopened: same keys, settings kept.
        let sd = StateDir::open(dir.path(), Some("other"), None).unwrap();
        assert_eq!(sd.fingerprint(), fp);
        assert_eq!(sd.settings.machine, "lab1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(sd.layout.host_key())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_files_others_may_read_are_refused_and_never_written() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // A temporary file left behind with a loose mode must not pass it on.
        let tmp = dir
            .path()
            .join(format!(".local_key.strata-{}.tmp", std::process::id()));
        fs::write(&tmp, "old").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        let sd = StateDir::open(dir.path(), Some("lab1"), None).unwrap();
        assert_eq!(mode(&sd.layout.local_key()), 0o600);
        let local_key = sd.layout.local_key();
        drop(sd);
        fs::set_permissions(&local_key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = StateDir::open(dir.path(), None, None).unwrap_err();
        assert!(
            err.to_string().contains("mode 0644") && err.to_string().contains("local_key"),
            "{err}"
        );
        fs::set_permissions(&local_key, fs::Permissions::from_mode(0o600)).unwrap();
        StateDir::open(dir.path(), None, None).unwrap();
    }
}
