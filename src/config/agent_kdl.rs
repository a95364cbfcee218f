//! The agent's local settings (`agent.kdl` in its state dir): what only this machine
//! knows — its name, where it listens, its hooks, the repo it follows, its standalone
//! settings. Not replicated, not part of the config repo.

use std::path::{Path, PathBuf};

use kdl::{KdlDocument, KdlNode};

use crate::model::Node;

/// The default cluster port, as AsyncOS's CCS.
pub const DEFAULT_PORT: u16 = 2222;

/// Parsed `agent.kdl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// This machine's name in the cluster.
    pub machine: String,
    /// The address peers and operators reach it at (default: the machine name).
    pub address: Option<String>,
    /// Where to listen (`HOST:PORT`).
    pub listen: String,
    /// Base delay after a refused login, in milliseconds; it doubles with each further
    /// refusal from the same address (up to 30 s) and resets on success.
    pub auth_delay_ms: u64,
    /// The resource budget that keeps the agent serving while one address floods it.
    pub limits: Limits,
    /// Commands run after the running config changes, each with the changed section
    /// names appended as arguments.
    pub hooks: Vec<Vec<String>>,
    /// Commands run when a peer is lost or recovered (`STRATA_ALERT` is `peer-lost` or
    /// `peer-recovered`, `STRATA_PEER` the machine), as the alert hook.
    pub alert_hooks: Vec<Vec<String>>,
    /// The serial number this machine presents when it joins (default: derived from its
    /// host key, so it is stable and unique).
    pub serial: Option<String>,
    /// The version of the appliance this agent manages (`appliance-version "15.0.1-416"`),
    /// recorded in its membership so that `cluster list` shows it and `check` compares it;
    /// `None`: unknown.
    pub appliance_version: Option<String>,
    /// Directory for the running config (default: `running/` in the state dir).
    pub running_dir: Option<PathBuf>,
    /// The machine's standalone settings: sections recorded at machine level on first
    /// start, which `cluster create` lifts to the cluster.
    pub standalone: Vec<Node>,
    /// The config repo this agent follows (`source "URL" branch=… mode=…`), if any.
    pub follow: Option<Follow>,
    /// Where Prometheus metrics are served over plain HTTP (`metrics listen="ADDR:PORT"`,
    /// path `/metrics`); `None`: not served.
    pub metrics: Option<std::net::SocketAddr>,
    /// Where the web console is served over HTTPS (`web listen="ADDR:PORT"`); `None`:
    /// not served.
    pub web: Option<super::agent_web::Web>,
}

/// What the agent does with a followed branch's new commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowMode {
    /// Apply each new commit as one change set, stamped with it.
    Apply,
    /// Only report the cluster out of sync.
    Report,
}

impl FollowMode {
    /// The name `agent.kdl` and `strata status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowMode::Apply => "apply",
            FollowMode::Report => "report",
        }
    }
}

/// A followed config repo: `source "URL" branch="main" interval="30s" mode="apply"
/// self-heal=#true grace="60s"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// A local path to a git repository (watched, and re-read on the interval), or a
    /// `file://`, `ssh://` or `https://` URL (fetched on the interval).
    pub url: String,
    /// The branch followed (for a local path, any revision git understands: a commit
    /// id pins one).
    pub branch: String,
    /// How often the branch is fetched (remote) or re-read (local), in milliseconds.
    pub interval_ms: u64,
    /// Apply new commits, or only report them.
    pub mode: FollowMode,
    /// Revert changes that did not come from the branch (needs mode apply).
    pub self_heal: bool,
    /// How long such a change stands, reported, before self-heal reverts it (ms).
    pub grace_ms: u64,
}

impl Follow {
    /// Whether the URL names a remote to fetch, rather than a local repository.
    pub fn is_remote(&self) -> bool {
        self.url.contains("://")
    }
}

/// Parses a duration as the settings and `--wait` write it: a bare number of seconds
/// (`30`), or humantime's units, combined as people write them (`30s`, `2m`, `1h30m`,
/// `1h 30m`, `500ms`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|_| {
        format!("`{text}` is not a duration: write 30 (seconds), 30s, 2m, 1h30m or 500ms")
    })
}

/// Reads a `source` node (see [`Follow`]).
fn parse_follow(node: &KdlNode) -> Result<Follow, String> {
    let url = node
        .get(0)
        .and_then(|v| v.as_string())
        .filter(|u| !u.trim().is_empty())
        .ok_or("`source` needs the repo as a string: a local path or a file://, ssh:// or https:// URL")?
        .to_owned();
    if let Some((scheme, _)) = url.split_once("://")
        && !["file", "ssh", "https", "http"].contains(&scheme)
    {
        return Err(format!(
            "`source \"{url}\"`: `{scheme}://` is not a transport Strata fetches; give a local path or a file://, ssh:// or https:// URL"
        ));
    }
    let mut follow = Follow {
        url,
        branch: "main".into(),
        interval_ms: 30_000,
        mode: FollowMode::Apply,
        self_heal: false,
        grace_ms: 60_000,
    };
    for entry in node.entries().iter().skip(1) {
        let Some(name) = entry.name().map(|n| n.value()) else {
            return Err("`source` takes one argument, the repo; the rest are properties (branch=, interval=, mode=, self-heal=, grace=)".into());
        };
        let value = entry.value();
        let text = || {
            value
                .as_string()
                .map(str::to_owned)
                .ok_or(format!("`source` {name}= needs a string"))
        };
        let ms = || -> Result<u64, String> {
            let d = parse_duration(&text()?).map_err(|e| format!("`source` {name}=: {e}"))?;
            Ok(d.as_millis() as u64)
        };
        match name {
            "branch" => follow.branch = text()?,
            "interval" => follow.interval_ms = ms()?.max(1),
            "grace" => follow.grace_ms = ms()?,
            "mode" => {
                follow.mode = match text()?.as_str() {
                    "apply" => FollowMode::Apply,
                    "report" => FollowMode::Report,
                    other => {
                        return Err(format!(
                            "`source` mode=\"{other}\": the mode is \"apply\" or \"report\""
                        ));
                    }
                }
            }
            "self-heal" => {
                follow.self_heal = value
                    .as_bool()
                    .ok_or("`source` self-heal= needs #true or #false")?;
            }
            other => {
                return Err(format!(
                    "`source` has no property `{other}` (branch=, interval=, mode=, self-heal=, grace=)"
                ));
            }
        }
    }
    if follow.branch.trim().is_empty() {
        return Err("`source` branch= needs a branch name".into());
    }
    if follow.self_heal && follow.mode == FollowMode::Report {
        return Err(
            "`source` self-heal=#true needs mode=\"apply\": in report mode nothing is reverted"
                .into(),
        );
    }
    Ok(follow)
}

/// How much of the agent one client, one address or the unauthenticated may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection that has not logged in this long after it opened is closed.
    pub login_timeout_ms: u64,
    /// At most this many connections may be open and not yet logged in.
    pub max_unauthenticated: usize,
    /// At most this many connections may be open from one address.
    pub max_per_address: usize,
    /// At most this many requests of one user may be in progress at once.
    pub max_requests_per_user: usize,
}

/// How long a connection may take to log in, by default (`login-timeout-ms`). A held
/// passphrase check ends well before it: see `cluster::penalties::MAX_HOLD`.
pub const DEFAULT_LOGIN_TIMEOUT_MS: u64 = 10_000;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            login_timeout_ms: DEFAULT_LOGIN_TIMEOUT_MS,
            max_unauthenticated: 256,
            max_per_address: 32,
            max_requests_per_user: 8,
        }
    }
}

/// `agent.kdl` could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{file}: {message}")]
#[diagnostic(
    code(strata::config::agent_kdl),
    help("see docs/operations.md (The state dir) for agent.kdl")
)]
pub struct SettingsError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl Settings {
    /// Settings for a new state dir.
    pub fn new(machine: String, listen: String) -> Settings {
        Settings {
            machine,
            address: None,
            listen,
            auth_delay_ms: 1000,
            limits: Limits::default(),
            hooks: Vec::new(),
            alert_hooks: Vec::new(),
            serial: None,
            appliance_version: None,
            running_dir: None,
            standalone: Vec::new(),
            follow: None,
            metrics: None,
            web: None,
        }
    }

    /// Parses the text of `agent.kdl`.
    pub fn parse(file: &str, text: &str) -> Result<Settings, SettingsError> {
        let err = |message: String| SettingsError {
            file: file.to_owned(),
            message,
        };
        let doc: KdlDocument =
            crate::config::parse_kdl(text).map_err(|e| err(format!("not valid KDL: {e}")))?;
        let string_arg = |n: &KdlNode| -> Result<String, SettingsError> {
            n.get(0)
                .and_then(|v| v.as_string())
                .map(str::to_owned)
                .ok_or_else(|| err(format!("`{}` needs a string argument", n.name().value())))
        };
        let count = |n: &KdlNode| -> Result<u64, SettingsError> {
            n.get(0)
                .and_then(|v| v.as_integer())
                .and_then(|i| u64::try_from(i).ok())
                .ok_or_else(|| {
                    err(format!(
                        "`{}` needs a non-negative integer",
                        n.name().value()
                    ))
                })
        };
        let size = |n: &KdlNode| -> Result<usize, SettingsError> {
            count(n).and_then(|c| {
                usize::try_from(c)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| err(format!("`{}` needs a positive integer", n.name().value())))
            })
        };
        let mut s = Settings::new(String::new(), format!("0.0.0.0:{DEFAULT_PORT}"));
        for node in doc.nodes() {
            match node.name().value() {
                "machine" => s.machine = string_arg(node)?,
                "address" => s.address = Some(string_arg(node)?),
                "listen" => s.listen = string_arg(node)?,
                "running-dir" => s.running_dir = Some(PathBuf::from(string_arg(node)?)),
                "auth-delay-ms" => s.auth_delay_ms = count(node)?,
                "login-timeout-ms" => s.limits.login_timeout_ms = count(node)?.max(1),
                "max-unauthenticated" => s.limits.max_unauthenticated = size(node)?,
                "max-connections-per-address" => s.limits.max_per_address = size(node)?,
                "max-requests-per-user" => s.limits.max_requests_per_user = size(node)?,
                "serial" => s.serial = Some(string_arg(node)?),
                "appliance-version" => {
                    let v = string_arg(node)?;
                    if v.trim().is_empty() {
                        return Err(err(
                            "`appliance-version` needs the version, e.g. \"15.0.1-416\"".into(),
                        ));
                    }
                    s.appliance_version = Some(v.trim().to_owned());
                }
                name @ ("hook" | "alert-hook") => {
                    let argv: Option<Vec<String>> = node
                        .entries()
                        .iter()
                        .map(|e| e.value().as_string().map(str::to_owned))
                        .collect();
                    let list = if name == "hook" {
                        &mut s.hooks
                    } else {
                        &mut s.alert_hooks
                    };
                    match argv {
                        Some(argv) if !argv.is_empty() => list.push(argv),
                        _ => {
                            return Err(err(format!(
                                "`{name}` takes a command and its arguments, as strings"
                            )));
                        }
                    }
                }
                "source" => {
                    if s.follow.is_some() {
                        return Err(err(
                            "only one `source`: an agent follows one branch of one repo".into(),
                        ));
                    }
                    s.follow = Some(parse_follow(node).map_err(err)?);
                }
                "metrics" => {
                    let listen = node
                        .get("listen")
                        .and_then(|v| v.as_string())
                        .ok_or_else(|| {
                            err("`metrics` needs where to serve them: metrics listen=\"127.0.0.1:9464\"".into())
                        })?;
                    let addr = listen.parse().map_err(|_| {
                        err(format!(
                            "`metrics listen=\"{listen}\"` is not an address and port, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\""
                        ))
                    })?;
                    s.metrics = Some(addr);
                }
                "web" => s.web = Some(super::agent_web::parse(node).map_err(err)?),
                "standalone" => {
                    if let Some(children) = node.children() {
                        s.standalone = children.nodes().iter().map(Node::from_kdl).collect();
                    }
                }
                other => return Err(err(format!("unknown setting `{other}`"))),
            }
        }
        if s.machine.is_empty() {
            return Err(err("`machine \"NAME\"` is required".into()));
        }
        Ok(s)
    }

    /// These settings with their relative paths made absolute against `dir`, the state
    /// dir `agent.kdl` was read from (see [`crate::paths`]): `running-dir`, a `source`
    /// that is a local path, and a `hook`'s or `alert-hook`'s command when it names a
    /// path (`bin/reload`; a bare name is looked up on `PATH`). The agent's working
    /// directory then never changes what they mean.
    pub fn made_absolute(mut self, dir: &Path) -> Settings {
        use crate::paths::{absolute_in, command_in};
        if let Some(running) = &self.running_dir {
            self.running_dir = Some(absolute_in(dir, running));
        }
        if let Some(f) = &mut self.follow
            && !f.is_remote()
        {
            f.url = absolute_in(dir, Path::new(&f.url))
                .to_string_lossy()
                .into_owned();
        }
        for argv in self.hooks.iter_mut().chain(self.alert_hooks.iter_mut()) {
            if let Some(command) = argv.first_mut() {
                *command = command_in(dir, command);
            }
        }
        self
    }

    /// The text of a new `agent.kdl`, with comments saying what each setting does.
    pub fn to_text(&self) -> String {
        let q = |s: &str| kdl::KdlValue::String(s.to_owned()).to_string();
        let mut out =
            String::from("// Strata agent settings: local to this machine, never replicated.\n");
        out.push_str(&format!(
            "// This machine's name in the cluster.\nmachine {}\n",
            q(&self.machine)
        ));
        out.push_str(&format!(
            "// Where the SSH server listens.\nlisten {}\n",
            q(&self.listen)
        ));
        if let Some(a) = &self.address {
            out.push_str(&format!("address {}\n", q(a)));
        }
        out.push_str(&format!(
            "// Delay after a refused login (ms); doubles per further refusal.\nauth-delay-ms {}\n",
            self.auth_delay_ms
        ));
        let l = &self.limits;
        out.push_str(&format!(
            "// The resource budget: a connection must log in within login-timeout-ms; at most\n\
             // max-unauthenticated connections wait to log in, max-connections-per-address come\n\
             // from one address, max-requests-per-user run at once for one user.\n\
             login-timeout-ms {}\nmax-unauthenticated {}\nmax-connections-per-address {}\nmax-requests-per-user {}\n",
            l.login_timeout_ms, l.max_unauthenticated, l.max_per_address, l.max_requests_per_user
        ));
        out.push_str(
            "// Commands run when the running config changes, with the changed section names\n\
             // appended, e.g.: hook \"/usr/local/bin/render-and-reload\"\n",
        );
        for h in &self.hooks {
            let args: Vec<String> = h.iter().map(|a| q(a)).collect();
            out.push_str(&format!("hook {}\n", args.join(" ")));
        }
        out.push_str(
            "// Commands run when a peer is lost or comes back (STRATA_ALERT, STRATA_PEER), e.g.:\n\
             // alert-hook \"/usr/local/bin/page-oncall\"\n",
        );
        for h in &self.alert_hooks {
            let args: Vec<String> = h.iter().map(|a| q(a)).collect();
            out.push_str(&format!("alert-hook {}\n", args.join(" ")));
        }
        if let Some(serial) = &self.serial {
            out.push_str(&format!("serial {}\n", q(serial)));
        }
        out.push_str(
            "// The version of the appliance this machine manages, shown by `cluster list` and\n\
             // compared by `check`, e.g.: appliance-version \"15.0.1-416\"\n",
        );
        if let Some(v) = &self.appliance_version {
            out.push_str(&format!("appliance-version {}\n", q(v)));
        }
        out.push_str(
            "// A config repo to follow (a local path or a file://, ssh:// or https:// URL), e.g.:\n\
             // source \"/srv/americas\" branch=\"main\" interval=\"30s\" mode=\"apply\" self-heal=#true grace=\"60s\"\n",
        );
        if let Some(f) = &self.follow {
            out.push_str(&format!(
                "source {} branch={} interval=\"{}ms\" mode=\"{}\" self-heal={} grace=\"{}ms\"\n",
                q(&f.url),
                q(&f.branch),
                f.interval_ms,
                f.mode.as_str(),
                if f.self_heal { "#true" } else { "#false" },
                f.grace_ms
            ));
        }
        out.push_str(
            "// Prometheus metrics over plain HTTP at http://ADDR/metrics, e.g.:\n\
             // metrics listen=\"127.0.0.1:9464\"\n",
        );
        if let Some(addr) = &self.metrics {
            out.push_str(&format!("metrics listen=\"{addr}\"\n"));
        }
        out.push_str(&super::agent_web::render(self.web.as_ref()));
        out.push_str("// Standalone settings (sections), lifted to the cluster by `strata cluster create`.\n");
        out.push_str("standalone {\n");
        for n in &self.standalone {
            for line in n.to_canonical().lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_ones_are_named() {
        let mut s = Settings::new("lab1.example.com".into(), "127.0.0.1:0".into());
        s.hooks.push(vec!["/bin/echo".into(), "changed:".into()]);
        s.alert_hooks.push(vec!["/bin/echo".into(), "alert".into()]);
        s.serial = Some("0019B9B4E6D7-ABC".into());
        s.appliance_version = Some("15.0.1-416".into());
        let dns: KdlDocument = "dns { server \"10.0.0.53\" }".parse().unwrap();
        s.standalone.push(Node::from_kdl(&dns.nodes()[0]));
        let back = Settings::parse("agent.kdl", &s.to_text()).unwrap();
        assert_eq!(back, s);

        let e = Settings::parse("agent.kdl", "machine \"a\"\nlisten 5\n").unwrap_err();
        assert_eq!(e.to_string(), "agent.kdl: `listen` needs a string argument");
        let e = Settings::parse("agent.kdl", "machine \"a\"\nlisen \"x\"\n").unwrap_err();
        assert_eq!(e.to_string(), "agent.kdl: unknown setting `lisen`");
        assert!(Settings::parse("agent.kdl", "listen \"x\"\n").is_err());
        let e =
            Settings::parse("agent.kdl", "machine \"a\"\nappliance-version \" \"\n").unwrap_err();
        assert!(e.to_string().contains("needs the version"), "{e}");
        assert!(Settings::parse("agent.kdl", "machine {").is_err());
    }

    #[test]
    fn relative_paths_are_read_from_the_state_dir() {
        let text = "machine \"a\"\nrunning-dir \"run\"\nsource \"../americas\"\n\
                    hook \"bin/reload\" \"x\"\nhook \"sh\" \"-c\" \"true\"\nalert-hook \"./page\"\n";
        let s = Settings::parse("agent.kdl", text)
            .unwrap()
            .made_absolute(Path::new("/var/lib/strata"));
        assert_eq!(
            s.running_dir.as_deref(),
            Some(Path::new("/var/lib/strata/run"))
        );
        assert_eq!(s.follow.unwrap().url, "/var/lib/strata/../americas");
        assert_eq!(s.hooks[0], ["/var/lib/strata/bin/reload", "x"]);
        assert_eq!(s.hooks[1], ["sh", "-c", "true"]);
        assert_eq!(s.alert_hooks[0], ["/var/lib/strata/page"]);
        let remote = Settings::parse("agent.kdl", "machine \"a\"\nsource \"ssh://h/r\"\n")
            .unwrap()
            .made_absolute(Path::new("/x"));
        assert_eq!(remote.follow.unwrap().url, "ssh://h/r");
    }

    #[test]
    fn a_source_is_read_with_defaults_and_bad_ones_are_named() {
        let s = Settings::parse(
            "agent.kdl",
            "machine \"a\"\nsource \"/srv/repo\" interval=\"1h\" self-heal=#true grace=\"2m\"\n",
        )
        .unwrap();
        let f = s.follow.clone().unwrap();
        assert_eq!(
            (
                f.branch.as_str(),
                f.interval_ms,
                f.mode,
                f.self_heal,
                f.grace_ms
            ),
            ("main", 3_600_000, FollowMode::Apply, true, 120_000)
        );
        assert!(!f.is_remote());
        assert_eq!(Settings::parse("agent.kdl", &s.to_text()).unwrap(), s);
        let example = include_str!("../../examples/agent-follow.kdl");
        let f = Settings::parse("agent-follow.kdl", example)
            .unwrap()
            .follow
            .unwrap();
        assert_eq!(
            (f.url.as_str(), f.self_heal, f.grace_ms),
            ("/srv/americas", true, 60_000)
        );
        for (text, says) in [
            ("source", "needs the repo"),
            ("source \"x\" mode=\"sync\"", "\"apply\" or \"report\""),
            ("source \"x\" interval=\"soon\"", "not a duration"),
            ("source \"x\" self-heal=\"yes\"", "#true or #false"),
            ("source \"x\" brnch=\"main\"", "no property `brnch`"),
            (
                "source \"x\" mode=\"report\" self-heal=#true",
                "needs mode=\"apply\"",
            ),
            ("source \"git://h/r\"", "not a transport"),
            ("source \"a\"\nsource \"b\"", "only one `source`"),
        ] {
            let e = Settings::parse("agent.kdl", &format!("machine \"a\"\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }
}
