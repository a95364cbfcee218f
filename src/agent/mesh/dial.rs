//! Dialing the peers this member has no link to: at most one dial per peer at a time,
//! each bounded in time, and a peer whose dial failed is redialed with a growing pause
//! (one ping interval, doubling, at most [`MAX_BACKOFF`]; each pause taken at random
//! between half and all of it). A dial that succeeds comes
//! back to the runtime as [`Event::Adopt`], one that fails as [`Event::DialFailed`].

use std::time::{Duration, Instant};

use super::link::{self, DialError};
use super::runtime::{Event, Runtime};
use crate::model::MachineName;

/// The longest pause between two dials of an unreachable peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Runtime {
    /// A dial of `peer` failed: said once per outage (and again when it becomes, or stops
    /// being, a refusal by the version rule, which is a warning), then quietly retried.
    pub(super) fn dial_failed(&mut self, peer: MachineName, why: DialError) {
        self.dialing.remove(&peer);
        let said = self.failing.get(&peer).is_some_and(|before| {
            matches!(before, DialError::Version(_)) == matches!(why, DialError::Version(_))
        });
        match (&why, said) {
            (_, true) => tracing::debug!(%peer, "cannot link: {why}"),
            (DialError::Version(_), false) => tracing::warn!(%peer, "link refused: {why}"),
            (DialError::Failed(_), false) => tracing::info!(%peer, "cannot link: {why}"),
        }
        self.failing.insert(peer, why);
    }

    /// Dials every peer that has no link, is not being dialed, and whose pause is over.
    pub(super) fn dial_missing(&mut self) {
        let peers: Vec<MachineName> = self
            .table
            .neighbors()
            .iter()
            .filter(|p| !self.links.contains_key(*p) && !self.dialing.contains(*p))
            .cloned()
            .collect();
        let interval = Duration::from_millis(self.table.interval_ms());
        for p in peers {
            let (at, pause) = self
                .backoff
                .get(&p)
                .copied()
                .unwrap_or((Instant::now(), interval));
            if Instant::now() < at {
                continue;
            }
            // Jittered: the peers that lost a machine together (it was cut off, say) would
            // otherwise redial it in lockstep, and the first link back would wait for the
            // one shared pause to end. Hand-written on purpose: the pause is a row of the
            // runtime's table, read on each tick of its loop, where retry crates (backon,
            // backoff) drive the retries of one future.
            let jittered = pause.mul_f64(rand::random_range(0.5..=1.0));
            self.backoff.insert(
                p.clone(),
                (Instant::now() + jittered, (pause * 2).min(MAX_BACKOFF)),
            );
            let Some(info) = self.members.get(&p) else {
                continue;
            };
            let Some(key) = info
                .host_key
                .as_deref()
                .and_then(|k| russh::keys::PublicKey::from_openssh(k).ok())
            else {
                continue;
            };
            self.dialing.insert(p.clone());
            let me = self.me.clone();
            let address = info.peer_address().to_owned();
            let tx = self.events.clone();
            let timeout = interval
                .mul_f64(crate::protocol::table::DOWN_AFTER)
                .max(Duration::from_secs(2));
            tokio::spawn(async move {
                // The whole dial is bounded too: one that hangs (a link request never
                // answered) would otherwise keep the peer marked as being dialed forever.
                let dialed =
                    tokio::time::timeout(timeout * 2, link::dial(&me, &p, &address, key, timeout))
                        .await
                        .unwrap_or_else(|_| {
                            Err(DialError::Failed(format!(
                                "no link within {:?}",
                                timeout * 2
                            )))
                        });
                let event = match dialed {
                    Ok((conn, session)) => Event::Adopt {
                        peer: p,
                        dialer: me.machine.clone(),
                        conn,
                        session: Some(session),
                    },
                    Err(why) => Event::DialFailed { peer: p, why },
                };
                let _ = tx.send(event);
            });
        }
    }
}
