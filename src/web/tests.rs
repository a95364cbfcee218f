//! What the console's pages show, on the bundled example: the mode tree, a section with
//! where it is defined, what is never shown (passphrase hashes, secrets), escaping, and a
//! KDL edit spliced into its file with the file's indentation.

use std::path::Path;

use super::{actions, modes, page};
use crate::model::Mode;
use crate::validate::Checked;

fn example() -> Checked {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/americas");
    let snapshot = crate::source::read_worktree(&dir, "test").unwrap();
    let checked = crate::source::check(&snapshot);
    assert!(!checked.diags.has_errors());
    checked
}

/// One tag a line, so a snapshot reads.
fn lines(html: String) -> String {
    html.replace("><", ">\n<")
}

fn group(name: &str) -> Mode {
    format!("group:{name}").parse().unwrap()
}

#[test]
fn the_mode_tree_nests_groups_and_machines_and_marks_the_mode() {
    let c = example();
    let html = lines(modes::tree(&c.repo, &group("Paris"), Some("dns")).into_string());
    insta::assert_snapshot!(html);
}

#[test]
fn a_section_shows_its_content_and_where_it_is_defined() {
    let c = example();
    let schema = c.catalogue.get("dns").unwrap();
    let paris = c.repo.mode(&group("Paris")).unwrap();
    insta::assert_snapshot!(
        "dns_at_paris",
        lines(modes::section_view(&c.repo, &c.catalogue, paris, schema).into_string())
    );
    // Rome inherits the cluster's, greyed, with a link to where it comes from.
    let rome = c.repo.mode(&group("Rome")).unwrap();
    let html = modes::section_view(&c.repo, &c.catalogue, rome, schema).into_string();
    assert!(html.contains(r#"<pre class="inherited">"#), "{html}");
    assert!(
        html.contains(r#"From <a href="/modes/cluster/dns">cluster</a>"#),
        "{html}"
    );
}

#[test]
fn hashes_and_secrets_are_never_shown_and_markup_is_escaped() {
    let text = "user \"ada\" passphrase-hash=\"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\"\n";
    let shown = page::shown(text);
    assert_eq!(
        shown,
        format!("user \"ada\" passphrase-hash=\"{}\"\n", page::HIDDEN_HASH)
    );
    let armored = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----";
    assert!(!page::shown(armored).contains("YWdl"));
    let html = page::pre("resource \"footer\" \"<script>alert(1)</script>\"").into_string();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn a_kdl_edit_replaces_the_section_in_place_with_its_indentation() {
    let c = example();
    let paris = c.repo.mode(&group("Paris")).unwrap();
    let schema = c.catalogue.get("dns").unwrap();
    let (what, edit) =
        actions::text_edit(paris, schema, "dns {\r\n    server \"192.0.2.99\"\r\n}\r\n").unwrap();
    assert_eq!(what, "edit dns at group:Paris");
    let change = &edit.changes[0];
    assert_eq!(change.name, "groups.kdl");
    assert!(
        change.after.contains(
            "    // Whole-section override: Paris machines use these resolvers, not the cluster's.\n    dns {\n        server \"192.0.2.99\"\n    }\n    smtp-routes {"
        ),
        "{}",
        change.after
    );
    // The same text: nothing to change.
    let same = c
        .repo
        .mode(&group("Paris"))
        .unwrap()
        .section("dns")
        .unwrap();
    let own =
        &same.file.text[same.node.span.offset()..same.node.span.offset() + same.node.span.len()];
    let own = own.replace("\n    ", "\n");
    let (_, edit) = actions::text_edit(paris, schema, &own).unwrap();
    assert!(edit.changes.is_empty(), "{:?}", edit.changes);
}

fn form(action: &str, from: &str, to: &str) -> actions::ActionForm {
    actions::ActionForm {
        action: action.into(),
        from: from.into(),
        to: to.into(),
        ..Default::default()
    }
}

#[test]
fn the_seeds_actions_become_the_edits_the_cli_makes() {
    let c = example();
    let (repo, cat) = (&c.repo, &c.catalogue);
    let dns = cat.get("dns").unwrap();
    let cluster = repo.mode(&Mode::Cluster).unwrap();
    let rome = repo.mode(&group("Rome")).unwrap();
    // Copy to all groups: Paris defines its own and keeps it; the notice says so.
    let (what, edit) =
        actions::compute(repo, cat, cluster, dns, &form("copy", "", "all-groups")).unwrap();
    assert_eq!(what, "copy dns from cluster to all groups");
    let outcomes: Vec<String> = edit
        .groups
        .iter()
        .map(|g| format!("{} {:?}", g.group, g.outcome))
        .collect();
    assert!(
        outcomes.contains(&"Paris Skipped".to_owned()),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"Rome Copied".to_owned()), "{outcomes:?}");
    // Override at Rome, from the factory default.
    let (what, edit) =
        actions::compute(repo, cat, rome, dns, &form("override", "factory", "")).unwrap();
    assert_eq!(
        what,
        "override dns at group:Rome, starting with the factory default"
    );
    assert_eq!(edit.changes.len(), 1);
    // Delete where it is not defined, and an unknown action: refused, with why.
    let refused = actions::compute(repo, cat, rome, dns, &form("delete", "", ""))
        .err()
        .unwrap();
    assert!(refused.into_string().contains("nothing to delete"));
    let refused = actions::compute(repo, cat, rome, dns, &form("drop", "", ""))
        .err()
        .unwrap();
    assert!(refused.into_string().contains("unknown action"));
}

#[test]
fn who_may_edit() {
    let c = example();
    let dns = c.catalogue.get("dns").unwrap();
    let users = c.catalogue.get("users").unwrap();
    let viewer = |role| super::Viewer {
        user: "ada".into(),
        role,
        csrf: String::new(),
        machine: "lab1.example.com".into(),
    };
    use crate::cluster::users::Role;
    assert_eq!(actions::may_not(&viewer(Role::Operator), dns, None), None);
    let ro = actions::may_not(&viewer(Role::ReadOnly), dns, None).unwrap();
    assert!(ro.contains("ada is read-only"), "{ro}");
    assert!(
        actions::may_not(&viewer(Role::Operator), users, None)
            .unwrap()
            .contains("administrators")
    );
    assert_eq!(
        actions::may_not(&viewer(Role::Administrator), users, None),
        None
    );
    let followed = crate::cluster::caller::Followed {
        by: "this cluster follows main of /srv/config.git in mode apply".into(),
        commit: None,
    };
    let off = actions::may_not(&viewer(Role::Administrator), dns, Some(&followed)).unwrap();
    assert!(off.contains("edit the config in git"), "{off}");
}
