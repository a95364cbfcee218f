//! `live`, `digests` and `entries`: what the store holds, whole, as digests, or by key
//! (what `plan` diffs against: the digests first, then the entries whose digests differ
//! from the desired ones). The cluster's identities are never sent to a client: its
//! secret state stays between members ([`Key::is_secret`]).

use crate::cluster::applier::Applier;
use crate::cluster::node::Node;
use crate::model::Key;
use crate::plan::digests_of;
use crate::protocol::Response;
use crate::state::Store;

/// Answers with every live entry.
pub fn answer<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.live() {
        Ok(entries) => Response::Live {
            machine: node.machine().to_string(),
            entries: without_secrets(entries),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// Answers with the digest of every live entry.
pub fn digests<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.live() {
        Ok(live) => Response::Digests {
            machine: node.machine().to_string(),
            digests: digests_of(&without_secrets(live)),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// Answers with the live entries of `keys` that the store holds.
pub fn entries<S: Store, A: Applier>(node: &Node<S, A>, keys: &[Key]) -> Response {
    match node.entries(keys) {
        Ok(entries) => Response::Entries {
            machine: node.machine().to_string(),
            entries: without_secrets(entries),
        },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// `live` without the cluster's secret state.
pub fn without_secrets(mut live: crate::state::Live) -> crate::state::Live {
    live.retain(|k, _| !k.is_secret());
    live
}
