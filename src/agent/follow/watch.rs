//! The follower's loop in the agent's runtime: what wakes it (the interval, a change of
//! the followed repository's refs seen by notify, a change set reaching the store, a
//! self-heal falling due) and the watch on a local repository's git directory.

use std::sync::Arc;
use std::time::Duration;

/// Runs the follower of `agent` until the runtime stops: on every interval (fetching a
/// remote), on every change of the followed repository's refs (a local one), on every
/// change set that reaches the store (a difference from the head, to report or heal),
/// and when a self-heal is due. Call inside the agent's runtime.
pub fn spawn(agent: Arc<crate::agent::Agent>) {
    let Some(follower) = agent.follower.clone() else {
        return;
    };
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        // Kept for as long as the loop runs: dropping it stops the watching.
        let _watcher = if follower.settings.is_remote() {
            None
        } else {
            watch(&follower.settings.url, tx)
        };
        let mut changes = agent.node.subscribe();
        let mut interval =
            tokio::time::interval(Duration::from_millis(follower.settings.interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let fetch = tokio::select! {
                _ = interval.tick() => true,
                Some(()) = rx.recv() => {
                    // git writes a ref in several steps (lock, write, rename): let it
                    // finish, then take every event of the burst as one.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while rx.try_recv().is_ok() {}
                    false
                }
                r = changes.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    // One look for a burst of change sets (a resync brings many), not
                    // one full plan per change set.
                    while changes.try_recv().is_ok() {}
                    false
                }
                () = async { tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)).await }, if due.is_some() => false,
            };
            let (a, f) = (agent.clone(), follower.clone());
            let next = tokio::task::spawn_blocking(move || {
                f.reconcile(&a.node, fetch, crate::state::wall_ms())
            })
            .await
            .unwrap_or(None);
            due = next.map(|at| {
                let wait = at.saturating_sub(crate::state::wall_ms());
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
        }
    });
}

/// Watches the refs of the repository at `path`: its git directory (`HEAD`,
/// `packed-refs`) and, recursively, `refs/`. `None` (logged): the interval alone is used.
fn watch(
    path: &str,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let dir = match crate::source::refs_dir(std::path::Path::new(path)) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("follow: cannot watch {path} ({e}); reading it on the interval");
            return None;
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| tracing::warn!("follow: cannot watch {path}: {e}; reading it on the interval"))
    .ok()?;
    let watched = watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .and_then(|()| watcher.watch(&dir.join("refs"), RecursiveMode::Recursive));
    if let Err(e) = watched {
        tracing::warn!(
            "follow: cannot watch {}: {e}; reading it on the interval",
            dir.display()
        );
    }
    Some(watcher)
}
