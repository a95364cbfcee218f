//! Benchmark: the web console's pages on a 20-machine cluster (issue 22): server time per
//! page, as the console reports it in each answer's `Server-Timing: app;dur=MS` header
//! (from the request's arrival to the answer's headers: the page's own work, TLS and the
//! network aside), and the client's wall time over HTTPS on loopback beside it.
//!
//! N real agents (default 20; `STRATA_BENCH_WEB=20` to choose) form a cluster as
//! `benches/push.rs` does (`tests/support/bench.rs`); machine 1 serves the console
//! (`web listen="127.0.0.1:0"`). lab1's administrator pushes a repo declaring the N
//! machines, with the `users` an operator logs in from. The bench logs in once, then asks
//! each page [`ROUNDS`] times (`STRATA_BENCH_WEB_ROUNDS` to change), the preview of an edit
//! (a commit written, validated and planned against the live cluster) included, and
//! prints p50 / p99 / max per page. A page that does not answer 200 fails the bench.
//!
//! Run with `cargo bench --bench web`. Budget (issue 22): every page under 100 ms of
//! server time. `STRATA_BENCH_KEEP=1` keeps the state dirs and agents' logs.

use std::path::Path;

#[allow(dead_code)]
#[path = "../tests/it/agent_support.rs"]
mod agent_support;
#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/git.rs"]
mod git;
#[path = "../tests/support/knobs.rs"]
mod knobs;
#[allow(dead_code)]
#[path = "../tests/it/mesh_support.rs"]
mod mesh_support;
#[path = "../tests/support/pusher.rs"]
mod pusher;
#[path = "../tests/support/readings.rs"]
mod readings;
#[path = "../tests/support/relay.rs"]
mod relay;

use bench::{form, full_mesh, ms, quantile, sorted, write_repo};
use mesh_support::MeshHarness;
use pusher::Pusher;

/// Requests per page.
const ROUNDS: usize = 30;
const PING_MS: u64 = 500;
const PASSPHRASE: &str = "bench console passphrase";

fn users(hash: &str) -> String {
    format!(
        "    users {{\n        user \"admin\" role=\"administrator\"\n        user \"ops\" role=\"operator\" passphrase-hash=\"{hash}\"\n    }}\n"
    )
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                // The console's self-signed certificate.
                .disable_verification(true)
                .build(),
        )
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// The server time an answer reports, in ms.
fn server_ms(r: &ureq::http::Response<ureq::Body>) -> f64 {
    let v = r.headers().get("server-timing").unwrap().to_str().unwrap();
    v.strip_prefix("app;dur=").unwrap().parse().unwrap()
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[at..at + 64].to_owned()
}

fn p50_p99_max(v: Vec<f64>) -> [f64; 3] {
    let v = sorted(v);
    [quantile(&v, 0.5), quantile(&v, 0.99), *v.last().unwrap()]
}

fn run(n: usize, rounds: usize) {
    let (_guard, root) = knobs::root();
    let h = MeshHarness::start_with(&root, n, |i| {
        if i == 1 {
            "web listen=\"127.0.0.1:0\"\n".into()
        } else {
            String::new()
        }
    });
    let joiners: Vec<usize> = (2..=n).collect();
    form(&h, &root, "bench", PING_MS, &joiners);
    let all: Vec<usize> = (1..=n).collect();
    full_mesh(&h, &all);
    let hash = strata::cluster::users::hash_passphrase(PASSPHRASE).unwrap();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    write_repo(&repo, n, PING_MS, 0, &users(&hash));
    git::commit_all(&repo, ("Bench Operator", "ops@example.com"), "bench").unwrap();
    let out = Pusher::admin_of(&h, 1, &root).push(&repo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let addr = std::fs::read_to_string(h.machine(1).dir.join("web.address")).unwrap();
    let base = format!("https://{}", addr.trim());
    let agent = client();
    let login = agent
        .post(&format!("{base}/login"))
        .send_form([("user", "ops"), ("passphrase", PASSPHRASE)])
        .unwrap();
    assert_eq!(login.status(), 303, "login");
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let get = |path: &str| {
        let started = std::time::Instant::now();
        let mut r = agent
            .get(&format!("{base}{path}"))
            .header("Cookie", &cookie)
            .call()
            .unwrap();
        let wall = ms(started.elapsed().as_secs_f64());
        assert_eq!(r.status(), 200, "{path}");
        let server = server_ms(&r);
        (server, wall, r.body_mut().read_to_string().unwrap())
    };
    let (_, _, page) = get("/modes/cluster/dns");
    let token = csrf(&page);
    let pages = [
        "/modes/cluster",
        "/modes/group:Main_Group",
        "/modes/machine:lab1.example.com/dns",
        "/modes/cluster/dns",
        "/cluster",
        "/check",
        "/log",
        "/conflicts",
    ];
    eprintln!(
        "web n={n}: {rounds} requests per page, server time (Server-Timing) and client wall time over HTTPS, ms"
    );
    let mut worst: f64 = 0.0;
    for path in pages {
        let (server, wall): (Vec<f64>, Vec<f64>) = (0..rounds)
            .map(|_| {
                let (s, w, _) = get(path);
                (s, w)
            })
            .unzip();
        let (s, w) = (p50_p99_max(server), p50_p99_max(wall));
        worst = worst.max(s[2]);
        eprintln!(
            "  GET  {path:<40} server p50 {:>6.1}  p99 {:>6.1}  max {:>6.1}   wall p50 {:>6.1}  p99 {:>6.1}",
            s[0], s[1], s[2], w[0], w[1]
        );
    }
    // The preview of an edit: a commit written, validated, planned against the cluster.
    let (server, wall): (Vec<f64>, Vec<f64>) = (0..rounds)
        .map(|k| {
            let started = std::time::Instant::now();
            let mut r = agent
                .post(&format!("{base}/modes/cluster/dns/preview"))
                .header("Cookie", &cookie)
                .send_form([
                    ("csrf", token.as_str()),
                    ("action", "text"),
                    (
                        "text",
                        &format!("dns {{\n    server \"10.9.{}.53\"\n}}", k % 250),
                    ),
                ])
                .unwrap();
            let wall = ms(started.elapsed().as_secs_f64());
            let body = r.body_mut().read_to_string().unwrap();
            assert_eq!(r.status(), 200, "preview: {body}");
            (server_ms(&r), wall)
        })
        .unzip();
    let (s, w) = (p50_p99_max(server), p50_p99_max(wall));
    worst = worst.max(s[2]);
    eprintln!(
        "  POST {:<40} server p50 {:>6.1}  p99 {:>6.1}  max {:>6.1}   wall p50 {:>6.1}  p99 {:>6.1}",
        "/modes/cluster/dns/preview (edit)", s[0], s[1], s[2], w[0], w[1]
    );
    eprintln!("web n={n}: slowest answer {worst:.1} ms of server time (budget 100 ms)");
    let _ = Path::new(&root);
}

fn main() {
    let rounds = knobs::count("STRATA_BENCH_WEB_ROUNDS", ROUNDS);
    for n in knobs::sizes("STRATA_BENCH_WEB", "20") {
        run(n, rounds);
    }
}
