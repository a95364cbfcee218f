//! The layout of `src/` as `src/lib.rs`'s `# Layout` and docs/architecture.md describe it: every
//! room (top-level module) on its floor, importing only rooms on lower floors, and both
//! documents listing exactly the rooms the tree has. Read from the source text, so a
//! `use` that runs back up fails here before a reviewer has to find it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The floors, lowest first: a room may import the rooms of lower floors only.
const FLOORS: &[&[&str]] = &[
    &["model", "paths", "text"],
    &["config", "freeze", "drift_ignore", "atomic_file"],
    &["state", "schema"],
    &["replica", "resolve", "rollout"],
    &["plan", "report", "xml"],
    &["secret"],
    &["validate", "protocol"],
    &["edit", "source"],
    &["cluster"],
    &["agent"],
    &["web"],
    &["cli"],
];

fn floor_of(room: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&room))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rooms of `src/`: its folders and files, `lib.rs` and `main.rs` aside.
fn rooms() -> Vec<String> {
    let mut rooms: Vec<String> = std::fs::read_dir(root().join("src"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let room = name.strip_suffix(".rs").unwrap_or(&name).to_owned();
            (room != "lib" && room != "main").then_some(room)
        })
        .collect();
    rooms.sort();
    rooms
}

fn sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            sources(&e.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The rooms a file's code names (`crate::ROOM`), outside comments and tests.
fn imports(file: &Path) -> Vec<(String, usize)> {
    let name = file.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let room: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((room, n + 1));
        }
    }
    found
}

#[test]
fn every_room_imports_only_rooms_below_it() {
    let mut wrong = Vec::new();
    for room in rooms() {
        let Some(floor) = floor_of(&room) else {
            wrong.push(format!("src/{room} is on no floor of this test's FLOORS"));
            continue;
        };
        let mut files = Vec::new();
        let dir = root().join("src").join(&room);
        sources(
            &if dir.is_dir() {
                dir
            } else {
                root().join("src").join(format!("{room}.rs"))
            },
            &mut files,
        );
        for file in files {
            for (other, line) in imports(&file) {
                if other == room {
                    continue;
                }
                match floor_of(&other) {
                    Some(f) if f < floor => {}
                    _ => wrong.push(format!(
                        "{}:{line}: {room} imports {other}, which is not below it",
                        file.strip_prefix(root()).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The rooms a layout list names: lines `- [`room`]…` or `- `room/`…`.
fn listed(text: &str, section: &str) -> BTreeMap<String, String> {
    let start = text.find(section).unwrap_or_else(|| panic!("no {section}"));
    let mut rooms = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text[start..].lines().skip(1) {
        let line = line.trim_start_matches("//!").trim();
        if line.starts_with('#') {
            break;
        }
        if let Some(item) = line.strip_prefix("- ") {
            let name: String = item
                .trim_start_matches(['[', '`'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rooms.insert(name.clone(), item.to_owned());
            last = Some(name);
        } else if line.is_empty() {
            last = None;
        } else if let Some(item) = last.as_ref().and_then(|n| rooms.get_mut(n)) {
            // A list item wrapped onto the next lines.
            item.push(' ');
            item.push_str(line);
        }
    }
    rooms
}

#[test]
fn the_layout_docs_list_exactly_the_rooms_of_the_tree() {
    let tree: Vec<String> = rooms();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let architecture = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    for (doc, list) in [
        ("src/lib.rs", listed(&lib, "# Layout")),
        ("docs/architecture.md", listed(&architecture, "## Layout")),
    ] {
        let names: Vec<String> = list.keys().cloned().collect();
        assert_eq!(
            names, tree,
            "{doc}'s layout lists other rooms than src/ has"
        );
        for (room, line) in &list {
            assert!(
                ["may not import", "imports nothing", "top floor"]
                    .iter()
                    .any(|w| line.to_lowercase().contains(w)),
                "{doc}: the line of {room} does not say what it may not import: {line}"
            );
        }
    }
}
