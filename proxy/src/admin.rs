//! The one-shot `openline user` and `openline presence` commands: they change the database
//! and leave; a running server notices the change by itself (the users' version).

use anyhow::Context as _;
use clap::Subcommand;
use openline_registrar::User;
use openline_registrar::store::{Store, UserStore as _};

/// The default database, as for `openline serve`.
pub const DEFAULT_DB: &str = "sqlite://openline.db";

/// `openline user ...`.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user, or change their password.
    Add {
        /// USER@DOMAIN.
        aor: String,
        /// The password (only its HA1 hashes are stored).
        #[arg(long)]
        password: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
        /// Print a one-time link (and its QR code) that sets up Linphone, and baresip's
        /// accounts line: the server's https:// address (its --web https: listener).
        #[arg(long, value_name = "URL")]
        provision: Option<String>,
        /// Hours the link works for (once).
        #[arg(long, default_value_t = 24, requires = "provision")]
        valid_hours: u64,
        /// The SIP proxy baresip is told (default: sip:HOST;transport=tcp, HOST from the link).
        #[arg(long, requires = "provision", value_name = "URI")]
        sip_proxy: Option<String>,
    },
    /// Add or update many users from a file of `USER@DOMAIN PASSWORD` lines, in one transaction.
    Import {
        /// The file (`-` for standard input).
        file: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// Change an existing user's password (a typo does not create a user).
    Passwd {
        /// USER@DOMAIN.
        aor: String,
        /// The new password.
        #[arg(long)]
        password: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// List users.
    List {
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and their bindings.
    Del {
        /// USER@DOMAIN.
        aor: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
}

/// `openline presence ...`.
#[derive(Debug, Subcommand)]
pub enum PresenceAction {
    /// Let WATCHER (USER@DOMAIN, any domain) see PRESENTITY (a local USER@DOMAIN).
    Allow {
        /// Whose presence.
        presentity: String,
        /// Who may see it.
        watcher: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// Take a permission back (a subscription already active runs to its end).
    Deny {
        /// Whose presence.
        presentity: String,
        /// Who may no longer see it.
        watcher: String,
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// List permissions: PRESENTITY WATCHER per line.
    List {
        /// Database URL.
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
}

/// One line on stdout; a reader that went away (`openline user list | head -1`) is not an
/// error worth a panic, which println! would make of it.
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

async fn open_store(db: &str) -> anyhow::Result<Store> {
    Store::open(db)
        .await
        .with_context(|| format!("opening {db}"))
}

/// Moves what was written from SQLite's WAL into the database file, so the file alone holds
/// it (the server checkpoints on its own; a one-shot command has to do it before leaving).
async fn finish_writes(store: &Store) -> anyhow::Result<()> {
    store
        .checkpoint()
        .await
        .context("checkpointing the database")
}

/// Carries out an `openline presence` command.
pub async fn presence_command(action: PresenceAction) -> anyhow::Result<()> {
    use openline_registrar::store::PresenceStore as _;
    let aor = |a: &str| -> anyhow::Result<String> {
        let (user, domain) = openline_registrar::user::normalize_aor(a)?;
        Ok(format!("{user}@{domain}"))
    };
    match action {
        PresenceAction::Allow {
            presentity,
            watcher,
            db,
        } => {
            let store = open_store(&db).await?;
            let (p, w) = (aor(&presentity)?, aor(&watcher)?);
            store
                .allow(&p, &w, crate::server::wall_clock(), true)
                .await?;
            finish_writes(&store).await?;
            say(&format!("{w} may see {p}"));
        }
        PresenceAction::Deny {
            presentity,
            watcher,
            db,
        } => {
            let store = open_store(&db).await?;
            if !store.disallow(&aor(&presentity)?, &aor(&watcher)?).await? {
                anyhow::bail!("{watcher} had no permission for {presentity}");
            }
            finish_writes(&store).await?;
        }
        PresenceAction::List { db } => {
            for (p, w) in open_store(&db).await?.allowed().await? {
                say(&format!("{p} {w}"));
            }
        }
    }
    Ok(())
}

/// Carries out an `openline user` command.
pub async fn user_command(action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            aor,
            password,
            db,
            provision,
            valid_hours,
            sip_proxy,
        } => {
            let user = User::new(&aor, &password)?;
            let store = open_store(&db).await?;
            store.put_user(&user).await?;
            say(&user.aor);
            if let Some(base) = provision {
                let now = crate::server::wall_clock();
                let h = crate::provision_link::hand_out(
                    &store,
                    (&user.aor, &password),
                    &base,
                    sip_proxy.as_deref(),
                    (now, valid_hours),
                )
                .await?;
                say(&format!(
                    "Linphone: scan this code, or enter the link as its remote provisioning \
                     address (works once, for {valid_hours} h):\n{}\n{}\n\
                     baresip, a line for ~/.baresip/accounts:\n{}",
                    h.qr.trim_end(),
                    h.link,
                    h.baresip
                ));
            }
            finish_writes(&store).await?;
        }
        UserAction::Import { file, db } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let mut users = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (aor, password) = line
                    .split_once(char::is_whitespace)
                    .with_context(|| format!("{file}:{}: expected USER@DOMAIN PASSWORD", n + 1))?;
                users.push(
                    User::new(aor, password.trim()).with_context(|| format!("{file}:{}", n + 1))?,
                );
            }
            let store = open_store(&db).await?;
            store.put_users(&users).await?;
            finish_writes(&store).await?;
            say(&format!("{} users", users.len()));
        }
        UserAction::Passwd { aor, password, db } => {
            let user = User::new(&aor, &password)?;
            let store = open_store(&db).await?;
            if !store.users().await?.iter().any(|u| u.aor == user.aor) {
                anyhow::bail!("no user {} (openline user add creates one)", user.aor);
            }
            store.put_user(&user).await?;
            finish_writes(&store).await?;
            say(&format!("{}: password changed", user.aor));
        }
        UserAction::List { db, json } => {
            let store = open_store(&db).await?;
            let aors: Vec<String> = store.users().await?.into_iter().map(|u| u.aor).collect();
            if json {
                say(&serde_json::to_string(&aors)?);
            } else {
                for aor in aors {
                    say(&aor);
                }
            }
        }
        UserAction::Del { aor, db } => {
            let (user, domain) = openline_registrar::user::normalize_aor(&aor)?;
            let store = open_store(&db).await?;
            if !store.delete_user(&format!("{user}@{domain}")).await? {
                anyhow::bail!("no user {aor}");
            }
            finish_writes(&store).await?;
        }
    }
    Ok(())
}

/// Which running server to ask: its control socket, given or derived from its database.
#[derive(Debug, clap::Args)]
pub struct Asking {
    /// The server's control socket (default: its database's, FILE.sock).
    #[arg(long)]
    control: Option<std::path::PathBuf>,
    /// The server's database URL, to find its control socket.
    #[arg(long, default_value = DEFAULT_DB)]
    db: String,
    /// The answer as JSON.
    #[arg(long)]
    json: bool,
}

impl Asking {
    async fn ask(&self, query: crate::control::Query) -> anyhow::Result<serde_json::Value> {
        let path = self
            .control
            .clone()
            .unwrap_or_else(|| crate::control::default_path(&self.db));
        crate::control::ask(&path, query).await
    }
}

/// `openline peer ...`.
#[derive(Debug, Subcommand)]
pub enum PeerAction {
    /// Other domains' configured servers, as the running server has them.
    List(Asking),
}

/// `openline status`'s options.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    asking: Asking,
    /// Each call through the relay too: per party, packets, loss, jitter and MOS, and
    /// one-way audio named.
    #[arg(long)]
    calls: bool,
}

/// The relay's call reports as JSON: per call, per stream, per party.
pub fn quality_json(reports: &[openline_media::control::CallReport]) -> serde_json::Value {
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    reports
        .iter()
        .map(|r| {
            let streams: Vec<serde_json::Value> = r
                .streams
                .iter()
                .map(|legs| {
                    legs.iter()
                        .zip(&r.parties)
                        .map(|(q, party)| {
                            serde_json::json!({
                                "party": party,
                                "packets": q.packets,
                                "lost": q.lost,
                                "loss_percent": round(q.loss * 100.0, 2),
                                "jitter_ms": round(q.jitter_ms, 2),
                                "r_factor": round(q.r_factor, 1),
                                "mos": round(q.mos, 2),
                                "reported_loss_percent": q.reported.map(|p| round(p.fraction_lost * 100.0, 2)),
                                "silent_seconds": q.silent_for.map(|d| d.as_secs()),
                            })
                        })
                        .collect()
                })
                .collect();
            serde_json::json!({
                "call_id": r.call_id,
                "streams": streams,
                "problems": r.problems(),
            })
        })
        .collect()
}

/// `openline status`: the running server's bindings, calls, relay sessions and stored
/// messages, per domain; with `--calls`, each call's media quality.
pub async fn status_command(args: StatusArgs) -> anyhow::Result<()> {
    let asking = args.asking;
    let s = asking.ask(crate::control::Query::Status).await?;
    if asking.json {
        say(&s.to_string());
        return Ok(());
    }
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    say(&format!(
        "openline {}, up {} s{}",
        s["version"].as_str().unwrap_or("?"),
        n(&s["uptime_seconds"]),
        if s["draining"].as_bool() == Some(true) {
            ", draining"
        } else {
            ""
        }
    ));
    say(&format!(
        "{:<28} {:>8} {:>8} {:>10}",
        "domain", "users", "devices", "messages"
    ));
    if let Some(domains) = s["domains"].as_object() {
        for (d, v) in domains {
            say(&format!(
                "{d:<28} {:>8} {:>8} {:>10}",
                n(&v["users"]),
                n(&v["bindings"]),
                n(&v["messages_waiting"])
            ));
        }
    }
    say(&format!(
        "calls {}, relay sessions {}, subscriptions {}, transactions {}",
        n(&s["calls"]),
        n(&s["relay_sessions"]),
        n(&s["subscriptions"]),
        n(&s["transactions"])
    ));
    if args.calls {
        say_calls(&s["media_calls"]);
    }
    Ok(())
}

/// One line per party of each call through the relay, then its problems.
fn say_calls(calls: &serde_json::Value) {
    let calls = calls.as_array().map(Vec::as_slice).unwrap_or_default();
    if calls.is_empty() {
        say("no calls through the relay");
        return;
    }
    say(&format!(
        "{:<24} {:<28} {:>8} {:>7} {:>10} {:>5}",
        "call", "party", "packets", "lost %", "jitter ms", "MOS"
    ));
    for c in calls {
        let id = c["call_id"].as_str().unwrap_or("?");
        for legs in c["streams"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for q in legs.as_array().map(Vec::as_slice).unwrap_or_default() {
                say(&format!(
                    "{:<24} {:<28} {:>8} {:>7.2} {:>10.2} {:>5.2}",
                    id.chars().take(24).collect::<String>(),
                    q["party"].as_str().unwrap_or("?"),
                    q["packets"].as_u64().unwrap_or(0),
                    q["loss_percent"].as_f64().unwrap_or(0.0),
                    q["jitter_ms"].as_f64().unwrap_or(0.0),
                    q["mos"].as_f64().unwrap_or(0.0),
                ));
            }
        }
        for p in c["problems"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            say(&format!("  {}", p.as_str().unwrap_or("?")));
        }
    }
}

/// Carries out an `openline peer` command.
pub async fn peer_command(action: PeerAction) -> anyhow::Result<()> {
    let PeerAction::List(asking) = action;
    let p = asking.ask(crate::control::Query::Peers).await?;
    if asking.json {
        say(&p.to_string());
        return Ok(());
    }
    for peer in p["peers"].as_array().into_iter().flatten() {
        say(&format!(
            "{} {}{}",
            peer["domain"].as_str().unwrap_or("?"),
            peer["server"].as_str().unwrap_or("?"),
            if peer["failed_lately"].as_bool() == Some(true) {
                " (failed lately)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}
