//! Round trips through the library: a saved AsyncOS configuration → KDL repo → XML keeps
//! every element and value; a KDL repo → XML (per machine, and the cluster form) → back
//! gives the same effective configs and the same modes.

use std::sync::Arc;

use strata::config::{Diagnostics, SourceFile, parse_files};
use strata::model::Node;
use strata::resolve::effective;
use strata::schema::{Catalogue, parse_netmask};
use strata::validate::{check_paths, validate};
use strata::xml::cluster::{Loaded, load};
use strata::xml::export::{export_cluster, export_machine};
use strata::xml::import::new_cluster;
use strata::xml::{Limits, XElem, XNode, decode_bytes, reader};

use crate::support::{example, root};

/// An element reduced to what the round trip must keep: name, attributes (sorted), text
/// (trimmed; netmasks in one spelling) and children, siblings sorted by name with the
/// order of same-named ones kept. Comments, layout whitespace and the header are gone.
#[derive(Debug, PartialEq)]
struct Canon(String, Vec<(String, String)>, String, Vec<Canon>);

fn canon(e: &XElem) -> Canon {
    let mut attrs: Vec<(String, String)> = e
        .attrs
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    attrs.sort();
    let mut text = e.text().0.trim().to_owned();
    if e.name == "netmask"
        && let Some(len) = parse_netmask(&text)
    {
        text = len.to_string();
    }
    let mut children: Vec<Canon> = e
        .children
        .iter()
        .filter_map(|c| match c {
            XNode::Elem(c) => Some(canon(c)),
            XNode::Text(..) => None,
        })
        .collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Canon(e.name.clone(), attrs, text, children)
}

fn read_xml(name: &str, bytes: &[u8]) -> reader::XDocument {
    let text = decode_bytes(bytes).unwrap();
    reader::parse(&SourceFile::new(name, text), &Limits::default()).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/xml").join(name)).unwrap()
}

fn appliance(name: &str, bytes: &[u8], cat: &Catalogue) -> strata::xml::cluster::Appliance {
    let file = SourceFile::new(name, decode_bytes(bytes).unwrap());
    let mut diags = Diagnostics::default();
    match load(&file, cat, &mut diags) {
        Some(Loaded::Appliance(a)) => a,
        other => panic!("not an appliance: {other:?} {:?}", diags.problems()),
    }
}

#[test]
fn a_saved_configuration_survives_xml_kdl_xml() {
    let cat = Catalogue::builtin();
    let original = fixture("appliance.xml");
    let app = appliance("appliance.xml", &original, &cat);
    let machine = app.hostname().unwrap().to_owned();
    let plan = new_cluster(&app, &cat, "emea", &machine, None);
    let files: Vec<Arc<SourceFile>> = plan
        .files
        .iter()
        .map(|(p, t)| SourceFile::new(p.clone(), t.clone()))
        .collect();
    let mut diags = Diagnostics::default();
    let repo = parse_files(files, &mut diags);
    validate(&repo, &cat, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.problems());
    let exported = export_machine(&repo, &cat, repo.machine(&machine).unwrap());
    let before = read_xml("appliance.xml", &original);
    let mut after = read_xml("exported.xml", &exported);
    // Sections the file does not have come back as their factory defaults, here empty.
    let names: Vec<String> = before.root.elements().map(|e| e.name.clone()).collect();
    after.root.children.retain(|c| match c {
        XNode::Elem(e) => names.contains(&e.name) || !e.children.is_empty(),
        XNode::Text(..) => true,
    });
    assert_eq!(canon(&after.root), canon(&before.root));
    assert_eq!(after.header.serial, before.header.serial);
    assert_eq!(after.header.features, before.header.features);
    // The Latin-1 characters came through, and the output is Latin-1 again.
    assert!(exported.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
    assert!(decode_bytes(&exported).unwrap().contains("René Lefèvre"));
}

/// The effective config of every machine equals what its exported XML reads back as.
#[test]
fn every_americas_machine_survives_kdl_xml_kdl() {
    let checked = check_paths(&[example("americas")]).unwrap();
    let (repo, cat) = (&checked.repo, &checked.catalogue);
    for machine in &repo.machines {
        let name = machine.mode.name().unwrap();
        let bytes = export_machine(repo, cat, machine);
        assert_eq!(
            bytes,
            export_machine(repo, cat, machine),
            "not deterministic"
        );
        let app = appliance(name, &bytes, cat);
        let eff = effective(repo, cat, machine);
        for (section, e) in &eff.sections {
            if cat.get(section).is_some_and(|s| !s.in_xml()) {
                continue; // Strata's own (cluster-mesh): not in appliance files
            }
            match app.section(section) {
                Some(back) => assert_eq!(back, e.node, "{name}: {section}"),
                None => assert!(e.node.is_empty(), "{name}: {section} was lost"),
            }
        }
        for s in &app.sections {
            assert!(
                eff.sections.contains_key(s.name.as_str()),
                "{name}: extra {}",
                s.name
            );
        }
    }
}

/// The cluster form keeps every mode and the sections each defines, empty ones included.
#[test]
fn the_cluster_form_reads_back_as_the_same_repo() {
    let checked = check_paths(&[example("americas")]).unwrap();
    let (repo, cat) = (&checked.repo, &checked.catalogue);
    let bytes = export_cluster(repo, cat);
    assert_eq!(bytes, export_cluster(repo, cat), "not deterministic");
    let file = SourceFile::new("cluster.xml", decode_bytes(&bytes).unwrap());
    let mut diags = Diagnostics::default();
    let Some(Loaded::Cluster(back)) = load(&file, cat, &mut diags) else {
        panic!("not the cluster form: {:?}", diags.problems());
    };
    validate(&back, cat, &mut diags);
    assert!(diags.problems().is_empty(), "{:?}", diags.problems());
    assert_eq!(back.cluster_name(), repo.cluster_name());
    let sorted = |d: &strata::config::ModeDecl| {
        let mut v: Vec<Node> = d.sections.iter().map(|s| s.node.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    let modes: Vec<_> = repo.modes().collect();
    let back_modes: Vec<_> = back.modes().collect();
    assert_eq!(modes.len(), back_modes.len());
    for (a, b) in modes.iter().zip(&back_modes) {
        assert_eq!(a.mode, b.mode);
        assert_eq!(a.group_name(), b.group_name());
        assert_eq!(a.address(), b.address());
        assert_eq!(sorted(a), sorted(b), "{}", a.mode);
    }
    // Paris defines ldap-queries empty; it must stay defined (and empty).
    let paris = back.group("Paris").unwrap();
    assert!(paris.section("ldap-queries").unwrap().node.is_empty());
    assert!(paris.section("ldap-servers").is_none());
}

#[test]
fn unknown_elements_are_kept_and_warned_about() {
    let cat = Catalogue::builtin();
    let file = SourceFile::new(
        "appliance.xml",
        decode_bytes(&fixture("appliance.xml")).unwrap(),
    );
    let mut diags = Diagnostics::default();
    let Some(Loaded::Appliance(app)) = load(&file, &cat, &mut diags) else {
        panic!()
    };
    let warned: Vec<&str> = diags
        .problems()
        .iter()
        .filter(|p| p.code == "strata::xml::unknown-element")
        .map(|p| p.message.as_str())
        .collect();
    assert!(warned.iter().any(|m| m.contains("<euq>")), "{warned:?}");
    assert!(
        warned.iter().any(|m| m.contains("<dns_cache_ttl_min>")),
        "{warned:?}"
    );
    assert!(warned.iter().any(|m| m.contains("name_hint")), "{warned:?}");
    assert!(!diags.has_errors());
    let extra = app.section("xml-extra").unwrap();
    insta::assert_snapshot!(extra.to_canonical(), @r#"
    xml-extra {
        header Product "Cisco C100V Email Security Virtual Appliance"
        header "Model Number" C100V
        header Version "15.0.1-416"
        header "Number of CPUs" "2"
        header "Memory (MB)" "6144"
        element reporting {
            element reporting_enabled "1"
        }
        element base_url "https://mail1.example.com/"
        element euq {
            element euq_db {
                element euq_db_port "5432"
                element euq_db_host localhost
            }
        }
        element log_subscriptions enabled=yes {
            element log_cli cli_logs
        }
        order hostname interfaces ethernet_settings dns routes default_gateway ntp timezone users sshd listeners ldap bounce_profiles smtp_routes smtpauth_profiles destination_controls text_resources dictionaries global_unsubscribe alert_email_config reporting base_url euq log_subscriptions
    }
    "#);
}

/// An `xml-extra` nested deeper than the XML reader accepts is refused by validation, and
/// the deepest one that validates exports XML that reads back.
#[test]
fn xml_extra_nesting_is_capped_so_that_exports_read_back() {
    use strata::schema::XML_EXTRA_MAX_DEPTH;
    let repo_with = |depth: usize| {
        let text = format!(
            "cluster \"c\"\ngroup \"Main_Group\"\nmachine \"m1\" {{\n    xml-extra {{\n{}{}    }}\n}}\n",
            "element \"a\" {\n".repeat(depth),
            "}\n".repeat(depth)
        );
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("c.kdl", text)], &mut diags);
        let cat = Catalogue::builtin();
        validate(&repo, &cat, &mut diags);
        (repo, cat, diags)
    };
    let (_, _, diags) = repo_with(XML_EXTRA_MAX_DEPTH + 1);
    assert!(
        diags
            .problems()
            .iter()
            .any(|p| p.code == "strata::xml::extra-shape"),
        "{:?}",
        diags.problems()
    );
    let (repo, cat, diags) = repo_with(XML_EXTRA_MAX_DEPTH);
    assert!(!diags.has_errors(), "{:?}", diags.problems());
    for bytes in [
        export_machine(&repo, &cat, repo.machine("m1").unwrap()),
        export_cluster(&repo, &cat),
    ] {
        let text = decode_bytes(&bytes).unwrap();
        reader::parse(&SourceFile::new("x.xml", text), &Limits::default()).unwrap();
    }
}

/// XML → the KDL files an import writes → XML, for a small appliance.
fn through_kdl(xml: &str, cat: &Catalogue) -> reader::XDocument {
    let app = appliance("t.xml", xml.as_bytes(), cat);
    let plan = new_cluster(&app, cat, "emea", "m1.example.com", None);
    let files: Vec<Arc<SourceFile>> = plan
        .files
        .iter()
        .map(|(p, t)| SourceFile::new(p.clone(), t.clone()))
        .collect();
    let mut diags = Diagnostics::default();
    let repo = parse_files(files, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.problems());
    let exported = export_machine(&repo, cat, repo.machine("m1.example.com").unwrap());
    read_xml("exported.xml", &exported)
}

/// A listener's HAT is a text field: kept verbatim, even on one line with outer blanks.
#[test]
fn text_fields_keep_their_outer_blanks() {
    let cat = Catalogue::builtin();
    for hat in ["  one line  ", "\n  two\n  lines  \n", " "] {
        let xml = format!(
            "<config><listeners><listener><name>L</name><interface>D</interface><hat>{hat}</hat></listener></listeners></config>"
        );
        let back = through_kdl(&xml, &cat);
        let listeners = back
            .root
            .elements()
            .find(|e| e.name == "listeners")
            .unwrap();
        let listener = listeners.elements().next().unwrap();
        let text = listener
            .elements()
            .find(|e| e.name == "hat")
            .unwrap()
            .text()
            .0;
        assert_eq!(text, hat);
    }
}

/// Mode names in the cluster form follow the KDL rule (they become file names).
#[test]
fn the_cluster_form_refuses_names_the_kdl_form_refuses() {
    let cat = Catalogue::builtin();
    let text = "<strata_cluster name=\"c\"><cluster/><group name=\"Main_Group\"/>\
                <machine name=\"../../evil\" group=\"Main_Group\"/></strata_cluster>";
    let file = SourceFile::new("c.xml", text.to_owned());
    let mut diags = Diagnostics::default();
    let _ = load(&file, &cat, &mut diags);
    let bad: Vec<_> = diags
        .problems()
        .iter()
        .filter(|p| p.code == "strata::repo::bad-name")
        .collect();
    assert_eq!(bad.len(), 1, "{:?}", diags.problems());
    assert_eq!(bad[0].line_col(), Some((1, 71)));
}

/// The element called `name` under `e`, reduced for comparison.
fn canon_of(e: &XElem, name: &str) -> Vec<Canon> {
    e.elements().filter(|c| c.name == name).map(canon).collect()
}

/// Repeated wrapper elements stay repeated, each with its own content and attributes, and
/// an unknown element named like a wrapper is not merged into the real one.
#[test]
fn repeated_and_wrapper_named_elements_keep_their_instances() {
    let cat = Catalogue::builtin();
    for dns in [
        // Two <local_dns>, each holding servers.
        "<dns><local_dns><dns_ip priority=\"1\">10.0.0.1</dns_ip></local_dns>\
         <local_dns a=\"2\"><dns_ip>10.0.0.2</dns_ip><dns_ip>10.0.0.3</dns_ip></local_dns>\
         <dns_ptr_timeout>20</dns_ptr_timeout></dns>",
        // An unknown element named like the wrapper, after the real one.
        "<dns><local_dns><dns_ip>10.0.0.1</dns_ip></local_dns><local_dns foo=\"1\"/></dns>",
        // … and before it, with content of its own.
        "<dns><local_dns foo=\"1\"><x>y</x></local_dns><local_dns><dns_ip>10.0.0.1</dns_ip></local_dns>\
         <alt_dns><alt_dns_domain server=\"10.0.0.9\">example.com</alt_dns_domain></alt_dns></dns>",
    ] {
        let xml = format!("<config>{dns}</config>");
        let before = read_xml("t.xml", xml.as_bytes());
        let back = through_kdl(&xml, &cat);
        assert_eq!(
            canon_of(&back.root, "dns"),
            canon_of(&before.root, "dns"),
            "{dns}"
        );
    }
    // The same for a section's own wrapper (<reporting> around <periodic_reports>).
    let xml = "<config><reporting><periodic_reports><periodic_report><title>T</title>\
               <type>executive-summary</type><schedule>daily</schedule></periodic_report>\
               </periodic_reports></reporting><reporting><reporting_enabled>1</reporting_enabled>\
               </reporting><reporting b=\"1\"/></config>";
    let before = read_xml("t.xml", xml.as_bytes());
    let back = through_kdl(xml, &cat);
    assert_eq!(
        canon_of(&back.root, "reporting"),
        canon_of(&before.root, "reporting")
    );
}

/// One wrapper, as AsyncOS writes, still decodes into the schema's children; what else
/// it holds goes back into it.
#[test]
fn a_single_wrapper_decodes_into_children() {
    let cat = Catalogue::builtin();
    let xml = "<config><dns><local_dns foo=\"1\"><dns_ip>10.0.0.1</dns_ip><x/>\
               <dns_ip>10.0.0.2</dns_ip></local_dns></dns></config>";
    let app = appliance("t.xml", xml.as_bytes(), &cat);
    let dns = app.section("dns").unwrap();
    let servers = dns.children.iter().filter(|c| c.name == "server").count();
    assert_eq!(servers, 2, "{}", dns.to_canonical());
    let before = read_xml("t.xml", xml.as_bytes());
    let back = through_kdl(xml, &cat);
    assert_eq!(canon_of(&back.root, "dns"), canon_of(&before.root, "dns"));
}

/// Of several same-named wrappers the first decodes as usual; the others are kept
/// verbatim after an entry for the first, and the warning says why.
#[test]
fn repeated_wrappers_are_warned_about() {
    let cat = Catalogue::builtin();
    let xml = "<config><dns><local_dns><dns_ip>10.0.0.1</dns_ip></local_dns>\
               <local_dns a=\"1\"><dns_ip>10.0.0.2</dns_ip></local_dns></dns></config>";
    let file = SourceFile::new("t.xml", xml.to_owned());
    let mut diags = Diagnostics::default();
    let Some(Loaded::Appliance(app)) = load(&file, &cat, &mut diags) else {
        panic!()
    };
    insta::assert_snapshot!(app.section("dns").unwrap().to_canonical(), @r#"
    dns {
        server "10.0.0.1"
        xml-extra {
            element local_dns
            element local_dns a="1" {
                element dns_ip "10.0.0.2"
            }
        }
    }
    "#);
    let warned: Vec<&str> = diags
        .problems()
        .iter()
        .filter(|p| p.code == "strata::xml::unknown-element")
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("<local_dns>") && warned[0].contains("more than once"),
        "{warned:?}"
    );
}
