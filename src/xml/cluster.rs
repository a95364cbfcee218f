//! The two XML forms and their place in a repo.
//!
//! - The **appliance form** (AsyncOS `saveconfig`): `<config>` holding one machine's
//!   sections. As a repo it is a one-machine cluster, the way AsyncOS creates a cluster
//!   from a standalone appliance: sections the cluster level allows at the cluster,
//!   machine-only ones (and `xml-extra`) at the machine, in group `Main_Group`.
//! - The **cluster form** (Strata's own, written by `export-xml --cluster`):
//!
//!   ```xml
//!   <strata_cluster name="americas">
//!     <cluster sections="dns listeners …"> …section elements as under <config>… </cluster>
//!     <group name="Paris" sections="dns ldap-queries"> … </group>
//!     <machine name="lab1.example.com" group="Main_Group" address="10.1.0.1"
//!              serial="…" sections="hostname interfaces"> … </machine>
//!   </strata_cluster>
//!   ```
//!
//!   `sections=` lists the sections a mode defines, so a section defined empty is told
//!   apart from one not defined where sections share an element (`<ldap/>`). A section
//!   whose element has content is defined even if not listed.

use std::sync::Arc;

use miette::SourceSpan;

use super::codec::Decoder;
use super::header::Header;
use super::reader::{self, XElem};
use super::{Limits, decode_sections, unknown_warnings};
use crate::config::{Diagnostics, ModeDecl, Problem, Repo, SectionDecl, SourceFile, Spanned};
use crate::model::{Level, Mode, Node, Value};
use crate::schema::{Catalogue, XML_EXTRA};

/// The header line Strata writes into a machine export that has no appliance header of its
/// own; it is not read back as one.
pub const STRATA_LINE: &str = "Strata";

/// The root element of the cluster form.
pub const CLUSTER_ROOT: &str = "strata_cluster";

/// One appliance's configuration, read from the appliance form.
#[derive(Debug, Clone)]
pub struct Appliance {
    /// The file read.
    pub file: Arc<SourceFile>,
    /// Header metadata.
    pub header: Header,
    /// The sections found, in catalogue order (`xml-extra` last).
    pub sections: Vec<Node>,
    /// The `<config>` element's spans.
    pub span: SourceSpan,
    /// The root's name in the start tag.
    pub name_span: SourceSpan,
    /// The child elements of `<config>`, and how many of them no section maps (kept
    /// whole in the `xml-extra` section).
    pub top_level: (usize, usize),
    /// The values in the file (element texts and attributes), and how many of them are
    /// kept verbatim in some `xml-extra` rather than read into a section's fields.
    pub values: (usize, usize),
}

impl Appliance {
    /// The machine's own name: its `hostname` section, if any.
    pub fn hostname(&self) -> Option<&str> {
        self.section("hostname")?.args.first()?.as_str()
    }

    /// The section called `name`, if the file has it.
    pub fn section(&self, name: &str) -> Option<&Node> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// What an XML file holds.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// One appliance (`<config>`).
    Appliance(Appliance),
    /// A whole cluster (`<strata_cluster>`), as declarations pointing into the file.
    Cluster(Repo),
}

/// The level a section of a standalone appliance goes to when it becomes a cluster.
pub fn standalone_level(catalogue: &Catalogue, section: &str) -> Level {
    match catalogue.get(section) {
        _ if section == XML_EXTRA => Level::Machine,
        Some(s) if s.allows(Level::Cluster) => Level::Cluster,
        Some(s) if s.allows(Level::Machine) => Level::Machine,
        Some(_) => Level::Group,
        None => Level::Machine,
    }
}

/// Reads an XML file of either form. Problems (syntax, refused input, unknown elements as
/// warnings, malformed cluster form) go to `diags`; `None` when nothing usable was read.
pub fn load(
    file: &Arc<SourceFile>,
    catalogue: &Catalogue,
    diags: &mut Diagnostics,
) -> Option<Loaded> {
    let doc = match reader::parse(file, &Limits::default()) {
        Ok(doc) => doc,
        Err(p) => {
            diags.push(*p);
            return None;
        }
    };
    let mut dec = Decoder::default();
    let loaded = match doc.root.name.as_str() {
        "config" => {
            dec.empty_sections_unset = true;
            let mut sections = decode_sections(&mut dec, &doc.root, catalogue);
            header_entries(&doc.header, &doc.root, &mut sections);
            if !sections.iter().any(|s| s.name == "feature-keys")
                && let Some(mut keys) = doc.header.feature_keys()
            {
                keys.span = doc.root.name_span;
                keys.name_span = doc.root.name_span;
                let at = sections
                    .iter()
                    .position(|s| s.name == XML_EXTRA)
                    .unwrap_or(sections.len());
                sections.insert(at, keys);
            }
            let kept_top = sections
                .iter()
                .find(|s| s.name == XML_EXTRA)
                .map_or(0, |x| {
                    x.children.iter().filter(|c| c.name == "element").count()
                });
            let kept_values: usize = sections.iter().map(kept_value_count).sum();
            Some(Loaded::Appliance(Appliance {
                file: file.clone(),
                header: doc.header.clone(),
                top_level: (doc.root.elements().count(), kept_top),
                values: (value_count(&doc.root), kept_values),
                sections,
                span: doc.root.span,
                name_span: doc.root.name_span,
            }))
        }
        CLUSTER_ROOT => {
            cluster_form(file, &doc.root, &mut dec, catalogue, diags).map(Loaded::Cluster)
        }
        other => {
            diags.push(
                Problem::error("strata::xml::root", format!("the root element is <{other}>"))
                    .at(file, doc.root.name_span, "not <config> or <strata_cluster>")
                    .help("Strata reads AsyncOS configuration files (<config>) and its own cluster form (<strata_cluster>)"),
            );
            None
        }
    };
    unknown_warnings(&dec, file, diags);
    loaded
}

/// The header comment's lines (but the serial number, the features and the current
/// time, which have places of their own) as `header` entries of the `xml-extra` section,
/// so that an export writes them back.
fn header_entries(header: &Header, root: &XElem, sections: &mut Vec<Node>) {
    let fields: Vec<&(String, String)> = header
        .fields
        .iter()
        .filter(|(k, _)| k != STRATA_LINE)
        .collect();
    if fields.is_empty() {
        return;
    }
    let at = match sections.iter().position(|s| s.name == XML_EXTRA) {
        Some(i) => i,
        None => {
            let mut x = Node::new(XML_EXTRA);
            x.span = root.name_span;
            x.name_span = root.name_span;
            sections.push(x);
            sections.len() - 1
        }
    };
    let entries = fields.into_iter().map(|(k, v)| {
        let mut h = Node::new("header");
        h.span = root.name_span;
        h.name_span = root.name_span;
        h.args = vec![Value::String(k.clone()), Value::String(v.clone())];
        h
    });
    let x = &mut sections[at];
    let rest = std::mem::take(&mut x.children);
    x.children = entries.chain(rest).collect();
}

/// The values of an element tree: element texts (leaves, empty ones included) and
/// attributes.
fn value_count(e: &XElem) -> usize {
    let own = e.attrs.len() + usize::from(e.elements().next().is_none());
    own + e.elements().map(value_count).sum::<usize>()
}

/// The values kept verbatim in the `xml-extra` nodes within `node`.
fn kept_value_count(node: &Node) -> usize {
    fn extra(n: &Node) -> usize {
        let own = match n.name.as_str() {
            "element" => {
                n.props.len() + usize::from(!n.children.iter().any(|c| c.name == "element"))
            }
            _ => n.props.len(),
        };
        own + n
            .children
            .iter()
            .filter(|c| c.name == "element")
            .map(extra)
            .sum::<usize>()
    }
    if node.name == XML_EXTRA {
        return extra(node);
    }
    node.children.iter().map(kept_value_count).sum()
}

fn cluster_form(
    file: &Arc<SourceFile>,
    root: &XElem,
    dec: &mut Decoder,
    catalogue: &Catalogue,
    diags: &mut Diagnostics,
) -> Option<Repo> {
    let bad = |span: SourceSpan, message: String, help: &str| {
        Problem::error("strata::xml::cluster-form", message)
            .at(file, span, "here")
            .help(help.to_owned())
    };
    let Some(name) = root.attr("name") else {
        diags.push(bad(
            root.name_span,
            "<strata_cluster> has no name=".into(),
            "write <strata_cluster name=\"…\">",
        ));
        return None;
    };
    let mut repo = Repo {
        files: vec![file.clone()],
        ..Repo::default()
    };
    for e in root.elements() {
        let attr = |k: &str| {
            e.attr(k).map(|a| Spanned {
                value: a.value.clone(),
                span: a.span,
            })
        };
        if let Some(n) = attr("name").filter(|n| !crate::config::is_mode_name(&n.value)) {
            diags.push(
                Problem::error(
                    "strata::repo::bad-name",
                    format!("`{}` is not a valid {} name", n.value, e.name),
                )
                .at(file, n.span, "invalid name")
                .help("names use letters, digits, `_`, `-`, `.` and `:` (for IPv6 addresses)"),
            );
            continue;
        }
        let mode = match (e.name.as_str(), attr("name")) {
            ("cluster", _) => Mode::Cluster,
            // Names were checked above.
            ("group", Some(n)) => match crate::model::GroupName::new(n.value) {
                Ok(n) => Mode::Group(n),
                Err(_) => continue,
            },
            ("machine", Some(n)) => match crate::model::MachineName::new(n.value) {
                Ok(n) => Mode::Machine(n),
                Err(_) => continue,
            },
            ("group" | "machine", None) => {
                diags.push(bad(
                    e.name_span,
                    format!("<{}> has no name=", e.name),
                    "every group and machine is named",
                ));
                continue;
            }
            (other, _) => {
                diags.push(bad(
                    e.name_span,
                    format!("unexpected <{other}> in <strata_cluster>"),
                    "the cluster form holds <cluster>, <group name=…> and <machine name=…> elements",
                ));
                continue;
            }
        };
        for k in [
            "name",
            "group",
            "address",
            "serial",
            "appliance-version",
            "sections",
        ] {
            dec.claim_attr(e, k);
        }
        let listed: Vec<String> = e
            .attr("sections")
            .map(|a| a.value.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let found = decode_sections(dec, e, catalogue);
        let mut sections: Vec<Node> = Vec::new();
        for schema in catalogue.sections.values() {
            let node = found.iter().find(|n| n.name == schema.name);
            let is_listed = listed.contains(&schema.name);
            match node {
                Some(n) if is_listed || !n.is_empty() => sections.push(n.clone()),
                None if is_listed => {
                    let mut n = Node::new(schema.name.clone());
                    n.span = e.name_span;
                    n.name_span = e.name_span;
                    sections.push(n);
                }
                _ => {}
            }
        }
        for l in &listed {
            if catalogue.get(l).is_none() {
                diags.push(bad(
                    e.name_span,
                    format!("sections= names `{l}`, which is not in the catalogue"),
                    "list only catalogue sections",
                ));
            }
        }
        let name_span = e.attr("name").map_or(e.name_span, |a| a.span);
        let decl = ModeDecl {
            mode,
            file: file.clone(),
            span: e.span,
            name_span,
            group: attr("group"),
            address: attr("address"),
            serial: attr("serial").map(|s| s.value),
            appliance_version: attr("appliance-version"),
            was: None,
            sections: sections
                .into_iter()
                .map(|node| SectionDecl {
                    node,
                    file: file.clone(),
                })
                .collect(),
        };
        match &decl.mode {
            Mode::Cluster => repo.clusters.push((
                decl,
                Spanned {
                    value: name.value.clone(),
                    span: name.span,
                },
            )),
            Mode::Group(_) => repo.groups.push(decl),
            Mode::Machine(_) => repo.machines.push(decl),
        }
    }
    if repo.clusters.is_empty() {
        diags.push(bad(
            root.name_span,
            "<strata_cluster> has no <cluster> element".into(),
            "add <cluster> (it may be empty)",
        ));
    }
    Some(repo)
}

/// An appliance as a one-machine repo: cluster `cluster_name`, group `Main_Group`, machine
/// `machine` (sections split by [`standalone_level`]). Spans point into the XML file.
/// Refused when `machine` cannot name a machine.
pub fn standalone_repo(
    app: &Appliance,
    catalogue: &Catalogue,
    cluster_name: &str,
    machine: &str,
) -> Result<Repo, crate::model::NameError> {
    let machine = crate::model::MachineName::new(machine)?;
    let decl = |mode: Mode| ModeDecl {
        mode,
        file: app.file.clone(),
        span: app.span,
        name_span: app.name_span,
        group: None,
        address: None,
        serial: None,
        appliance_version: None,
        was: None,
        sections: Vec::new(),
    };
    let (mut c, mut g, mut m) = (
        decl(Mode::Cluster),
        decl(Mode::Group(crate::model::GroupName::main())),
        decl(Mode::Machine(machine)),
    );
    m.serial = app.header.serial.clone();
    for node in &app.sections {
        let s = SectionDecl {
            node: node.clone(),
            file: app.file.clone(),
        };
        match standalone_level(catalogue, &node.name) {
            Level::Cluster => c.sections.push(s),
            Level::Group => g.sections.push(s),
            Level::Machine => m.sections.push(s),
        }
    }
    Ok(Repo {
        unread: Vec::new(),
        files: vec![app.file.clone()],
        clusters: vec![(
            c,
            Spanned {
                value: cluster_name.into(),
                span: app.name_span,
            },
        )],
        groups: vec![g],
        machines: vec![m],
    })
}

/// Reads an XML file given to `validate` into `repo`: an appliance becomes a one-machine
/// cluster named after the file, a cluster form its declarations.
pub fn load_into(
    file: &Arc<SourceFile>,
    catalogue: &Catalogue,
    repo: &mut Repo,
    diags: &mut Diagnostics,
) {
    if !super::looks_like_xml(&file.text) {
        diags.push(
            Problem::error(
                "strata::validate::file-type",
                format!("{} is neither KDL nor XML", file.name),
            )
            .help("validate takes config repos, *.kdl files and AsyncOS configuration XML files"),
        );
        repo.unread.push(file.name.clone());
        return;
    }
    let loaded = match load(file, catalogue, diags) {
        Some(Loaded::Appliance(app)) => {
            let cluster = file_stem(&file.name);
            let machine = app.hostname().unwrap_or(&cluster).to_owned();
            match standalone_repo(&app, catalogue, &cluster, &machine) {
                Ok(r) => r,
                Err(e) => {
                    diags.push(
                        Problem::error(
                            "strata::repo::bad-name",
                            format!("the appliance's host name: {e}"),
                        )
                        .help("import it with `strata import-xml FILE --machine NAME`"),
                    );
                    repo.unread.push(file.name.clone());
                    return;
                }
            }
        }
        Some(Loaded::Cluster(r)) => r,
        None => {
            repo.unread.push(file.name.clone());
            return;
        }
    };
    repo.files.extend(loaded.files);
    repo.clusters.extend(loaded.clusters);
    repo.groups.extend(loaded.groups);
    repo.machines.extend(loaded.machines);
}

/// A file's name without directories and extension, made a valid mode name.
pub fn file_stem(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "appliance".into()
    } else {
        clean
    }
}
