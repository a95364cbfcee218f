//! The pack exchange between members, both sides: a member answers [`Query::GitPack`]
//! with one chunk of a pack of what a commit reaches minus what the asker holds
//! ([`answer`], packs kept for the next chunks in [`Packs`]), and the asker writes the
//! chunks into its object database and checks the commit is whole ([`fetch_from`]). The
//! keeper that decides what to fetch, and from whom, is [`super::git_fetch`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use crate::agent::Agent;
use crate::agent::git_serve;
use crate::protocol::wire::{Answer, Query};
use crate::source::pack::{self, short};

/// The most pack bytes one answer carries.
pub const CHUNK: usize = 1 << 20;

/// The largest pack a member builds for a peer (what a config repo's whole history
/// comes to is far less; see [`super::git_fetch`] for what happens past it).
pub const MAX_PACK: usize = 32 << 20;

/// How long a pack built for a peer is kept for its next chunks.
pub const KEEP_BUILT: Duration = Duration::from_secs(60);

/// How many built packs are kept at once (askers with different tips).
const BUILT_KEPT: usize = 4;

/// The wait for the first chunk (the peer builds the pack) and for each next one.
const FIRST_CHUNK_WITHIN: Duration = Duration::from_secs(20);
const NEXT_CHUNK_WITHIN: Duration = Duration::from_secs(10);

/// How many times a pack may change under one transfer before the peer is given up.
const RESTARTS: u32 = 3;

/// A pack built for peers.
struct Built {
    commit: Oid,
    /// The asker's tips, sorted.
    have: Vec<Oid>,
    bytes: Vec<u8>,
    /// Its checksum (last 20 bytes), hex.
    id: String,
}

/// Packs built for peers, with when each was last used.
#[derive(Default)]
pub struct Packs(Mutex<Vec<(Instant, Arc<Built>)>>);

impl Packs {
    /// The pack for an asker with tips `have`, built with `build` unless a pack for the
    /// same commit and tips is kept.
    fn built(
        &self,
        commit: Oid,
        have: &[Oid],
        build: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Arc<Built>, String> {
        let mut have = have.to_vec();
        have.sort();
        // Held while building: a second asker of the same pack waits for it rather than
        // building it twice.
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(used, _)| used.elapsed() < KEEP_BUILT);
        if let Some((used, b)) = kept
            .iter_mut()
            .find(|(_, b)| b.commit == commit && b.have == have)
        {
            *used = Instant::now();
            return Ok(b.clone());
        }
        let bytes = build()?;
        let id = hex::encode(&bytes[bytes.len().saturating_sub(20)..]);
        let b = Arc::new(Built {
            commit,
            have,
            bytes,
            id,
        });
        kept.push((Instant::now(), b.clone()));
        if kept.len() > BUILT_KEPT {
            kept.remove(0);
        }
        Ok(b)
    }
}

/// This member's answer to [`Query::GitPack`]: one chunk of the pack. Blocking.
pub fn answer(agent: &Agent, commit: &str, have: &[String], offset: u64) -> Answer {
    let failed = |message: String| Answer::Failed { message };
    let Ok(oid) = Oid::from_str(commit) else {
        return failed(format!(
            "`{}` is not a commit id",
            commit.chars().take(40).collect::<String>()
        ));
    };
    let have: Vec<Oid> = have
        .iter()
        .take(64)
        .filter_map(|h| Oid::from_str(h).ok())
        .collect();
    let build = || {
        let dir = git_serve::path(agent);
        let repo = Repository::open_bare(&dir)
            .map_err(|_| format!("commit {} is not here (no config repo yet)", short(&oid)))?;
        pack::pack_of(&repo, oid, &have, MAX_PACK)
    };
    let built = match agent.git.packs.built(oid, &have, build) {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let total = built.bytes.len();
    let Some(start) = usize::try_from(offset).ok().filter(|s| *s <= total) else {
        return failed(format!("byte {offset} is past the pack's {total}"));
    };
    let end = (start + CHUNK).min(total);
    Answer::GitPack {
        pack: built.id.clone(),
        total: total as u64,
        offset,
        data: hex::encode(&built.bytes[start..end]),
    }
}

/// Why a fetch from one peer failed.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// It could not send the pack (it does not hold the commit, it did not answer in
    /// time, the pack is too large): ask it again later.
    Failed(String),
    /// What it sent is wrong (does not index, lacks objects of the commit, breaks the
    /// exchange): it is not asked again for
    /// [`DISTRUST`](super::git_fetch::DISTRUST).
    Untrusted(String),
}

/// Fetches `commit` into `repo` from one peer, which `ask` puts questions to (with how
/// long to wait), saying it holds the commits of `have` whole: the pack, chunk by
/// chunk, into the object database's pack writer; then checks that the commit is
/// complete. Blocking.
pub fn fetch_from(
    repo: &Repository,
    commit: Oid,
    have: &[Oid],
    mut ask: impl FnMut(Query, Duration) -> Option<Answer>,
) -> Result<(), FetchError> {
    use std::io::Write;
    let untrusted = |why: String| FetchError::Untrusted(why);
    let local = |e: git2::Error| FetchError::Failed(format!("this repository: {}", e.message()));
    let odb = repo.odb().map_err(local)?;
    let have_hex: Vec<String> = have.iter().map(Oid::to_string).collect();
    let mut restarts = 0;
    'pack: loop {
        let mut writer = odb.packwriter().map_err(local)?;
        let mut offset: u64 = 0;
        let mut id: Option<String> = None;
        loop {
            let query = Query::GitPack {
                commit: commit.to_string(),
                have: have_hex.clone(),
                offset,
            };
            let within = if offset == 0 {
                FIRST_CHUNK_WITHIN
            } else {
                NEXT_CHUNK_WITHIN
            };
            let (pack, total, at, data) = match ask(query, within) {
                None => {
                    return Err(FetchError::Failed(format!("no answer within {within:?}")));
                }
                Some(Answer::Failed { message }) => return Err(FetchError::Failed(message)),
                Some(Answer::GitPack {
                    pack,
                    total,
                    offset,
                    data,
                }) => (pack, total, offset, data),
                Some(_) => return Err(untrusted("it answered another question".into())),
            };
            if total > MAX_PACK as u64 {
                return Err(untrusted(format!(
                    "it announced a pack of {total} bytes, more than the {MAX_PACK} a member sends"
                )));
            }
            if at != offset {
                return Err(untrusted(format!(
                    "it sent byte {at} when {offset} was asked"
                )));
            }
            if id.get_or_insert_with(|| pack.clone()) != &pack {
                // Rebuilt in between (its repository moved on): start again.
                restarts += 1;
                if restarts > RESTARTS {
                    return Err(FetchError::Failed(format!(
                        "its pack changed {RESTARTS} times while being sent"
                    )));
                }
                continue 'pack;
            }
            let bytes =
                hex::decode(&data).map_err(|e| untrusted(format!("its chunk is not hex: {e}")))?;
            let end = offset + bytes.len() as u64;
            if end > total || (bytes.is_empty() && offset < total) {
                return Err(untrusted(format!(
                    "it sent bytes {offset}..{end} of a {total}-byte pack"
                )));
            }
            writer
                .write_all(&bytes)
                .map_err(|e| untrusted(format!("its pack does not index: {e}")))?;
            offset = end;
            if offset == total {
                break;
            }
        }
        writer
            .commit()
            .map_err(|e| untrusted(format!("its pack does not index: {}", e.message())))?;
        break;
    }
    match pack::missing(repo, commit, have) {
        None => Ok(()),
        Some(why) => Err(untrusted(format!("its pack is incomplete: {why}"))),
    }
}
