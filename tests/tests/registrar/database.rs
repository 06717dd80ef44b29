//! A database that goes away (issue #9's bad input, true of one node too): REGISTER and a
//! MESSAGE that must be stored get 503 with Retry-After, nothing hangs, and the server
//! recovers by itself when PostgreSQL is reachable again. The server reaches the suite's
//! PostgreSQL through a gate of the test's own (TCP on loopback to the cluster's unix
//! socket), so the test can cut it off and restore it without stopping a cluster others use.

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP port that forwards to PostgreSQL's unix socket while open; closing it resets every
/// connection through it and refuses new ones, as a database host going down would.
struct Gate {
    port: u16,
    open: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    through: Arc<Mutex<Vec<TcpStream>>>,
}

impl Gate {
    #[allow(clippy::disallowed_methods)] // a test driver: its own threads
    fn new(socket: std::path::PathBuf) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let gate = Gate {
            port: listener.local_addr().unwrap().port(),
            open: Arc::new(AtomicBool::new(true)),
            done: Arc::new(AtomicBool::new(false)),
            through: Arc::default(),
        };
        let (open, done, through) = (gate.open.clone(), gate.done.clone(), gate.through.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                if !open.load(Ordering::Relaxed) {
                    continue; // dropped: the connection is refused
                }
                tcp.set_nonblocking(false).unwrap();
                let Ok(unix) = UnixStream::connect(&socket) else {
                    continue;
                };
                through.lock().unwrap().push(tcp.try_clone().unwrap());
                let (mut tcp_in, mut unix_out) =
                    (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut tcp_in, &mut unix_out));
                let (mut unix_in, mut tcp_out) = (unix, tcp);
                std::thread::spawn(move || std::io::copy(&mut unix_in, &mut tcp_out));
            }
        });
        gate
    }

    /// Resets every connection through the gate and refuses new ones.
    fn close(&self) {
        self.open.store(false, Ordering::Relaxed);
        for c in self.through.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn reopen(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
        self.done.store(true, Ordering::Relaxed);
    }
}

/// The status line and Retry-After of `response`.
fn status_and_retry(response: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(response);
    let status = text.lines().next().unwrap_or("").to_string();
    let retry = text
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .map(str::to_string);
    (status, retry)
}

/// The answer is 503 with Retry-After: 5.
fn assert_refused_for_now(response: &[u8]) {
    let (status, retry) = status_and_retry(response);
    assert!(status.starts_with("SIP/2.0 503"), "{status}");
    assert_eq!(retry.as_deref(), Some("5"));
}

/// Registers `phone` until the server takes it again (the pool reconnects by itself), for up
/// to 10 s: the last status.
fn register_when_back(phone: &mut Phone) -> u16 {
    let mut registered = 0;
    for _ in 0..20 {
        registered = phone.register(300);
        if registered == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    registered
}

#[test]
fn postgres_going_away_is_503_with_retry_after_and_the_server_recovers() {
    let direct = openline_tests::fresh_postgres_database("db_away");
    let dir = direct.rsplit_once("host=").unwrap().1;
    let gate = Gate::new(std::path::Path::new(dir).join(".s.PGSQL.5432"));
    let url = format!("postgres://postgres@127.0.0.1:{}/db_away", gate.port);
    add_user(&url, "bob@openline.test", "s3cret");
    add_user(&url, "alice@openline.test", "s3cret");
    let server = Subject::start_on(&url, &[]);
    let mut bob = Phone::new("bob", "openline.test", "s3cret", server.udp);
    let mut alice = Phone::new("alice", "openline.test", "s3cret", server.udp);
    assert_eq!(bob.register(300), 200);
    assert_eq!(alice.register(300), 200);
    assert_eq!(
        bob.register(0),
        200,
        "bob is offline: a message to him must be stored"
    );

    gate.close();
    let uri = "sip:openline.test";
    let extra = format!("Contact: <sip:bob@{}>\r\nExpires: 300\r\n", bob.addr);
    let refused = bob
        .last_response("REGISTER", uri, "<sip:bob@openline.test>", &extra, "", b"")
        .expect("an answer, not silence");
    assert_refused_for_now(&refused);
    let message = alice
        .last_response(
            "MESSAGE",
            "sip:bob@openline.test",
            "<sip:bob@openline.test>",
            "Content-Type: text/plain\r\n",
            "",
            b"while the database is away",
        )
        .expect("an answer, not silence");
    assert_refused_for_now(&message);

    gate.reopen();
    // The pool reconnects by itself: within a few tries the same requests succeed.
    let registered = register_when_back(&mut bob);
    assert_eq!(registered, 200, "the server came back with the database");
    assert_eq!(bob.register(0), 200);
    assert_eq!(
        alice.message("bob@openline.test", "after"),
        202,
        "stored again"
    );
}

#[test]
fn a_cluster_rides_out_the_database_going_away_and_hears_the_changes_made_after() {
    let direct = openline_tests::fresh_postgres_database("db_away_cluster");
    let dir = direct.rsplit_once("host=").unwrap().1;
    let gate = Gate::new(std::path::Path::new(dir).join(".s.PGSQL.5432"));
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/db_away_cluster",
        gate.port
    );
    add_user(&url, "bob@openline.test", "s3cret");
    add_user(&url, "alice@openline.test", "s3cret");
    let scratch = openline_tests::subject::scratch_dir("db-away-cluster");
    let control = |n: &str| scratch.join(format!("{n}.sock"));
    let start = |n: &str| {
        let c = control(n);
        Subject::start_on(&url, &["--node", n, "--control", c.to_str().unwrap()])
    };
    let (n1, n2) = (start("n1"), start("n2"));
    let mut bob = Phone::new("bob", "openline.test", "s3cret", n1.udp);
    let mut alice = Phone::new("alice", "openline.test", "s3cret", n2.udp);
    assert_eq!(alice.register(300), 200);
    assert_eq!(bob.register(0), 200);

    gate.close();
    let extra = format!("Contact: <sip:bob@{}>\r\nExpires: 300\r\n", bob.addr);
    let refused = bob
        .last_response(
            "REGISTER",
            "sip:openline.test",
            "<sip:bob@openline.test>",
            &extra,
            "",
            b"",
        )
        .expect("an answer, not silence");
    assert_refused_for_now(&refused);

    gate.reopen();
    let registered = register_when_back(&mut bob);
    assert_eq!(registered, 200, "n1 came back with the database");
    // n2's news of it came through its listening connection, itself back by now.
    let heard = openline_tests::subject::bindings_heard(&control("n2"), 2);
    assert_eq!(heard, Some(2), "n2 did not hear of bob's device");
    // A message through n2 reaches bob live, down n1's flow (bob answers as it comes).
    let got = std::thread::scope(|s| {
        let listening = s.spawn(|| bob.messages(1, Duration::from_secs(10)));
        assert_eq!(alice.message("bob@openline.test", "through n1"), 200);
        listening.join().unwrap()
    });
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), "through n1");
}
