//! `openline`: the server binary.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use openline_proxy::admin::{self, PresenceAction, UserAction, say};
use openline_proxy::config;
use openline_proxy::server;

mod serve_args;
mod settings;
use serve_args::{DoctorArgs, ServeArgs};
use settings::serve_config;

/// Openline: a federated SIP server for voice and text.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Check a config file without starting: errors name the file, line and column.
    CheckConfig {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Who may see whose presence from another domain.
    Presence {
        #[command(subcommand)]
        action: PresenceAction,
    },
    /// The running server: bindings, calls, relay sessions and stored messages per domain.
    Status(admin::StatusArgs),
    /// Checks this configuration (and the server running it) as a user sees it: ports,
    /// addresses, DNS, certificates, database, relay ports, clock; says what to fix. Exits 1
    /// when something is broken. Takes `serve`'s options; changes nothing.
    Doctor(Box<DoctorArgs>),
    /// Other domains' servers, as the running server has them.
    Peer {
        #[command(subcommand)]
        action: admin::PeerAction,
    },
}

/// One thread runs the sockets and the core: every datagram would otherwise cross threads
/// (receive task, core, store worker), and the wake-ups cost more CPU than the SIP work
/// (measured: about half of all samples were context switches on a two-worker runtime).
/// The database driver keeps its own thread.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Runs the command; a failure is one line on standard error (the causes joined with ": ",
/// as `error: serving: listening on udp:0.0.0.0:5060: Address already in use`) and exit 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let format = cli.log_format;
    match cli.command {
        Command::Serve(args) => serve(*args, &format),
        Command::User { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::user_command(action))
        }
        Command::Presence { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::presence_command(action))
        }
        Command::Status(asking) => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::status_command(asking))
        }
        Command::Peer { action } => {
            openline_proxy::logging::init(&format, None);
            runtime()?.block_on(admin::peer_command(action))
        }
        Command::Doctor(args) => {
            let (config, _) = serve_config(args.serve)?;
            let findings = runtime()?.block_on(openline_proxy::doctor::examine(&config));
            if args.json {
                say(&serde_json::to_string(&findings)?);
            } else {
                say(openline_proxy::doctor::say(&findings).trim_end());
            }
            let broken = findings
                .iter()
                .any(|f| f.level == openline_proxy::doctor::Level::Fail);
            if broken {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CheckConfig { file } => {
            config::load(&file)?;
            say(&format!("{}: ok", file.display()));
            Ok(())
        }
    }
}

/// `openline serve`: logs at the configured levels, SIGHUP reloads, SIGTERM drains.
fn serve(args: ServeArgs, format: &str) -> anyhow::Result<()> {
    let (config, log) = serve_config(args.clone())?;
    let levels = openline_proxy::logging::init(format, log.as_deref());
    runtime()?.block_on(async {
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        let read = move || serve_config(args.clone());
        let hup = openline_proxy::reload::on_sighup(read, levels, config.clone(), reload_tx);
        tokio::spawn(hup);
        server::run(config, shutdown_signal(), reload_rx, |bound| {
            // One line per socket on stdout, for whoever started us with port 0. A reader
            // that went away after the lines it wanted is no reason to stop (println! would
            // panic on the broken pipe).
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for (transport, addr) in bound {
                let line = format!(
                    "listening on {}:{addr}",
                    transport.as_via().to_ascii_lowercase()
                );
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    tracing::debug!(%line, "stdout is closed");
                }
            }
        })
        .await
        .context("serving")
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        _ = term.recv() => tracing::info!("SIGTERM"),
    }
}
