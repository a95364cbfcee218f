//! Repair from peers: a member whose store was lost or damaged is rebuilt from a peer's
//! copy of the cluster (`strata cluster repair`), keeping its identity.
//!
//! Every member holds every change set, and a store is what its change sets make (the
//! entries are derived, last writer wins): so one peer's change sets rebuild the whole
//! store. The repairing machine, with its agent stopped (it holds the state dir's lock),
//! logs in to the peer as a member with its own host key (so only a machine the cluster
//! still counts as a member may, and it comes back as itself); the peer answers with its
//! change sets and the digests of the entries they make, taken at one instant
//! ([`answer`]). The store is built beside the old one, its digests must equal the
//! peer's, and only then does it take the old one's place, which is kept as
//! `store.redb.damaged-SECONDS` ([`rebuild`]). The state dir's other files stay: host
//! key, local key, `agent.kdl` (machine name, serial), `member.kdl`. At start the agent
//! links to its peers and takes by anti-entropy whatever they committed since.

use std::path::{Path, PathBuf};

use super::Agent;
use super::member_record::{MemberRecord, Recorded};
use super::state_dir::{Layout, sync_dir};
use crate::cluster::membership::cluster_name;
use crate::model::MachineName;
use crate::plan::{Digests, digests_of};
use crate::protocol::Response;
use crate::state::{ChangeSet, DiskStore, Store};

/// On the peer: the cluster as change sets and digests, for `machine`, a member logged in
/// with its own host key.
pub fn answer(agent: &Agent, machine: &MachineName) -> Response {
    let core = agent.node.lock_core();
    let taken = core
        .store
        .change_sets()
        .and_then(|cs| Ok((cs, core.live()?)));
    drop(core);
    match taken {
        Ok((change_sets, live)) => {
            let Some(cluster) = cluster_name(&live) else {
                return Response::error(
                    format!("{} is in no cluster", agent.node.machine()),
                    Some("repair from a member of the cluster"),
                );
            };
            tracing::info!(%machine, change_sets = change_sets.len(), "sending a copy of the cluster to repair a store");
            Response::Replica {
                cluster,
                change_sets,
                digests: digests_of(&live),
            }
        }
        Err(e) => Response::error(
            format!("cannot read this machine's store: {e}"),
            Some("repair from another member"),
        ),
    }
}

/// What a repair did.
#[derive(Debug)]
pub struct Rebuilt {
    /// Change sets in the new store.
    pub change_sets: usize,
    /// Live entries they make (tombstones included).
    pub entries: usize,
    /// Where the old store was kept; `None`: it was empty or missing.
    pub kept: Option<PathBuf>,
}

/// Why a repair stopped; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The peer is in another cluster than the one `member.kdl` names.
    #[error(
        "{record} says this machine is a member of cluster \"{recorded}\", but the peer is in cluster \"{theirs}\""
    )]
    OtherCluster {
        /// The membership record.
        record: String,
        /// The cluster it names.
        recorded: String,
        /// The peer's.
        theirs: String,
    },
    /// The rebuilt store does not make the peer's entries.
    #[error(
        "the rebuilt store does not match the peer's: {differ} of {total} entries differ from its digests"
    )]
    Mismatch {
        /// Keys whose digests differ (either side).
        differ: usize,
        /// Keys the peer has.
        total: usize,
    },
    /// Reading or writing the state dir.
    #[error("{0}")]
    Io(String),
}

/// Rebuilds the store of the state dir `layout` from a peer's `change_sets`, checked
/// against its `digests`, and swaps it in. The caller holds the state dir's lock.
pub fn rebuild(
    layout: &Layout,
    cluster: &str,
    change_sets: Vec<ChangeSet>,
    digests: &Digests,
) -> Result<Rebuilt, RepairError> {
    let record = MemberRecord::new(layout.member());
    if let Some(Recorded::Member(recorded)) =
        record.read().map_err(|e| RepairError::Io(e.to_string()))?
        && recorded != cluster
    {
        return Err(RepairError::OtherCluster {
            record: record.path().display().to_string(),
            recorded,
            theirs: cluster.to_owned(),
        });
    }
    let store_path = layout.store();
    let fresh = layout.dir.join("store.redb.repair");
    let built = build(&fresh, change_sets, digests);
    let (change_sets, entries) = match built {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(&fresh);
            return Err(e);
        }
    };
    let io = |what: &str, p: &Path, e: std::io::Error| {
        RepairError::Io(format!("cannot {what} {}: {e}", p.display()))
    };
    let kept = match std::fs::metadata(&store_path) {
        Ok(m) if m.len() > 0 => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let kept = layout.dir.join(format!("store.redb.damaged-{secs}"));
            std::fs::rename(&store_path, &kept).map_err(|e| io("move aside", &store_path, e))?;
            Some(kept)
        }
        _ => None,
    };
    std::fs::rename(&fresh, &store_path).map_err(|e| io("put in place", &fresh, e))?;
    sync_dir(&layout.dir).map_err(|e| RepairError::Io(e.to_string()))?;
    Ok(Rebuilt {
        change_sets,
        entries,
        kept,
    })
}

/// Builds a store at `path` (0600, created afresh) from `change_sets` and checks that
/// its entries have `digests`; returns how many change sets and entries it holds.
fn build(
    path: &Path,
    change_sets: Vec<ChangeSet>,
    digests: &Digests,
) -> Result<(usize, usize), RepairError> {
    let io = |e: &dyn std::fmt::Display| RepairError::Io(format!("{}: {e}", path.display()));
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&e)),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map_err(|e| io(&e))?;
    let mut store = DiskStore::open(path).map_err(|e| io(&e))?;
    let count = change_sets.len();
    store.replace(change_sets).map_err(|e| io(&e))?;
    let live = store.live().map_err(|e| io(&e))?;
    let ours = digests_of(&live);
    if &ours != digests {
        let differ = ours
            .iter()
            .filter(|(k, d)| digests.get(*k) != Some(*d))
            .count()
            + digests.keys().filter(|k| !ours.contains_key(*k)).count();
        return Err(RepairError::Mismatch {
            differ,
            total: digests.len(),
        });
    }
    Ok((count, live.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Key;

    #[test]
    fn nothing_changes_unless_the_rebuilt_store_matches_the_peer_s_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path());
        std::fs::write(layout.store(), b"damaged").unwrap();
        let theirs: Digests = [(Key::Catalogue, None)].into_iter().collect();
        let err = rebuild(&layout, "americas", Vec::new(), &theirs).unwrap_err();
        assert!(
            matches!(
                err,
                RepairError::Mismatch {
                    differ: 1,
                    total: 1
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(layout.store()).unwrap(), b"damaged");
        assert!(!tmp.path().join("store.redb.repair").exists());

        // Another cluster than member.kdl's: refused.
        MemberRecord::new(layout.member())
            .note(Some("emea"))
            .unwrap();
        let err = rebuild(&layout, "americas", Vec::new(), &Digests::new()).unwrap_err();
        assert!(matches!(err, RepairError::OtherCluster { .. }), "{err}");
        assert_eq!(std::fs::read(layout.store()).unwrap(), b"damaged");

        // Matching: in place, private, the old one kept beside it.
        MemberRecord::new(layout.member())
            .note(Some("americas"))
            .unwrap();
        let rebuilt = rebuild(&layout, "americas", Vec::new(), &Digests::new()).unwrap();
        assert_eq!(std::fs::read(rebuilt.kept.unwrap()).unwrap(), b"damaged");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(layout.store())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(DiskStore::open(&layout.store()).is_ok());
    }
}
