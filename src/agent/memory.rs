//! Giving freed memory back to the system. glibc's allocator keeps what a burst freed —
//! a fleet's apply decodes some 7,500 typed writes, a plan's answer is thousands of
//! entries — on its free lists, so an agent that peaked stays resident at that peak long
//! after the memory is free (49 MB after the fleet's apply, 28 MB once trimmed). After
//! each burst, once the agent has been quiet for [`QUIET`], it asks glibc for the free
//! pages back (`malloc_trim`). Elsewhere (musl, macOS) it does nothing: those allocators
//! return memory themselves or have no such call.

use std::time::Duration;

use tokio::sync::Notify;

/// How long after the last request or change set the trim waits: one burst, one trim.
pub const QUIET: Duration = Duration::from_millis(500);

static BURST: Notify = Notify::const_new();

/// Notes that a burst of work may have freed memory (a request answered, a change set
/// stored); the releaser trims once things are quiet. Cheap, and needs no runtime.
pub fn release_soon() {
    BURST.notify_one();
}

/// Starts the releaser on the current tokio runtime.
pub fn spawn_releaser() {
    tokio::spawn(async {
        loop {
            BURST.notified().await;
            // Coalesce: wait until no new burst came for QUIET.
            loop {
                tokio::select! {
                    () = BURST.notified() => {}
                    () = tokio::time::sleep(QUIET) => break,
                }
            }
            let _ = tokio::task::spawn_blocking(release).await;
        }
    });
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
