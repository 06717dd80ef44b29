//! `tui-phone`: the terminal softphone. So far its headless mode (ARCHITECTURE.md,
//! Interfaces): commands on stdin (`msg URI TEXT`, `call URI`, `answer`, `hangup`, `hold`,
//! `resume`, `dtmf DIGITS`, `quit`), one JSON event per line on stdout (`registered`,
//! `registration_failed`, `message`, `message_result`, `incoming_call`, `call_state`,
//! `call_ended`, `dtmf`, `error`). Audio from and to WAV files (`--audio-in`, `--audio-out`),
//! silence otherwise.

use anyhow::Context as _;
use clap::Parser;
use openline_phone::phone::{Phone, PhoneEvent};
use openline_phone::ua::{Account, RegEvent};
use openline_sip::Entropy;
use serde_json::json;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::AsyncBufReadExt as _;
use tokio::net::UdpSocket;

/// The phone.
#[derive(Debug, Parser)]
#[command(name = "tui-phone", version)]
struct Args {
    /// Who: USER@DOMAIN.
    #[arg(long)]
    account: String,
    /// The account's password.
    #[arg(long)]
    password: String,
    /// The outbound proxy (the account's openline server): udp:IP:PORT.
    #[arg(long)]
    proxy: String,
    /// Commands on stdin, JSON events on stdout, no screen.
    #[arg(long)]
    headless: bool,
    /// Where the phone keeps what outlives it (its device id): default
    /// $XDG_DATA_HOME/tui-phone, or ~/.local/share/tui-phone.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// A WAV file played into each call (then silence).
    #[arg(long)]
    audio_in: Option<std::path::PathBuf>,
    /// A WAV file that records what calls play (48 kHz mono).
    #[arg(long)]
    audio_out: Option<std::path::PathBuf>,
    /// Offer and accept plain RTP only (SDES-SRTP is offered by default).
    #[arg(long)]
    no_srtp: bool,
}

/// The phone's data directory.
fn data_dir(arg: Option<std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    if let Some(d) = arg {
        return Ok(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(std::path::PathBuf::from(x).join("tui-phone"));
    }
    let home = std::env::var_os("HOME").context("neither --data-dir, XDG_DATA_HOME nor HOME")?;
    Ok(std::path::PathBuf::from(home).join(".local/share/tui-phone"))
}

/// This phone's device id for `account` (`urn:uuid:`, RFC 5626 4.1): read from the data
/// directory, or made (a random UUID) and kept there on first use.
fn instance(dir: &std::path::Path, account: &str) -> anyhow::Result<String> {
    let file = dir.join(format!("instance-{account}"));
    if let Ok(text) = std::fs::read_to_string(&file) {
        let id = text.trim();
        if id.starts_with("urn:uuid:") {
            return Ok(id.to_string());
        }
    }
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&file, &id).with_context(|| format!("writing {}", file.display()))?;
    Ok(id)
}

/// Randomness from the operating system for tags, branches and client nonces.
struct OsRandom;

impl Entropy for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        if getrandom::fill(dest).is_err() {
            // Predictable tags and nonces are worse than stopping.
            std::process::abort();
        }
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// One event as a JSON line on stdout.
fn emit(event: &PhoneEvent) {
    let line = match event {
        PhoneEvent::Registration(RegEvent::Registered { expires }) => {
            json!({"event": "registered", "expires": expires})
        }
        PhoneEvent::Registration(RegEvent::Unregistered) => json!({"event": "unregistered"}),
        PhoneEvent::Registration(RegEvent::Failed { code, reason }) => {
            json!({"event": "registration_failed", "code": code, "reason": reason})
        }
        PhoneEvent::Message(m) => json!({
            "event": "message", "from": m.from, "to": m.to, "text": m.text,
            "date": m.date, "sent_by_me": m.sent_by_me,
        }),
        PhoneEvent::MessageResult { to, status, reason } => {
            json!({"event": "message_result", "to": to, "status": status, "reason": reason})
        }
        PhoneEvent::IncomingCall { from } => json!({"event": "incoming_call", "from": from}),
        PhoneEvent::CallState {
            state,
            remote,
            codec,
            srtp,
        } => json!({
            "event": "call_state", "state": state.as_str(), "remote": remote,
            "codec": codec, "srtp": srtp,
        }),
        PhoneEvent::CallEnded {
            remote,
            code,
            reason,
        } => json!({"event": "call_ended", "remote": remote, "code": code, "reason": reason}),
        PhoneEvent::CallRefused(reason) => json!({"event": "error", "reason": reason}),
        PhoneEvent::Dtmf(digit) => json!({"event": "dtmf", "digit": digit.to_string()}),
        PhoneEvent::MediaStats(media, jitter) => json!({
            "event": "media_stats", "sent": media.sent, "received": media.received,
            "rejected": media.rejected, "played": jitter.played, "lost": jitter.lost,
            "late": jitter.late, "dropped": jitter.dropped, "waited": jitter.waited,
        }),
    };
    say(&line);
}

fn say(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.headless {
        anyhow::bail!("the screen is not built yet (issue #7): run with --headless");
    }
    let (user, domain) = args
        .account
        .split_once('@')
        .context("--account: expected USER@DOMAIN")?;
    let proxy: SocketAddr = args
        .proxy
        .strip_prefix("udp:")
        .context("--proxy: expected udp:IP:PORT")?
        .parse()
        .context("--proxy: not an IP:PORT")?;
    // Our address as the proxy sees it from here: the source of the route to it.
    let probe = std::net::UdpSocket::bind((if proxy.is_ipv4() { "0.0.0.0" } else { "::" }, 0))?;
    probe.connect(proxy)?;
    let socket = UdpSocket::bind((probe.local_addr()?.ip(), 0)).await?;
    let media = UdpSocket::bind((probe.local_addr()?.ip(), 0)).await?;
    let device = openline_phone::audio::device::WavFiles::open(
        args.audio_in.as_deref(),
        args.audio_out.as_deref(),
    )?;
    let account = Account {
        user: user.to_string(),
        domain: domain.to_string(),
        password: args.password,
    };
    let dir = data_dir(args.data_dir)?;
    let instance = instance(&dir, &args.account)?;
    let mut phone = Phone::new(
        account,
        (socket.local_addr()?, proxy),
        Some(instance),
        Box::new(OsRandom),
        now(),
    );
    phone.set_media(media.local_addr()?, Box::new(device), !args.no_srtp);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut buf = vec![0u8; 65_536];
    let mut media_buf = vec![0u8; 2_048];
    // After quit: the time to stop even if the registrar does not answer the goodbye.
    let mut leaving: Option<Instant> = None;
    let mut stdin_closed = false;
    loop {
        while let Some(t) = phone.poll_transmit() {
            let _ = socket.send_to(&t.payload, t.destination.addr).await;
        }
        while let Some((to, packet)) = phone.poll_media_transmit() {
            let _ = media.send_to(&packet, to).await;
        }
        while let Some(e) = phone.poll_event() {
            emit(&e);
            let said_goodbye = matches!(
                e,
                PhoneEvent::Registration(RegEvent::Unregistered | RegEvent::Failed { .. })
            );
            if leaving.is_some() && said_goodbye {
                return Ok(());
            }
        }
        if leaving.is_some_and(|at| at <= now()) {
            return Ok(());
        }
        let wake = match (phone.poll_timeout(), leaving) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                // An ICMP error from an earlier send shows up here: not a reason to stop.
                if let Ok((n, source)) = received {
                    phone.handle_datagram(now(), source, &buf[..n]);
                }
            }
            received = media.recv_from(&mut media_buf) => {
                // ICMP errors (the other side's port closed) show up here too: not fatal.
                if let Ok((n, _)) = received {
                    phone.handle_media(now(), &media_buf[..n]);
                }
            }
            line = stdin.next_line(), if !stdin_closed => {
                let line = match line {
                    Ok(Some(line)) => line,
                    // stdin closed: as quit (and not read again).
                    _ => {
                        stdin_closed = true;
                        "quit".to_string()
                    }
                };
                let mut words = line.trim().splitn(3, ' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("msg"), Some(to), Some(text)) => phone.send_message(now(), to, text),
                    (Some("call"), Some(to), None) => phone.dial(now(), to),
                    (Some("answer"), None, None) => phone.answer(now()),
                    (Some("hangup"), None, None) => phone.hangup(now()),
                    (Some("hold"), None, None) => phone.hold(now(), true),
                    (Some("resume"), None, None) => phone.hold(now(), false),
                    (Some("dtmf"), Some(digits), None) => phone.dtmf(digits),
                    (Some("quit"), None, None) if leaving.is_none() => {
                        phone.quit(now());
                        leaving = Some(now() + std::time::Duration::from_secs(3));
                    }
                    (Some("quit"), None, None) => {}
                    (Some(""), None, None) => {}
                    _ => say(&json!({"event": "error", "reason": format!("not a command: {line}")})),
                }
            }
            () = sleep_until(wake) => phone.handle_timeout(now()),
        }
    }
}

/// Sleeps until `at`; for ever without it.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
