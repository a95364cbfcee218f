//! Notifications (issue 23 item 2, issue 24 item 6): a three-agent cluster whose `alerts`
//! section names a real SMTP server and a real HTTP receiver, both started here. When a
//! member stops, exactly one mail and one webhook say so — one for the cluster, not one
//! per surviving member — and its return is said the same way. A relay that is down
//! delays nothing: the commit goes through, and the mail follows once the relay is up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster_support::{apply, ok, write_repo};
use crate::mesh_support::{MeshHarness, wait_until};

/// Long enough for a ping interval of 100 ms to notice a lost peer, and for a retry.
const WAIT: Duration = Duration::from_secs(60);

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Python's own SMTP server (`smtpd`'s DebuggingServer, which prints every message it
/// receives), on `port`; what it printed is in `out`.
struct SmtpServer {
    child: Child,
}

impl SmtpServer {
    fn start(port: u16, out: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args([
                "-u",
                "-W",
                "ignore",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the SMTP server");
        wait_until(WAIT, "the SMTP server listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        SmtpServer { child }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages the server printed (each line as Python's bytes, `b'…'`), as text, with
/// folded header lines unfolded.
fn mails(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.split("---------- MESSAGE FOLLOWS ----------")
        .skip(1)
        .map(|m| {
            let m = m
                .split("------------ END MESSAGE ------------")
                .next()
                .unwrap_or_default();
            let mut mail = String::new();
            for line in m.lines().filter(|l| !l.is_empty()) {
                let line = line
                    .strip_prefix("b'")
                    .and_then(|l| l.strip_suffix('\''))
                    .unwrap_or(line);
                if !line.starts_with(' ') {
                    mail.push('\n');
                }
                mail.push_str(line);
            }
            mail
        })
        .collect()
}

/// An HTTP server that answers 200 to every request and keeps each body.
fn webhook_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

fn alerts(smtp: u16, hook: u16) -> String {
    format!(
        "alerts from=\"strata@example.com\" {{\n\
         smtp-relay \"127.0.0.1\" port={smtp} tls=\"none\"\n\
         recipient \"ops@example.com\" {{ class \"clustering\"; }}\n\
         webhook \"http://127.0.0.1:{hook}/hook\" {{ class \"clustering\"; }}\n\
         }}"
    )
}

#[test]
fn a_lost_peer_is_mailed_and_posted_once_for_the_cluster_and_so_is_its_return() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = free_port();
    let out = tmp.path().join("smtp.out");
    let _server = SmtpServer::start(smtp, &out);
    let (hook, posted) = webhook_receiver();
    let mut h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    write_repo(&repo, 3, &alerts(smtp, hook));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    h.terminate(3);
    let lost = wait_until(WAIT, "a mail and a webhook say lab3 is lost", || {
        let m = mails(&out);
        let p = posted.lock().unwrap().clone();
        if m.iter()
            .any(|m| m.contains("lab3.example.com cannot be reached"))
            && p.iter().any(|b| b.contains("\"alert\":\"peer-lost\""))
        {
            Ok((m, p))
        } else {
            Err(format!("{m:?} {p:?}"))
        }
    });
    // Give any second sender time to show itself: none may.
    std::thread::sleep(Duration::from_secs(2));
    let (m, p) = (mails(&out), posted.lock().unwrap().clone());
    assert_eq!(m.len(), 1, "one mail for the cluster: {m:?}");
    assert_eq!(p.len(), 1, "one webhook for the cluster: {p:?}");
    let mail = &lost.0[0];
    assert!(
        mail.contains(
            "Subject: [strata] critical: lab3.example.com cannot be reached from the cluster"
        ),
        "{mail}"
    );
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(mail.contains("From: strata@example.com"), "{mail}");
    assert!(mail.contains("reported by: lab1.example.com"), "{mail}");
    let body: serde_json::Value = serde_json::from_str(&p[0]).unwrap();
    assert_eq!(body["machine"], "lab3.example.com");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["class"], "clustering");
    assert_eq!(body["reported_by"], "lab1.example.com");

    h.restart(3);
    wait_until(WAIT, "lab3's return is mailed and posted", || {
        let m = mails(&out);
        let p = posted.lock().unwrap().clone();
        if m.iter()
            .any(|m| m.contains("lab3.example.com can be reached again"))
            && p.iter().any(|b| b.contains("\"alert\":\"peer-recovered\""))
        {
            Ok(())
        } else {
            Err(format!("{m:?} {p:?}"))
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let recovered = mails(&out)
        .into_iter()
        .filter(|m| m.contains("can be reached again"))
        .count();
    assert_eq!(recovered, 1, "{:?}", mails(&out));
}

#[test]
fn a_relay_that_is_down_delays_no_commit_and_the_mail_follows_when_it_is_up() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = free_port();
    let (hook, _posted) = webhook_receiver();
    let mut h = MeshHarness::start(tmp.path(), 2);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    write_repo(&repo, 2, &alerts(smtp, hook));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    // No SMTP server yet: lab2 stops, lab1 tries to mail and fails.
    h.terminate(2);
    let log = wait_until(WAIT, "lab1 tried and will try again", || {
        let log = h.machine(1).log();
        if log.contains("alert email not sent, trying again") {
            Ok(log)
        } else {
            Err(log)
        }
    });
    assert!(log.contains("peer unreachable"), "{log}");
    // Commits go on meanwhile.
    write_repo(
        &repo,
        2,
        &format!("{}\n    timezone \"Europe/Paris\"", alerts(smtp, hook)),
    );
    ok(&apply(&h, 1, &repo, &[]));
    let out = tmp.path().join("smtp.out");
    let _server = SmtpServer::start(smtp, &out);
    wait_until(WAIT, "the mail arrives once the relay is up", || {
        let m = mails(&out);
        if m.iter()
            .any(|m| m.contains("lab2.example.com cannot be reached"))
        {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    });
}

#[test]
fn a_failed_hook_is_mailed_by_its_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = free_port();
    let out = tmp.path().join("smtp.out");
    let _server = SmtpServer::start(smtp, &out);
    let (hook, posted) = webhook_receiver();
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"/bin/false\"\n",
    )
    .unwrap();
    let agent = crate::agent_support::created(&dir);
    let repo = tmp.path().join("repo");
    write_repo(&repo, 1, &alerts(smtp, hook));
    let sd = crate::agent_support::sd(&agent);
    let applied = crate::agent_support::strata(&[
        "apply",
        "--yes",
        "--repo",
        repo.to_str().unwrap(),
        "--state-dir",
        &sd,
    ]);
    // The hook failed, so the apply says so (exit 1), and the machine mails it.
    assert_eq!(applied.status.code(), Some(1));
    wait_until(WAIT, "the failed hook is mailed and posted", || {
        let m = mails(&out);
        let p = posted.lock().unwrap().clone();
        if m.iter().any(|m| {
            m.contains("Subject: [strata] warning: hook /bin/false failed on lab1.example.com")
        }) && p.iter().any(|b| b.contains("\"alert\":\"hook-failed\""))
        {
            Ok(())
        } else {
            Err(format!("{m:?} {p:?}"))
        }
    });
}

/// The webhooks `posted` holds of alert `kind`.
fn of_kind(posted: &Arc<Mutex<Vec<String>>>, kind: &str) -> Vec<serde_json::Value> {
    posted
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter(|v| v["alert"] == kind)
        .collect()
}

#[test]
fn a_reverted_trial_and_a_lost_write_are_each_posted_once_by_the_machine_they_concern() {
    let tmp = tempfile::tempdir().unwrap();
    let (hook, posted) = webhook_receiver();
    let h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("repo");
    let alerts = format!(
        "alerts {{\n    webhook \"http://127.0.0.1:{hook}/hook\" {{ class \"clustering\"; }}\n}}\n    dns {{ server \"10.0.0.53\"; }}"
    );
    write_repo(&repo, 3, &alerts);
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    let with_dns = |server: &str| alerts.replace("10.0.0.53", server);

    // A trial through lab1, confirmed nowhere: every machine reverts it, lab1 says so once.
    write_repo(&repo, 3, &with_dns("10.0.0.99"));
    ok(&apply(
        &h,
        1,
        &repo,
        &["--confirm-within", "2s", "--wait", "30"],
    ));
    let reverted = wait_until(WAIT, "the revert is posted", || {
        let p = of_kind(&posted, "change-reverted");
        if p.is_empty() {
            Err(format!("{:?}", posted.lock().unwrap()))
        } else {
            Ok(p)
        }
    });
    assert_eq!(reverted[0]["reported_by"], "lab1.example.com");

    // A partition: lab1 and lab3 each change dns; on heal, lab3's later write wins and
    // lab1, whose write lost, says so once.
    crate::cluster_support::isolate(&h, 3, 1);
    write_repo(&repo, 3, &with_dns("10.0.0.61"));
    ok(&apply(&h, 1, &repo, &[]));
    write_repo(&repo, 3, &with_dns("10.0.0.63"));
    ok(&apply(&h, 3, &repo, &[]));
    h.relays.heal();
    let conflict = wait_until(WAIT, "the lost write is posted", || {
        let p = of_kind(&posted, "conflict-logged");
        if p.is_empty() {
            Err(format!("{:?}", posted.lock().unwrap()))
        } else {
            Ok(p)
        }
    });
    assert_eq!(
        conflict[0]["reported_by"], "lab1.example.com",
        "{conflict:?}"
    );
    assert!(
        conflict[0]["summary"]
            .as_str()
            .unwrap()
            .contains("cluster/dns"),
        "{conflict:?}"
    );
    crate::cluster_support::clean(&h, 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        of_kind(&posted, "change-reverted").len(),
        1,
        "one revert notice"
    );
    assert_eq!(
        of_kind(&posted, "conflict-logged").len(),
        1,
        "one conflict notice"
    );
}

#[test]
fn a_follower_posts_once_when_the_cluster_falls_out_of_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let (hook, posted) = webhook_receiver();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
            .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let commit = |server: &str| {
        std::fs::write(
            repo.join("cluster.kdl"),
            format!(
                "cluster \"americas\" {{\n    alerts {{\n        webhook \"http://127.0.0.1:{hook}/hook\" {{ class \"clustering\"; }}\n    }}\n    dns {{ server \"{server}\"; }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n"
            ),
        )
        .unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", server]);
    };
    git(&["init", "-q", "-b", "main"]);
    commit("10.0.0.53");
    let dir = tmp.path().join("lab1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nsource \"{}\" interval=\"200ms\" mode=\"report\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let agent = crate::agent_support::TestAgent::start(&dir, "lab1.example.com");
    let sd = agent.dir.display().to_string();
    let repo_arg = repo.display().to_string();
    ok(&crate::agent_support::strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo_arg,
        "--yes",
        "--state-dir",
        &sd,
    ]));
    // A new commit the follower only reports: out of sync, posted once.
    commit("10.0.0.54");
    let out_of_sync = wait_until(WAIT, "out of sync is posted", || {
        let p = of_kind(&posted, "out-of-sync");
        if p.is_empty() {
            Err(agent.log())
        } else {
            Ok(p)
        }
    });
    assert!(
        out_of_sync[0]["summary"]
            .as_str()
            .unwrap()
            .contains("is not applied (mode report)"),
        "{out_of_sync:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        of_kind(&posted, "out-of-sync").len(),
        1,
        "once, not every interval"
    );
}
