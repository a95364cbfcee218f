//! The fast KDL reader (`config::kdl_fast`) against kdl's parser: whatever it reads, kdl
//! parses without error to the same nodes, entries, values and spans (all that Strata
//! reads of a document); what it is unsure of, it leaves to kdl. Checked on the example
//! repos, the built-in schemas and a generated fleet (which it must read itself, or
//! validate is slow again), on chosen cases, and on fuzzed input.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use strata::config::kdl_fast::read;
use strata::config::kdl_text::MAX_DEPTH;
use strata::config::parse_kdl;

use crate::fleet::{FleetSpec, generate};
use crate::fuzz::{fuzz, kdl_input, mutated, soup};
use crate::support::example;

/// Where two documents first differ in what Strata reads of them, if they do.
fn differ(fast: &KdlDocument, kdl: &KdlDocument) -> Option<String> {
    if fast.span() != kdl.span() {
        return Some(format!("document span {:?} vs {:?}", fast.span(), kdl.span()));
    }
    if fast.nodes().len() != kdl.nodes().len() {
        return Some(format!(
            "{} nodes vs {} at {:?}",
            fast.nodes().len(),
            kdl.nodes().len(),
            kdl.span()
        ));
    }
    fast.nodes()
        .iter()
        .zip(kdl.nodes())
        .find_map(|(a, b)| node_differs(a, b))
}

fn node_differs(a: &KdlNode, b: &KdlNode) -> Option<String> {
    let what = format!("node `{}` at {:?}", b.name().value(), b.span());
    if a.span() != b.span() || ident(Some(a.name())) != ident(Some(b.name())) {
        return Some(format!("{what}: {:?} {:?}", a.span(), ident(Some(a.name()))));
    }
    if ident(a.ty()) != ident(b.ty()) || a.entries().len() != b.entries().len() {
        return Some(format!("{what}: type or entry count"));
    }
    if let Some((x, y)) = a
        .entries()
        .iter()
        .zip(b.entries())
        .find(|(x, y)| entry(x) != entry(y))
    {
        return Some(format!("{what}: {:?} vs {:?}", entry(x), entry(y)));
    }
    match (a.children(), b.children()) {
        (None, None) => None,
        (Some(x), Some(y)) => differ(x, y).map(|d| format!("{what}: {d}")),
        _ => Some(format!("{what}: children block only on one side")),
    }
}

fn ident(i: Option<&KdlIdentifier>) -> Option<(String, miette::SourceSpan)> {
    i.map(|i| (i.value().to_owned(), i.span()))
}

fn entry(e: &KdlEntry) -> impl PartialEq + std::fmt::Debug {
    (
        ident(e.name()),
        ident(e.ty()),
        // `{:?}` tells an integer from a float and keeps NaN equal to itself.
        format!("{:?}", e.value()),
        e.span(),
    )
}

/// What the reader gives for `text` agrees with kdl: the same document, or nothing.
fn agrees(text: &str) -> Result<bool, String> {
    let Some(fast) = read(text) else {
        return Ok(false);
    };
    match parse_kdl(text) {
        Ok(doc) => differ(&fast, &doc).map_or(Ok(true), Err),
        Err(e) => Err(format!("the reader read what kdl refuses: {e}")),
    }
}

fn kdl_files(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            kdl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "kdl") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn repos_schemas_and_the_fleet_are_read_as_kdl_reads_them() {
    let mut plain = Vec::new();
    for dir in ["americas", "custom-schema"] {
        kdl_files(&example(dir), &mut plain);
    }
    kdl_files(&example("../schemas"), &mut plain);
    let spec = FleetSpec {
        machines: 40,
        groups: 6,
        seed: 3,
    };
    plain.extend(generate(spec));
    assert!(plain.len() > 80, "{} files", plain.len());
    for (name, text) in &plain {
        assert_eq!(agrees(text), Ok(true), "{name}");
    }
    // The invalid corpus: syntax errors are left to kdl, the rest read alike.
    let mut invalid = Vec::new();
    kdl_files(&example("invalid"), &mut invalid);
    for (name, text) in &invalid {
        let read = agrees(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read, parse_kdl(text).is_ok(), "{name}");
    }
}

#[test]
fn chosen_cases_read_as_kdl_reads_them() {
    let cases = [
        "",
        "\n\n  // only a comment\n",
        "a",
        "a;b;c",
        "a; b ;\n c;",
        "a 1 ;\n",
        "a 1 /* c */ // d\nb",
        "a 1 \t\r\nb 2\rc 3",
        "a{}",
        "a {\n}\n",
        "a { b; }",
        "a { b }  \n",
        "a 1{ b }",
        "a /* x */ { /* y */ b 1 /* z */ } /* w */\nc",
        "a { b { c { d \"e\" } } }",
        "a x=1 y = 2 z =3 w= 4",
        "a \"quoted key\"=\"v\" \"arg\"",
        "\"quoted name\" 1",
        "a -1 +2 0 -0 007 123456789012345678901234567890",
        "a - + -x +y .x -.x +. --x x.1 a-b_c:d@e!f$g%h^i&j*k<l>m?n~o|p,q'r`s",
        "a #true #false #null k=#true",
        "a \"\\\"\\\\\\b\\f\\n\\r\\t\\s\" \"\\u{41}\\u{1F600}\\u{0}\"",
        "a \"x\\   \n   y\" \"\\\r\n\tz\"",
        "a \"café ☕\" \"tab\there\"",
        "a /* nested /* comment */ still */ 1",
        "a 1 2 1 k=1 k=2",
        "a //\nb",
        "a \"\"",
    ];
    for text in cases {
        assert_eq!(agrees(text), Ok(true), "{text:?}");
    }
    // Blocks nested as deep as Strata allows; one more is left to kdl_text's guard.
    let nested = |depth: usize| format!("a {}{}", "b { ".repeat(depth), "}".repeat(depth));
    assert_eq!(agrees(&nested(MAX_DEPTH)), Ok(true));
    // Left to kdl: what the reader does not know, and every error.
    let given_up = [
        nested(MAX_DEPTH + 1),
        "/- a\nb".into(),
        "a /-1 2".into(),
        "a /-{ b }".into(),
        "(t)a".into(),
        "a (t)1".into(),
        "a #\"raw\"#".into(),
        "a \"\"\"\n  multi\n  \"\"\"".into(),
        "a 1.5 ".into(),
        "a 1e3".into(),
        "a 0x1f".into(),
        "a 1_000".into(),
        "a #inf".into(),
        "a \\\n 1".into(),
        "a café".into(),
        "a\u{a0}1".into(),
        "\u{feff}a".into(),
        "a true".into(),
        "a .5".into(),
        "a -.5".into(),
        "a 1=2".into(),
        "a=1".into(),
        "a x==1".into(),
        "a \"x\"y".into(),
        "a 1x".into(),
        "a \"unterminated".into(),
        "a \"new\nline\"".into(),
        "a \"\\q\"".into(),
        "a \"\\u{110000}\"".into(),
        "a \"\\u{1234567}\"".into(),
        "a { b".into(),
        "a }".into(),
        "}".into(),
        "a;;".into(),
        "a {} b".into(),
        "a {} {}".into(),
        "a /* unterminated".into(),
        "a // vertical\u{b}tab".into(),
        "1".into(),
        "-1".into(),
        "+.5 a".into(),
        ".5 a".into(),
        "a 1234567890123456789012345678901".into(),
    ];
    for text in &given_up {
        assert_eq!(agrees(text), Ok(false), "{text:?}");
    }
}

/// Tokens of the subset the reader reads, and its edges.
const READER_TOKENS: &[&str] = &[
    "a", "node", "-x", "+", "-", ".x", "-.", "x.1", "k=", " = ", "=", "1", "-1", "+2", "0",
    "123", "1.", ".5", "1_0", "0x1", "#true", "#false", "#null", "#inf", "true", "\"s\"",
    "\"\"", "\"\\n\"", "\"\\u{7B}\"", "\"\\u{\"", "\"\\  \n x\"", "\"é\"", "\"\t\"", "\"",
    "\\", " ", "  ", "\t", "\n", "\r\n", "\r", ";", "{", "}", " { ", " }\n", "/* c */", "/*",
    "*/", "// c\n", "//", "/-", "(t)", "é", "\u{a0}", "\u{2028}", "\u{b}", "\u{0}",
];

#[test]
fn fuzz_kdl_reader_agrees_with_kdl() {
    let input = prop_oneof![
        2 => kdl_input(),
        2 => soup(READER_TOKENS, 80),
        1 => mutated(crate::fuzz::example_kdl(), READER_TOKENS),
    ];
    fuzz("kdl reader", input, |text| {
        agrees(&text).map(|_| ()).map_err(TestCaseError::fail)
    });
}
