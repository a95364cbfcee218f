//! Prometheus metrics, served over plain HTTP at `/metrics` on the address `agent.kdl`'s
//! `metrics listen="ADDR:PORT"` names (prometheus-client's text format; axum serves it).
//! What Argo CD and Flux users watch: sync status and the last applied commit; change sets
//! committed, merged and refused, and the copies of them gossip brings; apply and
//! propagation latency; each peer's link and round-trip time; conflicts; the store's
//! size and health; hook runs and login failures.
//!
//! Two kinds: counters and histograms the agent updates as things happen ([`Metrics`],
//! one per agent), and gauges read from the node and the mesh at each scrape
//! ([`render`]), so they cannot drift from what `status` and `connstatus` say. Labels
//! are bounded: peers come from the membership, the rest are fixed words; no label ever
//! holds a user name or an address.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::Agent;
use crate::protocol::sync_status::Sync;

/// Where a refused change set came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FromLabel {
    /// `client` (an apply, push or command the agent would not commit) or `peer` (a change
    /// set a peer sent that was not merged).
    pub from: String,
}

/// How a hook run ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `failed`.
    pub result: String,
}

/// How a refused login tried.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// `password`, `publickey` or `keyboard-interactive`.
    pub method: String,
}

/// Which copy of a change set a peer sent this was.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CopyLabel {
    /// `first` (handed to the merger) or `again` (one this machine holds or is merging
    /// already: gossip brings a change set over several links).
    pub copy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabel {
    commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabel {
    origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabel {
    machine: String,
    version: String,
}

/// What the agent counts as it happens.
#[derive(Debug)]
pub struct Metrics {
    /// Change sets refused, by where they came from.
    pub refused: Family<FromLabel, Counter>,
    /// Seconds a write request took on this agent, from its arrival to its answer
    /// (checks, the durable commit and the running config, hooks included).
    pub apply_seconds: Histogram,
    /// Seconds from a change set's commit on its origin (the origin's clock) to its merge
    /// here (this machine's clock).
    pub propagation_seconds: Histogram,
    /// Hook runs, by result.
    pub hook_runs: Family<ResultLabel, Counter>,
    /// Refused logins, by method.
    pub login_failures: Family<MethodLabel, Counter>,
    /// Change sets received from peers, by copy.
    pub copies: Family<CopyLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        // 1 ms to ~33 s: a loopback commit takes milliseconds, a hook may take seconds.
        let buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let m = Metrics {
            refused: Family::default(),
            apply_seconds: buckets(),
            propagation_seconds: buckets(),
            hook_runs: Family::default(),
            login_failures: Family::default(),
            copies: Family::default(),
        };
        // Every series exists from the start at 0, so `rate()` and `increase()` see the
        // first event.
        for from in ["client", "peer"] {
            let _ = m.refused.get_or_create(&FromLabel { from: from.into() });
        }
        for result in ["ok", "failed"] {
            let _ = m.hook_runs.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        for method in ["password", "publickey"] {
            let _ = m.login_failures.get_or_create(&MethodLabel {
                method: method.into(),
            });
        }
        for copy in ["first", "again"] {
            let _ = m.copies.get_or_create(&CopyLabel { copy: copy.into() });
        }
        m
    }
}

impl Metrics {
    /// Counts one change set received from a peer: the `first` copy or one `again`.
    pub fn copy(&self, first: bool) {
        let copy = if first { "first" } else { "again" };
        self.copies
            .get_or_create(&CopyLabel { copy: copy.into() })
            .inc();
    }

    /// Counts one refused change set.
    pub fn refused(&self, from: &str) {
        self.refused
            .get_or_create(&FromLabel { from: from.into() })
            .inc();
    }

    /// Counts one hook run.
    pub fn hook(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.hook_runs
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Counts one refused login.
    pub fn login_failed(&self, method: &str) {
        self.login_failures
            .get_or_create(&MethodLabel {
                method: method.into(),
            })
            .inc();
    }
}

/// The metrics in Prometheus' text format (OpenMetrics). Blocking: it reads the store and
/// asks the mesh.
pub fn render(agent: &Agent) -> String {
    let m = &agent.metrics;
    let mut reg = Registry::with_prefix("strata");
    reg.register(
        "change_sets_refused",
        "Change sets refused: from a client (an apply, push or command this agent would not commit) or from a peer (not merged)",
        m.refused.clone(),
    );
    reg.register_with_unit(
        "apply_duration",
        "Time a write request took on this agent, from arrival to answer (checks, durable commit, running config and hooks)",
        Unit::Seconds,
        m.apply_seconds.clone(),
    );
    reg.register_with_unit(
        "propagation",
        "Time from a change set's commit on its origin (origin's clock) to its merge here (this machine's clock; skewed clocks skew it)",
        Unit::Seconds,
        m.propagation_seconds.clone(),
    );
    reg.register(
        "hook_runs",
        "Hook runs after running-config changes, by result",
        m.hook_runs.clone(),
    );
    reg.register(
        "login_failures",
        "Refused logins (operators, peers and joins), by method",
        m.login_failures.clone(),
    );
    reg.register(
        "change_set_copies",
        "Change sets received from peers: the first copy (merged) or a copy again (dropped: gossip brings one over several links)",
        m.copies.clone(),
    );

    let info = Family::<InfoLabel, Gauge>::default();
    info.get_or_create(&InfoLabel {
        machine: agent.state.settings.machine.clone(),
        version: crate::protocol::strata_version().to_owned(),
    })
    .set(1);
    reg.register(
        "info",
        "This agent: its machine name and Strata version",
        info,
    );

    let held = Family::<OriginLabel, Counter>::default();
    let me = agent.state.settings.machine.as_str();
    if let Ok(sets) = agent.node.change_sets() {
        let local = sets
            .iter()
            .filter(|cs| cs.version.origin.as_str() == me)
            .count() as u64;
        held.get_or_create(&OriginLabel {
            origin: "local".into(),
        })
        .inc_by(local);
        held.get_or_create(&OriginLabel {
            origin: "peer".into(),
        })
        .inc_by(sets.len() as u64 - local);
        let conflicts: Counter = Counter::default();
        conflicts.inc_by(crate::state::conflicts(&sets).len() as u64);
        reg.register(
            "conflicts",
            "Writes lost to concurrent ones (the conflict log, `strata log --conflicts`)",
            conflicts,
        );
    }
    reg.register(
        "change_sets",
        "Change sets this machine holds: committed here (local) or merged from peers (peer)",
        held,
    );

    let sync = Family::<StatusLabel, Gauge>::default();
    let commit = Family::<CommitLabel, Gauge>::default();
    let status = super::follow::status(&agent.node, agent.follower.as_deref()).ok();
    let now = status.as_ref().map(|s| s.sync);
    for s in [Sync::Synced, Sync::OutOfSync, Sync::Unknown] {
        sync.get_or_create(&StatusLabel {
            status: s.as_str().into(),
        })
        .set(i64::from(now == Some(s)));
    }
    if let Some(applied) = status.as_ref().and_then(|s| s.last_applied.as_ref()) {
        commit
            .get_or_create(&CommitLabel {
                commit: applied.commit.commit.clone(),
            })
            .set(1);
    }
    reg.register(
        "sync_status",
        "Sync status as `strata status` says it: 1 for the current one of Synced, OutOfSync, Unknown",
        sync,
    );
    reg.register(
        "last_applied_commit_info",
        "The git commit of the last change set stamped with one",
        commit,
    );

    let writable = Gauge::<i64>::default();
    writable.set(i64::from(agent.node.store_failure().is_none()));
    reg.register(
        "store_writable",
        "1 while the store can be written, 0 while this machine is Degraded",
        writable,
    );
    if let Ok(meta) = std::fs::metadata(agent.state.layout.store()) {
        let size = Gauge::<i64>::default();
        size.set(i64::try_from(meta.len()).unwrap_or(i64::MAX));
        reg.register_with_unit("store_size", "Size of the store file", Unit::Bytes, size);
    }

    if let Some(snapshot) = agent.mesh.get().and_then(super::mesh::Mesh::snapshot) {
        let up = Family::<PeerLabel, Gauge>::default();
        let rtt = Family::<PeerLabel, Gauge<f64, AtomicU64>>::default();
        let mine = snapshot.status.views.iter().find(|v| v.machine == me);
        for link in mine.map(|v| v.links.as_slice()).unwrap_or_default() {
            let peer = PeerLabel {
                peer: link.to.clone(),
            };
            up.get_or_create(&peer).set(i64::from(link.up));
            if let Some(ms) = link.rtt_ms.filter(|_| link.up) {
                rtt.get_or_create(&peer).set(ms / 1000.0);
            }
        }
        reg.register("peer_up", "1 while the direct link to the peer is up", up);
        reg.register_with_unit(
            "peer_rtt",
            "Round-trip time of the last ping answered over the direct link",
            Unit::Seconds,
            rtt,
        );
    }

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// Observes the propagation of every change set merged from a peer, as the node
/// announces it (once, when it is new here), until the node is gone.
pub fn watch(agent: &Arc<Agent>) {
    let mut changes = agent.node.subscribe();
    let metrics = agent.metrics.clone();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(c) if !c.local && !c.replaced => {
                    let made_ms = c.change_set.version.hlc.millis();
                    let seconds = crate::state::wall_ms().saturating_sub(made_ms) as f64 / 1000.0;
                    metrics.propagation_seconds.observe(seconds);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    agent: Arc<Agent>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let agent = agent.clone();
            async move {
                let text = tokio::task::spawn_blocking(move || render(&agent))
                    .await
                    .unwrap_or_default();
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("metrics: the server stopped: {e}");
    }
}
