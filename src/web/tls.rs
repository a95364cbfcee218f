//! The console's certificate: the operator's (`web cert= key=`, PEM), or one the agent
//! makes on first start — self-signed, for the machine's name, its address, the listen
//! address and `localhost` — and keeps in its state dir (`web.crt`, `web.key`, 0600), so
//! its fingerprint stays the same across restarts and a browser's exception holds.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::agent_web::Web;

/// The self-signed certificate's file in the state dir.
pub const CERT_FILE: &str = "web.crt";
/// Its private key's.
pub const KEY_FILE: &str = "web.key";

/// What serves TLS, and the fingerprint to print.
pub struct Tls {
    /// Accepts TLS connections with the certificate.
    pub acceptor: TlsAcceptor,
    /// The leaf certificate's SHA-256, as browsers show it (`AB:CD:…`).
    pub fingerprint: String,
}

/// Loads the certificate `web` names, or the state dir's own (made if missing).
/// `names`: what a self-signed certificate is made for.
pub fn load(state_dir: &Path, web: &Web, names: &[String]) -> Result<Tls, String> {
    let (cert_path, key_path) = match &web.cert {
        Some((cert, key)) => (cert.clone(), key.clone()),
        None => {
            let (cert, key) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
            if !cert.exists() || !key.exists() {
                make_self_signed(&cert, &key, names)?;
            }
            (cert, key)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert_path.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert_path.display()
        ));
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read the private key {}: {e}", key_path.display()))?;
    // ring, which russh and the mail and webhook clients already bring; its key
    // exchanges are the classical ones (aws-lc-rs, with post-quantum ones, would add a
    // C build of its own to the tree).
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a certificate rustls serves: {e}",
                cert_path.display(),
                key_path.display()
            )
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

/// `AB:CD:…`: SHA-256 of the certificate's DER, as browsers and `openssl x509
/// -fingerprint -sha256` show it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), String> {
    let mut names: Vec<String> = names.to_vec();
    names.push("localhost".into());
    names.sort();
    names.dedup();
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
    let write = |path: &Path, text: String| {
        crate::agent::state_dir::write_atomic(path, text.as_bytes(), true)
            .map_err(|e| e.to_string())
    };
    // The key first: a certificate without its key would be taken as complete.
    write(key, made.signing_key.serialize_pem())?;
    write(cert, made.cert.pem())?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for the web console");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let web = Web {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: None,
        };
        let names = vec!["lab1.example.com".to_owned(), "127.0.0.1".to_owned()];
        let first = load(dir.path(), &web, &names).unwrap();
        let again = load(dir.path(), &web, &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
    }

    #[test]
    fn a_missing_or_wrong_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "not a certificate\n").unwrap();
        std::fs::write(&key, "nor a key\n").unwrap();
        let web = Web {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: Some((cert.clone(), key)),
        };
        let e = load(dir.path(), &web, &[]).err().unwrap();
        assert!(e.contains("c.pem holds no PEM certificate"), "{e}");
    }
}
