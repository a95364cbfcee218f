//! The section catalogue: what sections exist, at which levels, and what they may contain.
//!
//! Schemas are KDL files (`schemas/*.kdl` in the source tree, embedded in the binary, plus
//! a config repo's own `schemas/`). The format is described in `schemas/README.md`.

mod builtin;
mod conform;
mod parse;
pub mod secret_value;
mod value_type;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use miette::SourceSpan;

use crate::config::{Diagnostics, Problem, SourceFile};
use crate::model::{Level, Node, SectionName, Value};
pub use conform::{XML_EXTRA, XML_EXTRA_MAX_DEPTH, check_section, check_xml_extra};
pub use parse::is_xml_name;
pub use value_type::{ValueType, parse_netmask};

/// One section's schema.
#[derive(Debug, Clone)]
pub struct SectionSchema {
    /// The section name, as written in config files (`smtp-routes`).
    pub name: String,
    /// The AsyncOS command it mirrors (`smtproutes`).
    pub command: String,
    /// The element name in AsyncOS configuration XML; empty for Strata's own sections
    /// (`cluster-mesh`), which AsyncOS files neither hold nor get.
    pub xml: String,
    /// The levels at which the section may be defined.
    pub levels: Vec<Level>,
    /// One line saying what the section configures.
    pub summary: String,
    /// What the section node itself may hold.
    pub body: NodeSpec,
    /// The factory default: what a machine has when no mode defines the section.
    pub default: Node,
    /// The schema file it came from.
    pub file: Arc<SourceFile>,
    /// The `section` node as written (what the store keeps for a repo's own schemas).
    pub source: Node,
    /// True for the sections compiled into Strata (not from a repo's `schemas/`).
    pub builtin: bool,
}

impl SectionSchema {
    /// True if AsyncOS configuration XML holds the section (Strata's own sections
    /// have no element there).
    pub fn in_xml(&self) -> bool {
        !self.xml.is_empty()
    }

    /// True if the section may be defined at `level`.
    pub fn allows(&self, level: Level) -> bool {
        self.levels.contains(&level)
    }

    /// "cluster-only", "machine-only", "cluster or group", … for messages.
    pub fn levels_text(&self) -> String {
        let names: Vec<&str> = self.levels.iter().map(|l| l.as_str()).collect();
        match names.as_slice() {
            [one] => format!("{one}-only"),
            _ => names.join(", "),
        }
    }

    /// Every reference field in the schema, with the path of child names leading to it.
    pub fn references(&self) -> Vec<RefSite<'_>> {
        let mut out = Vec::new();
        collect_refs(&self.body, &mut Vec::new(), &mut out);
        out
    }
}

/// A field that refers to another section, and how to reach it from the section node.
#[derive(Debug, Clone)]
pub struct RefSite<'a> {
    /// Child names leading from the section node to the nodes holding the field.
    pub path: Vec<&'a str>,
    /// The field.
    pub field: &'a FieldSpec,
    /// For an argument, its position; `None` for a property.
    pub arg: Option<usize>,
}

impl RefSite<'_> {
    /// The field's value in `node` and where it is, if present.
    pub fn value_in<'n>(&self, node: &'n Node) -> Option<(&'n Value, miette::SourceSpan)> {
        match self.arg {
            Some(i) => node.args.get(i).map(|v| (v, node.arg_span(i))),
            None => node
                .prop(&self.field.name)
                .map(|v| (v, node.prop_span(&self.field.name))),
        }
    }
}

fn collect_refs<'a>(spec: &'a NodeSpec, path: &mut Vec<&'a str>, out: &mut Vec<RefSite<'a>>) {
    for (i, f) in spec.args.iter().enumerate() {
        if f.reference.is_some() {
            out.push(RefSite {
                path: path.clone(),
                field: f,
                arg: Some(i),
            });
        }
    }
    for f in spec.props.values() {
        if f.reference.is_some() {
            out.push(RefSite {
                path: path.clone(),
                field: f,
                arg: None,
            });
        }
    }
    for (name, child) in &spec.children {
        path.push(name);
        collect_refs(&child.spec, path, out);
        path.pop();
    }
}

/// What a node may hold: arguments, properties and children.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    /// Positional arguments, in order; the last may be variadic.
    pub args: Vec<FieldSpec>,
    /// Properties by name.
    pub props: BTreeMap<String, FieldSpec>,
    /// Child nodes by name.
    pub children: BTreeMap<String, ChildSpec>,
    /// True when anything goes below this node (opaque content kept as written).
    pub open: bool,
    /// The node's XML child element names in the order export writes them: the
    /// schema's `xml-order=` if it gives one, else the order the schema declares the
    /// fields and children in (a netmask element right after its address element).
    pub xml_order: Vec<String>,
}

/// A child node that a node may hold.
#[derive(Debug, Clone, Default)]
pub struct ChildSpec {
    /// What the child may hold.
    pub spec: NodeSpec,
    /// May appear more than once.
    pub multiple: bool,
    /// Must appear at least once.
    pub required: bool,
    /// The argument or property that identifies each of several such children; values
    /// must be unique among siblings, and references point at them.
    pub key: Option<String>,
    /// Where the child lives in AsyncOS XML, relative to its parent's element (`xml=`):
    /// `None` for an element named like the child (`-` → `_`), a slash path through
    /// wrapper elements (`local_dns/dns_ip`), or `.` for the parent's element itself.
    pub xml: Option<String>,
}

impl ChildSpec {
    /// The key value of a node of this kind, if it has one.
    pub fn key_of<'n>(&self, node: &'n Node) -> Option<&'n Value> {
        let key = self.key.as_deref()?;
        match self.spec.args.iter().position(|a| a.name == key) {
            Some(i) => node.args.get(i),
            None => node.prop(key),
        }
    }
}

/// An argument or property.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// Its name (for arguments, used in messages and as a key).
    pub name: String,
    /// Its type and constraints.
    pub ty: ValueType,
    /// Must be given.
    pub required: bool,
    /// Arguments only: takes every remaining argument.
    pub variadic: bool,
    /// The value assumed when absent.
    pub default: Option<Value>,
    /// The value must be the key of a node in another section of the same machine's
    /// effective config.
    pub reference: Option<Reference>,
    /// Where the value lives in AsyncOS XML, relative to the node's element (`xml=`):
    /// `None` for a child element named like the field (`-` → `_`), `.` for the element's
    /// own text, `@name` for an attribute, or a slash path to a descendant's text.
    pub xml: Option<String>,
    /// `cidr` fields only (`xml-netmask=`): the address goes where `xml` says and the
    /// prefix length, as a netmask, into this element (read dotted or hex, written hex).
    pub xml_netmask: Option<String>,
}

/// A reference target: the key of a `child` node in section `section`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The section referred to.
    pub section: String,
    /// The kind of child node inside it whose key is referred to.
    pub child: String,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.section, self.child)
    }
}

/// Every known section, by name: the built-in ones a repo uses, and its own.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// The sections, by name.
    pub sections: BTreeMap<String, SectionSchema>,
    /// The built-in sections the repo restricts itself to (`builtin-sections` in one of
    /// its schema files); `None`: all of them.
    pub builtin_only: Option<Vec<SectionName>>,
}

/// Every built-in section, parsed once.
fn builtin_sections() -> &'static BTreeMap<String, SectionSchema> {
    static SECTIONS: OnceLock<BTreeMap<String, SectionSchema>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let mut diags = Diagnostics::default();
        let mut out = BTreeMap::new();
        for file in builtin::files() {
            for mut schema in parse::parse_schema_file(file, &mut diags).sections {
                schema.builtin = true;
                out.insert(schema.name.clone(), schema);
            }
        }
        out
    })
}

impl Catalogue {
    /// The built-in catalogue (or the part `builtin-sections` selects) plus the schemas
    /// in `extra`, a repo's own files (which may replace built-in sections of the same
    /// name). Problems in schema files are reported, not fatal.
    pub fn load(extra: &[Arc<SourceFile>], diags: &mut Diagnostics) -> Catalogue {
        let mut own = Vec::new();
        // The first `builtin-sections` node: its names, its span and its file.
        type Selection<'f> = (Vec<(String, SourceSpan)>, SourceSpan, &'f Arc<SourceFile>);
        let mut selection: Option<Selection> = None;
        for file in extra {
            let parsed = parse::parse_schema_file(file, diags);
            own.extend(parsed.sections);
            if let Some((names, span)) = parsed.builtin {
                match &selection {
                    Some((_, _, first)) => diags.push(
                        Problem::error(
                            "strata::schema-file::invalid",
                            format!(
                                "`{}` is also given in {}",
                                parse::BUILTIN_SECTIONS,
                                first.name
                            ),
                        )
                        .at(file, span, "second selection")
                        .help("say once which built-in sections the repo uses"),
                    ),
                    None => selection = Some((names, span, file)),
                }
            }
        }
        let mut only = None;
        if let Some((names, _, file)) = selection {
            let mut chosen = Vec::new();
            for (name, span) in names {
                match SectionName::new(&name) {
                    Ok(n) if builtin_sections().contains_key(&name) => chosen.push(n),
                    _ => {
                        let help = match crate::config::diagnostics::did_you_mean(
                            &name,
                            builtin_sections().keys().map(String::as_str),
                        ) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "`strata show --sections` lists the built-in sections".into(),
                        };
                        diags.push(
                            Problem::error(
                                "strata::schema-file::unknown-builtin",
                                format!("`{name}` is not a built-in section"),
                            )
                            .at(file, span, "not built in")
                            .help(help),
                        );
                    }
                }
            }
            chosen.sort();
            chosen.dedup();
            only = Some(chosen);
        }
        let cat = Catalogue::assemble(only, own);
        parse::check_references(&cat, diags);
        cat
    }

    /// The catalogue a cluster's store describes: the built-in selection it recorded
    /// (`None`: all) and the schemas of its repo's own sections, as `section` nodes.
    /// The store only holds what `validate` accepted, so problems are not expected;
    /// any are reported.
    pub fn from_stored<'n>(
        builtin_only: Option<&[SectionName]>,
        schemas: impl IntoIterator<Item = &'n Node>,
        diags: &mut Diagnostics,
    ) -> Catalogue {
        let mut own = Vec::new();
        for node in schemas {
            let name = node
                .args
                .first()
                .and_then(Value::as_str)
                .unwrap_or("schema");
            let file = SourceFile::new(format!("<store>/schemas/{name}.kdl"), node.to_canonical());
            own.extend(parse::parse_schema_file(&file, diags).sections);
        }
        let cat = Catalogue::assemble(builtin_only.map(<[SectionName]>::to_vec), own);
        parse::check_references(&cat, diags);
        cat
    }

    fn assemble(builtin_only: Option<Vec<SectionName>>, own: Vec<SectionSchema>) -> Catalogue {
        let sections = builtin_sections()
            .iter()
            .filter(|(name, _)| {
                builtin_only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == name.as_str()))
            })
            .map(|(name, s)| (name.clone(), s.clone()))
            .chain(own.into_iter().map(|s| (s.name.clone(), s)))
            .collect();
        Catalogue {
            sections,
            builtin_only,
        }
    }

    /// The built-in catalogue alone.
    pub fn builtin() -> Catalogue {
        Catalogue::assemble(None, Vec::new())
    }

    /// The sections that come from the repo's own schema files, not from Strata.
    pub fn own(&self) -> impl Iterator<Item = &SectionSchema> {
        self.sections.values().filter(|s| !s.builtin)
    }

    /// The schema of section `name`.
    pub fn get(&self, name: &str) -> Option<&SectionSchema> {
        self.sections.get(name)
    }

    /// Section names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// The help line for a section name the catalogue does not know: a near miss, or
    /// where the catalogue is listed.
    pub fn unknown_section_help(&self, name: &str) -> String {
        match crate::config::diagnostics::did_you_mean(name, self.names()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "`strata show --sections` lists the catalogue".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_is_valid() {
        let mut diags = Diagnostics::default();
        let cat = Catalogue::load(&[], &mut diags);
        let rendered: Vec<String> = diags
            .problems()
            .iter()
            .map(|p| crate::config::diagnostics::render(p, 100, false))
            .collect();
        assert!(diags.problems().is_empty(), "{}", rendered.join("\n"));
        assert!(cat.get("dns").is_some());
    }

    fn file(name: &str, text: &str) -> Arc<SourceFile> {
        SourceFile::new(name, text)
    }

    #[test]
    fn a_repo_chooses_its_built_in_sections_and_adds_its_own() {
        let proxy = "section \"web-proxy\" {\n    prop \"interface\" type=\"string\" ref=\"interfaces/interface\"\n    default\n}\n";
        let mut diags = Diagnostics::default();
        let cat = Catalogue::load(
            &[
                file("schemas/web-proxy.kdl", proxy),
                file(
                    "schemas/builtin.kdl",
                    "builtin-sections \"interfaces\" \"dns\"",
                ),
            ],
            &mut diags,
        );
        assert!(diags.problems().is_empty(), "{:?}", diags.problems());
        assert_eq!(
            cat.names().collect::<Vec<_>>(),
            ["dns", "interfaces", "web-proxy"]
        );
        assert_eq!(
            cat.own().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["web-proxy"]
        );

        // The store's form of the same catalogue gives the same sections.
        let sources: Vec<&Node> = cat.own().map(|s| &s.source).collect();
        let stored = Catalogue::from_stored(cat.builtin_only.as_deref(), sources, &mut diags);
        assert!(diags.problems().is_empty(), "{:?}", diags.problems());
        assert_eq!(
            stored.names().collect::<Vec<_>>(),
            ["dns", "interfaces", "web-proxy"]
        );
        assert!(
            stored.get("web-proxy").unwrap().references()[0]
                .field
                .reference
                .is_some()
        );

        // No built-in sections at all: the reference to interfaces no longer resolves.
        let mut diags = Diagnostics::default();
        let none = Catalogue::load(
            &[
                file("schemas/web-proxy.kdl", proxy),
                file("schemas/b.kdl", "builtin-sections"),
            ],
            &mut diags,
        );
        assert_eq!(none.names().collect::<Vec<_>>(), ["web-proxy"]);
        assert_eq!(diags.problems().len(), 1, "{:?}", diags.problems());

        let mut diags = Diagnostics::default();
        Catalogue::load(
            &[file("schemas/b.kdl", "builtin-sections \"dnss\"")],
            &mut diags,
        );
        let p = &diags.problems()[0];
        assert_eq!(p.code, "strata::schema-file::unknown-builtin");
        assert_eq!(p.help.as_deref(), Some("did you mean `dns`?"));
    }

    #[test]
    fn factory_defaults_conform_to_their_schema() {
        let cat = Catalogue::builtin();
        for schema in cat.sections.values() {
            let mut diags = Diagnostics::default();
            check_section(schema, &schema.default, &schema.file, &mut diags);
            assert!(
                !diags.has_errors(),
                "default of {} does not conform: {:?}",
                schema.name,
                diags.problems()
            );
        }
    }
}
