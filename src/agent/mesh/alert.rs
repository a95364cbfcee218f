//! Alerts: a peer that can no longer be reached at all, and its return, each said once in
//! the log (`peer unreachable`, `peer reachable`) and handed to every `alert-hook` of
//! `agent.kdl` with `STRATA_ALERT` (`peer-lost`, `peer-recovered`), `STRATA_PEER` and
//! `STRATA_MACHINE` in its environment. When to alert is the table's call
//! ([`crate::protocol::table::Table::alerts`]).
//!
//! The cluster's notifications (mail, webhooks: [`crate::agent::notify`]) go once per
//! cluster, not once per member: of the members that see the event, only the one with the
//! lowest name among those it can reach sends it (the peer the alert is about left out),
//! and only on the side of a partition that holds more than half the members, or half of
//! them with the cluster's lowest-named member. A cut that leaves no such side (three
//! pieces of a cluster of four, say) sends nothing; two members that briefly disagree on
//! who is reachable may both send.

use super::runtime::Runtime;
use crate::protocol::table::Alert;

impl Runtime {
    /// Logs `alert` and runs the alert hooks (each in a task of its own).
    pub(super) fn alert(&self, alert: Alert) {
        let (kind, peer) = match &alert {
            Alert::Lost(m) => ("peer-lost", m),
            Alert::Recovered(m) => ("peer-recovered", m),
        };
        match alert {
            Alert::Lost(_) => tracing::warn!(%peer, alert = kind, "peer unreachable"),
            Alert::Recovered(_) => tracing::info!(%peer, alert = kind, "peer reachable"),
        }
        if self.speaks_for_cluster(peer)
            && let Some(n) = self.agent.notifier.get()
        {
            let (severity, summary) = match alert {
                Alert::Lost(_) => (
                    crate::agent::notify::Severity::Critical,
                    format!("{peer} cannot be reached from the cluster"),
                ),
                Alert::Recovered(_) => (
                    crate::agent::notify::Severity::Info,
                    format!("{peer} can be reached again"),
                ),
            };
            n.send(crate::agent::notify::Event {
                kind,
                class: "clustering",
                severity,
                machine: peer.to_string(),
                reported_by: self.me.machine.to_string(),
                at_ms: crate::state::wall_ms(),
                summary,
            });
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
}

impl Runtime {
    /// Whether this member sends the cluster's notification about `about` (see the module
    /// header): it is on the side of the cluster that speaks, and the lowest-named member
    /// of that side but `about`.
    fn speaks_for_cluster(&self, about: &crate::model::MachineName) -> bool {
        let me = self.table.me();
        let members: std::collections::BTreeSet<&crate::model::MachineName> =
            self.table.peers().iter().chain([me]).collect();
        let routes = self.table.routes(self.now_ms());
        let side: std::collections::BTreeSet<&crate::model::MachineName> =
            routes.keys().chain([me]).collect();
        let speaks = side.len() * 2 > members.len()
            || (side.len() * 2 == members.len()
                && members.first().is_some_and(|m| side.contains(m)));
        speaks && side.iter().find(|m| **m != about) == Some(&me)
    }
}
