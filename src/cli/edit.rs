//! `strata copy`, `strata move` and `strata delete`.

use super::args::{CopyArgs, DeleteArgs};
use super::output::Output;
use super::{CliError, Failure, Outcome};

/// Runs `strata copy`.
pub fn copy(_args: CopyArgs, _out: &Output) -> Result<Outcome, CliError> {
    Err(Failure::new("copy is not built yet", "see issue 2"))
}

/// Runs `strata move`.
pub fn move_(_args: CopyArgs, _out: &Output) -> Result<Outcome, CliError> {
    Err(Failure::new("move is not built yet", "see issue 2"))
}

/// Runs `strata delete`.
pub fn delete(_args: DeleteArgs, _out: &Output) -> Result<Outcome, CliError> {
    Err(Failure::new("delete is not built yet", "see issue 2"))
}
