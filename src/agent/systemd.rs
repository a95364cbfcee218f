//! Telling systemd how the agent is (sd_notify(3), for a `Type=notify` unit such as
//! `packaging/strata-agent.service`), through the sd-notify crate: `READY=1` once the
//! agent listens and its mesh runs, `STATUS=` (what `systemctl status` shows: where it
//! listens, how many peers are linked, whether its store is Degraded), `WATCHDOG=1`
//! while it is healthy, and `STOPPING=1` on SIGTERM. Without `$NOTIFY_SOCKET` (not
//! started by systemd) it does nothing.
//!
//! Healthy means more than "the process runs": each ping follows a check, on a
//! blocking thread, that takes the store lock and asks the mesh's event loop for a
//! snapshot. A deadlocked store lock, a stalled or dead mesh loop, or a blocking pool
//! with no thread free leaves the check unanswered, the pings stop, and systemd
//! restarts the agent after `WatchdogSec`. A store that cannot be written (a full disk)
//! is not a hang: the agent runs on Degraded, as `status` says, and STATUS says so too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use super::Agent;

/// How often STATUS is refreshed when systemd asks for no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Says READY (with a first STATUS) and starts the watchdog and status task. Call once
/// the agent listens on `bound` and its mesh has started, on the runtime.
pub fn ready(agent: &Arc<Agent>, bound: SocketAddr) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let status = format!("serving on {bound}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    let watchdog = sd_notify::watchdog_enabled();
    // A third of the period: a check that takes up to a third still leaves a third spare.
    let every = watchdog.map_or(STATUS_EVERY, |period| period / 3);
    let agent = agent.clone();
    tokio::spawn(watch(
        every,
        watchdog.is_some(),
        move || health(&agent, bound),
        send,
    ));
}

/// Says STOPPING (the agent drains its requests, then exits).
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing the requests in flight"),
    ]);
}

/// Sends `states` to systemd; a failure is logged, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd through $NOTIFY_SOCKET: {e}");
    }
}

/// The agent's status line when it is healthy; `None` when its mesh is not running.
/// Blocking: takes the store lock and waits for the mesh's event loop.
fn health(agent: &Agent, bound: SocketAddr) -> Option<String> {
    drop(agent.node.lock_core());
    let snapshot = agent.mesh.get()?.snapshot()?;
    let mut status = format!("serving on {bound}; ");
    if snapshot.peers.is_empty() {
        status.push_str("no peers");
    } else {
        status.push_str(&format!(
            "{} of {} linked",
            snapshot.direct.len(),
            crate::text::count(snapshot.peers.len(), "peer")
        ));
    }
    if let Some(failure) = agent.node.store_failure() {
        status.push_str(&format!(
            "; Degraded: cannot write its store: {}",
            // One line: systemd reads a newline as the end of the field.
            failure.error.replace('\n', " ")
        ));
    }
    Some(status)
}

/// Every `every`: runs `check` on a blocking thread and, when it answers within `every`
/// (`Some(status)`), pings the watchdog (if `watchdog`) and sends the status when it
/// changed. A check that does not answer in time, panics or says `None` sends nothing.
async fn watch<C, S>(every: Duration, watchdog: bool, check: C, mut send: S)
where
    C: Fn() -> Option<String> + Clone + Send + 'static,
    S: FnMut(&[NotifyState<'_>]),
{
    let mut told = String::new();
    loop {
        tokio::time::sleep(every).await;
        let answer = tokio::time::timeout(every, tokio::task::spawn_blocking(check.clone())).await;
        let status = match answer {
            Ok(Ok(Some(status))) => status,
            Ok(Ok(None)) => {
                tracing::error!("systemd watchdog: the mesh is not running; not pinging");
                continue;
            }
            Ok(Err(e)) => {
                tracing::error!("systemd watchdog: the health check failed ({e}); not pinging");
                continue;
            }
            Err(_) => {
                tracing::error!(
                    "systemd watchdog: the store lock or the mesh did not answer within {every:?}; not pinging"
                );
                continue;
            }
        };
        let mut states = Vec::new();
        if watchdog {
            states.push(NotifyState::Watchdog);
        }
        if status != told {
            states.push(NotifyState::Status(&status));
        }
        if !states.is_empty() {
            send(&states);
        }
        told = status;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// The messages sent, each as systemd receives it.
    type Sent = Arc<Mutex<Vec<String>>>;

    /// What `watch` sent, and the sender that records it.
    fn recorder() -> (Sent, impl FnMut(&[NotifyState<'_>]) + Send) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let into = sent.clone();
        let send = move |states: &[NotifyState<'_>]| {
            let text: String = states.iter().map(|s| format!("{s}\n")).collect();
            into.lock().unwrap().push(text);
        };
        (sent, send)
    }

    #[tokio::test]
    #[expect(
        clippy::await_holding_lock,
        reason = "the test holds the lock the check needs: a hung store lock"
    )]
    async fn pings_while_the_check_answers_and_stops_while_it_hangs() {
        let store = Arc::new(Mutex::new(()));
        let lock = store.clone();
        let check = move || {
            drop(lock.lock().unwrap());
            Some("serving on 127.0.0.1:2222; no peers".to_owned())
        };
        let (sent, send) = recorder();
        let every = Duration::from_millis(25);
        let task = tokio::spawn(watch(every, true, check, send));
        tokio::time::sleep(every * 8).await;
        {
            let sent = sent.lock().unwrap();
            assert_eq!(
                sent[0],
                "WATCHDOG=1\nSTATUS=serving on 127.0.0.1:2222; no peers\n"
            );
            assert!(sent.len() >= 2, "{sent:?}");
            // The status is sent again only when it changes.
            assert!(sent[1..].iter().all(|m| m == "WATCHDOG=1\n"), "{sent:?}");
        }
        // A stuck lock: the check never answers, and no more pings go out.
        let held = store.lock().unwrap();
        // A check already past the lock may still ping: give it time to.
        tokio::time::sleep(every * 6).await;
        let before = sent.lock().unwrap().len();
        tokio::time::sleep(every * 8).await;
        assert_eq!(sent.lock().unwrap().len(), before, "pinged while hung");
        // Released: the pings resume.
        drop(held);
        tokio::time::sleep(every * 8).await;
        assert!(
            sent.lock().unwrap().len() > before,
            "no ping after recovery"
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_mesh_that_is_not_running_is_not_healthy_and_no_watchdog_sends_status_only() {
        let (sent, send) = recorder();
        let every = Duration::from_millis(10);
        let task = tokio::spawn(watch(every, true, || None, send));
        tokio::time::sleep(every * 6).await;
        assert!(sent.lock().unwrap().is_empty());
        task.abort();
        let (sent, send) = recorder();
        let task = tokio::spawn(watch(every, false, || Some("a".to_owned()), send));
        tokio::time::sleep(every * 6).await;
        assert_eq!(*sent.lock().unwrap(), ["STATUS=a\n"]);
        task.abort();
    }
}
