//! `tui-phone`: the terminal softphone. Full screen by default (contacts, conversations kept
//! in the data directory, the call bar, key help); `--headless` for scripts and tests: commands
//! on stdin (`msg URI TEXT`, `call URI`, `answer`, `hangup`, `hold`, `resume`, `dtmf DIGITS`,
//! `quit`), one JSON event per line on stdout (ARCHITECTURE.md, Interfaces). Audio from and to
//! WAV files (`--audio-in`, `--audio-out`), silence otherwise.

use anyhow::Context as _;
use clap::Parser;
use openline_phone::audio::device::{AudioDevice, Silence, WavFiles};
use openline_phone::audio::sound_card::SoundCard;
use openline_phone::driver::terminal::Screen;
use openline_phone::driver::{self, Front, Input, headless};
use openline_phone::phone::Phone;
use openline_phone::screen::app::App;
use openline_phone::screen::history::History;
use openline_phone::ua::Account;
use openline_sip::Entropy;
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
    /// A STUN server (udp:IP:PORT) to learn the media socket's public address from, for the
    /// SDP when behind NAT.
    #[arg(long)]
    stun: Option<String>,
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

/// WAV files when asked for; else the sound card, or silence (and why) when there is none.
fn audio_device(args: &Args) -> anyhow::Result<(Box<dyn AudioDevice>, Option<String>)> {
    if args.audio_in.is_some() || args.audio_out.is_some() {
        let files = WavFiles::open(args.audio_in.as_deref(), args.audio_out.as_deref())?;
        return Ok((Box::new(files), None));
    }
    Ok(match SoundCard::open() {
        Ok(card) => (Box::new(card), None),
        Err(why) => (
            Box::new(Silence),
            Some(format!(
                "{why}: calls send and play silence (--audio-in/--audio-out take WAV files)"
            )),
        ),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (user, domain) = args
        .account
        .split_once('@')
        .context("--account: expected USER@DOMAIN")?;
    let proxy: SocketAddr = openline_media::args::parse_udp(&args.proxy)
        .map_err(|e| anyhow::anyhow!("--proxy: {e}"))?;
    // Our address as the proxy sees it from here: the source of the route to it.
    let probe = std::net::UdpSocket::bind((if proxy.is_ipv4() { "0.0.0.0" } else { "::" }, 0))?;
    probe.connect(proxy)?;
    let socket = UdpSocket::bind((probe.local_addr()?.ip(), 0)).await?;
    let media = UdpSocket::bind((probe.local_addr()?.ip(), 0)).await?;
    let (device, device_notice) = audio_device(&args)?;
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
    phone.set_media(media.local_addr()?, device, !args.no_srtp);
    if let Some(stun) = &args.stun {
        let server =
            openline_media::args::parse_udp(stun).map_err(|e| anyhow::anyhow!("--stun: {e}"))?;
        phone.set_stun(now(), server);
    }
    let (tx, inputs) = tokio::sync::mpsc::unbounded_channel();
    let front = if args.headless {
        if let Some(notice) = &device_notice {
            headless::error(notice);
        }
        tokio::spawn(async move {
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = stdin.next_line().await {
                let input = match headless::parse(&line) {
                    Ok(Some(command)) => Input::Command(command),
                    Ok(None) => continue,
                    Err(bad) => Input::Bad(bad),
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::Closed);
        });
        Front::Headless
    } else {
        let history = History::open(&dir, &args.account)
            .await
            .with_context(|| format!("the history in {}", dir.display()))?;
        let mut app = App::new(&args.account);
        history
            .load(&mut app)
            .await
            .context("reading the history")?;
        if let Some(notice) = device_notice {
            app.notice = notice;
        }
        Front::Screen(Box::new(Screen::start(app, history, tx)))
    };
    driver::run(&mut phone, (socket, media), front, inputs).await
}
