//! Hostile files through the real binary (issue 8): deep nesting behind an unterminated
//! string is refused, not a stack overflow (item 2); a diagnostic past column 65,535 is
//! rendered, not a panic (item 3); many problems render in one go (item 11).

use crate::support::{strata, transcript};

fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn deep_nesting_behind_an_unterminated_string_is_refused() {
    let text = format!("\"\n{}", "a {".repeat(2000));
    let dir = repo_with(&[("r.kdl", &text)]);
    let out = strata(dir.path(), &["validate", "r.kdl"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("strata::kdl::too-deep"));
    let out = strata(dir.path(), &["show", "--cluster"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
}

#[test]
fn a_problem_past_column_65535_renders_with_its_location() {
    let text = format!(
        "cluster \"c\"\ngroup \"Main_Group\"\n{}bogus \"x\"\n",
        " ".repeat(70_000)
    );
    let dir = repo_with(&[("r.kdl", &text)]);
    let out = strata(dir.path(), &["validate", "r.kdl"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[r.kdl:3:70001]"), "{stderr}");
    assert!(
        stderr.len() < 2_000,
        "the long line is shown whole: {} bytes",
        stderr.len()
    );
    insta::assert_snapshot!(stderr);
    let out = strata(dir.path(), &["show", "--cluster"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
}

#[test]
fn a_long_xml_line_renders_in_validate_and_import() {
    // Saved configurations are often one line; the syntax error sits far along it.
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><config>{}<hostname>h</hostnam></config>",
        "<x>y</x>".repeat(10_000)
    );
    let dir = repo_with(&[("a.xml", &xml)]);
    let out = strata(dir.path(), &["validate", "a.xml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.xml:1:"));
    let out = strata(
        dir.path(),
        &["import-xml", "a.xml", "--new-cluster", "c", "--repo", "new"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
}

#[test]
fn a_long_value_in_a_refused_section_renders() {
    // What the agent renders for a refusal: the section's canonical text, one long line.
    let text = format!(
        "cluster \"c\" {{\n    dns {{\n        server \"{}\" priority=0\n    }}\n}}\ngroup \"Main_Group\"\n",
        "x".repeat(70_000)
    );
    let dir = repo_with(&[("r.kdl", &text)]);
    let out = strata(dir.path(), &["validate", "r.kdl"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    // The message quotes the value whole; the snippet shows a window of its line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let snippet = stderr.lines().find(|l| l.contains("server \"")).unwrap();
    assert!(snippet.len() < 600, "{} bytes", snippet.len());
    assert!(stderr.contains("r.kdl:3:16]"), "{stderr}");
}

#[test]
fn many_problems_render_in_one_run() {
    // 5,000 bad top-level lines: quadratic rendering made 40,000 take 81 s.
    let text = "bogus \"x\" a=1\n".repeat(5_000);
    let dir = repo_with(&[("r.kdl", &text)]);
    let out = strata(dir.path(), &["validate", "r.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("strata::repo::unknown-node").count(), 5_000);
    assert!(stderr.contains("[r.kdl:5000:1]"));
}
