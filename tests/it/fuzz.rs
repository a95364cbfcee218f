//! Fuzz targets that run on stable Rust, as bounded property tests (issue 8): the KDL repo
//! parser and every repo check, the XML reader and import, the frame codec and message
//! decoding, and the agent's checks of decoded writes. Each target feeds byte-level noise,
//! token soup built from the format's own syntax (long runs of one token included, for
//! nesting and recursion), and mutations of real inputs (the example repos, their XML
//! exports, serialised requests). The property: nothing panics or overflows the stack, all
//! output renders, and what should round-trip does.
//!
//! `cargo test` runs a few dozen cases per target from a fixed seed, on the test
//! thread's 2 MiB stack (the agent's tokio workers have the same). A long run:
//!
//! ```sh
//! STRATA_FUZZ_SECONDS=600 cargo test --release --locked --test it fuzz_kdl -- --nocapture
//! ```
//!
//! runs rounds of `STRATA_FUZZ_CASES` cases (default 256 then) from fresh seeds until the
//! time is up and prints cases/s; a failure prints its seed (`STRATA_FUZZ_SEED` replays it)
//! and proptest's shrunk input. With `STRATA_FUZZ_LAST=FILE` each case is written to FILE
//! before it runs, so an abort (a stack overflow) leaves its input behind.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use tokio_util::codec::{Decoder as _, Encoder as _};

use strata::cluster::authorize::{check_authority, check_writes};
use strata::cluster::caller::Authority;
use strata::config::diagnostics::{MAX_PROBLEMS, render};
use strata::config::{Diagnostics, Repo, SourceFile, parse_files, parse_kdl};
use strata::model::{EntryValue, Key, MachineName, Node, Value};
use strata::plan::desired;
use strata::protocol::{FrameCodec, Request, Response};
use strata::schema::Catalogue;
use strata::state::{Live, Writes};
use strata::validate::{check_paths, validate};
use strata::xml::cluster::{Loaded, load};
use strata::xml::decode_bytes;
use strata::xml::export::{export_cluster, export_machine};
use strata::xml::import::{from_cluster, into_machine, new_cluster};

use crate::support::example;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// Runs `test` on values of `strategy`; see the module docs for the knobs.
fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds = env("STRATA_FUZZ_SECONDS").unwrap_or(0);
    let cases = env("STRATA_FUZZ_CASES").unwrap_or(if seconds > 0 { 256 } else { 24 }) as u32;
    let seed = env("STRATA_FUZZ_SEED").unwrap_or_else(|| {
        if seconds > 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        } else {
            0x5742_4154
        }
    });
    // Each case is written here before it runs: what a stack overflow (an abort, which
    // proptest cannot catch or shrink) was running.
    let last = std::env::var_os("STRATA_FUZZ_LAST");
    let start = Instant::now();
    let mut total = 0u64;
    for round in 0.. {
        let round_seed = seed.wrapping_add(round);
        if seconds > 0 {
            // Printed first: a stack overflow aborts without unwinding to the report below.
            eprintln!("fuzz {name}: round {round}, STRATA_FUZZ_SEED={round_seed}");
        }
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&round_seed.to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let run = |value: S::Value| {
            if let Some(path) = &last {
                let _ = std::fs::write(path, format!("{value:#?}"));
            }
            test(value)
        };
        if let Err(e) = runner.run(&strategy, run) {
            panic!("fuzz {name} failed (STRATA_FUZZ_SEED={round_seed}): {e}");
        }
        total += u64::from(cases);
        if start.elapsed().as_secs() >= seconds {
            break;
        }
    }
    if seconds > 0 {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "fuzz {name}: {total} cases in {secs:.0} s, {:.0} cases/s, no failure",
            total as f64 / secs
        );
    }
}

/// Text built from `tokens`: mostly tokens, some printable and arbitrary characters, and
/// long runs of one token.
fn soup(tokens: &'static [&'static str], max_len: usize) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        12 => prop::sample::select(tokens).prop_map(str::to_owned),
        2 => "[ -~]{0,6}",
        1 => ".{0,3}",
        1 => (prop::sample::select(tokens), 1..3000usize).prop_map(|(t, n)| t.repeat(n)),
    ];
    prop::collection::vec(token, 0..max_len).prop_map(|v| v.concat())
}

/// `base` with a few edits: tokens inserted, spans deleted or duplicated.
fn mutated(bases: Vec<String>, tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0..4u8,
        soup(tokens, 3),
        0..64usize,
    );
    (
        prop::sample::select(bases),
        prop::collection::vec(edit, 1..8),
    )
        .prop_map(|(base, edits)| {
            let mut text = base.into_bytes();
            for (at, kind, insert, len) in edits {
                let at = at.index(text.len() + 1);
                let end = (at + len).min(text.len());
                match kind {
                    0 => drop(text.splice(at..at, insert.into_bytes())),
                    1 => drop(text.drain(at..end)),
                    2 => {
                        let copy = text[at..end].to_vec();
                        text.splice(at..at, copy);
                    }
                    _ => drop(text.splice(at..end, insert.into_bytes())),
                }
            }
            String::from_utf8_lossy(&text).into_owned()
        })
}

fn bytes_as_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..2000)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

// ---- KDL repos --------------------------------------------------------------------------

const KDL_TOKENS: &[&str] = &[
    "cluster \"americas\"",
    "group \"Main_Group\"",
    "group \"Paris\"",
    "machine \"lab1.example.com\"",
    " group=\"Paris\"",
    " address=\"10.1.0.1\"",
    " serial=\"X\"",
    "dns",
    "listeners",
    "listener \"in\"",
    "interfaces",
    "interface \"Data1\"",
    "users",
    "user \"ada\" role=\"operator\"",
    "ldap-queries",
    "smtp-routes",
    "xml-extra",
    "element",
    "server",
    "\"10.0.0.53\"",
    " priority=0",
    " port=25",
    " {",
    "{",
    "}",
    "\n",
    ";",
    " ",
    "\"",
    "\"\"\"",
    "#\"",
    "\"#",
    "##\"",
    "\"##",
    "/*",
    "*/",
    "//",
    "/-",
    "\\",
    "=",
    "(t)",
    "(",
    ")",
    "#true",
    "#false",
    "#null",
    "#inf",
    "#-inf",
    "#nan",
    "0x1f",
    "0b102",
    "1.5e3",
    "-",
    "+",
    ".",
    "é",
    "\u{FEFF}",
    "\r\n",
    "\r",
    "\t",
    "\u{a0}",
    "\u{2028}",
    "\"a\\nb\"",
    "\\u{41}",
    "\\u{",
    // Issue 20: after a bad escape, each of these is two errors.
    "\"x\\#",
    "\\u{1F600}",
    "\\\n",
    "section \"web-proxy\" level=\"any\"",
    "field",
    "type=\"string\"",
    "required=#true",
    "xml=\"web\"",
    "\u{0}",
    "\u{7f}",
    "\u{fffd}",
    "9999999999999999999999999999999999999999",
];

fn example_kdl() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![example("")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "kdl") {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out.sort();
    out
}

fn builtin() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| Catalogue::load(&[], &mut Diagnostics::default()))
}

/// Renders every problem the three ways users read them; there are never more than the
/// caps keep, however many the input holds.
fn render_all(diags: &Diagnostics) {
    assert!(diags.problems().len() <= MAX_PROBLEMS);
    for p in diags.problems() {
        let text = render(p, 80, false);
        assert!(!text.is_empty());
        if let Some((line, col)) = p.line_col() {
            assert!(line >= 1 && col >= 1);
        }
    }
}

/// Canonical text parses back to itself.
fn canonical_round_trips(repo: &Repo) -> Result<(), TestCaseError> {
    for decl in repo.modes() {
        for s in &decl.sections {
            let text = s.node.to_canonical();
            let doc = parse_kdl(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let [back] = doc.nodes() else {
                return Err(TestCaseError::fail(format!("not one node: {text}")));
            };
            prop_assert_eq!(Node::from_kdl(back).to_canonical(), text);
        }
    }
    Ok(())
}

fn kdl_input() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => soup(KDL_TOKENS, 120),
        1 => bytes_as_text(),
        4 => mutated(example_kdl(), KDL_TOKENS),
    ]
}

#[test]
fn fuzz_kdl_repo_parse_and_checks() {
    fuzz("kdl", kdl_input(), |text| {
        let mut diags = Diagnostics::default();
        let schema = SourceFile::new("schemas/fuzz.kdl", text.clone());
        let catalogue = Catalogue::load(&[schema], &mut diags);
        let repo = parse_files(vec![SourceFile::new("fuzz.kdl", text)], &mut diags);
        validate(&repo, builtin(), &mut diags);
        validate(&repo, &catalogue, &mut diags);
        diags.sort();
        render_all(&diags);
        canonical_round_trips(&repo)
    });
}

// ---- XML --------------------------------------------------------------------------------

const XML_TOKENS: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    "<config>",
    "</config>",
    "<strata_cluster name=\"c\">",
    "</strata_cluster>",
    "<cluster sections=\"dns\">",
    "</cluster>",
    "<group name=\"Main_Group\"/>",
    "<machine name=\"m\" group=\"Main_Group\" address=\"10.0.0.1\">",
    "</machine>",
    "<",
    ">",
    "</",
    "/>",
    "=\"",
    "\"",
    "'",
    " a=\"1\"",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&#xD800;",
    "&bogus;",
    "&",
    "<!DOCTYPE config>",
    "<!DOCTYPE x [<!ENTITY a \"b\">]>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?pi x?>",
    "\n",
    " ",
    "é",
    "\u{ff}",
    "\u{0}",
    "<!-- Product: X  Serial #: 1 -->",
    "<hostname>h</hostname>",
    "<dns>",
    "</dns>",
    "<x>",
    "</x>",
    "<y/>",
    "text",
];

fn xml_seeds() -> Vec<String> {
    let checked = check_paths(&[example("americas")]).unwrap();
    let mut out = vec![
        String::from_utf8_lossy(&export_cluster(&checked.repo, &checked.catalogue)).into_owned(),
    ];
    for m in checked.repo.machines.iter().take(2) {
        out.push(
            String::from_utf8_lossy(&export_machine(&checked.repo, &checked.catalogue, m))
                .into_owned(),
        );
    }
    out
}

fn americas() -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(|| check_paths(&[example("americas")]).unwrap().repo)
}

#[test]
fn fuzz_xml_read_and_import() {
    let input = prop_oneof![
        2 => soup(XML_TOKENS, 120).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..2000),
        4 => mutated(xml_seeds(), XML_TOKENS).prop_map(String::into_bytes),
        // Latin-1 bytes that are not UTF-8.
        1 => mutated(xml_seeds(), XML_TOKENS)
            .prop_map(|s| s.chars().map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }).collect()),
    ];
    fuzz("xml", input, |bytes| {
        let Ok(text) = decode_bytes(&bytes) else {
            return Ok(());
        };
        let file = SourceFile::new("fuzz.xml", text);
        let mut diags = Diagnostics::default();
        let catalogue = builtin();
        match load(&file, catalogue, &mut diags) {
            Some(Loaded::Appliance(app)) => {
                let planned = new_cluster(&app, catalogue, "c", "m.example.com", None);
                let _ = format!("{planned:?}");
                let planned = into_machine(
                    &app,
                    catalogue,
                    americas(),
                    "m.example.com",
                    "Main_Group",
                    None,
                );
                let _ = format!("{planned:?}");
            }
            Some(Loaded::Cluster(repo)) => {
                let _ = format!("{:?}", from_cluster(&repo, Some("x")));
                validate(&repo, catalogue, &mut diags);
            }
            None => {}
        }
        render_all(&diags);
        Ok(())
    });
}

// ---- Frames and messages ----------------------------------------------------------------

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "1",
    "-0",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"request\"",
    "\"response\"",
    "\"hello\"",
    "\"apply\"",
    "\"writes\"",
    "\"base\"",
    "\"origin\"",
    "\"name\"",
    "\"children\"",
    "\"args\"",
    "\"props\"",
    "{\"name\":\"a\",\"children\":[",
    "]}",
    "{\"int\":\"1\"}",
    "{\"float\":\"nan\"}",
    " ",
    "\n",
    "\"cluster/dns\"",
    "\"@cluster\"",
    "\"#catalogue\"",
    "\"machine:lab1.example.com/interfaces\"",
];

fn request_seeds() -> Vec<String> {
    let checked = check_paths(&[example("americas")]).unwrap();
    let writes: Writes = desired(&checked.repo, &checked.catalogue)
        .into_iter()
        .take(40)
        .map(|(k, v)| (k, Some(v)))
        .collect();
    let apply = serde_json::json!({
        "request": "apply",
        "writes": writes,
        "base": {},
        "origin": {"source": "cli", "author": "a", "message": "m"},
    });
    let mut out = vec![
        apply.to_string(),
        serde_json::to_string(&Request::Hello {
            protocol: 2,
            version: "0.1.0".into(),
        })
        .unwrap(),
        serde_json::to_string(&Request::Rollback {
            to: "abcd".into(),
            shown: None,
        })
        .unwrap(),
        serde_json::to_string(&Request::ClusterCreate { name: "c".into() }).unwrap(),
        serde_json::to_string(&Request::Log).unwrap(),
    ];
    out.push(serde_json::to_string(&Response::error("no", Some("help"))).unwrap());
    out
}

#[test]
fn fuzz_frames_and_messages() {
    let payload = prop_oneof![
        2 => soup(JSON_TOKENS, 80),
        1 => bytes_as_text(),
        4 => mutated(request_seeds(), JSON_TOKENS),
    ];
    let input = (
        prop::collection::vec(payload, 1..4),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(1..200usize, 1..16),
    );
    fuzz("frames", input, |(payloads, noise, cuts)| {
        let mut codec = FrameCodec::new(1 << 20);
        let mut wire = BytesMut::new();
        for p in &payloads {
            codec
                .encode(bytes::Bytes::from(p.clone().into_bytes()), &mut wire)
                .unwrap();
        }
        let clean = wire.len();
        wire.extend_from_slice(&noise);
        // Fed in pieces, as a stream delivers them.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < wire.len() {
            let end = (at + cut.next().unwrap()).min(wire.len());
            buf.extend_from_slice(&wire[at..end]);
            at = end;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(_) => {
                        prop_assert!(at > clean, "a well-formed frame was refused");
                        at = wire.len();
                        break;
                    }
                }
            }
        }
        prop_assert!(frames.len() >= payloads.len());
        for (frame, p) in frames.iter().zip(&payloads) {
            prop_assert_eq!(&frame[..], p.as_bytes());
        }
        for frame in &frames {
            if let Ok(r) = serde_json::from_slice::<Request>(frame) {
                let text = serde_json::to_string(&r).unwrap();
                prop_assert!(serde_json::from_str::<Request>(&text).is_ok(), "{}", text);
                if let Request::Apply { writes, .. } = r {
                    check_decoded_writes(&writes);
                }
            }
            if let Ok(r) = serde_json::from_slice::<Response>(frame) {
                let _ = serde_json::to_string(&r).unwrap();
            }
        }
        Ok(())
    });
}

// ---- The agent's checks of writes -------------------------------------------------------

fn check_decoded_writes(writes: &Writes) {
    let me = MachineName::new("lab1.example.com").unwrap();
    let _ = check_authority(writes, Authority::NoMembership);
    let _ = check_writes(writes, &Live::new(), &me);
}

const NAMES: &[&str] = &[
    "dns",
    "server",
    "listeners",
    "listener",
    "interfaces",
    "interface",
    "users",
    "user",
    "key",
    "ldap-queries",
    "smtp-routes",
    "route",
    "xml-extra",
    "element",
    "hat",
    "hostname",
    "a",
    "",
    "{",
    "}",
    "\"",
    "/*",
    "//",
    "#",
    "\n",
    "é",
    "x y",
    "section",
    "field",
];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(NAMES).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
        any::<i128>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::sample::select(NAMES),
        prop::collection::vec(value(), 0..3),
        prop::collection::vec((prop::sample::select(NAMES), value()), 0..3),
    )
        .prop_map(|(name, args, props)| {
            let mut n = Node::new(if name.is_empty() { "n" } else { name });
            n.args = args;
            for (k, v) in props {
                if !k.is_empty() && n.prop(k).is_none() {
                    n.props.push((k.to_owned(), v));
                }
            }
            n.props.sort_by(|a, b| a.0.cmp(&b.0));
            n
        });
    leaf.prop_recursive(70, 200, 4, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..4)).prop_map(|(mut n, children)| {
            n.children = children;
            n
        })
    })
}

#[test]
fn fuzz_agent_checks_of_writes() {
    let checked = check_paths(&[example("americas")]).unwrap();
    let entries: Vec<(Key, EntryValue)> = desired(&checked.repo, &checked.catalogue)
        .into_iter()
        .collect();
    let keys: Vec<Key> = entries.iter().map(|(k, _)| k.clone()).collect();
    let entries = Arc::new(entries);
    let input = (
        prop::collection::vec((prop::sample::select(keys), node(), any::<bool>()), 0..6),
        any::<prop::sample::Index>(),
    );
    fuzz("writes", input, move |(replaced, drop_at)| {
        let mut writes: Writes = entries
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let dropped = drop_at.get(&entries[..]).0.clone();
        writes.remove(&dropped);
        for (key, node, tombstone) in replaced {
            let value = match &key {
                Key::Section { .. } => EntryValue::Section(node),
                Key::Schema(_) => EntryValue::Schema(node),
                _ => EntryValue::Section(node),
            };
            writes.insert(key, (!tombstone).then_some(value));
        }
        // As the agent gets them: through the wire encoding.
        let text = serde_json::to_string(&writes).unwrap();
        match serde_json::from_str::<Writes>(&text) {
            Ok(decoded) => check_decoded_writes(&decoded),
            Err(e) => prop_assert!(
                text.len() > 1000 && e.to_string().contains("recursion"),
                "{e}"
            ),
        }
        Ok(())
    });
}
