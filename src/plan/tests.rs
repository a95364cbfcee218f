//! Tests of planning: actions, bases, machine changes, hazards and notes.

use super::*;
use crate::config::{Diagnostics, SourceFile, parse_files};
use crate::state::{ChangeMeta, MemoryStore, Proposal, Store};

pub(super) fn entries(text: &str) -> Entries {
    let mut diags = Diagnostics::default();
    desired(
        &parse_files(vec![SourceFile::new("r.kdl", text)], &mut diags),
        &Catalogue::builtin(),
    )
}

/// Plans against the built-in catalogue.
fn diff(desired: &Entries, live: &Live, origin: Origin) -> Plan {
    super::diff(desired, &Catalogue::builtin(), live, origin)
}

pub(super) fn origin() -> Origin {
    Origin {
        source: Source::Cli,
        author: "alice".into(),
        message: "test".into(),
    }
}

pub fn apply(store: &mut MemoryStore, plan: &Plan, hlc: u64) {
    store
        .commit(Proposal {
            writes: plan.writes(),
            base: plan.base.clone(),
            meta: ChangeMeta {
                author: "alice".into(),
                user: "alice".into(),
                host: "lab1".into(),
                source: Source::Cli,
                message: "t".into(),
                origin_kind: Default::default(),
                confirm: None,
                rollout: None,
            },
            version: crate::state::tests::version(hlc, "lab1"),
            wall_ms: hlc,
            settles: Vec::new(),
        })
        .unwrap();
}

/// A cluster with dns and ntp, Paris overriding dns, machines lab1 and lab3 (Paris).
pub(crate) const V1: &str = r#"
cluster "americas" { dns { server "10.0.0.53"; }; ntp { server "ntp1"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1"
machine "lab3" group="Paris"
"#;
const V2: &str = r#"
cluster "americas" { dns { server "10.0.0.99"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1"
machine "lab3" group="Paris"
machine "lab4" group="Paris"
"#;

#[test]
fn plan_apply_plan_reaches_a_fixed_point() {
    let mut store = MemoryStore::default();
    let p1 = diff(&entries(V1), &store.live().unwrap(), origin());
    assert!(
        p1.actions
            .iter()
            .all(|a| matches!(a.change, Change::Create { .. }))
    );
    assert!(p1.base.values().all(Option::is_none));
    apply(&mut store, &p1, 1);
    assert!(diff(&entries(V1), &store.live().unwrap(), origin()).is_empty());

    let p2 = diff(&entries(V2), &store.live().unwrap(), origin());
    let summary: Vec<(String, bool)> = p2
        .actions
        .iter()
        .map(|a| (a.key.to_string(), a.is_destructive()))
        .collect();
    assert_eq!(
        summary,
        [
            ("@machine:lab4".to_owned(), false),
            ("cluster/dns".to_owned(), false),
            ("cluster/ntp".to_owned(), true)
        ]
    );
    // The base names the versions the plan saw; a created key saw nothing.
    assert!(p2.base[&"@machine:lab4".parse::<Key>().unwrap()].is_none());
    assert!(p2.base[&"cluster/dns".parse::<Key>().unwrap()].is_some());
    // Paris overrides dns: the cluster's change does not reach it.
    assert_eq!(p2.shadows.len(), 1);
    assert_eq!(p2.shadows[0].by, ["group:Paris".parse::<Mode>().unwrap()]);
    // lab1 gets the new dns and loses ntp; lab3 loses ntp; lab4 is new.
    let m: Vec<(String, Vec<String>)> = p2
        .machines
        .iter()
        .map(|m| {
            (
                m.machine.clone(),
                m.sections.iter().map(|s| s.section.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        m,
        [
            ("lab1".to_owned(), vec!["dns".to_owned(), "ntp".to_owned()]),
            ("lab3".to_owned(), vec!["ntp".to_owned()]),
            ("lab4".to_owned(), vec!["dns".to_owned()]),
        ]
    );
    apply(&mut store, &p2, 2);
    assert!(diff(&entries(V2), &store.live().unwrap(), origin()).is_empty());
    // A tombstone stays in the store but counts as absent.
    assert_eq!(
        store.live().unwrap()[&"cluster/ntp".parse::<Key>().unwrap()].value,
        None
    );
    assert_eq!(
        diff(&entries(V1), &store.live().unwrap(), origin())
            .actions
            .len(),
        3
    );
}

#[test]
fn removing_members_or_the_applying_machines_interfaces_is_a_hazard() {
    const BEFORE: &str = r#"
cluster "americas" { dns { server "10.0.0.53"; } }
group "Main_Group"
machine "lab1" { interfaces { interface "Data1" address="10.1.0.1/24" hostname="lab1"; } }
machine "lab2" { interfaces { interface "Data1" address="10.1.0.2/24" hostname="lab2"; } }
"#;
    let mut store = MemoryStore::default();
    apply(
        &mut store,
        &diff(&entries(BEFORE), &Live::new(), origin()),
        1,
    );
    let live = store.live().unwrap();
    // The repo as read when `machines/` was skipped: no machine at all.
    let gone = diff(
        &entries("cluster \"americas\" { dns { server \"10.0.0.53\"; } }\ngroup \"Main_Group\"\n"),
        &live,
        origin(),
    );
    let hazards: Vec<String> = gone.hazards("lab1").iter().map(|h| h.to_string()).collect();
    assert_eq!(
        hazards,
        [
            "removes machine lab1 from the cluster: the machine this apply runs through",
            "removes machine lab2 from the cluster",
            "resets interfaces of lab1, the machine this apply runs through, to the factory default (now defined at machine:lab1): its addresses change",
        ]
    );
    // Only the applying machine's interfaces count; an ordinary change is no hazard.
    let lab2_bare = BEFORE.replace(
        "machine \"lab2\" { interfaces { interface \"Data1\" address=\"10.1.0.2/24\" hostname=\"lab2\"; } }",
        "machine \"lab2\"",
    );
    let plan = diff(&entries(&lab2_bare), &live, origin());
    assert!(!plan.is_empty());
    assert!(plan.hazards("lab1").is_empty());
    assert_eq!(plan.hazards("lab2").len(), 1);
    let v = serde_json::to_value(&gone.hazards("lab1")[1]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"hazard": "removes-member", "machine": "lab2", "applying": false})
    );
}

#[test]
fn a_plan_renders_diffs_machines_and_notices() {
    let mut store = MemoryStore::default();
    apply(&mut store, &diff(&entries(V1), &Live::new(), origin()), 1);
    let plan = diff(&entries(V2), &store.live().unwrap(), origin());
    insta::assert_snapshot!(render_human(&plan), @r#"
    desired: cli by alice: test

    + @machine:lab4 (created)
      + machine lab4 address=lab4 declared="true" group=Paris

    ~ cluster/dns (changed)
      @@ -1,3 +1,3 @@
       dns {
      -    server "10.0.0.53"
      +    server "10.0.0.99"
       }

    - cluster/ntp (removed)
      - ntp {
      -     server ntp1
      - }

    machines whose effective config changes:
      lab1
          dns  from cluster
          ntp  from factory default (was cluster)
      lab4: new machine, 1 section defined
      lab3
          ntp  from factory default (was cluster)

    changes that do not reach these machines (a lower level sets the section):
      lab3, lab4
          dns  changed at cluster, set by group:Paris

    note: cluster/dns will not affect these modes, which define their own: group:Paris

    plan: 1 to create, 1 to change, 1 to remove
    "#);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["actions"][0]["action"], "create");
    assert_eq!(json["actions"][0]["key"], "@machine:lab4");
}

#[test]
fn a_plan_with_two_actions_for_one_key_is_found_out() {
    let mut plan = diff(&entries(V1), &Live::new(), origin());
    assert_eq!(plan.duplicate_key(), None);
    let again = plan.actions[0].clone();
    plan.actions.push(again);
    assert_eq!(plan.duplicate_key(), Some(&plan.actions[0].key));
}

#[test]
fn a_saved_plan_round_trips_through_json() {
    let plan = diff(&entries(V1), &Live::new(), origin());
    let text = serde_json::to_string(&plan).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, plan);
}
