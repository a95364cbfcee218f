//! Disconnect and reconnect with real agents behind relays: a disconnected machine gets
//! no change sets; reconnected — from itself, or from another member — it links again
//! and catches up. Either way one end takes the other for disconnected when the new
//! link comes up and parks it, so what reconnects them is the membership change sets the
//! other end sends when the parking end says it parked the link (`PeerMsg::Parked`).

use crate::cluster_support::{SETTLE, apply, cluster, dns, ok, running, write_repo};
use crate::mesh_support::{MeshHarness, wait_until};

/// Waits until machine `i` has exactly `n` links up.
fn wait_links(h: &MeshHarness, i: usize, n: usize) {
    wait_until(SETTLE, &format!("machine {i} with {n} links up"), || {
        let up = h.links_up(i);
        if up.len() == n {
            Ok(())
        } else {
            Err(format!("{up:?}"))
        }
    });
}

/// Waits until machine `i` runs dns server `server`.
fn wait_dns(h: &MeshHarness, i: usize, server: &str) {
    wait_until(SETTLE, &format!("machine {i} runs {server}"), || {
        let dns = running(h, i, "dns");
        if dns.contains(server) {
            Ok(())
        } else {
            Err(dns)
        }
    });
}

#[test]
fn a_disconnected_machine_reconnects_from_itself_or_from_a_member_and_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 3);
    let repo = tmp.path().join("repo");
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }

    // Reconnected from itself: it dials members that still take it for disconnected.
    ok(&h.strata(1, &["cluster", "disconnect", "lab3.example.com"]));
    wait_links(&h, 3, 0);
    wait_links(&h, 1, 1);
    write_repo(&repo, 3, &dns("10.0.0.54"));
    ok(&apply(&h, 1, &repo, &[]));
    wait_dns(&h, 2, "10.0.0.54");
    assert!(
        running(&h, 3, "dns").contains("10.0.0.53"),
        "a disconnected machine gets no change sets: {}",
        running(&h, 3, "dns")
    );
    ok(&h.strata(3, &["cluster", "reconnect", "lab3.example.com"]));
    wait_dns(&h, 3, "10.0.0.54");
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }
    assert!(
        parked(&h, 1) + parked(&h, 2) > 0,
        "nobody parked lab3's link"
    );
    let parked_before = parked(&h, 2);

    // Reconnected from a member: the machine itself still holds itself disconnected.
    ok(&h.strata(1, &["cluster", "disconnect", "lab2.example.com"]));
    wait_links(&h, 2, 0);
    wait_links(&h, 3, 1);
    write_repo(&repo, 3, &dns("10.0.0.55"));
    ok(&apply(&h, 3, &repo, &[]));
    wait_dns(&h, 1, "10.0.0.55");
    ok(&h.strata(1, &["cluster", "reconnect", "lab2.example.com"]));
    wait_dns(&h, 2, "10.0.0.55");
    for i in 1..=3 {
        wait_links(&h, i, 2);
    }
    // The way back was a parked link each time: one that took lab3 for disconnected
    // (lab1's or lab2's), then lab2's own.
    assert!(
        parked(&h, 2) > parked_before,
        "lab2 parked no link the second time"
    );
}

/// How many links machine `i` has parked so far (its log says so once each).
fn parked(h: &MeshHarness, i: usize) -> usize {
    h.machine(i).log().matches("link parked").count()
}
