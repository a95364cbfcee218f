//! Tests of diagnostics: rendering, bounds, sorting and JSON.

use super::*;

#[test]
fn line_and_column_count_characters() {
    let f = SourceFile::new("a.kdl", "one\ntwé x\n");
    assert_eq!(f.line_col(0), (1, 1));
    assert_eq!(f.line_col(4), (2, 1));
    assert_eq!(f.line_col(9), (2, 5));
}

#[test]
fn a_snippet_reads_only_the_lines_around_its_span() {
    // What keeps rendering linear in the number of problems: each read is a few lines
    // found through the index, wherever the span is in the file.
    let text: String = (0..40_000).map(|i| format!("line{i} x\n")).collect();
    let f = SourceFile::new("a.kdl", text);
    let at = f.text.find("line30000 ").unwrap();
    let read = f.read_span(&SourceSpan::from(at..at + 4), 1, 1).unwrap();
    assert_eq!(read.line(), 29_999);
    assert_eq!(read.column(), 0);
    assert_eq!(
        std::str::from_utf8(read.data()).unwrap(),
        "line29999 x\nline30000 x\nline30001 x\n"
    );
    let header = f
        .read_span(&SourceSpan::from(at + 6..at + 9), 0, 0)
        .unwrap();
    assert_eq!((header.line(), header.column()), (30_000, 6));
    assert_eq!(f.line_col(at + 6), (30_001, 7));
}

#[test]
fn a_long_line_is_shown_as_a_window_around_the_span() {
    let f = SourceFile::new("a.kdl", format!("a\n{}bogus é\n", "é".repeat(70_000)));
    let at = f.text.find("bogus").unwrap();
    let span = SourceSpan::from(at..at + 5);
    let read = f.read_span(&span, 1, 1).unwrap();
    assert!(read.data().len() <= 2 * WINDOW + 5, "{}", read.data().len());
    assert_eq!(read.line(), 1);
    assert_eq!(f.line_col(at), (2, 70_001));
    let header = f.read_span(&span, 0, 0).unwrap();
    assert_eq!(header.column(), 70_000);
    // A label over the whole line is cut short; a merge of far-apart labels refused.
    let whole = f.shown_span(SourceSpan::from(2..f.text.len() - 1));
    assert!(whole.len() <= WINDOW);
    assert!(f.read_span(&SourceSpan::from(2..at), 1, 1).is_err());
    let p = Problem::error("x::y", "bad").at(&f, span, "here");
    let out = render(&p, 80, false);
    assert!(out.contains("[a.kdl:2:70001]"), "{out}");
    assert!(out.len() < 2_000);
}

#[test]
fn a_long_line_next_to_the_span_is_not_shown_as_context() {
    let f = SourceFile::new("a.kdl", format!("a\nb\n{}\nc\n", "1 ".repeat(50_000)));
    let p = Problem::error("x::y", "bad").at(&f, SourceSpan::from(2..3), "here");
    let out = render(&p, 80, false);
    assert!(out.contains("[a.kdl:2:1]"), "{out}");
    assert!(out.len() < 1_000, "{out}");
    let read = f.read_span(&SourceSpan::from(2..3), 1, 1).unwrap();
    assert_eq!(std::str::from_utf8(read.data()).unwrap(), "a\nb\n");
}

#[test]
fn a_span_inside_a_character_renders() {
    // Found by fuzzing the XML reader: its span started inside a 3-byte character.
    let f = SourceFile::new("a.xml", "<!--'켂S-->\n");
    let p = Problem::error("x::y", "bad").at(&f, SourceSpan::from(6..7), "here");
    assert!(render(&p, 80, false).contains("[a.xml:1:6]"));
    assert_eq!(f.line_col(6), (1, 6));
}

#[test]
fn problems_are_capped_per_kind_and_in_total_and_the_rest_counted() {
    let f = SourceFile::new("a.kdl", "x\n");
    let at =
        |code: &'static str| Problem::error(code, "bad").at(&f, SourceSpan::from(0..1), "here");
    let mut diags = Diagnostics::default();
    for _ in 0..1_000 {
        diags.push(at("x::one"));
    }
    diags.push(Problem::warning("x::two", "odd"));
    assert_eq!(diags.problems().len(), MAX_PER_KIND + 1);
    assert_eq!(diags.error_count(), 1_000);
    assert_eq!(diags.warning_count(), 1);
    let omitted: Vec<_> = diags.omitted().collect();
    assert_eq!(omitted.len(), 1);
    assert_eq!(
        (omitted[0].code, omitted[0].errors),
        ("x::one", 1_000 - MAX_PER_KIND)
    );
    assert_eq!(
        omitted[0].line(),
        "x::one: and 980 more like this, not shown (a run shows at most 20 problems of one kind and 200 in all)"
    );

    // Many kinds: the total cap holds too, and appending keeps both caps and counts.
    let codes: Vec<&'static str> = (0..100)
        .map(|i| &*Box::leak(format!("x::k{i}").into_boxed_str()))
        .collect();
    let mut other = Diagnostics::default();
    for code in &codes {
        for _ in 0..5 {
            other.push(at(code));
        }
    }
    assert_eq!(other.problems().len(), MAX_PROBLEMS);
    assert_eq!(other.error_count(), 500);
    diags.append(other);
    assert_eq!(diags.problems().len(), MAX_PROBLEMS);
    assert_eq!(diags.error_count(), 1_500);
    assert_eq!(diags.warning_count(), 1);
    assert!(diags.has_errors());
}

#[test]
fn near_misses_are_suggested() {
    assert_eq!(
        did_you_mean("smtp-route", ["smtp-routes", "dns"]),
        Some("smtp-routes")
    );
    assert_eq!(did_you_mean("zzz", ["smtp-routes", "dns"]), None);
}
