//! `log`: the change sets this machine holds, in its order.

use crate::agent::applier::Applier;
use crate::agent::node::Node;
use crate::mesh::Response;
use crate::state::{ChangeSet, Store};

/// Answers with every change set's summary.
pub fn answer<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.change_sets() {
        Ok(sets) => Response::Log {
            change_sets: sets.iter().map(ChangeSet::summary).collect(),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}
