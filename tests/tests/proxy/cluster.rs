//! Three openline nodes serving one domain on one PostgreSQL (issue #9): a device is reached
//! through the node that holds its flow, whichever node the request arrives at; messages sent
//! through any node reach a user who registers later, once each and in order, even when a
//! node is killed mid-flow; a killed node's devices register again through another.

use crate::sipp::{register_at, run_calls};
use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, bindings_heard, scratch_dir};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "openline.test";

/// `count` nodes n1.. on a fresh database `name`, with alice, bob and carol (password s3cret);
/// node i's control socket is `ni.sock` in the folder returned.
fn start_cluster(name: &str, count: usize) -> (String, Vec<Subject>, std::path::PathBuf) {
    let db = openline_tests::fresh_postgres_database(name);
    for user in ["alice", "bob", "carol"] {
        add_user(&db, &format!("{user}@{DOMAIN}"), "s3cret");
    }
    let dir = scratch_dir(name);
    let nodes: Vec<Subject> = (1..=count)
        .map(|i| {
            let control = dir.join(format!("n{i}.sock"));
            let node = format!("n{i}");
            Subject::start_on(
                &db,
                &["--node", &node, "--control", control.to_str().unwrap()],
            )
        })
        .collect();
    // Each node heard of those started after it through the database.
    std::thread::sleep(Duration::from_millis(300));
    (db, nodes, dir)
}

/// A SIPp responder on `port` that keeps every message it sees in `dir`.
fn traced_uas(dir: &std::path::Path, port: u16) -> openline_tests::Background {
    std::fs::create_dir_all(dir).unwrap();
    let scenario = openline_tests::repo_file("bench/reference/signaling/scenarios/uas_call.xml");
    let child = Command::new("timeout")
        .args(["120", "sipp", "-sf"])
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-trace_msg", "-message_file", "messages.log"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    openline_tests::Background(child)
}

/// The top Via of each INVITE the responder in `dir` received.
fn invites_top_vias(dir: &std::path::Path) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join("messages.log")).unwrap_or_default();
    log.split("INVITE sip:")
        .skip(1)
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Via:"))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn a_call_through_any_node_reaches_devices_registered_at_the_others() {
    let (_db, nodes, controls) = start_cluster("openline_cluster_calls", 3);
    let dir = scratch_dir("cluster-calls");
    // alice's device registers through n1, bob's through n2; carol calls both through n3.
    let (alice_port, bob_port) = (15_460, 15_470);
    let mut alice = traced_uas(&dir.join("alice"), alice_port);
    let mut bob = traced_uas(&dir.join("bob"), bob_port);
    for (node, user, port) in [
        (&nodes[0], "alice", alice_port),
        (&nodes[1], "bob", bob_port),
    ] {
        let contact = format!("sip:{user}@127.0.0.1:{port}");
        register_at(
            &node.udp.to_string(),
            &dir,
            user,
            DOMAIN,
            &contact,
            port + 1,
        );
    }
    assert_eq!(bindings_heard(&controls.join("n3.sock"), 2), Some(2));
    let through_n3 = nodes[2].udp.to_string();
    for (user, port) in [("alice", 15_482), ("bob", 15_484)] {
        let (ok, screen) = run_calls(
            &dir.join(format!("to-{user}")),
            &through_n3,
            "uac-auth.xml",
            ("carol", DOMAIN),
            (user, DOMAIN),
            3,
            port,
        );
        assert_eq!(ok, Some(3), "calls to {user} through n3:\n{screen}");
    }
    alice.stop();
    bob.stop();
    // Each INVITE came down from the node holding the device's flow, not from n3 straight.
    for (user, holder) in [("alice", &nodes[0]), ("bob", &nodes[1])] {
        let vias = invites_top_vias(&dir.join(user));
        assert_eq!(vias.len(), 3, "{user} saw {vias:?}");
        let from_holder = format!("127.0.0.1:{};", holder.udp.port());
        assert!(
            vias.iter().all(|v| v.contains(&from_holder)),
            "{user}'s INVITEs did not come from {from_holder}: {vias:?}"
        );
    }
}

/// One sender of MESSAGEs from another domain (no digest asked of strangers writing to local
/// users), which retries a request that got no answer through the next node, as RFC 3263
/// failover does: same Call-ID, CSeq and From tag, a new branch.
struct Sender {
    socket: UdpSocket,
    name: String,
    nodes: Vec<SocketAddr>,
    /// Nodes that did not answer: tried last from then on (RFC 3263 4.3).
    down: Vec<bool>,
    seed: u64,
}

impl Sender {
    fn new(name: &str, nodes: &[SocketAddr], seed: u64) -> Sender {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Sender {
            socket,
            name: name.into(),
            nodes: nodes.to_vec(),
            down: vec![false; nodes.len()],
            seed,
        }
    }

    /// A node picked at random (a fixed sequence per sender), among those not down.
    fn pick(&mut self) -> usize {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let up: Vec<usize> = (0..self.nodes.len()).filter(|n| !self.down[*n]).collect();
        let from = if up.is_empty() {
            (0..self.nodes.len()).collect()
        } else {
            up
        };
        from[(self.seed >> 33) as usize % from.len()]
    }

    /// Sends `body` to `to` until a node answers it finally; that status (0 if none did).
    #[allow(clippy::disallowed_methods)] // a test's own patience
    fn send(&mut self, to: &str, seq: usize, body: &str) -> u16 {
        let local = self.socket.local_addr().unwrap();
        let mut node = self.pick();
        for attempt in 0..8 {
            let branch = format!("z9hG4bK{}-{seq}-{attempt}", self.name);
            let request = format!(
                "MESSAGE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{}@elsewhere.test>;tag={}\r\nTo: <sip:{to}>\r\n\
                 Call-ID: {}-{seq}@elsewhere.test\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                self.name,
                self.name,
                self.name,
                body.len()
            );
            let _ = self.socket.send_to(request.as_bytes(), self.nodes[node]);
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline {
                let mut buf = [0u8; 4096];
                let Ok(n) = self.socket.recv(&mut buf) else {
                    continue;
                };
                let response = String::from_utf8_lossy(&buf[..n]);
                let code: u16 = response
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                if response.contains(&branch) && code >= 200 {
                    return code;
                }
            }
            self.down[node] = true;
            node = (node + 1) % self.nodes.len();
        }
        0
    }
}

/// Sends `per_sender` messages from each of `senders` senders in parallel to `to` through
/// random nodes; calls `midway` once half of the first sender's are through. Every status.
fn flow_messages(
    nodes: &[SocketAddr],
    to: &str,
    (senders, per_sender): (usize, usize),
    midway: impl FnOnce() + Send,
) -> Vec<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for k in 0..senders {
            let tx = tx.clone();
            handles.push(s.spawn(move || {
                let mut sender = Sender::new(&format!("s{k}"), nodes, 17 + k as u64);
                (0..per_sender)
                    .map(|i| {
                        if k == 0 && i == per_sender / 2 {
                            let _ = tx.send(());
                        }
                        sender.send(to, i, &format!("s{k}-{i:04}"))
                    })
                    .collect::<Vec<u16>>()
            }));
        }
        drop(tx);
        if rx.recv().is_ok() {
            midway();
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// bob's MESSAGEs, each body once and in each sender's order, or why not.
fn check_once_in_order(got: &[String], senders: usize, per_sender: usize) {
    assert_eq!(
        got.len(),
        senders * per_sender,
        "bodies received: {}",
        got.len()
    );
    for k in 0..senders {
        let mine: Vec<&String> = got
            .iter()
            .filter(|b| b.starts_with(&format!("s{k}-")))
            .collect();
        let expected: Vec<String> = (0..per_sender).map(|i| format!("s{k}-{i:04}")).collect();
        assert!(
            mine.iter().zip(&expected).all(|(a, b)| *a == b) && mine.len() == expected.len(),
            "sender s{k}'s messages out of order, missing or doubled: first differences {:?}",
            mine.iter()
                .zip(&expected)
                .filter(|(a, b)| **a != *b)
                .take(5)
                .collect::<Vec<_>>()
        );
    }
}

/// How many messages the database still keeps for `aor`, once that stops changing.
fn stored_for(db: &str, aor: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        let mut last = -1;
        for _ in 0..50 {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE recipient = $1")
                .bind(aor)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if n == 0 || n == last {
                return n;
            }
            last = n;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    })
}

#[test]
fn a_thousand_messages_through_random_nodes_reach_bob_once_each_in_order() {
    let (db, nodes, _) = start_cluster("openline_cluster_mail", 3);
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.udp).collect();
    let to = format!("bob@{DOMAIN}");
    let statuses = flow_messages(&addrs, &to, (4, 250), || {});
    assert!(
        statuses.iter().all(|s| *s == 202),
        "not all stored: {:?}",
        {
            let mut odd: Vec<u16> = statuses.iter().copied().filter(|s| *s != 202).collect();
            odd.dedup();
            odd
        }
    );
    // bob comes online through n2 and is handed all of them.
    let mut bob = Phone::new("bob", DOMAIN, "s3cret", nodes[1].udp);
    assert_eq!(bob.register(300), 200);
    let got: Vec<String> = bob
        .messages(1000, Duration::from_secs(60))
        .iter()
        .map(|m| m.body())
        .collect();
    check_once_in_order(&got, 4, 250);
    assert_eq!(stored_for(&db, &to), 0, "delivered messages were kept");
    // Nothing more comes later (a second hand-over of the same message).
    assert!(bob.messages(1, Duration::from_secs(2)).is_empty());
}

#[test]
fn a_node_killed_mid_flow_loses_nothing_accepted_and_doubles_nothing() {
    let (db, mut nodes, controls) = start_cluster("openline_cluster_kill", 3);
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.udp).collect();
    let to = format!("bob@{DOMAIN}");
    // alice's device holds its flow at n1, the node about to die.
    let mut alice = Phone::new("alice", DOMAIN, "s3cret", nodes[0].udp);
    assert_eq!(alice.register(300), 200);
    let mut n1 = nodes.remove(0);
    let statuses = flow_messages(&addrs, &to, (4, 150), || n1.kill());
    assert!(
        statuses.iter().all(|s| *s == 202),
        "a message found no node to take it: {statuses:?}"
    );
    let mut bob = Phone::new("bob", DOMAIN, "s3cret", nodes[0].udp);
    assert_eq!(bob.register(300), 200);
    let got: Vec<String> = bob
        .messages(600, Duration::from_secs(60))
        .iter()
        .map(|m| m.body())
        .collect();
    check_once_in_order(&got, 4, 150);
    assert!(bob.messages(1, Duration::from_secs(2)).is_empty());
    assert_eq!(stored_for(&db, &to), 0);

    // n3 takes n1 for dead once its heartbeat lapses: a message for alice, whose flow was
    // there, is stored; when her device fails over to n2 (as DNS SRV would send it), n2
    // hands it over.
    let n3 = controls.join("n3.sock");
    let mut others = None;
    for _ in 0..60 {
        others = openline_tests::subject::node_status(&n3)
            .and_then(|s| s.split("\"other_nodes\":").nth(1).map(str::to_string));
        if others.as_deref().is_some_and(|o| o.starts_with("[\"n2\"]")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        others.as_deref().is_some_and(|o| o.starts_with("[\"n2\"]")),
        "n3 still counts on n1: {others:?}"
    );
    let mut carol = Phone::new("carol", DOMAIN, "s3cret", nodes[1].udp);
    assert_eq!(carol.message(&alice.aor(), "still here?"), 202);
    alice.set_server(nodes[0].udp);
    assert_eq!(alice.register(300), 200);
    let got = alice.messages(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), "still here?");
}

#[test]
fn a_call_cancelled_at_one_node_is_cancelled_at_the_device_behind_another() {
    use openline_tests::wire::{first_line, recv_until, response_to, status};
    let (_db, nodes, controls) = start_cluster("openline_cluster_cancel", 2);
    // alice's device rings at `callee`, registered through n1; the caller enters at n2.
    let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut alice = Phone::new("alice", DOMAIN, "s3cret", nodes[0].udp);
    alice.set_contact(&format!("sip:alice@{}", callee.local_addr().unwrap()));
    assert_eq!(alice.register(300), 200);
    // n2 hears of alice's device a moment after n1 stored it.
    assert_eq!(bindings_heard(&controls.join("n2.sock"), 1), Some(1));
    let from = caller.local_addr().unwrap();
    let line = |method: &str, cseq: &str| {
        format!(
            "{method} sip:alice@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKcancel1;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\nTo: <sip:alice@{DOMAIN}>\r\n\
             Call-ID: cancel-across@elsewhere.test\r\nCSeq: {cseq}\r\nContact: <sip:carol@{from}>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    caller
        .send_to(line("INVITE", "1 INVITE").as_bytes(), nodes[1].udp)
        .unwrap();
    let wait = Duration::from_secs(5);
    let got = recv_until(&[&callee], wait, |m| first_line(m).starts_with("INVITE"));
    let invite = got
        .last()
        .expect("the INVITE reached alice's device")
        .clone();
    let top = openline_tests::wire::vias(&invite)
        .first()
        .cloned()
        .unwrap_or_default();
    assert!(
        top.contains(&format!("127.0.0.1:{};", nodes[0].udp.port())),
        "from n1: {top}"
    );
    callee
        .send_to(
            &response_to(&invite, 180, "Ringing", "a1", ""),
            nodes[0].udp,
        )
        .unwrap();
    let got = recv_until(&[&caller], wait, |m| status(m) == Some(180));
    assert_eq!(
        got.last().and_then(|m| status(m)),
        Some(180),
        "ringing came back"
    );

    caller
        .send_to(line("CANCEL", "1 CANCEL").as_bytes(), nodes[1].udp)
        .unwrap();
    let got = recv_until(&[&callee], wait, |m| first_line(m).starts_with("CANCEL"));
    let cancel = got
        .last()
        .expect("the CANCEL reached alice's device")
        .clone();
    assert!(first_line(&cancel).starts_with("CANCEL"));
    callee
        .send_to(&response_to(&cancel, 200, "OK", "a1", ""), nodes[0].udp)
        .unwrap();
    callee
        .send_to(
            &response_to(&invite, 487, "Request Terminated", "a1", ""),
            nodes[0].udp,
        )
        .unwrap();
    let got = recv_until(&[&caller], wait, |m| status(m) == Some(487));
    assert_eq!(
        got.last().and_then(|m| status(m)),
        Some(487),
        "the caller heard it ended"
    );
}

/// Registers `user` from `socket` (so its flow is that socket) with `contact`, through
/// `server`, answering the digest challenge: the final status.
fn register_from(socket: &UdpSocket, server: SocketAddr, user: &str, contact: &str) -> Option<u16> {
    use openline_tests::wire::{header, md5_credentials, recv_until, status};
    let me = socket.local_addr().ok()?;
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKnat{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=n\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
             Call-ID: nat-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: 300\r\n\
             {auth}Content-Length: 0\r\n\r\n"
        )
    };
    let wait = Duration::from_secs(5);
    socket.send_to(register(1, "").as_bytes(), server).ok()?;
    let got = recv_until(&[socket], wait, |m| status(m).is_some_and(|s| s >= 200));
    let challenge = header(got.last()?, "WWW-Authenticate", None)?;
    let uri = format!("sip:{DOMAIN}");
    let credentials = md5_credentials(&challenge, user, "s3cret", "REGISTER", &uri);
    let auth = format!("Authorization: {credentials}\r\n");
    socket.send_to(register(2, &auth).as_bytes(), server).ok()?;
    let got = recv_until(&[socket], wait, |m| status(m).is_some_and(|s| s >= 200));
    got.last().and_then(|m| status(m))
}

#[test]
fn a_device_behind_nat_gets_its_calls_end_to_end_down_the_flow_of_its_node() {
    use openline_tests::wire::{first_line, recv_until, response_to, status};
    let (_db, nodes, controls) = start_cluster("openline_cluster_nat", 2);
    // alice's phone writes a private address no one outside reaches; its flow is at n1.
    let (callee, caller) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let private = "sip:alice@10.99.0.7:5060";
    assert_eq!(
        register_from(&callee, nodes[0].udp, "alice", private),
        Some(200)
    );
    assert_eq!(bindings_heard(&controls.join("n2.sock"), 1), Some(1));
    let from = caller.local_addr().unwrap();
    let request = |method: &str, uri: &str, cseq: &str, extra: &str, branch: &str| {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\nTo: <sip:alice@{DOMAIN}>{extra}\r\n\
             Call-ID: nat-call@elsewhere.test\r\nCSeq: {cseq}\r\nContact: <sip:carol@{from}>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let invite = request(
        "INVITE",
        &format!("sip:alice@{DOMAIN}"),
        "1 INVITE",
        "",
        "nat1",
    );
    caller.send_to(invite.as_bytes(), nodes[1].udp).unwrap();
    let wait = Duration::from_secs(5);
    let got = recv_until(&[&callee], wait, |m| first_line(m).starts_with("INVITE"));
    let invite = got
        .last()
        .expect("the INVITE came down alice's flow")
        .clone();
    let contact = format!("Contact: <{private}>\r\n");
    callee
        .send_to(
            &response_to(&invite, 200, "OK", "a1", &contact),
            nodes[0].udp,
        )
        .unwrap();
    let got = recv_until(&[&caller], wait, |m| status(m) == Some(200));
    let ok = got.last().expect("the 200 came back").clone();
    assert_eq!(status(&ok), Some(200));
    // The route set, as the caller keeps it (RFC 3261 12.1.2): every Record-Route value the
    // dialog's request gathered (n1's on top of n2's), reversed.
    let mut route: Vec<String> = String::from_utf8_lossy(&invite)
        .lines()
        .filter_map(|l| l.strip_prefix("Record-Route:"))
        .flat_map(|v| v.split(','))
        .map(|r| r.trim().to_string())
        .collect();
    assert_eq!(route.len(), 2, "both nodes recorded the route: {route:?}");
    route.reverse();
    let extra = format!(";tag=a1\r\nRoute: {}", route.join(", "));
    for (method, cseq, branch) in [("ACK", "1 ACK", "nat2"), ("BYE", "2 BYE", "nat3")] {
        let r = request(method, private, cseq, &extra, branch);
        caller.send_to(r.as_bytes(), nodes[1].udp).unwrap();
        let got = recv_until(&[&callee], wait, |m| first_line(m).starts_with(method));
        let got = got
            .last()
            .unwrap_or_else(|| panic!("the {method} reached alice's flow"));
        assert!(first_line(got).starts_with(method), "{}", first_line(got));
    }
}

#[test]
fn a_hop_between_nodes_from_anyone_else_is_refused() {
    use openline_tests::wire::{first_line, recv_until, status};
    let (_db, nodes, _) = start_cluster("openline_cluster_forged_hop", 1);
    let mut alice = Phone::new("alice", DOMAIN, "s3cret", nodes[0].udp);
    assert_eq!(alice.register(300), 200);
    // A stranger writes the Route a node would (alice's AOR in hex) to reach her device
    // past the checks the first node makes (as alice herself: no challenge would come); and
    // one whose AOR does not read, which is then no hop at all.
    let hex: String = format!("alice@{DOMAIN}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = stranger.local_addr().unwrap();
    for (param, from, reason) in [
        (
            hex.as_str(),
            "alice@openline.test",
            "not a node of this cluster",
        ),
        ("zz", "carol@elsewhere.test", "relaying not allowed"),
    ] {
        let invite = format!(
            "INVITE sip:alice@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKforged{param};rport\r\n\
             Route: <sip:{};lr;ol-aor={param}>\r\nMax-Forwards: 70\r\n\
             From: <sip:{from}>;tag=f\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: forged-{param}\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            alice.addr, nodes[0].udp
        );
        stranger.send_to(invite.as_bytes(), nodes[0].udp).unwrap();
        let got = recv_until(&[&stranger], Duration::from_secs(5), |m| {
            status(m).is_some_and(|s| s >= 200)
        });
        let answer = got.last().expect("an answer");
        assert_eq!(status(answer), Some(403), "{}", first_line(answer));
        assert!(
            first_line(answer).contains(reason),
            "{}",
            first_line(answer)
        );
    }
    // Nothing reached alice's device.
    assert!(
        alice
            .requests("INVITE", 1, Duration::from_millis(300))
            .is_empty()
    );
}

#[test]
fn baresip_at_one_node_calls_baresip_at_another() {
    use openline_tests::baresip::Ua;
    let (_db, nodes, controls) = start_cluster("openline_cluster_baresip", 2);
    let dir = scratch_dir("cluster-baresip");
    let ua = |node: &Subject, user: &str, port: u16| {
        let log = dir.join(format!("{user}.log"));
        Ua::start(node.udp, &format!("{user}@{DOMAIN}"), port, log, &[])
    };
    let mut alice = ua(&nodes[0], "alice", 5296);
    let mut bob = ua(&nodes[1], "bob", 5298);
    assert_eq!(bindings_heard(&controls.join("n1.sock"), 2), Some(2));
    alice.command("/dial sip:bob@openline.test");
    bob.wait_for("Incoming call from:");
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@openline.test");
    bob.wait_for("Call established:");
    std::thread::sleep(Duration::from_millis(500));
    alice.command("/hangup");
    // The BYE follows the route set through both nodes to bob (baresip 1.0.0 reports a BYE
    // received as the session closing with ECONNRESET).
    bob.wait_for("sip:alice@openline.test: session closed: Connection reset by peer");
    assert!(
        !alice.said().contains("session closed:"),
        "alice's side saw an error:\n{}",
        alice.said()
    );
    alice.quit();
    bob.quit();
}
