//! `openline`: the server binary.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use openline_proxy::server::{self, ServeConfig};
use openline_sip::EndpointConfig;
use openline_sip::transaction::TimerConfig;
use openline_sip_net::ListenSpec;
use std::time::Duration;

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
    Serve {
        /// A domain this server is responsible for (repeatable).
        #[arg(long = "domain", default_value = "localhost")]
        domains: Vec<String>,
        /// Where to listen: udp:IP:PORT or tcp:IP:PORT (repeatable).
        #[arg(long = "listen", default_values = ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"])]
        listen: Vec<ListenSpec>,
        /// RFC 3261 T1 in milliseconds (T2 and T4 keep their defaults).
        #[arg(long, default_value_t = 500)]
        t1_ms: u64,
    },
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match cli.command {
        Command::Serve {
            domains,
            listen,
            t1_ms,
        } => {
            let timers = TimerConfig {
                t1: Duration::from_millis(t1_ms.max(1)),
                ..TimerConfig::default()
            };
            let config = ServeConfig {
                domains,
                listen,
                endpoint: EndpointConfig { timers },
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the runtime")?;
            runtime.block_on(async {
                server::run(config, shutdown_signal(), |bound| {
                    // One line per socket on stdout, for whoever started us with port 0.
                    for (transport, addr) in bound {
                        println!(
                            "listening on {}:{addr}",
                            transport.as_via().to_ascii_lowercase()
                        );
                    }
                })
                .await
                .context("serving")
            })
        }
    }
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
