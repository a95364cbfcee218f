//! `rollback`: the state as of an earlier change set, applied as a new one; and what it
//! would do, as a plan, which `strata rollback` shows before it asks. A rollback given
//! the plan it showed is refused as stale when it would now do something else.

use crate::cluster::applier::Applier;
use crate::cluster::caller::{Caller, Refusal};
use crate::cluster::node::Node;
use crate::plan::{Action, Change, Origin, PLAN_FORMAT, Plan};
use crate::protocol::{Response, Shown};
use crate::state::{Base, CommitError, Conflict, Key, Live, Source, Store, Writes, wall_ms};

/// Rolls back to the change set named by `to` (an id or a unique prefix); when `shown`
/// is given, only if that is still exactly what the rollback writes.
pub fn answer<S: Store, A: Applier>(
    node: &Node<S, A>,
    caller: &Caller,
    to: &str,
    shown: Option<&Shown>,
) -> Response {
    node.commit(|core| {
        if let Some(shown) = shown {
            let (_, writes, base) = core.rollback_writes(to)?;
            if writes != shown.writes || base != shown.base {
                let keys: Vec<Key> = changed_keys(shown, &writes, &base);
                let live = core.store.entries(&keys)?;
                return Err(Refusal::Commit(CommitError::Stale(conflicts(
                    &keys, shown, &live,
                ))));
            }
        }
        core.rollback(caller, to, wall_ms())
    })
}

/// What rolling back to `to` would write now, as a plan for `caller` to review.
pub fn plan<S: Store, A: Applier>(node: &Node<S, A>, caller: &Caller, to: &str) -> Response {
    let core = node.lock_core();
    let planned = core.rollback_writes(to).and_then(|(id, writes, base)| {
        let keys: Vec<Key> = writes.keys().cloned().collect();
        let live = core.store.entries(&keys)?;
        let origin = Origin {
            source: Source::Cli,
            author: caller.user.clone(),
            message: format!("rollback to change set {id}"),
        };
        Ok(plan_of(&writes, base, &live, origin))
    });
    match planned {
        Ok(plan) => Response::RollbackPlan {
            plan: Box::new(plan),
        },
        Err(Refusal::Invalid { message, help }) => Response::Error { message, help },
        Err(Refusal::Denied(message)) => Response::Denied { message },
        Err(Refusal::Commit(e)) => Response::error(e.to_string(), Some("nothing was written")),
    }
}

/// The plan of `writes` over the live entries `live`: what each write does to the value
/// there. It names no machines' effective changes and no shadows (a rollback restores
/// entries, it is not read from a repo).
fn plan_of(writes: &Writes, base: Base, live: &Live, origin: Origin) -> Plan {
    let actions = writes
        .iter()
        .filter_map(|(key, new)| {
            let old = live.get(key).and_then(|e| e.value.clone());
            let change = match (old, new.clone()) {
                (None, Some(new)) => Change::Create { new },
                (Some(old), Some(new)) => Change::Change { old, new },
                (Some(old), None) => Change::Remove { old },
                // A rollback writes only what differs: never a tombstone over nothing.
                (None, None) => return None,
            };
            Some(Action {
                key: key.clone(),
                change,
            })
        })
        .collect();
    Plan {
        format: PLAN_FORMAT,
        origin,
        actions,
        base,
        machines: Vec::new(),
        shadows: Vec::new(),
        unreached: Vec::new(),
        notes: Vec::new(),
    }
}

/// The keys on which the rollback shown and the rollback now differ.
fn changed_keys(shown: &Shown, writes: &Writes, base: &Base) -> Vec<Key> {
    let mut keys: Vec<Key> = shown
        .writes
        .keys()
        .chain(writes.keys())
        .filter(|k| shown.writes.get(*k) != writes.get(*k) || shown.base.get(*k) != base.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What changed under each key since the rollback was shown, as a stale plan says it.
fn conflicts(keys: &[Key], shown: &Shown, live: &Live) -> Vec<Conflict> {
    keys.iter()
        .map(|key| {
            let found = live.get(key);
            Conflict {
                key: key.clone(),
                expected: shown.base.get(key).cloned().flatten(),
                found: found.map(|e| e.stamp.clone()),
                removed: found.is_some_and(|e| e.value.is_none()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::auth::Authed;
    use crate::cluster::node::tests::node;
    use crate::cluster::users::Role;
    use crate::protocol::Request;

    fn admin() -> Authed {
        Authed::user("admin", Role::Administrator)
    }

    #[test]
    fn the_plan_shown_is_what_is_rolled_back_unless_something_changed_since() {
        let node = node();
        let who = admin();
        let create = node.handle(&who, Request::ClusterCreate { name: "c".into() });
        let Response::Applied { change_set, .. } = create else {
            panic!("{create:?}");
        };
        let first = change_set.id.to_string();
        let rename = |name: &str| node.handle(&who, Request::SetName { name: name.into() });
        assert!(matches!(rename("d"), Response::Applied { .. }));
        let shown = match node.handle(&who, Request::RollbackPlan { to: first.clone() }) {
            Response::RollbackPlan { plan } => plan,
            other => panic!("{other:?}"),
        };
        assert_eq!(shown.actions.len(), 1, "{shown:?}");
        assert!(matches!(shown.actions[0].change, Change::Change { .. }));
        assert_eq!(
            shown.origin.message,
            format!("rollback to change set {first}")
        );
        let as_shown = Shown {
            writes: shown.writes(),
            base: shown.base.clone(),
        };
        // Renamed again meanwhile: the rollback shown is stale, and nothing is written.
        assert!(matches!(rename("e"), Response::Applied { .. }));
        let stale = node.handle(
            &who,
            Request::Rollback {
                to: first.clone(),
                shown: Some(as_shown),
            },
        );
        let Response::Stale { conflicts } = stale else {
            panic!("{stale:?}");
        };
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        // Shown again, it goes through.
        let shown = match node.handle(&who, Request::RollbackPlan { to: first.clone() }) {
            Response::RollbackPlan { plan } => plan,
            other => panic!("{other:?}"),
        };
        let done = node.handle(
            &who,
            Request::Rollback {
                to: first,
                shown: Some(Shown {
                    writes: shown.writes(),
                    base: shown.base.clone(),
                }),
            },
        );
        assert!(matches!(done, Response::Applied { .. }), "{done:?}");
    }
}
