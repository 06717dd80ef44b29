#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // Instant::now() is the origin of virtual time here
//! The TURN server in virtual time: requests built with stun-rs as a client would, answers
//! decoded and checked (integrity included).

use super::*;
use crate::stun::Credentials;
use stun_rs::attributes::stun::{
    ErrorCode, MessageIntegrity, Nonce, Realm, UnknownAttributes, UserName, XorMappedAddress,
};
use stun_rs::attributes::turn::{
    ChannelNumber, Data, DontFragment, LifeTime, RequestedAddressFamily, RequestedTrasport,
    XorPeerAddress, XorRelayedAddress,
};
use stun_rs::methods::{ALLOCATE, CHANNEL_BIND, CREATE_PERMMISSION, REFRESH, SEND};
use stun_rs::protocols::UDP;
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder,
    MessageEncoderBuilder, MessageMethod, StunAttribute, StunMessageBuilder,
};

const REALM: &str = "turn.test";
const WALL: u64 = 1_000_000;

pub(super) fn server(config: impl FnOnce(&mut TurnConfig)) -> TurnServer {
    let credentials = Credentials {
        realm: REALM.into(),
        users: [
            ("alice".to_string(), "wonder".to_string()),
            ("bob".to_string(), "builder".to_string()),
        ]
        .into(),
        secret: Some("north".into()),
    };
    let stun = StunServer::new("test", Some(credentials), [3; 32]);
    let mut c = TurnConfig::new("127.0.0.1".parse().unwrap(), (50_000, 50_009));
    config(&mut c);
    TurnServer::new(stun, c)
}

/// A client: its address, user and password, and the nonce it learnt.
pub(super) struct Client {
    pub(super) addr: ClientAddr,
    user: String,
    password: String,
    nonce: String,
}

impl Client {
    pub(super) fn new(port: u16, user: &str, password: &str, s: &TurnServer) -> Self {
        Client {
            addr: ClientAddr::udp(SocketAddr::from(([127, 0, 0, 1], port))),
            user: user.into(),
            password: password.into(),
            nonce: s.stun.nonce_for_tests(WALL),
        }
    }

    pub(super) fn key(&self) -> HMACKey {
        HMACKey::new_long_term(
            &self.user,
            REALM,
            &self.password,
            Algorithm::from(AlgorithmId::MD5),
        )
        .unwrap()
    }

    /// A signed request of `method` with `attributes`.
    pub(super) fn request(&self, method: MessageMethod, attributes: Vec<StunAttribute>) -> Vec<u8> {
        let mut all = attributes;
        all.push(UserName::new(&self.user).unwrap().into());
        all.push(Realm::new(REALM).unwrap().into());
        all.push(Nonce::new(&self.nonce).unwrap().into());
        all.push(MessageIntegrity::new(self.key()).into());
        encode(method, MessageClass::Request, all)
    }

    pub(super) fn allocate(&self) -> Vec<u8> {
        self.request(ALLOCATE, vec![RequestedTrasport::new(UDP).into()])
    }
}

pub(super) fn encode(
    method: MessageMethod,
    class: MessageClass,
    attributes: Vec<StunAttribute>,
) -> Vec<u8> {
    let mut b = StunMessageBuilder::new(method, class);
    for a in attributes {
        b = b.with_attribute(a);
    }
    let mut buf = vec![0u8; 2048];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, &b.build())
        .unwrap();
    buf.truncate(n);
    buf
}

/// `message` with a MESSAGE-INTEGRITY made by hand (RFC 8489 14.5): for requests stun-rs
/// will not build.
pub(super) fn sign(mut message: Vec<u8>, key: &HMACKey) -> Vec<u8> {
    let length = u16::try_from(message.len() - 20 + 24).unwrap();
    message[2..4].copy_from_slice(&length.to_be_bytes());
    let mac = hmac_sha1::hmac_sha1(key.as_bytes(), &message);
    message.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
    message.extend_from_slice(&mac);
    message
}

/// An answer decoded, its integrity checked with `key` when given.
pub(super) fn decode(bytes: &[u8], key: Option<HMACKey>) -> StunMessage {
    let mut ctx = DecoderContextBuilder::default();
    if let Some(k) = key {
        ctx = ctx.with_key(k).with_validation();
    }
    MessageDecoderBuilder::default()
        .with_context(ctx.build())
        .build()
        .decode(bytes)
        .unwrap()
        .0
}

pub(super) fn error_code(m: &StunMessage) -> u16 {
    m.get::<ErrorCode>()
        .unwrap()
        .as_error_code()
        .unwrap()
        .error_code()
        .error_code()
}

/// The LIFETIME an answer grants, in seconds.
fn lifetime_of(m: &StunMessage) -> u32 {
    m.get::<LifeTime>()
        .unwrap()
        .as_life_time()
        .unwrap()
        .as_u32()
}

pub(super) fn reply(outcome: FromClient<'_>) -> Vec<u8> {
    match outcome {
        FromClient::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// Allocates for `c` at `now`: the relayed address.
pub(super) fn allocate(s: &mut TurnServer, c: &Client, now: Instant) -> SocketAddr {
    let FromClient::Bind(pending) = s.handle_client(now, WALL, c.addr, &c.allocate()) else {
        panic!("expected a port to bind");
    };
    let answer = decode(&s.allocated(now, pending), Some(c.key()));
    assert_eq!(answer.class(), MessageClass::SuccessResponse);
    let mapped = answer.get::<XorMappedAddress>().unwrap();
    assert_eq!(
        *mapped.as_xor_mapped_address().unwrap().socket_address(),
        c.addr.addr
    );
    *answer
        .get::<XorRelayedAddress>()
        .unwrap()
        .as_xor_relayed_address()
        .unwrap()
        .socket_address()
}

#[test]
fn an_allocation_is_challenged_then_granted_and_a_retransmission_gets_the_same_answer() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    // Unsigned: 401 with REALM and NONCE.
    let bare = encode(
        ALLOCATE,
        MessageClass::Request,
        vec![RequestedTrasport::new(UDP).into()],
    );
    let challenge = decode(&reply(s.handle_client(now, WALL, c.addr, &bare)), None);
    assert_eq!(error_code(&challenge), 401);
    assert!(challenge.get::<Realm>().is_some() && challenge.get::<Nonce>().is_some());
    // Signed: a port to bind, then the answer.
    let request = c.allocate();
    let FromClient::Bind(pending) = s.handle_client(now, WALL, c.addr, &request) else {
        panic!("expected a bind");
    };
    assert_eq!(pending.port, 50_000);
    let answer = s.allocated(now, pending);
    let m = decode(&answer, Some(c.key()));
    let relayed = m
        .get::<XorRelayedAddress>()
        .unwrap()
        .as_xor_relayed_address()
        .unwrap();
    assert_eq!(relayed.socket_address().to_string(), "127.0.0.1:50000");
    assert_eq!(lifetime_of(&m), 600);
    assert_eq!(s.allocations(), 1);
    // The same Allocate again: the same answer; another one: 437.
    assert_eq!(reply(s.handle_client(now, WALL, c.addr, &request)), answer);
    let again = decode(
        &reply(s.handle_client(now, WALL, c.addr, &c.allocate())),
        Some(c.key()),
    );
    assert_eq!(error_code(&again), 437);
    // A wrong password: 401 again, no allocation.
    let mallory = Client::new(40_001, "alice", "guess", &s);
    let refused = decode(
        &reply(s.handle_client(now, WALL, mallory.addr, &mallory.allocate())),
        None,
    );
    assert_eq!(error_code(&refused), 401);
    assert_eq!(s.allocations(), 1);
}

#[test]
fn allocate_refuses_what_it_cannot_serve() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let code = |s: &mut TurnServer, attrs: Vec<StunAttribute>| {
        let m = decode(
            &reply(s.handle_client(now, WALL, c.addr, &c.request(ALLOCATE, attrs))),
            None,
        );
        error_code(&m)
    };
    assert_eq!(code(&mut s, vec![]), 400, "no REQUESTED-TRANSPORT");
    // TCP (6): the request built with UDP, the byte changed, then signed by hand.
    let mut tcp = encode(
        ALLOCATE,
        MessageClass::Request,
        vec![
            RequestedTrasport::new(UDP).into(),
            UserName::new("alice").unwrap().into(),
            Realm::new(REALM).unwrap().into(),
            Nonce::new(&c.nonce).unwrap().into(),
        ],
    );
    assert_eq!(tcp[24], 17, "REQUESTED-TRANSPORT comes first");
    tcp[24] = 6;
    let m = decode(
        &reply(s.handle_client(now, WALL, c.addr, &sign(tcp, &c.key()))),
        None,
    );
    assert_eq!(error_code(&m), 442);
    assert_eq!(
        code(
            &mut s,
            vec![
                RequestedTrasport::new(UDP).into(),
                DontFragment::default().into()
            ]
        ),
        420
    );
    let v6 = RequestedAddressFamily::new(stun_rs::AddressFamily::IPv6);
    assert_eq!(
        code(&mut s, vec![RequestedTrasport::new(UDP).into(), v6.into()]),
        440
    );
    assert_eq!(s.allocations(), 0);
    let unknown = decode(
        &reply(s.handle_client(
            now,
            WALL,
            c.addr,
            &c.request(
                ALLOCATE,
                vec![
                    DontFragment::default().into(),
                    RequestedTrasport::new(UDP).into(),
                ],
            ),
        )),
        None,
    );
    let named = unknown
        .get::<UnknownAttributes>()
        .unwrap()
        .as_unknown_attributes()
        .unwrap();
    assert_eq!(named.attributes(), &[0x001a]);
}

#[test]
fn quotas_hold_per_user_and_in_total_and_a_failed_bind_gives_back() {
    let mut s = server(|c| {
        c.user_quota = 2;
        c.total_quota = 3;
    });
    let now = Instant::now();
    let clients: Vec<Client> = (0..3)
        .map(|i| Client::new(40_000 + i, "alice", "wonder", &s))
        .collect();
    allocate(&mut s, &clients[0], now);
    allocate(&mut s, &clients[1], now);
    let third = decode(
        &reply(s.handle_client(now, WALL, clients[2].addr, &clients[2].allocate())),
        None,
    );
    assert_eq!(error_code(&third), 486);
    // Bob may still: one left in total, then none.
    let bob = Client::new(41_000, "bob", "builder", &s);
    let FromClient::Bind(pending) = s.handle_client(now, WALL, bob.addr, &bob.allocate()) else {
        panic!("bob gets a port");
    };
    let carol = Client::new(41_001, "bob", "builder", &s);
    let full = decode(
        &reply(s.handle_client(now, WALL, carol.addr, &carol.allocate())),
        None,
    );
    assert_eq!(error_code(&full), 508, "a pending port counts");
    // Bob's port is held by another program: the next one is offered; when every one fails,
    // 508, and the quota is back.
    let first = pending.port;
    let mut pending = s.port_unavailable(pending).unwrap();
    assert_ne!(pending.port, first);
    let failed = loop {
        match s.port_unavailable(pending) {
            Ok(next) => pending = next,
            Err(answer) => break decode(&answer, None),
        }
    };
    assert_eq!(error_code(&failed), 508);
    allocate(&mut s, &carol, now);
    assert_eq!(s.allocations(), 3);
}

#[test]
fn refresh_extends_ends_and_belongs_to_its_user() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let nobody = decode(
        &reply(s.handle_client(now, WALL, c.addr, &c.request(REFRESH, vec![]))),
        None,
    );
    assert_eq!(error_code(&nobody), 437);
    allocate(&mut s, &c, now);
    let bob = Client {
        user: "bob".into(),
        password: "builder".into(),
        ..Client::new(40_000, "bob", "builder", &s)
    };
    let wrong = decode(
        &reply(s.handle_client(now, WALL, bob.addr, &bob.request(REFRESH, vec![]))),
        None,
    );
    assert_eq!(error_code(&wrong), 441);
    // Refreshed for an hour at 500 s: alive at 600 s, gone after 4,100 s.
    let later = now + Duration::from_secs(500);
    let r = c.request(REFRESH, vec![LifeTime::new(7200).into()]);
    let ok = decode(
        &reply(s.handle_client(later, WALL, c.addr, &r)),
        Some(c.key()),
    );
    assert_eq!(lifetime_of(&ok), 3600, "capped");
    s.handle_timeout(now + Duration::from_secs(600));
    assert_eq!(s.allocations(), 1);
    assert!(s.poll_closed_port().is_none());
    s.handle_timeout(later + Duration::from_secs(3600));
    assert_eq!(s.allocations(), 0);
    assert_eq!(s.poll_closed_port(), Some(50_000));
    // LIFETIME 0 ends one at once.
    allocate(&mut s, &c, later);
    let r = c.request(REFRESH, vec![LifeTime::new(0).into()]);
    let ok = decode(
        &reply(s.handle_client(later, WALL, c.addr, &r)),
        Some(c.key()),
    );
    assert_eq!(lifetime_of(&ok), 0);
    assert_eq!(s.allocations(), 0);
    assert_eq!(s.poll_closed_port(), Some(50_001));
}

#[test]
fn a_stale_nonce_gets_438_with_a_fresh_one() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let late = WALL + crate::stun::NONCE_LIFETIME;
    let m = decode(
        &reply(s.handle_client(now, late, c.addr, &c.allocate())),
        None,
    );
    assert_eq!(error_code(&m), 438);
    let fresh = m
        .get::<Nonce>()
        .unwrap()
        .as_nonce()
        .unwrap()
        .as_str()
        .to_string();
    assert_ne!(fresh, c.nonce);
}

#[test]
fn shared_secret_credentials_allocate_until_they_expire() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let user = format!("{}:carol", WALL + 60);
    let password = s.stun.password_for_tests(&user, WALL).unwrap();
    let c = Client::new(40_000, &user, &password, &s);
    allocate(&mut s, &c, now);
    let expired = format!("{}:carol", WALL - 1);
    let password = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha1::hmac_sha1(b"north", expired.as_bytes()))
    };
    let old = Client::new(40_001, &expired, &password, &s);
    let m = decode(
        &reply(s.handle_client(now, WALL, old.addr, &old.allocate())),
        None,
    );
    assert_eq!(error_code(&m), 401);
}

mod data;
mod families;
mod reservations;
