//! Which host key an agent must present, and the check russh runs on it: exactly a
//! given key (read from a state dir), a `SHA256:…` fingerprint, or a known-hosts file
//! (learning a host it knows no key for, when trust on first use is asked for). A changed
//! key is always refused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

/// Which host key the agent must present.
#[derive(Debug, Clone)]
pub enum HostKeyPin {
    /// Exactly this key (e.g. read from the agent's state dir on the same machine).
    Key(PublicKey),
    /// A key with this `SHA256:…` fingerprint, as OpenSSH prints it.
    Fingerprint(String),
    /// A key recorded for the host in a known-hosts file.
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// Record the key of a host the file knows no key for (trust on first use).
        learn: bool,
    },
}

/// Why the key was refused (or what was learned), shared between the russh handler and
/// the client that started it: the handler moves into the SSH session.
#[derive(Debug, Default)]
pub(super) struct PinReport {
    /// A key recorded in a known-hosts file: "recorded … in PATH".
    pub learned: Option<String>,
}

/// The russh client handler: checks the agent's host key against the pin.
pub(super) struct Verifier {
    /// The expected key.
    pub pin: HostKeyPin,
    /// The host as the caller wrote it (known-hosts entries are by name).
    pub host: String,
    /// The port.
    pub port: u16,
    /// What the check learned.
    pub report: Arc<Mutex<PinReport>>,
}

/// The handler's error: a refused host key is told apart from SSH failures.
#[derive(Debug, thiserror::Error)]
pub(super) enum VerifierError {
    /// The SSH session failed.
    #[error(transparent)]
    Ssh(#[from] russh::Error),
    /// The host key is not the pinned one; says why.
    #[error("{0}")]
    Refused(String),
}

impl client::Handler for Verifier {
    type Error = VerifierError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(VerifierError::Refused(
                "the agent presented a certificate, not a host key".into(),
            ));
        };
        match verify(&self.pin, &self.host, self.port, key) {
            Ok(learned) => {
                if learned.is_some() {
                    self.report
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .learned = learned;
                }
                Ok(true)
            }
            Err(why) => Err(VerifierError::Refused(why)),
        }
    }
}

/// Whether `key` is the host key `pin` expects: `Ok` with a note if the key was just
/// recorded, `Err` saying why not. With a known-hosts pin that may learn, a key is
/// recorded only when the file knows no key at all for the host: a key of another type
/// than the recorded one is a changed key too, and a changed key is always refused.
pub(super) fn verify(
    pin: &HostKeyPin,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<Option<String>, String> {
    let seen = key.fingerprint(HashAlg::Sha256).to_string();
    match pin {
        HostKeyPin::Key(k) if k.key_data() == key.key_data() => Ok(None),
        HostKeyPin::Key(_) => Err(format!(
            "the agent's host key {seen} is not the one in its state dir"
        )),
        HostKeyPin::Fingerprint(f) if *f == seen => Ok(None),
        HostKeyPin::Fingerprint(f) => Err(format!(
            "the agent's host key is {seen}, not the pinned {f}"
        )),
        HostKeyPin::KnownHosts { path, learn } => {
            let refused = |e: &dyn std::fmt::Display| {
                format!("host key {seen} refused: {e} ({})", path.display())
            };
            match russh::keys::check_known_hosts_path(host, port, key, path) {
                Ok(true) => Ok(None),
                Ok(false) if *learn => {
                    // russh reports a recorded key of another type as "not known";
                    // OpenSSH would not learn over it, and neither do we.
                    let recorded = russh::keys::known_hosts::known_host_keys_path(host, port, path)
                        .map_err(|e| refused(&e))?;
                    if let Some((line, other)) = recorded.first() {
                        return Err(format!(
                            "the agent's host key {seen} ({}) is not the {} key recorded for it at {}:{line}; \
                             a changed key is never learned",
                            key.algorithm(),
                            other.algorithm(),
                            path.display()
                        ));
                    }
                    russh::keys::known_hosts::learn_known_hosts_path(host, port, key, path)
                        .map_err(|e| {
                            format!("cannot record the host key in {}: {e}", path.display())
                        })?;
                    Ok(Some(format!(
                        "recorded the agent's host key {seen} in {}",
                        path.display()
                    )))
                }
                Ok(false) => Err(format!(
                    "the agent's host key {seen} is not in {}",
                    path.display()
                )),
                Err(e) => Err(refused(&e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519() -> PublicKey {
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    #[test]
    fn trust_on_first_use_learns_only_a_host_it_knows_no_key_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let pin = HostKeyPin::KnownHosts {
            path: path.clone(),
            learn: true,
        };
        let key = ed25519();
        // First use: learned, then known.
        let learned = verify(&pin, "lab1", 2222, &key).unwrap();
        assert!(learned.is_some_and(|l| l.starts_with("recorded")));
        assert_eq!(verify(&pin, "lab1", 2222, &key).unwrap(), None);
        // Another key of the same type: refused.
        let err = verify(&pin, "lab1", 2222, &ed25519()).unwrap_err();
        assert!(err.contains("refused"), "{err}");
        // Only a key of another type on record: still a changed key, never learned.
        std::fs::write(
            &path,
            "[lab2]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLufKbIOIn+RrfaOpmVAW18Wr+ukdAdcUZd33gX5fz7PxTdcKM3P9X1z5/Newngu8CpErN45yht7GkDSBLgjaZc=\n",
        )
        .unwrap();
        let err = verify(&pin, "lab2", 2222, &key).unwrap_err();
        assert!(err.contains("never learned"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
