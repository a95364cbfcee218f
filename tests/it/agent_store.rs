//! The store against a real agent: an emptied or missing store of a member is refused at
//! start rather than silently made new.

use std::path::Path;

use strata::agent::member_record::{MemberRecord, Recorded};

use crate::agent_support::{created, p, sd, stderr, strata};

/// `strata agent` on `dir` that must refuse to start: its stderr.
fn refused_start(dir: &Path) -> String {
    let out = strata(&["agent", "--state-dir", &p(dir), "--listen", "127.0.0.1:0"]);
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
