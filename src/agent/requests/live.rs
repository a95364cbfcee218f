//! `live`: every entry the store holds, tombstones included (what `plan` diffs against).

use crate::agent::applier::Applier;
use crate::agent::node::Node;
use crate::mesh::Response;
use crate::state::Store;

/// Answers with every live entry.
pub fn answer<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.live() {
        Ok(entries) => Response::Live {
            machine: node.machine().to_string(),
            entries,
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}
