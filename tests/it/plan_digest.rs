//! `strata plan` against a real agent fetches by digest: what the agent sends a plan is
//! the digests of its entries and the entries that differ, not every live entry. Counted
//! on the wire, by the tests' relay in front of the agent.

use std::path::Path;

use strata::protocol::{BlockingClient, ClientOptions, HostKeyPin, Login, Request, Response};

use crate::agent_support::{TestAgent, git_repo, host_key_fingerprint, stderr, strata};
use crate::fleet::{FleetSpec, write};
use crate::relay::{End, Relays};

/// The agent's machine: one of the fleet's, so applying the fleet keeps it a member.
const AGENT: &str = "m0000.fleet.example.com";

/// Runs `strata ARGS` against the agent through relay `relay`, as an operator on another
/// host would (pinned fingerprint, the state dir's key), and returns the output and the
/// bytes the agent sent.
fn via_relay(relays: &Relays, dir: &Path, args: &[&str]) -> (std::process::Output, u64) {
    let (relay, fp) = (relays.addr(1).to_string(), host_key_fingerprint(dir));
    let key = dir.join("local_key").display().to_string();
    let mut all = args.to_vec();
    all.extend(["--target", &relay, "--fingerprint", &fp]);
    all.extend(["--identity", &key, "--user", "admin"]);
    let before = relays.bytes(End::Machine(1), End::Outside);
    let out = strata(&all);
    (out, relays.bytes(End::Machine(1), End::Outside) - before)
}

/// Plans `git_ref` through the relay: its exit code, action count and the bytes the
/// agent sent.
fn plan(relays: &Relays, dir: &Path, repo: &str, git_ref: &str) -> (i32, usize, u64) {
    let (out, sent) = via_relay(
        relays,
        dir,
        &["plan", "--ref", git_ref, "--repo", repo, "--format", "json"],
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(matches!(code, 0 | 2), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (code, json["actions"].as_array().unwrap().len(), sent)
}

/// What the agent sends for one `Request::Live` session through the relay (login and
/// hello included, as a plan's are), and how many entries that holds.
fn whole_live(relays: &Relays, dir: &Path) -> (usize, u64) {
    let relay = relays.addr(1);
    let key = russh::keys::load_secret_key(dir.join("local_key"), None).unwrap();
    let before = relays.bytes(End::Machine(1), End::Outside);
    let mut client = BlockingClient::connect(ClientOptions::new(
        relay.ip().to_string(),
        relay.port(),
        HostKeyPin::Fingerprint(host_key_fingerprint(dir)),
        "admin",
        Login::Key(Box::new(key)),
    ))
    .unwrap();
    let Response::Live { entries, .. } = client.request(Request::Live).unwrap() else {
        panic!("the agent answers Live with its entries");
    };
    drop(client);
    // The client has the whole answer, so the relay has forwarded it; wait until its
    // count stops moving (it counts after each write).
    let mut last = u64::MAX;
    let sent = crate::mesh_support::wait_until(
        std::time::Duration::from_secs(30),
        "the relay's count to settle",
        || {
            let n = relays.bytes(End::Machine(1), End::Outside) - before;
            if n == last {
                Ok(n)
            } else {
                last = n;
                std::thread::sleep(std::time::Duration::from_millis(100));
                Err(format!("{n} bytes and counting"))
            }
        },
    );
    eprintln!(
        "Live: {} entries, {} bytes of JSON, {sent} bytes on the wire",
        entries.len(),
        serde_json::to_vec(&entries).unwrap().len()
    );
    (entries.len(), sent)
}

#[test]
fn a_plan_fetches_only_the_entries_whose_digests_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    write(
        &repo_dir,
        FleetSpec {
            machines: 100,
            groups: 5,
            seed: 1,
        },
    )
    .unwrap();
    let fleet = git_repo(&repo_dir, &[], "fleet");
    let repo = repo_dir.display().to_string();
    let dir = tmp.path().join("agent");
    let sd = dir.display().to_string();
    let agent = TestAgent::start(&dir, AGENT);
    let relays = Relays::new(1);
    relays.add(1, Some(agent.addr.parse().unwrap()));
    let created = strata(&["cluster", "create", "fleet", "--state-dir", &sd]);
    assert!(created.status.success(), "{}", stderr(&created));
    let applied = strata(&[
        "apply",
        "--yes",
        "--ref",
        &fleet,
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ]);
    assert!(applied.status.success(), "{}", stderr(&applied));

    let (entries, live_bytes) = whole_live(&relays, &dir);
    assert!(entries > 700, "{entries} entries");

    // Nothing changed: the agent sends digests only.
    // Both are packed on the wire (the entries' JSON shrinks ~18 times, the digests far
    // less), so the digests' win is smaller there than in JSON, but it is a win.
    let (code, actions, unchanged) = plan(&relays, &dir, &repo, &fleet);
    assert_eq!((code, actions), (0, 0));
    assert!(
        unchanged < live_bytes,
        "an unchanged plan got {unchanged} bytes, every live entry is {live_bytes}"
    );

    // Ten machines' default gateways change: ten more entries, and only those, are sent.
    for m in 0..10 {
        let p = repo_dir.join(format!("machines/m{m:04}.kdl"));
        let text = std::fs::read_to_string(&p).unwrap();
        let changed = text.replacen("default-gateway \"10.", "default-gateway \"172.", 1);
        assert_ne!(changed, text, "{} has a default gateway", p.display());
        std::fs::write(&p, changed).unwrap();
    }
    let changed_ref = git_repo(&repo_dir, &[], "ten gateways");
    let (code, actions, changed) = plan(&relays, &dir, &repo, &changed_ref);
    assert_eq!((code, actions), (2, 10));
    // One default-gateway entry with its stamp is a few hundred bytes of JSON. Answers of
    // 4 KiB or more are deflated, so a larger answer can cross the wire in fewer bytes than
    // a smaller one: the bound is on what the ten add, not that they add something.
    let per_entry = live_bytes / entries as u64;
    assert!(
        changed < unchanged + 10 * 4 * per_entry.max(300),
        "ten changed entries cost {} bytes more than none (an average entry is {per_entry})",
        changed.saturating_sub(unchanged)
    );
    assert!(changed < live_bytes, "{changed} of {live_bytes} bytes");
    eprintln!(
        "{entries} live entries: every live entry {live_bytes} bytes; a plan with nothing \
         changed {unchanged} bytes, with ten changed entries {changed} bytes"
    );
}
