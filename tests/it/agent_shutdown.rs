//! Stopping the agent answers what it accepted: a request being carried out when SIGTERM
//! arrives is finished and answered before the agent exits, cleanly.

use crate::agent_support::{CLUSTER, HeldHook, MACHINES, git_repo, stderr, stdout};

#[test]
fn sigterm_answers_the_apply_in_flight_before_the_agent_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut held = HeldHook::start(tmp.path());
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let apply = held.apply_held(&repo);
    let pid = held.agent.child.id().to_string();
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
        held.agent.child.try_wait().unwrap().is_none(),
        "the agent left a request unanswered"
    );
    held.release();
    let out = apply.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        held.agent.log()
    );
    assert!(
        stdout(&out).contains("applied change set"),
        "{}",
        stdout(&out)
    );
    let status = held.agent.child.wait().unwrap();
    assert!(status.success(), "{status}\n{}", held.agent.log());
    assert!(
        held.agent
            .log()
            .contains("answering the requests accepted before shutdown"),
        "{}",
        held.agent.log()
    );
    assert!(
        held.agent.log().contains("agent stopped"),
        "{}",
        held.agent.log()
    );
}
