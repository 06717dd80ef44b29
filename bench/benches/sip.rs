//! Parse and print a typical INVITE with our parser and with rsip (the design card's choice) in
//! the same run, and one non-INVITE transaction round trip through two endpoints.

use criterion::{Criterion, criterion_group, criterion_main};
use openline_bench::INVITE;
use openline_sip::endpoint::{Output, Verdict};
use openline_sip::message::RequestBuilder;
use openline_sip::transaction::Destination;
use openline_sip::{Endpoint, EndpointConfig, Inbound, Message, Method, SeededEntropy, Transport};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

fn parse(c: &mut Criterion) {
    let bytes = INVITE.as_bytes();
    let mut g = c.benchmark_group("parse_invite");
    g.bench_function("openline", |b| {
        b.iter(|| black_box(Message::parse(black_box(bytes)).map(|m| m.cseq.seq)))
    });
    g.bench_function("rsip", |b| {
        b.iter(|| black_box(rsip::SipMessage::try_from(black_box(bytes)).is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("parse_print_invite");
    let mut out = Vec::with_capacity(1024);
    g.bench_function("openline", |b| {
        b.iter(|| {
            out.clear();
            if let Ok(m) = Message::parse(black_box(bytes)) {
                m.write_to(&mut out);
            }
            black_box(out.len())
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            black_box(rsip::SipMessage::try_from(black_box(bytes)).map(|m| m.to_string().len()))
        })
    });
    g.finish();
}

#[allow(clippy::disallowed_methods)] // a fixed origin for the endpoints' clocks
fn transaction_round_trip(c: &mut Criterion) {
    let now = Instant::now();
    let client_addr: SocketAddr = "127.0.0.1:5062".parse().unwrap_or_else(|_| unreachable!());
    let server_addr: SocketAddr = "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!());
    let mut client = Endpoint::new(EndpointConfig::default(), Box::new(SeededEntropy::new(1)));
    let mut server = Endpoint::new(EndpointConfig::default(), Box::new(SeededEntropy::new(2)));
    let mut n = 0u64;
    c.bench_function("transaction_round_trip/options_200", |b| {
        b.iter(|| {
            n += 1;
            let branch = client.new_branch();
            let request = RequestBuilder::new(Method::Options, "sip:bob@127.0.0.1:5060")
                .header(
                    "Via",
                    format_args!("SIP/2.0/UDP {client_addr};branch={branch}"),
                )
                .header("Max-Forwards", 70)
                .header("From", "<sip:alice@127.0.0.1>;tag=a1")
                .header("To", "<sip:bob@127.0.0.1>")
                .header("Call-ID", format_args!("bench-{n}"))
                .header("CSeq", "1 OPTIONS")
                .finish();
            let destination = Destination {
                transport: Transport::Udp,
                addr: server_addr,
            };
            let _ = client.send_request(now, request, destination);
            while let Some(Output::Transmit(t)) = client.poll_output() {
                let inbound = Inbound {
                    transport: Transport::Udp,
                    source: client_addr,
                    data: &t.payload,
                };
                if let Verdict::Request {
                    request,
                    transaction: Some(id),
                } = server.handle(now, inbound)
                {
                    let echo = request.echo();
                    let _ = server.reply(now, id, &echo, client_addr, 200, &[]);
                }
            }
            while let Some(Output::Transmit(t)) = server.poll_output() {
                let inbound = Inbound {
                    transport: Transport::Udp,
                    source: server_addr,
                    data: &t.payload,
                };
                black_box(matches!(
                    client.handle(now, inbound),
                    Verdict::Response { .. }
                ));
            }
            // Let Timers J and K end both transactions so the tables stay small.
            let later = now + std::time::Duration::from_secs(40);
            client.handle_timeout(later);
            server.handle_timeout(later);
            while client.poll_output().is_some() {}
            while server.poll_output().is_some() {}
        })
    });
}

criterion_group!(benches, parse, transaction_round_trip);
criterion_main!(benches);
