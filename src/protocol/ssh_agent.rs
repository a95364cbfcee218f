//! The user's ssh-agent (`SSH_AUTH_SOCK`), as OpenSSH uses it: the keys it holds are
//! listed, and a login with one of them is signed by the agent, so the private key (and
//! its passphrase) never reaches Strata.

use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;

/// A connection to an ssh-agent.
pub type Agent = AgentClient<tokio::net::UnixStream>;

/// Connects to the agent listening on `socket`.
#[cfg(unix)]
pub async fn connect(socket: &Path) -> Result<Agent, String> {
    AgentClient::connect_uds(socket)
        .await
        .map_err(|e| format!("cannot reach the ssh-agent at {}: {e}", socket.display()))
}

/// Without unix sockets there is no ssh-agent to reach.
#[cfg(not(unix))]
pub async fn connect(socket: &Path) -> Result<Agent, String> {
    Err(format!(
        "cannot reach the ssh-agent at {}: unix sockets need a unix system",
        socket.display()
    ))
}

/// The public keys the agent holds, in its order (certificates left out).
pub async fn keys(agent: &mut Agent) -> Result<Vec<PublicKey>, String> {
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| format!("the ssh-agent did not list its keys: {e}"))?;
    Ok(identities
        .into_iter()
        .filter_map(|identity| match identity {
            AgentIdentity::PublicKey { key, .. } => Some(key),
            AgentIdentity::Certificate { .. } => None,
        })
        .collect())
}

/// The public keys the agent on `socket` holds, for code that is not async (it runs a
/// runtime of its own: not for use inside one).
pub fn list(socket: &Path) -> Result<Vec<PublicKey>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async { keys(&mut connect(socket).await?).await })
}
