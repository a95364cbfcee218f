//! Above the full mesh, with real agents: with `cluster-mesh full-mesh-up-to=4`, eight
//! agents keep direct links to their overlay neighbours only (as `protocol::overlay`
//! says: ring neighbours and rendezvous picks, not every other member), flood link state, and route the rest. Every member reaches
//! every other; a change applied through one runs on all; `check` asks every member
//! through routes; each member merges each change set once, however many copies gossip
//! brings it (its metrics count both); a member cut off from all its links is detected
//! by every other, and is back once the links are.

use std::collections::BTreeSet;
use std::time::Duration;

use strata::model::MachineName;
use strata::protocol::overlay;

use crate::agent_support::{ok, p, stdout};
use crate::mesh_support::{MeshHarness, wait_until};
use crate::metrics::{metrics_addr, scrape, value};

const SETTLE: Duration = Duration::from_secs(60);
const N: usize = 8;

fn repo(dir: &std::path::Path, dns: &str) {
    let machines: String = (1..=N)
        .map(|i| format!("machine \"lab{i}.example.com\"\n"))
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("cluster.kdl"),
        format!(
            "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=200 full-mesh-up-to=4\n    \
             dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\n{machines}"
        ),
    )
    .unwrap();
}

/// The machines `i`'s own connstatus view shows linked.
fn linked(h: &MeshHarness, i: usize) -> BTreeSet<String> {
    let out = h.strata(i, &["cluster", "connstatus", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let me = h.machine(i).name.clone();
    status["views"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["machine"] == me.as_str()))
        .and_then(|v| v["links"].as_array())
        .map(|links| {
            links
                .iter()
                .filter(|l| l["up"] == true)
                .filter_map(|l| l["to"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn running_dns(h: &MeshHarness, i: usize) -> String {
    std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap_or_default()
}

#[test]
fn eight_agents_above_the_full_mesh_link_to_ring_neighbours_and_reach_everyone() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start_with(tmp.path(), N, |i| {
        format!("metrics listen=\"127.0.0.{}:0\"\n", 10 + i)
    });
    h.form(tmp.path(), "americas");
    let dir = tmp.path().join("repo");
    repo(&dir, "10.0.0.53");
    ok(&h.strata(1, &["apply", "--repo", &p(&dir), "--yes"]));

    let all: BTreeSet<MachineName> = (1..=N)
        .map(|i| MachineName::new(&h.machine(i).name).unwrap())
        .collect();
    let sizes: Vec<usize> = all
        .iter()
        .map(|m| overlay::neighbors(&all, m, 4).len())
        .collect();
    assert!(
        sizes.iter().any(|n| *n < N - 1),
        "not a full mesh: {sizes:?}"
    );
    for i in 1..=N {
        let me = MachineName::new(&h.machine(i).name).unwrap();
        let want: BTreeSet<String> = overlay::neighbors(&all, &me, 4)
            .iter()
            .map(ToString::to_string)
            .collect();
        wait_until(
            SETTLE,
            &format!("lab{i} links to its ring neighbours only"),
            || {
                let got = linked(&h, i);
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}, want {want:?}\n{}", h.machine(i).log()))
                }
            },
        );
    }
    // Every member reaches every other, directly or routed.
    for i in 1..=N {
        wait_until(SETTLE, &format!("lab{i} reaches everyone"), || {
            let list = stdout(&h.strata(i, &["cluster", "list"]));
            if list.contains("unreachable") {
                Err(list)
            } else {
                Ok(())
            }
        });
    }

    // A change applied through lab1 runs everywhere, the non-neighbours included.
    repo(&dir, "10.0.0.99");
    ok(&h.strata(1, &["apply", "--repo", &p(&dir), "--yes"]));
    for i in 1..=N {
        wait_until(SETTLE, &format!("lab{i} runs the change"), || {
            let dns = running_dns(&h, i);
            if dns.contains("10.0.0.99") {
                Ok(())
            } else {
                Err(dns)
            }
        });
    }
    // Each member handed each change set to its merger once, though gossip brought some
    // more than once: every copy handed over was new there (counted by the propagation
    // histogram, which sees each change set merged from a peer once) or refused.
    let mut again = 0.0;
    for i in 1..=N {
        let addr = metrics_addr(&h.machine(i).log());
        let body = wait_until(
            SETTLE,
            &format!("lab{i} merged no change set twice"),
            || {
                let (_, body) = scrape(&addr);
                let sample = |s: &str| value(&body, s).unwrap_or(-1.0);
                let first = sample("strata_change_set_copies_total{copy=\"first\"}");
                let new = sample("strata_propagation_seconds_count");
                let refused = sample("strata_change_sets_refused_total{from=\"peer\"}");
                if first == new + refused {
                    Ok(body)
                } else {
                    Err(format!(
                        "{first} handed over, {new} new, {refused} refused\n{body}"
                    ))
                }
            },
        );
        again += value(&body, "strata_change_set_copies_total{copy=\"again\"}").unwrap();
    }
    assert!(
        again > 0.0,
        "gossip brought no change set twice: nothing was tested"
    );

    // check asks every member, through routes.
    let checked = h.strata(1, &["check"]);
    assert!(checked.status.success(), "{}", stdout(&checked));

    // lab5 cut off from every link: every other member says so, and it comes back.
    let victim = h.machine(5).name.clone();
    h.relays.isolate(5);
    for i in (1..=N).filter(|i| *i != 5) {
        wait_until(
            SETTLE,
            &format!("lab{i} alerts that lab5 is unreachable"),
            || {
                let log = h.machine(i).log();
                if log
                    .lines()
                    .any(|l| l.contains("peer unreachable") && l.contains(&victim))
                {
                    Ok(())
                } else {
                    Err(log)
                }
            },
        );
    }
    h.relays.heal();
    for i in (1..=N).filter(|i| *i != 5) {
        wait_until(SETTLE, &format!("lab{i} reaches lab5 again"), || {
            let log = h.machine(i).log();
            if log
                .lines()
                .any(|l| l.contains("peer reachable") && l.contains(&victim))
            {
                Ok(())
            } else {
                Err(log)
            }
        });
    }
}
