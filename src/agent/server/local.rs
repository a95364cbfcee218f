//! The on-box way in: a unix socket in the state dir (`agent.sock`), for `strata …
//! --state-dir DIR` on the appliance itself. Over TCP the on-box CLI came from
//! 127.0.0.1 and shared that address's place in the budget ([`super::gate`]): 300 idle
//! sockets from 127.0.0.1 locked it out. This way in is outside the budget, and only the
//! state dir's owner (the agent's user) and root may use it: the socket is 0600 in a
//! 0700 directory, and each connection's peer credentials are checked as well.
//!
//! The same SSH server speaks on it (`russh::server::run_stream` takes any stream): host
//! key, login with the state dir's `local_key`, the `strata` subsystem and every request
//! go the one way they go over TCP, so there is no second request path to keep in step.
//! SSH's cost (a key exchange, ~2 ms) is nothing next to what the CLI does.

use std::path::Path;

use tokio::net::{UnixListener, UnixStream};

/// Binds the socket at `path`, 0600. A socket left by an agent that died is removed
/// first: the caller holds the state dir's lock, so no live agent is behind it.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // sun_path holds 108 bytes with the final NUL.
    let len = path.as_os_str().len();
    if len > 107 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "its path is {len} bytes, and a unix socket's may have at most 107: give the agent a state dir with a shorter path"
            ),
        ));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(listener)
}

/// The user the state dir `dir` belongs to: who, with root, may use the socket.
pub fn owner_of(dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(dir)?.uid())
}

/// Whether a connection from user `uid` may use the socket of a state dir `owner` owns.
pub fn admitted(uid: u32, owner: u32) -> bool {
    uid == owner || uid == 0
}

/// The user at the other end of `stream`, if the system says.
pub fn peer_uid(stream: &UnixStream) -> Option<u32> {
    stream.peer_cred().ok().map(|c| c.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_and_root_are_admitted() {
        assert!(admitted(1000, 1000));
        assert!(admitted(0, 1000));
        assert!(!admitted(1001, 1000));
        assert!(!admitted(65534, 0));
    }

    #[tokio::test]
    async fn the_socket_is_private_replaces_a_stale_open_one_and_knows_its_peer() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        drop(bind(&path).unwrap());
        // Left behind by an agent that died, and opened up to everyone since: replaced
        // by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _client = UnixStream::connect(&path).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(peer_uid(&server), Some(rustix::process::geteuid().as_raw()));
        assert_eq!(
            owner_of(dir.path()).unwrap(),
            rustix::process::geteuid().as_raw()
        );
    }
}
