//! The mesh runtime: one task that owns this member's [`Table`] and its links, and turns
//! events (a link opened or closed, an envelope, a change set stored, a tick) into what
//! to send. Everything slow — dialing, reading or merging into the store — runs in tasks
//! of its own that report back as events, so pings never wait behind them.
//!
//! - Links: every member keeps one link to every other member (joined, not
//!   disconnected). Both ends dial when they have none; when two links to one peer
//!   exist, both ends keep the one dialed by the smaller machine name, so they agree.
//!   A peer whose link is down is redialed with a growing pause (one ping interval,
//!   doubling, at most [`MAX_BACKOFF`]).
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
use crate::agent::Agent;
use crate::agent::membership::{OwnFacts, cluster_name, members};
use crate::agent::node::Changed;
use crate::mesh::Connection;
use crate::mesh::client::Session;
use crate::mesh::status::{ConnStatus, LinkView};
use crate::mesh::table::{Alert, Table};
use crate::mesh::wire::{Answer, Envelope, MAX_HOPS, PeerMsg, Query};
use crate::model::{EntryValue, Key, MachineName, Membership, SectionName};
use crate::replica::{Index, Out, SyncMsg};
use crate::state::{ChangeSet, ChangeSetId, Live, wall_ms};

/// The longest pause between two dials of an unreachable peer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Every this many pings, linked peers compare the change sets they hold.
const SYNC_EVERY: u64 = 10;

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
        why: String,
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

/// The mesh as this member sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every member's membership (this machine's included).
    pub members: BTreeMap<MachineName, Membership>,
    /// The peers this machine keeps links with.
    pub peers: BTreeSet<MachineName>,
    /// The first hop to every reachable peer.
    pub routes: BTreeMap<MachineName, MachineName>,
    /// Peers with a live direct link.
    pub direct: BTreeSet<MachineName>,
    /// `connstatus`.
    pub status: ConnStatus,
}

/// The runtime's state.
struct Runtime {
    agent: Arc<Agent>,
    me: Identity,
    table: Table,
    started: Instant,
    events: mpsc::UnboundedSender<Event>,
    links: BTreeMap<MachineName, LinkHandle>,
    parked: Vec<(Instant, MachineName, LinkHandle)>,
    members: BTreeMap<MachineName, Membership>,
    /// Peers being dialed now.
    dialing: BTreeSet<MachineName>,
    /// Peers whose last dial failed (said once in the log).
    failing: BTreeSet<MachineName>,
    /// When each peer may be dialed next, and the pause after that.
    backoff: BTreeMap<MachineName, (Instant, Duration)>,
    next_link: u64,
    seq: u64,
    /// Ping rounds so far.
    rounds: u64,
    /// Pings sent and not yet answered: (peer, seq) → when.
    pings: BTreeMap<(MachineName, u64), Instant>,
    merges: mpsc::UnboundedSender<ChangeSet>,
    last_ping: Instant,
    /// Which change sets the store holds.
    index: Index,
    /// Questions asked of peers, waiting for answers.
    asks: query::Pending,
}

/// Starts the runtime on the current tokio runtime; returns the sender of its events.
pub fn start(agent: Arc<Agent>, me: Identity) -> mpsc::UnboundedSender<Event> {
    let (events, mut rx) = mpsc::unbounded_channel();
    // Change sets from peers are merged one at a time, in arrival order, off the runtime.
    let (merges, mut merge_rx) = mpsc::unbounded_channel::<ChangeSet>();
    let merger = agent.clone();
    tokio::spawn(async move {
        while let Some(cs) = merge_rx.recv().await {
            let agent = merger.clone();
            let from = cs.version.origin.clone();
            let id = cs.id();
            let done =
                tokio::task::spawn_blocking(move || agent.node.merge_from_peer(cs, wall_ms()))
                    .await;
            match done {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(%from, change_set = %id, "change set refused: {e}"),
                Err(e) => tracing::error!("merge task failed: {e}"),
            }
        }
    });
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
        failing: BTreeSet::new(),
        backoff: BTreeMap::new(),
        next_link: 1,
        seq: 0,
        rounds: 0,
        pings: BTreeMap::new(),
        merges,
        last_ping: Instant::now(),
        index: Index::new(),
        asks: query::Pending::default(),
    };
    tokio::spawn(async move {
        rt.read_members();
        rt.read_index();
        loop {
            let tick = Duration::from_millis((rt.table.interval_ms() / 4).clamp(5, 500));
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => rt.on_event(ev),
                    None => break,
                },
                () = tokio::time::sleep(tick) => {}
            }
            rt.on_tick();
        }
    });
    events
}

impl Runtime {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Reads the membership in a blocking task; it comes back as [`Event::Members`].
    fn read_members(&self) {
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

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Adopt {
                peer,
                dialer,
                conn,
                session,
            } => self.adopt(peer, dialer, conn, session),
            Event::DialFailed { peer, why } => {
                self.dialing.remove(&peer);
                // Said once per outage, then quietly retried.
                if self.failing.insert(peer.clone()) {
                    tracing::info!(%peer, "cannot link: {why}");
                } else {
                    tracing::debug!(%peer, "cannot link: {why}");
                }
            }
            Event::Closed { peer, link_id, why } => {
                if self.links.get(&peer).is_some_and(|l| l.link_id == link_id) {
                    self.links.remove(&peer);
                    self.table.link_down(&peer);
                    tracing::warn!(%peer, "link down: {}", why.unwrap_or_default());
                }
                self.parked.retain(|(_, _, l)| l.link_id != link_id);
            }
            Event::Inbound { via, link_id, env } => self.inbound(via, link_id, env),
            Event::Changed(c) => {
                if c.replaced {
                    self.read_index();
                } else {
                    self.index.insert(&c.change_set.version);
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
            Event::Members(live) => self.set_members(&live),
            Event::Send(env) => self.route(env),
            Event::Index(index) => self.index = index,
            Event::Query(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Event::Ask { to, query, reply } if to == self.me.machine => {
                let agent = self.agent.clone();
                let summary = self.index.summary();
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(query::answer(&agent, query, summary));
                });
            }
            Event::Ask { to, query, reply } => {
                let id = self.asks.ask(reply);
                self.route(self.envelope(&to, PeerMsg::Ask { id, query }));
            }
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

    fn install(&mut self, peer: MachineName, handle: LinkHandle) {
        let now = self.now_ms();
        self.links.insert(peer.clone(), handle);
        self.backoff.remove(&peer);
        self.failing.remove(&peer);
        self.table.link_up(&peer, now);
        tracing::info!(%peer, "link up");
        // A new link: say what we hold, so each end sends what the other lacks; and send
        // our latest word on both memberships, which may reconnect a disconnected peer.
        self.send_have(&peer);
        self.send_memberships(&peer);
        self.ping(&peer);
    }

    fn inbound(&mut self, via: MachineName, link_id: u64, env: Envelope) {
        let active = self.links.get(&via).is_some_and(|l| l.link_id == link_id);
        if !active {
            // A parked link: only change sets are taken from it.
            if let PeerMsg::ChangeSets { sets } = env.body {
                for cs in sets {
                    let _ = self.merges.send(cs);
                }
            }
            return;
        }
        let now = self.now_ms();
        self.table.heard(&via, now);
        if env.to != self.me.machine {
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
            PeerMsg::Ping { seq, links } => {
                self.table.view(&from, links, now);
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
                for cs in sets {
                    let _ = self.merges.send(cs);
                }
            }
            PeerMsg::Ask { id, query } => {
                let agent = self.agent.clone();
                let summary = self.index.summary();
                let tx = self.events.clone();
                let env = self.envelope(
                    &from,
                    PeerMsg::Answer {
                        id,
                        answer: Box::new(Answer::Failed {
                            message: String::new(),
                        }),
                    },
                );
                tokio::task::spawn_blocking(move || {
                    let answer = query::answer(&agent, query, summary);
                    let _ = tx.send(Event::Send(Envelope {
                        body: PeerMsg::Answer {
                            id,
                            answer: Box::new(answer),
                        },
                        ..env
                    }));
                });
            }
            PeerMsg::Answer { id, answer } => self.asks.answered(id, *answer),
            PeerMsg::Sync(msg) => {
                for out in self.index.on_message(&msg) {
                    match out {
                        Out::Send(reply) => self.route(self.envelope(&from, PeerMsg::Sync(reply))),
                        Out::SendChangeSets(ids) => self.send_change_sets(&from, &ids),
                    }
                }
            }
        }
    }

    fn envelope(&self, to: &MachineName, body: PeerMsg) -> Envelope {
        Envelope {
            from: self.me.machine.clone(),
            to: to.clone(),
            ttl: MAX_HOPS,
            body,
        }
    }

    /// Sends `env` towards its machine: over the direct link, else through the first hop
    /// of a route; dropped when there is none (pings come again; sync repairs the rest).
    fn route(&mut self, env: Envelope) {
        let Some(hop) = self.table.next_hop(&env.to, self.now_ms()) else {
            return;
        };
        if let Some(link) = self.links.get(&hop)
            && link.out.try_send(env).is_err()
        {
            tracing::debug!(peer = %hop, "link queue full: envelope dropped");
        }
    }

    fn spread(&mut self, cs: &Arc<ChangeSet>) {
        let peers: Vec<MachineName> = self.table.peers().iter().cloned().collect();
        for p in peers {
            let body = PeerMsg::ChangeSets {
                sets: vec![(**cs).clone()],
            };
            self.route(self.envelope(&p, body));
        }
    }

    fn ping(&mut self, peer: &MachineName) {
        self.seq += 1;
        self.pings.insert((peer.clone(), self.seq), Instant::now());
        let body = PeerMsg::Ping {
            seq: self.seq,
            links: self.table.report(self.now_ms()),
        };
        self.route(self.envelope(peer, body));
    }

    /// Tells `peer` which change sets this machine holds, as a summary.
    fn send_have(&mut self, peer: &MachineName) {
        let body = PeerMsg::Sync(SyncMsg::Summary(self.index.summary()));
        self.route(self.envelope(peer, body));
    }

    /// Reads which change sets the store holds (off the runtime); it comes back as
    /// [`Event::Index`].
    fn read_index(&self) {
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
        let versions = self.index.versions_of(ids);
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

    /// Sends `peer`, over a new link, the latest change sets that wrote its membership
    /// and ours: what reconnects a machine that was disconnected.
    fn send_memberships(&self, peer: &MachineName) {
        let agent = self.agent.clone();
        let tx = self.events.clone();
        let keys = [
            Key::Machine(peer.clone()),
            Key::Machine(self.me.machine.clone()),
        ];
        let env = self.envelope(peer, PeerMsg::ChangeSets { sets: Vec::new() });
        tokio::task::spawn_blocking(move || {
            let Ok(sets) = agent.node.change_sets() else {
                return;
            };
            let mut latest: Vec<ChangeSet> = keys
                .iter()
                .filter_map(|k| {
                    sets.iter()
                        .filter(|cs| cs.writes.contains_key(k))
                        .max_by(|a, b| a.version.cmp(&b.version))
                        .cloned()
                })
                .collect();
            latest.dedup_by(|a, b| a.version == b.version);
            if !latest.is_empty() {
                let _ = tx.send(Event::Send(Envelope {
                    body: PeerMsg::ChangeSets { sets: latest },
                    ..env
                }));
            }
        });
    }

    fn set_members(&mut self, live: &Live) {
        self.members = members(live)
            .map(|(m, info)| (m.clone(), info.clone()))
            .collect();
        if let Some(ms) = ping_interval(live)
            && ms != self.table.interval_ms()
        {
            tracing::info!(ping_interval_ms = ms, "ping interval set");
            self.table.set_interval(ms);
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
        // Links to machines that are no peers any more close (after a moment, so that
        // what was just queued for them — their removal, say — is written first).
        let gone: Vec<MachineName> = self
            .links
            .keys()
            .filter(|m| !self.table.peers().contains(*m))
            .cloned()
            .collect();
        for m in gone {
            if let Some(link) = self.links.remove(&m) {
                tracing::info!(peer = %m, "link closed: not a peer any more");
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    drop(link);
                });
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
    /// key, serial and peer address — when they are missing or changed (the machine that
    /// created the cluster, or one that now listens elsewhere).
    fn register_self(&self, mine: &Membership) {
        let own = OwnFacts {
            host_key: self.me.public_key(),
            peer: self.me.peer_address.clone(),
            serial: self.me.serial.clone(),
        };
        let updated = own.fill(mine);
        if updated == *mine {
            return;
        }
        let agent = self.agent.clone();
        let me = self.me.machine.clone();
        tokio::task::spawn_blocking(move || {
            let response = agent
                .node
                .commit(|core| core.register(&me, updated, wall_ms()));
            if let crate::mesh::Response::Error { message, .. } = response {
                tracing::error!(
                    "cannot record this machine's host key in the membership: {message}"
                );
            }
        });
    }

    fn on_tick(&mut self) {
        let now = self.now_ms();
        for m in self.table.quiet_links(now) {
            tracing::warn!(peer = %m, "link down: nothing heard for {} pings", crate::mesh::table::DOWN_AFTER);
            self.links.remove(&m);
            self.table.link_down(&m);
        }
        self.parked.retain(|(at, _, _)| at.elapsed() < PARK);
        self.asks.expire();
        let interval = Duration::from_millis(self.table.interval_ms());
        if self.last_ping.elapsed() >= interval {
            self.last_ping = Instant::now();
            let peers: Vec<MachineName> = self.table.peers().iter().cloned().collect();
            self.rounds += 1;
            let sync = self.rounds.is_multiple_of(SYNC_EVERY);
            for p in &peers {
                self.ping(p);
                if sync && self.links.contains_key(p) {
                    self.send_have(p);
                }
            }
            // Unanswered pings older than the down time are forgotten.
            let horizon = interval.mul_f64(crate::mesh::table::DOWN_AFTER * 2.0);
            self.pings.retain(|_, at| at.elapsed() < horizon);
        }
        for alert in self.table.alerts(now) {
            self.alert(alert);
        }
        self.dial_missing();
    }

    fn dial_missing(&mut self) {
        let peers: Vec<MachineName> = self
            .table
            .peers()
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
            self.backoff.insert(
                p.clone(),
                (Instant::now() + pause, (pause * 2).min(MAX_BACKOFF)),
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
                .mul_f64(crate::mesh::table::DOWN_AFTER)
                .max(Duration::from_secs(2));
            tokio::spawn(async move {
                // The whole dial is bounded too: one that hangs (a link request never
                // answered) would otherwise keep the peer marked as being dialed forever.
                let dialed =
                    tokio::time::timeout(timeout * 2, link::dial(&me, &p, &address, key, timeout))
                        .await
                        .unwrap_or_else(|_| Err(format!("no link within {:?}", timeout * 2)));
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

    fn alert(&self, alert: Alert) {
        let (kind, peer) = match &alert {
            Alert::Lost(m) => ("peer-lost", m),
            Alert::Recovered(m) => ("peer-recovered", m),
        };
        match alert {
            Alert::Lost(_) => tracing::warn!(%peer, alert = kind, "peer unreachable"),
            Alert::Recovered(_) => tracing::info!(%peer, alert = kind, "peer reachable"),
        }
        for hook in &self.agent.state.settings.alert_hooks {
            let mut cmd = tokio::process::Command::new(&hook[0]);
            cmd.args(&hook[1..])
                .env("STRATA_ALERT", kind)
                .env("STRATA_PEER", peer.as_str())
                .env("STRATA_MACHINE", self.me.machine.as_str())
                .stdin(std::process::Stdio::null());
            let name = hook[0].clone();
            tokio::spawn(async move {
                match cmd.status().await {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!(hook = %name, "alert hook failed: {s}"),
                    Err(e) => tracing::warn!(hook = %name, "alert hook cannot start: {e}"),
                }
            });
        }
    }

    fn snapshot(&self) -> Snapshot {
        let now = self.now_ms();
        let mut views = vec![self.table.own_view(now)];
        views.extend(self.table.peer_views(now));
        views.sort_by(|a: &LinkView, b| a.machine.cmp(&b.machine));
        Snapshot {
            members: self.members.clone(),
            peers: self.table.peers().clone(),
            routes: self.table.routes(now),
            direct: self
                .table
                .peers()
                .iter()
                .filter(|p| self.table.is_up(p, now))
                .cloned()
                .collect(),
            status: ConnStatus {
                machine: self.me.machine.to_string(),
                views,
            },
        }
    }
}

/// The cluster's ping interval (`cluster-mesh ping-interval-ms=…`), if it sets one.
fn ping_interval(live: &Live) -> Option<u64> {
    let key = Key::section(
        crate::model::Mode::Cluster,
        SectionName::new("cluster-mesh").ok()?,
    );
    match live.get(&key).and_then(|e| e.value.as_ref()) {
        Some(EntryValue::Section(node)) => match node.prop("ping-interval-ms") {
            Some(crate::model::Value::Int(ms)) => u64::try_from(*ms).ok(),
            _ => None,
        },
        _ => None,
    }
}
