//! AsyncOS XML as appliances write it: a fixture per appliance generation the reference
//! distinguishes (an older ESA with `routes` and a default gateway, listeners, HAT and RAT;
//! an ESA 11 with `routing_tables` and IPv6; a web appliance's top level; a partial file)
//! validates with no errors, imports into a new cluster repo that validates, and exports
//! back with every element path and leaf value in the appliance's order and the header
//! lines; a masked export (empty `<hostname>`) imports only when the machine is named; and
//! every attested path of the reference is either mapped to a section or kept verbatim.

use std::path::Path;
use std::sync::Arc;

use strata::config::{Diagnostics, SourceFile, parse_files};
use strata::model::Node;
use strata::schema::{Catalogue, XML_EXTRA};
use strata::validate::{check_paths, validate};
use strata::xml::cluster::{Appliance, Loaded, load};
use strata::xml::codec::Decoder;
use strata::xml::export::export_machine;
use strata::xml::import::new_cluster;
use strata::xml::reader::XAttr;
use strata::xml::{
    Limits, XElem, XNode, decode_bytes, decode_sections, encode_sections, reader, writer,
};

use crate::support::{root, strata, transcript};

const APPLIANCES: [&str; 4] = [
    "esa-c390-old-routes.xml",
    "esa-c300v-routing-tables.xml",
    "wsa-s100v.xml",
    "sma-partial.xml",
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/xml/appliances").join(name)).unwrap()
}

fn parse(name: &str, bytes: &[u8]) -> reader::XDocument {
    let file = SourceFile::new(name, decode_bytes(bytes).unwrap());
    reader::parse(&file, &Limits::default()).unwrap()
}

/// Every leaf (element text, empty ones included) and attribute, as (path, value), in
/// document order.
fn leaves(e: &XElem, at: &str, out: &mut Vec<(String, String)>) {
    let path = format!("{at}/{}", e.name);
    for a in &e.attrs {
        out.push((format!("{path}/@{}", a.name), a.value.clone()));
    }
    if e.elements().next().is_none() {
        out.push((path.clone(), e.text().0.trim().to_owned()));
    }
    for c in e.elements() {
        leaves(c, &path, out);
    }
}

/// The leaves of `original` not found, in order, among those of `exported`: every one
/// must come back, in the same order (export may add factory defaults between them).
fn missing_in_order(original: &XElem, exported: &XElem) -> Vec<(String, String)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(original, "", &mut a);
    leaves(exported, "", &mut b);
    let mut rest = b.iter();
    a.into_iter()
        .filter(|leaf| !rest.any(|x| x == leaf))
        .collect()
}

fn appliance(name: &str, bytes: &[u8], cat: &Catalogue) -> (Appliance, Diagnostics) {
    let file = SourceFile::new(name, decode_bytes(bytes).unwrap());
    let mut diags = Diagnostics::default();
    match load(&file, cat, &mut diags) {
        Some(Loaded::Appliance(a)) => (a, diags),
        other => panic!("{name}: not an appliance: {other:?} {:?}", diags.problems()),
    }
}

#[test]
fn every_appliance_generation_validates_imports_and_exports_back() {
    let cat = Catalogue::builtin();
    for name in APPLIANCES {
        let path = root().join("tests/fixtures/xml/appliances").join(name);
        let checked = check_paths(&[path]).unwrap();
        assert!(
            !checked.diags.has_errors(),
            "{name}: {:?}",
            checked.diags.problems()
        );

        let original = fixture(name);
        let (app, _) = appliance(name, &original, &cat);
        let machine = app.hostname().unwrap_or("m1.example.com").to_owned();
        let plan = new_cluster(&app, &cat, "lab", &machine, None);
        let files: Vec<Arc<SourceFile>> = plan
            .files
            .iter()
            .map(|(p, t)| SourceFile::new(p.clone(), t.clone()))
            .collect();
        let mut diags = Diagnostics::default();
        let repo = parse_files(files, &mut diags);
        validate(&repo, &cat, &mut diags);
        // The appliance's passwords as it wrote them: this checks the XML round trip
        // (the CLI encrypts them on import, below).
        strata::secret::allow_plaintext(&mut diags);
        assert!(!diags.has_errors(), "{name}: {:?}", diags.problems());

        let exported = export_machine(&repo, &cat, repo.machine(&machine).unwrap());
        let text = decode_bytes(&exported).unwrap();
        assert!(
            text.starts_with(
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE config SYSTEM \"config.dtd\">\n"
            ),
            "{name}: {}",
            &text[..120.min(text.len())]
        );
        let before = parse(name, &original);
        let after = parse("exported.xml", &exported);
        let missing = missing_in_order(&before.root, &after.root);
        assert!(
            missing.is_empty(),
            "{name}: not given back in order: {missing:#?}"
        );
        // The header comment: every line but the current time (and the line Strata adds
        // to a file that had no header).
        let own = |f: &&(String, String)| f.0 != strata::xml::cluster::STRATA_LINE;
        let fields: Vec<_> = after.header.fields.iter().filter(own).collect();
        assert_eq!(
            fields,
            before.header.fields.iter().collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(after.header.serial, before.header.serial, "{name}");
        assert_eq!(after.header.features, before.header.features, "{name}");
        assert!(!text.contains("Current Time"), "{name}");
    }
}

/// The reference's vocabulary reads into fields, not into xml-extra; what it does not
/// attest is kept, with a warning that names it.
#[test]
fn the_older_esa_is_read_into_its_sections() {
    let cat = Catalogue::builtin();
    let (app, diags) = appliance("esa.xml", &fixture("esa-c390-old-routes.xml"), &cat);
    let section = |n: &str| app.section(n).unwrap().to_canonical();
    insta::assert_snapshot!(section("interfaces"), @r#"
    interfaces {
        interface Management address="192.0.2.10/24" ethernet=Management ftp=21 hostname=mx1.strata-lab.example http=80 https=443 https-redirect=#true ssh=22 telnet=23
        interface inbound address="198.51.100.25/24" ethernet="Data 1" euq-default="1" euq-http=82 euq-https=83 euq-https-redirect=#false hostname=mail.strata-lab.example {
            xml-extra {
                as-written netmask "255.255.255.0"
            }
        }
        interface outbound address="10.20.0.25/23" ethernet="Data 2" hostname=relay.strata-lab.example {
            xml-extra {
                as-written netmask "0xfffffe00"
            }
        }
    }
    "#);
    insta::assert_snapshot!(section("ntp"), @r#"
    ntp {
        server time1.strata-lab.example
        server time2.strata-lab.example
        xml-extra {
            element ntp_source_ip_interface ""
            element ntp_server_info {
                element ntp_server_name time1.strata-lab.example
            }
        }
    }
    "#);
    let listeners = app.section("listeners").unwrap();
    let inbound = &listeners.children[0];
    assert_eq!(inbound.args[0].as_str(), Some("InboundMail"));
    let rat = inbound.children.iter().find(|c| c.name == "rat").unwrap();
    insta::assert_snapshot!(rat.to_canonical(), @r#"
    rat {
        entry strata-lab.example .strata-lab.example action=accept bypass-throttling=#true {
            xml-extra {
                as-written access ACCEPT
                element rat_params {
                    element smtp_response_text ""
                    order smtp_response_text bypass_receiving_control
                }
            }
        }
        entry ALL action=reject {
            xml-extra {
                as-written access REJECT
            }
        }
    }
    "#);
    let hat = inbound.children.iter().find(|c| c.name == "hat").unwrap();
    let text = hat.children[0].args[0].as_str().unwrap();
    assert!(text.starts_with("$BLOCKED\n    REJECT {"), "{text}");
    // An ethernet media value the appliance wrote is kept as it is.
    assert!(section("ethernet").contains("media=Autoselect"));
    // Unknown enumeration values (a role string AsyncOS writes) are warnings, never errors.
    assert!(!diags.has_errors(), "{:?}", diags.problems());
    let kept: Vec<&str> = diags
        .problems()
        .iter()
        .filter(|p| p.code == "strata::xml::unknown-value")
        .map(|p| p.message.as_str())
        .collect();
    assert!(kept.iter().any(|m| m.contains("\"operators\"")), "{kept:?}");
}

#[test]
fn a_real_format_file_through_the_cli() {
    let temp = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/xml/appliances/esa-c390-old-routes.xml";
    let out = strata(&root(), &["validate", file]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let dir = temp.path().join("lab");
    let dir = dir.to_str().unwrap();
    // Its LDAP password is refused in the clear, and written encrypted to a recipient
    // (here a break-glass key, which export-xml decrypts it with).
    let refused = strata(
        &root(),
        &["import-xml", file, "--new-cluster", "lab", "--repo", dir],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", transcript(&refused));
    assert!(
        transcript(&refused).contains("--recipient age1"),
        "{}",
        transcript(&refused)
    );
    let glass = age::x25519::Identity::generate();
    let key_file = temp.path().join("glass.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key_file, glass.to_string().expose_secret()).unwrap();
    }
    let recipient = glass.to_public().to_string();
    let out = strata(
        &root(),
        &[
            "import-xml",
            file,
            "--new-cluster",
            "lab",
            "--repo",
            dir,
            "--recipient",
            &recipient,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let kdl = std::fs::read_to_string(Path::new(dir).join("cluster.kdl")).unwrap();
    assert!(!kdl.contains("$3$9sd8f7g6h5j4k3l2"), "{kdl}");
    assert!(kdl.contains("bind-password=\"\"\""), "{kdl}");
    insta::assert_snapshot!(
        String::from_utf8_lossy(&out.stdout).replace(dir, "[REPO]"),
        @r"
    imported tests/fixtures/xml/appliances/esa-c390-old-routes.xml as the new cluster lab, machine mx1.strata-lab.example: wrote cluster.kdl, groups.kdl, machines/mx1.strata-lab.example.kdl
      cluster level: alerts, bounce-profiles, dns, ldap-queries, ldap-servers, listeners, ntp, scheduled-reports, smtp-auth-profiles, smtp-routes, ssh, timezone, users
      machine level: default-gateway, ethernet, hostname, interfaces, ports, routes, feature-keys, xml-extra
      coverage: 18 of 28 top-level elements mapped to sections (10 kept verbatim); 183 of 214 values read into fields (31 kept verbatim)
      kept verbatim in xml-extra: <dns_cache_ttl_min>, <global_max_listener_concurrency>, <global_max_header_lines>, <global_inbound_connection_timeout>, <reporting>, <euq>, <log_subscriptions>, <filters>, <aliases>, <update_interval>
    "
    );
    let out = strata(&root(), &["validate", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let exported = temp.path().join("back.xml");
    let out = strata(
        &root(),
        &[
            "export-xml",
            "--machine",
            "mx1.strata-lab.example",
            "--repo",
            dir,
            "--out",
            exported.to_str().unwrap(),
            "--age-identity",
            key_file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let mode = std::fs::metadata(&exported).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let before = parse("esa.xml", &fixture("esa-c390-old-routes.xml"));
    let after = parse("back.xml", &std::fs::read(&exported).unwrap());
    assert_eq!(missing_in_order(&before.root, &after.root), []);
}

/// A masked export has an empty `<hostname>`: it imports only once the machine is named,
/// and the empty element comes back as it was.
#[test]
fn a_masked_hostname_imports_only_when_named() {
    let temp = tempfile::tempdir().unwrap();
    let text = String::from_utf8_lossy(&fixture("esa-c300v-routing-tables.xml")).replace(
        "<hostname>esa11.strata-lab.example</hostname>",
        "<hostname></hostname>",
    );
    let masked = temp.path().join("masked.xml");
    std::fs::write(&masked, text).unwrap();
    let masked = masked.to_str().unwrap();
    let out = strata(temp.path(), &["validate", masked]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let dir = temp.path().join("repo");
    let dir = dir.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["import-xml", masked, "--new-cluster", "lab", "--repo", dir];
        args.extend_from_slice(extra);
        strata(temp.path(), &args)
    };
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let err = crate::support::unwrapped(&out.stderr);
    assert!(err.contains("empty or no <hostname>"), "{err}");
    assert!(err.contains("--name NAME"), "{err}");
    assert!(!temp.path().join("repo").exists());
    let out = import(&["--name", "esa11.strata-lab.example"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = strata(temp.path(), &["validate", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = strata(
        temp.path(),
        &[
            "export-xml",
            "--machine",
            "esa11.strata-lab.example",
            "--repo",
            dir,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let back = String::from_utf8_lossy(&out.stdout);
    assert!(back.contains("<hostname></hostname>"), "{back}");
    assert!(!back.contains("ironport.example.com"), "{back}");
}

/// Builds one document holding every path of the corpus (entries along the same path
/// merge into one element), each leaf with its value.
fn corpus_document(paths: &[(Vec<String>, String)]) -> XElem {
    let mut root = XElem::new("config");
    for (steps, value) in paths {
        let mut at = &mut root;
        let (last, inner) = steps[1..].split_last().unwrap();
        for step in inner {
            let found = at
                .children
                .iter()
                .position(|c| matches!(c, XNode::Elem(e) if e.name == *step));
            let i = found.unwrap_or_else(|| {
                at.children.push(XNode::Elem(XElem::new(step.as_str())));
                at.children.len() - 1
            });
            let XNode::Elem(next) = &mut at.children[i] else {
                unreachable!()
            };
            at = next;
        }
        match last.strip_prefix('@') {
            Some(attr) => at.attrs.push(XAttr {
                name: attr.to_owned(),
                value: value.clone(),
                span: at.span,
            }),
            None => {
                let mut leaf = XElem::new(last.as_str());
                leaf.children.push(XNode::Text(value.clone(), leaf.span));
                at.children.push(XNode::Elem(leaf));
            }
        }
    }
    root
}

/// True if some `xml-extra` in `node` keeps an element called `name` (or, for `@name`,
/// an attribute).
fn kept(node: &Node, name: &str, inside_extra: bool) -> bool {
    let here = inside_extra
        && match name.strip_prefix('@') {
            Some(attr) => node.props.iter().any(|(k, _)| k == attr),
            None => {
                node.name == "element" && node.args.first().and_then(|a| a.as_str()) == Some(name)
            }
        };
    here || node.children.iter().any(|c| {
        kept(
            c,
            name,
            inside_extra || c.name == XML_EXTRA || c.name == "element",
        )
    })
}

/// True if `extra` (an `xml-extra` or `element` node) holds the element path `steps`.
fn kept_at(extra: &Node, steps: &[String]) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return true;
    };
    if let Some(attr) = first.strip_prefix('@') {
        return rest.is_empty() && extra.props.iter().any(|(k, _)| k == attr);
    }
    extra.children.iter().any(|c| {
        c.name == "element"
            && c.args.first().and_then(|a| a.as_str()) == Some(first.as_str())
            && kept_at(c, rest)
    })
}

/// Every attested path of the reference (`tests/fixtures/xml/attested-paths.txt`) is
/// either read into a section (`mapped`) or kept verbatim (`kept`), and comes back on
/// export either way; the snapshot is the list, for review when a mapping changes.
#[test]
fn every_attested_path_is_mapped_or_kept() {
    let cat = Catalogue::builtin();
    let list =
        std::fs::read_to_string(root().join("tests/fixtures/xml/attested-paths.txt")).unwrap();
    let paths: Vec<(Vec<String>, String)> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (path, value) = l.split_once(' ').unwrap_or((l, "1"));
            (
                path.split('/').map(str::to_owned).collect(),
                value.to_owned(),
            )
        })
        .collect();
    let doc = corpus_document(&paths);
    let bytes = writer::document(&doc, None);
    let before = parse("corpus.xml", &bytes);
    let mut dec = Decoder::default();
    dec.empty_sections_unset = true;
    let sections = decode_sections(&mut dec, &before.root, &cat);
    let mut report = String::new();
    for (steps, _) in &paths {
        let leaf = steps.last().unwrap();
        let section = sections.iter().find(|s| {
            cat.get(&s.name)
                .is_some_and(|c| c.xml.split('/').next() == steps.get(1).map(String::as_str))
        });
        // Kept if an xml-extra holds it: the section's own, or the appliance's (whole
        // top-level elements, and what a section's wrapper held beyond the section).
        let root_extra = sections.iter().filter(|s| s.name == XML_EXTRA);
        let is_kept = section.is_some_and(|s| kept(s, leaf, false))
            || root_extra.into_iter().any(|x| kept_at(x, &steps[1..]));
        let how = if is_kept { "kept" } else { "mapped" };
        report.push_str(&format!("{how:6} {}\n", steps.join("/")));
    }
    let mut again = XElem::new("config");
    encode_sections(&mut again, &sections, &cat);
    let after = parse("again.xml", &writer::document(&again, None));
    assert_eq!(missing_in_order(&before.root, &after.root), []);
    insta::assert_snapshot!(report);
}
