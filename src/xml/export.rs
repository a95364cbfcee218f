//! Writing a repo as XML: one machine's flattened effective config in the appliance
//! form (what `saveconfig` writes, the seed's removemachine flatten), or every level in
//! the cluster form ([`super::cluster`] describes both).

use super::cluster::{CLUSTER_ROOT, STRATA_LINE};
use super::header::Header;
use super::reader::XElem;
use super::{encode_sections, writer};
use crate::config::{ModeDecl, Repo};
use crate::model::{Mode, Node};
use crate::resolve::effective;
use crate::schema::{Catalogue, XML_EXTRA};

/// A machine's flattened effective config as an AsyncOS `saveconfig` file (the seed's
/// removemachine flatten): every catalogue section, factory defaults included; feature keys
/// in the header (and as `<feature_keys>` too when they carry activation keys).
pub fn export_machine(repo: &Repo, catalogue: &Catalogue, machine: &ModeDecl) -> Vec<u8> {
    let eff = effective(repo, catalogue, machine);
    let mut header = Header::default();
    let name = machine.mode.name().unwrap_or_default();
    let extra = eff.sections.get(XML_EXTRA).map(|e| e.node);
    let lines: Vec<(String, String)> = extra
        .into_iter()
        .flat_map(|x| x.children.iter())
        .filter(|c| c.name == "header")
        .filter_map(|h| {
            Some((
                h.args.first()?.as_str()?.to_owned(),
                h.args.get(1)?.as_str()?.to_owned(),
            ))
        })
        .collect();
    if lines.is_empty() {
        header.fields.push((
            STRATA_LINE.into(),
            format!(
                "export of machine {name} (cluster {}) by strata {}",
                repo.cluster_name().unwrap_or("?"),
                env!("CARGO_PKG_VERSION")
            ),
        ));
    } else {
        header.fields = lines;
    }
    header.serial = machine.serial.clone();
    // Elements the appliance left empty: a section no mode defines stays so, rather than
    // taking its factory default.
    let empty: Vec<&str> = extra
        .into_iter()
        .flat_map(|x| x.children.iter())
        .filter(|c| super::extra::is_placeholder(c))
        .filter_map(|c| c.args.first()?.as_str())
        .collect();
    let mut nodes: Vec<&Node> = Vec::new();
    for (section, e) in &eff.sections {
        if *section == "feature-keys" {
            header.set_features(e.node);
            let keyed = e
                .node
                .children
                .iter()
                .any(|k| k.prop("activation-key").is_some());
            if !keyed {
                continue;
            }
        }
        let left_empty = catalogue
            .get(section)
            .is_some_and(|s| empty.contains(&s.xml.as_str()));
        if left_empty && matches!(e.origin, crate::resolve::Origin::Factory) {
            continue;
        }
        nodes.push(e.node);
    }
    let mut root = XElem::new("config");
    encode_sections(&mut root, nodes, catalogue);
    writer::document(&root, Some(&header.render()))
}

/// Every level of the repo in the cluster form (see the module docs).
pub fn export_cluster(repo: &Repo, catalogue: &Catalogue) -> Vec<u8> {
    let mut root = XElem::new(CLUSTER_ROOT);
    set(&mut root, "name", repo.cluster_name().unwrap_or_default());
    for decl in repo.modes() {
        let mut e = XElem::new(decl.mode.level().as_str());
        if let Some(n) = decl.mode.name() {
            set(&mut e, "name", n);
        }
        if let Mode::Machine(_) = decl.mode {
            set(&mut e, "group", decl.group_name());
            if let Some(a) = &decl.address {
                set(&mut e, "address", &a.value);
            }
            if let Some(s) = &decl.serial {
                set(&mut e, "serial", s);
            }
            if let Some(v) = &decl.appliance_version {
                set(&mut e, "appliance-version", &v.value);
            }
        }
        let mut sections: Vec<&Node> = decl.sections.iter().map(|s| &s.node).collect();
        sections.sort_by(|a, b| a.name.cmp(&b.name));
        if !sections.is_empty() {
            let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
            set(&mut e, "sections", &names.join(" "));
        }
        encode_sections(&mut e, sections, catalogue);
        root.children.push(super::XNode::Elem(e));
    }
    writer::document(&root, None)
}

fn set(e: &mut XElem, k: &str, v: &str) {
    e.attrs.push(super::reader::XAttr {
        name: k.into(),
        value: v.into(),
        span: e.span,
    });
}
