//! Administering the cluster: `cluster passwd`, `setname`, `addgroup`, `setgroup`,
//! `renamegroup`, `deletegroup` and `prepjoin add|delete|list`. Each write is one commit
//! through [`Node::commit`]; the dispatch has already refused callers who are not
//! administrators.

use crate::cluster::admin::ADMIN_USER;
use crate::cluster::applier::Applier;
use crate::cluster::caller::Caller;
use crate::cluster::node::Node;
use crate::cluster::users::hash_passphrase;
use crate::model::{GroupName, MachineName};
use crate::protocol::{Request, Response, Secret};
use crate::state::{Store, wall_ms};

/// What an administrator-only request does, for the denial others get; `None` for
/// requests this module does not serve or that anyone logged in may make.
pub fn administers(request: &Request) -> Option<&'static str> {
    Some(match request {
        Request::ClusterPasswd { .. } => "set a user's passphrase",
        Request::SetName { .. } => "rename the cluster",
        Request::AddGroup { .. } => "add a group",
        Request::SetGroup { .. } => "move a machine to another group",
        Request::RenameGroup { .. } => "rename a group",
        Request::DeleteGroup { .. } => "delete a group",
        Request::PrepjoinAdd { .. } => "register a machine to join",
        Request::PrepjoinDelete { .. } => "forget a machine registered to join",
        Request::SecretRotate => "rotate the cluster's identity",
        Request::SecretRetire => "retire the cluster's old identities",
        Request::SecretReencrypt { .. } => "re-encrypt secrets",
        _ => return None,
    })
}

/// Renames the cluster.
pub fn set_name<S: Store, A: Applier>(node: &Node<S, A>, caller: &Caller, name: &str) -> Response {
    node.commit(|core| core.set_name(caller, name, wall_ms()))
}

/// Adds a group.
pub fn add_group<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    name: &GroupName,
) -> Response {
    node.commit(|core| core.add_group(caller, name, wall_ms()))
}

/// Moves a machine to another group.
pub fn set_group<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    machine: &MachineName,
    group: &GroupName,
) -> Response {
    node.commit(|core| core.set_group(caller, machine, group, wall_ms()))
}

/// Renames a group, with its machines and sections.
pub fn rename_group<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    from: &GroupName,
    to: &GroupName,
) -> Response {
    node.commit(|core| core.rename_group(caller, from, to, wall_ms()))
}

/// Deletes a group and its sections, moving its machines to `move_to`.
pub fn delete_group<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    name: &GroupName,
    move_to: Option<&GroupName>,
) -> Response {
    node.commit(|core| core.delete_group(caller, name, move_to, wall_ms()))
}

/// Registers a machine to join with its host key.
pub fn prepjoin_add<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    host: &MachineName,
    serial: &str,
    key: &str,
) -> Response {
    node.commit(|core| core.prepjoin_add(caller, host, serial, key, wall_ms()))
}

/// Forgets a machine registered to join.
pub fn prepjoin_delete<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    host: &MachineName,
) -> Response {
    node.commit(|core| core.prepjoin_delete(caller, host, wall_ms()))
}

/// The machines registered to join (anyone logged in may read it).
pub fn prepjoin_list<S: Store, A: Applier>(node: &Node<S, A>) -> Response {
    match node.lock_core().prepjoin_list() {
        Ok(entries) => Response::PrepjoinList { entries },
        Err(e) => Response::error(e.to_string(), None),
    }
}

/// Hashes the passphrase (here, on the request's blocking thread, before the store is
/// locked: argon2 is slow by design) and commits it as `user`'s (`None`: the admin's).
pub fn passwd<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    user: Option<&str>,
    passphrase: &Secret,
) -> Response {
    if passphrase.0.is_empty() {
        return Response::error(
            "the passphrase is empty",
            Some("give a passphrase of at least one character"),
        );
    }
    match hash_passphrase(&passphrase.0) {
        Ok(hash) => node.commit(|core| {
            core.cluster_passwd(caller, user.unwrap_or(ADMIN_USER), &hash, wall_ms())
        }),
        Err(e) => Response::error(
            format!("the passphrase could not be hashed: {e}"),
            Some("nothing was written"),
        ),
    }
}
