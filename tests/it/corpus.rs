//! The corpus: `examples/americas` is valid; every repo under `examples/invalid/` fails
//! (or, for the few listed as warning only, warns) with the diagnostics in its own
//! `expected.snap`.

use crate::support::{example, rendered};
use strata::validate::check_paths;

#[test]
fn the_americas_example_is_valid() {
    let checked = check_paths(&[example("americas")]).unwrap();
    assert!(
        checked.diags.problems().is_empty(),
        "{}",
        rendered(&checked)
    );
    assert_eq!(checked.repo.machines.len(), 6);
    assert_eq!(checked.repo.groups.len(), 3);
}

#[test]
fn a_repo_can_add_its_own_sections() {
    let checked = check_paths(&[example("custom-schema")]).unwrap();
    assert!(
        checked.diags.problems().is_empty(),
        "{}",
        rendered(&checked)
    );
    let schema = checked
        .catalogue
        .get("web-proxy")
        .expect("the repo's schema is loaded");
    assert_eq!(schema.command, "proxyconfig");
    // Its references are checked like the built-in ones.
    assert!(!schema.references().is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    for name in ["cluster.kdl", "schemas/web-proxy.kdl"] {
        let text = std::fs::read_to_string(example("custom-schema").join(name)).unwrap();
        // proxy2 loses the interface the Branch group's web-proxy names.
        let text = text.replace(
            "interface \"Data1\" address=\"192.168.1.11/24\"",
            "interface \"Data2\" address=\"192.168.1.11/24\"",
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let broken = check_paths(&[dir.path().to_path_buf()]).unwrap();
    // The reference breaks, and proxy2's interface names now differ from the others'.
    let mut codes: Vec<&str> = broken.diags.problems().iter().map(|p| p.code).collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["strata::ref::unresolved", "strata::repo::interface-names"],
        "{}",
        rendered(&broken)
    );
    let unresolved = broken
        .diags
        .problems()
        .iter()
        .find(|p| p.code == "strata::ref::unresolved")
        .unwrap();
    assert!(unresolved.message.contains("proxy2.example.com"));
}

#[test]
fn every_invalid_example_has_its_diagnostics() {
    let dir = example("invalid");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 15, "the corpus shrank: {names:?}");
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let checked = check_paths(std::slice::from_ref(&path)).unwrap();
        assert!(
            !checked.diags.problems().is_empty(),
            "{name} reports nothing"
        );
        let warning_only = [
            "group-named-like-cluster",
            "hostname-differs",
            "interface-names",
            "many-machines",
            "mixed-appliance-versions",
        ]
        .contains(&name.as_str());
        assert_eq!(
            checked.diags.has_errors(),
            !warning_only,
            "{name}: wrong severity"
        );
        insta::with_settings!({
            snapshot_path => path.clone(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("strata validate examples/invalid/{name}"),
        }, {
            insta::assert_snapshot!("expected", rendered(&checked));
        });
    }
}
