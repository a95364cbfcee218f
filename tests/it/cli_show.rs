//! `strata show` and `strata where` through the real binary.

use crate::support::{example, strata, transcript};

#[test]
fn show_a_machine_with_provenance() {
    let out = strata(
        &example("americas"),
        &["show", "--machine", "lab3.example.com"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn show_one_section_of_a_machine() {
    let out = strata(
        &example("americas"),
        &["show", "--machine", "lab5.example.com", "dns"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn show_what_a_group_defines() {
    let out = strata(&example("americas"), &["show", "--group", "Paris"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn show_json_names_the_origin_of_each_section() {
    let out = strata(
        &example("americas"),
        &["show", "--machine", "lab3.example.com", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["group"], "Paris");
    assert_eq!(v["sections"]["dns"]["origin"]["mode"], "group:Paris");
    assert_eq!(v["sections"]["listeners"]["origin"]["mode"], "cluster");
    assert_eq!(v["sections"]["ldap-queries"]["empty"], true);
}

#[test]
fn show_an_unknown_machine_suggests_a_name() {
    let out = strata(
        &example("americas"),
        &["show", "--machine", "lab3.example.co"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn where_lists_modes_and_the_machines_they_reach() {
    let out = strata(&example("americas"), &["where", "dns"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}
