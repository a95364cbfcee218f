//! The schemas compiled into the binary from the source tree's `schemas/` directory.

use std::sync::{Arc, OnceLock};

use crate::config::SourceFile;

/// (file name, contents) of every built-in schema file. Add new files here.
const BUILTIN: &[(&str, &str)] = &[
    ("dns.kdl", include_str!("../../schemas/dns.kdl")),
    ("interfaces.kdl", include_str!("../../schemas/interfaces.kdl")),
    ("listeners.kdl", include_str!("../../schemas/listeners.kdl")),
    ("text-resources.kdl", include_str!("../../schemas/text-resources.kdl")),
];

/// The built-in schema files, read once.
pub fn files() -> &'static [Arc<SourceFile>] {
    static FILES: OnceLock<Vec<Arc<SourceFile>>> = OnceLock::new();
    FILES.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|(name, text)| SourceFile::new(format!("<builtin>/schemas/{name}"), *text))
            .collect()
    })
}
