//! The agent's state directory: created on first start, locked while an agent runs.
//!
//! ```text
//! agent.kdl      local settings (machine name, listen address, hooks, standalone settings)
//! agent.lock     held (flock) by the running agent; a second agent is refused
//! host_key       the SSH host key (ed25519, OpenSSH format, 0600)
//! local_key      a client key (0600) that grants administrator to whoever can read it:
//!                `strata … --state-dir DIR` on the appliance itself
//! store.redb     the durable store (store.redb.damaged-SECONDS: an old one a repair
//!                kept, see [`super::repair`])
//! member.kdl     the cluster this machine is a member of, kept outside the store
//!                (see [`super::member_record`])
//! address        the address the agent is listening on (written after binding)
//! agent.sock     the on-box CLI's way in (a unix socket, 0600; see
//!                [`super::server::local`])
//! running/       the machine's effective config, one KDL file per section
//! ```
//!
//! Who may use it is checked as sshd's StrictModes checks a user's `~/.ssh`, before
//! anything is read: the directory, and every file the agent keeps secrets or
//! instructions in, must be owned by the user the agent runs as; the directory (and the
//! running-config directory) must not be writable by group or others, nor any directory
//! above it unless that one has the sticky bit (as `/tmp` has); the keys and `store.redb`
//! (passphrase hashes) must not be readable by them either, and `agent.kdl` (which names
//! the hooks the agent runs) not writable. What the agent creates it creates private:
//! directories 0700, files 0600.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

use crate::atomic_file::{self, FileMode};
use crate::config::agent_kdl::{DEFAULT_PORT, Settings};

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
    /// A path of the state dir that another user owns or that others may change (or,
    /// for a secret, read).
    #[error("{path}: {message}")]
    #[diagnostic(code(strata::agent::permissions), help("{help}"))]
    Permissions {
        /// Which path.
        path: String,
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// `agent.kdl` is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Settings(#[from] crate::config::agent_kdl::SettingsError),
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
    /// `member.kdl`.
    pub fn member(&self) -> PathBuf {
        self.dir.join("member.kdl")
    }
    /// `agent.sock`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
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
    /// `listen` seed a new `agent.kdl`; `listen` also overrides an existing one. A
    /// relative `dir` is made absolute against the current directory, and the relative
    /// paths of `agent.kdl` against `dir` ([`crate::paths`]): the agent hands them on
    /// (the git hook runs inside its repository), so they must not depend on where it
    /// was started.
    pub fn open(
        dir: &Path,
        machine: Option<&str>,
        listen: Option<&str>,
    ) -> Result<StateDir, StateDirError> {
        let dir = &crate::paths::absolute(dir).map_err(|e| io(dir)(std::io::Error::other(e)))?;
        let layout = Layout::new(dir);
        create_private_dir(dir)?;
        check_dir(dir)?;
        let lock_path = layout.lock();
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let lock = opts.open(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StateDirError::Locked(dir.display().to_string()));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let settings_path = layout.settings();
        let mut settings = if settings_path.exists() {
            check_file(&settings_path, Secrecy::Instructions)?;
            let text = fs::read_to_string(&settings_path).map_err(io(&settings_path))?;
            Settings::parse(&settings_path.display().to_string(), &text)?.made_absolute(dir)
        } else {
            let machine = machine.map(str::to_owned).unwrap_or_else(system_hostname);
            let s = Settings::new(
                machine,
                listen.map_or(format!("0.0.0.0:{DEFAULT_PORT}"), str::to_owned),
            );
            write_atomic(&settings_path, s.to_text().as_bytes(), true)?;
            s
        };
        if let Some(l) = listen {
            settings.listen = l.to_owned();
        }
        let host_key = load_or_create_key(&layout.host_key())?;
        let local_key = load_or_create_key(&layout.local_key())?
            .public_key()
            .clone();
        prepare_store(&layout.store())?;
        let running = settings
            .running_dir
            .clone()
            .unwrap_or_else(|| layout.dir.join("running"));
        if running.exists() {
            check_dir(&running)?;
        }
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
        check_file(path, Secrecy::Secret)?;
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

/// What a file holds, which decides who else may read or write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrecy {
    /// Keys and the store: neither readable nor writable by group or others. The local
    /// key makes whoever reads it an administrator, the host key is the agent's
    /// identity, the store holds passphrase hashes.
    Secret,
    /// `agent.kdl`: not writable by group or others, since it names the commands (hooks)
    /// the agent runs. Reading it gives nothing away the agent would not show.
    Instructions,
}

/// The user the agent runs as.
#[cfg(unix)]
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn refused(path: &Path, message: String, help: impl Into<String>) -> StateDirError {
    StateDirError::Permissions {
        path: path.display().to_string(),
        message,
        help: help.into(),
    }
}

/// Refuses a file another user owns, or that others may use as `secrecy` forbids, as
/// sshd does. The message keeps the mode (`mode 0644`) and the fix (`chmod 600`).
fn check_file(path: &Path, secrecy: Secrecy) -> Result<(), StateDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).map_err(io(path))?;
        let me = euid();
        if meta.uid() != me {
            return Err(refused(
                path,
                format!(
                    "owned by uid {}, not by the user the agent runs as (uid {me})",
                    meta.uid()
                ),
                format!(
                    "`chown {me} {}` if it is yours, or replace it (another user could have written or read it)",
                    path.display()
                ),
            ));
        }
        let mode = meta.mode() & 0o7777;
        let (forbidden, fix, what) = match secrecy {
            Secrecy::Secret => (0o077, "chmod 600", "lets others than its owner use it"),
            Secrecy::Instructions => (0o022, "chmod 600", "lets others than its owner change it"),
        };
        if mode & forbidden != 0 {
            let help = match secrecy {
                Secrecy::Secret => format!(
                    "`{fix} {}` (and replace it if it may have been read)",
                    path.display()
                ),
                Secrecy::Instructions => format!(
                    "`{fix} {}` (and check what it says: it names the hooks the agent runs)",
                    path.display()
                ),
            };
            return Err(refused(path, format!("mode {mode:04o} {what}"), help));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, secrecy);
    Ok(())
}

/// Refuses a directory of the agent's (the state dir, the running-config directory)
/// that another user owns or that group or others may write, and one under a directory
/// that another user than root owns or that group or others may write without the
/// sticky bit: whoever may rename or replace a directory on the way controls what the
/// agent reads.
pub fn check_dir(dir: &Path) -> Result<(), StateDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = euid();
        let meta = fs::metadata(dir).map_err(io(dir))?;
        if meta.uid() != me {
            return Err(refused(
                dir,
                format!(
                    "owned by uid {}, not by the user the agent runs as (uid {me})",
                    meta.uid()
                ),
                "give the agent a directory of its own user (`chown -R`), or run it as the directory's owner",
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(refused(
                dir,
                format!("mode {mode:04o} lets others than its owner change what is in it"),
                format!("`chmod 700 {}`", dir.display()),
            ));
        }
        let real = fs::canonicalize(dir).map_err(io(dir))?;
        for above in real.ancestors().skip(1) {
            let meta = fs::metadata(above).map_err(io(above))?;
            let mode = meta.mode() & 0o7777;
            if meta.uid() != me && meta.uid() != 0 {
                return Err(refused(
                    above,
                    format!(
                        "owned by uid {}, who could replace {} (a directory above the agent's must be owned by root or by the agent's user)",
                        meta.uid(),
                        dir.display()
                    ),
                    "put the agent's directories where only root and the agent's user may change the path",
                ));
            }
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                return Err(refused(
                    above,
                    format!(
                        "mode {mode:04o} lets others rename or replace {}, which is in it",
                        dir.display()
                    ),
                    format!(
                        "`chmod go-w {}`, or give the agent a directory elsewhere",
                        above.display()
                    ),
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700; an existing one is left as it
/// is, for [`check_dir`] to judge.
pub fn create_private_dir(dir: &Path) -> Result<(), StateDirError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

/// Makes sure the store file is private before the store opens it: an existing one is
/// checked; a new one is created empty with mode 0600, which redb initialises (it would
/// otherwise create it with the default mode, readable by everyone).
fn prepare_store(path: &Path) -> Result<(), StateDirError> {
    if path.exists() {
        return check_file(path, Secrecy::Secret);
    }
    let mut opts = OpenOptions::new();
    opts.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map(drop).map_err(io(path))
}

/// Writes `path` atomically through [`crate::atomic_file`] (0600 if `private`, else 0644).
/// Everything in the state dir and the running config is written private.
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
#[path = "state_dir_tests.rs"]
mod tests;
