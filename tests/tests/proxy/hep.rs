//! HEP v3 capture (issue #11 item 3): `--hep udp:IP:PORT` sends a copy of every SIP message.
//! Decoded by peers, not by us: sngrep (Irontec's HEP/EEP decoder, -E) turns the captured
//! HEP datagrams back into SIP packets, and tshark dissects those as SIP.

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, scratch_dir};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The port the HEP datagrams are written to in the pcap (Wireshark's and sngrep's default).
const HEP_PORT: u16 = 9060;

/// A pcap (Ethernet link type: sngrep writes its output with its input's link type, and
/// always writes Ethernet frames) of `datagrams`, each a UDP packet 127.0.0.1 -> HEP_PORT.
fn pcap(path: &Path, datagrams: &[Vec<u8>]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, sigfigs, snaplen, link type 1 (Ethernet).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 262_144, 1] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (i, d) in datagrams.iter().enumerate() {
        let udp_len = 8 + d.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&Ipv4Addr::LOCALHOST.octets());
        ip.extend_from_slice(&Ipv4Addr::LOCALHOST.octets());
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        ip.extend_from_slice(&40_000u16.to_be_bytes());
        ip.extend_from_slice(&HEP_PORT.to_be_bytes());
        ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(d);
        frame.extend_from_slice(&ip);
        for word in [
            1_700_000_000u32 + i as u32,
            0,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn hep_copies_decode_in_sngrep_and_tshark_as_the_sip_that_was_sent() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hep = format!("udp:{}", collector.local_addr().unwrap());
    let server = Subject::start_with_users(
        &[("bob@openline.test", "s3cret")],
        &["--hep", &hep, "--hep-id", "42"],
    );
    let mut bob = Phone::new("bob", "openline.test", "s3cret", server.udp);
    assert_eq!(bob.register(300), 200);

    // REGISTER, 401, REGISTER with credentials, 200: four copies.
    collector
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while datagrams.len() < 4 {
        let n = collector.recv(&mut buf).expect("HEP copies arrive");
        datagrams.push(buf[..n].to_vec());
    }
    assert!(datagrams.iter().all(|d| d.starts_with(b"HEP3")));

    let dir = scratch_dir("proxy-hep");
    let (captured, decoded) = (dir.join("hep.pcap"), dir.join("sip.pcap"));
    pcap(&captured, &datagrams);
    let sngrep = Command::new("timeout")
        .args(["30", "sngrep", "-N", "-q", "-F", "-E", "-I"])
        .arg(&captured)
        .arg("-O")
        .arg(&decoded)
        .output()
        .expect("sngrep (installed by scripts/install-test-deps)");
    assert!(
        decoded.exists(),
        "sngrep wrote nothing: {}",
        String::from_utf8_lossy(&sngrep.stderr)
    );
    let tshark = Command::new("timeout")
        .args(["30", "tshark", "-r"])
        .arg(&decoded)
        .args(["-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code"])
        .args(["-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .expect("tshark (installed by scripts/install-test-deps)");
    let fields = String::from_utf8_lossy(&tshark.stdout).into_owned();
    let mut rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split('\t').collect()).collect();
    // sngrep 1.6 writes each packet it read twice.
    rows.dedup();
    let server_port = server.udp.port().to_string();
    let methods: Vec<&str> = rows
        .iter()
        .map(|r| r[0])
        .filter(|m| !m.is_empty())
        .collect();
    let codes: Vec<&str> = rows
        .iter()
        .map(|r| r[1])
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(methods, ["REGISTER", "REGISTER"], "{fields}");
    assert_eq!(codes, ["401", "200"], "{fields}");
    // The requests went to the server's port, the responses came from it.
    for r in &rows {
        let port = if r[0].is_empty() { r[2] } else { r[3] };
        assert_eq!(port, server_port, "{fields}");
    }
}
