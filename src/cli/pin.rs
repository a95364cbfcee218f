//! Which host key an agent must present, and the check russh runs on it: a key read
//! from the state dir, a `SHA256:…` fingerprint, or a known-hosts file (learning a host
//! it knows no key for, with `--trust-on-first-use`). A changed key is always refused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

/// Which host key the agent must present.
#[derive(Debug, Clone)]
pub(super) enum Pin {
    /// Exactly this key (read from the state dir).
    Key(PublicKey),
    /// A key with this `SHA256:…` fingerprint.
    Fingerprint(String),
    /// A key recorded for the host in a known-hosts file (learned if `learn`).
    KnownHosts { path: PathBuf, learn: bool },
}

/// Checks the agent's host key against the pin; remembers why it refused.
pub(super) struct Verifier {
    /// The expected key.
    pub pin: Pin,
    /// The host as the user wrote it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Why the key was refused, for the error message.
    pub refusal: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.refusal.lock().unwrap() =
                Some("the agent presented a certificate, not a host key".into());
            return Ok(false);
        };
        let verdict = verify(&self.pin, &self.host, self.port, key);
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refusal.lock().unwrap() = Some(why);
                Ok(false)
            }
        }
    }
}

/// Whether `key` is the host key `pin` expects; `Err` says why not. With a known-hosts
/// pin that may learn, a key is recorded only when the file knows no key at all for the
/// host: a key of another type than the recorded one is a changed key too, and a changed
/// key is always refused.
fn verify(pin: &Pin, host: &str, port: u16, key: &PublicKey) -> Result<(), String> {
    let seen = key.fingerprint(HashAlg::Sha256).to_string();
    match pin {
        Pin::Key(k) if k.key_data() == key.key_data() => Ok(()),
        Pin::Key(_) => Err(format!(
            "the agent's host key {seen} is not the one in its state dir"
        )),
        Pin::Fingerprint(f) if *f == seen => Ok(()),
        Pin::Fingerprint(f) => Err(format!(
            "the agent's host key is {seen}, not the pinned {f}"
        )),
        Pin::KnownHosts { path, learn } => {
            let refused = |e: &dyn std::fmt::Display| {
                format!("host key {seen} refused: {e} ({})", path.display())
            };
            match russh::keys::check_known_hosts_path(host, port, key, path) {
                Ok(true) => Ok(()),
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
                    eprintln!("recorded the agent's host key {seen} in {}", path.display());
                    Ok(())
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
        let pin = Pin::KnownHosts {
            path: path.clone(),
            learn: true,
        };
        let key = ed25519();
        // First use: learned, then known.
        verify(&pin, "lab1", 2222, &key).unwrap();
        verify(&pin, "lab1", 2222, &key).unwrap();
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
