//! The state dir's record of membership (`member.kdl`), kept outside the store: the
//! cluster this machine created or joined.
//!
//! Without it, an agent whose store was lost or emptied (a truncated file, a disk image
//! restored without it) comes up as a new standalone machine and rewrites its running
//! config to factory defaults. With it, the agent refuses to start on an empty store
//! and says how to recover ([`super::AgentError::StoreLost`]).
//!
//! The store is the truth and the record follows it: after every change the node
//! reports the cluster its store names, and the record is written (atomically, through
//! [`crate::atomic_file`]) when that differs from what it says, and removed when the
//! store names none (the machine left, and kept its config as standalone settings). A
//! crash between a commit and this update is mended at the next start, which runs the
//! same update. Only on an empty store is the record believed over it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::state_dir::{StateDirError, sync_dir, write_atomic};

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// This machine is a member of the cluster of this name.
    Member(String),
    /// The file is there but does not say which cluster (edited, or half of a foreign
    /// file): it still says this machine was a member.
    Unreadable(String),
}

/// `member.kdl` in a state dir.
#[derive(Debug)]
pub struct MemberRecord {
    path: PathBuf,
    /// The cluster last written (`Some(None)`: known absent), so an unchanged membership
    /// costs no file write per commit.
    noted: Mutex<Option<Option<String>>>,
}

impl MemberRecord {
    /// The record at `path` (see [`super::state_dir::Layout::member`]).
    pub fn new(path: impl Into<PathBuf>) -> MemberRecord {
        MemberRecord {
            path: path.into(),
            noted: Mutex::new(None),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the record says; `None` when there is none.
    pub fn read(&self) -> Result<Option<Recorded>, StateDirError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateDirError::Io {
                    path: self.path.display().to_string(),
                    source,
                });
            }
        };
        Ok(Some(parse(&text)))
    }

    /// Brings the record in line with the store, which names `cluster` (`None`: no
    /// cluster). Written only when it changes.
    pub fn note(&self, cluster: Option<&str>) -> Result<(), StateDirError> {
        let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
        if noted.as_ref().is_some_and(|n| n.as_deref() == cluster) {
            return Ok(());
        }
        match cluster {
            Some(name) => write_atomic(&self.path, to_text(name).as_bytes(), true)?,
            None => match std::fs::remove_file(&self.path) {
                Ok(()) => sync_dir(self.path.parent().unwrap_or(Path::new(".")))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StateDirError::Io {
                        path: self.path.display().to_string(),
                        source,
                    });
                }
            },
        }
        *noted = Some(cluster.map(str::to_owned));
        Ok(())
    }
}

fn to_text(cluster: &str) -> String {
    format!(
        "// Written by the Strata agent: this machine is a member of this cluster.\n\
         // On an empty store the agent refuses to start while this file is here.\n\
         cluster {}\n",
        kdl::KdlValue::String(cluster.to_owned())
    )
}

fn parse(text: &str) -> Recorded {
    let unreadable = |why: &str| Recorded::Unreadable(why.to_owned());
    let doc: kdl::KdlDocument = match text.parse() {
        Ok(doc) => doc,
        Err(_) => return unreadable("it is not valid KDL"),
    };
    match doc
        .get("cluster")
        .and_then(|n| n.get(0))
        .and_then(|v| v.as_string())
    {
        Some(name) => Recorded::Member(name.to_owned()),
        None => unreadable("it names no cluster"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_follows_the_store_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let record = MemberRecord::new(dir.path().join("member.kdl"));
        assert_eq!(record.read().unwrap(), None);
        record.note(None).unwrap();
        assert_eq!(record.read().unwrap(), None);
        record.note(Some("americas \"east\"")).unwrap();
        assert_eq!(
            record.read().unwrap(),
            Some(Recorded::Member("americas \"east\"".into()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(record.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Left the cluster: the record goes.
        record.note(None).unwrap();
        assert_eq!(record.read().unwrap(), None);
    }

    #[test]
    fn a_mangled_record_still_says_member() {
        assert_eq!(
            parse("cluster \"a"),
            Recorded::Unreadable("it is not valid KDL".into())
        );
        assert_eq!(
            parse("// nothing\n"),
            Recorded::Unreadable("it names no cluster".into())
        );
        assert_eq!(parse(&to_text("x")), Recorded::Member("x".into()));
    }
}
