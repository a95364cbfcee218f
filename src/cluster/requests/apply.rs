//! `apply`: commit a plan's writes as one change set, if the entries it was computed
//! against are still current — on trial, if asked (commit confirmed: [`crate::cluster::trial`]);
//! and `confirm`, which keeps a trial.

use crate::cluster::applier::Applier;
use crate::cluster::caller::Caller;
use crate::cluster::node::Node;
use crate::plan::Origin;
use crate::protocol::Response;
use crate::state::{Base, Store, Writes, wall_ms};

/// Commits `writes` against `base`.
pub fn answer<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    writes: Writes,
    base: Base,
    origin: &Origin,
    trial_ms: Option<u64>,
) -> Response {
    let response = node.commit(|core| match trial_ms {
        Some(window) => core.apply_trial(caller, writes, base, origin, wall_ms(), window),
        None => core.apply(caller, writes, base, origin, wall_ms()),
    });
    if let (Some(why), Response::Applied { change_set, .. }) = (&caller.break_glass, &response) {
        tracing::warn!(user = %caller.user, reason = %why, change_set = %change_set.id, "break glass: applied during a change freeze");
    }
    response
}

/// Confirms the trial `id` names, or the only one waiting.
pub fn confirm<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    id: Option<&str>,
) -> Response {
    node.commit(|core| core.confirm(caller, id, wall_ms()))
}
