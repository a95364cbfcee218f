//! Property test: for generated repos — groups, machines, sections defined at random levels
//! (defined, defined empty, or inherited), sometimes a repo schema that changes a factory
//! default, sometimes a choice of built-in sections — every machine's effective config as
//! `strata show` resolves it is exactly what the agent runs after applying the repo: the
//! plan, the agent's commit path, the store's entries and the running config written from
//! them, with the catalogue the store records.

use proptest::prelude::*;

use strata::cluster::applier::running_config;
use strata::cluster::caller::Authority;
use strata::cluster::caller::Caller;
use strata::cluster::core::Core;
use strata::config::{Diagnostics, SourceFile, parse_files};
use strata::model::{MachineName, Mode};
use strata::plan::{Origin, desired, diff};
use strata::resolve::effective;
use strata::resolve::entries::catalogue_of;
use strata::schema::Catalogue;
use strata::state::{Live, MemoryStore, Source, Store};
use strata::validate::validate;

/// Section contents that validate at any level that allows the section.
fn section(kind: usize, variant: u8) -> String {
    match kind {
        0 => format!("dns {{ server \"10.0.{variant}.53\" priority={variant}; }}"),
        1 => format!("timezone \"Etc/GMT+{}\"", variant % 12),
        2 => format!("ntp {{ server \"ntp{variant}.example.com\"; }}"),
        _ => format!("text-resources {{ resource \"footer{variant}\" \"Scanned {variant}.\"; }}"),
    }
}

const NAMES: [&str; 4] = ["dns", "timezone", "ntp", "text-resources"];

/// One definition: absent (inherit), empty (override with nothing), or contents.
fn define(out: &mut String, kind: usize, choice: u8) {
    match choice % 4 {
        0 | 1 => {}
        // A timezone needs its zone: it cannot be defined empty.
        2 if NAMES[kind] != "timezone" => out.push_str(&format!("    {}\n", NAMES[kind])),
        2 | 3 => out.push_str(&format!("    {}\n", section(kind, choice))),
        _ => unreachable!("choice % 4"),
    }
}

fn repo_text(groups: usize, machines: &[(usize, Vec<u8>)], cluster: &[u8], group: &[u8]) -> String {
    let mut text = String::from("cluster \"c\" {\n");
    for (kind, c) in cluster.iter().enumerate() {
        define(&mut text, kind, *c);
    }
    text.push_str("}\ngroup \"Main_Group\"\n");
    for g in 0..groups {
        text.push_str(&format!("group \"g{g}\" {{\n"));
        for (kind, c) in group.iter().enumerate() {
            define(&mut text, kind, c.wrapping_add(g as u8));
        }
        text.push_str("}\n");
    }
    for (i, (g, defs)) in machines.iter().enumerate() {
        let group = if *g == 0 || groups == 0 {
            "Main_Group".to_owned()
        } else {
            format!("g{}", (g - 1) % groups)
        };
        text.push_str(&format!("machine \"m{i}\" group=\"{group}\" {{\n"));
        for (kind, c) in defs.iter().enumerate() {
            define(&mut text, kind, *c);
        }
        text.push_str(&format!(
            "    interfaces {{ interface \"Data1\" address=\"10.1.0.{n}/24\" hostname=\"m{i}.example.com\"; }}\n}}\n",
            n = i + 1
        ));
    }
    text
}

fn schema_files(own_timezone: bool, only_some: bool) -> Vec<std::sync::Arc<SourceFile>> {
    let mut files = Vec::new();
    if own_timezone {
        files.push(SourceFile::new(
            "schemas/timezone.kdl",
            "section \"timezone\" {\n    levels \"cluster\" \"group\" \"machine\"\n    arg \"zone\" type=\"string\"\n    default \"Europe/Paris\"\n}\n",
        ));
    }
    if only_some {
        files.push(SourceFile::new(
            "schemas/builtin.kdl",
            "builtin-sections \"dns\" \"ntp\" \"interfaces\" \"text-resources\" \"timezone\"",
        ));
    }
    files
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn what_show_resolves_is_what_the_agent_runs(
        groups in 0usize..3,
        machines in prop::collection::vec((0usize..4, prop::collection::vec(any::<u8>(), 4)), 1..5),
        cluster in prop::collection::vec(any::<u8>(), 4),
        group in prop::collection::vec(any::<u8>(), 4),
        own_timezone in any::<bool>(),
        only_some in any::<bool>(),
    ) {
        let text = repo_text(groups, &machines, &cluster, &group);
        let mut diags = Diagnostics::default();
        let catalogue = Catalogue::load(&schema_files(own_timezone, only_some), &mut diags);
        let repo = parse_files(vec![SourceFile::new("repo.kdl", text.clone())], &mut diags);
        validate(&repo, &catalogue, &mut diags);
        prop_assert!(!diags.has_errors(), "{text}\n{:?}", diags.problems());

        // Apply through the agent's own commit path, onto an empty store.
        let origin = Origin { source: Source::Cli, author: "prop".into(), message: "m".into() };
        let plan = diff(&desired(&repo, &catalogue), &catalogue, &Live::new(), origin.clone());
        let mut core = Core::new(MemoryStore::default(), MachineName::new("m0").unwrap(), "m0".into()).unwrap();
        let caller = Caller { user: "prop".into(), authority: Authority::All, followed: None, break_glass: None, origin_kind: strata::model::OriginKind::Claimed };
        core.apply(&caller, plan.writes(), plan.base.clone(), &origin, 1).unwrap();
        let live = core.store.live().unwrap();
        let stored = catalogue_of(
            live.iter().filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
            &mut Diagnostics::default(),
        );
        prop_assert_eq!(
            stored.names().collect::<Vec<_>>(),
            catalogue.names().collect::<Vec<_>>()
        );

        for machine in &repo.machines {
            let Mode::Machine(name) = &machine.mode else { continue };
            let shown = effective(&repo, &catalogue, machine);
            let runs = running_config(&live, name, &stored);
            let shown: Vec<(String, String)> = shown
                .sections
                .iter()
                .map(|(s, e)| ((*s).to_owned(), e.node.to_canonical()))
                .collect();
            let runs: Vec<(String, String)> = runs.into_iter().collect();
            prop_assert_eq!(shown, runs, "machine {} of\n{}", name, text);
        }
        // And the plan against what was applied is empty.
        let again = diff(&desired(&repo, &catalogue), &catalogue, &live, origin);
        prop_assert!(again.is_empty(), "{:?}", again.actions);
    }
}
