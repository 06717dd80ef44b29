//! SDP (RFC 8866) as the relay needs it: where each media stream of an offer or answer is to be
//! sent (connection address, port, RTCP port, rtcp-mux), and the same description rewritten to
//! point at the relay. Lines the relay has no business with are kept byte for byte; ICE
//! attributes go (the relay's address is the only candidate that works through it).

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

/// Why a description cannot be used (the proxy answers 488 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not `v=0` first.
    #[error("SDP does not start with v=0")]
    NoVersion,
    /// A line that is not `x=value`.
    #[error("SDP line {0} is not TYPE=VALUE")]
    BadLine(usize),
    /// An m= line that does not read.
    #[error("SDP line {0}: malformed m= line")]
    BadMedia(usize),
    /// A c= line that does not read.
    #[error("SDP line {0}: malformed c= line")]
    BadConnection(usize),
    /// A stream with a port but no connection address, at media or session level.
    #[error("SDP media {0} has no connection address")]
    NoConnection(usize),
}

/// One m= section, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, ...
    pub kind: String,
    /// Where its RTP goes (connection address and m= port); port 0: the stream is off.
    pub rtp: SocketAddr,
    /// Where its RTCP goes: a=rtcp, else the port above (RFC 3605), unless rtcp-mux.
    pub rtcp: Option<SocketAddr>,
    /// a=rtcp-mux: RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

/// Where the relay wants one stream sent instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The relay's address.
    pub addr: IpAddr,
    /// The relay's RTP port for this stream (RTCP is one above unless rtcp-mux).
    pub port: u16,
}

#[derive(Debug)]
struct Section {
    /// Index of its m= line.
    m_line: usize,
    /// Its c= line, if it has one.
    connection: Option<usize>,
    /// Its a=rtcp line, if any.
    rtcp_line: Option<usize>,
    media: Media,
}

/// An m= section while its lines are read.
#[derive(Debug)]
struct RawSection {
    m_line: usize,
    kind: String,
    port: u16,
    connection: Option<usize>,
    addr: Option<IpAddr>,
    rtcp_line: Option<usize>,
    rtcp_mux: bool,
}

/// A parsed description: its lines and where the ones that matter are.
#[derive(Debug)]
pub struct Description<'a> {
    lines: Vec<&'a str>,
    /// How lines ended (CRLF, or LF from sloppy peers): kept when writing.
    eol: &'static str,
    /// Index of the session-level c= line, if any.
    session_connection: Option<usize>,
    sections: Vec<Section>,
}

/// `IN IP4 addr` / `IN IP6 addr` (a multicast TTL suffix is ignored).
fn connection_address(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_ascii_whitespace();
    let (Some("IN"), Some(kind), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let addr = addr.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// Whether an attribute belongs to ICE (RFC 8839), which the relay's rewrite removes.
fn is_ice(attribute: &str) -> bool {
    let name = attribute.split(':').next().unwrap_or(attribute);
    matches!(
        name,
        "candidate"
            | "ice-ufrag"
            | "ice-pwd"
            | "ice-options"
            | "ice-lite"
            | "ice-mismatch"
            | "remote-candidates"
            | "end-of-candidates"
    )
}

impl<'a> Description<'a> {
    /// Reads a description.
    pub fn parse(text: &'a str) -> Result<Self, SdpError> {
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        if lines.first() != Some(&"v=0") {
            return Err(SdpError::NoVersion);
        }
        let mut session_addr = None;
        let mut session_connection = None;
        let mut raw: Vec<RawSection> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((kind, value)) = line.split_once('=') else {
                return Err(SdpError::BadLine(i + 1));
            };
            if kind.len() != 1 {
                return Err(SdpError::BadLine(i + 1));
            }
            match kind {
                "m" => {
                    let mut parts = value.split_ascii_whitespace();
                    let (Some(media), Some(port), Some(_proto)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(SdpError::BadMedia(i + 1));
                    };
                    // "port/count" (RFC 8866 5.14): the first port is what we relay.
                    let port: u16 = port
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or(SdpError::BadMedia(i + 1))?;
                    raw.push(RawSection {
                        m_line: i,
                        kind: media.to_string(),
                        port,
                        connection: None,
                        addr: None,
                        rtcp_line: None,
                        rtcp_mux: false,
                    });
                }
                "c" => {
                    let addr = connection_address(value).ok_or(SdpError::BadConnection(i + 1))?;
                    match raw.last_mut() {
                        Some(section) => {
                            section.connection = Some(i);
                            section.addr = Some(addr);
                        }
                        None => {
                            session_addr = Some(addr);
                            session_connection = Some(i);
                        }
                    }
                }
                "a" => {
                    if let Some(section) = raw.last_mut() {
                        if value == "rtcp-mux" {
                            section.rtcp_mux = true;
                        } else if value.starts_with("rtcp:") {
                            section.rtcp_line = Some(i);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut sections = Vec::with_capacity(raw.len());
        for (n, r) in raw.into_iter().enumerate() {
            let RawSection {
                m_line,
                kind,
                port,
                connection,
                addr,
                rtcp_line,
                rtcp_mux,
            } = r;
            let addr = match addr.or(session_addr) {
                Some(a) => a,
                None if port == 0 => IpAddr::from([0, 0, 0, 0]),
                None => return Err(SdpError::NoConnection(n + 1)),
            };
            let rtcp = if rtcp_mux || port == 0 {
                None
            } else {
                let explicit = rtcp_line.and_then(|i| {
                    let v = lines[i].strip_prefix("a=rtcp:")?;
                    let mut parts = v.split_ascii_whitespace();
                    let port: u16 = parts.next()?.parse().ok()?;
                    let rest: Vec<&str> = parts.collect();
                    let a = connection_address(&rest.join(" ")).unwrap_or(addr);
                    Some(SocketAddr::new(a, port))
                });
                Some(explicit.unwrap_or(SocketAddr::new(addr, port.saturating_add(1))))
            };
            sections.push(Section {
                m_line,
                connection,
                rtcp_line,
                media: Media {
                    kind,
                    rtp: SocketAddr::new(addr, port),
                    rtcp,
                    rtcp_mux,
                },
            });
        }
        Ok(Description {
            lines,
            eol,
            session_connection,
            sections,
        })
    }

    /// The streams, in order.
    pub fn media(&self) -> impl Iterator<Item = &Media> {
        self.sections.iter().map(|s| &s.media)
    }

    /// The description pointing at the relay: for each stream with a plan, its m= port, its
    /// connection address (a c= line of its own, so other streams keep theirs) and its a=rtcp
    /// become the relay's; ICE attributes go everywhere. Streams without a plan (None, or
    /// beyond the plan) and disabled ones (port 0) are left as they are.
    pub fn rewrite(&self, plan: &[Option<Relayed>]) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 2).sum());
        let plan_of = |m_line: usize| -> Option<(&Section, Relayed)> {
            let (n, s) = self
                .sections
                .iter()
                .enumerate()
                .find(|(_, s)| s.m_line == m_line)?;
            let relayed = (*plan.get(n)?)?;
            (s.media.rtp.port() != 0).then_some((s, relayed))
        };
        // Every stream we do not relay keeps the session-level c= (if any): so it stays,
        // unless every live stream is relayed. Then it names the relay too, so the far side
        // is not handed an address it cannot use (an IPv6 caller's c= to an IPv4 callee)
        // nor the caller's private address. The origin's address follows: some phones (baresip)
        // pick the family to answer in from the first `IN IP4|IP6` of the body, the o= line.
        let live = self.sections.iter().filter(|s| s.media.rtp.port() != 0);
        let session_relay = live
            .map(|s| plan_of(s.m_line).map(|(_, r)| r.addr))
            .collect::<Option<Vec<IpAddr>>>()
            .and_then(|addrs| addrs.first().copied());
        let mut current: Option<(&Section, Relayed)> = None;
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(addr) = session_relay {
                if Some(i) == self.session_connection {
                    push_line(&mut out, &connection_line(addr), self.eol);
                    continue;
                }
                if line.starts_with("o=") && current.is_none() {
                    push_line(&mut out, &rewrite_origin(line, addr), self.eol);
                    continue;
                }
            }
            if line.starts_with("m=") {
                current = plan_of(i);
                if let Some((section, relayed)) = current {
                    push_line(&mut out, &rewrite_port(line, relayed.port), self.eol);
                    if section.connection.is_none() {
                        push_line(&mut out, &connection_line(relayed.addr), self.eol);
                    }
                    continue;
                }
            } else if line.starts_with("a=") && is_ice(&line[2..]) {
                continue;
            } else if let Some((section, relayed)) = current {
                if section.connection == Some(i) {
                    push_line(&mut out, &connection_line(relayed.addr), self.eol);
                    continue;
                }
                if section.rtcp_line == Some(i) {
                    let rtcp = relayed.port.saturating_add(1);
                    push_line(&mut out, &format!("a=rtcp:{rtcp}"), self.eol);
                    continue;
                }
            }
            push_line(&mut out, line, self.eol);
        }
        out
    }
}

fn push_line(out: &mut String, line: &str, eol: &str) {
    out.push_str(line);
    out.push_str(eol);
}

fn connection_line(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("c=IN IP4 {a}"),
        IpAddr::V6(a) => format!("c=IN IP6 {a}"),
    }
}

/// `o=user id version IN IP4 addr` naming `addr` instead (anything else kept as it was).
fn rewrite_origin(line: &str, addr: IpAddr) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() != 6 || fields[3] != "IN" {
        return line.to_string();
    }
    let family = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!("{} {family} {addr}", fields[..4].join(" "))
}

/// `m=audio 49170 RTP/AVP 0` with the port replaced (a port count is dropped: one stream).
fn rewrite_port(line: &str, port: u16) -> String {
    let mut parts = line.splitn(3, ' ');
    let (Some(kind), Some(_), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return line.to_string();
    };
    format!("{kind} {port} {rest}")
}
