//! Tests of copy, move and delete on small repos built in memory.

use super::*;
use crate::config::{Diagnostics, parse_files};
use crate::resolve::effective;
use crate::validate::validate;

const CLUSTER: &str = r#"// The Americas cluster.
cluster "americas" {
    // Resolvers for everyone.
    dns {
        server "10.0.0.53" priority=0
        server "10.0.0.54" priority=1
    }
    text-resources {
        resource "legal" "Confidential."
    }
    users {
        user "admin" role="administrator"
    }
}
"#;

const GROUPS: &str = r#"group "Main_Group"

group "Paris" {
    dns { server "192.0.2.53" priority=0 }   // whole-section override for the group
    ldap-queries
}

group "Rome"
"#;

const MACHINES: &str = "machine \"lab1.example.com\" group=\"Paris\" {
    interfaces {
        interface \"Data1\" address=\"10.1.0.1/24\" hostname=\"lab1.example.com\"
    }
    listeners {
        listener \"in\" interface=\"Data1\"
    }
}
machine \"lab2.example.com\" group=\"Rome\" {
\tinterfaces { interface \"Data1\" address=\"10.1.0.2/24\" hostname=\"lab2.example.com\" }
}
machine \"lab3.example.com\" group=\"Paris\"
";

fn repo_of(files: &[(&str, &str)]) -> Repo {
    let files = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    let mut diags = Diagnostics::default();
    let repo = parse_files(files, &mut diags);
    validate(&repo, &catalogue(), &mut diags);
    let messages: Vec<&str> = diags
        .problems()
        .iter()
        .map(|p| p.message.as_str())
        .collect();
    assert!(!diags.has_errors(), "fixture is invalid: {messages:?}");
    repo
}

fn fixture() -> Repo {
    repo_of(&[
        ("cluster.kdl", CLUSTER),
        ("groups.kdl", GROUPS),
        ("machines.kdl", MACHINES),
    ])
}

fn catalogue() -> Catalogue {
    Catalogue::builtin()
}

fn mode(text: &str) -> Mode {
    parse_mode(text).unwrap()
}

fn copy(section: &str, from: &str, to: &str) -> Request {
    Request::Copy {
        section: section.into(),
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
    }
}

fn move_(section: &str, from: &str, to: &str) -> Request {
    Request::Move {
        section: section.into(),
        from: mode(from),
        to: to.parse().unwrap(),
    }
}

fn delete(section: &str, at: &str) -> Request {
    Request::Delete {
        section: section.into(),
        at: mode(at),
    }
}

fn run(repo: &Repo, request: &Request) -> Edit {
    match edit(repo, &catalogue(), request) {
        Ok(e) => e,
        Err(e) => panic!(
            "{request:?} failed: {e}: {:?}",
            miette::Diagnostic::help(&e).map(|h| h.to_string())
        ),
    }
}

fn refused(repo: &Repo, request: &Request) -> EditError {
    match edit(repo, &catalogue(), request) {
        Ok(e) => panic!("{request:?} was not refused: {:?}", e.changes),
        Err(e) => e,
    }
}

/// The repo as it is after the edit.
fn applied(repo: &Repo, edit: &Edit) -> Repo {
    let files = repo
        .files
        .iter()
        .map(|f| match edit.changes.iter().find(|c| c.name == f.name) {
            Some(c) => SourceFile::new(c.name.clone(), c.after.clone()),
            None => f.clone(),
        })
        .collect();
    let mut diags = Diagnostics::default();
    let out = parse_files(files, &mut diags);
    assert!(!diags.has_errors());
    out
}

fn after<'e>(edit: &'e Edit, name: &str) -> &'e str {
    &edit
        .changes
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} did not change"))
        .after
}

/// The effective `section` of `machine`, in canonical text.
fn effective_text(repo: &Repo, machine: &str, section: &str) -> String {
    let cat = catalogue();
    let decl = repo.machine(machine).unwrap();
    effective(repo, &cat, decl).sections[section]
        .node
        .to_canonical()
}

fn defined(repo: &Repo, at: &str, section: &str) -> Option<Node> {
    repo.mode(&mode(at))
        .and_then(|d| d.section(section))
        .map(|s| s.node.clone())
}

/// Every line of `before` appears in `after`, in order, except the `removed` ones.
fn lines_kept(before: &str, after: &str, removed: &[&str]) {
    let mut rest = after.lines();
    for line in before.lines().filter(|l| !removed.contains(l)) {
        assert!(
            rest.any(|a| a == line),
            "line {line:?} did not survive:\n{after}"
        );
    }
}

use crate::model::Node;

#[test]
fn copy_into_a_bare_group_adds_a_block_with_the_comments() {
    let repo = fixture();
    let edit = run(&repo, &copy("dns", "cluster", "group:Rome"));
    assert_eq!(edit.changes.len(), 1);
    insta::assert_snapshot!(after(&edit, "groups.kdl"), @r#"
    group "Main_Group"

    group "Paris" {
        dns { server "192.0.2.53" priority=0 }   // whole-section override for the group
        ldap-queries
    }

    group "Rome" {
        // Resolvers for everyone.
        dns {
            server "10.0.0.53" priority=0
            server "10.0.0.54" priority=1
        }
    }
    "#);
    let edited = applied(&repo, &edit);
    assert_eq!(
        defined(&edited, "cluster", "dns"),
        defined(&repo, "cluster", "dns")
    );
    assert_eq!(
        effective_text(&edited, "lab2.example.com", "dns"),
        defined(&repo, "cluster", "dns").unwrap().to_canonical()
    );
    assert!(edit.problems.is_empty());
}

#[test]
fn copy_keeps_the_source_and_the_target_resolves_to_it() {
    let repo = fixture();
    let edit = run(
        &repo,
        &copy("dns", "group:Paris", "machine:lab2.example.com"),
    );
    let edited = applied(&repo, &edit);
    let source = defined(&repo, "group:Paris", "dns").unwrap();
    assert_eq!(defined(&edited, "group:Paris", "dns"), Some(source.clone()));
    assert_eq!(
        effective_text(&edited, "lab2.example.com", "dns"),
        effective_text(&repo, "lab1.example.com", "dns")
    );
    // lab2's block is on its own lines, indented with a tab: the copy follows it.
    assert!(
        after(&edit, "machines.kdl").contains(
            "\tinterfaces { interface \"Data1\" address=\"10.1.0.2/24\" hostname=\"lab2.example.com\" }\n\tdns { server \"192.0.2.53\" priority=0 }   // whole-section override for the group\n}"
        ),
        "{}",
        after(&edit, "machines.kdl")
    );
}

#[test]
fn copy_onto_a_definition_replaces_it_and_notes_the_shadowing() {
    let repo = fixture();
    let edit = run(&repo, &copy("dns", "group:Paris", "cluster"));
    let text = after(&edit, "cluster.kdl");
    insta::assert_snapshot!(text, @r#"
    // The Americas cluster.
    cluster "americas" {
        // Resolvers for everyone.
        dns { server "192.0.2.53" priority=0 }
        text-resources {
            resource "legal" "Confidential."
        }
        users {
            user "admin" role="administrator"
        }
    }
    "#);
    assert_eq!(
        edit.notices,
        [
            "Replaced the dns that cluster defined (cluster.kdl:4)",
            "Note: changes to dns at cluster will not affect the following groups and machines because they define their own: group:Paris",
        ]
    );
}

#[test]
fn move_leaves_the_source_inheriting() {
    let repo = fixture();
    let edit = run(
        &repo,
        &move_("dns", "group:Paris", "machine:lab1.example.com"),
    );
    let edited = applied(&repo, &edit);
    assert_eq!(defined(&edited, "group:Paris", "dns"), None);
    assert_eq!(
        defined(&edited, "machine:lab1.example.com", "dns"),
        defined(&repo, "group:Paris", "dns")
    );
    // lab3 (Paris) now gets the cluster's.
    assert_eq!(
        effective_text(&edited, "lab3.example.com", "dns"),
        defined(&repo, "cluster", "dns").unwrap().to_canonical()
    );
    lines_kept(
        GROUPS,
        after(&edit, "groups.kdl"),
        &["    dns { server \"192.0.2.53\" priority=0 }   // whole-section override for the group"],
    );
    assert_eq!(
        edit.notices,
        ["group:Paris no longer defines dns: it now inherits from cluster (cluster.kdl:4)"]
    );
}

#[test]
fn move_within_one_file_applies_both_splices() {
    let repo = fixture();
    let edit = run(
        &repo,
        &move_("ldap-queries", "group:Paris", "group:Main_Group"),
    );
    assert_eq!(edit.changes.len(), 1);
    insta::assert_snapshot!(after(&edit, "groups.kdl"), @r#"
    group "Main_Group" {
        ldap-queries
    }

    group "Paris" {
        dns { server "192.0.2.53" priority=0 }   // whole-section override for the group
    }

    group "Rome"
    "#);
    assert_eq!(
        edit.notices,
        ["group:Paris no longer defines ldap-queries: it now inherits the factory default"]
    );
}

#[test]
fn delete_reinherits() {
    let repo = fixture();
    let edit = run(&repo, &delete("dns", "group:Paris"));
    let edited = applied(&repo, &edit);
    assert_eq!(defined(&edited, "group:Paris", "dns"), None);
    assert_eq!(
        effective_text(&edited, "lab1.example.com", "dns"),
        effective_text(&edited, "lab2.example.com", "dns"),
    );
    let edit = run(&repo, &delete("dns", "cluster"));
    assert_eq!(
        edit.notices,
        ["cluster no longer defines dns: it now inherits the factory default"]
    );
    assert!(!after(&edit, "cluster.kdl").contains("Resolvers for everyone"));
}

#[test]
fn deleting_the_last_section_drops_the_block() {
    let repo = fixture();
    let edit = run(&repo, &delete("interfaces", "machine:lab2.example.com"));
    assert!(
        after(&edit, "machines.kdl")
            .contains("machine \"lab2.example.com\" group=\"Rome\"\nmachine \"lab3"),
        "{}",
        after(&edit, "machines.kdl")
    );
}

#[test]
fn copy_to_all_groups_keeps_the_source_and_skips_groups_with_their_own() {
    let repo = fixture();
    let edit = run(&repo, &copy("dns", "group:Paris", "all-groups"));
    let edited = applied(&repo, &edit);
    let source = defined(&repo, "group:Paris", "dns");
    for group in ["group:Main_Group", "group:Paris", "group:Rome"] {
        assert_eq!(defined(&edited, group, "dns"), source, "{group}");
    }
    assert_eq!(edited.groups.len(), 3);
    let outcomes = |edit: &Edit| -> Vec<(String, GroupOutcome)> {
        edit.groups
            .iter()
            .map(|g| (g.group.clone(), g.outcome))
            .collect()
    };
    let named = |list: &[(&str, GroupOutcome)]| -> Vec<(String, GroupOutcome)> {
        list.iter().map(|(g, o)| ((*g).to_owned(), *o)).collect()
    };
    assert_eq!(
        outcomes(&edit),
        named(&[
            ("Main_Group", GroupOutcome::Copied),
            ("Paris", GroupOutcome::Source),
            ("Rome", GroupOutcome::Copied),
        ])
    );

    // Paris defines its own: skipped, unless asked to replace it.
    let edit = run(&repo, &copy("dns", "cluster", "all-groups"));
    let edited = applied(&repo, &edit);
    let cluster = defined(&repo, "cluster", "dns");
    assert_eq!(defined(&edited, "group:Main_Group", "dns"), cluster);
    assert_eq!(defined(&edited, "group:Rome", "dns"), cluster);
    assert_eq!(
        defined(&edited, "group:Paris", "dns"),
        defined(&repo, "group:Paris", "dns")
    );
    assert_eq!(
        outcomes(&edit),
        named(&[
            ("Main_Group", GroupOutcome::Copied),
            ("Paris", GroupOutcome::Skipped),
            ("Rome", GroupOutcome::Copied),
        ])
    );
    assert_eq!(edit.groups[1].own.as_deref(), Some("groups.kdl:4"));
    let replace = Request::Copy {
        section: "dns".into(),
        from: "cluster".parse().unwrap(),
        to: Target::AllGroups {
            replace_existing: true,
        },
    };
    let again = run(&edited, &replace);
    assert_eq!(
        outcomes(&again),
        named(&[
            ("Main_Group", GroupOutcome::Same),
            ("Paris", GroupOutcome::Replaced),
            ("Rome", GroupOutcome::Same),
        ])
    );
    assert_eq!(
        defined(&applied(&edited, &again), "group:Paris", "dns"),
        cluster
    );
}

#[test]
fn a_move_to_all_groups_from_a_group_leaves_it_defined_there() {
    let repo = fixture();
    let edit = run(&repo, &move_("dns", "group:Paris", "all-groups"));
    let edited = applied(&repo, &edit);
    let source = defined(&repo, "group:Paris", "dns");
    for group in ["group:Main_Group", "group:Paris", "group:Rome"] {
        assert_eq!(defined(&edited, group, "dns"), source, "{group}");
    }
    assert!(
        !edit.notices.iter().any(|n| n.contains("no longer defines")),
        "{:?}",
        edit.notices
    );
    // From the cluster, the cluster no longer defines it; Paris keeps its own.
    let edit = run(&repo, &move_("dns", "cluster", "all-groups"));
    let edited = applied(&repo, &edit);
    assert_eq!(defined(&edited, "cluster", "dns"), None);
    assert_eq!(
        defined(&edited, "group:Paris", "dns"),
        defined(&repo, "group:Paris", "dns")
    );
    assert_eq!(
        defined(&edited, "group:Rome", "dns"),
        defined(&repo, "cluster", "dns")
    );
}

#[test]
fn empty_sections_are_copied_empty() {
    let repo = fixture();
    let edit = run(&repo, &copy("ldap-queries", "group:Paris", "group:Rome"));
    let edited = applied(&repo, &edit);
    assert_eq!(
        defined(&edited, "group:Rome", "ldap-queries"),
        Some(Node::new("ldap-queries"))
    );

    let repo = repo_of(&[(
        "c.kdl",
        "cluster \"c\" {\n    dns {}\n}\ngroup \"Main_Group\" {\n}\n",
    )]);
    let edit = run(&repo, &copy("dns", "cluster", "group:Main_Group"));
    assert_eq!(
        after(&edit, "c.kdl"),
        "cluster \"c\" {\n    dns {}\n}\ngroup \"Main_Group\" {\n    dns {}\n}\n"
    );
    let edited = applied(&repo, &edit);
    assert_eq!(
        defined(&edited, "group:Main_Group", "dns"),
        Some(Node::new("dns"))
    );
}

const MESSY: &str = "// top comment\ncluster \"c\" {\n\t// dns for all\n\t// (two lines)\n\tdns {\n\t\t// inside\n\t\tserver \"10.0.0.53\" /* primary */ priority=0\n\t} // after dns\n\n\ttext-resources { resource \"a\" \"A\" }; ldap-queries\n\t// trailing comment in the block\n}\ngroup \"Main_Group\" { ldap-queries; smtp-routes }\ngroup \"Oslo\"   // no block yet\ngroup \"Bergen\" {}\n// end of file\n";

#[test]
fn bytes_outside_the_touched_node_survive() {
    let repo = repo_of(&[("all.kdl", MESSY)]);

    // Into a one-line mode node: it opens up, its own contents stay as written; the
    // file indents with tabs, so the new lines do too.
    let edit = run(&repo, &copy("dns", "cluster", "group:Main_Group"));
    insta::assert_snapshot!(after(&edit, "all.kdl"), @r#"
    // top comment
    cluster "c" {
    	// dns for all
    	// (two lines)
    	dns {
    		// inside
    		server "10.0.0.53" /* primary */ priority=0
    	} // after dns

    	text-resources { resource "a" "A" }; ldap-queries
    	// trailing comment in the block
    }
    group "Main_Group" { ldap-queries; smtp-routes
    	// dns for all
    	// (two lines)
    	dns {
    		// inside
    		server "10.0.0.53" /* primary */ priority=0
    	} // after dns
    }
    group "Oslo"   // no block yet
    group "Bergen" {}
    // end of file
    "#);
    lines_kept(
        MESSY,
        after(&edit, "all.kdl"),
        &["group \"Main_Group\" { ldap-queries; smtp-routes }"],
    );

    // Into a mode node without a block, and into an empty block.
    let edit = run(&repo, &copy("ldap-queries", "cluster", "group:Oslo"));
    lines_kept(
        MESSY,
        after(&edit, "all.kdl"),
        &["group \"Oslo\"   // no block yet"],
    );
    assert!(
        after(&edit, "all.kdl").contains("group \"Oslo\" {\n\tldap-queries\n}   // no block yet\n")
    );
    let edit = run(&repo, &copy("ldap-queries", "cluster", "group:Bergen"));
    assert!(after(&edit, "all.kdl").contains("group \"Bergen\" {\n\tldap-queries\n}\n// end"));

    // `;`-separated nodes: only the node and its `;` go.
    let edit = run(&repo, &delete("text-resources", "cluster"));
    let text = after(&edit, "all.kdl");
    assert!(
        text.contains("\n\tldap-queries\n\t// trailing comment in the block\n}"),
        "{text}"
    );
    lines_kept(
        MESSY,
        text,
        &["\ttext-resources { resource \"a\" \"A\" }; ldap-queries"],
    );
    let edit = run(&repo, &delete("smtp-routes", "group:Main_Group"));
    assert!(after(&edit, "all.kdl").contains("group \"Main_Group\" { ldap-queries; }\n"));
    let edit = run(&repo, &delete("ldap-queries", "group:Main_Group"));
    assert!(after(&edit, "all.kdl").contains("group \"Main_Group\" { smtp-routes }\n"));

    // A node with comments above and after goes with them, and nothing else.
    let edit = run(&repo, &delete("dns", "cluster"));
    assert_eq!(
        after(&edit, "all.kdl"),
        MESSY.replace(
            "\t// dns for all\n\t// (two lines)\n\tdns {\n\t\t// inside\n\t\tserver \"10.0.0.53\" /* primary */ priority=0\n\t} // after dns\n",
            ""
        )
    );
}

#[test]
fn copy_then_delete_restores_the_original() {
    let repo = fixture();
    let cases = [
        ("dns", "cluster", "group:Rome"),
        ("dns", "cluster", "group:Main_Group"),
        ("dns", "group:Paris", "machine:lab1.example.com"),
        ("dns", "cluster", "machine:lab2.example.com"),
        ("dns", "cluster", "machine:lab3.example.com"),
        ("text-resources", "cluster", "machine:lab1.example.com"),
        ("ldap-queries", "group:Paris", "group:Rome"),
        ("ldap-queries", "group:Paris", "cluster"),
    ];
    for (section, from, to) in cases {
        let copied = run(&repo, &copy(section, from, to));
        let middle = applied(&repo, &copied);
        let deleted = run(&middle, &delete(section, to));
        let restored = applied(&middle, &deleted);
        for (a, b) in repo.files.iter().zip(&restored.files) {
            assert_eq!(
                a.text, b.text,
                "{section} {from} → {to}: {} differs",
                a.name
            );
        }
    }
}

#[test]
fn restricted_sections_are_refused() {
    let repo = fixture();
    let err = refused(&repo, &move_("users", "cluster", "group:Paris"));
    assert_eq!(
        err.to_string(),
        "`users` is cluster-only (AsyncOS `userconfig`) and cannot be defined at group:Paris"
    );
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert_eq!(help, "`users` may only be defined at cluster level");
    let err = refused(&repo, &copy("users", "cluster", "all-groups"));
    assert!(
        err.to_string()
            .ends_with("cannot be defined at every group"),
        "{err}"
    );
    let err = refused(
        &repo,
        &copy("interfaces", "machine:lab1.example.com", "group:Paris"),
    );
    assert_eq!(
        err.to_string(),
        "`interfaces` is machine-only (AsyncOS `interfaceconfig`) and cannot be defined at group:Paris"
    );
    // Machine to machine is fine.
    run(
        &repo,
        &copy(
            "interfaces",
            "machine:lab1.example.com",
            "machine:lab3.example.com",
        ),
    );
}

#[test]
fn unknown_modes_get_a_suggestion() {
    let repo = fixture();
    let err = refused(&repo, &copy("dns", "cluster", "group:Pariss"));
    assert_eq!(err.to_string(), "group:Pariss is not declared in the repo");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert_eq!(help, "did you mean `group:Paris`?");
    let err = refused(&repo, &copy("dns", "cluster", "group:lab1.example.com"));
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert_eq!(
        help,
        "`lab1.example.com` is a machine: write `machine:lab1.example.com`"
    );
    let code = miette::Diagnostic::code(&err).unwrap().to_string();
    assert_eq!(code, "strata::edit::unknown-mode");
    assert!(matches!(
        "team:x".parse::<Target>(),
        Err(EditError::BadMode { .. })
    ));
}

#[test]
fn other_refusals() {
    let repo = fixture();
    let err = refused(&repo, &copy("dns", "group:Rome", "cluster"));
    assert_eq!(err.to_string(), "`dns` is not defined at group:Rome");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert_eq!(help, "`dns` is defined at cluster, group:Paris");
    let err = refused(&repo, &delete("dns", "group:Rome"));
    assert!(matches!(err, EditError::NothingToDelete { .. }), "{err}");
    let err = refused(&repo, &copy("dns", "cluster", "cluster"));
    assert!(matches!(err, EditError::SameMode { .. }), "{err}");
    let err = refused(&repo, &copy("dnss", "cluster", "group:Rome"));
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert_eq!(help, "did you mean `dns`?");
    let single = repo_of(&[(
        "c.kdl",
        "cluster \"c\" { dns }\ngroup \"Main_Group\" { dns }\n",
    )]);
    let err = refused(&single, &copy("dns", "group:Main_Group", "all-groups"));
    assert!(matches!(err, EditError::NoOtherGroups { .. }), "{err}");
}

#[test]
fn an_edit_that_would_leave_the_repo_invalid_is_refused() {
    let repo = fixture();
    // lab1's listener names its interface "Data1": deleting lab1's interfaces breaks it.
    let err = refused(&repo, &delete("interfaces", "machine:lab1.example.com"));
    let EditError::Invalidates { problems, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        err.to_string(),
        "deleting `interfaces` at machine:lab1.example.com would leave the repo invalid (1 error); nothing was written"
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "strata::ref::unresolved");
    assert!(
        problems[0].message.contains("\"Data1\""),
        "{}",
        problems[0].message
    );
    // The error points into the edited text, at the listener.
    let at = problems[0].at.as_ref().unwrap();
    assert_eq!(at.file.name, "machines.kdl");
    assert!(at.file.text.contains("listener \"in\" interface=\"Data1\""));
    assert!(
        !at.file.text.contains("address=\"10.1.0.1/24\""),
        "the edited text"
    );
    // lab3 has no interface "Data1": copying lab1's listeners there breaks them (the
    // seed's caution about copied listeners), and so would a move.
    for request in [
        copy(
            "listeners",
            "machine:lab1.example.com",
            "machine:lab3.example.com",
        ),
        move_(
            "listeners",
            "machine:lab1.example.com",
            "machine:lab3.example.com",
        ),
    ] {
        let err = refused(&repo, &request);
        assert!(matches!(err, EditError::Invalidates { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("machine:lab3.example.com would leave the repo invalid"),
            "{err}"
        );
    }
    // Deleting lab1's listeners with its interfaces first keeps it valid.
    run(&repo, &delete("listeners", "machine:lab1.example.com"));
}

#[test]
fn identical_targets_are_left_alone() {
    let repo = fixture();
    let edit = run(&repo, &copy("dns", "group:Paris", "all-groups"));
    let edited = applied(&repo, &edit);
    let again = run(&edited, &copy("dns", "group:Paris", "group:Rome"));
    assert!(again.changes.is_empty());
    assert_eq!(
        again.notices,
        ["group:Rome already defines the same dns: left as it is"]
    );
}

#[test]
fn multiline_strings_keep_their_value_when_reindented() {
    let text = "cluster \"c\" {\n    text-resources {\n        resource \"legal\" \"\"\"\n          Confidential.\n            Really.\n          \"\"\"\n    }\n}\ngroup \"Main_Group\"\nmachine \"m1\" {\n\t\tinterfaces\n}\n";
    let repo = repo_of(&[("c.kdl", text)]);
    let edit = run(&repo, &copy("text-resources", "cluster", "machine:m1"));
    let edited = applied(&repo, &edit);
    assert_eq!(
        defined(&edited, "machine:m1", "text-resources"),
        defined(&repo, "cluster", "text-resources")
    );
    assert!(after(&edit, "c.kdl").contains(
        "\t\ttext-resources {\n\t\t    resource \"legal\" \"\"\"\n          Confidential.\n            Really.\n          \"\"\"\n\t\t}\n}"
    ), "{}", after(&edit, "c.kdl"));
}

#[test]
fn crlf_files_stay_crlf() {
    let text = "cluster \"c\" {\r\n    dns {\r\n        server \"10.0.0.1\"\r\n    }\r\n}\r\ngroup \"Main_Group\"\r\n";
    let repo = repo_of(&[("c.kdl", text)]);
    let edit = run(&repo, &copy("dns", "cluster", "group:Main_Group"));
    assert_eq!(
        after(&edit, "c.kdl"),
        "cluster \"c\" {\r\n    dns {\r\n        server \"10.0.0.1\"\r\n    }\r\n}\r\ngroup \"Main_Group\" {\r\n    dns {\r\n        server \"10.0.0.1\"\r\n    }\r\n}\r\n"
    );
}

#[test]
fn every_edit_between_any_two_modes_comes_out_as_intended() {
    let odd = "cluster \"c\" { dns { server \"10.0.0.1\" }; ldap-queries }\r\ngroup \"Main_Group\" /* g */ {\r\n  // one\r\n  smtp-routes\r\n\r\n}\r\ngroup \"B\";group \"C\" {dns}\r\n";
    let repos = [
        fixture(),
        repo_of(&[("all.kdl", MESSY)]),
        repo_of(&[("odd.kdl", odd)]),
    ];
    let cat = catalogue();
    for repo in &repos {
        let modes: Vec<String> = repo.modes().map(|d| d.mode.to_string()).collect();
        for section in [
            "dns",
            "ldap-queries",
            "smtp-routes",
            "text-resources",
            "listeners",
        ] {
            for from in &modes {
                let mut requests = vec![delete(section, from)];
                for to in modes
                    .iter()
                    .chain(std::iter::once(&"all-groups".to_owned()))
                {
                    requests.push(copy(section, from, to));
                    requests.push(move_(section, from, to));
                }
                for request in requests {
                    if let Err(EditError::Internal { message }) = edit(repo, &cat, &request) {
                        panic!("{request:?}: {message}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_factory_default_is_copied_like_a_mode_s_section() {
    let repo = fixture();
    let cat = catalogue();
    let default = cat.get("dns").unwrap().default.clone();
    let edit = run(&repo, &copy("dns", "factory", "group:Rome"));
    let edited = applied(&repo, &edit);
    assert_eq!(defined(&edited, "group:Rome", "dns"), Some(default.clone()));
    assert!(
        after(&edit, "groups.kdl").contains("group \"Rome\" {\n    dns mode=root\n}"),
        "{}",
        after(&edit, "groups.kdl")
    );
    // Over a mode's own, as any copy: replaced, said so; machines with their own noted.
    let edit = run(&repo, &copy("dns", "factory", "cluster"));
    assert_eq!(
        defined(&applied(&repo, &edit), "cluster", "dns"),
        Some(default.clone())
    );
    assert!(
        edit.notices
            .iter()
            .any(|n| n.starts_with("Replaced the dns that cluster defined")),
        "{:?}",
        edit.notices
    );
    assert!(
        edit.notices
            .iter()
            .any(|n| n.contains("will not affect") && n.contains("group:Paris")),
        "{:?}",
        edit.notices
    );
    // To every group: Paris keeps its own.
    let edit = run(&repo, &copy("dns", "factory", "all-groups"));
    let outcomes: Vec<GroupOutcome> = edit.groups.iter().map(|g| g.outcome).collect();
    assert_eq!(
        outcomes,
        [
            GroupOutcome::Copied,
            GroupOutcome::Skipped,
            GroupOutcome::Copied
        ]
    );
    // Where the section may not be: refused as any copy.
    let err = refused(&repo, &copy("users", "factory", "group:Rome"));
    assert!(matches!(err, EditError::LevelNotAllowed { .. }), "{err}");
    assert!(matches!(
        "fact".parse::<CopySource>(),
        Err(EditError::BadMode { .. })
    ));
}
