//! The login-delay notice, both ends of it. An agent that will not check a passphrase now
//! (failed logins from the caller's address earned a delay that has not passed, or too
//! many checks are waiting) refuses the attempt offering keyboard-interactive alone, and
//! answers the keyboard-interactive request that follows with this notice as its
//! instructions and no prompt (SSH's refusal itself carries no message; an empty list of
//! methods makes russh's client drop the connection before any message is read). The
//! client reads the seconds back out of it and says "login delayed …; retry in N s" with
//! its own exit code instead of taking the agent for unreachable; OpenSSH prints the
//! instructions as they are.

use std::time::Duration;

/// Why: failed logins earned the caller a delay.
pub const AFTER_FAILURES: &str = "after failed attempts";

/// Why: the agent's passphrase checks are all taken.
pub const BUSY: &str = "while the agent checks other passphrases";

const PREFIX: &str = "login delayed ";
const RETRY: &str = "; retry in ";
const UNIT: &str = " s";

/// The notice for a delay of `retry_in` (rounded up to whole seconds, at least 1), with
/// why it was delayed ([`AFTER_FAILURES`], [`BUSY`]).
pub fn notice(why: &str, retry_in: Duration) -> String {
    let secs = retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0);
    format!("{PREFIX}{why}{RETRY}{}{UNIT}", secs.max(1))
}

/// The seconds to wait, if `message` is a login-delay notice.
pub fn retry_in(message: &str) -> Option<u64> {
    let rest = message.strip_prefix(PREFIX)?;
    let (_, secs) = rest.rsplit_once(RETRY)?;
    secs.strip_suffix(UNIT)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_reads_back_its_seconds_rounded_up() {
        let n = notice(AFTER_FAILURES, Duration::from_millis(3_200));
        assert_eq!(n, "login delayed after failed attempts; retry in 4 s");
        assert_eq!(retry_in(&n), Some(4));
        assert_eq!(retry_in(&notice(BUSY, Duration::ZERO)), Some(1));
        assert_eq!(retry_in("no login within 10s"), None);
        assert_eq!(retry_in("login delayed; retry in soon s"), None);
    }
}
