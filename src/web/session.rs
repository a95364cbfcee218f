//! Console sessions: a random id in an HttpOnly, Secure, SameSite=Strict cookie, a new
//! one at every login, and a CSRF token per session that every form carries. A session
//! ends after [`IDLE`] without a request, [`MAX_AGE`] after login, at logout, or when
//! [`CAPACITY`] newer ones push it out. Only the user name is kept: the role is looked
//! up on every request, so a changed role or a locked account takes effect at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "strata_session";
/// A session not used for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is closed this long after login, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; the least recently used goes first.
pub const CAPACITY: usize = 1024;

/// One logged-in user's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who logged in.
    pub user: String,
    /// What every form of this session must carry back.
    pub csrf: String,
    opened: Instant,
    seen: Instant,
}

/// The open sessions.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// 256 random bits, as hex.
fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Sessions {
    /// Opens a session for `user`; returns its id (the cookie's value).
    pub fn open(&self, user: &str, now: Instant) -> String {
        let id = token();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| live(s, now));
        if open.len() >= CAPACITY
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf: token(),
                opened: now,
                seen: now,
            },
        );
        id
    }

    /// The session with id `id`, if it is open; counts as its use.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(id) {
            Some(s) if live(s, now) => {
                s.seen = now;
                Some(s.clone())
            }
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Closes the session with id `id` (logout).
    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.opened) < MAX_AGE
}

/// The session cookie's header value for `id`.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        MAX_AGE.as_secs()
    )
}

/// The header value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The session id a request's `Cookie:` headers carry, if any.
pub fn id_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(from_cookie_header)
}

/// The session id a `Cookie:` header carries, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_new_at_each_login_and_ends_idle_old_or_logged_out() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let a = sessions.open("ops", t0);
        let b = sessions.open("ops", t0);
        assert_ne!(a, b, "a new id at every login");
        assert_eq!(a.len(), 64);
        let s = sessions.get(&a, t0 + IDLE / 2).unwrap();
        assert_eq!(s.user, "ops");
        assert_ne!(s.csrf, sessions.get(&b, t0).unwrap().csrf);
        // Used at IDLE/2, so still open at IDLE, closed IDLE after that use.
        assert!(sessions.get(&a, t0 + IDLE).is_some());
        assert!(
            sessions
                .get(&a, t0 + IDLE * 2 + Duration::from_secs(1))
                .is_none()
        );
        // Kept busy, it still ends MAX_AGE after login.
        let c = sessions.open("ops", t0);
        let mut t = t0;
        while t < t0 + MAX_AGE - IDLE {
            t += IDLE / 2;
            assert!(sessions.get(&c, t).is_some());
        }
        assert!(sessions.get(&c, t0 + MAX_AGE).is_none());
        sessions.close(&b);
        assert!(sessions.get(&b, t0).is_none());
        assert!(sessions.get("not-an-id", t0).is_none());
    }

    #[test]
    fn the_least_recently_used_goes_when_full() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let first = sessions.open("a", t0);
        for i in 1..CAPACITY {
            sessions.open("b", t0 + Duration::from_millis(i as u64));
        }
        sessions.open("c", t0 + Duration::from_secs(5));
        assert!(sessions.get(&first, t0 + Duration::from_secs(5)).is_none());
    }

    #[test]
    fn cookies() {
        assert_eq!(
            from_cookie_header("a=1; strata_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(from_cookie_header("strata_sessionx=abc"), None);
        let set = set_cookie("abc");
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
