//! Authentication: who may log in (the state dir's local key, and the cluster's `users`
//! section), with which role, and the delays refusals earn (growing per address, and for
//! passphrases per user name too). Passphrase checks are argon2, deliberately slow and
//! memory-hungry: an address with a delay pending is not checked at all (it is told when
//! to retry), a user's delay from other addresses is waited out *before* hashing (at most
//! [`MAX_HOLD`], so the real user still gets in), and checks run one at a time, so a
//! flood of guesses costs the agent neither memory nor cores.

use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use russh::keys::PublicKey;

use super::penalties::{MAX_HOLD, Penalties, refusal_delay};
use super::users::{Role, User, verify_passphrase};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The SSH user name.
    pub user: String,
    /// What they may do.
    pub role: Role,
    /// Whose key logged in: a user's, a member's host key, or a registered joiner's.
    pub principal: Principal,
}

impl Authed {
    /// A user of the `users` section (or the local key) with `role`.
    pub fn user(user: impl Into<String>, role: Role) -> Authed {
        Authed {
            user: user.into(),
            role,
            principal: Principal::User,
        }
    }

    /// The agent's own follower, as it applies a commit of the branch it follows: user
    /// `name` (shown in `log`) with an administrator's authority. Only the follower's code
    /// builds it; no login does, so its applies are known by the path they come through,
    /// whatever a user is called.
    pub fn follower(name: impl Into<String>) -> Authed {
        Authed {
            user: name.into(),
            role: Role::Administrator,
            principal: Principal::Follower,
        }
    }
}

/// Who logged in, beyond the user name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// An operator: a user of the `users` section, or the state dir's local key.
    #[default]
    User,
    /// A member of the cluster, with the host key its membership records (user
    /// [`PEER_USER`]): it may open a mesh link and nothing else.
    Peer(crate::model::MachineName),
    /// A machine registered with `prepjoin add`, with its host key (user
    /// [`JOIN_USER`]): it may join and nothing else.
    Joiner(crate::model::MachineName),
    /// The agent's own repo follower, in process ([`Authed::follower`]): never a login.
    Follower,
}

/// The SSH user a member logs in as, with its host key, to open a mesh link.
pub const PEER_USER: &str = "strata-peer";

/// The SSH user a registered machine logs in as, with its host key, to join.
pub const JOIN_USER: &str = "strata-join";

/// The largest argon2 memory cost (KiB) a stored hash may ask for: a hash asking for more
/// is refused rather than allowed to make every login allocate it.
pub const MAX_HASH_MEMORY_KIB: u64 = 64 * 1024;

/// The login rules of one agent.
pub struct Auth {
    /// Whoever holds the state dir's local key is an administrator.
    local_key: PublicKey,
    /// The accounts of the cluster's `users` section, refreshed after every change.
    users: RwLock<Vec<User>>,
    /// The host keys of the members and of the machines registered to join.
    machines: RwLock<MachineKeys>,
    /// Bumped at each [`Auth::set_machines`] ([`Auth::authorize_machine_within`]).
    machines_changed: tokio::sync::watch::Sender<u64>,
    penalties: Mutex<Penalties>,
    /// Refused passphrases per user name, whatever the address.
    user_penalties: Mutex<Penalties<String>>,
    /// The delay before a refusal is answered; doubled per further refusal.
    delay_ms: u64,
    /// The one thread that checks passphrases (see [`Hasher`]).
    hasher: Hasher,
}

/// The host keys machines log in with, refreshed from the membership after every change.
#[derive(Debug, Default, Clone)]
pub struct MachineKeys {
    /// Members that have joined (disconnected ones included: they may reconnect).
    pub members: Vec<(crate::model::MachineName, PublicKey)>,
    /// Machines registered with `prepjoin add`.
    pub pending: Vec<(crate::model::MachineName, PublicKey)>,
}

/// How many passphrase checks may wait for the hashing thread; more are refused at once.
const HASH_QUEUE: usize = 64;

/// One thread that runs every argon2 check, one at a time: each check takes its hash's
/// memory (19 MiB by default), and a single thread keeps that memory to one allocator
/// arena instead of one per blocking thread, so parallel guesses leave the agent's memory
/// flat (measured: 12 at once used to take the peak from 20 MB to 157 MB).
struct Hasher {
    jobs: Option<std::sync::mpsc::SyncSender<HashJob>>,
}

type HashJob = (String, String, tokio::sync::oneshot::Sender<bool>);

impl Hasher {
    fn start() -> Hasher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(HASH_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("strata-argon2".into())
            .spawn(move || {
                for (passphrase, hash, reply) in rx {
                    let _ = reply.send(verify_passphrase(&passphrase, &hash));
                }
            });
        match spawned {
            Ok(_) => Hasher { jobs: Some(tx) },
            Err(e) => {
                tracing::error!(
                    "cannot start the passphrase thread, passphrases cannot log in: {e}"
                );
                Hasher { jobs: None }
            }
        }
    }

    /// Whether `passphrase` matches `hash`; `None` when the queue is full.
    async fn verify(&self, passphrase: &str, hash: &str) -> Option<bool> {
        let Some(jobs) = &self.jobs else {
            return Some(false);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if jobs
            .try_send((passphrase.to_owned(), hash.to_owned(), reply))
            .is_err()
        {
            tracing::warn!("passphrase check refused: {HASH_QUEUE} checks are already waiting");
            return None;
        }
        Some(answer.await.unwrap_or(false))
    }
}

/// What a passphrase check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The passphrase is the user's: they log in with this role.
    Accepted(Role),
    /// Wrong user or passphrase, or a locked account.
    Refused,
    /// Not checked: every place in the queue of checks is taken. Not a refusal.
    Busy,
}

impl Auth {
    /// Rules with only the local key, until the users are known.
    pub fn new(local_key: PublicKey, delay_ms: u64) -> Auth {
        Auth {
            local_key,
            users: RwLock::new(Vec::new()),
            machines: RwLock::new(MachineKeys::default()),
            machines_changed: tokio::sync::watch::Sender::new(0),
            penalties: Mutex::new(Penalties::default()),
            user_penalties: Mutex::new(Penalties::default()),
            delay_ms,
            hasher: Hasher::start(),
        }
    }

    /// How long until the delay refusals from `ip` earned has passed: an attempt from it
    /// before then is answered at once, unchecked, with that wait.
    pub fn address_delay(&self, ip: Option<IpAddr>) -> Duration {
        let Some(ip) = ip else {
            return Duration::ZERO;
        };
        self.penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remaining(&ip, Instant::now(), |n| refusal_delay(self.delay_ms, n))
    }

    /// How long a passphrase attempt for `user` is held before it is checked: what remains
    /// of the delay refused passphrases for that user earned (from other addresses: an
    /// address's own are [`Auth::address_delay`]), at most [`MAX_HOLD`]. Everyone waits
    /// and is then checked, so guesses from elsewhere slow the real user but cannot
    /// shut them out.
    pub fn user_hold(&self, user: &str) -> Duration {
        self.user_penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remaining(&user.to_owned(), Instant::now(), |n| {
                refusal_delay(self.delay_ms, n)
            })
            .min(MAX_HOLD)
    }

    /// Records a refused passphrase from `ip` for `user`, attempted at `at`; returns how
    /// long to hold the answer (as [`Auth::refused`], counting the user's refusals too).
    pub fn refused_passphrase(&self, ip: Option<IpAddr>, user: &str, at: Instant) -> Duration {
        let by_user = self
            .user_penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refuse(user.to_owned(), at);
        self.refused(ip, at)
            .max(refusal_delay(self.delay_ms, by_user).min(MAX_HOLD))
    }

    /// The role `user` has now, if the account exists and is not locked: a web console
    /// session asks on every request, so a changed role or a locked account takes
    /// effect at once.
    pub fn role_of(&self, user: &str) -> Option<Role> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .find(|u| u.name == user && !u.locked)
            .map(|u| u.role)
    }

    /// Replaces the accounts (after a change to the `users` section).
    pub fn set_users(&self, users: Vec<User>) {
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// Replaces the machines' host keys (after a change to the membership).
    pub fn set_machines(&self, keys: MachineKeys) {
        *self.machines.write().unwrap_or_else(|e| e.into_inner()) = keys;
        self.machines_changed.send_modify(|n| *n += 1);
    }

    /// [`Auth::authorize_machine`], but a key unknown now is checked again at each
    /// change of the machines' keys, for up to `wait`: members dial a machine as soon as
    /// they learn that it joined, before it has taken the cluster's state, and a new
    /// member dials members the news has not reached yet — a moment later either knows
    /// the other. A key still unknown then is refused.
    pub async fn authorize_machine_within(
        &self,
        user: &str,
        key: &PublicKey,
        wait: Duration,
    ) -> Result<Principal, String> {
        let mut changed = self.machines_changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let answer = self.authorize_machine(user, key);
            if answer.is_ok() {
                return answer;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return answer,
            }
        }
    }

    /// Who a machine logging in as [`PEER_USER`] (a member) or [`JOIN_USER`] (a machine
    /// registered to join) with host key `key` is; `Err` says why not, for the log.
    pub fn authorize_machine(&self, user: &str, key: &PublicKey) -> Result<Principal, String> {
        let machines = self.machines.read().unwrap_or_else(|e| e.into_inner());
        let find = |list: &[(crate::model::MachineName, PublicKey)]| {
            list.iter()
                .find(|(_, k)| k.key_data() == key.key_data())
                .map(|(m, _)| m.clone())
        };
        match user {
            PEER_USER => find(&machines.members).map(Principal::Peer).ok_or_else(|| {
                "not the host key of a member (a removed machine's key is refused too)".to_owned()
            }),
            JOIN_USER => find(&machines.pending)
                .map(Principal::Joiner)
                .ok_or_else(|| {
                    "not the host key of a machine registered with `prepjoin add`".to_owned()
                }),
            _ => Err(format!("`{user}` is no machine login")),
        }
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

    /// Whether `passphrase` is `user`'s (and then their role), checked against their
    /// argon2id hash on the one hashing thread (slow by design).
    pub async fn authorize_passphrase(&self, user: &str, passphrase: &str) -> Checked {
        let found = {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .find(|u| u.name == user && !u.locked)
                .and_then(|u| u.passphrase_hash.clone().map(|h| (h, u.role)))
        };
        let Some((hash, role)) = found else {
            return Checked::Refused;
        };
        if hash_memory_kib(&hash).is_none_or(|m| m > MAX_HASH_MEMORY_KIB) {
            tracing::error!(
                user,
                "passphrase hash refused: its argon2 memory cost is missing or above {MAX_HASH_MEMORY_KIB} KiB"
            );
            return Checked::Refused;
        }
        match self.hasher.verify(passphrase, &hash).await {
            Some(true) => Checked::Accepted(role),
            Some(false) => Checked::Refused,
            None => Checked::Busy,
        }
    }

    /// Records a refused login from `ip`, attempted at `at`, and returns how long to hold
    /// the answer from then: the base delay, doubled for each refusal in a row from that
    /// address, at most [`MAX_HOLD`] (the address's delay grows on to 30 s: see
    /// [`super::penalties`]). The delay counts from the attempt, not from the end of its
    /// argon2 check: an answer held that long finds the delay passed, so a client that
    /// waits for it and tries again is checked, not told to wait.
    pub fn refused(&self, ip: Option<IpAddr>, at: Instant) -> Duration {
        let Some(ip) = ip else {
            return Duration::from_millis(self.delay_ms).min(MAX_HOLD);
        };
        let n = self
            .penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refuse(ip, at);
        refusal_delay(self.delay_ms, n).min(MAX_HOLD)
    }

    /// Forgets refusals from `ip`, and for `user`, after a successful login.
    pub fn accepted(&self, ip: Option<IpAddr>, user: &str) {
        if let Some(ip) = ip {
            self.penalties
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(&ip);
        }
        self.user_penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(&user.to_owned());
    }
}

/// The memory cost (`m=`, KiB) an argon2 PHC string asks for.
fn hash_memory_kib(hash: &str) -> Option<u64> {
    hash.split('$')
        .flat_map(|part| part.split(','))
        .find_map(|kv| kv.strip_prefix("m="))
        .and_then(|m| m.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let key =
            russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
                .unwrap();
        Auth::new(key.public_key().clone(), 100)
    }

    #[test]
    fn an_address_waits_out_its_own_delay_and_a_users_delay_is_held_at_most_max_hold() {
        let a = auth();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(a.address_delay(Some(ip)), Duration::ZERO);
        assert_eq!(a.user_hold("ada"), Duration::ZERO);
        assert_eq!(
            a.refused_passphrase(Some(ip), "ada", Instant::now()),
            Duration::from_millis(100)
        );
        assert_eq!(
            a.refused_passphrase(Some(ip), "ada", Instant::now()),
            Duration::from_millis(200)
        );
        // That address is told to wait; the user is held from any address, other users
        // and other addresses are not.
        let pending = a.address_delay(Some(ip));
        assert!(pending > Duration::from_millis(150) && pending <= Duration::from_millis(200));
        assert!(a.user_hold("ada") > Duration::from_millis(150));
        assert_eq!(a.address_delay(Some(other)), Duration::ZERO);
        assert_eq!(a.user_hold("bob"), Duration::ZERO);
        a.accepted(Some(ip), "ada");
        assert_eq!(a.address_delay(Some(ip)), Duration::ZERO);
        assert_eq!(a.user_hold("ada"), Duration::ZERO);

        // Guesses from many addresses: the user's delay grows to 30 s, what is held of it
        // stops at MAX_HOLD, and so does the hold of each refusal.
        let slow = Auth::new(a.local_key.clone(), 1000);
        for n in 0..20u8 {
            let held = slow.refused_passphrase(
                Some(IpAddr::from([198, 51, 100, n])),
                "admin",
                Instant::now(),
            );
            assert!(held <= MAX_HOLD, "{held:?}");
        }
        assert_eq!(slow.user_hold("admin"), MAX_HOLD);
        assert_eq!(slow.address_delay(Some(other)), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_machine_key_the_membership_brings_in_a_moment_is_let_in() {
        let a = std::sync::Arc::new(auth());
        let key = |_| {
            russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
                .unwrap()
                .public_key()
                .clone()
        };
        let (new, stranger) = (key(1), key(2));
        let name = crate::model::MachineName::new("lab2.example.com").unwrap();
        let later = a.clone();
        let learnt = new.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Another change first (a pending machine), then the member's key.
            later.set_machines(MachineKeys::default());
            later.set_machines(MachineKeys {
                members: vec![(name, learnt)],
                pending: Vec::new(),
            });
        });
        let wait = Duration::from_secs(5);
        let answer = a.authorize_machine_within(PEER_USER, &new, wait).await;
        assert!(
            matches!(&answer, Ok(Principal::Peer(m)) if m.as_str() == "lab2.example.com"),
            "{answer:?}"
        );
        // A key nobody has is refused once the wait is over.
        let started = Instant::now();
        let wait = Duration::from_millis(100);
        assert!(
            a.authorize_machine_within(PEER_USER, &stranger, wait)
                .await
                .is_err()
        );
        assert!(started.elapsed() >= wait);
    }

    #[tokio::test]
    async fn a_hash_asking_for_too_much_memory_never_logs_in() {
        assert_eq!(
            hash_memory_kib("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            Some(19456)
        );
        assert_eq!(hash_memory_kib("not a hash"), None);
        let a = auth();
        let doc: kdl::KdlDocument = "users { user \"eve\" role=\"operator\" passphrase-hash=\"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"; }"
            .parse()
            .unwrap();
        let users =
            super::super::users::parse_users(&crate::model::Node::from_kdl(&doc.nodes()[0]))
                .unwrap();
        a.set_users(users);
        assert_eq!(
            a.authorize_passphrase("eve", "anything").await,
            Checked::Refused
        );
    }
}
