//! Real network topologies for tests: network namespaces joined by veth pairs, routers that
//! NAT with iptables, links that lose packets. Loopback alone hides what a LAN shows (a server
//! naming itself 0.0.0.0 works there), so the tests of what the README tells users to run are
//! also run on a topology like theirs.
//!
//! Each [`Namespace`] is held open by a `sleep` process started with `unshare --net` (no
//! /run/netns mount needed, nothing left behind: the namespace and its veth ends go when the
//! holder is killed on drop). Commands run inside it through `nsenter`. Addresses come from
//! the benchmarking ranges (198.18.0.0/15, RFC 2544; 2001:2::/48, RFC 5180), a fresh /24 and
//! /64 per link, so tests running in parallel never meet. All of it only ever inside the
//! private namespace `scripts/test` runs the suite in: nothing here touches a real network.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A network namespace of our own, alive while this value is.
pub struct Namespace {
    /// A short name for logs and interface names.
    pub name: String,
    holder: Child,
}

static NEXT_LINK: AtomicU32 = AtomicU32::new(0);

/// The next link number, distinct across the tests of this process and (by the process id)
/// from a previous test binary's that may still be going away.
fn next_link() -> u32 {
    let n = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
    (std::process::id() % 97) * 5 + n % 5 + (n / 5) * 97 * 5
}

impl Namespace {
    /// A new namespace with its loopback up.
    pub fn new(name: &str) -> Namespace {
        crate::topology::assert_private();
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let ns = Namespace {
            name: name.to_string(),
            holder,
        };
        // The holder must have entered its namespace before anything is put in it.
        for _ in 0..100 {
            let mine = std::fs::read_link("/proc/self/ns/net").ok();
            let its = std::fs::read_link(ns.path()).ok();
            if its.is_some() && its != mine {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// `/proc/PID/ns/net` of the holder.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// A command to run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `args` inside the namespace; panics with its output when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self
            .command(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{}: {args:?}: {e}", self.name));
        assert!(
            out.status.success(),
            "{}: {args:?} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes it forward packets between its interfaces (a router).
    pub fn forward(&self) {
        self.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        self.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    }

    /// NATs what leaves through `outside` to that interface's address, as a home router does;
    /// `symmetric` picks a random source port per flow (`--random-fully`, as carrier NAT does,
    /// which STUN cannot predict).
    pub fn masquerade(&self, outside: &str, symmetric: bool) {
        let mut rule = vec![
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            outside,
            "-j",
            "MASQUERADE",
        ];
        if symmetric {
            rule.push("--random-fully");
        }
        self.run(&rule);
    }

    /// As a router, drops packets it forwards at random with probability `p`, both ways:
    /// silently, as a bad link does (a DROP in OUTPUT instead makes the sender's sendto fail
    /// with EPERM, which baresip takes as the end of a transaction).
    pub fn lose_forwarded(&self, p: f64) {
        let p = format!("{p}");
        for tables in ["iptables", "ip6tables"] {
            self.run(&[
                tables,
                "-A",
                "FORWARD",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]);
        }
    }

    /// Lets nothing leave through `interface` but TCP to port 443 (a hotel or office network),
    /// and what answers it.
    pub fn only_tcp_443(&self, interface: &str) {
        for tables in ["iptables", "ip6tables"] {
            self.run(&[
                tables, "-A", "OUTPUT", "-o", interface, "-p", "tcp", "--dport", "443", "-j",
                "ACCEPT",
            ]);
            self.run(&[tables, "-A", "OUTPUT", "-o", interface, "-j", "DROP"]);
        }
    }

    /// A default route through `via` (IPv4 or IPv6).
    pub fn route_default(&self, via: IpAddr) {
        let via = via.to_string();
        match via.contains(':') {
            false => self.run(&["ip", "route", "add", "default", "via", &via]),
            true => self.run(&["ip", "-6", "route", "add", "default", "via", &via]),
        };
    }

    /// Puts `interface` (the far end of a link, in this namespace) in `subnet`-routing: adds a
    /// route to `subnet` (CIDR) via `via`.
    pub fn route(&self, subnet: &str, via: IpAddr) {
        let via = via.to_string();
        let family = if via.contains(':') { "-6" } else { "-4" };
        self.run(&["ip", family, "route", "add", subnet, "via", &via]);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The families a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both.
    Dual,
}

/// A veth pair between two namespaces with an address at each end.
#[derive(Debug, Clone)]
pub struct Link {
    /// The interface's name at the first end, and at the second.
    pub interfaces: (String, String),
    /// The first end's IPv4 address (198.18.N.1) and the second's (198.18.N.2), if IPv4.
    pub v4: Option<(IpAddr, IpAddr)>,
    /// The first end's IPv6 address (2001:2:0:N::1) and the second's (::2), if IPv6.
    pub v6: Option<(IpAddr, IpAddr)>,
    /// The link's IPv4 subnet (CIDR), if IPv4.
    pub v4_subnet: Option<String>,
    /// The link's IPv6 subnet (CIDR), if IPv6.
    pub v6_subnet: Option<String>,
}

impl Link {
    /// Joins `a` and `b` with a fresh veth pair carrying `family`.
    pub fn new(a: &Namespace, b: &Namespace, family: Family) -> Link {
        let n = next_link();
        let (ia, ib) = (format!("v{n}a"), format!("v{n}b"));
        // Made in `a`, the peer end moved straight into `b`.
        a.run(&[
            "ip",
            "link",
            "add",
            &ia,
            "type",
            "veth",
            "peer",
            "name",
            &ib,
            "netns",
            &b.path(),
        ]);
        let (hi, lo) = (18 + n / 256, n % 256);
        let mut link = Link {
            interfaces: (ia.clone(), ib.clone()),
            v4: None,
            v6: None,
            v4_subnet: None,
            v6_subnet: None,
        };
        if family != Family::V6 {
            let (x, y) = (format!("198.{hi}.{lo}.1"), format!("198.{hi}.{lo}.2"));
            a.run(&["ip", "addr", "add", &format!("{x}/24"), "dev", &ia]);
            b.run(&["ip", "addr", "add", &format!("{y}/24"), "dev", &ib]);
            link.v4 = Some((x.parse().unwrap(), y.parse().unwrap()));
            link.v4_subnet = Some(format!("198.{hi}.{lo}.0/24"));
        }
        if family != Family::V4 {
            let (x, y) = (format!("2001:2:0:{n:x}::1"), format!("2001:2:0:{n:x}::2"));
            // nodad: usable at once, not "tentative" for a second.
            a.run(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{x}/64"),
                "dev",
                &ia,
                "nodad",
            ]);
            b.run(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{y}/64"),
                "dev",
                &ib,
                "nodad",
            ]);
            link.v6 = Some((x.parse().unwrap(), y.parse().unwrap()));
            link.v6_subnet = Some(format!("2001:2:0:{n:x}::/64"));
        }
        a.run(&["ip", "link", "set", &ia, "up"]);
        b.run(&["ip", "link", "set", &ib, "up"]);
        link
    }

    /// Gives the first end (in `a`) one more IPv4 address, 198.18.N.`host`: a second service
    /// on the same port (TURN and SIP both on 443).
    pub fn add_a(&self, a: &Namespace, host: u8) -> IpAddr {
        let first = self.a(false).to_string();
        let prefix = first.rsplit_once('.').expect("a dotted address").0;
        let address = format!("{prefix}.{host}");
        a.run(&[
            "ip",
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            &self.interfaces.0,
        ]);
        address.parse().unwrap()
    }

    /// The first end's address of the family of `v6`.
    pub fn a(&self, v6: bool) -> IpAddr {
        let pair = if v6 { self.v6 } else { self.v4 };
        pair.expect("the link carries that family").0
    }

    /// The second end's address of the family of `v6`.
    pub fn b(&self, v6: bool) -> IpAddr {
        let pair = if v6 { self.v6 } else { self.v4 };
        pair.expect("the link carries that family").1
    }
}

/// Panics unless we run in a private network namespace (netns-run): the topology's iptables
/// rules and interfaces must never touch a real machine. Netlink, not /sys/class/net (sysfs
/// may still show the machine's interfaces); our own veth ends may be there already.
pub fn assert_private() {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip (iproute2)");
    let foreign: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .filter(|name| name != "lo" && !(name.starts_with('v') && name.ends_with(['a', 'b'])))
        .collect();
    assert!(
        foreign.is_empty(),
        "this test builds network namespaces and iptables rules: run it inside the private \
         namespace scripts/test makes (found {foreign:?})"
    );
}

/// `openline serve` running inside a namespace, from a directory of its own (where its
/// default database, `sqlite://openline.db`, lands): started with exactly the arguments a
/// user would type.
pub struct Server {
    child: Child,
    /// Its working directory.
    pub dir: std::path::PathBuf,
    /// Its standard error (the log).
    pub log: std::path::PathBuf,
}

impl Server {
    /// Adds `users` (`user@domain`, password) with `openline user add`, as the README says,
    /// then starts `openline serve ARGS` in `ns`, and waits until it listens.
    pub fn start(ns: &Namespace, users: &[(&str, &str)], args: &[&str]) -> Server {
        let dir = crate::subject::scratch_dir("topology");
        let bin = crate::subject::openline_bin();
        for (aor, password) in users {
            let ok = Command::new(&bin)
                .args(["user", "add", aor, "--password", password])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status()
                .expect("openline user add")
                .success();
            assert!(ok, "openline user add {aor}");
        }
        let log = dir.join("server.log");
        let out = dir.join("server.out");
        let mut child = ns
            .command(&bin)
            .arg("serve")
            .args(args)
            .current_dir(&dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start openline");
        // It prints `listening on TRANSPORT:ADDR` per socket once ready, TCP after UDP.
        let mut ready = false;
        for _ in 0..200 {
            let said = std::fs::read_to_string(&out).unwrap_or_default();
            if said.lines().any(|l| l.starts_with("listening on tcp:")) {
                ready = true;
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            ready,
            "openline serve {args:?} did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Server { child, dir, log }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The SQLite database it uses.
    pub fn db(&self) -> String {
        format!("sqlite://{}/openline.db", self.dir.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
