//! Giving freed memory back to the system. glibc's allocator keeps what a burst freed —
//! a fleet's apply decodes some 7,500 typed writes, a plan's answer is thousands of
//! entries — on its free lists, so an agent that peaked stays resident at that peak long
//! after the memory is free (49 MB after the fleet's apply, 28 MB once trimmed). After
//! each burst, once the agent has been quiet for [`QUIET`], it asks glibc for the free
//! pages back (`malloc_trim`). Elsewhere (musl, macOS) it does nothing: those allocators
//! return memory themselves or have no such call.
//!
//! A burst is a request answered, a change set stored, or a connection ended — hostile
//! connections that never log in free what they held too (russh's buffers, half-read
//! packets), and nothing else would trim after them. Before any thread starts, [`tune`]
//! caps glibc's arenas (one per thread that allocates, by default up to 8 per core, each
//! keeping its own high-water mark) and fixes the size above which a block is mapped on
//! its own (glibc otherwise raises it to the largest block freed, up to 32 MiB, so a big
//! answer's buffers land on the heap next time and stay resident).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long after the last request or change set the trim waits: one burst, one trim.
pub const QUIET: Duration = Duration::from_millis(500);

/// Trims after bursts: told of each burst ([`Releaser::soon`]), it calls its release
/// function once things have been quiet for its quiet time.
pub struct Releaser {
    burst: Notify,
    trims: AtomicU64,
}

impl Releaser {
    /// A releaser nobody has told of a burst yet.
    pub const fn new() -> Releaser {
        Releaser {
            burst: Notify::const_new(),
            trims: AtomicU64::new(0),
        }
    }

    /// Notes that a burst of work may have freed memory. Cheap, and needs no runtime.
    pub fn soon(&self) {
        self.burst.notify_one();
    }

    /// How many times it has released so far.
    pub fn trims(&self) -> u64 {
        self.trims.load(Ordering::Relaxed)
    }

    /// Runs until the runtime stops: after each burst, once no new one came for `quiet`,
    /// calls `release` (off the runtime).
    pub async fn run(&'static self, quiet: Duration, release: fn() -> bool) {
        loop {
            self.burst.notified().await;
            loop {
                tokio::select! {
                    () = self.burst.notified() => {}
                    () = tokio::time::sleep(quiet) => break,
                }
            }
            let _ = tokio::task::spawn_blocking(release).await;
            self.trims.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for Releaser {
    fn default() -> Self {
        Releaser::new()
    }
}

/// The agent's releaser.
static AGENT: Releaser = Releaser::new();

/// Notes that a burst of work may have freed memory (a request answered, a change set
/// stored); the agent's releaser trims once things are quiet.
pub fn release_soon() {
    AGENT.soon();
}

/// Trims once things are quiet after it is dropped: held by each connection, whatever
/// ends it.
pub struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        release_soon();
    }
}

/// glibc's arenas: the main one and one more, shared by every other thread.
pub const ARENAS: i32 = 2;

/// Blocks from this size up are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets glibc's allocator up for a long-lived daemon (see the module header); call before
/// any other thread starts. True when glibc took both settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() -> bool {
    // SAFETY: `mallopt` takes no pointers; called before other threads allocate, and glibc
    // locks the allocator while it changes a setting anyway.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    }
}

/// Sets the allocator up for a long-lived daemon (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() -> bool {
    false
}

/// Starts the agent's releaser on the current tokio runtime.
pub fn spawn_releaser() {
    tokio::spawn(AGENT.run(QUIET, release));
}

/// Asks the allocator to return its free pages to the system now; true when it did.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release() -> bool {
    // SAFETY: `malloc_trim` takes no pointers and has no caller-side invariants; glibc
    // locks each arena while it walks it, serialised with every other allocator call.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Asks the allocator to return its free pages to the system now (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    static RELEASED: AtomicU64 = AtomicU64::new(0);

    fn counted() -> bool {
        RELEASED.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Waits (up to a bound far above the quiet time) until `r` has trimmed `n` times.
    async fn trimmed(r: &Releaser, n: u64) {
        for _ in 0..500 {
            if r.trims() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} trims, not {n}", r.trims());
    }

    #[tokio::test]
    async fn each_burst_is_followed_by_one_release() {
        static R: Releaser = Releaser::new();
        tokio::spawn(R.run(Duration::from_millis(20), counted));
        assert_eq!(R.trims(), 0, "nothing before a burst");
        R.soon();
        R.soon();
        trimmed(&R, 1).await;
        R.soon();
        trimmed(&R, 2).await;
        assert_eq!(RELEASED.load(Ordering::Relaxed), R.trims());
    }

    #[test]
    fn glibc_takes_the_daemon_settings() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(tune());
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        assert!(!tune());
    }

    #[test]
    fn freed_memory_goes_back_after_a_burst() {
        // Many small blocks, then all freed: glibc keeps them; a trim returns them.
        let blocks: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 100]).collect();
        drop(blocks);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(release(), "glibc had free pages to return");
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        assert!(!release());
    }
}
