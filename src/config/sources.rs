//! Finding and reading the files of a config repo from disk. Files other than KDL (AsyncOS
//! XML) are only listed: the caller reads them (with the XML module's file reader), so that this
//! module knows no XML.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SourceFile;

/// The files found under a repo or among paths given on the command line.
#[derive(Debug, Default)]
pub struct Sources {
    /// Configuration KDL files.
    pub kdl: Vec<Arc<SourceFile>>,
    /// Section schemas from the repo's own `schemas/` directory.
    pub schemas: Vec<Arc<SourceFile>>,
    /// Other files given explicitly (AsyncOS XML, for instance), not read.
    pub other: Vec<PathBuf>,
}

/// An I/O failure, with the path it happened on.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read {path}: {cause}")]
#[diagnostic(code(strata::io), help("check that the path exists and is readable"))]
pub struct ReadError {
    /// The path.
    pub path: String,
    /// The underlying error.
    pub cause: io::Error,
}

fn read(path: &Path, shown: String) -> Result<Arc<SourceFile>, ReadError> {
    let text = fs::read_to_string(path).map_err(|cause| ReadError {
        path: shown.clone(),
        cause,
    })?;
    Ok(SourceFile::new(shown, text))
}

/// Reads a repo directory or a list of files and directories. Directories are walked
/// recursively in path order, skipping hidden entries; `schemas/` at a directory's top
/// holds section schemas.
pub fn read_paths(paths: &[PathBuf]) -> Result<Sources, ReadError> {
    let mut out = Sources::default();
    for path in paths {
        let meta = fs::metadata(path).map_err(|cause| ReadError {
            path: path.display().to_string(),
            cause,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, path, &mut files).map_err(|cause| ReadError {
                path: path.display().to_string(),
                cause,
            })?;
            files.sort();
            for rel in files {
                let shown = shown_name(path, &rel, paths.len() > 1);
                let file = read(&path.join(&rel), shown)?;
                if rel.starts_with("schemas") {
                    out.schemas.push(file);
                } else {
                    out.kdl.push(file);
                }
            }
        } else if path.extension().is_some_and(|e| e == "kdl") {
            out.kdl.push(read(path, path.display().to_string())?);
        } else {
            out.other.push(path.clone());
        }
    }
    Ok(out)
}

fn shown_name(root: &Path, rel: &Path, several: bool) -> String {
    if several {
        root.join(rel).display().to_string()
    } else {
        rel.display().to_string()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "kdl") {
            // Paths under the root are always relative to it.
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}
