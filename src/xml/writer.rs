//! A raw XML tree → deterministic text and bytes: two-space indentation, attributes in
//! the order given, text escaped so that reading it back yields the same characters, and
//! ISO-8859-1 (as AsyncOS writes) whenever every character fits, UTF-8 otherwise.

use super::reader::{XElem, XNode};

/// The whole document: declaration, DOCTYPE (for `<config>`), header comment, root.
/// Returns the bytes to write.
pub fn document(root: &XElem, comment: Option<&str>) -> Vec<u8> {
    let mut body = String::new();
    if root.name == "config" {
        body.push_str("<!DOCTYPE config SYSTEM \"config.dtd\">\n");
    }
    if let Some(c) = comment {
        body.push_str("<!--");
        body.push_str(c);
        body.push_str("-->\n");
    }
    element(&mut body, root, 0);
    let latin1 = body.chars().all(|c| u32::from(c) <= 0xFF);
    let decl = if latin1 {
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
    } else {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    };
    let text = format!("{decl}{body}");
    if latin1 {
        // Every char is at most U+00FF: one byte each, as ISO-8859-1 maps them.
        text.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        text.into_bytes()
    }
}

/// One element and its content, indented by `depth` levels, ending with a newline.
pub fn element(out: &mut String, e: &XElem, depth: usize) {
    let indent = "  ".repeat(depth);
    out.push_str(&indent);
    open_tag(out, e);
    let has_elements = e.elements().next().is_some();
    let texts: Vec<&str> = e
        .children
        .iter()
        .filter_map(|c| match c {
            XNode::Text(t, _) => Some(t.as_str()),
            XNode::Elem(_) => None,
        })
        .collect();
    let has_text = texts.iter().any(|t| !t.is_empty());
    if !has_elements && !has_text {
        // An open/close pair, as AsyncOS-format files write empty elements.
        out.push('>');
        close_tag(out, e);
        return;
    }
    if !has_elements {
        out.push('>');
        for t in texts {
            escape_text(out, t);
        }
        close_tag(out, e);
        return;
    }
    let mixed = texts.iter().any(|t| !t.trim().is_empty());
    out.push('>');
    if mixed {
        // Mixed content: no layout whitespace, which would become part of the text.
        for c in &e.children {
            match c {
                XNode::Text(t, _) => escape_text(out, t),
                XNode::Elem(child) => inline(out, child),
            }
        }
        close_tag(out, e);
        return;
    }
    out.push('\n');
    for child in e.elements() {
        element(out, child, depth + 1);
    }
    out.push_str(&indent);
    close_tag(out, e);
}

fn inline(out: &mut String, e: &XElem) {
    open_tag(out, e);
    out.push('>');
    for c in &e.children {
        match c {
            XNode::Text(t, _) => escape_text(out, t),
            XNode::Elem(child) => inline(out, child),
        }
    }
    out.push_str(&format!("</{}>", e.name));
}

fn open_tag(out: &mut String, e: &XElem) {
    out.push('<');
    out.push_str(&e.name);
    for a in &e.attrs {
        out.push(' ');
        out.push_str(&a.name);
        out.push_str("=\"");
        escape_attr(out, &a.value);
        out.push('"');
    }
}

fn close_tag(out: &mut String, e: &XElem) {
    out.push_str(&format!("</{}>\n", e.name));
}

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A literal CR would be normalised away on reading.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            // Attribute-value normalisation turns literal whitespace into spaces.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;
    use crate::xml::{Limits, decode_bytes, reader};

    #[test]
    fn escapes_and_encoding_survive_a_reread() {
        let mut root = XElem::new("config");
        let mut a = XElem::new("a");
        a.attrs.push(crate::xml::reader::XAttr {
            name: "v".into(),
            value: "x\"<&>\n\ty".into(),
            span: a.span,
        });
        a.children
            .push(XNode::Text("Café & <ok>\r\n line".into(), a.span));
        root.children.push(XNode::Elem(a));
        let bytes = document(&root, Some("\n  Product: test\n"));
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
        let text = decode_bytes(&bytes).unwrap();
        let doc = reader::parse(&SourceFile::new("t.xml", text), &Limits::default()).unwrap();
        let back = doc.root.elements().next().unwrap();
        assert_eq!(back.attrs[0].value, "x\"<&>\n\ty");
        assert_eq!(back.text().0, "Café & <ok>\r\n line");
        assert_eq!(
            doc.header.fields,
            [("Product".to_owned(), "test".to_owned())]
        );
    }
}
