//! Chaos: the server killed with SIGKILL at a random point of mixed load, ten times, on
//! SQLite and on PostgreSQL. What it answered is kept: every REGISTER answered 200 is bound
//! after the restarts, until at least the expiry that 200 gave; every MESSAGE answered 202
//! reaches its user's device exactly once; nothing arrives twice; and the database is sound
//! (SQLite's `PRAGMA integrity_check`, PostgreSQL's amcheck over every index).

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, db_bindings, scratch_dir, wall};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const DOMAIN: &str = "openline.test";
const ROUNDS: usize = 10;
const DEVICES: usize = 8;
/// A request the killed server never answers is given up after this.
const GIVE_UP: Duration = Duration::from_secs(2);

/// Where to kill, from a fixed seed (xorshift64): a failing run replays the same points.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the server promised before it died.
#[derive(Default)]
struct Promises {
    /// Per device (instance): the latest expiry a 200 to its REGISTER gave, in wall seconds.
    bound_until: HashMap<String, (String, u64)>,
    /// Bodies of MESSAGEs answered 202.
    accepted: Vec<String>,
    /// Bodies of every MESSAGE sent, answered or not.
    sent: Vec<String>,
}

fn kill_9_ten_times_under_load(db: &str) -> Promises {
    for n in 0..DEVICES {
        add_user(db, &format!("user{n}@{DOMAIN}"), "pw-device");
    }
    add_user(db, &format!("alice@{DOMAIN}"), "pw-alice");
    add_user(db, &format!("bob@{DOMAIN}"), "pw-bob");
    let promises = Mutex::new(Promises::default());
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut devices: Vec<Phone> = Vec::new();
    let mut alice: Option<Phone> = None;
    let mut registered = 0u32;
    let mut message = 0u32;
    for round in 0..ROUNDS {
        let mut server = Subject::start_on(db, &[]);
        let at = server.udp;
        if devices.is_empty() {
            devices = (0..DEVICES)
                .map(|n| Phone::new(&format!("user{n}"), DOMAIN, "pw-device", at))
                .collect();
            alice = Some(Phone::new("alice", DOMAIN, "pw-alice", at));
        }
        let alice = alice.as_mut().unwrap();
        for p in devices.iter_mut().chain(std::iter::once(&mut *alice)) {
            p.set_server(at);
            p.wait = GIVE_UP;
        }
        let stop = AtomicBool::new(false);
        let kill_after = Duration::from_millis(300 + dice.below(1200));
        std::thread::scope(|s| {
            // Registrations and refreshes, each with a longer expiry than the last.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let device = &mut devices[registered as usize % DEVICES];
                    registered += 1;
                    let expires = 3600 + registered;
                    let before = wall();
                    if device.register(expires) == 200 {
                        let mut p = promises.lock().unwrap();
                        let until = before + u64::from(expires);
                        p.bound_until
                            .insert(device.instance.clone(), (device.aor(), until));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            // MESSAGEs to bob, who has no device: each 202 is stored for him.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    message += 1;
                    let body = format!("round {round} message {message}");
                    promises.lock().unwrap().sent.push(body.clone());
                    if alice.message(&format!("bob@{DOMAIN}"), &body) == 202 {
                        promises.lock().unwrap().accepted.push(body);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            std::thread::sleep(kill_after);
            server.kill();
            stop.store(true, Ordering::Relaxed);
        });
    }
    promises.into_inner().unwrap()
}

/// After the ten kills: what was promised is there, once.
fn check_promises(db: &str, promises: &Promises) {
    assert!(
        promises.bound_until.len() == DEVICES && promises.accepted.len() >= 2 * ROUNDS,
        "too little load went through to judge: {} devices bound, {} messages accepted",
        promises.bound_until.len(),
        promises.accepted.len()
    );
    let server = Subject::start_on(db, &[]);
    let bindings = db_bindings(db);
    for (instance, (aor, until)) in &promises.bound_until {
        let binding = bindings
            .iter()
            .find(|b| {
                b.instance
                    .as_deref()
                    .is_some_and(|i| i.contains(instance.as_str()))
            })
            .unwrap_or_else(|| {
                panic!("{aor}'s device {instance} was answered 200 and is not bound")
            });
        assert!(
            binding.expires_at + 1 >= *until,
            "{aor}: its last 200 promised {until}, the binding ends at {}",
            binding.expires_at
        );
    }
    let mut bob = Phone::new("bob", DOMAIN, "pw-bob", server.udp);
    assert_eq!(bob.register(3600), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: Vec<String> = Vec::new();
    while got.len() < promises.accepted.len() && Instant::now() < deadline {
        got.extend(
            bob.messages(1, Duration::from_secs(2))
                .iter()
                .map(|m| m.body()),
        );
    }
    // Anything more is a duplicate (or a message answered 202 whose answer the kill lost).
    got.extend(
        bob.messages(usize::MAX, Duration::from_secs(2))
            .iter()
            .map(|m| m.body()),
    );
    let mut count: HashMap<&str, usize> = HashMap::new();
    for body in &got {
        *count.entry(body.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for body in &promises.accepted {
        assert!(
            count.contains_key(body.as_str()),
            "answered 202, never delivered: {body}"
        );
    }
    for body in &got {
        assert!(
            promises.sent.contains(body),
            "delivered, never sent: {body}"
        );
    }
    eprintln!(
        "chaos: {ROUNDS} kills; {} devices bound; {} of {} messages answered 202, {} delivered",
        promises.bound_until.len(),
        promises.accepted.len(),
        promises.sent.len(),
        got.len()
    );
}

#[test]
fn kill_9_ten_times_loses_nothing_answered_on_sqlite() {
    let dir = scratch_dir("chaos");
    let file = dir.join("openline.db");
    let db = format!("sqlite://{}", file.display());
    let promises = kill_9_ten_times_under_load(&db);
    let integrity = std::process::Command::new("sqlite3")
        .arg(&file)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("sqlite3 (Debian sqlite3)");
    assert_eq!(
        String::from_utf8_lossy(&integrity.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&integrity.stderr)
    );
    check_promises(&db, &promises);
}

#[test]
fn kill_9_ten_times_loses_nothing_answered_on_postgresql() {
    let db = openline_tests::fresh_postgres_database("openline_chaos");
    let promises = kill_9_ten_times_under_load(&db);
    let broken = postgres_indexes_broken(&db);
    assert!(broken.is_empty(), "amcheck: {broken:?}");
    check_promises(&db, &promises);
}

/// The B-tree indexes of `db` that amcheck finds inconsistent with their tables, with why.
fn postgres_indexes_broken(db: &str) -> Vec<String> {
    use sqlx::Connection as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
            .execute(&mut conn)
            .await
            .expect("amcheck (PostgreSQL contrib)");
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.amname = 'btree' AND n.nspname = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!indexes.is_empty(), "no index to check");
        let mut broken = Vec::new();
        for (index,) in indexes {
            let check = sqlx::query("SELECT bt_index_check($1::regclass, true)")
                .bind(&index)
                .execute(&mut conn)
                .await;
            if let Err(e) = check {
                broken.push(format!("{index}: {e}"));
            }
        }
        broken
    })
}
