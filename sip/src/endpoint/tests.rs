use super::*;
use crate::SeededEntropy;

#[test]
#[allow(clippy::disallowed_methods)] // any origin will do
fn a_lost_connection_fails_only_the_requests_that_heard_nothing_over_it() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(SeededEntropy::new(1)));
    let at = |port: u16| Destination {
        transport: Transport::Tls,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let message = |branch: &str| {
        format!(
            "MESSAGE sip:b@club-b.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@club-a.test>;tag=1\r\nTo: <sip:b@club-b.test>\r\n\
             Call-ID: {branch}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let silent = ep.send_request(now, message("s1"), at(5071)).unwrap();
    let heard = ep.send_request(now, message("h1"), at(5071)).unwrap();
    let elsewhere = ep.send_request(now, message("e1"), at(5072)).unwrap();
    let trying = b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKh1\r\nFrom: <sip:a@club-a.test>;tag=1\r\nTo: <sip:b@club-b.test>\r\nCall-ID: h1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    let inbound = Inbound {
        transport: Transport::Tls,
        source: at(5071).addr,
        data: trying,
    };
    ep.handle(now, inbound);
    while ep.poll_output().is_some() {}
    ep.handle_connection_lost(now, at(5071));
    let events: Vec<Output> = std::iter::from_fn(|| ep.poll_output()).collect();
    assert!(events.contains(&Output::Event(TransactionEvent::TransportError(silent))));
    for other in [heard, elsewhere] {
        assert!(
            !events.contains(&Output::Event(TransactionEvent::TransportError(other))),
            "{events:?}"
        );
    }
    assert_eq!(ep.state(heard), Some(crate::transaction::State::Proceeding));
    assert_eq!(ep.state(elsewhere), Some(crate::transaction::State::Trying));
}

const REGISTER: &[u8] = b"REGISTER sip:club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKst1\r\nFrom: <sip:a@club-a.test>;tag=1\r\nTo: <sip:a@club-a.test>\r\nCall-ID: st\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

#[test]
#[allow(clippy::disallowed_methods)] // any origin will do
fn a_stateless_answer_keeps_no_transaction() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(SeededEntropy::new(1)));
    let source: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let inbound = Inbound {
        transport: Transport::Udp,
        source,
        data: REGISTER,
    };
    let Verdict::Request {
        request,
        transaction: Some(id),
    } = ep.handle(now, inbound)
    else {
        panic!()
    };
    let challenge =
        ResponseBuilder::new(401, "Unauthorized", &request.echo(), source, Some("t")).finish();
    ep.respond_statelessly(id, challenge).unwrap();
    assert!(
        matches!(ep.poll_output(), Some(Output::Transmit(t)) if t.payload.starts_with(b"SIP/2.0 401"))
    );
    assert_eq!(
        ep.poll_output(),
        Some(Output::Event(TransactionEvent::Terminated(id)))
    );
    assert_eq!(ep.transaction_count(), 0);
    // The retransmission is a new request, to be challenged afresh.
    assert!(
        matches!(ep.handle(now, inbound), Verdict::Request { transaction: Some(other), .. } if other != id)
    );
    assert!(
        ep.respond_statelessly(TransactionId(999), Vec::new())
            .is_err()
    );
}
