//! The membership as the mesh sees it: which members are peers (joined, not
//! disconnected, while this machine is in the cluster and not disconnected itself), the
//! cluster's ping interval, closing links to machines that are no peers any more and
//! installing parked links of those that are again, and recording this machine's own
//! host key, serial, peer address and versions in its membership.

use std::time::Duration;

use super::runtime::{Event, Runtime};
use crate::cluster::membership::{cluster_name, members};
use crate::model::{EntryValue, Key, MachineName, Membership, SectionName};
use crate::protocol::overlay;
use crate::state::{Live, wall_ms};

impl Runtime {
    /// Reads the membership in a blocking task; it comes back as [`Event::Members`].
    pub(super) fn read_members(&self) {
        let agent = self.agent.clone();
        let tx = self.events.clone();
        tokio::task::spawn_blocking(move || {
            match agent
                .node
                .live_under(&["@".into(), "cluster/cluster-mesh".into()])
            {
                Ok(live) => {
                    let _ = tx.send(Event::Members(live));
                }
                Err(e) => tracing::error!("cannot read the membership: {e}"),
            }
        });
    }

    /// Takes the membership as the store now has it.
    pub(super) fn set_members(&mut self, live: &Live) {
        self.members = members(live)
            .map(|(m, info)| (m.clone(), info.clone()))
            .collect();
        if let Some(ms) = ping_interval(live)
            && ms != self.table.interval_ms()
        {
            tracing::info!(ping_interval_ms = ms, "ping interval set");
            let now = self.now_ms();
            self.table.set_interval(ms, now);
        }
        let mine = self.members.get(&self.me.machine);
        // Others dial this machine by what its membership says; alone, nobody needs it
        // (a joiner learns it when this machine registers on seeing the new member).
        let others = self
            .members
            .iter()
            .any(|(m, info)| *m != self.me.machine && info.joined());
        if let Some(m) = mine
            && others
        {
            self.register_self(m);
        }
        let in_mesh = cluster_name(live).is_some() && mine.is_some_and(|m| !m.disconnected);
        let peers: Vec<MachineName> = if in_mesh {
            self.members
                .iter()
                .filter(|(m, info)| **m != self.me.machine && info.joined() && !info.disconnected)
                .map(|(m, _)| m.clone())
                .collect()
        } else {
            Vec::new()
        };
        self.table.set_peers(peers);
        // Above the full mesh, links to the overlay's neighbours only.
        let up_to = full_mesh_up_to(live).unwrap_or(overlay::FULL_MESH_UP_TO);
        self.overlay_links = if self.table.peers().len() + 1 > up_to {
            let mut all = self.table.peers().clone();
            all.insert(self.me.machine.clone());
            overlay::graph(&all, up_to)
        } else {
            Default::default()
        };
        let overlay = self.overlay_links.get(&self.me.machine).cloned();
        if overlay.is_some() != self.table.overlay() {
            tracing::info!(
                members = self.table.peers().len() + 1,
                full_mesh_up_to = up_to,
                "{}",
                if overlay.is_some() {
                    "overlay: links to ring neighbours only"
                } else {
                    "full mesh"
                }
            );
        }
        let switched = self.table.set_overlay(overlay);
        // Links to machines that are no peers (or neighbours) any more close (after a
        // moment, so that what was just queued for them — their removal, say — is
        // written first).
        let gone: Vec<MachineName> = self
            .links
            .keys()
            .filter(|m| !self.table.neighbors().contains(*m))
            .cloned()
            .collect();
        for m in gone {
            if let Some(link) = self.forget_link(&m) {
                tracing::info!(peer = %m, "link closed: not a peer any more");
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    drop(link);
                });
            }
        }
        // Just switched to the overlay: what this machine holds goes to its neighbours,
        // as over a new link (those that switched first sent theirs to members that did
        // not keep them yet).
        if switched {
            let linked: Vec<MachineName> = self.links.keys().cloned().collect();
            for m in &linked {
                self.send_all_link_state(m);
            }
        }
        // Parked links of machines that are peers again become links.
        let parked = std::mem::take(&mut self.parked);
        for (at, m, link) in parked {
            if self.table.peers().contains(&m) && !self.links.contains_key(&m) {
                self.install(m, link);
            } else {
                self.parked.push((at, m, link));
            }
        }
    }

    /// Records in this machine's own membership what the mesh needs of it — its host
    /// key, serial, peer address and versions — when they are missing or changed (the
    /// machine that created the cluster, one that now listens elsewhere, one upgraded,
    /// one whose entry an apply that missed its join rewrote: see `state::facts`).
    fn register_self(&self, mine: &Membership) {
        let own = self.me.facts();
        if own.fill(&self.me.machine, mine) == *mine {
            return;
        }
        let agent = self.agent.clone();
        let me = self.me.machine.clone();
        tokio::task::spawn_blocking(move || {
            let response = agent
                .node
                .commit(|core| core.register(&me, &own, wall_ms()));
            if let crate::protocol::Response::Error { message, .. } = response {
                tracing::error!(
                    "cannot record this machine's host key in the membership: {message}"
                );
            }
        });
    }
}

/// The cluster's ping interval (`cluster-mesh ping-interval-ms=…`), if it sets one.
fn ping_interval(live: &Live) -> Option<u64> {
    mesh_setting(live, "ping-interval-ms")
}

/// Up to how many members the cluster keeps a full mesh (`cluster-mesh
/// full-mesh-up-to=…`), if it says.
fn full_mesh_up_to(live: &Live) -> Option<usize> {
    mesh_setting(live, "full-mesh-up-to").and_then(|n| usize::try_from(n).ok())
}

/// A number the cluster's `cluster-mesh` section sets.
fn mesh_setting(live: &Live, prop: &str) -> Option<u64> {
    let key = Key::section(
        crate::model::Mode::Cluster,
        SectionName::new("cluster-mesh").ok()?,
    );
    match live.get(&key).and_then(|e| e.value.as_ref()) {
        Some(EntryValue::Section(node)) => match node.prop(prop) {
            Some(crate::model::Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    }
}
