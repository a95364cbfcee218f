//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs), against three real agents
//! whose cluster came from a `git push`. An operator logs in, changes mode, sees where
//! dns is defined, overrides group Paris's dns starting from the cluster's, edits it as
//! KDL (an invalid edit first: the diagnostic with line and column), confirms, and the
//! change runs on Paris's machines and no other. A read-only user's form is refused on
//! the server, a POST without the CSRF token is refused, a value holding `<script>` is
//! shown escaped, plain HTTP gets no page, and a brute force is throttled. Every page is
//! saved as a screenshot under `target/web-screenshots/` for review.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::agent_support::git_repo;
use crate::mesh_support::{MeshHarness, wait_until};
use crate::pusher::Pusher;

const PASSPHRASE: &str = "console passphrase 1";

/// chromium and chromedriver, if installed (.ci/run installs both).
fn browser() -> Option<()> {
    let have = |name: &str| Command::new(name).arg("--version").output().is_ok();
    if have("chromium") && have("chromedriver") {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have chromium and chromedriver"
    );
    eprintln!("skipping: no chromium or chromedriver on this machine");
    None
}

fn repo_kdl(hash: &str) -> String {
    format!(
        "cluster \"americas\" {{\n    cluster-mesh ping-interval-ms=200\n    users {{\n        \
         user \"admin\" role=\"administrator\" passphrase-hash=\"{hash}\"\n        \
         user \"ops\" role=\"operator\" passphrase-hash=\"{hash}\"\n        \
         user \"rob\" role=\"read-only\" passphrase-hash=\"{hash}\"\n    }}\n    \
         dns {{\n        server \"10.0.0.53\"\n    }}\n    \
         text-resources {{\n        resource \"footer\" \"<script>alert('owned')</script>\"\n    }}\n}}\n\
         group \"Main_Group\"\ngroup \"Paris\"\n\
         machine \"lab1.example.com\"\n\
         machine \"lab2.example.com\" group=\"Paris\"\n\
         machine \"lab3.example.com\" group=\"Paris\"\n"
    )
}

/// A chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "chromedriver listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn connect(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in chromium")
}

/// Saves the page as `target/web-screenshots/NAME.png`.
async fn shot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Clicks what `css` finds and waits for the page it leads to (a form's answer).
async fn click_to(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..600 {
        // The old document's element goes stale once the new page replaced it.
        if old.tag_name().await.is_err() {
            let ready = c.execute("return document.readyState", vec![]).await;
            if ready
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .as_deref()
                == Some("complete")
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} led to no new page");
}

async fn source(c: &Client) -> String {
    c.source().await.unwrap()
}

async fn login(c: &Client, base: &str, user: &str, passphrase: &str) -> String {
    c.goto(&format!("{base}login")).await.unwrap();
    c.find(Locator::Css("#user"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Css("#passphrase"))
        .await
        .unwrap()
        .send_keys(passphrase)
        .await
        .unwrap();
    click_to(c, "form.login button").await;
    source(c).await
}

async fn logout(c: &Client) {
    click_to(c, "form.logout button").await;
}

/// A form posted from the page (with its cookies, as a browser posts a forged form;
/// the console's content security policy forbids `fetch`): the page it leads to.
async fn post_form(c: &Client, path: &str, fields: &[(&str, &str)]) -> String {
    let script = "const [path, fields] = arguments; \
        const f = document.createElement('form'); f.method = 'post'; f.action = path; \
        for (const [k, v] of fields) { const i = document.createElement('input'); \
        i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } \
        document.body.appendChild(f); f.id = 'forged';";
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .map(|(k, v)| serde_json::json!([k, v]))
        .collect();
    c.execute(script, vec![path.into(), fields.into()])
        .await
        .unwrap();
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.execute("document.getElementById('forged').submit()", vec![])
        .await
        .unwrap();
    for _ in 0..600 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    source(c).await
}

async fn csrf(c: &Client) -> String {
    c.find(Locator::Css("form.logout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap()
}

fn running_dns(h: &MeshHarness, i: usize) -> String {
    std::fs::read_to_string(h.machine(i).dir.join("running/dns.kdl")).unwrap_or_default()
}

#[test]
fn an_operator_overrides_a_groups_dns_in_the_browser_and_only_that_group_changes() {
    if browser().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start_with(tmp.path(), 3, |i| {
        if i == 1 {
            "web listen=\"127.0.0.1:0\"\n".into()
        } else {
            String::new()
        }
    });
    h.form(tmp.path(), "americas");
    let hash = strata::cluster::users::hash_passphrase(PASSPHRASE).unwrap();
    let repo = tmp.path().join("repo");
    git_repo(&repo, &[("cluster.kdl", &repo_kdl(&hash))], "americas");
    let pushed = Pusher::admin_of(&h, 1, tmp.path()).push(&repo);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    for i in 1..=3 {
        wait_until(Duration::from_secs(60), "the push runs everywhere", || {
            let dns = running_dns(&h, i);
            if dns.contains("10.0.0.53") {
                Ok(())
            } else {
                Err(dns)
            }
        });
    }
    let addr = std::fs::read_to_string(h.machine(1).dir.join("web.address")).unwrap();
    let addr = addr.trim().to_owned();
    let base = format!("https://{addr}/");

    // Plain HTTP on the console's port gets no page.
    let mut plain = std::net::TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
        "{answer:?}"
    );

    // A form posted from another site is refused before it is read.
    let http: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut forged = http
        .post(&format!("{base}login"))
        .header("Origin", "https://evil.example")
        .send_form([("user", "ops"), ("passphrase", PASSPHRASE)])
        .unwrap();
    assert_eq!(forged.status(), 403);
    let text = forged.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("posted from another site (https://evil.example"),
        "{text}"
    );
    assert!(forged.headers().get("set-cookie").is_none());

    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = connect(&driver, &tmp.path().join("chromium")).await;

        // Not logged in: every page leads to the login form.
        c.goto(&format!("{base}modes/cluster")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/login"));
        shot(&c, "login").await;

        let page = login(&c, &base, "ops", PASSPHRASE).await;
        assert!(page.contains("Cluster americas"), "{page}");
        assert!(page.contains("Group Paris"), "the mode tree: {page}");
        shot(&c, "mode-tree").await;

        // Change mode to group Paris, then its dns: inherited from the cluster.
        c.find(Locator::Css("#mode option[value='group:Paris']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click_to(&c, "nav.tree form button").await;
        assert!(
            c.current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/modes/group:Paris")
        );
        click_to(&c, "a[href='/modes/group:Paris/dns']").await;
        let page = source(&c).await;
        assert!(
            page.contains("Settings for this feature are currently defined at:"),
            "{page}"
        );
        assert!(page.contains("Inherited"), "{page}");
        assert!(
            page.contains("lab1.example.com, lab2.example.com, lab3.example.com"),
            "{page}"
        );
        shot(&c, "section-inherited").await;

        // Override settings, starting from the cluster's; the preview shows the plan.
        c.find(Locator::Css("input[name=from][value=cluster]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click_to(&c, "#override").await;
        let page = source(&c).await;
        assert!(
            page.contains("override dns at group:Paris, starting with cluster"),
            "{page}"
        );
        assert!(page.contains("Plan"), "{page}");
        shot(&c, "preview-override").await;
        click_to(&c, "#confirm").await;
        let page = source(&c).await;
        assert!(page.contains("Applied as change set"), "{page}");

        // Edit it as KDL: a mistake first, shown with its line and column.
        let edit = |text: &'static str| {
            let c = c.clone();
            async move {
                let area = c.find(Locator::Css("textarea[name=text]")).await.unwrap();
                area.clear().await.unwrap();
                area.send_keys(text).await.unwrap();
                click_to(&c, "#preview-text").await;
                c.source().await.unwrap()
            }
        };
        let section = format!("{base}modes/group:Paris/dns");
        c.goto(&section).await.unwrap();
        let page = source(&c).await;
        assert!(page.contains("Defined at this mode"), "{page}");
        let page = edit("dns {\n    server \"10.0.0.999\"\n}").await;
        assert!(page.contains("would not be a valid config repo"), "{page}");
        assert!(
            page.contains("cluster.kdl:"),
            "the diagnostic names file, line and column: {page}"
        );
        shot(&c, "preview-invalid").await;
        // The text comes back, to be fixed there.
        let page = edit("dns {\n    server \"10.0.0.99\"\n}").await;
        assert!(page.contains("10.0.0.99"), "{page}");
        click_to(&c, "#confirm").await;
        let page = source(&c).await;
        assert!(page.contains("Applied as change set"), "{page}");
        assert!(
            page.contains("lab2.example.com") && page.contains("lab3.example.com"),
            "{page}"
        );
        assert!(!page.contains("<li>lab1.example.com</li>"), "{page}");
        shot(&c, "applied").await;

        // A POST without the session's CSRF token is refused.
        let page = post_form(
            &c,
            "/modes/group:Paris/dns/preview",
            &[("action", "delete")],
        )
        .await;
        assert!(
            page.contains("did not come from this console session"),
            "{page}"
        );
        assert!(page.contains("Forbidden"), "{page}");

        // A value holding <script> is shown as text.
        c.goto(&format!("{base}modes/cluster/text-resources"))
            .await
            .unwrap();
        let page = source(&c).await;
        assert!(
            page.contains("&lt;script&gt;alert('owned')&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
        shot(&c, "escaped").await;

        for (path, name) in [
            ("cluster", "cluster"),
            ("check", "check"),
            ("log", "log"),
            ("conflicts", "conflicts"),
        ] {
            c.goto(&format!("{base}{path}")).await.unwrap();
            let page = source(&c).await;
            assert!(!page.contains("Service Unavailable"), "{path}: {page}");
            shot(&c, name).await;
        }
        let page = {
            c.goto(&format!("{base}cluster")).await.unwrap();
            source(&c).await
        };
        assert!(
            page.contains("Synced") || page.contains("OutOfSync") || page.contains("Unknown"),
            "{page}"
        );
        assert!(page.contains("lab3.example.com"), "{page}");
        logout(&c).await;

        // A read-only user sees the section, with no forms; a form posted anyway is refused.
        let page = login(&c, &base, "rob", PASSPHRASE).await;
        assert!(page.contains("Cluster americas"), "{page}");
        c.goto(&section).await.unwrap();
        let page = source(&c).await;
        assert!(page.contains("Editing is off"), "{page}");
        assert!(!page.contains("textarea"), "{page}");
        let token = csrf(&c).await;
        let page = post_form(
            &c,
            "/modes/group:Paris/dns/preview",
            &[("csrf", &token), ("action", "delete")],
        )
        .await;
        assert!(page.contains("rob is read-only"), "{page}");
        assert!(page.contains("Forbidden"), "{page}");
        shot(&c, "read-only").await;
        logout(&c).await;

        // Guessing is throttled: soon the form answers without checking.
        let mut throttled = false;
        for _ in 0..15 {
            let page = login(&c, &base, "ops", "not the passphrase").await;
            if page.contains("Not checked") {
                throttled = true;
                break;
            }
            assert!(page.contains("Wrong user or passphrase"), "{page}");
        }
        assert!(
            throttled,
            "fifteen wrong passphrases in a row were all checked"
        );
        shot(&c, "throttled").await;
        c.close().await.unwrap();
    });

    // The change ran on Paris's machines, and not on lab1.
    for i in [2, 3] {
        wait_until(Duration::from_secs(60), "Paris runs the new dns", || {
            let dns = running_dns(&h, i);
            if dns.contains("10.0.0.99") {
                Ok(())
            } else {
                Err(dns)
            }
        });
    }
    let dns = running_dns(&h, 1);
    assert!(
        dns.contains("10.0.0.53") && !dns.contains("10.0.0.99"),
        "{dns}"
    );
}
