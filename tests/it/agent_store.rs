//! The store against a real agent: an emptied or missing store of a member, and a
//! damaged one, are refused at start rather than silently made new or served, and are
//! repaired from a peer (`cluster repair`); a full disk degrades a member, which catches
//! up by itself once space is back.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata::agent::member_record::{MemberRecord, Recorded};

use crate::agent_support::{created, p, sd, stderr, stdout, strata};
use crate::cluster_support::{
    SETTLE, apply, check, clean, cluster, dns, live, logged_ids, ok, running, write_repo,
};
use crate::mesh_support::wait_until;

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

/// `strata cluster repair` of machine `i` from machine `from` (its real address, pinned).
fn repair(h: &crate::mesh_support::MeshHarness, i: usize, from: usize) -> std::process::Output {
    repair_with(h, i, from, &[])
}

/// [`repair`] with `extra` arguments.
fn repair_with(
    h: &crate::mesh_support::MeshHarness,
    i: usize,
    from: usize,
    extra: &[&str],
) -> std::process::Output {
    let member = h.machine(from);
    let (addr, fingerprint, dir) = (
        member.agent_addr().to_string(),
        member.fingerprint(),
        p(&h.machine(i).dir),
    );
    let args = [
        "cluster",
        "repair",
        &addr,
        "--fingerprint",
        &fingerprint,
        "--state-dir",
        &dir,
    ];
    strata(&[&args[..], extra].concat())
}

/// Sorted, so that stores that hold the same change sets in another order compare equal.
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[test]
fn a_member_whose_store_was_damaged_or_emptied_is_repaired_from_a_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");
    write_repo(&repo, 3, &dns("10.0.0.54"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    clean(&h, 1);
    let entries = live(&h, 2);
    let ids = sorted(logged_ids(&h, 2));
    let fingerprint = h.machine(2).fingerprint();
    let dir = h.machine(2).dir.clone();

    // Not while its agent runs.
    let running_agent = repair(&h, 2, 1);
    assert_eq!(
        running_agent.status.code(),
        Some(1),
        "{}",
        stderr(&running_agent)
    );
    assert!(
        stderr(&running_agent).contains("an agent is running on"),
        "{}",
        stderr(&running_agent)
    );

    // Damaged: refused at start, with the repair named; repaired from lab1.
    assert!(h.terminate(2).success());
    damage(&dir.join("store.redb"), br#""name":"americas""#, 100);
    let refused = refused_start(&dir);
    assert!(
        refused.contains("strata cluster repair MEMBER"),
        "{refused}"
    );
    let out = repair(&h, 2, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    let pattern = crate::support::regex_escape(&tmp.path().display().to_string());
    insta::with_settings!({ filters => vec![
        (pattern.as_str(), "[TEMP]"),
        (r"damaged-\d+", "damaged-[SECONDS]"),
        (r"\d+ change sets, \d+ entries", "[N] change sets, [M] entries"),
    ] }, {
        insta::assert_snapshot!("repaired_store", stdout(&out));
    });
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.redb.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the damaged store is kept");
    h.restart(2);
    clean(&h, 1);
    assert_eq!(h.machine(2).fingerprint(), fingerprint, "the same host key");
    assert_eq!(live(&h, 2), entries, "the same entries, versions included");
    assert_eq!(sorted(logged_ids(&h, 2)), ids);
    // It commits again as itself: its clock is past its own earlier change sets.
    write_repo(&repo, 3, &dns("10.0.0.55"));
    ok(&apply(&h, 2, &repo, &["--wait", "30"]));
    assert!(running(&h, 3, "dns").contains("10.0.0.55"));

    // Emptied (`truncate -s 0`): repaired from lab2, which was repaired itself.
    let entries = live(&h, 3);
    assert!(h.terminate(3).success());
    std::fs::File::create(h.machine(3).dir.join("store.redb")).unwrap();
    let out = repair_with(&h, 3, 2, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = crate::json_schemas::matching_schema("cluster-repair", &out);
    assert_eq!(doc["kept"], serde_json::Value::Null, "{doc}");
    assert_eq!(doc["member"], h.machine(2).name.as_str());
    h.restart(3);
    clean(&h, 3);
    assert_eq!(live(&h, 3), entries);

    // A machine the cluster does not count as a member cannot take a copy.
    assert!(h.terminate(3).success());
    let stranger = tmp.path().join("stranger");
    let mut agent = created(&stranger);
    assert!(agent.terminate().success());
    let member = h.machine(1);
    let out = strata(&[
        "cluster",
        "repair",
        &member.agent_addr().to_string(),
        "--fingerprint",
        &member.fingerprint(),
        "--state-dir",
        &p(&stranger),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not count lab1.example.com as a member"),
        "{}",
        stderr(&out)
    );
}

/// A small tmpfs mounted on a directory for one test (mode 0700, as a state dir must
/// be); unmounted when dropped.
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts `size` (as mount's `size=` takes it) on `at`; `None`, said on stderr, where
    /// the test cannot mount (not root, or no mount command).
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk {
                at: at.to_path_buf(),
            }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here: {}",
                    stderr(&out).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    /// Writes a file until the disk is full; returns it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }

    fn free_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["-k", "--output=avail"])
            .arg(&self.at)
            .output();
        out.ok()
            .and_then(|o| {
                stdout(&o)
                    .lines()
                    .nth(1)
                    .and_then(|l| l.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

#[test]
fn a_full_disk_degrades_a_member_which_catches_up_by_itself_once_space_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    // lab1's state dir is a small disk of its own.
    let Some(disk) = SmallDisk::mount(&tmp.path().join("lab1"), "2m") else {
        return;
    };
    let h = cluster(tmp.path(), 2);
    let repo = tmp.path().join("repo");
    eprintln!("free on lab1's disk once formed: {} KiB", disk.free_kib());
    let filler = disk.fill();

    // A change made on lab2 cannot be written on lab1.
    write_repo(&repo, 2, &dns("10.0.0.54"));
    ok(&apply(&h, 2, &repo, &[]));
    let degraded = wait_until(SETTLE, "lab2 sees lab1 Degraded", || {
        let (code, text) = check(&h, 2, &[]);
        if code == Some(2)
            && text
                .contains("Checking lab1.example.com... Degraded: it cannot write its store since")
        {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(degraded.contains("No space left on device"), "{degraded}");
    let list = ok(&h.strata(2, &["cluster", "list"]));
    assert!(
        list.contains("lab1.example.com")
            && list.contains("Degraded: cannot write its store since"),
        "{list}"
    );
    let status = h.strata(1, &["status"]);
    assert!(
        stdout(&status).contains("health:        Degraded"),
        "{}{}",
        stdout(&status),
        stderr(&status)
    );
    assert!(
        stdout(&status).contains("the store cannot be written since"),
        "{}",
        stdout(&status)
    );
    // A change through lab1 is refused, not acknowledged.
    write_repo(&repo, 2, &dns("10.0.0.55"));
    let refused = apply(&h, 1, &repo, &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("No space left on device"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("nothing was written"),
        "{}",
        stderr(&refused)
    );
    assert!(running(&h, 1, "dns").contains("10.0.0.53"));

    // Space is back: lab1 catches up with no restart, and is Healthy again.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    wait_until(SETTLE, "lab1 runs lab2's change", || {
        let dns = running(&h, 1, "dns");
        if dns.contains("10.0.0.54") {
            Ok(())
        } else {
            Err(dns)
        }
    });
    eprintln!("lab1 caught up {:?} after space was freed", freed.elapsed());
    clean(&h, 2);
    let status = h.strata(1, &["status"]);
    assert!(
        stdout(&status).contains("health:        Healthy"),
        "{}",
        stdout(&status)
    );
    ok(&apply(&h, 1, &repo, &[]));
    wait_until(SETTLE, "lab2 runs lab1's change", || {
        let dns = running(&h, 2, "dns");
        if dns.contains("10.0.0.55") {
            Ok(())
        } else {
            Err(dns)
        }
    });
}
