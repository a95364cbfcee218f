//! No text can overflow the stack while Strata reads KDL (issue 8, item 2): hostile shapes
//! go through parsing and every check of a repo on a thread with the 2 MiB stack tokio
//! gives the agent's workers. A stack overflow aborts this whole test binary, so each
//! shape runs in its own test to name the culprit.

use strata::config::{Diagnostics, SourceFile, parse_files, parse_kdl};
use strata::schema::Catalogue;
use strata::validate::validate;

/// Parses and validates `text` as a one-file repo on a 2 MiB stack; returns the codes of
/// the problems found.
fn check_on_small_stack(text: String) -> Vec<&'static str> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = parse_kdl(&text);
            let mut diags = Diagnostics::default();
            let catalogue = Catalogue::load(&[], &mut diags);
            let repo = parse_files(vec![SourceFile::new("r.kdl", text)], &mut diags);
            validate(&repo, &catalogue, &mut diags);
            diags.problems().iter().map(|p| p.code).collect()
        })
        .unwrap()
        .join()
        .unwrap()
}

fn refused(text: String, code: &str) {
    let codes = check_on_small_stack(text);
    assert!(codes.contains(&code), "{codes:?}");
}

#[test]
fn an_unterminated_string_before_deep_nesting() {
    // The reproduction: the scanner took the rest of the file for a string.
    refused(
        format!("\"\n{}", "a {".repeat(2000)),
        "strata::kdl::too-deep",
    );
}

#[test]
fn deep_nesting_the_scanner_cannot_see() {
    // Whatever the scanner makes of the text, the parser itself stops at its own limit.
    for prefix in [
        "#\"\n",
        "\"\"\"\n",
        "/*\n",
        "a 1\"x ",
        "(t\"",
        "/-",
        "a \"\\u{\" ",
    ] {
        let text = format!("{prefix}{}", "a {\"} ".repeat(20_000));
        let codes = check_on_small_stack(text);
        assert!(!codes.is_empty(), "{prefix:?}");
    }
}

#[test]
fn stray_characters_at_the_top_level() {
    // Upstream kdl recursed once per character it could not place.
    for c in ["}", "=", ")", "\\", "{}"] {
        refused(c.repeat(50_000), "strata::kdl::syntax");
    }
}

#[test]
fn slashdash_chains_in_entries() {
    // Found by fuzzing (`a /-/-/-…`): upstream kdl recursed once per slashdash of an entry.
    refused(
        format!("a {} b", "/-".repeat(20_000)),
        "strata::kdl::syntax",
    );
    refused(
        format!("2\t{} a", "/-".repeat(20_000)),
        "strata::kdl::syntax",
    );
}

#[test]
fn long_block_comments_are_fine() {
    // A valid file: upstream kdl recursed once per `*` or `/` in a comment.
    let text = format!(
        "/*{}*/\n/* {} */\ncluster \"c\"\ngroup \"g\"\n",
        "*".repeat(50_000),
        "a/".repeat(50_000)
    );
    let codes = check_on_small_stack(text);
    assert!(codes.is_empty(), "{codes:?}");
    refused(
        format!("{}{}", "/*".repeat(50_000), "*/".repeat(49_999)),
        "strata::kdl::syntax",
    );
}

#[test]
fn many_blocks_and_nodes_in_sequence() {
    let text = format!(
        "cluster \"c\" {{\n{}}}\n",
        "dns { server \"10.0.0.1\" }\n".repeat(20_000)
    );
    let _ = check_on_small_stack(text);
    refused("a {}\n".repeat(50_000), "strata::repo::unknown-node");
}

#[test]
fn the_depth_limit_is_exact_for_valid_files() {
    // `a {` is the first level.
    let ok = format!("a {{ {}{}}}", "b { ".repeat(63), "}".repeat(63));
    assert!(parse_kdl(&ok).is_ok());
    let deep = format!("a {{ {}{}}}", "b { ".repeat(64), "}".repeat(64));
    assert!(parse_kdl(&deep).is_err());
}
