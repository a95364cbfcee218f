//! The KDL files an import writes, and what it tells the operator. Pure: the caller reads
//! the existing repo, checks that nothing would be overwritten, validates the result and
//! writes the files.
//!
//! Layout, as in `examples/americas`: `cluster.kdl`, `groups.kdl`, and one
//! `machines/NAME.kdl` per machine.

use kdl::{KdlDocument, KdlEntry, KdlNode};

use super::assign::{Assignment, Source};
use super::cluster::{Appliance, standalone_level};
use crate::config::{ModeDecl, Repo};
use crate::model::{Level, MAIN_GROUP, Node};
use crate::schema::{Catalogue, XML_EXTRA};

/// The files to write (paths relative to the repo) and the report.
#[derive(Debug, Clone)]
pub struct Planned {
    /// (relative path, KDL text) pairs.
    pub files: Vec<(String, String)>,
    /// What the import did, one `label: items` line each, for people.
    pub summary: Vec<(String, Vec<String>)>,
}

impl Planned {
    /// The summary as text, one line per non-empty entry.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        for (label, items) in &self.summary {
            if !items.is_empty() {
                out.push_str(&format!("  {label}: {}\n", items.join(", ")));
            }
        }
        out
    }
}

/// The path of a machine's file.
pub fn machine_path(name: &str) -> String {
    format!("machines/{name}.kdl")
}

/// One mode node as pretty KDL text, with `//` comment lines before it.
pub fn mode_text(
    kind: &str,
    name: &str,
    props: &[(&str, &str)],
    sections: &[&Node],
    comments: &[String],
) -> String {
    let mut node = KdlNode::new(kind);
    node.push(KdlEntry::new(name));
    for (k, v) in props {
        node.push(KdlEntry::new_prop(*k, *v));
    }
    if !sections.is_empty() {
        let doc = node.ensure_children();
        for s in sections {
            doc.nodes_mut().push(s.to_kdl());
        }
    }
    let mut doc = KdlDocument::new();
    doc.nodes_mut().push(node);
    doc.autoformat();
    let mut out = String::new();
    for c in comments {
        out.push_str(&format!("// {c}\n"));
    }
    out.push_str(&doc.to_string());
    out
}

/// The comment above an imported machine. The header comment's lines are data (`header`
/// entries of the machine's `xml-extra`), so that `export-xml` writes them back.
fn header_comments(app: &Appliance) -> Vec<String> {
    let mut out = vec![format!(
        "Imported from {} by `strata import-xml`.",
        std::path::Path::new(&app.file.name)
            .file_name()
            .map_or_else(
                || app.file.name.clone(),
                |f| f.to_string_lossy().into_owned()
            )
    )];
    if let Some((_, product)) = app.header.fields.iter().find(|(k, _)| k == "Product") {
        out.push(format!("Product: {product}"));
    }
    out
}

/// How much of the file sections read, and how much is kept verbatim.
fn coverage(app: &Appliance) -> Vec<String> {
    let ((top, top_kept), (values, kept)) = (app.top_level, app.values);
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    vec![format!(
        "{} of {} mapped to sections ({} kept verbatim); {} of {} read into fields ({} kept verbatim)",
        top - top_kept,
        plural(top, "top-level element", "top-level elements"),
        top_kept,
        values - kept.min(values),
        plural(values, "value", "values"),
        kept.min(values)
    )]
}

fn machine_props<'a>(
    group: Option<&'a str>,
    address: Option<&'a str>,
    serial: Option<&'a str>,
    appliance_version: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut props = Vec::new();
    if let Some(g) = group.filter(|g| *g != MAIN_GROUP) {
        props.push(("group", g));
    }
    if let Some(a) = address {
        props.push(("address", a));
    }
    if let Some(s) = serial {
        props.push(("serial", s));
    }
    if let Some(v) = appliance_version {
        props.push(("appliance-version", v));
    }
    props
}

/// `import-xml --new-cluster`: the appliance's settings seed a new repo, as AsyncOS's
/// "create cluster" does: clusterable sections at the cluster, machine-only ones (and what
/// the catalogue does not know) at the machine, which joins `Main_Group`.
pub fn new_cluster(
    app: &Appliance,
    catalogue: &Catalogue,
    cluster: &str,
    machine: &str,
    address: Option<&str>,
) -> Planned {
    let at = |level: Level| -> Vec<&Node> {
        app.sections
            .iter()
            .filter(|s| standalone_level(catalogue, &s.name) == level)
            .collect()
    };
    let (c, g, m) = (at(Level::Cluster), at(Level::Group), at(Level::Machine));
    let names = |v: &[&Node]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let comments = header_comments(app);
    let props = machine_props(None, address, app.header.serial.as_deref(), None);
    let files = vec![
        (
            "cluster.kdl".to_owned(),
            mode_text(
                "cluster",
                cluster,
                &[],
                &c,
                &[format!(
                    "Created from the standalone appliance {machine} by `strata import-xml --new-cluster`."
                )],
            ),
        ),
        (
            "groups.kdl".to_owned(),
            mode_text("group", MAIN_GROUP, &[], &g, &[]),
        ),
        (
            machine_path(machine),
            mode_text("machine", machine, &props, &m, &comments),
        ),
    ];
    let extra = extra_count(app);
    Planned {
        files,
        summary: vec![
            ("cluster level".into(), names(&c)),
            ("machine level".into(), names(&m)),
            ("coverage".into(), coverage(app)),
            ("kept verbatim in xml-extra".into(), extra),
        ],
    }
}

fn extra_count(app: &Appliance) -> Vec<String> {
    app.section(XML_EXTRA)
        .map(|x| {
            x.children
                .iter()
                .filter(|e| e.name == "element")
                .filter_map(|e| e.args.first().and_then(|a| a.as_str()))
                .map(|n| format!("<{n}>"))
                .collect()
        })
        .unwrap_or_default()
}

/// `import-xml --machine`: the appliance's settings become machine `machine`'s, in group
/// `group` of an existing repo. Machine-only sections are written; a clusterable section
/// is written as a machine override unless it equals what the machine would inherit
/// anyway; cluster-only sections cannot be set per machine, so the cluster's stay and the
/// summary says whether the appliance's differed.
pub fn into_machine(
    app: &Appliance,
    catalogue: &Catalogue,
    repo: &Repo,
    machine: &str,
    group: &str,
    address: Option<&str>,
) -> Planned {
    let group_decl = repo.group(group);
    let chain: Vec<&ModeDecl> = group_decl.into_iter().chain(repo.cluster()).collect();
    let mut written: Vec<&Node> = Vec::new();
    let (mut machine_only, mut overrides, mut same, mut kept) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for node in &app.sections {
        let name = node.name.as_str();
        let Some(schema) = catalogue.get(name) else {
            continue;
        };
        let inherited = chain.iter().find_map(|d| {
            d.section(name)
                .filter(|_| schema.allows(d.mode.level()))
                .map(|s| (d.mode.clone(), &s.node))
        });
        let (from, inherited_node) = match inherited {
            Some((mode, n)) => (mode.to_string(), n),
            None => ("factory default".to_owned(), &schema.default),
        };
        if !schema.allows(Level::Machine) {
            let how = if inherited_node == node {
                "same"
            } else {
                "differs"
            };
            kept.push(format!("{name} ({how})"));
        } else if schema.levels == [Level::Machine] || name == XML_EXTRA {
            machine_only.push(name.to_owned());
            written.push(node);
        } else if inherited_node == node {
            same.push(format!("{name} (from {from})"));
        } else {
            overrides.push(format!("{name} (was {from})"));
            written.push(node);
        }
    }
    let props = machine_props(Some(group), address, app.header.serial.as_deref(), None);
    let text = mode_text("machine", machine, &props, &written, &header_comments(app));
    Planned {
        files: vec![(machine_path(machine), text)],
        summary: vec![
            ("machine-only".into(), machine_only),
            ("now overrides the cluster".into(), overrides),
            ("same as inherited, not written".into(), same),
            ("cluster-only, the cluster's kept".into(), kept),
            ("coverage".into(), coverage(app)),
            ("kept verbatim in xml-extra".into(), extra_count(app)),
        ],
    }
}

fn sections(d: &ModeDecl) -> Vec<&Node> {
    d.sections.iter().map(|s| &s.node).collect()
}

/// A cluster-form file as a repo: `cluster.kdl`, `groups.kdl`, `machines/NAME.kdl`.
pub fn from_cluster(xml: &Repo, rename: Option<&str>) -> Planned {
    let name = rename.or(xml.cluster_name()).unwrap_or("cluster");
    let cluster = xml
        .cluster()
        .map(|c| mode_text("cluster", name, &[], &sections(c), &[]))
        .unwrap_or_else(|| mode_text("cluster", name, &[], &[], &[]));
    let groups: Vec<String> = xml
        .groups
        .iter()
        .map(|g| {
            mode_text(
                "group",
                g.mode.name().unwrap_or_default(),
                &[],
                &sections(g),
                &[],
            )
        })
        .collect();
    let mut files = vec![
        ("cluster.kdl".to_owned(), cluster),
        ("groups.kdl".to_owned(), groups.join("\n")),
    ];
    for m in &xml.machines {
        let n = m.mode.name().unwrap_or_default();
        let props = machine_props(
            m.group.as_ref().map(|g| g.value.as_str()),
            m.address.as_ref().map(|a| a.value.as_str()),
            m.serial.as_deref(),
            m.appliance_version.as_ref().map(|v| v.value.as_str()),
        );
        files.push((
            machine_path(n),
            mode_text("machine", n, &props, &sections(m), &[]),
        ));
    }
    Planned {
        summary: vec![
            (
                "groups".into(),
                xml.groups
                    .iter()
                    .filter_map(|g| g.mode.name().map(str::to_owned))
                    .collect(),
            ),
            (
                "machines".into(),
                xml.machines
                    .iter()
                    .filter_map(|m| m.mode.name().map(str::to_owned))
                    .collect(),
            ),
        ],
        files,
    }
}

/// A cluster-form file loaded onto other appliances (see [`super::assign`]): the file's
/// cluster and groups as they are, and one machine per assignment, in its group, with the
/// machine-level settings of the machine it copies or none. The file's machines are not
/// declared; neither their addresses nor serials nor appliance versions carry over (they
/// belong to the appliances the file was saved from). Checked with
/// [`super::assign::check`] first.
pub fn from_cluster_assigned(
    xml: &Repo,
    rename: Option<&str>,
    assignments: &[Assignment],
) -> Planned {
    let mut planned = from_cluster(xml, rename);
    planned
        .files
        .retain(|(path, _)| !path.starts_with("machines/"));
    let mut copied = Vec::new();
    let mut not_copied = Vec::new();
    let mut network = Vec::new();
    for a in assignments {
        let group = a.group(xml);
        let props = machine_props(Some(group), None, None, None);
        let sections = match &a.from {
            Source::Copy(from) => {
                let decl = xml.machine(from);
                let sections = decl.map(sections).unwrap_or_default();
                copied.push(format!("{} from {from}", a.machine));
                let own: Vec<&str> = sections
                    .iter()
                    .map(|n| n.name.as_str())
                    .filter(|n| NETWORK.contains(n))
                    .collect();
                if !own.is_empty() {
                    network.push(format!("{} ({})", a.machine, own.join(", ")));
                }
                sections
            }
            Source::DontCopy(_) => {
                not_copied.push(format!("{} (group {group})", a.machine));
                Vec::new()
            }
        };
        planned.files.push((
            machine_path(&a.machine),
            mode_text("machine", &a.machine, &props, &sections, &[]),
        ));
    }
    planned.summary.retain(|(label, _)| label != "machines");
    planned.summary.push((
        "machines".into(),
        assignments.iter().map(|a| a.machine.clone()).collect(),
    ));
    planned.summary.push(("copied".into(), copied));
    planned.summary.push(("not copied".into(), not_copied));
    planned
        .summary
        .push(("review the network settings of".into(), network));
    planned
}

/// The machine-level sections that carry an appliance's own network identity: copied to
/// another appliance, they need review before they are applied (the seed's last step).
const NETWORK: &[&str] = &[
    "interfaces",
    "hostname",
    "routes",
    "default-gateway",
    "ethernet",
];
