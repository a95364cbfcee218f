//! The test and bench support in `tests/support/`: the synthetic fleet is valid, uses
//! every section and is deterministic; the git helper commits on `main`.

use crate::fleet::{FleetSpec, generate};
use crate::git::commit_all;

use strata::config::{Diagnostics, SourceFile, parse_files};
use strata::schema::Catalogue;
use strata::validate::validate;

#[test]
fn a_small_fleet_is_valid_and_uses_every_section() {
    let spec = FleetSpec {
        machines: 40,
        groups: 6,
        seed: 7,
    };
    let files = generate(spec)
        .into_iter()
        .map(|(p, t)| SourceFile::new(p, t))
        .collect();
    let mut diags = Diagnostics::default();
    let cat = Catalogue::builtin();
    let repo = parse_files(files, &mut diags);
    validate(&repo, &cat, &mut diags);
    let shown: Vec<String> = diags.problems().iter().map(|p| p.message.clone()).collect();
    assert!(diags.problems().is_empty(), "{shown:#?}");
    for name in cat.names() {
        assert!(
            repo.modes().any(|m| m.section(name).is_some()),
            "the fleet never defines {name}"
        );
    }
    assert_eq!(repo.machines.len(), 40);
    assert_eq!(repo.groups.len(), 6);
}

#[test]
fn the_same_spec_gives_the_same_bytes() {
    let spec = FleetSpec {
        machines: 10,
        groups: 3,
        seed: 3,
    };
    assert_eq!(generate(spec), generate(spec));
}

#[test]
fn commit_all_commits_on_main_and_then_on_top() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.kdl"), "cluster \"a\"\n").unwrap();
    let first = commit_all(dir.path(), ("Ada", "ada@example.com"), "first").unwrap();
    std::fs::write(dir.path().join("groups.kdl"), "group \"Main_Group\"\n").unwrap();
    let second = commit_all(dir.path(), ("Ada", "ada@example.com"), "second").unwrap();
    let repo = git2::Repository::open(dir.path()).unwrap();
    let head = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    assert_eq!(head.id().to_string(), second);
    assert_eq!(head.parent(0).unwrap().id().to_string(), first);
    assert_eq!(head.tree().unwrap().len(), 2);
}
