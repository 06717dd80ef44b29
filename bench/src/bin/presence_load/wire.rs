//! What the load's two halves share: one UDP socket with its read time-out, requests built
//! the same way for every server, digest answers, and the server's CPU from /proc.

use openline_sip::digest::{Answer, answer};
use openline_sip::header::HeaderName;
use openline_sip::message::Message;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// The password every bench user has, on both servers (Kamailio's bench config checks one).
pub(crate) const PASSWORD: &str = "s3cret";

/// A UDP socket on loopback that wakes every few milliseconds so a thread can pace its sends.
pub(crate) fn socket() -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_millis(2)))?;
    Ok(s)
}

/// Receives one datagram into `buf`, or None when the read timed out.
pub(crate) fn receive(s: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    s.recv_from(buf).ok()
}

/// The first answerable value for a 401/407, as its header name and value.
pub(crate) fn credentials(
    response: &Message<'_>,
    user: &str,
    (method, uri): (&str, &str),
    nc: u32,
) -> Option<(&'static str, String)> {
    let (challenge, reply) = match response.status() {
        Some(401) => (HeaderName::WwwAuthenticate, "Authorization"),
        Some(407) => (HeaderName::ProxyAuthenticate, "Proxy-Authorization"),
        _ => return None,
    };
    let a = Answer {
        username: user,
        password: PASSWORD,
        method,
        uri,
        cnonce: "0a4f113b",
        nc,
    };
    response
        .headers_named(challenge)
        .find_map(|c| answer(c, &a))
        .map(|v| (reply, v))
}

/// CPU time of a process and every process below it (Kamailio forks workers), in seconds.
pub(crate) fn tree_cpu(root: u32, ticks_per_second: f64) -> f64 {
    let mut stats = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name, which may hold spaces: state ppid ... utime stime.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split(' ').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            stats.push((pid, num(1) as u32, num(11) + num(12)));
        }
    }
    let mut inside = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in &stats {
            if inside.contains(ppid) && !inside.contains(pid) {
                inside.push(*pid);
                grew = true;
            }
        }
    }
    let ticks: u64 = stats
        .iter()
        .filter(|(pid, _, _)| inside.contains(pid))
        .map(|(_, _, t)| t)
        .sum();
    ticks as f64 / ticks_per_second
}
