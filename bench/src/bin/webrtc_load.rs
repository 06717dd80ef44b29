//! Bridged WebRTC calls for the media benchmark (issue #23): each call is a browser played by
//! str0m (full ICE, DTLS-SRTP, Opus at 20 ms) and a SIP phone (plain RTP/AVP, 172-byte
//! packets), set up through a relay's ng control (openline-media or rtpengine: the same
//! offer, with rtpengine's flags for a WebRTC-to-RTP bridge), then both sides send for the
//! measured time. Prints one `RESULT` line: packets relayed per second and the relay's CPU
//! (from /proc/PID/stat) over the same window.
//!
//!   webrtc_load --ng 127.0.0.1:22300 --pid PID --calls 50 --pps 50 --seconds 10

// A load generator: it reads the clock and may fail loudly.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context as _, bail};
use clap::Parser;
use openline_media::control::bencode::Bencode;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

#[derive(Parser)]
struct Args {
    /// The relay's ng control address.
    #[arg(long)]
    ng: SocketAddr,
    /// The relay's process, whose CPU is measured.
    #[arg(long)]
    pid: u32,
    /// Calls (each one browser and one phone).
    #[arg(long, default_value_t = 50)]
    calls: usize,
    /// Packets per second each side sends.
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Measured seconds, after the calls are connected.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Print the first call's SDP as the relay rewrote it (for a relay that refuses).
    #[arg(long)]
    show_sdp: bool,
}

struct Call {
    call_id: String,
    rtc: Rtc,
    mid: Mid,
    pt: Pt,
    browser: UdpSocket,
    phone: UdpSocket,
    /// Where the phone sends: the relay's port for it.
    phone_to: SocketAddr,
    connected: bool,
    seq: u16,
    frames: u64,
    /// Packets each side received.
    browser_got: u64,
    phone_got: u64,
}

fn ng(
    socket: &UdpSocket,
    to: SocketAddr,
    pairs: Vec<(&[u8], Bencode<'_>)>,
) -> anyhow::Result<String> {
    static COOKIE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let cookie = COOKIE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The pid too: rtpengine answers a cookie it has seen with its cached reply.
    let mut out = format!("wl{}-{cookie} ", std::process::id()).into_bytes();
    Bencode::Dict(pairs).encode(&mut out);
    socket.send_to(&out, to)?;
    let mut buf = vec![0u8; 65536];
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (n, _) = socket.recv_from(&mut buf).context("no ng answer")?;
    let space = buf[..n]
        .iter()
        .position(|&b| b == b' ')
        .context("no cookie")?;
    let (reply, _) = Bencode::decode(&buf[space + 1..n]).map_err(|e| anyhow::anyhow!("{e}"))?;
    if reply.get("result").and_then(Bencode::as_str) != Some("ok") {
        bail!(
            "ng refused: {:?}",
            reply.get("error-reason").and_then(Bencode::as_str)
        );
    }
    // A delete's answer has none: empty, and an offer's empty SDP fails where it is read.
    Ok(reply
        .get("sdp")
        .and_then(Bencode::as_str)
        .unwrap_or_default()
        .to_string())
}

/// The phone's SSRC (every phone in the load uses it: each has its own ports).
const PHONE_SSRC: u32 = 0x1234_5678;

/// The answer as str0m, stricter than a browser, takes it. rtpengine 10.5 leaves out
/// `a=group:BUNDLE` for the one mid, and forwards the phone's RTP without the mid header
/// extension and without naming its SSRC: Chrome takes an unsignalled SSRC on a lone m-line,
/// str0m drops it. So the group and `a=ssrc` are added when missing (openline's answer has both).
fn as_str0m_takes(sdp: &str) -> String {
    let mut out = sdp.to_string();
    let Some(mid) = sdp
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
    else {
        return out;
    };
    if !sdp.contains("a=ssrc:") {
        let line = format!("a=mid:{mid}\r\n");
        out = out.replacen(
            &line,
            &format!("{line}a=ssrc:{PHONE_SSRC} cname:phone\r\n"),
            1,
        );
    }
    if !sdp.contains("a=group:BUNDLE") {
        if let Some(at) = out.find("m=") {
            out.insert_str(at, &format!("a=group:BUNDLE {mid}\r\n"));
        }
    }
    out
}

/// The m= port and c= address of an SDP's audio.
fn media_addr(sdp: &str) -> anyhow::Result<SocketAddr> {
    let ip = sdp
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("c=IN IP4 "))
        .next_back()
        .context("no c=")?;
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next())
        .context("no m=audio")?;
    Ok(format!("{ip}:{port}").parse()?)
}

fn setup(
    ng_socket: &UdpSocket,
    (relay, show): (SocketAddr, bool),
    n: usize,
    now: Instant,
) -> anyhow::Result<Call> {
    let browser = UdpSocket::bind("127.0.0.1:0")?;
    let phone = UdpSocket::bind("127.0.0.1:0")?;
    let mut rtc = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(now);
    rtc.add_local_candidate(Candidate::host(browser.local_addr()?, "udp")?);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().context("no offer")?;
    let call_id = format!("webrtc-load-{n}-{}", std::process::id());
    let text = |v: &str| Bencode::text(v);
    // A browser's offer to a phone: RTP/AVP for the phone, ICE and DTLS off its side.
    let to_phone = ng(
        ng_socket,
        relay,
        vec![
            (b"command", text("offer")),
            (b"call-id", text(&call_id)),
            (b"from-tag", text("browser")),
            (b"sdp", text(&offer.to_sdp_string())),
            (b"transport-protocol", text("RTP/AVP")),
            (b"ICE", text("remove")),
            (b"rtcp-mux", Bencode::List(vec![text("demux")])),
        ],
    )?;
    let phone_to = media_addr(&to_phone)?;
    let pt: u8 = to_phone
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter(|m| m.to_ascii_lowercase().contains("opus"))
        .and_then(|m| m.split(' ').next()?.parse().ok())
        .context("the phone is offered Opus")?;
    let phone_addr = phone.local_addr()?;
    let answer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} opus/48000/2\r\na=sendrecv\r\n",
        phone_addr.port()
    );
    let to_browser = ng(
        ng_socket,
        relay,
        vec![
            (b"command", text("answer")),
            (b"call-id", text(&call_id)),
            (b"from-tag", text("browser")),
            (b"to-tag", text("phone")),
            (b"sdp", text(&answer)),
            (b"transport-protocol", text("UDP/TLS/RTP/SAVPF")),
            (b"ICE", text("force")),
            (b"rtcp-mux", Bencode::List(vec![text("require")])),
        ],
    )?;
    if show && n == 0 {
        eprintln!(
            "offer:\n{}\nto the phone:\n{to_phone}\nto the browser:\n{to_browser}",
            offer.to_sdp_string()
        );
    }
    rtc.sdp_api().accept_answer(
        pending,
        SdpAnswer::from_sdp_string(&as_str0m_takes(&to_browser))?,
    )?;
    browser.set_nonblocking(true)?;
    phone.set_nonblocking(true)?;
    Ok(Call {
        call_id,
        rtc,
        mid,
        pt: Pt::from(pt),
        browser,
        phone,
        phone_to,
        connected: false,
        seq: 0,
        frames: 0,
        browser_got: 0,
        phone_got: 0,
    })
}

/// Runs every call's I/O once: datagrams in, str0m's output out.
fn pump(calls: &mut [Call], now: Instant, buf: &mut [u8]) -> anyhow::Result<()> {
    for c in calls.iter_mut() {
        while let Ok((n, from)) = c.browser.recv_from(buf) {
            let Ok(contents) = buf[..n].try_into() else {
                continue;
            };
            c.rtc.handle_input(Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: c.browser.local_addr()?,
                    contents,
                },
            ))?;
        }
        while c.phone.recv_from(buf).is_ok() {
            c.phone_got += 1;
        }
        c.rtc.handle_input(Input::Timeout(now))?;
        loop {
            match c.rtc.poll_output()? {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    let _ = c.browser.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => c.connected = true,
                Output::Event(Event::MediaData(_)) => c.browser_got += 1,
                Output::Event(_) => {}
            }
        }
    }
    Ok(())
}

/// Sends what is due at `now` on both sides of every call, `pps` a second from `start`.
fn send_due(calls: &mut [Call], (start, now): (Instant, Instant), pps: u32) -> anyhow::Result<()> {
    let due = (now.duration_since(start).as_secs_f64() * f64::from(pps)) as u64;
    for c in calls.iter_mut() {
        while c.frames < due {
            let at = MediaTime::new(c.frames * 960, Frequency::FORTY_EIGHT_KHZ);
            c.rtc
                .writer(c.mid)
                .context("no writer")?
                .write(c.pt, now, at, vec![0xF8; 160])?;
            let mut rtp = vec![0x80, *c.pt, 0, 0, 0, 0, 0, 0];
            rtp.extend_from_slice(&PHONE_SSRC.to_be_bytes());
            rtp[2..4].copy_from_slice(&c.seq.to_be_bytes());
            rtp[4..8].copy_from_slice(&((c.frames * 960) as u32).to_be_bytes());
            rtp.resize(172, 0xF8);
            let _ = c.phone.send_to(&rtp, c.phone_to);
            c.seq = c.seq.wrapping_add(1);
            c.frames += 1;
        }
    }
    Ok(())
}

/// The process's CPU time (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ng_socket = UdpSocket::bind("127.0.0.1:0")?;
    let t0 = Instant::now();
    let mut calls = Vec::with_capacity(args.calls);
    for n in 0..args.calls {
        calls.push(
            setup(&ng_socket, (args.ng, args.show_sdp), n, t0)
                .with_context(|| format!("call {n}"))?,
        );
    }
    let mut buf = vec![0u8; 65536];
    let connect_by = Instant::now() + Duration::from_secs(20);
    while !calls.iter().all(|c| c.connected) {
        if Instant::now() > connect_by {
            let up = calls.iter().filter(|c| c.connected).count();
            bail!(
                "{up} of {} calls connected (ICE and DTLS) in 20 s",
                calls.len()
            );
        }
        pump(&mut calls, Instant::now(), &mut buf)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    // Warm up a second, then measure.
    let start = Instant::now();
    let warm = start + Duration::from_secs(1);
    let end = warm + Duration::from_secs(args.seconds);
    let (mut cpu0, mut got0, mut measuring) = (0, 0, false);
    loop {
        let now = Instant::now();
        if !measuring && now >= warm {
            cpu0 = cpu_ticks(args.pid)?;
            got0 = calls.iter().map(|c| c.browser_got + c.phone_got).sum();
            measuring = true;
        }
        if now >= end {
            break;
        }
        send_due(&mut calls, (start, now), args.pps)?;
        pump(&mut calls, now, &mut buf)?;
        std::thread::sleep(Duration::from_micros(500));
    }
    let cpu = cpu_ticks(args.pid)? - cpu0;
    let to_browsers: u64 = calls.iter().map(|c| c.browser_got).sum();
    let to_phones: u64 = calls.iter().map(|c| c.phone_got).sum();
    let got: u64 = calls
        .iter()
        .map(|c| c.browser_got + c.phone_got)
        .sum::<u64>()
        - got0;
    // Both relays end each load empty.
    for c in &calls {
        ng(
            &ng_socket,
            args.ng,
            vec![
                (b"command", Bencode::text("delete")),
                (b"call-id", Bencode::text(&c.call_id)),
                (b"from-tag", Bencode::text("browser")),
            ],
        )
        .with_context(|| format!("deleting {}", c.call_id))?;
    }
    let sent = 2 * calls.len() as u64 * u64::from(args.pps) * args.seconds;
    let ticks = 100.0; // USER_HZ on Linux
    let relayed_pps = got as f64 / args.seconds as f64;
    let relay_cpu_pct = 100.0 * cpu as f64 / ticks / args.seconds as f64;
    println!(
        "RESULT calls={} pps={} seconds={} sent={sent} relayed={got} relayed_pps={relayed_pps:.0} relay_cpu_pct={relay_cpu_pct:.1} us_per_packet={:.1} to_browsers={to_browsers} to_phones={to_phones}",
        args.calls,
        args.pps,
        args.seconds,
        1e6 * cpu as f64 / ticks / got.max(1) as f64
    );
    Ok(())
}
