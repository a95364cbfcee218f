//! A member's facts — its host key, the address its agent takes peer connections at,
//! whether it is disconnected, the versions its agent reports — merge on a clock of their
//! own, apart from the rest of its membership entry.
//!
//! The entry is one value, but two kinds of writer touch it: a repo apply (group,
//! address, serial, declared: git's) and the mesh (a join, a disconnect, an agent that
//! records its version: the cluster's). An apply keeps the facts it finds live
//! ([`crate::plan::ownership::over_live`]); through a member that has not heard of a join
//! yet it finds none, and under last-writer-wins its write, the later one, would undo the
//! join on every member.
//!
//! So a commit stamps the facts a membership write carries with the version that last
//! changed them ([`crate::model::Membership::facts_at`]): its own when it changes them, the live
//! entry's stamp when it keeps them ([`stamp`]). A merge takes the rest of the entry from
//! the write of greater precedence and the facts from the write of greater stamp
//! ([`settle`]) — two last-writer-wins registers in one value. Equal stamps mean the same
//! facts (a stamp names the write that set them), so every member that holds the same
//! writes holds the same entry, in whatever order they came. A removal counts as a write
//! of no facts at the version it ranks by, on both paths. The replica simulation writes a membership
//! these three ways among its keys (`replica::sim`, 30,000 schedules green).
//! A revert or a rollback brings back git's part of a membership and keeps the live
//! facts ([`restored`]): it ranks by what it reverts, not by its own version, and so must
//! not move the facts' clock. A trial is a repo's apply, which never changes facts, so a
//! removal ranked at a trial's version never ties with facts stamped there (the
//! simulation reverts only such writes); [`stamp`] makes it so whatever a trial carries.

use super::{Entry, EntryValue, Key, Version, Writes};
use crate::model::{ChangeMeta, Confirm, Membership};

/// Stamps the membership writes of a local commit at `version`: facts that differ from
/// the live entry's (`lookup`) get `version`, the others keep the live stamp. A removal
/// holds no facts, stamped with the version it ranks by — as a merge counts it
/// ([`settle`]). A trial (`meta`: commit confirmed, not yet confirmed) keeps the live
/// facts whatever it carries: its revert ranks by the trial's version, and a removal
/// there must never tie with facts the trial stamped (see the module header).
pub fn stamp<'a>(
    writes: &mut Writes,
    version: &Version,
    meta: &ChangeMeta,
    lookup: impl Fn(&Key) -> Option<&'a Entry>,
) {
    let trial = matches!(meta.confirm, Some(Confirm::Trial { .. }));
    for (key, value) in writes.iter_mut() {
        let Some(EntryValue::Machine(m)) = value else {
            continue;
        };
        let (live, stamp) = match lookup(key) {
            Some(Entry {
                value: Some(EntryValue::Machine(l)),
                ..
            }) => (Some(l), l.facts_at.clone()),
            Some(Entry { value: None, stamp }) => {
                let at = super::precedence(&stamp.version, &stamp.meta).0;
                (None, Some(Box::new(at.clone())))
            }
            _ => (None, None),
        };
        let facts = live.map_or(Membership::NO_FACTS, Membership::facts);
        if m.facts() == facts {
            m.facts_at = stamp;
        } else if trial {
            *m = match live {
                Some(l) => m.clone().with_facts_of(l),
                None => m.clone().without_facts(stamp.as_deref()),
            };
        } else {
            m.facts_at = Some(Box::new(version.clone()));
        }
    }
}

/// What a revert or a rollback writes for a key whose `restored` value it brings back
/// over `live`: that value, with the live membership's facts in place of the ones it had
/// — git's part goes back, the mesh's stays — and none for a member that is not live. So
/// a revert never moves the facts' clock, whatever it ranks.
pub fn restored(restored: Option<EntryValue>, live: Option<&EntryValue>) -> Option<EntryValue> {
    match (restored, live) {
        (Some(EntryValue::Machine(r)), Some(EntryValue::Machine(l))) => {
            Some(EntryValue::Machine(r.with_facts_of(l)))
        }
        (Some(EntryValue::Machine(r)), _) => Some(EntryValue::Machine(r.without_facts(None))),
        (other, _) => other,
    }
}

/// The value a key holds after a merged write of `incoming` (its value and the version
/// it ranks by: [`super::precedence`]), which `wins` over the `live` entry (the same;
/// `None`: absent) by precedence or not: the winner's, with the facts of whichever of
/// the two has the greater stamp (the winner's on a tie). A removal counts as a write of
/// no facts at the version it ranks by (a revert's: its trial's, so that a removal that
/// loses to another hides no newer facts): the machine removed after it joined has no
/// facts left, whatever order the removal, the join and a later declaration arrive in.
pub fn settle(
    incoming: (&Option<EntryValue>, &Version),
    wins: bool,
    live: Option<(&Option<EntryValue>, &Version)>,
) -> Option<EntryValue> {
    let (base, other) = match (wins, live) {
        (true, live) => (incoming.0, live),
        (false, Some(live)) => (live.0, Some(incoming)),
        (false, None) => return incoming.0.clone(),
    };
    let Some(EntryValue::Machine(b)) = base else {
        return base.clone();
    };
    let stamp = b.facts_at.as_deref();
    match other {
        Some((Some(EntryValue::Machine(o)), _)) if o.facts_at.as_deref() > stamp => {
            Some(EntryValue::Machine(b.clone().with_facts_of(o)))
        }
        Some((None, removed)) if Some(removed) > stamp => {
            Some(EntryValue::Machine(b.clone().without_facts(Some(removed))))
        }
        _ => base.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GroupName;
    use crate::state::tests::{meta, version};

    fn declared() -> Membership {
        Membership::declared(GroupName::main(), "lab4", None)
    }

    fn joined() -> Membership {
        Membership {
            host_key: Some("ssh-ed25519 AAAA".into()),
            peer: Some("10.0.0.4:2222".into()),
            serial: Some("S4".into()),
            ..declared()
        }
    }

    fn live(m: &Membership, at: u64) -> Entry {
        Entry {
            value: Some(EntryValue::Machine(m.clone())),
            stamp: crate::model::Stamp {
                version: version(at, "lab1"),
                wall_ms: 0,
                meta: meta("admin"),
            },
        }
    }

    fn stamped(m: Membership, at: &Version, over: Option<&Entry>) -> Membership {
        stamped_as(m, at, &meta("admin"), over)
    }

    fn stamped_as(
        m: Membership,
        at: &Version,
        by: &ChangeMeta,
        over: Option<&Entry>,
    ) -> Membership {
        let key: Key = "@machine:lab4".parse().unwrap();
        let mut writes = Writes::from([(key, Some(EntryValue::Machine(m)))]);
        stamp(&mut writes, at, by, |_| over);
        match writes.into_values().next() {
            Some(Some(EntryValue::Machine(m))) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_trial_keeps_the_live_facts_whatever_it_carries() {
        let trial = ChangeMeta {
            confirm: Some(Confirm::Trial { by_ms: 1_000 }),
            ..meta("admin")
        };
        let join = stamped(joined(), &version(20, "lab1"), Some(&live(&declared(), 10)));
        let rekeyed = Membership {
            group: GroupName::new("Paris").unwrap(),
            host_key: Some("ssh-ed25519 BBBB".into()),
            ..join.clone()
        };
        let m = stamped_as(
            rekeyed.clone(),
            &version(30, "lab2"),
            &trial,
            Some(&live(&join, 20)),
        );
        assert_eq!(m.group.as_str(), "Paris", "git's part is the trial's");
        assert_eq!(m.facts(), join.facts(), "the facts are the live ones");
        assert_eq!(m.facts_at, join.facts_at, "and so is their stamp");
        // Over no live entry, or a removal: no facts, stamped as the removal ranks.
        let m = stamped_as(rekeyed.clone(), &version(30, "lab2"), &trial, None);
        assert_eq!(
            (m.facts(), m.facts_at.clone()),
            (Membership::NO_FACTS, None)
        );
        let removed = Entry {
            value: None,
            ..live(&join, 25)
        };
        let m = stamped_as(
            rekeyed.clone(),
            &version(30, "lab2"),
            &trial,
            Some(&removed),
        );
        assert_eq!(m.facts(), Membership::NO_FACTS);
        assert_eq!(m.facts_at, Some(Box::new(version(25, "lab1"))));
        // Not on trial, the same write changes them.
        let m = stamped(rekeyed, &version(30, "lab2"), Some(&live(&join, 20)));
        assert_eq!(m.host_key.as_deref(), Some("ssh-ed25519 BBBB"));
        assert_eq!(m.facts_at, Some(Box::new(version(30, "lab2"))));
    }

    #[test]
    fn a_write_that_changes_the_facts_stamps_them_and_one_that_keeps_them_keeps_the_stamp() {
        let before = live(&declared(), 10);
        let join = stamped(joined(), &version(20, "lab1"), Some(&before));
        assert_eq!(join.facts_at, Some(Box::new(version(20, "lab1"))));
        let after = live(&join, 20);
        let moved = Membership {
            group: GroupName::new("Paris").unwrap(),
            ..join.clone()
        };
        let apply = stamped(moved, &version(30, "lab2"), Some(&after));
        assert_eq!(apply.facts_at, Some(Box::new(version(20, "lab1"))), "kept");
        let repo_only = stamped(declared(), &version(5, "lab2"), None);
        assert_eq!(
            repo_only.facts_at, None,
            "a machine declared before it joins"
        );
    }

    #[test]
    fn a_later_write_that_missed_a_join_keeps_the_join_s_facts_in_either_order() {
        // lab1 admits lab4 at 20; lab3, which had not heard of it, moves it at 30.
        let join = stamped(joined(), &version(20, "lab1"), Some(&live(&declared(), 10)));
        let moved = Membership {
            group: GroupName::new("Paris").unwrap(),
            ..declared()
        };
        let apply = stamped(
            moved.clone(),
            &version(30, "lab3"),
            Some(&live(&declared(), 10)),
        );
        let (join, apply) = (
            Some(EntryValue::Machine(join)),
            Some(EntryValue::Machine(apply)),
        );
        let (v_join, v_apply) = (version(20, "lab1"), version(30, "lab3"));
        let join_then_apply = settle((&apply, &v_apply), true, Some((&join, &v_join)));
        let apply_then_join = settle((&join, &v_join), false, Some((&apply, &v_apply)));
        assert_eq!(join_then_apply, apply_then_join);
        let Some(EntryValue::Machine(m)) = join_then_apply else {
            panic!()
        };
        assert_eq!(m.group.as_str(), "Paris", "the later write's group");
        assert_eq!(
            m.host_key.as_deref(),
            Some("ssh-ed25519 AAAA"),
            "the join's key"
        );
        assert_eq!(m.peer.as_deref(), Some("10.0.0.4:2222"));
        assert_eq!(
            m.serial, None,
            "the serial is the repo's side: the member records it again"
        );
    }

    /// Merges `writes` in the given order as a store does; the live value at the end.
    fn merged_in(order: &[&(Option<EntryValue>, Version)]) -> Option<EntryValue> {
        let mut live: Option<(Option<EntryValue>, Version)> = None;
        for (value, v) in order {
            let wins = live.as_ref().is_none_or(|(_, held)| held < v);
            let settled = settle((value, v), wins, live.as_ref().map(|(x, held)| (x, held)));
            let at = match (&live, wins) {
                (Some((_, held)), false) => held.clone(),
                _ => v.clone(),
            };
            live = Some((settled, at));
        }
        live.and_then(|(value, _)| value)
    }

    #[test]
    fn a_join_a_removal_and_a_stale_declaration_end_the_same_in_every_order() {
        let (v_join, v_removal, v_stale) = (
            version(20, "lab1"),
            version(30, "lab2"),
            version(40, "lab3"),
        );
        let join = stamped(joined(), &v_join, Some(&live(&declared(), 10)));
        let stale = stamped(declared(), &v_stale, Some(&live(&declared(), 10)));
        let writes = [
            (Some(EntryValue::Machine(join)), v_join),
            (None, v_removal),
            (Some(EntryValue::Machine(stale)), v_stale),
        ];
        let orders: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let ends: Vec<Option<EntryValue>> = orders
            .iter()
            .map(|o| merged_in(&[&writes[o[0]], &writes[o[1]], &writes[o[2]]]))
            .collect();
        assert!(ends.iter().all(|e| *e == ends[0]), "{ends:#?}");
        let Some(EntryValue::Machine(m)) = &ends[0] else {
            panic!("{ends:?}")
        };
        assert_eq!(m.host_key, None, "removed after the join: no facts left");
        // Without the removal, the join's facts stand under the later declaration.
        let ends: Vec<Option<EntryValue>> = [[0, 2], [2, 0]]
            .iter()
            .map(|o| merged_in(&[&writes[o[0]], &writes[o[1]]]))
            .collect();
        assert_eq!(ends[0], ends[1]);
        let Some(EntryValue::Machine(m)) = &ends[0] else {
            panic!("{ends:?}")
        };
        assert_eq!(m.host_key.as_deref(), Some("ssh-ed25519 AAAA"));
    }

    #[test]
    fn a_removal_that_wins_is_not_brought_back_by_older_facts() {
        let join = stamped(joined(), &version(20, "lab1"), None);
        let join = Some(EntryValue::Machine(join));
        let (v_join, v_removal) = (version(20, "lab1"), version(30, "lab2"));
        assert_eq!(
            settle((&None, &v_removal), true, Some((&join, &v_join))),
            None
        );
        assert_eq!(
            settle((&join, &v_join), false, Some((&None, &v_removal))),
            None
        );
    }
}
