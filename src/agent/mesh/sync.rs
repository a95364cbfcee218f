//! Change sets over the mesh: spreading each one committed here, merging those peers
//! send (one at a time, off the runtime), the index of what the store holds, the
//! summary exchange that resyncs two linked members, the membership change sets a
//! peer that parked its link asks for (what reconnects a disconnected machine), and
//! catching up once the store can be written again after a failure (a full disk): a
//! merge that failed left the index without its change set, so the next summary
//! exchange sends it again; the store is probed every [`PROBE_EVERY`] while it fails,
//! and the exchange starts at once when a probe writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::runtime::{Event, Runtime};
use crate::agent::Agent;
use crate::model::{Key, MachineName, Version};
use crate::protocol::wire::{Envelope, PeerMsg};
use crate::replica::{Index, Out, SyncMsg};
use crate::state::{ChangeSet, ChangeSetId, wall_ms};

/// Every this many pings, linked peers compare the change sets they hold.
pub const SYNC_EVERY: u64 = 10;

/// How many change sets passed on a member remembers (then it forgets them all, and
/// the store's index still keeps it from passing on what it holds).
const GOSSIP_MEMORY: usize = 10_000;

/// While the store cannot be written, how often a write is tried.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the task that merges change sets from peers into the store, one at a time, in
/// arrival order, off the runtime, telling `events` as it is done with each; returns its
/// queue.
pub fn start_merger(
    agent: Arc<Agent>,
    events: mpsc::UnboundedSender<Event>,
) -> mpsc::UnboundedSender<ChangeSet> {
    let (merges, mut merge_rx) = mpsc::unbounded_channel::<ChangeSet>();
    tokio::spawn(async move {
        while let Some(cs) = merge_rx.recv().await {
            let merger = agent.clone();
            let version = cs.version.clone();
            let from = cs.version.origin.clone();
            let id = cs.id();
            let done =
                tokio::task::spawn_blocking(move || merger.node.merge_from_peer(cs, wall_ms()))
                    .await;
            let held = match done {
                Ok(Ok(_)) => Some(version),
                Ok(Err(e)) => {
                    agent.metrics.refused("peer");
                    tracing::warn!(%from, change_set = %id, "change set refused: {e}");
                    None
                }
                Err(e) => {
                    tracing::error!("merge task failed: {e}");
                    None
                }
            };
            let _ = events.send(Event::Merged { id, held });
        }
    });
    merges
}

impl Runtime {
    /// Hands change sets a peer sent to the merger: those the store does not hold and
    /// the merger does not have already (gossip brings a change set over several
    /// links; each copy merged would cost a check and a store transaction).
    pub(super) fn merge(&mut self, sets: Vec<ChangeSet>) {
        for cs in sets {
            let id = cs.id();
            let first = !self.replica.index().contains(&id) && self.merging.insert(id);
            self.agent.metrics.copy(first);
            if first {
                let _ = self.merges.send(cs);
            }
        }
    }

    /// The merger is done with change set `id`; `held` is its version if the store
    /// holds it now. It goes into the index before it leaves `merging`, so a copy that
    /// comes meanwhile finds it in one or the other (the store's own announcement of it
    /// may come later).
    pub(super) fn merged(&mut self, id: ChangeSetId, held: Option<Version>) {
        if let Some(version) = held {
            self.replica.insert(&version);
        }
        self.merging.remove(&id);
    }

    /// Answers a message of the summary exchange from `from`.
    pub(super) fn on_sync(&mut self, from: &MachineName, msg: &SyncMsg) {
        for out in self.replica.on_message(from, msg) {
            match out {
                Out::Send(reply) => self.route(self.envelope(from, PeerMsg::Sync(reply))),
                Out::SendChangeSets(ids) => self.send_change_sets(from, &ids),
            }
        }
    }

    /// Sends a change set committed here to every peer that can be reached — above the
    /// full mesh, to the linked neighbours, which pass it on ([`Runtime::gossip`]).
    pub(super) fn spread(&mut self, cs: &Arc<ChangeSet>) {
        if self.table.overlay() {
            self.gossiped.insert(cs.id());
            let sets = vec![(**cs).clone()];
            self.pass_on(&BTreeSet::new(), sets);
            return;
        }
        let peers: Vec<MachineName> = self.table.peers().iter().cloned().collect();
        for p in peers {
            let body = PeerMsg::ChangeSets {
                sets: vec![(**cs).clone()],
            };
            self.route(self.envelope(&p, body));
        }
    }

    /// Above the full mesh: change sets that came over the link to `via` go on at once to
    /// every other linked neighbour, those this machine neither holds nor passed on
    /// already — gossip, so each reaches every member in a few hops over several paths
    /// (anti-entropy repairs what a cut link lost).
    pub(super) fn gossip(&mut self, via: &MachineName, sets: &[ChangeSet]) {
        if self.gossiped.len() > GOSSIP_MEMORY {
            self.gossiped.clear();
        }
        let fresh: Vec<ChangeSet> = sets
            .iter()
            .filter(|cs| {
                let id = cs.id();
                !self.replica.index().contains(&id) && self.gossiped.insert(id)
            })
            .cloned()
            .collect();
        if !fresh.is_empty() {
            // `via` sent them to every neighbour it announced a link to: those that are
            // this machine's neighbours too have them already.
            let mut skip: BTreeSet<MachineName> =
                self.table.announced_links(via).cloned().unwrap_or_default();
            skip.insert(via.clone());
            self.pass_on(&skip, fresh);
        }
    }

    /// Sends `sets` over every live link but those to `skip`.
    fn pass_on(&mut self, skip: &BTreeSet<MachineName>, sets: Vec<ChangeSet>) {
        let to: Vec<MachineName> = self
            .links
            .keys()
            .filter(|m| !skip.contains(*m))
            .cloned()
            .collect();
        for m in to {
            let env = Envelope {
                ttl: 0,
                ..self.envelope(&m, PeerMsg::ChangeSets { sets: sets.clone() })
            };
            if let Some(link) = self.links.get(&m)
                && link.out.try_send(env).is_err()
            {
                tracing::debug!(peer = %m, "link queue full: change sets dropped (anti-entropy repairs it)");
            }
        }
    }

    /// While the store cannot be written, tries a write every [`PROBE_EVERY`] (off the
    /// runtime; one at a time).
    pub(super) fn probe_store(&mut self) {
        let (last, running) = self.probe;
        if running || last.elapsed() < PROBE_EVERY || self.agent.node.store_failure().is_none() {
            return;
        }
        self.probe = (std::time::Instant::now(), true);
        let agent = self.agent.clone();
        let tx = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let wrote = agent.node.probe_store().is_ok();
            let _ = tx.send(Event::Probed(wrote));
        });
    }

    /// A probe ended; once the store is written again, every linked peer is told at once
    /// what this machine holds, so what it missed meanwhile comes back.
    pub(super) fn probed(&mut self, wrote: bool) {
        self.probe.1 = false;
        if wrote {
            tracing::info!("the store is written again: catching up with the peers");
            let linked: Vec<MachineName> = self.links.keys().cloned().collect();
            for p in &linked {
                self.send_have(p);
            }
        }
    }

    /// Tells `peer` which change sets this machine holds, as a summary.
    pub(super) fn send_have(&mut self, peer: &MachineName) {
        let body = PeerMsg::Sync(SyncMsg::Summary(self.replica.summary()));
        self.route(self.envelope(peer, body));
    }

    /// Reads which change sets the store holds (off the runtime); it comes back as
    /// [`Event::Index`].
    pub(super) fn read_index(&self) {
        let agent = self.agent.clone();
        let tx = self.events.clone();
        tokio::task::spawn_blocking(move || match agent.node.change_sets() {
            Ok(sets) => {
                let _ = tx.send(Event::Index(Index::from_versions(
                    sets.iter().map(|c| &c.version),
                )));
            }
            Err(e) => tracing::error!("cannot read the change sets: {e}"),
        });
    }

    /// Sends `peer` the change sets `ids` (read off the runtime).
    fn send_change_sets(&self, peer: &MachineName, ids: &[ChangeSetId]) {
        let versions = self.replica.index().versions_of(ids);
        if versions.is_empty() {
            return;
        }
        let agent = self.agent.clone();
        let tx = self.events.clone();
        let env = self.envelope(peer, PeerMsg::ChangeSets { sets: Vec::new() });
        let peer = peer.clone();
        tokio::task::spawn_blocking(move || match agent.node.change_sets_of(&versions) {
            Ok(sets) if !sets.is_empty() => {
                tracing::info!(%peer, change_sets = sets.len(), "sending what the peer lacks");
                let _ = tx.send(Event::Send(Envelope {
                    body: PeerMsg::ChangeSets { sets },
                    ..env
                }));
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot read change sets for {peer}: {e}"),
        });
    }

    /// Sends `peer` the latest change sets that wrote its membership and ours: what
    /// reconnects a machine that was disconnected. Asked for by a peer that parked its
    /// link to this machine ([`PeerMsg::Parked`]); sent on every new link instead, they
    /// would cost a full copy of a change set that declared the machines (all of a
    /// repo's entries) per link.
    pub(super) fn send_memberships(&self, peer: &MachineName) {
        let agent = self.agent.clone();
        let tx = self.events.clone();
        let keys = [
            Key::Machine(peer.clone()),
            Key::Machine(self.me.machine.clone()),
        ];
        let env = self.envelope(peer, PeerMsg::ChangeSets { sets: Vec::new() });
        tokio::task::spawn_blocking(move || {
            // The live entry's stamp names the change set that wrote it last (last
            // writer wins): two keyed reads, not the whole history.
            let Ok(live) = agent.node.entries(&keys) else {
                return;
            };
            let versions: BTreeSet<Version> =
                live.values().map(|e| e.stamp.version.clone()).collect();
            let versions: Vec<Version> = versions.into_iter().collect();
            let Ok(latest) = agent.node.change_sets_of(&versions) else {
                return;
            };
            if !latest.is_empty() {
                let _ = tx.send(Event::Send(Envelope {
                    body: PeerMsg::ChangeSets { sets: latest },
                    ..env
                }));
            }
        });
    }
}
