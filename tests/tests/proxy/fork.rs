//! Forking on the wire: bob has two devices, both ring, the one that answers gets the call and
//! the other gets a CANCEL; the caller sees one 200, and ACK and BYE follow the recorded route.

use openline_registrar::store::{BindingStore, Store, UserStore};
use openline_registrar::{Binding, ChangeSet, User};
use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::wire::{first_line, header, recv_until, status};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// A UDP endpoint the test drives by hand.
struct Phone {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Phone {
    fn new() -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        Phone { socket, addr }
    }

    /// The next message whose first line starts with `start` (others are kept out of the way).
    fn expect(&self, start: &str) -> Vec<u8> {
        let got = recv_until(&[&self.socket], WAIT, |m| first_line(m).starts_with(start));
        got.into_iter()
            .find(|m| first_line(m).starts_with(start))
            .unwrap_or_else(|| panic!("{} never got {start}", self.addr))
    }

    fn send(&self, to: SocketAddr, msg: &[u8]) {
        self.socket.send_to(msg, to).unwrap();
    }
}

use openline_tests::wire::{response_to as answer, vias};

/// bob@openline.test with a binding per phone, written before the server starts (it loads
/// them at start, as after a restart).
fn server_with_bob(phones: &[(&Phone, u16)], extra_args: &[&str]) -> Subject {
    let dir = scratch_dir("fork-db");
    let db = format!("sqlite://{}/openline.db", dir.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .put_user(&User::new("bob@openline.test", "s3cret").unwrap())
            .await
            .unwrap();
        let upserts = phones
            .iter()
            .map(|(p, q)| Binding {
                aor: "bob@openline.test".into(),
                contact: format!("sip:bob@{}", p.addr),
                instance: None,
                reg_id: None,
                expires_at: u64::MAX / 4,
                q: *q,
                call_id: "setup".into(),
                cseq: 1,
                source: format!("udp:{}", p.addr),
                node: String::new(),
            })
            .collect();
        store
            .apply(&[ChangeSet {
                aor: "bob@openline.test".into(),
                upserts,
                removals: vec![],
            }])
            .await
            .unwrap();
    });
    Subject::start_on(&db, extra_args)
}

#[test]
fn both_devices_ring_the_answering_one_gets_the_call_the_other_a_cancel() {
    let (desk, mobile, alice) = (Phone::new(), Phone::new(), Phone::new());
    let server = server_with_bob(&[(&desk, 1000), (&mobile, 1000)], &[]);
    let proxy = server.udp;
    let invite = format!(
        "INVITE sip:bob@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKalice1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@elsewhere.test>;tag=al\r\nTo: <sip:bob@openline.test>\r\n\
         Call-ID: fork-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n",
        a = alice.addr
    );
    alice.send(proxy, invite.as_bytes());

    // Both devices ring: each gets the INVITE with our Via and Record-Route, one hop fewer.
    let at_desk = desk.expect("INVITE sip:bob@");
    let at_mobile = mobile.expect("INVITE sip:bob@");
    for (got, phone) in [(&at_desk, &desk), (&at_mobile, &mobile)] {
        assert_eq!(
            first_line(got),
            format!("INVITE sip:bob@{} SIP/2.0", phone.addr)
        );
        assert_eq!(header(got, "Max-Forwards", None).as_deref(), Some("69"));
        assert_eq!(vias(got).len(), 2, "{}", String::from_utf8_lossy(got));
        assert!(vias(got)[0].contains(&proxy.to_string()));
        assert_eq!(
            header(got, "Record-Route", None),
            Some(format!("<sip:{proxy};lr>"))
        );
    }
    desk.send(proxy, &answer(&at_desk, 180, "Ringing", "desk", ""));
    mobile.send(proxy, &answer(&at_mobile, 180, "Ringing", "mobile", ""));
    let contact = format!("Contact: <sip:bob@{}>\r\n", desk.addr);
    desk.send(proxy, &answer(&at_desk, 200, "OK", "desk", &contact));

    // The mobile is cancelled: same branch as its INVITE.
    let cancel = mobile.expect("CANCEL ");
    assert_eq!(vias(&cancel), vias(&at_mobile)[..1].to_vec());
    mobile.send(proxy, &answer(&cancel, 200, "OK", "mobile", ""));
    mobile.send(
        proxy,
        &answer(&at_mobile, 487, "Request Terminated", "mobile", ""),
    );
    // The proxy acknowledges the 487 hop by hop.
    let ack487 = mobile.expect("ACK ");
    assert_eq!(header(&ack487, "CSeq", None).as_deref(), Some("1 ACK"));

    // Alice sees ringing and exactly one final answer, the desk's 200, with our Via gone.
    let got = recv_until(&[&alice.socket], WAIT, |m| status(m) == Some(200));
    let finals: Vec<_> = got
        .iter()
        .filter(|m| status(m).is_some_and(|c| c >= 200))
        .collect();
    assert_eq!(finals.len(), 1, "{got:?}");
    assert!(
        header(finals[0], "To", Some("t"))
            .unwrap()
            .contains("tag=desk")
    );
    assert_eq!(vias(finals[0]).len(), 1);
    assert!(got.iter().any(|m| status(m) == Some(180)));
    std::thread::sleep(Duration::from_millis(300));
    let late = recv_until(&[&alice.socket], Duration::from_millis(300), |_| false);
    assert!(
        late.iter().all(|m| status(m) != Some(487)),
        "the cancelled branch's 487 must not reach the caller"
    );

    // ACK and BYE follow the recorded route to the desk.
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} sip:bob@{d} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch={branch};rport\r\n\
             Route: <sip:{proxy};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@elsewhere.test>;tag=al\r\n\
             To: <sip:bob@openline.test>;tag=desk\r\nCall-ID: fork-1\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            d = desk.addr,
            a = alice.addr
        )
    };
    alice.send(proxy, in_dialog("ACK", 1, "z9hG4bKalice2").as_bytes());
    let ack = desk.expect("ACK ");
    assert!(
        header(&ack, "Route", None).is_none(),
        "our Route entry is consumed"
    );
    alice.send(proxy, in_dialog("BYE", 2, "z9hG4bKalice3").as_bytes());
    let bye = desk.expect("BYE ");
    desk.send(proxy, &answer(&bye, 200, "OK", "desk", ""));
    let got = recv_until(&[&alice.socket], WAIT, |m| {
        status(m) == Some(200) && header(m, "CSeq", None).as_deref() == Some("2 BYE")
    });
    assert!(
        got.iter()
            .any(|m| header(m, "CSeq", None).as_deref() == Some("2 BYE")),
        "{got:?}"
    );
}

#[test]
fn a_call_nobody_picks_up_ends_with_480_and_a_cancel_at_the_ring_timeout() {
    let (desk, alice) = (Phone::new(), Phone::new());
    let server = server_with_bob(&[(&desk, 1000)], &["--ring-timeout", "1"]);
    let proxy = server.udp;
    let invite = format!(
        "INVITE sip:bob@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKring1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@elsewhere.test>;tag=al\r\nTo: <sip:bob@openline.test>\r\n\
         Call-ID: ring-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        a = alice.addr
    );
    alice.send(proxy, invite.as_bytes());
    let at_desk = desk.expect("INVITE sip:bob@");
    desk.send(proxy, &answer(&at_desk, 180, "Ringing", "desk", ""));
    // Nobody picks up: after a second the phone is cancelled and the caller hears 480.
    let cancel = desk.expect("CANCEL ");
    desk.send(proxy, &answer(&cancel, 200, "OK", "desk", ""));
    desk.send(
        proxy,
        &answer(&at_desk, 487, "Request Terminated", "desk", ""),
    );
    let got = recv_until(&[&alice.socket], WAIT, |m| {
        status(m).is_some_and(|c| c >= 300)
    });
    let finals: Vec<u16> = got
        .iter()
        .filter_map(|m| status(m))
        .filter(|&c| c >= 200)
        .collect();
    assert_eq!(finals, [480], "{got:?}");
}

#[test]
fn a_lower_q_device_rings_only_after_the_preferred_one_declines() {
    let (desk, mobile, alice) = (Phone::new(), Phone::new(), Phone::new());
    let server = server_with_bob(&[(&desk, 1000), (&mobile, 500)], &[]);
    let proxy = server.udp;
    let invite = format!(
        "INVITE sip:bob@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKq1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@elsewhere.test>;tag=al\r\nTo: <sip:bob@openline.test>\r\n\
         Call-ID: q-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        a = alice.addr
    );
    alice.send(proxy, invite.as_bytes());
    let at_desk = desk.expect("INVITE sip:bob@");
    // The mobile (q=0.5) stays silent while the desk (q=1) rings.
    std::thread::sleep(Duration::from_millis(200));
    let early = recv_until(&[&mobile.socket], Duration::from_millis(100), |_| false);
    assert!(early.is_empty(), "{early:?}");
    desk.send(proxy, &answer(&at_desk, 486, "Busy Here", "desk", ""));
    let at_mobile = mobile.expect("INVITE sip:bob@");
    let contact = format!("Contact: <sip:bob@{}>\r\n", mobile.addr);
    mobile.send(proxy, &answer(&at_mobile, 200, "OK", "mobile", &contact));
    let got = recv_until(&[&alice.socket], WAIT, |m| status(m) == Some(200));
    let finals: Vec<u16> = got
        .iter()
        .filter_map(|m| status(m))
        .filter(|&c| c >= 200)
        .collect();
    assert_eq!(finals, [200], "the desk's 486 stays downstream: {got:?}");
}

#[test]
fn the_callers_cancel_reaches_every_ringing_device_and_one_487_comes_back() {
    let (desk, mobile, alice) = (Phone::new(), Phone::new(), Phone::new());
    let server = server_with_bob(&[(&desk, 1000), (&mobile, 1000)], &[]);
    let proxy = server.udp;
    let head = |method: &str| {
        format!(
            "{method} sip:bob@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKcx1;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@elsewhere.test>;tag=al\r\nTo: <sip:bob@openline.test>\r\n\
             Call-ID: cancel-1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
            a = alice.addr
        )
    };
    alice.send(proxy, head("INVITE").as_bytes());
    let at_desk = desk.expect("INVITE sip:bob@");
    let at_mobile = mobile.expect("INVITE sip:bob@");
    desk.send(proxy, &answer(&at_desk, 180, "Ringing", "desk", ""));
    mobile.send(proxy, &answer(&at_mobile, 180, "Ringing", "mobile", ""));
    std::thread::sleep(Duration::from_millis(100));

    // Alice gives up: her CANCEL is answered, and each ringing device is cancelled.
    alice.send(proxy, head("CANCEL").as_bytes());
    for (phone, invite, tag) in [(&desk, &at_desk, "desk"), (&mobile, &at_mobile, "mobile")] {
        let cancel = phone.expect("CANCEL ");
        assert_eq!(vias(&cancel), vias(invite)[..1].to_vec());
        phone.send(proxy, &answer(&cancel, 200, "OK", tag, ""));
        phone.send(proxy, &answer(invite, 487, "Request Terminated", tag, ""));
    }
    let mut got = recv_until(&[&alice.socket], WAIT, |m| status(m) == Some(487));
    // A second 487 (one per branch) would be a bug: give it time to show.
    got.extend(recv_until(
        &[&alice.socket],
        Duration::from_millis(300),
        |_| false,
    ));
    let cancel_ok = got
        .iter()
        .any(|m| status(m) == Some(200) && header(m, "CSeq", None).as_deref() == Some("1 CANCEL"));
    assert!(cancel_ok, "{got:?}");
    let invite_finals: Vec<u16> = got
        .iter()
        .filter(|m| header(m, "CSeq", None).as_deref() == Some("1 INVITE"))
        .filter_map(|m| status(m))
        .filter(|&c| c >= 200)
        .collect();
    assert_eq!(invite_finals, [487], "{got:?}");
}
