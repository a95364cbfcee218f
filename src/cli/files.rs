//! Writing a set of repo files from the commands that edit a repo (`copy`/`move`/
//! `delete`, `import-xml`): [`crate::atomic_file::write_set`], with its failures told
//! the way a user needs them (was anything changed, and what to do).

use std::path::Path;

pub use crate::atomic_file::NewFile;
use crate::atomic_file::{SetError, write_set};

use super::{CliError, Failure};

/// Writes every file, or none if anything fails before the renames begin.
pub fn write_all(dir: &Path, files: &[NewFile]) -> Result<(), CliError> {
    write_set(dir, files).map_err(|e| match e {
        SetError::Unchanged(e) => Failure::new(format!("cannot write {e}"), "no file was changed"),
        SetError::ChangedMeanwhile(_) => {
            Failure::new(e.to_string(), "no file was changed; run the command again")
        }
        SetError::Partial { ref written, .. } => {
            let help = if written.is_empty() {
                "no file was changed".to_owned()
            } else {
                let done: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "already written: {}; `git diff` shows the partial change",
                    done.join(", ")
                )
            };
            Failure::new(e.to_string(), help)
        }
    })
}
