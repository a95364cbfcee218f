//! `hello`: the protocol check, and who the agent is and thinks the caller is. A client
//! of another Strata version speaking this protocol is answered (an operator's CLI need
//! not match the agents); machines of the cluster compare their versions where they
//! join, link and reconnect ([`crate::protocol::version`]), with the version each hello says.

use crate::cluster::applier::Applier;
use crate::cluster::auth::Authed;
use crate::cluster::node::Node;
use crate::protocol::{PROTOCOL, Response, strata_version};
use crate::state::Store;

/// Answers a client that speaks `protocol` (Strata `version`).
pub fn answer<S: Store, A: Applier>(
    node: &Node<S, A>,
    who: &Authed,
    protocol: u32,
    version: &str,
) -> Response {
    if protocol != PROTOCOL {
        tracing::warn!(
            user = %who.user,
            theirs = protocol,
            ours = PROTOCOL,
            "refused: the client speaks another protocol (Strata {version})"
        );
        return Response::error(
            format!(
                "this agent speaks protocol {PROTOCOL} (Strata {}), the client {protocol} (Strata {version})",
                strata_version()
            ),
            Some("use the same Strata version on both ends"),
        );
    }
    Response::Hello {
        protocol: PROTOCOL,
        version: strata_version().into(),
        machine: node.machine().to_string(),
        user: who.user.clone(),
        role: who.role.as_str().into(),
    }
}
