//! A formed cluster for replication tests with real agents: N machines of a
//! [`MeshHarness`] joined into cluster `americas` through machine 1, a repo declaring
//! them applied, and the checks those tests share — a command that must succeed, its
//! JSON, `strata check` and waiting for it to come out clean, what a machine runs, and
//! every entry a machine's store holds.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use strata::protocol::{BlockingClient, ClientOptions, HostKeyPin, Login, Request, Response};
use strata::state::Live;

use crate::agent_support::{stderr, stdout};
use crate::mesh_support::{MeshHarness, wait_until};

pub use crate::agent_support::ok;
pub use crate::mesh_support::PASSPHRASE;

/// How long the mesh may take to settle anything (ping interval 100 ms in these repos).
pub const SETTLE: Duration = Duration::from_secs(30);

/// The stdout of a run, as JSON (whatever the exit code).
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The machines of a `cluster list --format json` listing, each with its group's name.
pub fn list_machines(list: &serde_json::Value) -> Vec<(&str, &serde_json::Value)> {
    list["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| {
            let group = g["name"].as_str().unwrap_or_default();
            g["machines"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |m| (group, m))
        })
        .collect()
}

/// A `dns` section naming one server, for a repo's cluster level.
pub fn dns(server: &str) -> String {
    format!("dns {{ server \"{server}\"; }}")
}

/// Writes `dir/cluster.kdl`: cluster `americas` with a 100 ms ping interval and
/// `sections` (KDL) at cluster level, group `Main_Group`, and machines `lab1..=labN`.
/// Other `*.kdl` files in `dir` are read with it.
pub fn write_repo(dir: &Path, n: usize, sections: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let machines: String = (1..=n)
        .map(|i| format!("machine \"lab{i}.example.com\"\n"))
        .collect();
    std::fs::write(
        dir.join("cluster.kdl"),
        format!(
            "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=100\n    {sections}\n}}\n\
             group \"Main_Group\"\n{machines}"
        ),
    )
    .unwrap();
}

/// `strata apply --repo DIR --yes` on machine `i`, plus `extra`.
pub fn apply(h: &MeshHarness, i: usize, repo: &Path, extra: &[&str]) -> Output {
    let repo = repo.display().to_string();
    let mut args = vec!["apply", "--repo", &repo, "--yes"];
    args.extend_from_slice(extra);
    h.strata(i, &args)
}

/// Machines `1..=n` in one cluster, every link up, the repo `tmp/repo` (cluster `dns`
/// `10.0.0.53`) applied and on every member.
pub fn cluster(tmp: &Path, n: usize) -> MeshHarness {
    let h = MeshHarness::start(tmp, n);
    h.form(tmp, "americas");
    let repo = tmp.join("repo");
    write_repo(&repo, n, &dns("10.0.0.53"));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    h
}

/// `strata check EXTRA` from machine `i`: its exit code, and stdout then stderr.
pub fn check(h: &MeshHarness, i: usize, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    let out = h.strata(i, &args);
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// Waits until a check from machine `i` exits 0; returns what it printed.
pub fn clean(h: &MeshHarness, i: usize) -> String {
    clean_within(h, i, SETTLE)
}

/// [`clean`] with a deadline of its own. Clean means the members agree: every one
/// answered, all hold the same entries, no running config was edited. Lost writes not yet
/// settled make `check` exit 2 too, but are no disagreement: they are listed in the text.
pub fn clean_within(h: &MeshHarness, i: usize, timeout: Duration) -> String {
    wait_until(
        timeout,
        &format!("the cluster checks clean from lab{i}"),
        || {
            let out = h.strata(i, &["check", "--format", "json"]);
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            if v["agree"] == true {
                Ok(check(h, i, &[]).1)
            } else {
                Err(format!("{}{}", stdout(&out), stderr(&out)))
            }
        },
    )
}

/// Cuts machine `i` off from every other and waits until machine `from`'s check names
/// it unreachable.
pub fn isolate(h: &MeshHarness, i: usize, from: usize) {
    h.relays.isolate(i);
    let name = h.machine(i).name.clone();
    wait_until(
        SETTLE,
        &format!("lab{from} sees {name} unreachable"),
        || {
            let (_, text) = check(h, from, &[]);
            if text.contains(&format!("{name} is unreachable")) {
                Ok(())
            } else {
                Err(text)
            }
        },
    );
}

/// Machine `i`'s running-config file of `section` (empty when it has none).
pub fn running(h: &MeshHarness, i: usize, section: &str) -> String {
    std::fs::read_to_string(h.machine(i).dir.join(format!("running/{section}.kdl")))
        .unwrap_or_default()
}

/// Waits until machine `i`'s running `dns` names `server`.
pub fn runs_dns(h: &MeshHarness, i: usize, server: &str) {
    wait_until(SETTLE, &format!("lab{i} runs dns {server}"), || {
        let text = running(h, i, "dns");
        if text.contains(server) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// Every entry machine `i`'s store holds, tombstones included, with its version: asked
/// of the agent directly (`Request::Live`), as its administrator.
pub fn live(h: &MeshHarness, i: usize) -> Live {
    let m = h.machine(i);
    let addr = m.agent_addr();
    let key = russh::keys::load_secret_key(m.local_key(), None).unwrap();
    let options = ClientOptions::new(
        addr.ip().to_string(),
        addr.port(),
        HostKeyPin::Fingerprint(m.fingerprint()),
        "admin",
        Login::Key(Box::new(key)),
    );
    let mut client =
        BlockingClient::connect(options).unwrap_or_else(|e| panic!("cannot reach {}: {e}", m.name));
    match client.request(Request::Live) {
        Ok(Response::Live { entries, .. }) => entries,
        other => panic!("{}: Live answered {other:?}", m.name),
    }
}

/// Machine `i`'s conflict log (`log --conflicts --format json`).
pub fn conflicts(h: &MeshHarness, i: usize) -> Vec<serde_json::Value> {
    let v = json(&h.strata(i, &["log", "--conflicts", "--format", "json"]));
    v["conflicts"].as_array().cloned().unwrap_or_default()
}

/// The ids of every change set in machine `i`'s `strata log`.
pub fn logged_ids(h: &MeshHarness, i: usize) -> Vec<String> {
    let v = json(&h.strata(i, &["log", "--format", "json"]));
    v["change_sets"]
        .as_array()
        .unwrap_or_else(|| panic!("lab{i}: no change sets in {v}"))
        .iter()
        .map(|cs| cs["id"].as_str().unwrap().to_owned())
        .collect()
}
