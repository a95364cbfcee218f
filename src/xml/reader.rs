//! Text → a raw XML tree with spans, on quick-xml's event reader, hardened against hostile
//! input: no entity is ever expanded (only the five predefined ones and character
//! references are resolved), a DTD internal subset is refused, no external DTD is fetched,
//! and nesting depth, text length and element count are capped. Every failure is a
//! [`Problem`] pointing at the byte where it happened.

use std::sync::Arc;

use miette::SourceSpan;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Limits, header::Header};
use crate::config::{Problem, SourceFile};

/// The id of a wrapper element made while encoding (`local_dns` in `local_dns/dns_ip`):
/// later content for the same wrapper, and the first `xml-extra` element of its name (the
/// leftovers of the one wrapper decoding used), merge into it.
pub const WRAPPER: usize = usize::MAX - 1;
/// The id of a section element made while encoding, which several sections may share
/// (`ldap-servers` and `ldap-queries` both live in `<ldap>`).
pub const SHARED: usize = usize::MAX - 2;
/// The id of an element made while encoding to hold a field's value: an empty `element`
/// entry of its name in `xml-extra` (the placeholder of an element that was empty when
/// imported) is not written beside it.
pub const LEAF: usize = usize::MAX - 3;

/// One element, with where it was read. Ids are assigned in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct XElem {
    /// Position in document order (pre-order); unique within one document.
    pub id: usize,
    /// The element name as written (prefix included).
    pub name: String,
    /// Attributes in document order.
    pub attrs: Vec<XAttr>,
    /// Child elements and text, in document order. Adjacent text pieces are merged.
    pub children: Vec<XNode>,
    /// From `<` of the start tag to `>` of the end tag.
    pub span: SourceSpan,
    /// The name in the start tag.
    pub name_span: SourceSpan,
}

/// An attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct XAttr {
    /// The name as written.
    pub name: String,
    /// The value, with references resolved.
    pub value: String,
    /// Where `name="value"` was read.
    pub span: SourceSpan,
}

/// Element content.
#[derive(Debug, Clone, PartialEq)]
pub enum XNode {
    /// A child element.
    Elem(XElem),
    /// Text (character data, CDATA and references, merged), and where it was read.
    Text(String, SourceSpan),
}

impl XElem {
    /// A new element with no content, at no particular place.
    pub fn new(name: impl Into<String>) -> XElem {
        XElem {
            id: usize::MAX,
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            span: SourceSpan::from(0..0),
            name_span: SourceSpan::from(0..0),
        }
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &XElem> {
        self.children.iter().filter_map(|c| match c {
            XNode::Elem(e) => Some(e),
            XNode::Text(..) => None,
        })
    }

    /// The child elements, mutably.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut XElem> {
        self.children.iter_mut().filter_map(|c| match c {
            XNode::Elem(e) => Some(e),
            XNode::Text(..) => None,
        })
    }

    /// All text directly inside, concatenated, and the span of the first piece.
    pub fn text(&self) -> (String, SourceSpan) {
        let mut out = String::new();
        let mut span = None;
        let only_text = self.elements().next().is_none();
        for c in &self.children {
            if let XNode::Text(t, s) = c {
                // Between child elements, whitespace is layout, not content.
                if only_text || !t.trim().is_empty() {
                    out.push_str(t);
                    span.get_or_insert(*s);
                }
            }
        }
        (out, span.unwrap_or(self.name_span))
    }

    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&XAttr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// True when the element has no attributes and no child elements (text allowed).
    pub fn is_simple(&self) -> bool {
        self.attrs.is_empty() && self.elements().next().is_none()
    }
}

/// A document read: the header comment's metadata and the root element.
#[derive(Debug, Clone)]
pub struct XDocument {
    /// The file it was read from (spans point into its text).
    pub file: Arc<SourceFile>,
    /// Metadata from the comment before the root element.
    pub header: Header,
    /// The root element.
    pub root: XElem,
}

const PREDEFINED: [(&str, char); 5] = [
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("apos", '\''),
    ("quot", '"'),
];

fn syntax(file: &Arc<SourceFile>, at: usize, message: String, help: &str) -> Box<Problem> {
    let at = at.min(file.text.len());
    Box::new(
        Problem::error("strata::xml::syntax", message)
            .at(file, SourceSpan::from(at..at), "here")
            .help(help.to_owned()),
    )
}

fn hostile(file: &Arc<SourceFile>, at: usize, message: String, help: &str) -> Box<Problem> {
    let at = at.min(file.text.len());
    Box::new(
        Problem::error("strata::xml::refused", message)
            .at(file, SourceSpan::from(at..at), "here")
            .help(help.to_owned()),
    )
}

/// Parses a whole document. The first problem ends the parse: a malformed or hostile file
/// is not worth reading further.
pub fn parse(file: &Arc<SourceFile>, limits: &Limits) -> Result<XDocument, Box<Problem>> {
    let text = file.text.as_str();
    if text.len() > limits.max_bytes {
        return Err(hostile(
            file,
            0,
            format!(
                "the file is {} bytes, more than the {} bytes Strata reads",
                text.len(),
                limits.max_bytes
            ),
            "AsyncOS configuration files are far smaller; check that this is the right file",
        ));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;
    let mut stack: Vec<XElem> = Vec::new();
    let mut root: Option<XElem> = None;
    let mut header = Header::default();
    let mut next_id = 0usize;
    loop {
        let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(err) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(start);
                return Err(syntax(
                    file,
                    at,
                    format!("XML syntax: {err}"),
                    "fix the XML here; a saved AsyncOS configuration is well-formed XML",
                ));
            }
        };
        let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match event {
            Event::Start(tag) | Event::Empty(tag) => {
                let empty = end > 1 && text.as_bytes().get(end - 2) == Some(&b'/');
                if root.is_some() && stack.is_empty() {
                    return Err(syntax(
                        file,
                        start,
                        "XML syntax: a second root element".into(),
                        "a configuration file has exactly one root element, <config>",
                    ));
                }
                if stack.len() >= limits.max_depth {
                    return Err(hostile(
                        file,
                        start,
                        format!("elements nest deeper than {} levels", limits.max_depth),
                        "AsyncOS configuration nests a few levels deep; this file is malformed or hostile",
                    ));
                }
                if next_id >= limits.max_elements {
                    return Err(hostile(
                        file,
                        start,
                        format!("more than {} elements", limits.max_elements),
                        "this file is far larger than any appliance configuration",
                    ));
                }
                let elem = start_element(file, &tag, start, end, next_id)?;
                next_id += 1;
                if empty {
                    close(elem, &mut stack, &mut root);
                } else {
                    stack.push(elem);
                }
            }
            Event::End(_) => {
                let Some(mut elem) = stack.pop() else {
                    return Err(syntax(
                        file,
                        start,
                        "XML syntax: an end tag without a start tag".into(),
                        "remove it, or add the matching start tag",
                    ));
                };
                elem.span = SourceSpan::from(elem.span.offset()..end);
                close(elem, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                push_text(file, &mut stack, &content, start, end, limits)?;
            }
            Event::CData(t) => {
                let content = t.xml10_content();
                push_text(file, &mut stack, &content, start, end, limits)?;
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let ch = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => {
                            return Err(syntax(
                                file,
                                start,
                                format!(
                                    "XML syntax: `&{name};` is not a valid character reference"
                                ),
                                "write a character reference as &#NNN; or &#xHHH;",
                            ));
                        }
                    }
                } else {
                    match PREDEFINED.iter().find(|(n, _)| *n == name) {
                        Some((_, c)) => *c,
                        None => {
                            return Err(hostile(
                                file,
                                start,
                                format!("the entity `&{name};` is not expanded"),
                                "Strata expands only &lt; &gt; &amp; &apos; &quot; and character references; write the text itself",
                            ));
                        }
                    }
                };
                let mut buf = [0u8; 4];
                push_text(
                    file,
                    &mut stack,
                    ch.encode_utf8(&mut buf),
                    start,
                    end,
                    limits,
                )?;
            }
            Event::Comment(c) => {
                if root.is_none() && stack.is_empty() {
                    header = Header::parse(&c.xml10_content());
                }
            }
            Event::DocType(d) => {
                let content = d.xml10_content();
                if content.contains('[') || content.contains("<!ENTITY") {
                    return Err(hostile(
                        file,
                        start,
                        "the DOCTYPE has an internal subset (entity or element declarations)"
                            .into(),
                        "Strata never expands entities; AsyncOS writes only <!DOCTYPE config SYSTEM \"config.dtd\">",
                    ));
                }
            }
            Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax(
            file,
            text.len(),
            format!("XML syntax: the file ends inside <{}>", open.name),
            "the file is truncated, or an end tag is missing",
        ));
    }
    match root {
        Some(root) => Ok(XDocument {
            file: file.clone(),
            header,
            root,
        }),
        None => Err(syntax(
            file,
            0,
            "XML syntax: no root element".into(),
            "an AsyncOS configuration file holds a <config> element",
        )),
    }
}

fn close(elem: XElem, stack: &mut [XElem], root: &mut Option<XElem>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(XNode::Elem(elem)),
        None => *root = Some(elem),
    }
}

fn push_text(
    file: &Arc<SourceFile>,
    stack: &mut [XElem],
    piece: &str,
    start: usize,
    end: usize,
    limits: &Limits,
) -> Result<(), Box<Problem>> {
    let Some(parent) = stack.last_mut() else {
        if piece.trim().is_empty() {
            return Ok(());
        }
        return Err(syntax(
            file,
            start,
            "XML syntax: text outside the root element".into(),
            "everything but the declaration, DOCTYPE and comments belongs inside <config>",
        ));
    };
    if let Some(XNode::Text(t, span)) = parent.children.last_mut() {
        if t.len() + piece.len() > limits.max_text {
            return Err(hostile(
                file,
                start,
                format!("a text longer than {} bytes", limits.max_text),
                "no AsyncOS setting holds this much text; the file is malformed or hostile",
            ));
        }
        t.push_str(piece);
        *span = SourceSpan::from(span.offset()..end);
        return Ok(());
    }
    if piece.len() > limits.max_text {
        return Err(hostile(
            file,
            start,
            format!("a text longer than {} bytes", limits.max_text),
            "no AsyncOS setting holds this much text; the file is malformed or hostile",
        ));
    }
    parent
        .children
        .push(XNode::Text(piece.to_owned(), SourceSpan::from(start..end)));
    Ok(())
}

fn start_element(
    file: &Arc<SourceFile>,
    tag: &BytesStart,
    start: usize,
    end: usize,
    id: usize,
) -> Result<XElem, Box<Problem>> {
    let name = tag.name().as_ref().to_owned();
    let name_start = start + 1;
    let mut elem = XElem::new(name.clone());
    elem.id = id;
    elem.span = SourceSpan::from(start..end);
    elem.name_span = SourceSpan::from(name_start..name_start + name.len());
    let raw = file.text.get(start..end).unwrap_or_default();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| {
            syntax(
                file,
                start,
                format!("XML syntax: in the attributes of <{name}>: {e}"),
                "attributes are written name=\"value\", each name once",
            )
        })?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| {
                hostile(
                    file,
                    start,
                    format!("the value of attribute `{key}` of <{name}>: {e}"),
                    "Strata expands only &lt; &gt; &amp; &apos; &quot; and character references",
                )
            })?
            .into_owned();
        // quick-xml does not report attribute positions: find `key=` in the tag's text.
        let span = find_attr(raw, &key)
            .map(|(a, b)| SourceSpan::from(start + a..start + b))
            .unwrap_or(elem.name_span);
        elem.attrs.push(XAttr {
            name: key,
            value,
            span,
        });
    }
    Ok(elem)
}

fn find_attr(tag: &str, key: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = tag.get(from..)?.find(key) {
        let at = from + i;
        let before_ok = tag[..at].ends_with(char::is_whitespace);
        let rest = tag[at + key.len()..].trim_start();
        if before_ok && rest.starts_with('=') {
            let after_eq = rest[1..].trim_start();
            let quote = after_eq.chars().next()?;
            let value_start = tag.len() - after_eq.len() + 1;
            let close = tag.get(value_start..)?.find(quote)?;
            return Some((at, value_start + close + 1));
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<XDocument, Box<Problem>> {
        parse(&SourceFile::new("t.xml", text), &Limits::default())
    }

    #[test]
    fn elements_attributes_and_text_with_spans() {
        let doc = read("<config><dns><local_dns><dns_ip priority=\"1\">10.0.0.1</dns_ip></local_dns></dns></config>").unwrap();
        let dns = doc.root.elements().next().unwrap();
        let ip = dns.elements().next().unwrap().elements().next().unwrap();
        assert_eq!(ip.name, "dns_ip");
        assert_eq!(ip.attr("priority").unwrap().value, "1");
        let (text, span) = ip.text();
        assert_eq!(text, "10.0.0.1");
        assert_eq!(
            &doc.file.text[span.offset()..span.offset() + span.len()],
            "10.0.0.1"
        );
        let a = &ip.attrs[0].span;
        assert_eq!(
            &doc.file.text[a.offset()..a.offset() + a.len()],
            "priority=\"1\""
        );
        assert_eq!(&doc.file.text[ip.name_span.offset()..][..6], "dns_ip");
    }

    #[test]
    fn references_cdata_and_empty_elements() {
        let doc = read("<config><a>x &amp; &#x41;<![CDATA[<b>]]></a><e/></config>").unwrap();
        let a = doc.root.elements().next().unwrap();
        assert_eq!(a.text().0, "x & A<b>");
        assert_eq!(doc.root.elements().nth(1).unwrap().name, "e");
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let p = read("<config>\n  <a>\n</config>").unwrap_err();
        assert_eq!(p.code, "strata::xml::syntax");
        assert_eq!(p.line_col(), Some((3, 1)));
        let p = read("<config><a></config").unwrap_err();
        assert_eq!(p.code, "strata::xml::syntax");
        let p = read("<config/><again/>").unwrap_err();
        assert!(p.message.contains("second root"), "{}", p.message);
    }

    #[test]
    fn entities_and_internal_subsets_are_refused() {
        let p = read("<!DOCTYPE config [<!ENTITY a \"aaaa\">]><config>&a;</config>").unwrap_err();
        assert_eq!(p.code, "strata::xml::refused");
        let p = read("<config>&undefined;</config>").unwrap_err();
        assert_eq!(p.code, "strata::xml::refused");
        assert!(read("<!DOCTYPE config SYSTEM \"config.dtd\"><config/>").is_ok());
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_depth: 4,
            max_text: 8,
            max_elements: 5,
            max_bytes: 100,
        };
        let f = |t: &str| parse(&SourceFile::new("t.xml", t), &limits).unwrap_err();
        assert!(
            f("<a><a><a><a><a/></a></a></a></a>")
                .message
                .contains("deeper")
        );
        assert!(f("<a>0123456789</a>").message.contains("text longer"));
        assert!(
            f("<a><b/><b/><b/><b/><b/></a>")
                .message
                .contains("elements")
        );
        assert!(
            f(&format!("<a>{}</a>", " ".repeat(200)))
                .message
                .contains("bytes")
        );
    }
}
