//! Alerts: a peer that can no longer be reached at all, and its return, each said once in
//! the log (`peer unreachable`, `peer reachable`) and handed to every `alert-hook` of
//! `agent.kdl` with `STRATA_ALERT` (`peer-lost`, `peer-recovered`), `STRATA_PEER` and
//! `STRATA_MACHINE` in its environment. When to alert is the table's call
//! ([`crate::protocol::table::Table::alerts`]).

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
