//! The link table and the route table of one member, pure: no sockets, no clock of its
//! own (times are milliseconds on a monotonic clock the caller passes in), so the whole of
//! it is tested step by step.
//!
//! - A *link* is the direct connection to one peer. It is up from the moment it is
//!   opened until nothing has come over it for [`DOWN_AFTER`] ping intervals (every
//!   member pings every peer once an interval, so a live link always carries something),
//!   or until it closes.
//! - Every ping carries the sender's own links, with how long ago it last heard over
//!   each. So each member knows, as of the last ping from each peer, the links of the
//!   whole mesh, and the age of what it knows: a link another member reported counts
//!   only while what it heard over it is younger than [`DOWN_AFTER`] intervals, counted
//!   from when it heard it. A report thus ages out exactly when the direct link would.
//! - A *route* to a machine is the first hop of a shortest path (by hops) over those
//!   links: the machine itself over a live direct link, else the peer through which it
//!   is reached, else none.
//! - A machine that stays unreachable for a grace ([`Table::alert_grace_ms`]) raises an
//!   alert once; reachable again, it clears it ([`Alert`]). The grace keeps a link
//!   replaced by another (two that crossed) from raising and clearing an alert in one
//!   breath, and still alerts within 3 intervals of the machine's isolation (down after
//!   2.5, plus the grace, plus the time the news takes to cross the cluster). A
//!   replacement takes milliseconds whatever the interval, so the grace is a quarter of
//!   an interval up to [`GRACE_FLOOR_MS`] and shrinks towards an eighth above: at the
//!   default 2 s, 250 ms, leaving a quarter of an interval for the news. A member never
//!   reached yet is given [`FIRST_CONTACT_MS`] to link up first.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::link_state::{LinkState, Lsa, Received};
use super::status::{LinkEntry, LinkView};
use crate::model::MachineName;
use routes::RouteCache;

/// A link over which nothing came for this many ping intervals is down.
pub const DOWN_AFTER: f64 = 2.5;

/// How long (in ping intervals) a machine must stay unreachable before it is alerted, at
/// most ([`Table::alert_grace_ms`]).
pub const ALERT_GRACE: f64 = 0.25;

/// The least share of an interval the alert's grace is.
pub const ALERT_GRACE_MIN: f64 = 0.125;

/// The grace is [`ALERT_GRACE`] of an interval up to this many milliseconds, and no less
/// than this above (nor than [`ALERT_GRACE_MIN`] of an interval).
pub const GRACE_FLOOR_MS: u64 = 100;

/// How long a member never reached yet may take to link up before it is alerted.
pub const FIRST_CONTACT_MS: u64 = 5_000;

/// One link as a ping reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkReport {
    /// The machine at the other end.
    pub to: MachineName,
    /// Milliseconds since the sender last heard over it; `None`: the link is down.
    pub heard_ago_ms: Option<u64>,
    /// Round-trip time of the last ping answered, in milliseconds.
    pub rtt_ms: Option<f64>,
}

/// A reachability change worth an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// The machine can no longer be reached, directly or through others.
    Lost(MachineName),
    /// The machine can be reached again.
    Recovered(MachineName),
}

#[derive(Debug, Clone, Default)]
struct Link {
    /// When the link last carried something; `None`: down.
    heard_ms: Option<u64>,
    rtt_ms: Option<f64>,
}

#[derive(Debug, Clone)]
struct View {
    /// When it arrived, on our clock.
    at_ms: u64,
    links: Vec<LinkReport>,
}

/// One member's view of the mesh.
#[derive(Debug, Clone)]
pub struct Table {
    me: MachineName,
    interval_ms: u64,
    /// The other members (joined, not disconnected).
    peers: BTreeSet<MachineName>,
    links: BTreeMap<MachineName, Link>,
    views: BTreeMap<MachineName, View>,
    /// Peers unreachable since this time, not alerted yet.
    unreachable_since: BTreeMap<MachineName, u64>,
    /// Peers alerted as lost.
    lost: BTreeSet<MachineName>,
    /// Peers reached at least once.
    reached: BTreeSet<MachineName>,
    /// The peers to keep direct links with and ping: all of them in a full mesh, the
    /// overlay's neighbours above it ([`super::overlay`]).
    neighbors: BTreeSet<MachineName>,
    /// Above the full mesh: the link state flooded between members, which routes are
    /// computed from instead of the reports pings carry.
    link_state: Option<LinkState>,
    /// In a full mesh: announcements of members that already run the overlay (each
    /// member switches as it learns of the join that crosses the threshold), kept for
    /// when this machine switches too — they are not sent again.
    early: LinkState,
    /// Bumped whenever the peers or the link state change: routes computed from the
    /// link state stay valid until it moves or this machine's own links go up or down.
    generation: u64,
    /// Above the full mesh, the routes last computed (see [`Table::with_routes`]).
    routes: RouteCache,
}

impl Table {
    /// The table of `me`, pinging every `interval_ms`.
    pub fn new(me: MachineName, interval_ms: u64) -> Table {
        Table {
            early: LinkState::new(me.clone()),
            me,
            interval_ms: interval_ms.max(1),
            peers: BTreeSet::new(),
            links: BTreeMap::new(),
            views: BTreeMap::new(),
            unreachable_since: BTreeMap::new(),
            lost: BTreeSet::new(),
            reached: BTreeSet::new(),
            neighbors: BTreeSet::new(),
            link_state: None,
            generation: 0,
            routes: RouteCache::default(),
        }
    }

    /// This machine.
    pub fn me(&self) -> &MachineName {
        &self.me
    }

    /// The ping interval.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Changes the ping interval (the cluster's setting changed) at `now_ms`. Every link
    /// up until now counts its silence afresh from now: what it carried under the old
    /// interval is not judged by the new one, so a shorter interval does not close links
    /// that were merely waiting for their next ping.
    pub fn set_interval(&mut self, interval_ms: u64, now_ms: u64) {
        let up: Vec<MachineName> = self
            .links
            .keys()
            .filter(|m| self.is_up(m, now_ms))
            .cloned()
            .collect();
        self.interval_ms = interval_ms.max(1);
        for m in up {
            self.heard(&m, now_ms);
        }
    }

    fn down_after_ms(&self) -> u64 {
        (self.interval_ms as f64 * DOWN_AFTER) as u64
    }

    /// The members to keep links with; anything known of others is forgotten. A peer
    /// that leaves the set raises no alert.
    pub fn set_peers(&mut self, peers: impl IntoIterator<Item = MachineName>) {
        self.peers = peers.into_iter().filter(|p| *p != self.me).collect();
        let keep = |m: &MachineName| self.peers.contains(m);
        self.links.retain(|m, _| keep(m));
        self.views.retain(|m, _| keep(m));
        self.unreachable_since.retain(|m, _| self.peers.contains(m));
        self.lost.retain(|m| self.peers.contains(m));
        self.reached.retain(|m| self.peers.contains(m));
        self.neighbors = self.peers.clone();
        if let Some(ls) = &mut self.link_state {
            ls.retain(&self.peers);
        }
        self.early.retain(&self.peers);
        self.generation += 1;
    }

    /// Which peers to keep direct links with: `Some(neighbours)` above the full mesh
    /// (link state is then flooded and routes computed from it), `None` for all of them.
    /// Call after [`Table::set_peers`].
    ///
    /// Answers whether this machine just switched to the overlay: it then sends every
    /// announcement it holds to its neighbours, as over a new link, since those who
    /// switched before it flooded theirs to members that did not keep them yet.
    pub fn set_overlay(&mut self, neighbors: Option<BTreeSet<MachineName>>) -> bool {
        let mut switched = false;
        match neighbors {
            Some(n) => {
                self.neighbors = n.into_iter().filter(|m| self.peers.contains(m)).collect();
                // Routes come from link state now; what pings reported is not kept.
                self.views.clear();
                if self.link_state.is_none() {
                    let early = std::mem::replace(&mut self.early, LinkState::new(self.me.clone()));
                    self.link_state = Some(early);
                    switched = true;
                }
            }
            None => {
                self.neighbors = self.peers.clone();
                self.link_state = None;
                self.early = LinkState::new(self.me.clone());
            }
        }
        self.generation += 1;
        switched
    }

    /// The peers to keep direct links with and ping.
    pub fn neighbors(&self) -> &BTreeSet<MachineName> {
        &self.neighbors
    }

    /// Whether the overlay runs (above the full mesh).
    pub fn overlay(&self) -> bool {
        self.link_state.is_some()
    }

    /// Above the full mesh: this machine's announcement, if its live links changed
    /// since the last one (`wall_ms`: the wall clock, for its sequence number).
    pub fn originate(&mut self, now_ms: u64, wall_ms: u64) -> Option<Lsa> {
        // Called every tick: in a full mesh there is nothing to compute.
        self.link_state.as_ref()?;
        let up: BTreeSet<MachineName> = self
            .peers
            .iter()
            .filter(|p| self.is_up(p, now_ms))
            .cloned()
            .collect();
        let lsa = self.link_state.as_mut()?.originate(up, wall_ms)?;
        self.generation += 1;
        Some(lsa)
    }

    /// Above the full mesh: an announcement a neighbour flooded.
    pub fn receive_lsa(&mut self, lsa: Lsa) -> Received {
        match &mut self.link_state {
            Some(ls) if lsa.origin == self.me || self.peers.contains(&lsa.origin) => {
                let received = ls.receive(lsa);
                if !matches!(received, Received::Old) {
                    self.generation += 1;
                }
                received
            }
            None if self.peers.contains(&lsa.origin) => {
                // Kept for the switch; not flooded on from a full mesh.
                self.early.receive(lsa);
                Received::Old
            }
            _ => Received::Old,
        }
    }

    /// Above the full mesh: the members `m` last announced links to.
    pub fn announced_links(&self, m: &MachineName) -> Option<&BTreeSet<MachineName>> {
        self.link_state.as_ref()?.get(m).map(|l| &l.up)
    }

    /// Above the full mesh: every announcement held, for a new link.
    pub fn lsas(&self) -> Vec<Lsa> {
        self.link_state
            .as_ref()
            .map(LinkState::all)
            .unwrap_or_default()
    }

    /// The members this machine keeps links with.
    pub fn peers(&self) -> &BTreeSet<MachineName> {
        &self.peers
    }

    /// A direct link to `peer` opened.
    pub fn link_up(&mut self, peer: &MachineName, now_ms: u64) {
        if self.peers.contains(peer) {
            self.links.entry(peer.clone()).or_default().heard_ms = Some(now_ms);
        }
    }

    /// The direct link to `peer` closed.
    pub fn link_down(&mut self, peer: &MachineName) {
        if let Some(l) = self.links.get_mut(peer) {
            l.heard_ms = None;
        }
    }

    /// Something came over the direct link to `peer`.
    pub fn heard(&mut self, peer: &MachineName, now_ms: u64) {
        if let Some(l) = self.links.get_mut(peer)
            && l.heard_ms.is_some()
        {
            l.heard_ms = Some(now_ms);
        }
    }

    /// A ping to `peer` over its direct link was answered after `rtt_ms`.
    pub fn rtt(&mut self, peer: &MachineName, rtt_ms: f64) {
        if let Some(l) = self.links.get_mut(peer) {
            l.rtt_ms = Some(rtt_ms);
        }
    }

    /// `from` reported its links (in a ping, directly or routed).
    pub fn view(&mut self, from: &MachineName, links: Vec<LinkReport>, now_ms: u64) {
        // Above the full mesh, routes come from link state; pings carry no links.
        if self.peers.contains(from) && self.link_state.is_none() {
            self.views.insert(
                from.clone(),
                View {
                    at_ms: now_ms,
                    links,
                },
            );
        }
    }

    /// Whether the direct link to `peer` is up at `now_ms`.
    pub fn is_up(&self, peer: &MachineName, now_ms: u64) -> bool {
        self.links
            .get(peer)
            .and_then(|l| l.heard_ms)
            .is_some_and(|h| now_ms.saturating_sub(h) < self.down_after_ms())
    }

    /// The direct links that went quiet: the caller closes them, then reports
    /// [`Table::link_down`].
    pub fn quiet_links(&self, now_ms: u64) -> Vec<MachineName> {
        self.links
            .iter()
            .filter(|(m, l)| l.heard_ms.is_some() && !self.is_up(m, now_ms))
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// This machine's links, as its pings report them.
    pub fn report(&self, now_ms: u64) -> Vec<LinkReport> {
        self.peers
            .iter()
            .map(|p| {
                let link = self.links.get(p);
                LinkReport {
                    to: p.clone(),
                    heard_ago_ms: link
                        .and_then(|l| l.heard_ms)
                        .filter(|_| self.is_up(p, now_ms))
                        .map(|h| now_ms.saturating_sub(h)),
                    rtt_ms: link.and_then(|l| l.rtt_ms),
                }
            })
            .collect()
    }

    /// Reachability changes since the last call, each once (see the module header).
    pub fn alerts(&mut self, now_ms: u64) -> Vec<Alert> {
        let reachable: BTreeSet<MachineName> =
            self.with_routes(now_ms, |r| r.keys().cloned().collect());
        let mut out = Vec::new();
        for p in &self.peers {
            if reachable.contains(p) {
                self.reached.insert(p.clone());
                self.unreachable_since.remove(p);
                if self.lost.remove(p) {
                    out.push(Alert::Recovered(p.clone()));
                }
                continue;
            }
            if self.lost.contains(p) {
                continue;
            }
            let since = *self.unreachable_since.entry(p.clone()).or_insert(now_ms);
            if now_ms.saturating_sub(since) >= self.alert_wait(p) {
                self.lost.insert(p.clone());
                out.push(Alert::Lost(p.clone()));
            }
        }
        out
    }

    /// How long a machine once reached must stay unreachable to be alerted: a quarter of
    /// the interval up to [`GRACE_FLOOR_MS`], then that floor, then an eighth.
    pub fn alert_grace_ms(&self) -> u64 {
        let interval = self.interval_ms as f64;
        let quarter = (interval * ALERT_GRACE).min(GRACE_FLOOR_MS as f64);
        (interval * ALERT_GRACE_MIN).max(quarter) as u64
    }

    /// How long `peer` must stay unreachable to be alerted.
    fn alert_wait(&self, peer: &MachineName) -> u64 {
        let grace = self.alert_grace_ms();
        if self.reached.contains(peer) {
            grace
        } else {
            grace.max(FIRST_CONTACT_MS)
        }
    }

    /// The next time something comes due here with no event to bring it: a direct link
    /// goes quiet ([`Table::quiet_links`]), or a peer unreachable since some time is to
    /// be alerted ([`Table::alerts`]) — so that a caller checking at intervals can wake
    /// for it in between, and a failure is not alerted a check late.
    pub fn next_due(&self) -> Option<u64> {
        let quiet = self
            .links
            .values()
            .filter_map(|l| l.heard_ms)
            .map(|h| h.saturating_add(self.down_after_ms()));
        let alert = self
            .unreachable_since
            .iter()
            .filter(|(p, _)| self.peers.contains(*p) && !self.lost.contains(*p))
            .map(|(p, since)| since.saturating_add(self.alert_wait(p)));
        quiet.chain(alert).min()
    }

    /// This machine's links for `connstatus`.
    pub fn own_view(&self, now_ms: u64) -> LinkView {
        let routes = self.routes(now_ms);
        LinkView {
            machine: self.me.to_string(),
            age_ms: Some(0),
            links: self
                .peers
                .iter()
                .map(|p| LinkEntry {
                    to: p.to_string(),
                    up: self.is_up(p, now_ms),
                    rtt_ms: self.links.get(p).and_then(|l| l.rtt_ms),
                    via: routes.get(p).map(ToString::to_string),
                    why: None,
                })
                .collect(),
        }
    }

    /// Every other member's links as its last ping reported them. Their routes are not
    /// reported; `via` is the peer itself where the link was up.
    pub fn peer_views(&self, now_ms: u64) -> Vec<LinkView> {
        if let Some(ls) = &self.link_state {
            return self
                .peers
                .iter()
                .map(|p| LinkView {
                    machine: p.to_string(),
                    age_ms: None,
                    links: ls
                        .get(p)
                        .map(|l| {
                            l.up.iter()
                                .map(|to| LinkEntry {
                                    to: to.to_string(),
                                    up: true,
                                    rtt_ms: None,
                                    via: Some(to.to_string()),
                                    why: None,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect();
        }
        self.peers
            .iter()
            .map(|p| match self.views.get(p) {
                None => LinkView {
                    machine: p.to_string(),
                    age_ms: None,
                    links: Vec::new(),
                },
                Some(v) => LinkView {
                    machine: p.to_string(),
                    age_ms: Some(now_ms.saturating_sub(v.at_ms)),
                    links: v
                        .links
                        .iter()
                        .map(|l| LinkEntry {
                            to: l.to.to_string(),
                            up: l.heard_ago_ms.is_some(),
                            rtt_ms: l.rtt_ms,
                            via: l.heard_ago_ms.map(|_| l.to.to_string()),
                            why: None,
                        })
                        .collect(),
                },
            })
            .collect()
    }
}

#[path = "table_routes.rs"]
mod routes;
#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
