//! Stopping the agent answers what it accepted: a request being carried out when SIGTERM
//! arrives is finished and answered before the agent exits, cleanly.

use crate::agent_support::{CLUSTER, MACHINES, created, git_repo, p, sd, stderr, stdout, wait_for};

#[test]
fn sigterm_answers_the_apply_in_flight_before_the_agent_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let flag = |name: &str| tmp.path().join(name);
    // Once armed, the hook says it started and waits for `release`.
    let script = format!(
        "[ -e {armed} ] || exit 0; touch {started}; while [ ! -e {release} ]; do sleep 0.02; done",
        armed = p(&flag("armed")),
        started = p(&flag("started")),
        release = p(&flag("release")),
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"sh\" \"-c\" {script:?} \"hook\"\n"
        ),
    )
    .unwrap();
    let mut agent = created(&dir);
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    std::fs::write(flag("armed"), "").unwrap();
    let apply = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "apply",
            "--ref",
            "main",
            "--repo",
            &p(&repo),
            "--state-dir",
            &sd(&agent),
        ])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&flag("started"), "the hook");
    let pid = agent.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The agent waits for the request it accepted; let the hook finish a moment later.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent left a request unanswered"
    );
    std::fs::write(flag("release"), "").unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    assert!(
        stdout(&out).contains("applied change set"),
        "{}",
        stdout(&out)
    );
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "{status}\n{}", agent.log());
    assert!(
        agent
            .log()
            .contains("answering the requests accepted before shutdown"),
        "{}",
        agent.log()
    );
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
}
