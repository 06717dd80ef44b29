//! A server's Prometheus text, read as a test reads it.

use std::io::{Read, Write};
use std::net::SocketAddr;

/// GET /metrics at `at`: the samples, one per line (chunk-size lines dropped).
pub fn scrape(at: SocketAddr) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(at) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    body.lines()
        .filter(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The value of the first sample whose line starts with `name` (labels included, if given).
pub fn sample(at: SocketAddr, name: &str) -> Option<f64> {
    scrape(at)
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
