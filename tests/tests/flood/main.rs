//! A flood from one source does not starve the others: while 127.0.0.2 sends OPTIONS as fast as
//! one thread can, requests from 127.0.0.1 are still answered. (Without the receiver's fairness,
//! 19 to 21 of the 40 were answered; with it, 40.) A test binary of its own, so that no other
//! test competes for the CPU while it measures whether answers come in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_tests::subject::Subject;
use openline_tests::wire::{options, recv_until, status};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
#[allow(clippy::disallowed_methods)] // a driver of a real server: its own thread and clock
fn a_flood_from_one_source_does_not_starve_another() {
    // The release build: whether a flood is absorbed depends on how fast datagrams are read.
    let server = Subject::start_release(&[]);
    let target = server.udp;
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.2:0").unwrap();
            let local = s.local_addr().unwrap();
            let started = Instant::now();
            let mut sent = 0u64;
            // Bounded in count and time.
            while !stop.load(Ordering::Relaxed)
                && sent < 3_000_000
                && started.elapsed() < Duration::from_secs(20)
            {
                let _ = s.send_to(
                    &options(target, local, "UDP", &format!("flood-{sent}")),
                    target,
                );
                sent += 1;
            }
            sent
        })
    };
    // Let the flood fill the server's queue first.
    std::thread::sleep(Duration::from_millis(500));
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = quiet.local_addr().unwrap();
    let mut answered = 0;
    const ASKED: usize = 40;
    for i in 0..ASKED {
        let call_id = format!("quiet-{i}");
        quiet
            .send_to(&options(target, local, "UDP", &call_id), target)
            .unwrap();
        let got = recv_until(&[&quiet], Duration::from_millis(1000), |m| {
            status(m) == Some(200)
        });
        if got.iter().any(|m| status(m) == Some(200)) {
            answered += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().unwrap();
    // One datagram each, no retransmission: nearly all must get through.
    assert!(
        answered >= ASKED - 2,
        "{answered} of {ASKED} answered during a flood of {sent} datagrams"
    );
}
