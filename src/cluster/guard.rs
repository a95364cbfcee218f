//! Writes the cluster does not take now: imperative ones while a follower keeps the
//! cluster at a branch ([`check`]), and any change to what git owns during a change
//! freeze without an administrator's break-glass reason ([`check_freeze`]).
//!
//! Imperative writes while a follower keeps the cluster at a branch. The branch owns what
//! git owns ([`crate::plan::ownership`]): a change to it from anywhere else — an apply of
//! another tree, a rollback, `cluster setname`, `addgroup`, … — would be undone by the
//! follower's next sync, so it is refused with a hint, before anything is written. What
//! the cluster owns (a passphrase hash set with `cluster passwd`, a machine's disconnect
//! state, the pending-join list) goes through, and self-heal never reverts it. An apply of
//! the followed commit itself is no imperative change; an operator who means to act
//! against the follower says so (`apply --override-follower`), and self-heal then reverts
//! the change after its grace.

use super::caller::{Caller, Refusal};
use crate::model::{EntryValue, Source};
use crate::plan::ownership::repo_part;
use crate::schema::Catalogue;
use crate::state::{Key, Live, Writes};

/// How to change git-owned state while a follower keeps the cluster at a branch.
pub const HINT: &str = "commit the change to the followed branch and let the follower apply it, \
                        or pin a commit (`source … branch=\"COMMIT\"` in the follower's agent.kdl); \
                        `strata apply --override-follower` applies anyway, and self-heal reverts it \
                        after its grace";

/// Refuses `writes` from `caller` that change what git owns while `caller.followed`,
/// unless they come from the followed commit itself (`source`). `live` holds at least the
/// live entries of the written keys.
pub fn check(
    caller: &Caller,
    writes: &Writes,
    live: &Live,
    source: &Source,
) -> Result<(), Refusal> {
    let Some(followed) = &caller.followed else {
        return Ok(());
    };
    if let (Source::Git { commit }, Some(head)) = (source, &followed.commit)
        && commit == head
    {
        return Ok(());
    }
    let builtin = Catalogue::builtin();
    let touched: Vec<String> = writes
        .iter()
        .filter(|(key, value)| {
            key.is_declared_by_repos() && changes_repo_part(key, value, live, &builtin)
        })
        .map(|(key, _)| key.to_string())
        .collect();
    if touched.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 5;
    let mut names = touched[..touched.len().min(SHOWN)].join(", ");
    if touched.len() > SHOWN {
        names.push_str(&format!(" and {} more", touched.len() - SHOWN));
    }
    Err(Refusal::Invalid {
        message: format!(
            "{}: this change to {names} would be undone by the next sync, so nothing was written",
            followed.by
        ),
        help: Some(HINT.to_owned()),
    })
}

/// True when writing `value` changes what git owns of `key`. A section that is not
/// there stands for its factory default: `cluster passwd` on a cluster whose repo gives
/// no `users` writes the default's admin with a hash, which changes nothing git owns.
/// Refuses `writes` that change what git owns while the change-freeze window `open` is
/// open, unless the caller breaks the glass with a reason. What the cluster owns (a
/// passphrase, a disconnect) goes through: a freeze is on configuration, not on keeping
/// the cluster running.
pub fn check_freeze(
    caller: &Caller,
    writes: &Writes,
    live: &Live,
    open: Option<&crate::freeze::Window>,
) -> Result<(), Refusal> {
    let Some(window) = open else {
        return Ok(());
    };
    if caller.break_glass.is_some() {
        return Ok(());
    }
    let builtin = Catalogue::builtin();
    let touched = writes.iter().any(|(key, value)| {
        key.is_declared_by_repos() && changes_repo_part(key, value, live, &builtin)
    });
    if !touched {
        return Ok(());
    }
    Err(Refusal::Invalid {
        message: format!(
            "the cluster is in change freeze `{}` ({}): nothing was written",
            window.name, window.reason
        ),
        help: Some(
            "wait until the window closes (`strata show --cluster change-freeze` lists the windows), \
             or, as an administrator, `strata apply --break-glass REASON`: the reason is recorded in the change set"
                .to_owned(),
        ),
    })
}

fn changes_repo_part(
    key: &Key,
    value: &Option<EntryValue>,
    live: &Live,
    builtin: &Catalogue,
) -> bool {
    let default = |key: &Key| match key {
        Key::Section { section, .. } => builtin
            .get(section.as_str())
            .map(|s| EntryValue::Section(s.default.clone())),
        _ => None,
    };
    let old = live
        .get(key)
        .and_then(|e| e.value.clone())
        .or_else(|| default(key));
    let new = value.clone().or_else(|| default(key));
    repo_part(key, new.as_ref()) != repo_part(key, old.as_ref())
}
