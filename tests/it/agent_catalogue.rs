//! The catalogue travels with the desired state: a repo's own schemas and its choice of
//! built-in sections reach the agent, which resolves exactly as `strata show` does.

use std::path::Path;

use crate::agent_support::{
    CLUSTER, MACHINES, TestAgent, apply_main, created, git_repo, p, plan_main, sd, stderr, stdout,
    strata,
};
use crate::support::copy_dir;

/// The built-in timezone section with another factory default.
fn timezone_schema(zone: &str) -> String {
    format!(
        "section \"timezone\" {{\n    command \"settz\"\n    xml \"timezone\"\n    levels \"cluster\" \"group\" \"machine\"\n    summary \"Time zone\"\n    arg \"zone\" type=\"string\" xml=\".\"\n    default \"{zone}\"\n}}\n"
    )
}

fn running(agent: &TestAgent, section: &str) -> String {
    std::fs::read_to_string(agent.dir.join("running").join(format!("{section}.kdl"))).unwrap()
}

#[test]
fn a_repo_s_own_factory_default_is_what_the_agent_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let tz = timezone_schema("Europe/Paris");
    git_repo(
        &dir,
        &[
            ("cluster.kdl", CLUSTER),
            ("machines.kdl", MACHINES),
            ("schemas/timezone.kdl", &tz),
        ],
        "Paris time",
    );
    let repo = p(&dir);
    let show = strata(&[
        "show",
        "--repo",
        &repo,
        "--machine",
        "lab1.example.com",
        "timezone",
    ]);
    assert!(
        stdout(&show).contains("timezone \"Europe/Paris\""),
        "{}",
        stdout(&show)
    );

    let agent = created(&tmp.path().join("agent"));
    assert!(running(&agent, "timezone").contains("America/Los_Angeles"));
    let plan = plan_main(&repo, &sd(&agent));
    assert_eq!(plan.status.code(), Some(2));
    let text = stdout(&plan);
    assert!(text.contains("+ #schema:timezone (created)"), "{text}");
    assert!(
        text.contains("timezone    new factory default"),
        "the new default changes lab1's timezone: {text}"
    );
    apply_main(&repo, &sd(&agent));
    assert_eq!(running(&agent, "timezone"), "timezone \"Europe/Paris\"\n");
    let again = plan_main(&repo, &sd(&agent));
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));

    // Another default in the next commit: the plan says which machines it reaches.
    git_repo(
        &dir,
        &[("schemas/timezone.kdl", &timezone_schema("Asia/Tokyo"))],
        "Tokyo",
    );
    let plan = plan_main(&repo, &sd(&agent));
    assert_eq!(plan.status.code(), Some(2));
    assert!(
        stdout(&plan).contains("~ #schema:timezone (changed)"),
        "{}",
        stdout(&plan)
    );
    apply_main(&repo, &sd(&agent));
    assert_eq!(running(&agent, "timezone"), "timezone \"Asia/Tokyo\"\n");
    // The schema is gone from the repo: the built-in default is back.
    std::fs::remove_file(dir.join("schemas/timezone.kdl")).unwrap();
    git_repo(&dir, &[], "built-in timezone again");
    apply_main(&repo, &sd(&agent));
    assert!(running(&agent, "timezone").contains("America/Los_Angeles"));
}

#[test]
fn a_fleet_that_chooses_its_sections_runs_only_those() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom-schema");
    copy_dir(&example, &dir);
    git_repo(&dir, &[], "web proxies");
    let agent = TestAgent::start(&tmp.path().join("agent"), "proxy1.example.com");
    let out = strata(&["cluster", "create", "proxies", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = apply_main(&p(&dir), &sd(&agent));
    assert!(applied.contains("running config removed: "), "{applied}");
    let mut files: Vec<String> = std::fs::read_dir(agent.dir.join("running"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["dns.kdl", "interfaces.kdl", "web-proxy.kdl"]);
    assert_eq!(
        running(&agent, "web-proxy"),
        "web-proxy interface=Data1 port=3128 {\n    allow \"10.0.0.0/8\"\n}\n"
    );
    // Restarting the agent keeps the catalogue: it is in the store, not in memory.
    drop(agent);
    let agent = TestAgent::start(&tmp.path().join("agent"), "proxy1.example.com");
    let again = plan_main(&p(&dir), &sd(&agent));
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    assert!(!agent.dir.join("running/listeners.kdl").exists());
}
