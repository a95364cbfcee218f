//! The one integration-test binary: every file in this directory is a module here.

mod agent;
mod agent_auth;
mod agent_budget;
mod agent_catalogue;
mod agent_crash;
mod agent_refusals;
mod agent_service;
mod agent_shutdown;
mod agent_store;
mod agent_support;
mod apply_confirm;
mod apply_guard;
mod check;
mod cli_edit;
mod cli_exit;
mod cli_hardening;
mod cli_hostile;
mod cli_show;
mod cli_validate;
mod client_openssh;
mod cluster_admin;
mod cluster_support;
mod corpus;
mod docs_links;
mod drift_ignore;
mod follow;
mod freeze;
mod fuzz;
mod git_members;
mod git_push;
mod json_schemas;
mod kdl_stack;
mod layering_props;
mod layout;
mod mesh;
mod mesh_client;
mod mesh_harness;
mod mesh_overlay;
mod mesh_reconnect;
mod mesh_support;
mod metrics;
mod notify;
mod ownership;
mod packaging;
mod plan_digest;
mod rename;
mod replication;
mod rollout;
mod secrets;
mod shell_tools;
mod support;
mod support_files;
mod trial;
mod upgrade;
mod web;
mod xml_assign;
mod xml_cli;
mod xml_props;
mod xml_real;
mod xml_roundtrip;

// Support code shared with the benches, not part of the library.
#[path = "../support/fleet.rs"]
mod fleet;
#[path = "../support/git.rs"]
mod git;
#[path = "../support/host.rs"]
mod host;
#[path = "../support/pusher.rs"]
mod pusher;
#[path = "../support/readings.rs"]
mod readings;
#[path = "../support/relay.rs"]
mod relay;

/// Every `tests/it/*.rs` file must be listed above, or its tests silently never run.
#[test]
fn every_test_file_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "main" {
            assert!(
                main.contains(&format!("mod {stem};")),
                "tests/it/{stem}.rs is not registered in main.rs"
            );
        }
    }
}
