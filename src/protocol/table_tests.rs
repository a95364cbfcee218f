//! Tests of the route table.
use super::*;

fn m(name: &str) -> MachineName {
    MachineName::new(name).unwrap()
}

/// A table for `me` among `all`, every interval 100 ms.
fn table(me: &str, all: &[&str]) -> Table {
    let mut t = Table::new(m(me), 100);
    t.set_peers(all.iter().map(|n| m(n)));
    t
}

fn up(to: &str, ago: u64) -> LinkReport {
    LinkReport {
        to: m(to),
        heard_ago_ms: Some(ago),
        rtt_ms: Some(1.0),
    }
}

fn down(to: &str) -> LinkReport {
    LinkReport {
        to: m(to),
        heard_ago_ms: None,
        rtt_ms: None,
    }
}

#[test]
fn a_shorter_interval_counts_silence_afresh_from_the_change() {
    let mut t = table("a", &["a", "b", "c"]);
    t.set_interval(2000, 0);
    t.link_up(&m("b"), 1000);
    t.link_up(&m("c"), 1000);
    t.heard(&m("c"), 1000);
    // b last heard 1,000 ms ago: up at 2 s pings, and still up right after the
    // interval drops to 200 ms (down after 500 ms of silence from the change).
    t.set_interval(200, 2000);
    assert!(t.quiet_links(2000).is_empty());
    assert!(t.is_up(&m("b"), 2499));
    assert_eq!(t.quiet_links(2500), [m("b"), m("c")]);
    // A link already down stays down.
    t.link_down(&m("b"));
    t.set_interval(100, 3000);
    assert!(!t.is_up(&m("b"), 3000));
}

#[test]
fn a_link_is_down_after_two_and_a_half_quiet_intervals() {
    let mut t = table("a", &["a", "b"]);
    assert!(!t.is_up(&m("b"), 0), "never opened");
    t.link_up(&m("b"), 1000);
    t.heard(&m("b"), 1100);
    assert!(t.is_up(&m("b"), 1349));
    assert!(!t.is_up(&m("b"), 1350));
    assert_eq!(t.quiet_links(1350), [m("b")]);
    t.link_down(&m("b"));
    assert!(t.quiet_links(1350).is_empty());
    t.heard(&m("b"), 1400);
    assert!(
        !t.is_up(&m("b"), 1400),
        "hearing does not reopen a closed link"
    );
}

#[test]
fn a_cut_link_is_routed_around_through_a_peer_that_reaches_it() {
    let mut t = table("a", &["a", "b", "c"]);
    t.link_up(&m("c"), 0);
    // b is not linked to a, but c reports hearing b 10 ms ago.
    t.view(&m("c"), vec![up("b", 10), up("a", 0)], 0);
    assert_eq!(t.next_hop(&m("c"), 50), Some(m("c")));
    assert_eq!(t.next_hop(&m("b"), 50), Some(m("c")));
    let view = t.own_view(50);
    let b = view.links.iter().find(|l| l.to == "b").unwrap();
    assert!(!b.up);
    assert_eq!(b.via.as_deref(), Some("c"));
    // c's report ages out exactly when c's own link to b would: 10 + 240 ≥ 250.
    t.heard(&m("c"), 240);
    assert_eq!(t.next_hop(&m("b"), 239), Some(m("c")));
    assert_eq!(t.next_hop(&m("b"), 240), None);
}

#[test]
fn routes_take_the_fewest_hops_and_stop_at_unknown_machines() {
    let mut t = table("a", &["a", "b", "c", "d"]);
    t.link_up(&m("b"), 0);
    t.view(&m("b"), vec![up("c", 0), up("x", 0)], 0);
    t.view(&m("c"), vec![up("d", 0)], 0);
    let routes = t.routes(10);
    assert_eq!(routes.get(&m("d")), Some(&m("b")), "a → b → c → d");
    assert_eq!(routes.get(&m("c")), Some(&m("b")));
    assert!(!routes.contains_key(&m("x")), "not a member");
    // A view of a machine a has no path to does not help.
    t.view(&m("d"), vec![up("c", 0)], 0);
    t.link_down(&m("b"));
    assert!(t.routes(10).is_empty());
}

#[test]
fn an_isolated_machine_raises_one_alert_and_its_return_clears_it() {
    let mut t = table("a", &["a", "b", "c"]);
    t.link_up(&m("b"), 0);
    t.link_up(&m("c"), 0);
    t.view(&m("b"), vec![up("c", 0)], 0);
    t.view(&m("c"), vec![up("b", 0)], 0);
    assert!(t.alerts(0).is_empty(), "first contact is no recovery");
    // c goes silent everywhere: a's link, and b's report of it, age out together.
    for now in (100..=200).step_by(100) {
        t.heard(&m("b"), now);
        t.view(&m("b"), vec![up("a", 0), up("c", now)], now);
        assert!(t.alerts(now).is_empty(), "c still counts at {now}");
    }
    for now in (250..=600).step_by(50) {
        t.heard(&m("b"), now);
        t.view(&m("b"), vec![up("a", 0), down("c")], now);
        let alerts = t.alerts(now);
        if now == 300 {
            assert_eq!(alerts, [Alert::Lost(m("c"))], "once, within 3 intervals");
        } else {
            assert!(alerts.is_empty(), "nothing at {now}: {alerts:?}");
        }
    }
    t.link_down(&m("c"));
    t.link_up(&m("c"), 700);
    t.heard(&m("b"), 700);
    assert_eq!(t.alerts(700), [Alert::Recovered(m("c"))]);
}

#[test]
fn a_link_replaced_in_a_breath_raises_nothing() {
    let mut t = table("a", &["a", "b"]);
    t.link_up(&m("b"), 0);
    assert!(t.alerts(0).is_empty());
    t.link_down(&m("b"));
    assert!(
        t.alerts(10).is_empty(),
        "unreachable, but not for a quarter interval"
    );
    t.link_up(&m("b"), 20);
    assert!(t.alerts(60).is_empty());
    t.link_down(&m("b"));
    assert!(t.alerts(70).is_empty());
    assert_eq!(t.alerts(120), [Alert::Lost(m("b"))]);
}

#[test]
fn the_alert_s_grace_is_a_quarter_interval_up_to_a_floor_then_an_eighth() {
    let mut t = table("a", &["a", "b"]);
    let grace = |t: &mut Table, interval| {
        t.set_interval(interval, 0);
        t.alert_grace_ms()
    };
    assert_eq!(grace(&mut t, 100), 25);
    assert_eq!(grace(&mut t, 400), 100);
    assert_eq!(grace(&mut t, 500), 100, "the floor");
    assert_eq!(grace(&mut t, 800), 100, "an eighth from here");
    assert_eq!(grace(&mut t, 2000), 250, "the default interval");
}

#[test]
fn what_comes_due_is_the_next_quiet_link_or_alert() {
    let mut t = table("a", &["a", "b", "c"]);
    assert_eq!(t.next_due(), None, "no link, nothing unreachable yet");
    t.link_up(&m("b"), 0);
    t.link_up(&m("c"), 0);
    t.heard(&m("b"), 40);
    t.alerts(40);
    assert_eq!(
        t.next_due(),
        Some(250),
        "c goes quiet 2.5 intervals after it was heard"
    );
    t.link_down(&m("c"));
    assert_eq!(t.next_due(), Some(290), "then b");
    assert!(t.alerts(100).is_empty());
    assert_eq!(
        t.next_due(),
        Some(125),
        "c's alert, a quarter interval after it was lost"
    );
    assert_eq!(t.alerts(125), [Alert::Lost(m("c"))]);
    assert_eq!(t.next_due(), Some(290), "alerted: nothing more due for c");
    // Not a member any more: nothing comes due for it.
    t.link_down(&m("b"));
    t.alerts(300);
    t.set_peers([m("a"), m("c")]);
    assert_eq!(t.next_due(), None);
}

#[test]
fn a_member_never_reached_gets_time_to_link_up() {
    let mut t = table("a", &["a", "b"]);
    assert!(t.alerts(0).is_empty());
    assert!(t.alerts(FIRST_CONTACT_MS - 1).is_empty());
    assert_eq!(t.alerts(FIRST_CONTACT_MS), [Alert::Lost(m("b"))]);
}

#[test]
fn forgetting_a_member_forgets_its_link_and_raises_nothing() {
    let mut t = table("a", &["a", "b"]);
    t.link_up(&m("b"), 0);
    t.link_down(&m("b"));
    t.alerts(0);
    t.set_peers([m("a")]);
    assert!(t.alerts(10).is_empty());
    assert!(t.own_view(10).links.is_empty());
    t.link_up(&m("b"), 20);
    assert!(!t.is_up(&m("b"), 20), "not a member: no link counts");
}

#[test]
fn reports_say_how_long_ago_each_live_link_was_heard() {
    let mut t = table("a", &["a", "b", "c"]);
    t.link_up(&m("b"), 100);
    t.rtt(&m("b"), 0.5);
    let report = t.report(130);
    assert_eq!(report[0].heard_ago_ms, Some(30));
    assert_eq!(report[0].rtt_ms, Some(0.5));
    assert_eq!(report[1].heard_ago_ms, None, "c was never linked");
    assert_eq!(t.report(400)[0].heard_ago_ms, None, "gone quiet");
}

#[test]
fn announcements_heard_before_the_switch_to_the_overlay_are_kept_for_it() {
    // lab2 switched first and flooded its announcement; lab1 still kept a full mesh.
    let mut t = table("lab1", &["lab2", "lab3"]);
    t.link_up(&m("lab2"), 0);
    let early = Lsa {
        origin: m("lab2"),
        seq: 5,
        up: [m("lab1"), m("lab3")].into(),
    };
    assert_eq!(
        t.receive_lsa(early.clone()),
        Received::Old,
        "not flooded on"
    );
    assert!(t.lsas().is_empty(), "not used in a full mesh");
    // lab1 switches: it holds lab2's announcement, and says so (to send all it holds).
    assert!(t.set_overlay(Some([m("lab2")].into())));
    assert_eq!(t.lsas(), vec![early]);
    assert!(!t.set_overlay(Some([m("lab2")].into())), "switched once");
    // With its own announcement, lab3 is reached through lab2 (two-way on both ends).
    t.originate(10, 10);
    t.receive_lsa(Lsa {
        origin: m("lab3"),
        seq: 1,
        up: [m("lab2")].into(),
    });
    assert_eq!(t.next_hop(&m("lab3"), 10), Some(m("lab2")));
}

#[test]
fn routes_from_link_state_follow_each_announcement_and_each_own_link() {
    let mut t = table("a", &["b", "c", "d"]);
    t.set_overlay(Some([m("b"), m("c")].into()));
    t.link_up(&m("b"), 0);
    t.link_up(&m("c"), 0);
    t.originate(0, 1);
    let lsa = |origin: &str, seq: u64, up: &[&str]| Lsa {
        origin: m(origin),
        seq,
        up: up.iter().map(|n| m(n)).collect(),
    };
    t.receive_lsa(lsa("b", 1, &["a", "d"]));
    t.receive_lsa(lsa("c", 1, &["a"]));
    t.receive_lsa(lsa("d", 1, &["b"]));
    assert_eq!(t.next_hop(&m("d"), 10), Some(m("b")), "a → b → d");
    // d's link moves from b to c: the route moves with the announcements.
    t.receive_lsa(lsa("b", 2, &["a"]));
    assert_eq!(t.next_hop(&m("d"), 10), None, "b no longer links d");
    t.receive_lsa(lsa("c", 2, &["a", "d"]));
    t.receive_lsa(lsa("d", 2, &["c"]));
    assert_eq!(t.next_hop(&m("d"), 10), Some(m("c")));
    // a's own link to c closes: before anything is announced, d is unreachable.
    t.link_down(&m("c"));
    assert_eq!(t.next_hop(&m("d"), 10), None);
}
