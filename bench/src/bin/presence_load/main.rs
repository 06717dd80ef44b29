//! Presence under load, the same for any SIP presence server on loopback: watchers hold many
//! subscriptions while the presentities' devices register and unregister, and the server's CPU
//! is read from /proc around each phase.
//!
//! Phases: (1) the churn alone, no subscriptions: what the REGISTERs cost; (2) every
//! subscription made; (3) the same churn with every subscription held: the CPU above phase 1,
//! per NOTIFY, is what a NOTIFY costs; then whether every watcher's last NOTIFY matches the
//! presentity's last registration, and (4) every subscription ended (a terminated NOTIFY each).
//! Prints one `key=value` line for the bench script.

mod churn;
mod watchers;
mod wire;

use clap::Parser;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Presence load: subscriptions held while registrations churn")]
struct Args {
    /// The server under test (loopback only).
    #[arg(long)]
    server: SocketAddr,
    /// Its domain; users are pN (presentities) and wN (watchers), password s3cret.
    #[arg(long, default_value = "bench.test")]
    domain: String,
    /// Presentities.
    #[arg(long, default_value_t = 1000)]
    presentities: usize,
    /// Watchers.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Subscriptions each watcher holds (consecutive presentities).
    #[arg(long, default_value_t = 100)]
    per_watcher: usize,
    /// Registration changes a second (round robin: with rate x seconds x 2 not a multiple of
    /// the presentities, some end online and some offline, and both are checked).
    #[arg(long, default_value_t = 125.0)]
    rate: f64,
    /// Seconds each churn phase lasts.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Sockets the watchers share.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// The server's PID: its process tree's CPU is measured.
    #[arg(long)]
    pid: u32,
    /// `getconf CLK_TCK`.
    #[arg(long, default_value_t = 100.0)]
    ticks: f64,
}

#[allow(clippy::disallowed_methods)] // a load generator: real threads, real time
fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(
        a.server.ip().is_loopback(),
        "{} is not a loopback address",
        a.server
    );
    let cpu = || wire::tree_cpu(a.pid, a.ticks);
    let plan = watchers::Plan {
        server: a.server,
        domain: a.domain.clone(),
        expires: 3600,
    };

    let churned = Arc::new(churn::Counters::default());
    let churner = {
        let (c, d, n, r) = (churned.clone(), a.domain.clone(), a.presentities, a.rate);
        std::thread::spawn(move || churn::run(a.server, d, (n, r), c))
    };
    let watched = Arc::new(watchers::Counters::default());
    let sockets = a.sockets.max(1);
    let mut pairs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); sockets];
    for w in 0..a.watchers {
        for k in 0..a.per_watcher {
            pairs[w % sockets].push((w, (w * a.per_watcher + k) % a.presentities));
        }
    }
    let total = (a.watchers * a.per_watcher) as u64;
    let threads: Vec<_> = pairs
        .into_iter()
        .map(|p| {
            let (plan, c) = (plan.clone(), watched.clone());
            std::thread::spawn(move || watchers::run(plan, p, c))
        })
        .collect();

    // (1) and (3): a churn phase, measured until the NOTIFYs it caused stop arriving.
    let churn_phase = || {
        let (c0, d0, n0) = (
            cpu(),
            churned.done.load(Ordering::Relaxed),
            watched.notifies.load(Ordering::Relaxed),
        );
        churned.phase.store(churn::CHURN, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(a.seconds));
        churned.phase.store(churn::IDLE, Ordering::Relaxed);
        settle(|| churned.done.load(Ordering::Relaxed) + watched.notifies.load(Ordering::Relaxed));
        let done = churned.done.load(Ordering::Relaxed) - d0;
        (
            cpu() - c0,
            done,
            watched.notifies.load(Ordering::Relaxed) - n0,
        )
    };
    let (base_cpu, base_done, base_notifies) = churn_phase();

    // (2): every subscription made, each answered and its first NOTIFY in.
    let (c0, n0) = (cpu(), watched.notifies.load(Ordering::Relaxed));
    let t0 = std::time::Instant::now();
    watched.phase.store(watchers::SUBSCRIBE, Ordering::Relaxed);
    let answered =
        || watched.accepted.load(Ordering::Relaxed) + watched.failed.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(300), || answered() >= total);
    settle(|| watched.notifies.load(Ordering::Relaxed));
    let sub_secs = t0.elapsed().as_secs_f64();
    let (sub_cpu, first_notifies) = (cpu() - c0, watched.notifies.load(Ordering::Relaxed) - n0);
    let accepted = watched.accepted.load(Ordering::Relaxed);

    let (load_cpu, load_done, notifies) = churn_phase();

    // (4): every subscription ended.
    churned.phase.store(churn::STOP, Ordering::Relaxed);
    let registered = churner
        .join()
        .map_err(|_| anyhow::anyhow!("the churn thread panicked"))?;
    watched
        .phase
        .store(watchers::UNSUBSCRIBE, Ordering::Relaxed);
    wait_until(Duration::from_secs(300), || {
        watched.ended.load(Ordering::Relaxed) >= accepted
    });
    settle(|| watched.terminated.load(Ordering::Relaxed));
    watched.phase.store(watchers::STOP, Ordering::Relaxed);
    // Whether each watcher's last NOTIFY before the terminated one says what the presentity's
    // last REGISTER left: online and offline counted apart, so a server whose documents we
    // misread cannot pass because every presentity happened to end offline.
    let (mut online, mut seen_online, mut offline, mut seen_offline) = (0, 0, 0, 0);
    for t in threads {
        let subs = t
            .join()
            .map_err(|_| anyhow::anyhow!("a watcher thread panicked"))?;
        for s in &subs {
            let seen = s.open.unwrap_or(false);
            if registered[s.presentity] {
                online += 1;
                seen_online += usize::from(seen);
            } else {
                offline += 1;
                seen_offline += usize::from(!seen);
            }
        }
    }

    if online == 0 || offline == 0 {
        eprintln!("warning: every presentity ended in one state; the check saw only that one");
    }
    let per = |cpu: f64, n: u64| if n == 0 { 0.0 } else { cpu * 1e6 / n as f64 };
    let per_change = per(base_cpu, base_done);
    let marginal = per(load_cpu - per_change * load_done as f64 / 1e6, notifies);
    println!(
        "subscriptions={total} accepted={accepted} subscribe_s={sub_secs:.1} us_per_subscription={:.1} \
         first_notifies={first_notifies} changes_alone={base_done} base_notifies={base_notifies} \
         us_per_change_alone={per_change:.1} changes_loaded={load_done} notifies={notifies} \
         us_per_notify_total={:.1} us_per_notify={marginal:.1} \
         online_seen={seen_online}/{online} offline_seen={seen_offline}/{offline} \
         failed_subscribe={} failed_register={} ended={} terminated={}",
        per(sub_cpu, accepted),
        per(load_cpu, notifies),
        watched.failed.load(Ordering::Relaxed),
        churned.failed.load(Ordering::Relaxed),
        watched.ended.load(Ordering::Relaxed),
        watched.terminated.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Waits until `done` holds, or `limit` passes.
#[allow(clippy::disallowed_methods)]
fn wait_until(limit: Duration, done: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !done() && t0.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `count` has not moved for a second (at most a minute).
#[allow(clippy::disallowed_methods)]
fn settle(count: impl Fn() -> u64) {
    let t0 = std::time::Instant::now();
    let mut last = count();
    let mut still = 0;
    while still < 10 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        let now = count();
        if now == last {
            still += 1
        } else {
            still = 0;
            last = now
        }
    }
}
