//! The cluster's notifications that change sets carry, each sent by exactly one member:
//!
//! - `conflict-logged`: a write of this machine lost to a concurrent one (made without
//!   knowing of it, across a partition): sent by the machine whose write lost, as it
//!   merges the winner ([`crate::state::lost_to`]).
//! - `change-reverted`: a change set applied on trial (commit confirmed) was reverted,
//!   not confirmed in time: sent by the machine that committed the trial, at the first
//!   revert it holds.
//! - `glass-broken`: a change applied during a change freeze, with an administrator's
//!   reason: sent by the machine that accepted it.

use super::{Event, Notifier, Severity};
use crate::model::{Confirm, MachineName};
use crate::state::{ChangeSet, LostWrite};

fn event(me: &MachineName, kind: &'static str, severity: Severity, summary: String) -> Event {
    Event {
        kind,
        class: "clustering",
        severity,
        machine: me.to_string(),
        reported_by: me.to_string(),
        at_ms: crate::state::wall_ms(),
        summary,
    }
}

/// Sends what change set `cs`, just stored on machine `me` (committed there when
/// `local`), is a notification of.
pub fn on_change(notifier: &Notifier, me: &MachineName, cs: &ChangeSet, local: bool) {
    if let Some(Confirm::Reverts { version }) = &cs.meta.confirm
        && version.origin == *me
        && notifier.first_revert_of(version)
    {
        notifier.send(event(
            me,
            "change-reverted",
            Severity::Warning,
            format!(
                "change set {} was reverted on the cluster: not confirmed in time ({} reverted it by its clock)",
                crate::model::ChangeSetId::of(version),
                cs.meta.host
            ),
        ));
    }
    if local && cs.meta.message.contains("break glass during change freeze") {
        let why = cs
            .meta
            .message
            .lines()
            .find(|l| l.starts_with("break glass"))
            .unwrap_or_default();
        notifier.send(event(
            me,
            "glass-broken",
            Severity::Warning,
            format!(
                "change set {} applied during a change freeze: {why}",
                cs.id()
            ),
        ));
    }
}

/// Sends one `conflict-logged` for each write of this machine (`me`) that a merged change
/// set beat unseen ([`crate::state::lost_to`], carried by the node's change notice).
pub fn conflicts(notifier: &Notifier, me: &MachineName, lost: &[LostWrite]) {
    for l in lost {
        notifier.send(event(
            me,
            "conflict-logged",
            Severity::Warning,
            format!(
                "{me}'s write of {} (change set {}) lost to a concurrent write by {} (change set {}): see `strata log --conflicts`",
                l.key,
                l.lost.change_set(),
                l.winner.meta.host,
                l.winner.change_set()
            ),
        ));
    }
}
