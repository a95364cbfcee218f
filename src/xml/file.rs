//! The one place an XML file is read from disk, for every command that takes one
//! (`validate`, `import-xml`): the size cap is checked before reading, the bytes are
//! decoded as the file's declaration says ([`super::encoding`]), and the text is then
//! parsed only through the hardened [`super::reader`] (by [`super::cluster::load`]).

use std::path::Path;
use std::sync::Arc;

use super::MAX_FILE_BYTES;
use crate::config::SourceFile;
use crate::config::sources::ReadError;

/// Reads the XML file at `path`, shown in messages as `path` is written: refused before
/// reading when larger than [`MAX_FILE_BYTES`], decoded as ISO-8859-1 or UTF-8 as its
/// declaration says.
pub fn read(path: &Path) -> Result<Arc<SourceFile>, ReadError> {
    let shown = path.display().to_string();
    let fail = |cause: std::io::Error| ReadError {
        path: shown.clone(),
        cause,
    };
    let invalid = |msg: String| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    let len = std::fs::metadata(path).map_err(fail)?.len();
    if len > MAX_FILE_BYTES as u64 {
        return Err(invalid(format!(
            "the file is {len} bytes, more than the {MAX_FILE_BYTES} bytes Strata reads"
        )));
    }
    let bytes = std::fs::read(path).map_err(fail)?;
    let text = super::decode_bytes(&bytes).map_err(invalid)?;
    Ok(SourceFile::new(shown.clone(), text))
}
