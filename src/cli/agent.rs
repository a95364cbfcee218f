//! `strata agent`: the daemon. Logs with `tracing` to stderr (`RUST_LOG` filters; as
//! text or JSON lines, `--log-format`), tells systemd when it is ready and that it is
//! stopping ([`crate::agent::systemd`]), stops cleanly on SIGTERM or SIGINT.

use std::io::Write;

use super::agent_args::{AgentArgs, LogFormat};
use super::{CliError, Failure, Outcome};
use crate::agent::server::Listeners;
use crate::agent::{Agent, run};
use crate::atomic_file::{self, FileMode};

/// Sends the log to stderr in `format`.
fn init_log(format: LogFormat) {
    let log = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A log line that cannot be written (stderr on a full disk) is dropped. With this
        // on, tracing-subscriber reports the failure with `eprintln!`, which fails the same
        // way and panics: every task that logged died, logins were refused.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => log.try_init(),
        // The event's fields at the top level, beside `message`, as shippers index them.
        LogFormat::Json => log.json().flatten_event(true).try_init(),
    };
}

/// Runs the agent until it is told to stop.
pub fn run_agent(args: AgentArgs) -> Result<Outcome, CliError> {
    init_log(args.log_format);
    // Before the runtime's threads start (see `agent::memory`).
    crate::agent::memory::tune();
    let agent = Agent::open(
        &args.state_dir,
        args.machine.as_deref(),
        args.listen.as_deref(),
    )
    .map_err(CliError::invalid)?;
    let restart = agent.restart.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::bug(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let listen = agent.state.settings.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            Failure::new(
                format!("cannot listen on {listen}: {e}"),
                "pick another address with --listen HOST:PORT",
            )
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Failure::bug(format!("cannot read the bound address: {e}")))?;
        let socket = agent.state.layout.socket();
        let local = crate::agent::server::local::bind(&socket).map_err(|e| {
            Failure::new(
                format!("cannot listen on {}: {e}", socket.display()),
                "check the state dir (the on-box CLI reaches the agent through this socket)",
            )
        })?;
        // Tell local tools (and tests) where we are, only once we really listen.
        let address = agent.state.layout.address();
        atomic_file::write(&address, format!("{bound}\n").as_bytes(), FileMode::Private)
            .map_err(|e| Failure::new(format!("cannot write {e}"), "check the state dir"))?;
        tracing::info!(
            machine = %agent.state.settings.machine,
            listen = %bound,
            fingerprint = %agent.state.fingerprint(),
            "agent started"
        );
        // For people starting it by hand; in JSON every line must be an object, and
        // `agent started` above carries the fingerprint. Not `eprintln!`, which panics
        // when stderr cannot be written (a full disk).
        if args.log_format == LogFormat::Text {
            let _ = writeln!(
                std::io::stderr(),
                "host key fingerprint: {}",
                agent.state.fingerprint()
            );
        }
        let web = crate::web::bind(&agent).await.map_err(|e| {
            Failure::new(
                e,
                "fix or remove `web` in agent.kdl (web listen=\"ADDR:PORT\")",
            )
        })?;
        let web_stop = tokio_util::sync::CancellationToken::new();
        if let Some(web) = web {
            tracing::info!(url = %web.url(), fingerprint = %web.fingerprint(), "web console");
            atomic_file::write(
                &agent.state.layout.dir.join(crate::web::ADDRESS_FILE),
                format!("{}\n", web.addr()).as_bytes(),
                FileMode::Private,
            )
            .map_err(|e| Failure::new(format!("cannot write {e}"), "check the state dir"))?;
            if args.log_format == LogFormat::Text {
                let _ = writeln!(
                    std::io::stderr(),
                    "web console: {} (certificate SHA-256 {})",
                    web.url(),
                    web.fingerprint()
                );
            }
            let stop = web_stop.clone();
            tokio::spawn(web.serve(agent.clone(), async move { stop.cancelled().await }));
        }
        let _stop_web = web_stop.drop_guard();
        let listeners = Listeners {
            network: listener,
            local: Some(local),
        };
        let restart = agent.restart.clone();
        let shutdown = async move {
            tokio::select! {
                _ = shutdown_signal() => {
                    #[cfg(unix)]
                    crate::agent::systemd::stopping();
                }
                // The same process runs again (systemd sees the same main PID, which
                // says READY again once it listens).
                _ = restart.wait() => tracing::info!("renamed: restarting under the new name"),
            }
        };
        run(listeners, shutdown, agent.clone()).await.map_err(|e| {
            Failure::new(format!("the SSH server failed: {e}"), "see the log above")
        })?;
        let _ = std::fs::remove_file(agent.state.layout.address());
        let _ = std::fs::remove_file(agent.state.layout.socket());
        tracing::info!("agent stopped");
        Ok::<_, CliError>(())
    })?;
    if restart.asked() {
        // Every file (the state dir's lock and store included) closes on exec.
        let e = crate::agent::rename::exec_again();
        return Err(Failure::new(
            format!("renamed, but cannot restart: {e}"),
            "start the agent again: it takes its new name as it starts",
        ));
    }
    Ok(Outcome::Ok)
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
