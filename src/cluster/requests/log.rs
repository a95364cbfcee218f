//! `log`: the change sets this machine holds, in its order; `log --conflicts`: the writes
//! among them that lost under last-writer-wins.

use crate::cluster::applier::Applier;
use crate::cluster::node::Node;
use crate::protocol::Response;
use crate::state::{ChangeSet, Store, conflicts as lost_writes};

/// Answers with every change set's summary.
pub fn answer<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.change_sets() {
        Ok(sets) => Response::Log {
            change_sets: sets.iter().map(ChangeSet::summary).collect(),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// Answers with the conflict log, read from the whole history.
pub fn conflicts<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.change_sets() {
        Ok(sets) => Response::Conflicts {
            machine: node.machine().to_string(),
            lost: lost_writes(&sets)
                .into_iter()
                .filter(|w| !w.key.is_secret())
                .collect(),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}
