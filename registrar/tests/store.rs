//! One store suite, run against SQLite (a file) and PostgreSQL (a real server, started by
//! scripts/test and named by OPENLINE_TEST_POSTGRES; the test fails rather than skips without it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_registrar::store::{
    ANY_DEVICE, BindingStore, KnownDevice, MailOutcome, MailWrite, MailboxStore, NewMessage,
    PresenceStore, Store, UserStore,
};
use openline_registrar::{Binding, BindingKey, ChangeSet, User};

const NOW: u64 = 1_800_000_000;

fn binding(aor: &str, contact: &str, instance: Option<&str>, expires_at: u64) -> Binding {
    Binding {
        aor: aor.into(),
        contact: contact.into(),
        instance: instance.map(String::from),
        reg_id: instance.map(|_| 1),
        expires_at,
        q: 700,
        call_id: "c1".into(),
        cseq: 7,
        source: "udp:127.0.0.1:5062".into(),
        node: String::new(),
    }
}

/// The live bindings of one address of record.
async fn bindings_of(store: &Store, aor: &str) -> Vec<Binding> {
    store
        .bindings(NOW)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.aor == aor)
        .collect()
}

async fn suite(store: &Store, reopen: impl AsyncFn() -> Store) {
    // Users: add, replace, list, version moves, delete.
    let v0 = store.users_version().await.unwrap();
    store
        .put_user(&User::new("alice@club-a.test", "one").unwrap())
        .await
        .unwrap();
    store
        .put_user(&User::new("bob@club-a.test", "two").unwrap())
        .await
        .unwrap();
    store
        .put_user(&User::new("alice@club-a.test", "three").unwrap())
        .await
        .unwrap();
    let users = store.users().await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.aor.as_str()).collect::<Vec<_>>(),
        ["alice@club-a.test", "bob@club-a.test"]
    );
    assert_eq!(users[0], User::new("alice@club-a.test", "three").unwrap());
    assert!(store.users_version().await.unwrap() >= v0 + 3);

    // Bindings: several per aor, by contact and by instance, in one transaction.
    let a1 = binding(
        "alice@club-a.test",
        "sip:alice@127.0.0.1:5062",
        None,
        NOW + 600,
    );
    let a2 = binding(
        "alice@club-a.test",
        "sip:alice@127.0.0.1:6000",
        Some("<urn:uuid:1>"),
        NOW + 600,
    );
    let b1 = binding("bob@club-a.test", "sip:bob@127.0.0.1:5064", None, NOW + 10);
    store
        .apply(&[
            ChangeSet {
                aor: a1.aor.clone(),
                upserts: vec![a1.clone(), a2.clone()],
                removals: vec![],
            },
            ChangeSet {
                aor: b1.aor.clone(),
                upserts: vec![b1.clone()],
                removals: vec![],
            },
        ])
        .await
        .unwrap();
    let mut all = store.bindings(NOW).await.unwrap();
    all.sort_by(|x, y| x.contact.cmp(&y.contact));
    assert_eq!(all, vec![a1.clone(), a2.clone(), b1.clone()]);
    assert_eq!(
        store.bindings(NOW + 20).await.unwrap().len(),
        2,
        "bob's binding expired"
    );

    // Refresh replaces by key: the device moved to a new port.
    let mut moved = a2.clone();
    moved.contact = "sip:alice@127.0.0.1:7000".into();
    moved.cseq = 8;
    store
        .apply(&[ChangeSet {
            aor: moved.aor.clone(),
            upserts: vec![moved.clone()],
            removals: vec![],
        }])
        .await
        .unwrap();
    let alice = bindings_of(store, "alice@club-a.test").await;
    assert_eq!(alice.len(), 2);
    assert!(alice.contains(&moved));

    // One batch touching the same binding several times ends as if applied in order (and a
    // single multi-row upsert never sees a row twice, which PostgreSQL refuses).
    let mut v1 = moved.clone();
    v1.cseq = 9;
    let mut v2 = moved.clone();
    v2.cseq = 10;
    store
        .apply(&[
            ChangeSet {
                aor: a1.aor.clone(),
                upserts: vec![v1],
                removals: vec![],
            },
            ChangeSet {
                aor: a1.aor.clone(),
                upserts: vec![],
                removals: vec![BindingKey::Contact(a1.contact.clone())],
            },
            ChangeSet {
                aor: a1.aor.clone(),
                upserts: vec![v2.clone(), a1.clone()],
                removals: vec![],
            },
        ])
        .await
        .unwrap();
    let alice = bindings_of(store, "alice@club-a.test").await;
    assert_eq!(alice.len(), 2);
    assert!(alice.contains(&v2) && alice.contains(&a1), "{alice:?}");

    // What was committed survives closing and opening the store again.
    let again = reopen().await;
    assert_eq!(again.bindings(NOW).await.unwrap().len(), 3);
    assert_eq!(again.users().await.unwrap().len(), 2);

    // Removal, purge, and deleting a user takes its bindings.
    again
        .apply(&[ChangeSet {
            aor: a1.aor.clone(),
            upserts: vec![],
            removals: vec![BindingKey::Contact(a1.contact.clone())],
        }])
        .await
        .unwrap();
    assert_eq!(again.purge_expired(NOW + 20).await.unwrap(), 1);
    assert!(again.delete_user("alice@club-a.test").await.unwrap());
    assert!(!again.delete_user("alice@club-a.test").await.unwrap());
    assert!(again.bindings(NOW).await.unwrap().is_empty());
    assert_eq!(again.users().await.unwrap().len(), 1);

    // A batch larger than one statement's rows: every binding lands with its own values.
    let many: Vec<Binding> = (0..70)
        .map(|i| {
            let mut b = binding(
                "bob@club-a.test",
                &format!("sip:bob@127.0.0.1:{}", 10000 + i),
                None,
                NOW + 100 + i,
            );
            b.cseq = u32::try_from(i).unwrap();
            b
        })
        .collect();
    again
        .apply(&[ChangeSet {
            aor: "bob@club-a.test".into(),
            upserts: many.clone(),
            removals: vec![],
        }])
        .await
        .unwrap();
    let mut stored = again.bindings(NOW).await.unwrap();
    stored.sort_by_key(|b| b.cseq);
    assert_eq!(stored, many);
}

fn text(recipient: &str, body: &str, accepted_at: u64) -> NewMessage {
    NewMessage {
        recipient: recipient.into(),
        sender: "sip:alice@club-a.test".into(),
        content_type: "text/plain;charset=utf-8".into(),
        body: body.as_bytes().to_vec(),
        accepted_at,
        expires_at: accepted_at + 30 * 86_400,
        sent_to: None,
        request_key: None,
    }
}

fn bodies(pending: &[openline_registrar::store::StoredMessage]) -> Vec<String> {
    pending
        .iter()
        .map(|m| String::from_utf8(m.message.body.clone()).unwrap())
        .collect()
}

async fn stored_for(store: &Store, recipient: &str) -> u64 {
    let counts = store.mailbox_counts().await.unwrap();
    counts
        .iter()
        .find(|(r, _)| r == recipient)
        .map_or(0, |(_, n)| *n)
}

/// The mailbox (issue #5): owed per device, in order, gone once every device got it.
async fn mailbox_suite(store: &Store, reopen: impl AsyncFn() -> Store) {
    let (phone, laptop) = ("urn:uuid:phone".to_string(), "urn:uuid:laptop".to_string());
    let devices = [phone.clone(), laptop.clone()];
    let first = store
        .accept(&text("bob@club-a.test", "one", NOW), &devices)
        .await
        .unwrap();
    let second = store
        .accept(&text("bob@club-a.test", "two", NOW + 1), &devices)
        .await
        .unwrap();
    assert!(second > first, "ids grow in the order accepted");
    // Nobody known for carol: whichever device comes first.
    let carols = store
        .accept(&text("carol@club-a.test", "hi carol", NOW), &[])
        .await
        .unwrap();
    assert_eq!(stored_for(store, "bob@club-a.test").await, 2);

    // Durable: a store opened afresh sees the same, whole, in order.
    let again = reopen().await;
    let owed = again
        .pending(("bob@club-a.test", &phone), "node-1", NOW, 1000)
        .await
        .unwrap();
    assert_eq!(bodies(&owed), ["one", "two"]);
    assert_eq!(owed[0].message, text("bob@club-a.test", "one", NOW));
    // The phone gets both; the laptop is still owed them, and they stay until it gets them.
    assert!(
        !again.delivered(first, &phone).await.unwrap(),
        "the laptop is still owed it"
    );
    assert!(!again.delivered(second, &phone).await.unwrap());
    assert!(
        again
            .pending(("bob@club-a.test", &phone), "node-1", NOW, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        bodies(
            &again
                .pending(("bob@club-a.test", &laptop), "node-1", NOW, 1000)
                .await
                .unwrap()
        ),
        ["one", "two"]
    );
    again.delivered(first, &laptop).await.unwrap();
    assert_eq!(stored_for(&again, "bob@club-a.test").await, 1);
    assert!(
        again.delivered(second, &laptop).await.unwrap(),
        "nobody owed: gone"
    );
    assert_eq!(stored_for(&again, "bob@club-a.test").await, 0);

    // carol's first device takes it; then it is gone for every other.
    let owed = again
        .pending(
            ("carol@club-a.test", "urn:uuid:tablet"),
            "node-1",
            NOW,
            1000,
        )
        .await
        .unwrap();
    assert_eq!(bodies(&owed), ["hi carol"]);
    assert!(again.delivered(carols, "urn:uuid:tablet").await.unwrap());
    assert!(
        again
            .pending(("carol@club-a.test", "urn:uuid:other"), "node-1", NOW, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stored_for(&again, "carol@club-a.test").await, 0);
    assert!(
        again
            .pending(("carol@club-a.test", ANY_DEVICE), "node-1", NOW, 1000)
            .await
            .unwrap()
            .is_empty()
    );

    // Expiry: not handed out once expired, and purged.
    let mut old = text("dave@club-a.test", "stale", NOW);
    old.expires_at = NOW + 10;
    again
        .accept(&old, std::slice::from_ref(&phone))
        .await
        .unwrap();
    assert_eq!(
        again
            .pending(("dave@club-a.test", &phone), "node-1", NOW, 1000)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        again
            .pending(("dave@club-a.test", &phone), "node-1", NOW + 10, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(again.purge_expired_messages(NOW + 10).await.unwrap(), 1);
    assert_eq!(stored_for(&again, "dave@club-a.test").await, 0);

    // Many, in order, with a body that is not text.
    for i in 0..200u64 {
        let mut m = text("erin@club-a.test", &format!("m{i:03}"), NOW + i);
        if i == 7 {
            m.body = vec![0, 159, 146, 150];
        }
        again
            .accept(&m, std::slice::from_ref(&phone))
            .await
            .unwrap();
    }
    let owed = again
        .pending(("erin@club-a.test", &phone), "node-1", NOW, 1000)
        .await
        .unwrap();
    assert_eq!(owed.len(), 200);
    assert_eq!(owed[7].message.body, vec![0, 159, 146, 150]);
    assert!(
        owed.windows(2)
            .all(|w| w[0].id < w[1].id && w[0].message.accepted_at < w[1].message.accepted_at)
    );
    let first_ten = again
        .pending(("erin@club-a.test", &phone), "node-1", NOW, 10)
        .await
        .unwrap();
    assert_eq!(first_ten[..], owed[..10], "a limit takes the oldest");

    // A batch: a copy of what frank sent (sent_to), a delivery, a device seen; one transaction.
    let mut copy = text("frank@club-a.test", "sent from my phone", NOW);
    copy.sender = "\"Frank\" <sip:frank@club-a.test>".into();
    copy.sent_to = Some("<sip:bob@club-b.test>".into());
    let outcomes = again
        .write(&[
            MailWrite::Accept(copy.clone(), vec![laptop.clone()]),
            MailWrite::Delivered(owed[0].id, phone.clone()),
            MailWrite::DeviceSeen {
                aor: "frank@club-a.test".into(),
                device: laptop.clone(),
                at: NOW,
            },
            MailWrite::DeviceSeen {
                aor: "frank@club-a.test".into(),
                device: phone.clone(),
                at: NOW - 100,
            },
        ])
        .await
        .unwrap();
    assert!(
        matches!(
            outcomes[..],
            [
                MailOutcome::Accepted(_),
                MailOutcome::Delivered { removed: true },
                MailOutcome::Seen,
                MailOutcome::Seen
            ]
        ),
        "{outcomes:?}"
    );
    let again = reopen().await;
    let owed = again
        .pending(("frank@club-a.test", &laptop), "node-1", NOW, 10)
        .await
        .unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].message, copy);
    assert_eq!(stored_for(&again, "erin@club-a.test").await, 199);
    let mut devices = again.devices(0).await.unwrap();
    devices.retain(|d| d.aor == "frank@club-a.test");
    devices.sort_by_key(|d| d.seen_at);
    assert_eq!(
        devices
            .iter()
            .map(|d| (d.device.as_str(), d.seen_at))
            .collect::<Vec<_>>(),
        [(phone.as_str(), NOW - 100), (laptop.as_str(), NOW)]
    );
    assert_eq!(again.forget_devices(NOW - 50).await.unwrap(), 1);
    let left: Vec<_> = again
        .devices(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.aor == "frank@club-a.test")
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].device, laptop);

    // A device noted with the binding that brought it, in the same commit.
    let gina = KnownDevice {
        aor: "gina@club-a.test".into(),
        device: "urn:uuid:gina".into(),
        seen_at: NOW,
    };
    let b = binding(
        "gina@club-a.test",
        "sip:gina@127.0.0.1:7000",
        Some("urn:uuid:gina"),
        NOW + 600,
    );
    again
        .apply_noting(
            &[ChangeSet {
                aor: "gina@club-a.test".into(),
                upserts: vec![b],
                removals: vec![],
            }],
            std::slice::from_ref(&gina),
        )
        .await
        .unwrap();
    let again = reopen().await;
    assert!(again.devices(NOW).await.unwrap().contains(&gina));
    assert_eq!(
        again
            .bindings(NOW)
            .await
            .unwrap()
            .iter()
            .filter(|b| b.aor == "gina@club-a.test")
            .count(),
        1
    );
}

/// Presence permissions: written once, kept across a reopen, explicit ones (and removals)
/// seen by a running server as a change of users.
async fn presence_suite(store: &Store, reopen: impl AsyncFn() -> Store) {
    let (bob, alice) = ("bob@club-b.test", "alice@club-a.test");
    let version = store.users_version().await.unwrap();
    assert!(store.allow(bob, alice, NOW, false).await.unwrap());
    assert!(!store.allow(bob, alice, NOW, false).await.unwrap(), "once");
    assert_eq!(
        store.users_version().await.unwrap(),
        version,
        "learnt, not told"
    );
    assert!(
        store
            .allow(bob, "carol@club-c.test", NOW, true)
            .await
            .unwrap()
    );
    let told = store.users_version().await.unwrap();
    assert!(
        told > version,
        "an operator's permission is a change to reload"
    );
    let again = reopen().await;
    assert_eq!(
        again.allowed().await.unwrap(),
        [
            (bob.to_string(), alice.to_string()),
            (bob.to_string(), "carol@club-c.test".to_string())
        ]
    );
    assert!(again.disallow(bob, alice).await.unwrap());
    assert!(!again.disallow(bob, alice).await.unwrap());
    assert!(again.users_version().await.unwrap() > told);
    assert_eq!(again.allowed().await.unwrap().len(), 1);
}

/// Provisioning tokens: taken once, not after they expire, kept across a reopen, purged.
async fn provisioning_suite(store: &Store, reopen: impl AsyncFn() -> Store) {
    use openline_registrar::store::ProvisionStore as _;
    store
        .put_token("h1", "alice@club-a.test", NOW + 60)
        .await
        .unwrap();
    store
        .put_token("h2", "bob@club-a.test", NOW + 60)
        .await
        .unwrap();
    store
        .put_token("h3", "carol@club-a.test", NOW + 10)
        .await
        .unwrap();
    let again = reopen().await;
    assert_eq!(
        again.take_token("h1", NOW).await.unwrap().as_deref(),
        Some("alice@club-a.test")
    );
    assert_eq!(again.take_token("h1", NOW + 1).await.unwrap(), None, "once");
    assert_eq!(again.take_token("nope", NOW).await.unwrap(), None);
    assert_eq!(
        again.take_token("h3", NOW + 10).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(again.purge_tokens(NOW + 10).await.unwrap(), 1);
    assert_eq!(
        again.take_token("h2", NOW + 59).await.unwrap().as_deref(),
        Some("bob@club-a.test")
    );
    assert_eq!(again.purge_tokens(NOW + 60).await.unwrap(), 2);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("openline-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/test.db", dir.display());
    let _ = std::fs::remove_file(dir.join("test.db"));
    let store = Store::open(&url).await.unwrap();
    suite(&store, async || Store::open(&url).await.unwrap()).await;
    mailbox_suite(&store, async || Store::open(&url).await.unwrap()).await;
    presence_suite(&store, async || Store::open(&url).await.unwrap()).await;
    provisioning_suite(&store, async || Store::open(&url).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_store() {
    let url = std::env::var("OPENLINE_TEST_POSTGRES")
        .expect("OPENLINE_TEST_POSTGRES is not set: run the suite with scripts/test, which starts PostgreSQL");
    let store = Store::open(&url).await.unwrap();
    // A clean slate: earlier runs share the cluster only if scripts/test was interrupted.
    if let Store::Sql(openline_registrar::store::SqlStore::Postgres(pool)) = &store {
        sqlx::query("TRUNCATE users, bindings, deliveries, messages, devices, presence_allowed, provisioning_tokens")
            .execute(pool)
            .await
            .unwrap();
    }
    suite(&store, async || Store::open(&url).await.unwrap()).await;
    mailbox_suite(&store, async || Store::open(&url).await.unwrap()).await;
    presence_suite(&store, async || Store::open(&url).await.unwrap()).await;
    provisioning_suite(&store, async || Store::open(&url).await.unwrap()).await;
    cluster_suite(&url).await;
}

/// Two nodes on one PostgreSQL (issue #9): a retried request is stored once, deliveries are
/// claimed by one node at a time, and each node hears the other's changes.
async fn cluster_suite(url: &str) {
    use openline_registrar::store::{CLAIM_SECONDS, StoreNews};
    let n1 = Store::open_as(url, "n1").await.unwrap();
    let n2 = Store::open_as(url, "n2").await.unwrap();
    let mut news = n1.sql().unwrap().listen().await.unwrap();

    // The same request through two nodes: one message.
    let mut m = text("hana@club-a.test", "once", NOW);
    m.request_key = Some("call-1 1 tag-1".into());
    let first = n1.accept(&m, &["phone".into()]).await.unwrap();
    let again = n2.accept(&m, &["phone".into()]).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(stored_for(&n1, "hana@club-a.test").await, 1);

    // Claims: what n1 took, n2 does not see until the claim lapses; n1 sees its own again.
    for body in ["a", "b", "c"] {
        n1.accept(&text("gina@club-a.test", body, NOW), &["phone".into()])
            .await
            .unwrap();
    }
    let owed = ("gina@club-a.test", "phone");
    let took = n1.pending(owed, "n1", NOW, 2).await.unwrap();
    assert_eq!(bodies(&took), ["a", "b"]);
    assert_eq!(
        bodies(&n2.pending(owed, "n2", NOW, 10).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        bodies(&n1.pending(owed, "n1", NOW, 10).await.unwrap()),
        ["a", "b"]
    );
    let later = NOW + CLAIM_SECONDS + 1;
    assert_eq!(
        bodies(&n2.pending(owed, "n2", later, 10).await.unwrap()),
        ["a", "b", "c"]
    );

    // Two nodes racing for one device's 200 messages: each is handed over exactly once.
    for i in 0..200 {
        n1.accept(
            &text("ivy@club-a.test", &i.to_string(), NOW),
            &["phone".into()],
        )
        .await
        .unwrap();
    }
    let race = |store: Store, name: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..200 {
                let page = store
                    .pending(("ivy@club-a.test", "phone"), name, NOW, 7)
                    .await
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                for m in page {
                    store.delivered(m.id, "phone").await.unwrap();
                    got.push(m.id);
                }
            }
            got
        })
    };
    let (a, b) = (race(n1.clone(), "n1"), race(n2.clone(), "n2"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), 200, "n1 took {}, n2 took {}", a.len(), b.len());
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 200, "a message was handed over twice");

    // News: what n2 does, n1 hears, writer and all, in order.
    while tokio::time::timeout(std::time::Duration::from_millis(200), news.next())
        .await
        .is_ok()
    {}
    let mut jo = binding("jo@club-a.test", "sip:jo@127.0.0.1:5070", None, NOW + 60);
    jo.node = "n2".into();
    n2.apply(&[ChangeSet {
        aor: "jo@club-a.test".into(),
        upserts: vec![jo.clone()],
        removals: vec![],
    }])
    .await
    .unwrap();
    n2.apply(&[ChangeSet {
        aor: "jo@club-a.test".into(),
        upserts: vec![],
        removals: vec![jo.key()],
    }])
    .await
    .unwrap();
    n2.accept(&text("jo@club-a.test", "hi", NOW), &[])
        .await
        .unwrap();
    n2.allow("jo@club-a.test", "kim@club-b.test", NOW, false)
        .await
        .unwrap();
    let mut heard = Vec::new();
    for _ in 0..4 {
        heard.push(
            tokio::time::timeout(std::time::Duration::from_secs(5), news.next())
                .await
                .expect("no news within 5 s")
                .unwrap(),
        );
    }
    assert_eq!(
        heard,
        [
            StoreNews::BindingUpsert {
                writer: "n2".into(),
                binding: jo.clone()
            },
            StoreNews::BindingDelete {
                writer: "n2".into(),
                aor: "jo@club-a.test".into(),
                key: jo.key()
            },
            StoreNews::Mail {
                writer: "n2".into(),
                recipient: "jo@club-a.test".into(),
                stored: true
            },
            StoreNews::PresenceAllowed {
                writer: "n2".into(),
                presentity: "jo@club-a.test".into(),
                watcher: "kim@club-b.test".into(),
                allowed: true
            },
        ]
    );
}

#[tokio::test]
async fn memory_store() {
    let store = Store::open("memory:").await.unwrap();
    let shared = store.clone();
    suite(&store, async || shared.clone()).await;
    mailbox_suite(&store, async || shared.clone()).await;
    presence_suite(&store, async || shared.clone()).await;
    provisioning_suite(&store, async || shared.clone()).await;
}
