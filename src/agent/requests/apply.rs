//! `apply`: commit a plan's writes as one change set, if the entries it was computed
//! against are still current.

use crate::agent::applier::Applier;
use crate::agent::core::Caller;
use crate::agent::node::Node;
use crate::mesh::Response;
use crate::plan::Origin;
use crate::state::{Base, Store, Writes, wall_ms};

/// Commits `writes` against `base`.
pub fn answer<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    writes: Writes,
    base: Base,
    origin: &Origin,
) -> Response {
    node.commit(|core| core.apply(caller, writes, base, origin, wall_ms()))
}
