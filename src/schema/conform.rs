//! Checking a section's contents against its schema: types, ranges, enumerations,
//! required fields, unknown names and unique keys.

use std::collections::HashMap;
use std::sync::Arc;

use super::{FieldSpec, NodeSpec, SectionSchema};
use crate::config::diagnostics::did_you_mean;
use crate::config::{Diagnostics, Problem, SourceFile};
use crate::model::{Node, Value};

/// The name of the node (and of the built-in section) that keeps XML an import did not
/// know: unknown attributes as properties, unknown elements as `element` children.
pub const XML_EXTRA: &str = "xml-extra";

/// Checks the shape of an `xml-extra` node: its children are `element "name" ["text"]
/// attr=… { … }` and `text "…"` nodes, recursively, element names being XML names; and
/// the entries an import adds: `order "name" …` (the element order of the file),
/// `as-written "path" "text"` (a value's spelling) and `header "Key" "value"` (a line of an
/// appliance file's header comment).
pub fn check_xml_extra(node: &Node, file: &Arc<SourceFile>, diags: &mut Diagnostics) {
    check_extra_at(node, file, diags, 0);
}

/// The deepest nesting of `element` nodes in one `xml-extra`. The XML reader refuses
/// documents nested deeper than 64 levels; an `xml-extra` sits at most a dozen levels down
/// (the cluster form's mode element, the section, wrappers and children), so a repo that
/// validates always exports XML that Strata reads back.
pub const XML_EXTRA_MAX_DEPTH: usize = 48;

fn check_extra_at(node: &Node, file: &Arc<SourceFile>, diags: &mut Diagnostics, depth: usize) {
    let bad = |n: &Node, why: String| {
        Problem::error("strata::xml::extra-shape", why)
            .at(file, n.name_span, "here")
            .help("xml-extra holds `element \"name\" [\"text\"] attr=\"…\" { … }` and `text \"…\"` nodes, as `strata import-xml` writes them")
    };
    if !node.args.is_empty() {
        diags.push(bad(node, format!("`{}` takes no arguments", node.name)));
    }
    for (k, v) in &node.props {
        if !super::parse::is_xml_name(k) || v.as_str().is_none() {
            diags.push(bad(
                node,
                format!("attribute `{k}` must be an XML name with a string value"),
            ));
        }
    }
    for child in &node.children {
        match child.name.as_str() {
            "text" => {
                if !matches!(child.args.as_slice(), [Value::String(_)])
                    || !child.children.is_empty()
                    || !child.props.is_empty()
                {
                    diags.push(bad(child, "`text` takes exactly one string".into()));
                }
            }
            "element" => {
                let ok_name = matches!(child.args.first(), Some(Value::String(n)) if super::parse::is_xml_name(n));
                let ok_text = match child.args.get(1) {
                    None => true,
                    Some(Value::String(_)) => child.args.len() == 2 && child.children.is_empty(),
                    Some(_) => false,
                };
                if !ok_name || !ok_text {
                    diags.push(bad(child, "`element` takes an XML element name and, when it has no children, an optional string of text".into()));
                }
                if depth + 1 > XML_EXTRA_MAX_DEPTH {
                    diags.push(
                        Problem::error(
                            "strata::xml::extra-shape",
                            format!("`element` nodes nest deeper than {XML_EXTRA_MAX_DEPTH} levels"),
                        )
                        .at(file, child.name_span, "too deep")
                        .help("no appliance configuration nests this deep, and the XML it exports would be refused on reading"),
                    );
                    continue;
                }
                let mut inner = child.clone();
                inner.args.clear();
                check_extra_at(&inner, file, diags, depth + 1);
            }
            "order" => {
                let names_ok = !child.args.is_empty()
                    && child
                        .args
                        .iter()
                        .all(|a| a.as_str().is_some_and(super::parse::is_xml_name));
                if !names_ok || !child.props.is_empty() || !child.children.is_empty() {
                    diags.push(bad(
                        child,
                        "`order` takes one or more XML element names".into(),
                    ));
                }
            }
            "as-written" | "header" => {
                if !matches!(child.args.as_slice(), [Value::String(_), Value::String(_)])
                    || !child.props.is_empty()
                    || !child.children.is_empty()
                {
                    diags.push(bad(
                        child,
                        format!("`{}` takes exactly two strings", child.name),
                    ));
                }
            }
            other => diags.push(bad(child, format!("unexpected `{other}` in xml-extra"))),
        }
    }
}

/// Checks one section node against its schema, reporting every problem.
pub fn check_section(
    schema: &SectionSchema,
    node: &Node,
    file: &Arc<SourceFile>,
    diags: &mut Diagnostics,
) {
    if schema.name == XML_EXTRA {
        check_xml_extra(node, file, diags);
        return;
    }
    let mut checker = Checker { file, diags };
    checker.node(&schema.body, node, &schema.name);
}

struct Checker<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Diagnostics,
}

impl Checker<'_> {
    fn node(&mut self, spec: &NodeSpec, node: &Node, path: &str) {
        if spec.open {
            return;
        }
        self.args(spec, node, path);
        self.props(spec, node, path);
        self.children(spec, node, path);
    }

    fn args(&mut self, spec: &NodeSpec, node: &Node, path: &str) {
        let variadic = spec.args.last().filter(|a| a.variadic);
        for (i, value) in node.args.iter().enumerate() {
            let field = spec.args.get(i).or(variadic);
            let Some(field) = field else {
                let takes = match spec.args.len() {
                    0 => "no arguments".to_owned(),
                    1 => "one argument".to_owned(),
                    n => format!("{n} arguments"),
                };
                let names: Vec<String> =
                    spec.args.iter().map(|a| format!("<{}>", a.name)).collect();
                let help = if spec.args.is_empty() {
                    "remove it; values are written as properties (name=value) or child nodes".into()
                } else {
                    format!("`{}` takes {}", node.name, names.join(" "))
                };
                self.diags.push(
                    Problem::error(
                        "strata::schema::extra-argument",
                        format!("`{path}` takes {takes}"),
                    )
                    .at(self.file, node.arg_span(i), "unexpected argument")
                    .help(help),
                );
                continue;
            };
            self.value(field, value, node.arg_span(i), path);
        }
        for field in spec.args.iter().skip(node.args.len()) {
            // Every field here lies past the last argument given; a required variadic
            // argument needs at least one value.
            if field.required {
                self.diags.push(
                    Problem::error(
                        "strata::schema::missing-argument",
                        format!("`{path}` is missing its `{}` argument", field.name),
                    )
                    .at(self.file, node.name_span, format!("needs <{}>", field.name))
                    .help(format!(
                        "add {} as an argument: {} <{}> …",
                        field.ty.describe(),
                        node.name,
                        field.name
                    )),
                );
            }
        }
    }

    fn props(&mut self, spec: &NodeSpec, node: &Node, path: &str) {
        for (i, (name, value)) in node.props.iter().enumerate() {
            let span = node.prop_spans.get(i).copied().unwrap_or(node.span);
            match spec.props.get(name) {
                Some(field) => self.value(field, value, span, path),
                None => {
                    let mut p = Problem::error(
                        "strata::schema::unknown-property",
                        format!("`{path}` has no property `{name}`"),
                    )
                    .at(self.file, span, "unknown property");
                    p = match did_you_mean(name, spec.props.keys().map(String::as_str)) {
                        Some(s) => p.help(format!("did you mean `{s}`?")),
                        None if spec.props.is_empty() => {
                            p.help(format!("`{}` takes no properties", node.name))
                        }
                        None => p.help(format!(
                            "`{}` takes {}",
                            node.name,
                            spec.props.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    };
                    self.diags.push(p);
                }
            }
        }
        for (name, field) in &spec.props {
            if field.required && node.prop(name).is_none() {
                self.diags.push(
                    Problem::error(
                        "strata::schema::missing-property",
                        format!("`{path}` is missing the required property `{name}`"),
                    )
                    .at(self.file, node.name_span, format!("needs {name}=…"))
                    .help(format!("add {name}=… ({})", field.ty.describe())),
                );
            }
        }
    }

    fn children(&mut self, spec: &NodeSpec, node: &Node, path: &str) {
        let mut seen: HashMap<&str, &Node> = HashMap::new();
        let mut keys: HashMap<(&str, String), &Node> = HashMap::new();
        for child in &node.children {
            if child.name == XML_EXTRA {
                // What an XML import found that the schema does not know: kept verbatim.
                check_xml_extra(child, self.file, self.diags);
                continue;
            }
            let Some(child_spec) = spec.children.get(&child.name) else {
                let mut p = Problem::error(
                    "strata::schema::unknown-child",
                    format!("`{path}` has no child `{}`", child.name),
                )
                .at(self.file, child.name_span, "unknown here");
                p = match did_you_mean(&child.name, spec.children.keys().map(String::as_str)) {
                    Some(s) => p.help(format!("did you mean `{s}`?")),
                    None if spec.children.is_empty() => {
                        p.help(format!("`{}` takes no children", node.name))
                    }
                    None => p.help(format!(
                        "`{}` takes {}",
                        node.name,
                        spec.children.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                };
                self.diags.push(p);
                continue;
            };
            if !child_spec.multiple
                && let Some(first) = seen.insert(&child.name, child)
            {
                {
                    self.diags.push(
                        Problem::error(
                            "strata::schema::duplicate-child",
                            format!("`{}` may appear only once in `{path}`", child.name),
                        )
                        .at(self.file, child.name_span, "second one")
                        .also(first.name_span, "first one")
                        .help("merge the two into one node"),
                    );
                }
            }
            if let Some(key) = child_spec.key_of(child) {
                let key_text = match key.as_str() {
                    Some(s) => format!("\"{s}\""),
                    None => key.to_string(),
                };
                if let Some(first) = keys.insert((&child.name, key_text.clone()), child) {
                    self.diags.push(
                        Problem::error(
                            "strata::schema::duplicate-key",
                            format!("two `{}` nodes in `{path}` are both {key_text}", child.name),
                        )
                        .at(self.file, child.name_span, "duplicate")
                        .also(first.name_span, "first defined here")
                        .help(format!(
                            "each `{}` needs a unique {}",
                            child.name,
                            child_spec.key.as_deref().unwrap_or("key")
                        )),
                    );
                }
            }
            let child_path = format!("{path} › {}", child.name);
            self.node(&child_spec.spec, child, &child_path);
        }
        for (name, child_spec) in &spec.children {
            if child_spec.required && !node.children.iter().any(|c| &c.name == name) {
                self.diags.push(
                    Problem::error(
                        "strata::schema::missing-child",
                        format!("`{path}` needs a `{name}` child"),
                    )
                    .at(self.file, node.name_span, format!("no `{name}` here"))
                    .help(format!("add `{name} …` inside the block")),
                );
            }
        }
    }

    fn value(
        &mut self,
        field: &FieldSpec,
        value: &crate::model::Value,
        span: miette::SourceSpan,
        path: &str,
    ) {
        // Appliances store settings as XML 1.0 text, which cannot carry most control
        // characters: refuse them here rather than write an unreadable export later.
        if let Some(c) = value.as_str().and_then(|s| {
            s.chars()
                .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        }) {
            self.diags.push(
                Problem::error(
                    "strata::schema::control-character",
                    format!(
                        "`{}` in `{path}` contains the control character U+{:04X}",
                        field.name, c as u32
                    ),
                )
                .at(self.file, span, "control character in here")
                .help("remove it: only tab, newline and carriage return may appear in values"),
            );
            return;
        }
        if field.ty == super::ValueType::Secret
            && value
                .as_str()
                .is_some_and(|s| !super::secret_value::is_encrypted(s))
        {
            self.diags.push(
                Problem::error(
                    super::secret_value::PLAINTEXT,
                    format!("`{}` in `{path}` is a secret in clear text", field.name),
                )
                .at(
                    &super::secret_value::starred(
                        self.file,
                        span.offset(),
                        span.offset() + span.len(),
                    ),
                    span,
                    "clear text here",
                )
                .help(
                    "encrypt it to the cluster and paste the armoured text in its place: \
                     `strata secret encrypt --target HOST` (offline: `--recipient age1…`), \
                     or `strata secret reencrypt --repo DIR` for every clear secret; \
                     `--allow-plaintext-secrets` lets it through while migrating",
                ),
            );
            return;
        }
        if let Err(why) = field.ty.check(value) {
            let mut p = Problem::error(
                "strata::schema::invalid-value",
                format!("invalid `{}` in `{path}`: {why}", field.name),
            )
            .at(self.file, span, format!("expected {}", field.ty.describe()));
            let suggestion = match (&field.ty, value.as_str()) {
                (super::ValueType::Enum(values), Some(s)) => {
                    did_you_mean(s, values.iter().map(String::as_str))
                }
                _ => None,
            };
            p = match suggestion {
                Some(s) => p.help(format!("did you mean \"{s}\"?")),
                None => p.help(format!("`{}` must be {}", field.name, field.ty.describe())),
            };
            self.diags.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};
    use crate::schema::Catalogue;

    #[test]
    fn control_characters_in_values_are_refused() {
        let text = "cluster \"a\" {\n    timezone \"Europe/Pa\\u{1}ris\"\n}\n";
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("c.kdl", text)], &mut diags);
        let cat = Catalogue::builtin();
        let section = &repo.cluster().unwrap().sections[0];
        check_section(
            cat.get("timezone").unwrap(),
            &section.node,
            &section.file,
            &mut diags,
        );
        let codes: Vec<&str> = diags.problems().iter().map(|p| p.code).collect();
        assert_eq!(codes, ["strata::schema::control-character"]);
    }
}
