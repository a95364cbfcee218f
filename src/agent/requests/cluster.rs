//! `cluster create`: a standalone machine becomes a one-machine cluster.

use crate::agent::applier::Applier;
use crate::agent::core::Caller;
use crate::agent::node::Node;
use crate::mesh::Response;
use crate::state::{Store, wall_ms};

/// Creates cluster `name` with this machine in `Main_Group`, lifting its clusterable
/// standalone settings to the cluster level (checked against the stored catalogue).
pub fn create<S: Store, A: Applier>(node: &Node<S, A>, caller: &Caller, name: &str) -> Response {
    let catalogue = node.catalogue();
    node.commit(|core| {
        core.create_cluster(caller, name, &catalogue, wall_ms())
            .map(Some)
    })
}
