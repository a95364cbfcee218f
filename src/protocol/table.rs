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
//! - A machine that stays unreachable for [`ALERT_GRACE`] of an interval raises an alert
//!   once; reachable again, it clears it ([`Alert`]). The grace keeps a link replaced by
//!   another (two that crossed) from raising and clearing an alert in one breath, and
//!   still alerts within 3 intervals of the machine's isolation (down after 2.5, plus
//!   0.25). A member never reached yet is given [`FIRST_CONTACT_MS`] to link up first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::link_state::{LinkState, Lsa, Received};
use super::status::{LinkEntry, LinkView};
use crate::model::MachineName;

/// A link over which nothing came for this many ping intervals is down.
pub const DOWN_AFTER: f64 = 2.5;

/// How long (in ping intervals) a machine must stay unreachable before it is alerted.
pub const ALERT_GRACE: f64 = 0.25;

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
}

impl Table {
    /// The table of `me`, pinging every `interval_ms`.
    pub fn new(me: MachineName, interval_ms: u64) -> Table {
        Table {
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
    }

    /// Which peers to keep direct links with: `Some(neighbours)` above the full mesh
    /// (link state is then flooded and routes computed from it), `None` for all of them.
    /// Call after [`Table::set_peers`].
    pub fn set_overlay(&mut self, neighbors: Option<BTreeSet<MachineName>>) {
        match neighbors {
            Some(n) => {
                self.neighbors = n.into_iter().filter(|m| self.peers.contains(m)).collect();
                // Routes come from link state now; what pings reported is not kept.
                self.views.clear();
                if self.link_state.is_none() {
                    self.link_state = Some(LinkState::new(self.me.clone()));
                }
            }
            None => {
                self.neighbors = self.peers.clone();
                self.link_state = None;
            }
        }
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
        self.link_state.as_mut()?.originate(up, wall_ms)
    }

    /// Above the full mesh: an announcement a neighbour flooded.
    pub fn receive_lsa(&mut self, lsa: Lsa) -> Received {
        match &mut self.link_state {
            Some(ls) if lsa.origin == self.me || self.peers.contains(&lsa.origin) => {
                ls.receive(lsa)
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

    /// The links of `from` that still count at `now_ms` (see the module header).
    fn live_edges<'a>(&'a self, from: &MachineName, now_ms: u64) -> Vec<&'a MachineName> {
        if *from == self.me {
            return self
                .peers
                .iter()
                .filter(|p| self.is_up(p, now_ms))
                .collect();
        }
        if let Some(ls) = &self.link_state {
            return ls.two_way(from).collect();
        }
        let Some(view) = self.views.get(from) else {
            return Vec::new();
        };
        let age = now_ms.saturating_sub(view.at_ms);
        view.links
            .iter()
            .filter(|l| {
                l.heard_ago_ms
                    .is_some_and(|ago| ago.saturating_add(age) < self.down_after_ms())
            })
            .map(|l| &l.to)
            .collect()
    }

    /// The first hop towards every reachable peer (a breadth-first search from here over
    /// the links that count).
    pub fn routes(&self, now_ms: u64) -> BTreeMap<MachineName, MachineName> {
        let mut first: BTreeMap<MachineName, MachineName> = BTreeMap::new();
        let mut queue: VecDeque<&MachineName> = VecDeque::new();
        for p in self.live_edges(&self.me, now_ms) {
            first.insert(p.clone(), p.clone());
            queue.push_back(p);
        }
        while let Some(node) = queue.pop_front() {
            let hop = first[node].clone();
            for next in self.live_edges(node, now_ms) {
                if *next != self.me && self.peers.contains(next) && !first.contains_key(next) {
                    first.insert(next.clone(), hop.clone());
                    queue.push_back(next);
                }
            }
        }
        first
    }

    /// The first hop towards `to`, if it can be reached.
    pub fn next_hop(&self, to: &MachineName, now_ms: u64) -> Option<MachineName> {
        if self.is_up(to, now_ms) {
            return Some(to.clone());
        }
        self.routes(now_ms).remove(to)
    }

    /// Reachability changes since the last call, each once (see the module header).
    pub fn alerts(&mut self, now_ms: u64) -> Vec<Alert> {
        let reachable: BTreeSet<MachineName> = self.routes(now_ms).into_keys().collect();
        let grace = (self.interval_ms as f64 * ALERT_GRACE) as u64;
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
            let wait = if self.reached.contains(p) {
                grace
            } else {
                grace.max(FIRST_CONTACT_MS)
            };
            if now_ms.saturating_sub(since) >= wait {
                self.lost.insert(p.clone());
                out.push(Alert::Lost(p.clone()));
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> MachineName {
        MachineName::new(name).unwrap()
    }

    /// A table for `me` among `all`, every interval 100 ms.
    fn table(me: &str, all: &[&str]) -> Table {
        let mut t = Table::new(m(me), 100);
        t.set_peers(all.iter().map(|n| m(n)));
        t
    }

    fn up(to: &str, ago: u64) -> LinkReport {
        LinkReport {
            to: m(to),
            heard_ago_ms: Some(ago),
            rtt_ms: Some(1.0),
        }
    }

    fn down(to: &str) -> LinkReport {
        LinkReport {
            to: m(to),
            heard_ago_ms: None,
            rtt_ms: None,
        }
    }

    #[test]
    fn a_shorter_interval_counts_silence_afresh_from_the_change() {
        let mut t = table("a", &["a", "b", "c"]);
        t.set_interval(2000, 0);
        t.link_up(&m("b"), 1000);
        t.link_up(&m("c"), 1000);
        t.heard(&m("c"), 1000);
        // b last heard 1,000 ms ago: up at 2 s pings, and still up right after the
        // interval drops to 200 ms (down after 500 ms of silence from the change).
        t.set_interval(200, 2000);
        assert!(t.quiet_links(2000).is_empty());
        assert!(t.is_up(&m("b"), 2499));
        assert_eq!(t.quiet_links(2500), [m("b"), m("c")]);
        // A link already down stays down.
        t.link_down(&m("b"));
        t.set_interval(100, 3000);
        assert!(!t.is_up(&m("b"), 3000));
    }

    #[test]
    fn a_link_is_down_after_two_and_a_half_quiet_intervals() {
        let mut t = table("a", &["a", "b"]);
        assert!(!t.is_up(&m("b"), 0), "never opened");
        t.link_up(&m("b"), 1000);
        t.heard(&m("b"), 1100);
        assert!(t.is_up(&m("b"), 1349));
        assert!(!t.is_up(&m("b"), 1350));
        assert_eq!(t.quiet_links(1350), [m("b")]);
        t.link_down(&m("b"));
        assert!(t.quiet_links(1350).is_empty());
        t.heard(&m("b"), 1400);
        assert!(
            !t.is_up(&m("b"), 1400),
            "hearing does not reopen a closed link"
        );
    }

    #[test]
    fn a_cut_link_is_routed_around_through_a_peer_that_reaches_it() {
        let mut t = table("a", &["a", "b", "c"]);
        t.link_up(&m("c"), 0);
        // b is not linked to a, but c reports hearing b 10 ms ago.
        t.view(&m("c"), vec![up("b", 10), up("a", 0)], 0);
        assert_eq!(t.next_hop(&m("c"), 50), Some(m("c")));
        assert_eq!(t.next_hop(&m("b"), 50), Some(m("c")));
        let view = t.own_view(50);
        let b = view.links.iter().find(|l| l.to == "b").unwrap();
        assert!(!b.up);
        assert_eq!(b.via.as_deref(), Some("c"));
        // c's report ages out exactly when c's own link to b would: 10 + 240 ≥ 250.
        t.heard(&m("c"), 240);
        assert_eq!(t.next_hop(&m("b"), 239), Some(m("c")));
        assert_eq!(t.next_hop(&m("b"), 240), None);
    }

    #[test]
    fn routes_take_the_fewest_hops_and_stop_at_unknown_machines() {
        let mut t = table("a", &["a", "b", "c", "d"]);
        t.link_up(&m("b"), 0);
        t.view(&m("b"), vec![up("c", 0), up("x", 0)], 0);
        t.view(&m("c"), vec![up("d", 0)], 0);
        let routes = t.routes(10);
        assert_eq!(routes.get(&m("d")), Some(&m("b")), "a → b → c → d");
        assert_eq!(routes.get(&m("c")), Some(&m("b")));
        assert!(!routes.contains_key(&m("x")), "not a member");
        // A view of a machine a has no path to does not help.
        t.view(&m("d"), vec![up("c", 0)], 0);
        t.link_down(&m("b"));
        assert!(t.routes(10).is_empty());
    }

    #[test]
    fn an_isolated_machine_raises_one_alert_and_its_return_clears_it() {
        let mut t = table("a", &["a", "b", "c"]);
        t.link_up(&m("b"), 0);
        t.link_up(&m("c"), 0);
        t.view(&m("b"), vec![up("c", 0)], 0);
        t.view(&m("c"), vec![up("b", 0)], 0);
        assert!(t.alerts(0).is_empty(), "first contact is no recovery");
        // c goes silent everywhere: a's link, and b's report of it, age out together.
        for now in (100..=200).step_by(100) {
            t.heard(&m("b"), now);
            t.view(&m("b"), vec![up("a", 0), up("c", now)], now);
            assert!(t.alerts(now).is_empty(), "c still counts at {now}");
        }
        for now in (250..=600).step_by(50) {
            t.heard(&m("b"), now);
            t.view(&m("b"), vec![up("a", 0), down("c")], now);
            let alerts = t.alerts(now);
            if now == 300 {
                assert_eq!(alerts, [Alert::Lost(m("c"))], "once, within 3 intervals");
            } else {
                assert!(alerts.is_empty(), "nothing at {now}: {alerts:?}");
            }
        }
        t.link_down(&m("c"));
        t.link_up(&m("c"), 700);
        t.heard(&m("b"), 700);
        assert_eq!(t.alerts(700), [Alert::Recovered(m("c"))]);
    }

    #[test]
    fn a_link_replaced_in_a_breath_raises_nothing() {
        let mut t = table("a", &["a", "b"]);
        t.link_up(&m("b"), 0);
        assert!(t.alerts(0).is_empty());
        t.link_down(&m("b"));
        assert!(
            t.alerts(10).is_empty(),
            "unreachable, but not for a quarter interval"
        );
        t.link_up(&m("b"), 20);
        assert!(t.alerts(60).is_empty());
        t.link_down(&m("b"));
        assert!(t.alerts(70).is_empty());
        assert_eq!(t.alerts(120), [Alert::Lost(m("b"))]);
    }

    #[test]
    fn a_member_never_reached_gets_time_to_link_up() {
        let mut t = table("a", &["a", "b"]);
        assert!(t.alerts(0).is_empty());
        assert!(t.alerts(FIRST_CONTACT_MS - 1).is_empty());
        assert_eq!(t.alerts(FIRST_CONTACT_MS), [Alert::Lost(m("b"))]);
    }

    #[test]
    fn forgetting_a_member_forgets_its_link_and_raises_nothing() {
        let mut t = table("a", &["a", "b"]);
        t.link_up(&m("b"), 0);
        t.link_down(&m("b"));
        t.alerts(0);
        t.set_peers([m("a")]);
        assert!(t.alerts(10).is_empty());
        assert!(t.own_view(10).links.is_empty());
        t.link_up(&m("b"), 20);
        assert!(!t.is_up(&m("b"), 20), "not a member: no link counts");
    }

    #[test]
    fn reports_say_how_long_ago_each_live_link_was_heard() {
        let mut t = table("a", &["a", "b", "c"]);
        t.link_up(&m("b"), 100);
        t.rtt(&m("b"), 0.5);
        let report = t.report(130);
        assert_eq!(report[0].heard_ago_ms, Some(30));
        assert_eq!(report[0].rtt_ms, Some(0.5));
        assert_eq!(report[1].heard_ago_ms, None, "c was never linked");
        assert_eq!(t.report(400)[0].heard_ago_ms, None, "gone quiet");
    }
}
