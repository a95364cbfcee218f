//! Authentication: who may log in (the state dir's local key, and the cluster's `users`
//! section), with which role, and how long a refusal is held (growing per address).

use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use russh::keys::PublicKey;

use super::penalties::{Penalties, refusal_delay};
use super::users::{Role, User, verify_passphrase};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The SSH user name.
    pub user: String,
    /// What they may do.
    pub role: Role,
}

/// The login rules of one agent.
pub struct Auth {
    /// Whoever holds the state dir's local key is an administrator.
    local_key: PublicKey,
    /// The accounts of the cluster's `users` section, refreshed after every change.
    users: RwLock<Vec<User>>,
    penalties: Mutex<Penalties>,
    /// The delay before a refusal is answered; doubled per further refusal.
    delay_ms: u64,
}

impl Auth {
    /// Rules with only the local key, until the users are known.
    pub fn new(local_key: PublicKey, delay_ms: u64) -> Auth {
        Auth {
            local_key,
            users: RwLock::new(Vec::new()),
            penalties: Mutex::new(Penalties::default()),
            delay_ms,
        }
    }

    /// Replaces the accounts (after a change to the `users` section).
    pub fn set_users(&self, users: Vec<User>) {
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// The role of `user` logging in with `key`, if the key is theirs (or the state dir's
    /// local administrator key, whoever the user name).
    pub fn authorize_key(&self, user: &str, key: &PublicKey) -> Option<Role> {
        if key.key_data() == self.local_key.key_data() {
            return Some(Role::Administrator);
        }
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .find(|u| u.name == user && !u.locked)
            .filter(|u| u.keys.iter().any(|k| k.key_data() == key.key_data()))
            .map(|u| u.role)
    }

    /// The role of `user` if `passphrase` matches their argon2id hash. Slow by design:
    /// call it on a blocking thread.
    pub fn authorize_passphrase(&self, user: &str, passphrase: &str) -> Option<Role> {
        let found = {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .find(|u| u.name == user && !u.locked)
                .and_then(|u| u.passphrase_hash.clone().map(|h| (h, u.role)))
        };
        let (hash, role) = found?;
        verify_passphrase(passphrase, &hash).then_some(role)
    }

    /// Records a refused login from `ip` and returns how long to hold the answer: the
    /// base delay, doubled for each refusal in a row from that address, at most 30 s
    /// (see [`super::penalties`] for how long an address is remembered).
    pub fn refused(&self, ip: Option<IpAddr>) -> Duration {
        let Some(ip) = ip else {
            return Duration::from_millis(self.delay_ms);
        };
        let n = self
            .penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refuse(ip, Instant::now());
        refusal_delay(self.delay_ms, n)
    }

    /// Forgets refusals from `ip` after a successful login.
    pub fn accepted(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.penalties
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(ip);
        }
    }
}
