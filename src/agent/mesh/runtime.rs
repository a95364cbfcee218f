//! The mesh runtime: one task that owns this member's [`Table`] and its links, and turns
//! events (a link opened or closed, an envelope, a change set stored, a tick) into what
//! to send. Everything slow — dialing, reading or merging into the store — runs in tasks
//! of its own that report back as events, so pings never wait behind them. This file
//! holds the event loop, links and routing; its other parts are in [`super::sync`]
//! (change sets), [`super::dial`] (dialing and backoff), [`super::members`] (the peer
//! set) and [`super::alert`].
//!
//! - Links: every member keeps one link to every other member (joined, not
//!   disconnected). Both ends dial when they have none; when two links to one peer
//!   exist, both ends keep the one dialed by the smaller machine name, so they agree.
//!   A peer whose link is down is redialed with a growing pause ([`super::dial`]).
//! - Pings: every interval, to every peer, over its link or routed through another
//!   member; each carries this member's link report, so every member knows every link.
//! - Change sets: each one committed here is sent at once to every peer that can be
//!   reached (directly or routed). On every new link, and every [`SYNC_EVERY`] pings, the
//!   two ends exchange compact summaries of what they hold ([`crate::replica`]) and each
//!   sends what the other lacks, so what a cut link lost arrives later, at the cost of
//!   what differs.
//! - A machine that is not a peer any more (disconnected, removed, or this machine is
//!   itself disconnected) gets no links; a link it opens is *parked*: only change sets
//!   are taken from it (the one that reconnects it, say), for at most [`PARK`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::link::{self, Identity, LinkHandle};
use super::query;
use super::snapshot::Snapshot;
use super::sync::{self, SYNC_EVERY};
use crate::agent::Agent;
use crate::cluster::node::Changed;
use crate::model::{Key, MachineName, Membership, Version};
use crate::protocol::Connection;
use crate::protocol::client::Session;
use crate::protocol::link_state::Lsa;
use crate::protocol::table::Table;
use crate::protocol::wire::{Answer, Envelope, MAX_HOPS, PeerMsg, Query};
use crate::replica::{Index, Replica};
use crate::state::{ChangeSet, ChangeSetId, Live, StoreFailure};

/// How long a parked link is kept.
const PARK: Duration = Duration::from_secs(10);

/// The default ping interval, when the cluster sets none (`cluster-mesh`).
pub const DEFAULT_PING_MS: u64 = 2000;

/// What the runtime reacts to.
pub enum Event {
    /// A link is ready: dialed by `dialer` (this machine, or the peer).
    Adopt {
        /// The machine at the other end.
        peer: MachineName,
        /// Who dialed it.
        dialer: MachineName,
        /// The link.
        conn: Connection<Envelope, Envelope>,
        /// The SSH session of a dialed link.
        session: Option<Session>,
    },
    /// Dialing a peer failed.
    DialFailed {
        /// The peer.
        peer: MachineName,
        /// Why.
        why: link::DialError,
    },
    /// A link ended.
    Closed {
        /// The peer.
        peer: MachineName,
        /// Which link.
        link_id: u64,
        /// Why, if known.
        why: Option<String>,
    },
    /// An envelope arrived over the link to `via`.
    Inbound {
        /// The peer at the other end of the link.
        via: MachineName,
        /// Which link.
        link_id: u64,
        /// The envelope.
        env: Envelope,
    },
    /// The store took a change set.
    Changed(Changed),
    /// The membership as the store now has it.
    Members(Live),
    /// Send an envelope (built by a task: change sets read from the store).
    Send(Envelope),
    /// Which change sets the store holds, read anew (after it was replaced).
    Index(Index),
    /// What `list` and `connstatus` show.
    Query(oneshot::Sender<Snapshot>),
    /// A probe of the store (after a failure to write it) ended: whether it wrote.
    Probed(bool),
    /// The merger is done with a change set a peer sent.
    Merged {
        /// Which.
        id: ChangeSetId,
        /// Its version, when the store holds it now (merged, or held already); `None`
        /// when it was refused or the store could not be written.
        held: Option<Version>,
    },
    /// End the direct link to a peer that sent something no member sends (a bad git
    /// pack, [`super::git_fetch`]); it is dialed again after the usual pause.
    DropLink {
        /// The peer.
        peer: MachineName,
        /// Why.
        why: String,
    },
    /// Ask a member (this one included) a question for `check` or `apply`.
    Ask {
        /// The member.
        to: MachineName,
        /// The question.
        query: Query,
        /// Where the answer goes.
        reply: oneshot::Sender<Answer>,
    },
}

/// The runtime's state.
pub(super) struct Runtime {
    /// The agent: its node (store, pipeline) and settings.
    pub(super) agent: Arc<Agent>,
    /// Who this machine is to its peers.
    pub(super) me: Identity,
    /// Links, reports and routes, pure.
    pub(super) table: Table,
    /// The zero of the table's clock.
    started: Instant,
    /// The runtime's own queue, for the tasks it spawns to report back.
    pub(super) events: mpsc::UnboundedSender<Event>,
    /// The live link to each linked peer.
    pub(super) links: BTreeMap<MachineName, LinkHandle>,
    /// Links of machines that are no peers now, since when.
    pub(super) parked: Vec<(Instant, MachineName, LinkHandle)>,
    /// Every member's membership, this machine's included.
    pub(super) members: BTreeMap<MachineName, Membership>,
    /// Peers being dialed now.
    pub(super) dialing: BTreeSet<MachineName>,
    /// Peers whose last dial failed, and why (said once in the log; `connstatus` shows
    /// it).
    pub(super) failing: BTreeMap<MachineName, link::DialError>,
    /// When each peer may be dialed next, and the pause after that.
    pub(super) backoff: BTreeMap<MachineName, (Instant, Duration)>,
    /// The id of the next link.
    next_link: u64,
    /// The sequence number of the last ping.
    seq: u64,
    /// Ping rounds so far.
    rounds: u64,
    /// Pings sent and not yet answered: (peer, seq) → when.
    pings: BTreeMap<(MachineName, u64), Instant>,
    /// Change sets from peers, to merge.
    pub(super) merges: mpsc::UnboundedSender<ChangeSet>,
    /// Those handed to the merger and not done yet: a copy that comes over another
    /// link meanwhile is not merged again ([`Runtime::merge`]).
    pub(super) merging: std::collections::HashSet<ChangeSetId>,
    /// When the last ping round went out.
    last_ping: Instant,
    /// Which change sets the store holds, and which origins are being pulled from whom.
    pub(super) replica: Replica,
    /// Questions asked of peers, waiting for answers.
    pub(super) asks: query::Pending,
    /// Peers whose last ping said they cannot write their store.
    pub(super) peer_stores: BTreeMap<MachineName, StoreFailure>,
    /// While this machine's store cannot be written: when it was last probed, and
    /// whether a probe is under way.
    pub(super) probe: (Instant, bool),
    /// Above the full mesh: change sets passed on already ([`Runtime::gossip`]).
    pub(super) gossiped: std::collections::HashSet<crate::state::ChangeSetId>,
    /// Above the full mesh: announcements waiting to go to each neighbour, sent at the
    /// next tick or sooner ([`Runtime::send_floods`], [`super::link_state`]): while a
    /// join or a cut link brings a burst of them, one message carries several.
    pub(super) floods: BTreeMap<MachineName, Vec<Lsa>>,
    /// Above the full mesh: the links the overlay wants, each member's (empty in a full
    /// mesh), as this machine's membership says.
    pub(super) overlay_links: BTreeMap<MachineName, BTreeSet<MachineName>>,
    /// Whether what is queued in `floods` goes now rather than at the tick: an
    /// announcement in it loses a link ([`super::link_state`]).
    pub(super) flood_now: bool,
}

/// Starts the runtime on the current tokio runtime; returns the sender of its events.
pub fn start(agent: Arc<Agent>, me: Identity) -> mpsc::UnboundedSender<Event> {
    let (events, mut rx) = mpsc::unbounded_channel();
    let merges = sync::start_merger(agent.clone(), events.clone());
    // Every change the store takes becomes an event.
    let mut changes = agent.node.subscribe();
    let tx = events.clone();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(c) => {
                    if tx.send(Event::Changed(c)).is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the mesh fell behind the store; peers resync");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut rt = Runtime {
        table: Table::new(me.machine.clone(), DEFAULT_PING_MS),
        agent,
        me,
        started: Instant::now(),
        events: events.clone(),
        links: BTreeMap::new(),
        parked: Vec::new(),
        members: BTreeMap::new(),
        dialing: BTreeSet::new(),
        failing: BTreeMap::new(),
        backoff: BTreeMap::new(),
        next_link: 1,
        seq: 0,
        rounds: 0,
        pings: BTreeMap::new(),
        merges,
        merging: Default::default(),
        last_ping: Instant::now(),
        replica: Replica::new(Index::new()),
        asks: query::Pending::default(),
        peer_stores: BTreeMap::new(),
        probe: (Instant::now(), false),
        gossiped: Default::default(),
        floods: BTreeMap::new(),
        overlay_links: BTreeMap::new(),
        flood_now: false,
    };
    tokio::spawn(async move {
        rt.read_members();
        rt.read_index();
        // The periodic work (pings, quiet links, alerts: a route search over every
        // member's links) runs once a tick, not after every event: a full mesh brings
        // several events per member each interval. Between ticks the runtime wakes when
        // a link goes quiet or an alert comes due, and checks alerts after an
        // announcement that a link failed: a failure is alerted when it is due, not up
        // to a tick later at each step (the detection budget is 3 intervals; 2.625 of
        // them, at the default interval, are the quiet link and the alert's grace).
        let mut ticked = Instant::now();
        loop {
            let tick = Duration::from_millis((rt.table.interval_ms() / 8).clamp(5, 250));
            let mut left = tick.saturating_sub(ticked.elapsed());
            let now = rt.now_ms();
            if let Some(due) = rt.table.next_due().filter(|&due| due > now) {
                left = left.min(Duration::from_millis(due - now));
            }
            let mut woke = false;
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        rt.on_event(ev);
                        if rt.flood_now {
                            rt.check_reachability();
                            rt.send_floods();
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep(left) => woke = true,
            }
            if ticked.elapsed() >= tick {
                ticked = Instant::now();
                rt.on_tick();
                rt.send_floods();
            } else if woke {
                rt.check_reachability();
                rt.send_floods();
            }
        }
    });
    events
}

impl Runtime {
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Adopt {
                peer,
                dialer,
                conn,
                session,
            } => self.adopt(peer, dialer, conn, session),
            Event::DialFailed { peer, why } => self.dial_failed(peer, why),
            Event::Closed { peer, link_id, why } => {
                if self.links.get(&peer).is_some_and(|l| l.link_id == link_id) {
                    // Announced at the next tick: a closed link is most often the
                    // overlay rewiring itself, and the link that replaces it goes in the
                    // same announcement.
                    drop(self.forget_link(&peer));
                    tracing::warn!(%peer, "link down: {}", why.unwrap_or_default());
                }
                self.parked.retain(|(_, _, l)| l.link_id != link_id);
            }
            Event::Inbound { via, link_id, env } => self.inbound(via, link_id, env),
            Event::Changed(c) => {
                if !c.replaced
                    && let Some(n) = self.agent.notifier.get()
                {
                    crate::agent::notify::changes::on_change(
                        n,
                        &self.me.machine,
                        &c.change_set,
                        c.local,
                    );
                    crate::agent::notify::changes::conflicts(n, &self.me.machine, &c.lost);
                }
                if c.replaced {
                    self.read_index();
                } else {
                    self.replica.insert(&c.change_set.version);
                }
                if c.local {
                    self.spread(&c.change_set);
                }
                if c.replaced || c.change_set.writes.keys().any(|k| {
                    k.is_membership()
                        || matches!(k, Key::Section { section, .. } if section.as_str() == "cluster-mesh")
                }) {
                    self.read_members();
                }
            }
            Event::Members(live) => {
                self.set_members(&live);
                // A new member is dialed now, not at the next tick.
                self.dial_missing();
            }
            Event::Send(env) => self.route(env),
            Event::Index(index) => self.replica.replace(index),
            Event::Query(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Event::Ask { to, query, reply } => self.ask(to, query, reply),
            Event::DropLink { peer, why } => {
                if let Some(link) = self.links.get(&peer) {
                    tracing::warn!(%peer, "link dropped: {why}");
                    // The link's tasks end and report it closed, as any lost link.
                    link.stop.cancel();
                }
            }
            Event::Probed(wrote) => self.probed(wrote),
            Event::Merged { id, held } => self.merged(id, held),
        }
    }

    fn adopt(
        &mut self,
        peer: MachineName,
        dialer: MachineName,
        conn: Connection<Envelope, Envelope>,
        session: Option<Session>,
    ) {
        if dialer == self.me.machine {
            self.dialing.remove(&peer);
        }
        let link_id = self.next_link;
        self.next_link += 1;
        let handle = link::spawn(
            peer.clone(),
            dialer.clone(),
            link_id,
            conn,
            session,
            self.events.clone(),
        );
        if !self.table.peers().contains(&peer) {
            tracing::info!(%peer, "link parked: not a peer now (disconnected?)");
            // Say so over it: the peer answers with both memberships, which may make
            // this machine take it for a peer again.
            let parked = Envelope {
                from: self.me.machine.clone(),
                to: peer.clone(),
                ttl: 0,
                body: PeerMsg::Parked,
            };
            let _ = handle.out.try_send(parked);
            self.parked.push((Instant::now(), peer, handle));
            return;
        }
        if let Some(old) = self.links.get(&peer)
            && self.table.is_up(&peer, self.now_ms())
            && old.dialer < dialer
        {
            // Both dialed at once: the link the smaller name dialed stays, on both ends.
            tracing::debug!(%peer, "second link dropped: the one {} dialed stays", old.dialer);
            return;
        }
        self.install(peer, handle);
    }

    pub(super) fn install(&mut self, peer: MachineName, handle: LinkHandle) {
        let now = self.now_ms();
        self.links.insert(peer.clone(), handle);
        self.backoff.remove(&peer);
        self.failing.remove(&peer);
        self.table.link_up(&peer, now);
        tracing::info!(%peer, "link up");
        // A new link: say what we hold, so each end pulls what it lacks. (A peer that
        // parks the link says so instead, and gets both memberships: `PeerMsg::Parked`.)
        self.send_have(&peer);
        if self.table.overlay() {
            self.send_all_link_state(&peer);
            // The new link is announced at the next tick, with any others that opened or
            // closed meanwhile (a join opens several at once); one gone quiet, at once.
        }
        self.ping(&peer);
    }

    /// Forgets the link to `peer`, and the pulls waiting on it, and announces it at once.
    fn lose_link(&mut self, peer: &MachineName) {
        drop(self.forget_link(peer));
        self.announce();
    }

    /// Forgets the link to `peer`, and the pulls waiting on it; answers the link, if
    /// there was one.
    pub(super) fn forget_link(&mut self, peer: &MachineName) -> Option<LinkHandle> {
        self.table.link_down(peer);
        self.replica.link_down(peer);
        self.links.remove(peer)
    }

    /// Sends `body` over the direct link to `peer`, if there is one (never routed).
    pub(super) fn send_direct(&mut self, peer: &MachineName, body: PeerMsg) {
        let env = Envelope {
            ttl: 0,
            ..self.envelope(peer, body)
        };
        if let Some(link) = self.links.get(peer)
            && link.out.try_send(env).is_err()
        {
            tracing::debug!(%peer, "link queue full: envelope dropped");
        }
    }

    fn inbound(&mut self, via: MachineName, link_id: u64, env: Envelope) {
        let active = self.links.get(&via).is_some_and(|l| l.link_id == link_id);
        if !active {
            // A parked link: only change sets are taken from it.
            if let PeerMsg::ChangeSets { sets } = env.body {
                self.merge(sets);
            }
            return;
        }
        let now = self.now_ms();
        self.table.heard(&via, now);
        if env.from != via
            && matches!(env.body, PeerMsg::Ping { .. })
            && !self.table.peers().contains(&env.from)
        {
            // The member at the other end speaks under a name no member has: it was
            // renamed while away. Its new membership tells it (`cluster::rename`).
            tracing::info!(peer = %via, was = %env.from, "a renamed member speaks under its old name: sending it its membership");
            self.send_memberships(&via);
        }
        if env.to != self.me.machine {
            if let PeerMsg::ChangeSets { sets } = &env.body
                && env.from == via
                && !self.table.peers().contains(&env.to)
            {
                // Addressed, by the member that sent it over this very link, to a name
                // that is no peer here: this machine, renamed before it learnt so.
                self.merge(sets.clone());
                return;
            }
            if env.ttl > 0 {
                self.route(Envelope {
                    ttl: env.ttl - 1,
                    ..env
                });
            }
            return;
        }
        let from = env.from.clone();
        match env.body {
            PeerMsg::Ping {
                seq,
                links,
                store_failure,
            } => {
                self.table.view(&from, links, now);
                match store_failure {
                    Some(f) => self.peer_stores.insert(from.clone(), f),
                    None => self.peer_stores.remove(&from),
                };
                self.route(self.envelope(&from, PeerMsg::Pong { seq }));
            }
            PeerMsg::Pong { seq } => {
                if let Some(sent) = self.pings.remove(&(from.clone(), seq))
                    && via == from
                {
                    self.table.rtt(&from, sent.elapsed().as_secs_f64() * 1000.0);
                }
            }
            PeerMsg::ChangeSets { sets } => {
                if self.table.overlay() {
                    self.gossip(&via, &sets);
                }
                self.merge(sets)
            }
            PeerMsg::Sync(msg) => self.on_sync(&from, &msg),
            PeerMsg::Ask { id, query } => self.on_ask(from, id, query),
            PeerMsg::Answer { id, answer } => self.asks.answered(id, *answer),
            PeerMsg::Parked => self.send_memberships(&from),
            PeerMsg::LinkState { lsas } => self.on_link_state(&via, lsas),
        }
    }

    pub(super) fn envelope(&self, to: &MachineName, body: PeerMsg) -> Envelope {
        Envelope {
            from: self.me.machine.clone(),
            to: to.clone(),
            ttl: MAX_HOPS,
            body,
        }
    }

    /// Sends `env` towards its machine: over the direct link, else through the first hop
    /// of a route; dropped when there is none (pings come again; sync repairs the rest).
    pub(super) fn route(&mut self, env: Envelope) {
        let Some(hop) = self.table.next_hop(&env.to, self.now_ms()) else {
            return;
        };
        if let Some(link) = self.links.get(&hop)
            && link.out.try_send(env).is_err()
        {
            tracing::debug!(peer = %hop, "link queue full: envelope dropped");
        }
    }

    fn ping(&mut self, peer: &MachineName) {
        self.seq += 1;
        self.pings.insert((peer.clone(), self.seq), Instant::now());
        // Above the full mesh, links travel as flooded link state instead.
        let links = if self.table.overlay() {
            Vec::new()
        } else {
            self.table.report(self.now_ms())
        };
        let body = PeerMsg::Ping {
            seq: self.seq,
            links,
            store_failure: self.agent.node.store_failure(),
        };
        self.route(self.envelope(peer, body));
    }

    /// Closes the links gone quiet and raises the alerts due.
    fn check_reachability(&mut self) {
        let now = self.now_ms();
        for m in self.table.quiet_links(now) {
            tracing::warn!(peer = %m, "link down: nothing heard for {} pings", crate::protocol::table::DOWN_AFTER);
            self.lose_link(&m);
        }
        for alert in self.table.alerts(now) {
            self.alert(alert);
        }
    }

    fn on_tick(&mut self) {
        self.check_reachability();
        self.parked.retain(|(at, _, _)| at.elapsed() < PARK);
        self.asks.expire();
        let interval = Duration::from_millis(self.table.interval_ms());
        if self.last_ping.elapsed() >= interval {
            self.last_ping = Instant::now();
            let peers: Vec<MachineName> = self.table.neighbors().iter().cloned().collect();
            self.rounds += 1;
            let sync = self.rounds.is_multiple_of(SYNC_EVERY);
            for p in &peers {
                self.ping(p);
                if sync && self.links.contains_key(p) {
                    self.send_have(p);
                }
            }
            // Unanswered pings older than the down time are forgotten.
            let horizon = interval.mul_f64(crate::protocol::table::DOWN_AFTER * 2.0);
            self.pings.retain(|_, at| at.elapsed() < horizon);
        }
        self.announce();
        self.dial_missing();
        self.probe_store();
    }
}
