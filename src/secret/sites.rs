//! Where a config repo holds secrets: every value of a `type="secret"` field, with its
//! file, line and the byte range of the value's own text, so that `strata secret rotate`
//! can list them, `reencrypt` replace them in place (the rest of the file byte for byte,
//! comments included) and a plan name the lines a retired identity left undecryptable.

use std::ops::Range;
use std::sync::Arc;

use crate::config::{Repo, SourceFile};
use crate::model::{Node, Value};
use crate::schema::{Catalogue, NodeSpec, ValueType};

/// One secret value in a repo file.
#[derive(Debug, Clone)]
pub struct Site {
    /// The file.
    pub file: Arc<SourceFile>,
    /// Its 1-based line.
    pub line: usize,
    /// What it is: `cluster › ldap-servers › profile "corp" bind-password`.
    pub path: String,
    /// The value as the repo holds it (armoured text, or clear while migrating).
    pub value: String,
    /// The bytes of the value's text in the file (the quoted or multi-line string).
    pub range: Range<usize>,
}

impl Site {
    /// `cluster.kdl:4`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.name, self.line)
    }

    /// True when the repo holds it encrypted.
    pub fn encrypted(&self) -> bool {
        super::is_encrypted(&self.value)
    }
}

/// Every secret value of `repo`, in file order.
pub fn find(repo: &Repo, catalogue: &Catalogue) -> Vec<Site> {
    let mut out = Vec::new();
    for decl in repo.modes() {
        for section in &decl.sections {
            let Some(schema) = catalogue.get(section.name()) else {
                continue;
            };
            let path = format!("{} › {}", decl.mode, section.name());
            walk(&schema.body, &section.node, &section.file, &path, &mut out);
        }
    }
    out.sort_by(|a, b| (&a.file.name, a.range.start).cmp(&(&b.file.name, b.range.start)));
    out
}

fn walk(spec: &NodeSpec, node: &Node, file: &Arc<SourceFile>, path: &str, out: &mut Vec<Site>) {
    if spec.open {
        return;
    }
    for (i, (field, value)) in spec.args.iter().zip(&node.args).enumerate() {
        if field.ty == ValueType::Secret {
            push(out, file, node.arg_span(i), None, path, &field.name, value);
        }
    }
    for (i, (name, value)) in node.props.iter().enumerate() {
        if spec
            .props
            .get(name)
            .is_some_and(|f| f.ty == ValueType::Secret)
            && let Some(span) = node.prop_spans.get(i)
        {
            push(out, file, *span, Some(name), path, name, value);
        }
    }
    for child in &node.children {
        if let Some(c) = spec.children.get(&child.name) {
            let here = match child.args.first().and_then(Value::as_str) {
                Some(key) => format!("{path} › {} \"{key}\"", child.name),
                None => format!("{path} › {}", child.name),
            };
            walk(&c.spec, child, file, &here, out);
        }
    }
}

fn push(
    out: &mut Vec<Site>,
    file: &Arc<SourceFile>,
    span: miette::SourceSpan,
    prop: Option<&str>,
    path: &str,
    field: &str,
    value: &Value,
) {
    let Some(value) = value.as_str() else {
        return;
    };
    let text = file.text.as_str();
    let (start, end) = (span.offset(), span.offset() + span.len());
    let Some(entry) = text.get(start..end) else {
        return;
    };
    // The value's own text: after `name=` for a property, else the whole entry.
    let skip = match prop {
        Some(name) => match entry.find('=') {
            Some(eq) if entry[..eq].trim().trim_matches('"') == name => eq + 1,
            _ => return,
        },
        None => 0,
    };
    let lead = entry[skip..].len() - entry[skip..].trim_start().len();
    let trail = entry.len() - entry.trim_end().len();
    let range = start + skip + lead..end - trail;
    out.push(Site {
        file: file.clone(),
        line: file.line_col(range.start).0,
        path: format!("{path} {field}"),
        value: value.to_owned(),
        range,
    });
}

/// The files of `edits` with each site's value replaced by its new armoured text as a
/// KDL multi-line string, indented as its line; the rest of every file byte for byte.
/// One (file name, new text) per file, in name order.
pub fn rewrite(edits: &[(&Site, String)]) -> Vec<(String, String)> {
    let mut by_file: std::collections::BTreeMap<&str, Vec<&(&Site, String)>> = Default::default();
    for e in edits {
        by_file.entry(e.0.file.name.as_str()).or_default().push(e);
    }
    by_file
        .into_iter()
        .map(|(name, mut edits)| {
            let original = edits[0].0.file.text.as_str();
            edits.sort_by_key(|(s, _)| std::cmp::Reverse(s.range.start));
            let mut text = original.to_owned();
            for (site, new) in edits {
                let line_start = original[..site.range.start]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let indent: String = original[line_start..]
                    .chars()
                    .take_while(|c| *c == ' ' || *c == '\t')
                    .collect();
                text.replace_range(site.range.clone(), &super::kdl_multiline(new, &indent));
            }
            (name.to_owned(), text)
        })
        .collect()
}
