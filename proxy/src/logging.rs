//! Logs: `tracing` to standard error, human-readable or JSON lines, with levels per module
//! (EnvFilter directives: `info,openline_proxy::core=debug`) from RUST_LOG, else the config
//! file's `log`, else `info`; SIGHUP may change the config's without a restart.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// What sets the levels while running.
#[derive(Debug, Clone)]
pub struct Levels {
    handle: reload::Handle<EnvFilter, Registry>,
    /// RUST_LOG was set: it wins over the file, at start and on reload.
    from_env: bool,
}

/// Reads directives, saying what is wrong with them. rustls is kept to errors unless named:
/// it warns of every phone that sends an IP address as SNI, which is each one set up by address.
pub fn parse(directives: &str) -> Result<EnvFilter, String> {
    let quiet = if directives.contains("rustls") {
        directives.to_string()
    } else {
        format!("{directives},rustls=error")
    };
    EnvFilter::try_new(quiet).map_err(|e| format!("`{directives}`: {e}"))
}

/// Starts logging in `format` (text or json) at the levels RUST_LOG, else `configured`, else
/// info say.
pub fn init(format: &str, configured: Option<&str>) -> Levels {
    let env = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .and_then(|d| parse(&d).ok());
    let from_env = env.is_some();
    let filter = env
        .or_else(|| configured.and_then(|c| parse(c).ok()))
        .unwrap_or_else(|| EnvFilter::new("info,rustls=error"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    if format == "json" {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
    Levels { handle, from_env }
}

impl Levels {
    /// Puts the config file's levels in place (none: info), unless RUST_LOG rules.
    pub fn set(&self, configured: Option<&str>) -> Result<(), String> {
        if self.from_env {
            return Ok(());
        }
        let filter = parse(configured.unwrap_or("info"))?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}
