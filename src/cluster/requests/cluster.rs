//! `cluster create`: a standalone machine becomes a one-machine cluster.

use crate::cluster::applier::Applier;
use crate::cluster::caller::Caller;
use crate::cluster::node::Node;
use crate::protocol::Response;
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
