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
//! writes holds the same entry, in whatever order they came.

use super::{Entry, EntryValue, Key, Version, Writes};

/// Stamps the membership writes of a local commit at `version`: facts that differ from
/// the live entry's (`lookup`) get `version`, the others keep the live stamp.
pub fn stamp<'a>(
    writes: &mut Writes,
    version: &Version,
    lookup: impl Fn(&Key) -> Option<&'a Entry>,
) {
    for (key, value) in writes.iter_mut() {
        let Some(EntryValue::Machine(m)) = value else {
            continue;
        };
        let live = match lookup(key).and_then(|e| e.value.as_ref()) {
            Some(EntryValue::Machine(l)) => Some(l),
            _ => None,
        };
        m.facts_at = match live {
            Some(l) if l.facts() == m.facts() => l.facts_at.clone(),
            None if m.facts() == (None, None, false, None, None) => None,
            _ => Some(Box::new(version.clone())),
        };
    }
}

/// The value a key holds after a merged write of `incoming`, which `wins` over `live` by
/// precedence or not: the winner's, with the facts of whichever of the two has the
/// greater stamp (the winner's on a tie).
pub fn settle(
    incoming: &Option<EntryValue>,
    wins: bool,
    live: &Option<EntryValue>,
) -> Option<EntryValue> {
    let (base, other) = if wins {
        (incoming, live)
    } else {
        (live, incoming)
    };
    match (base, other) {
        (Some(EntryValue::Machine(b)), Some(EntryValue::Machine(o))) if o.facts_at > b.facts_at => {
            Some(EntryValue::Machine(b.clone().with_facts_of(o)))
        }
        _ => base.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupName, Membership};
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
        let key: Key = "@machine:lab4".parse().unwrap();
        let mut writes = Writes::from([(key, Some(EntryValue::Machine(m)))]);
        stamp(&mut writes, at, |_| over);
        match writes.into_values().next() {
            Some(Some(EntryValue::Machine(m))) => m,
            other => panic!("{other:?}"),
        }
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
        let join_then_apply = settle(&apply, true, &join);
        let apply_then_join = settle(&join, false, &apply);
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

    #[test]
    fn a_removal_that_wins_is_not_brought_back_by_older_facts() {
        let join = stamped(joined(), &version(20, "lab1"), None);
        let join = Some(EntryValue::Machine(join));
        assert_eq!(settle(&None, true, &join), None);
        assert_eq!(settle(&join, false, &None), None);
    }
}
