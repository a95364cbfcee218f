//! The store against a real agent: an emptied or missing store of a member, and a
//! damaged one, are refused at start rather than silently made new or served.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata::agent::member_record::{MemberRecord, Recorded};

use crate::agent_support::{created, p, sd, stderr, strata};

/// `strata agent` on `dir` that must refuse to start: its stderr. One that starts
/// instead is stopped after a while, and the test fails.
fn refused_start(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["agent", "--state-dir", &p(dir), "--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the agent started: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dir.join("address").exists(), "it never listened");
    stderr(&out)
}

#[test]
fn a_member_whose_store_was_emptied_or_lost_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let mut agent = created(&dir);
    let record = MemberRecord::new(dir.join("member.kdl")).read().unwrap();
    assert_eq!(record, Some(Recorded::Member("americas".into())));
    let running = std::fs::read_to_string(dir.join("running/dns.kdl")).ok();
    assert!(agent.terminate().success());

    // `truncate -s 0 store.redb`.
    std::fs::File::create(dir.join("store.redb")).unwrap();
    let err = refused_start(&dir);
    crate::temp_snapshot!("emptied_store", &err, tmp.path());
    // Nothing was reset meanwhile.
    assert_eq!(
        std::fs::read_to_string(dir.join("running/dns.kdl")).ok(),
        running
    );
    // Gone altogether: the same refusal.
    std::fs::remove_file(dir.join("store.redb")).unwrap();
    assert!(refused_start(&dir).contains("says this machine is a member of cluster \"americas\""));

    // Removing the record is starting afresh on purpose: a standalone machine.
    std::fs::remove_file(dir.join("member.kdl")).unwrap();
    let agent = crate::agent_support::TestAgent::start(&dir, "lab1.example.com");
    let out = strata(&["cluster", "list", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.join("member.kdl").exists());
}

/// Flips `len` bytes at every place `needle` is in `path` (live records and the freed
/// copies of earlier versions alike).
fn damage(path: &Path, needle: &[u8], len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at: Vec<usize> = (0..bytes.len().saturating_sub(needle.len()))
        .filter(|&i| bytes[i..].starts_with(needle))
        .collect();
    assert!(!at.is_empty(), "nothing to damage");
    for i in at {
        let end = (i + len).min(bytes.len());
        bytes[i..end].iter_mut().for_each(|b| *b ^= 0xa5);
    }
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn a_damaged_store_is_refused_when_the_agent_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let mut agent = created(&dir);
    let running = std::fs::read_dir(dir.join("running")).unwrap().count();
    assert!(agent.terminate().success());
    damage(&dir.join("store.redb"), br#""name":"americas""#, 100);
    let err = refused_start(&dir);
    crate::temp_snapshot!("damaged_store", &err, tmp.path());
    assert_eq!(
        std::fs::read_dir(dir.join("running")).unwrap().count(),
        running
    );
}
