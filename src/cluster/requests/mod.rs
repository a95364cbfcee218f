//! Answering requests: one module per request kind, and the dispatch that checks the
//! caller's role first. Blocking: call [`handle`] on a blocking thread.

mod admin;
mod apply;
mod cluster;
mod hello;
mod live;
mod log;
mod rollback;
mod secret;

use super::applier::Applier;
use super::auth::Authed;
use super::caller::Caller;
use super::caller::Followed;
use super::node::Node;
use crate::protocol::{Request, Response};
use crate::state::Store;

/// Answers one request from `who`.
///
/// `followed`: the branch a follower in mode apply keeps the cluster at, for requests that
/// do not come from that follower: their git-owned writes are refused
/// ([`crate::cluster::guard`]).
pub fn handle<S: Store, A: Applier>(
    node: &Node<S, A>,
    who: &Authed,
    request: Request,
    followed: Option<Followed>,
) -> Response {
    let caller = Caller {
        followed: followed.clone(),
        ..Caller::with_role(who.user.clone(), who.role)
    };
    let deny = |what: &str| Response::Denied {
        message: format!("user `{}` ({}) may not {what}", who.user, who.role.as_str()),
    };
    if let Some(what) = admin::administers(&request)
        && !who.role.may_administer()
    {
        return deny(what);
    }
    match request {
        Request::Hello { protocol, version } => hello::answer(node, who, protocol, &version),
        Request::Live => live::answer(node),
        Request::Digests => live::digests(node),
        Request::Entries { keys } => live::entries(node, &keys),
        Request::Log => log::answer(node),
        Request::Conflicts => log::conflicts(node),
        Request::Apply { .. }
        | Request::Rollback { .. }
        | Request::RollbackPlan { .. }
        | Request::Confirm { .. }
        | Request::Rollout { .. }
            if !who.role.may_apply() =>
        {
            deny("apply changes")
        }
        Request::ClusterCreate { .. } if !who.role.may_administer() => deny("create a cluster"),
        Request::Apply {
            writes,
            base,
            origin,
            override_follower,
            break_glass,
            confirm_within_ms,
        } => {
            if break_glass.is_some() && !who.role.may_administer() {
                return deny("break the glass of a change freeze");
            }
            if break_glass.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Response::error(
                    "breaking the glass needs a reason",
                    Some("say why: `--break-glass \"outage INC-42: MX records\"`"),
                );
            }
            let caller = Caller {
                followed: caller.followed.filter(|_| !override_follower),
                break_glass,
                origin_kind: node.origin_kind(who, &origin),
                ..caller
            };
            apply::answer(node, &caller, writes, base, &origin, confirm_within_ms)
        }
        Request::Confirm { id } => apply::confirm(node, &caller, id.as_deref()),
        Request::Rollout { id, action } => node.commit(|core| {
            core.steer_rollout(&caller, id.as_deref(), &action, crate::state::wall_ms())
        }),
        Request::RollbackPlan { to } => rollback::plan(node, &caller, &to),
        Request::Rollback { to, shown } => rollback::answer(node, &caller, &to, shown.as_ref()),
        Request::ApplyPush { .. } if !who.role.may_administer() => {
            deny("apply a push on another user's behalf")
        }
        Request::ApplyPush {
            user,
            role,
            writes,
            base,
            origin,
            confirm_within_ms,
        } => {
            let Some(pusher) = crate::cluster::users::Role::parse(&role) else {
                return Response::error(format!("`{role}` is not a role"), None);
            };
            if !pusher.may_apply() {
                return deny("push");
            }
            let caller = Caller {
                followed,
                origin_kind: node.origin_kind(who, &origin),
                ..Caller::with_role(user, pusher)
            };
            apply::answer(node, &caller, writes, base, &origin, confirm_within_ms)
        }
        Request::ClusterCreate { name } => cluster::create(node, &caller, &name),
        Request::ClusterPasswd { passphrase, user } => {
            admin::passwd(node, &caller, user.as_deref(), &passphrase)
        }
        Request::SetName { name } => admin::set_name(node, &caller, &name),
        Request::AddGroup { name } => admin::add_group(node, &caller, &name),
        Request::SetGroup { machine, group } => admin::set_group(node, &caller, &machine, &group),
        Request::RenameGroup { from, to } => admin::rename_group(node, &caller, &from, &to),
        Request::DeleteGroup { name, move_to } => {
            admin::delete_group(node, &caller, &name, move_to.as_ref())
        }
        Request::PrepjoinAdd { host, serial, key } => {
            admin::prepjoin_add(node, &caller, &host, &serial, &key)
        }
        Request::PrepjoinDelete { host } => admin::prepjoin_delete(node, &caller, &host),
        Request::PrepjoinList => admin::prepjoin_list(node),
        Request::SecretRecipients => secret::recipients(node, &caller),
        Request::SecretRotate => {
            node.commit(|core| core.secret_rotate(&caller, crate::state::wall_ms()))
        }
        Request::SecretRetire => {
            node.commit(|core| core.secret_retire(&caller, crate::state::wall_ms()))
        }
        Request::SecretCheck {
            texts,
            current_only,
        } => secret::check(node, &texts, current_only),
        Request::SecretReencrypt { texts, also } => secret::reencrypt(node, &texts, &also),
        // The mesh's requests (join, list, connstatus, disconnect, reconnect, remove,
        // prepjoin print, peer links) need the agent's mesh (`crate::agent::mesh`), which
        // answers them before a node is asked; a node alone (in memory) cannot.
        _ => Response::error(
            "this request needs the agent's mesh, which is not running here",
            Some("ask a running `strata agent`"),
        ),
    }
}

impl<S: Store, A: Applier> Node<S, A> {
    /// Answers one request from `who`, with no follower keeping the cluster at a branch
    /// (see [`handle`]).
    pub fn handle(&self, who: &Authed, request: Request) -> Response {
        handle(self, who, request, None)
    }
}
