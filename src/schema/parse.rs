//! Schema files (KDL) → [`SectionSchema`]s. The format is documented in `schemas/README.md`.

use std::sync::Arc;

use kdl::{KdlDocument, KdlNode, KdlValue};

use super::{Catalogue, ChildSpec, FieldSpec, NodeSpec, Reference, SectionSchema, ValueType};
use crate::config::diagnostics::did_you_mean;
use crate::config::{Diagnostics, Problem, SourceFile};
use crate::model::{Level, Node, Value};

const SECTION_KEYS: [&str; 10] = [
    "command",
    "xml",
    "xml-order",
    "levels",
    "summary",
    "arg",
    "prop",
    "child",
    "default",
    "open",
];
const SPEC_KEYS: [&str; 4] = ["arg", "prop", "child", "open"];
const FIELD_PROPS: [&str; 10] = [
    "type",
    "required",
    "variadic",
    "default",
    "min",
    "max",
    "values",
    "ref",
    "xml",
    "xml-netmask",
];

struct Ctx<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    fn error(&mut self, node_span: miette::SourceSpan, message: String, help: &str) {
        let p = Problem::error("strata::schema-file::invalid", message)
            .at(self.file, node_span, "here")
            .help(help.to_owned());
        self.diags.push(p);
    }
}

/// What one schema file declares.
#[derive(Debug, Default)]
pub struct SchemaFile {
    /// Its `section` nodes.
    pub sections: Vec<SectionSchema>,
    /// Its `builtin-sections` node, if any: the names, each with its span, and the
    /// node's span.
    pub builtin: Option<(Vec<(String, miette::SourceSpan)>, miette::SourceSpan)>,
}

/// Parses every `section` node of one schema file, and its `builtin-sections` node.
pub fn parse_schema_file(file: &Arc<SourceFile>, diags: &mut Diagnostics) -> SchemaFile {
    let mut out = SchemaFile::default();
    let doc: KdlDocument = match crate::config::parse_kdl(&file.text) {
        Ok(doc) => doc,
        Err(err) => {
            crate::config::kdl_text::report(file, &err, diags);
            return out;
        }
    };
    let mut ctx = Ctx { file, diags };
    for node in doc.nodes() {
        match node.name().value() {
            "section" => out.sections.extend(section(&mut ctx, node)),
            BUILTIN_SECTIONS => {
                if out.builtin.is_some() {
                    ctx.error(
                        node.span(),
                        format!("`{BUILTIN_SECTIONS}` twice in one file"),
                        "list every built-in section the repo uses in one node",
                    );
                    continue;
                }
                let mut names = Vec::new();
                for e in node.entries() {
                    match (e.name(), e.value().as_string()) {
                        (None, Some(n)) => names.push((n.to_owned(), e.span())),
                        _ => ctx.error(
                            e.span(),
                            format!("`{BUILTIN_SECTIONS}` takes section names only"),
                            "write builtin-sections \"dns\" \"interfaces\" (or nothing, for none)",
                        ),
                    }
                }
                out.builtin = Some((names, node.span()));
            }
            other => ctx.error(
                node.span(),
                format!("unexpected `{other}` in a schema file"),
                "a schema file holds `section \"name\" { … }` nodes and at most one `builtin-sections` node",
            ),
        }
    }
    out
}

/// The schema-file node that says which built-in sections a repo uses.
pub const BUILTIN_SECTIONS: &str = "builtin-sections";

fn first_string(node: &KdlNode) -> Option<String> {
    node.entries()
        .iter()
        .find(|e| e.name().is_none())
        .and_then(|e| e.value().as_string())
        .map(str::to_owned)
}

fn section(ctx: &mut Ctx, node: &KdlNode) -> Option<SectionSchema> {
    let Some(name) = first_string(node) else {
        ctx.error(
            node.span(),
            "a section needs a name".into(),
            "write section \"name\" { … }",
        );
        return None;
    };
    if !crate::model::is_section_name(&name) {
        ctx.error(
            node.span(),
            format!("`{name}` is not a valid section name"),
            &format!("section names are {}", crate::model::SECTION_NAME_RULE),
        );
        return None;
    }
    let mut schema = SectionSchema {
        name: name.clone(),
        command: String::new(),
        xml: name.replace('-', "_"),
        levels: Level::ALL.to_vec(),
        summary: String::new(),
        body: NodeSpec::default(),
        default: Node::new(name.clone()),
        file: ctx.file.clone(),
        source: Node::from_kdl(node),
        builtin: false,
    };
    let Some(children) = node.children() else {
        return Some(schema);
    };
    let mut explicit_order = None;
    for child in children.nodes() {
        match child.name().value() {
            "command" => schema.command = first_string(child).unwrap_or_default(),
            "xml" => schema.xml = first_string(child).unwrap_or_default(),
            "xml-order" => {
                explicit_order = first_string(child).and_then(|o| xml_order(ctx, child.span(), &o))
            }
            "summary" => schema.summary = first_string(child).unwrap_or_default(),
            "levels" => {
                let mut levels = Vec::new();
                for e in child.entries() {
                    match e.value().as_string().and_then(Level::parse) {
                        Some(l) => levels.push(l),
                        None => ctx.error(
                            e.span(),
                            format!("`{}` is not a level", e.value()),
                            "levels are \"cluster\", \"group\" and \"machine\"",
                        ),
                    }
                }
                levels.sort();
                schema.levels = levels;
            }
            "default" => {
                let mut default = Node::from_kdl(child);
                default.name = name.clone();
                schema.default = default;
            }
            other if SPEC_KEYS.contains(&other) => spec_item(ctx, &mut schema.body, child),
            other => unknown_key(ctx, child, other, &SECTION_KEYS),
        }
    }
    if let Some(order) = explicit_order {
        schema.body.xml_order = order;
    }
    Some(schema)
}

/// An `xml-order` list: element names separated by blanks.
fn xml_order(ctx: &mut Ctx, span: miette::SourceSpan, list: &str) -> Option<Vec<String>> {
    let names: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
    match names.iter().find(|n| !is_xml_name(n)) {
        Some(bad) => {
            ctx.error(
                span,
                format!("`{bad}` in xml-order is not an XML element name"),
                "xml-order lists the element names of a node in the order appliances write them",
            );
            None
        }
        None => Some(names),
    }
}

/// Notes the elements a field or child lives in (each step of its path) in the node's
/// derived export order.
fn note_order(spec: &mut NodeSpec, xml: Option<&str>, name: &str) {
    let path = match xml {
        None => name.replace('-', "_"),
        Some(x) if x == "." || x.starts_with('@') || x.starts_with("..") => return,
        Some(x) => x.to_owned(),
    };
    // Each step: `direct`, then `direct/jack` (the order inside a wrapper).
    let steps: Vec<&str> = path.split('/').collect();
    for i in 1..=steps.len() {
        let prefix = steps[..i].join("/");
        if !spec.xml_order.contains(&prefix) {
            spec.xml_order.push(prefix);
        }
    }
}

fn unknown_key(ctx: &mut Ctx, node: &KdlNode, name: &str, known: &[&str]) {
    let help = match did_you_mean(name, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of {}", known.join(", ")),
    };
    ctx.error(node.span(), format!("unknown schema node `{name}`"), &help);
}

fn spec(ctx: &mut Ctx, node: &KdlNode) -> NodeSpec {
    let mut spec = NodeSpec::default();
    if let Some(children) = node.children() {
        for child in children.nodes() {
            let name = child.name().value();
            if SPEC_KEYS.contains(&name) {
                spec_item(ctx, &mut spec, child);
            } else {
                unknown_key(ctx, child, name, &SPEC_KEYS);
            }
        }
    }
    spec
}

fn spec_item(ctx: &mut Ctx, spec: &mut NodeSpec, node: &KdlNode) {
    let kind = node.name().value();
    if kind == "open" {
        spec.open = true;
        return;
    }
    let Some(name) = first_string(node) else {
        ctx.error(
            node.span(),
            format!("`{kind}` needs a name"),
            "write it as the first argument",
        );
        return;
    };
    match kind {
        "arg" | "prop" => {
            let Some(f) = field(ctx, node, name.clone(), kind == "arg") else {
                return;
            };
            note_order(spec, f.xml.as_deref(), &f.name);
            if let Some(mask) = &f.xml_netmask {
                note_order(spec, Some(mask), mask);
            }
            if kind == "arg" {
                spec.args.push(f);
            } else {
                spec.props.insert(name, f);
            }
        }
        _ => {
            let mut child = ChildSpec {
                spec: self::spec(ctx, node),
                ..ChildSpec::default()
            };
            let mut explicit_order = None;
            for e in node.entries().iter().filter(|e| e.name().is_some()) {
                match (e.name().map(|n| n.value()), e.value()) {
                    (Some("multiple"), KdlValue::Bool(b)) => child.multiple = *b,
                    (Some("required"), KdlValue::Bool(b)) => child.required = *b,
                    (Some("key"), KdlValue::String(k)) => child.key = Some(k.clone()),
                    (Some("xml"), KdlValue::String(x)) => match xml_path_problem(x, true) {
                        None => child.xml = Some(x.clone()),
                        Some(why) => ctx.error(e.span(), why, XML_HELP),
                    },
                    (Some("xml-order"), KdlValue::String(o)) => {
                        explicit_order = xml_order(ctx, e.span(), o);
                    }
                    (Some(other), _) => ctx.error(
                        e.span(),
                        format!("unknown or mistyped child option `{other}`"),
                        "a child takes multiple=#bool, required=#bool, key=\"field\", xml=\"path\" and xml-order=\"names\"",
                    ),
                    (None, _) => {}
                }
            }
            if let Some(key) = &child.key {
                let known = child.spec.args.iter().any(|a| &a.name == key)
                    || child.spec.props.contains_key(key);
                if !known {
                    ctx.error(
                        node.span(),
                        format!("key `{key}` of `{name}` is neither an arg nor a prop"),
                        "name one of the child's args or props",
                    );
                }
            }
            if let Some(order) = explicit_order {
                child.spec.xml_order = order;
            }
            if child.xml.as_deref() == Some(".") {
                // A child that lives in its parent's element: its elements are the parent's.
                for n in &child.spec.xml_order {
                    if !spec.xml_order.contains(n) {
                        spec.xml_order.push(n.clone());
                    }
                }
            }
            note_order(spec, child.xml.as_deref(), &name);
            spec.children.insert(name, child);
        }
    }
}

fn field(ctx: &mut Ctx, node: &KdlNode, name: String, is_arg: bool) -> Option<FieldSpec> {
    let mut f = FieldSpec {
        name,
        ty: ValueType::String,
        required: is_arg,
        variadic: false,
        default: None,
        reference: None,
        xml: None,
        xml_netmask: None,
    };
    let (mut min, mut max, mut values) = (None, None, None);
    let mut required_given = false;
    for e in node.entries().iter() {
        let Some(key) = e.name().map(|n| n.value()) else {
            continue;
        };
        match (key, e.value()) {
            ("type", KdlValue::String(t)) => match ValueType::parse(t) {
                Some(ty) => f.ty = ty,
                None => {
                    let help = match did_you_mean(t, ValueType::NAMES) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("types are {}", ValueType::NAMES.join(", ")),
                    };
                    ctx.error(e.span(), format!("unknown type `{t}`"), &help);
                    // Keep the field, unchecked, so configs using it are not reported too.
                    f.ty = ValueType::Any;
                }
            },
            ("required", KdlValue::Bool(b)) => {
                f.required = *b;
                required_given = true;
            }
            ("variadic", KdlValue::Bool(b)) => f.variadic = *b,
            ("default", v) => f.default = Some(Value::from(v)),
            ("min", KdlValue::Integer(i)) => min = Some(*i),
            ("max", KdlValue::Integer(i)) => max = Some(*i),
            ("values", KdlValue::String(s)) => {
                values = Some(s.split_whitespace().map(str::to_owned).collect())
            }
            ("xml", KdlValue::String(x)) => match xml_path_problem(x, false) {
                None => f.xml = Some(x.clone()),
                Some(why) => ctx.error(e.span(), why, XML_HELP),
            },
            ("xml-netmask", KdlValue::String(x)) => match xml_path_problem(x, false) {
                Some(why) => ctx.error(e.span(), why, XML_HELP),
                None if x == "." || x.starts_with('@') => ctx.error(
                    e.span(),
                    format!("`xml-netmask=\"{x}\"` must name an element"),
                    XML_HELP,
                ),
                None => f.xml_netmask = Some(x.clone()),
            },
            ("ref", KdlValue::String(r)) => match r.split_once('/') {
                Some((section, child)) => {
                    f.reference = Some(Reference {
                        section: section.into(),
                        child: child.into(),
                    })
                }
                None => ctx.error(
                    e.span(),
                    format!("`ref=\"{r}\"` does not name a section and a child"),
                    "write ref=\"section/child\", such as ref=\"interfaces/interface\"",
                ),
            },
            (other, _) => {
                let help = match did_you_mean(other, FIELD_PROPS) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("fields take {}", FIELD_PROPS.join(", ")),
                };
                ctx.error(
                    e.span(),
                    format!("unknown or mistyped field option `{other}`"),
                    &help,
                );
            }
        }
    }
    match &mut f.ty {
        ValueType::Int { min: lo, max: hi } => (*lo, *hi) = (min, max),
        ValueType::Enum(v) => match values {
            Some(vals) => *v = vals,
            None => ctx.error(
                node.span(),
                format!("enum `{}` lists no values", f.name),
                "add values=\"a b c\"",
            ),
        },
        _ => {}
    }
    if f.xml_netmask.is_some() && f.ty != ValueType::Cidr {
        ctx.error(
            node.span(),
            format!("`{}` has xml-netmask= but is not of type cidr", f.name),
            "xml-netmask= splits a cidr value into an address and a netmask element",
        );
    }
    if f.default.is_some() && !required_given {
        f.required = false;
    }
    Some(f)
}

const XML_HELP: &str = "xml= is `.` (the element's own text), `@attr` (an attribute), or a path of element names such as `local_dns/dns_ip` (for a section's field, `../name` is an element beside the section's)";

/// What is wrong with an `xml=` path, if anything. Children may not point at attributes;
/// a field's path may start with `../` (an element beside the section's own, such as
/// `dns_interface` beside `<dns>`).
fn xml_path_problem(path: &str, child: bool) -> Option<String> {
    if path == "." {
        return None;
    }
    let path = match path.strip_prefix("../") {
        Some(rest) if !child => rest,
        Some(_) => {
            return Some(format!(
                "a child cannot live outside its parent (`xml=\"{path}\"`)"
            ));
        }
        None => path,
    };
    if let Some(attr) = path.strip_prefix('@') {
        return match (child, is_xml_name(attr)) {
            (true, _) => Some(format!(
                "a child cannot live in an attribute (`xml=\"{path}\"`)"
            )),
            (false, true) => None,
            (false, false) => Some(format!("`{attr}` is not an XML attribute name")),
        };
    }
    path.split('/')
        .find(|step| !is_xml_name(step))
        .map(|step| format!("`{step}` in `xml=\"{path}\"` is not an XML element name"))
}

/// True for a name XML accepts for elements and attributes (ASCII subset).
pub fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Checks that every `ref=` names a section and child that exist and have a key.
pub fn check_references(cat: &Catalogue, diags: &mut Diagnostics) {
    for schema in cat.sections.values() {
        for site in schema.references() {
            let field = site.field;
            let Some(r) = &field.reference else { continue };
            let target = cat
                .get(&r.section)
                .and_then(|s| s.body.children.get(&r.child));
            if target.is_none_or(|c| c.key.is_none()) {
                diags.push(
                    Problem::error(
                        "strata::schema-file::bad-reference",
                        format!(
                            "section `{}` field `{}` refers to `{r}`, which is not a keyed child of a known section",
                            schema.name, field.name
                        ),
                    )
                    .help("point ref= at a section's child that has key=\"…\""),
                );
            }
        }
    }
}
