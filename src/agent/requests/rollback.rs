//! `rollback`: the state as of an earlier change set, applied as a new one.

use crate::agent::applier::Applier;
use crate::agent::core::Caller;
use crate::agent::node::Node;
use crate::mesh::Response;
use crate::state::{Store, wall_ms};

/// Rolls back to the change set named by `to` (an id or a unique prefix).
pub fn answer<S: Store, A: Applier>(node: &Node<S, A>, caller: &Caller, to: &str) -> Response {
    node.commit(|core| core.rollback(caller, to, wall_ms()))
}
