//! openline-media started for a test: its STUN and control addresses, read from what it
//! announces; stopped when dropped.

use crate::Background;
use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::process::{ChildStdout, Command, Stdio};

/// A running openline-media.
pub struct Media {
    /// Where it answers STUN.
    pub stun: SocketAddr,
    /// Where it takes ng control requests.
    pub control: SocketAddr,
    /// Where it answers STUN for IPv6 clients, with `--turn6`.
    pub stun6: Option<SocketAddr>,
    /// Its TURN listeners over TCP (and TLS), in the order of the `--turn-tcp` options.
    pub streams: Vec<SocketAddr>,
    /// Its stdout, kept open: it may announce more.
    _announcements: Lines<BufReader<ChildStdout>>,
    process: Background,
}

impl Media {
    /// Starts it on loopback (STUN and control on ports of its choosing) with `extra` options.
    pub fn start(extra: &[&str]) -> Media {
        let mut process = Background(
            Command::new(crate::subject::workspace_bin("openline-media"))
                .args(["--turn", "udp:127.0.0.1:0", "--control", "udp:127.0.0.1:0"])
                .args(["--listen", "127.0.0.1"])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start openline-media"),
        );
        let stdout = process.0.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut next = |prefix: &str| -> SocketAddr {
            let line = lines
                .next()
                .expect("openline-media stopped before announcing its sockets")
                .expect("read its stdout");
            line.strip_prefix(prefix)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("expected {prefix}..., got {line}"))
        };
        let stun = next("listening on udp:");
        let control = next("control on udp:");
        let stun6 = extra
            .contains(&"--turn6")
            .then(|| next("listening on udp:"));
        let streams = (0..extra.iter().filter(|a| **a == "--turn-tcp").count())
            .map(|_| next("listening on tcp:"))
            .collect();
        Media {
            stun,
            control,
            stun6,
            streams,
            _announcements: lines,
            process,
        }
    }

    /// Stops it and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// SIPp's built-in uas on `port`, echoing the RTP it gets on `media_port` (-rtp_echo), in `dir`.
pub fn echo_uas(dir: &std::path::Path, port: u16, media_port: u16) -> Background {
    let uas = Background(
        Command::new("timeout")
            .args(["60", "sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1"])
            .args(["-mi", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media_port.to_string(), "-nostdin"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp (sip-tester is installed by scripts/install-test-deps)"),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    uas
}

/// One call of SIPp's uac_pcap from `port` through `target` (IP:PORT) to `user`: it plays a
/// G.711 recording to the callee. Whether it succeeded, and the messages it saw.
pub fn pcap_call(dir: &std::path::Path, target: &str, user: &str, port: u16) -> (bool, String) {
    // uac_pcap plays pcap/g711a.pcap, relative to where it runs.
    let _ = std::os::unix::fs::symlink("/usr/share/sip-tester", dir.join("pcap"));
    let port = port.to_string();
    let out = crate::run_peer(
        dir,
        "sipp",
        [
            target,
            "-sn",
            "uac_pcap",
            "-s",
            user,
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &port,
            "-nostdin",
            "-trace_msg",
            "-message_file",
            "uac-messages.log",
            "-timeout",
            "40",
        ],
        std::time::Duration::from_secs(60),
    );
    let messages = std::fs::read_to_string(dir.join("uac-messages.log")).unwrap_or_default();
    (out.status.success(), messages)
}

/// Sends an ng request to `control` and returns the reply's text.
pub fn ng(control: SocketAddr, request: &str) -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.send_to(request.as_bytes(), control).expect("send");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 65_536];
    let (n, _) = s.recv_from(&mut buf).expect("an ng reply");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The relay's packet counts per side since it started (ng `statistics`), and its live
/// session count.
pub fn relayed(control: SocketAddr) -> (Vec<u64>, u64) {
    let stats = ng(control, "s d7:command10:statisticse");
    let int_after = |at: usize| -> Option<u64> { stats[at..].split('e').next()?.parse().ok() };
    let packets = stats
        .match_indices("7:packetsi")
        .filter_map(|(at, m)| int_after(at + m.len()))
        .collect();
    let sessions = stats
        .find("8:sessionsi")
        .and_then(|at| int_after(at + "8:sessionsi".len()))
        .unwrap_or(u64::MAX);
    (packets, sessions)
}

/// A loopback UDP address nothing is bound to now, for a peer that takes its port on the
/// command line (turnutils_peer, rtpengine, a TURN listener).
pub fn free_udp_addr() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
}

/// turnutils_peer echoing on a free loopback port.
pub fn echo_peer() -> (Background, u16) {
    echo_peer_on("127.0.0.1")
}

/// turnutils_peer echoing on a free port of `address` (127.0.0.1 or ::1).
pub fn echo_peer_on(address: &str) -> (Background, u16) {
    let port = free_udp_addr().port();
    let peer = Background(
        Command::new("timeout")
            .args([
                "120",
                "turnutils_peer",
                "-L",
                address,
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnutils_peer (coturn is installed by scripts/install-test-deps)"),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    (peer, port)
}

/// turnutils_uclient against the TURN server at `turn` towards the echo on `peer_port`, `clients` clients of
/// `messages` messages each, with `auth` options (and `-c` for no RTCP allocation, `-t` for
/// TCP, `-S` for TLS): what it printed.
pub fn uclient(
    turn: SocketAddr,
    peer_port: u16,
    clients: u32,
    messages: u32,
    auth: &[&str],
) -> String {
    let dir = crate::subject::scratch_dir("media-turn");
    let (port, peer, m, n) = (
        turn.port().to_string(),
        peer_port.to_string(),
        clients.to_string(),
        messages.to_string(),
    );
    // -x asks for an IPv6 relayed address (the echo is then at [::1]), -Z for one of each;
    // otherwise IPv4 is asked for explicitly (-X).
    let v6 = auth.contains(&"-x");
    let mut args: Vec<&str> = auth.to_vec();
    args.extend([
        "-p",
        &port,
        "-e",
        if v6 { "::1" } else { "127.0.0.1" },
        "-r",
        &peer,
        "-m",
        &m,
        "-n",
        &n,
    ]);
    args.extend(["-l", "160", "-z", "10"]);
    if !v6 && !auth.contains(&"-Z") {
        args.push("-X");
    }
    let server = turn.ip().to_string();
    args.push(&server);
    let out = crate::run_peer(
        &dir,
        "turnutils_uclient",
        args,
        std::time::Duration::from_secs(60),
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The final "tot_send_msgs=N, tot_recv_msgs=M" of a uclient run.
pub fn uclient_totals(out: &str) -> Option<(u64, u64)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
    let number = |key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((number("tot_send_msgs=")?, number("tot_recv_msgs=")?))
}
