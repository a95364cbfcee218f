//! Property tests: for random section contents across the whole built-in catalogue (every
//! section, every field type, wrappers, attributes, element text, variadic arguments,
//! netmask splitting, mixed HAT text and elements), encoding to XML bytes and reading them
//! back gives the same nodes; and XML with repeated wrapper elements (and unknown elements
//! named like a wrapper) reads and writes back with every instance kept.

use proptest::prelude::*;

use strata::config::SourceFile;
use strata::model::{Node, Value};
use strata::schema::{Catalogue, FieldSpec, NodeSpec, ValueType, XML_EXTRA};
use strata::xml::codec::Decoder;
use strata::xml::reader::XAttr;
use strata::xml::{
    Limits, XElem, XNode, decode_bytes, decode_sections, encode_sections, reader, writer,
};

/// A small deterministic generator driven by the seed proptest picks.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next(100) < percent
    }

    fn string(&mut self) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'z', 'X', '0', '9', ' ', '-', '_', '.', '@', '/', '<', '>', '&', '"', '\'',
            'é', 'ü', '€', '日', '\t', '$', '{', '}',
        ];
        let len = 1 + self.next(12);
        let mut s: String = (0..len)
            .map(|_| ALPHABET[self.next(ALPHABET.len() as u64) as usize])
            .collect();
        if self.chance(10) {
            s.push_str("\n  second line");
        }
        // One-line values are read back trimmed: generate them without outer blanks.
        let trimmed = s.trim();
        if trimmed.is_empty() {
            "x".into()
        } else {
            trimmed.to_owned()
        }
    }

    fn value(&mut self, f: &FieldSpec) -> Value {
        match &f.ty {
            ValueType::Int { min, max } => {
                let lo = min.unwrap_or(-1000);
                let hi = max.unwrap_or(lo + 100_000);
                Value::Int(lo + i128::from(self.next((hi - lo + 1) as u64)))
            }
            ValueType::Bool => Value::Bool(self.chance(50)),
            ValueType::Enum(values) => {
                Value::String(values[self.next(values.len() as u64) as usize].clone())
            }
            ValueType::Ip => Value::String(format!(
                "10.{}.{}.{}",
                self.next(256),
                self.next(256),
                self.next(256)
            )),
            ValueType::Cidr => Value::String(format!(
                "192.168.{}.{}/{}",
                self.next(256),
                self.next(256),
                self.next(33)
            )),
            // Text is kept verbatim, outer blanks included.
            ValueType::Text if self.chance(30) => Value::String(format!(" {} ", self.string())),
            _ => Value::String(self.string()),
        }
    }
}

fn node(rng: &mut Rng, spec: &NodeSpec, name: &str, depth: usize) -> Node {
    let mut n = Node::new(name);
    for f in &spec.args {
        if !f.required && rng.chance(30) {
            break;
        }
        let count = if f.variadic { 1 + rng.next(3) } else { 1 };
        for _ in 0..count {
            n.args.push(rng.value(f));
        }
    }
    for (k, f) in &spec.props {
        if f.required || rng.chance(50) {
            n.props.push((k.clone(), rng.value(f)));
        }
    }
    if depth > 4 {
        return n;
    }
    // Children mapped to the element itself come first, then each kind in turn: the order
    // in which they read back.
    let mut kinds: Vec<(&String, &strata::schema::ChildSpec)> = spec.children.iter().collect();
    kinds.sort_by_key(|(_, c)| c.xml.as_deref() != Some("."));
    for (cname, c) in kinds {
        let count = match (c.multiple, c.required) {
            (true, true) => 1 + rng.next(3),
            (true, false) => rng.next(4),
            (false, true) => 1,
            (false, false) => rng.next(2),
        };
        for _ in 0..count {
            let child = node(rng, &c.spec, cname, depth + 1);
            // A child that lives in its parent's element exists only through its content.
            if c.xml.as_deref() == Some(".") && child.is_empty() {
                continue;
            }
            n.children.push(child);
        }
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_section_survives_xml(seed in any::<u64>()) {
        let cat = Catalogue::builtin();
        let mut rng = Rng(seed);
        let sections: Vec<Node> = cat
            .sections
            .values()
            .filter(|s| s.name != XML_EXTRA && s.in_xml())
            .map(|s| node(&mut rng, &s.body, &s.name, 0))
            .collect();
        let mut root = XElem::new("config");
        encode_sections(&mut root, &sections, &cat);
        let bytes = writer::document(&root, None);
        let text = decode_bytes(&bytes).unwrap();
        let file = SourceFile::new("prop.xml", text);
        let doc = reader::parse(&file, &Limits::default()).unwrap();
        let back = decode_sections(&mut Decoder::default(), &doc.root, &cat);
        prop_assert_eq!(back.len(), sections.len(), "{}", file.text);
        for (a, b) in sections.iter().zip(&back) {
            prop_assert_eq!(a, b, "{}", file.text);
        }
    }
}

/// The first steps of every multi-step `xml=` path in `spec`: its wrapper element names.
fn wrapper_names(spec: &NodeSpec, out: &mut Vec<String>) {
    let fields = spec.args.iter().chain(spec.props.values());
    let paths = fields
        .flat_map(|f| [f.xml.as_deref(), f.xml_netmask.as_deref()])
        .chain(spec.children.values().map(|c| c.xml.as_deref()));
    for path in paths.flatten() {
        if let Some((first, _)) = path.split_once('/')
            && !out.iter().any(|w| w == first)
        {
            out.push(first.to_owned());
        }
    }
    for c in spec.children.values() {
        wrapper_names(&c.spec, out);
    }
}

/// Adds, under elements that hold only elements, copies of wrapper-named children (with an
/// attribute of their own) and empty or unknown-content elements named like a wrapper, at
/// random places among the siblings.
fn repeat_wrappers(rng: &mut Rng, e: &mut XElem, names: &[String]) {
    for c in e.elements_mut() {
        repeat_wrappers(rng, c, names);
    }
    let only_elements = e.children.iter().all(|c| match c {
        XNode::Text(t, _) => t.trim().is_empty(),
        XNode::Elem(_) => true,
    });
    if !only_elements || e.elements().next().is_none() {
        return;
    }
    let present: Vec<XElem> = e
        .elements()
        .filter(|c| names.contains(&c.name))
        .cloned()
        .collect();
    let mut added = Vec::new();
    for w in &present {
        for _ in 0..rng.next(3) {
            let mut copy = if rng.chance(50) {
                w.clone()
            } else {
                XElem::new(w.name.clone())
            };
            if rng.chance(60) {
                copy.attrs.push(XAttr {
                    name: format!("dup{}", rng.next(3)),
                    value: rng.string(),
                    span: copy.span,
                });
            }
            if rng.chance(30) {
                let mut y = XElem::new("unknown_part");
                y.children.push(XNode::Text(rng.string(), y.span));
                copy.children.push(XNode::Elem(y));
            }
            added.push(copy);
        }
    }
    if rng.chance(10) {
        added.push(XElem::new(
            names[rng.next(names.len() as u64) as usize].clone(),
        ));
    }
    for a in added {
        let at = rng.next(e.children.len() as u64 + 1) as usize;
        e.children.insert(at, XNode::Elem(a));
    }
}

/// An element reduced to what a round trip must keep: name, attributes (sorted), trimmed
/// text and children, siblings sorted by name with the order of same-named ones kept.
#[derive(Debug, PartialEq)]
struct Canon(String, Vec<(String, String)>, String, Vec<Canon>);

fn canon(e: &XElem) -> Canon {
    let mut attrs: Vec<(String, String)> = e
        .attrs
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    attrs.sort();
    let mut children: Vec<Canon> = e.elements().map(canon).collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Canon(
        e.name.clone(),
        attrs,
        e.text().0.trim().to_owned(),
        children,
    )
}

fn parse(name: &str, bytes: &[u8]) -> reader::XDocument {
    let file = SourceFile::new(name, decode_bytes(bytes).unwrap());
    reader::parse(&file, &Limits::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn repeated_wrappers_survive_xml(seed in any::<u64>()) {
        let cat = Catalogue::builtin();
        let mut rng = Rng(seed);
        let mut names = Vec::new();
        for s in cat.sections.values().filter(|s| s.name != XML_EXTRA) {
            if let Some((first, _)) = s.xml.split_once('/') {
                names.push(first.to_owned());
            }
            wrapper_names(&s.body, &mut names);
        }
        let sections: Vec<Node> = cat
            .sections
            .values()
            .filter(|s| s.name != XML_EXTRA && s.in_xml())
            .map(|s| node(&mut rng, &s.body, &s.name, 0))
            .collect();
        let mut root = XElem::new("config");
        encode_sections(&mut root, &sections, &cat);
        repeat_wrappers(&mut rng, &mut root, &names);
        let before = parse("before.xml", &writer::document(&root, None));
        let nodes = decode_sections(&mut Decoder::default(), &before.root, &cat);
        let mut again = XElem::new("config");
        encode_sections(&mut again, &nodes, &cat);
        let bytes = writer::document(&again, None);
        let after = parse("after.xml", &bytes);
        prop_assert_eq!(
            canon(&after.root),
            canon(&before.root),
            "{}\n---\n{}",
            String::from_utf8_lossy(&writer::document(&before.root, None)),
            String::from_utf8_lossy(&bytes)
        );
    }
}
