//! Calls and texts on real topologies (issue #20): network namespaces joined by veth pairs,
//! routers that NAT, links that lose packets (`openline_tests::topology`). The phones are
//! Linphone (linphonec) and baresip; audio is measured in what each one recorded.
//!
//! - `lan.rs`: the server started exactly as the README says, phones on another segment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod browser;
mod dual_stack;
mod firewall;
mod lan;
mod loss;
mod nat;
mod provisioning;
mod push;
mod quality;

use openline_tests::audio::{hears, recording, tone_wav};
use openline_tests::baresip::Ua;
use openline_tests::linphone::{Linphone, Setup};
use openline_tests::subject::scratch_dir;
use openline_tests::topology::{Family, Link, Namespace, Server};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// The users every topology's server has.
const USERS: [(&str, &str); 3] = [
    ("alice@club-a.test", "s3cret"),
    ("bob@club-a.test", "s3cret"),
    ("carol@club-a.test", "s3cret"),
];

/// The share of `frequency` in the loudest second of the WAV at `path`, and how much of it
/// is not silence; panics with both when either is too low to call it heard.
fn assert_hears(path: &Path, frequency: f64, who: &str) {
    let (share, loud) = hears(&recording(path), frequency);
    assert!(
        share > 0.7 && loud > 0.3,
        "{who} should hear {frequency} Hz: share {share:.2}, not silent {loud:.2}"
    );
}

/// A Linphone for `account` at `at` in `ns`, its files in `dir`, playing `play` and
/// recording to `record`.
fn linphone(
    (ns, dir): (&Namespace, &Path),
    account: &str,
    (server, transport, port): (SocketAddr, &str, u16),
    (play, record): (Option<&Path>, Option<&Path>),
) -> Linphone {
    let dir = dir.join(account.split('@').next().unwrap());
    Linphone::start(
        ns,
        &dir,
        &Setup {
            account,
            password: "s3cret",
            server,
            transport,
            port,
            play,
            record,
        },
    )
}

/// A baresip for `account` in `ns` on its address `at`, sending a `tone` Hz sine and
/// copying what it heard in the last call to `heard` when it quits; texts go to `contact`.
fn baresip(
    (ns, at, dir): (&Namespace, IpAddr, &Path),
    account: &str,
    (server, port): (SocketAddr, u16),
    (tone, heard): (u32, &Path),
    contact: &str,
) -> Ua {
    let user = account.split('@').next().unwrap();
    let input = format!("sine:{tone}");
    let contacts = format!("sip:{contact}");
    Ua::start_in(
        (ns, at),
        (server, account, port),
        dir.join(format!("{user}-baresip.log")),
        &[("CONTACTS", contacts.as_str()), ("ANSWER", "manual")],
        (input.as_str(), heard.to_str().unwrap()),
    )
}

/// baresip `caller` (`caller_aor`) calls Linphone `callee` (`callee_aor`), which answers and,
/// after some seconds of audio, hangs up: the caller hears the BYE.
fn baresip_calls_linphone(
    (caller, caller_aor): (&mut Ua, &str),
    (callee, callee_aor): (&mut Linphone, &str),
) {
    caller.command(&format!("/dial sip:{callee_aor}"));
    callee.wait_for(
        &format!("Receiving new incoming call from sip:{caller_aor}"),
        WAIT,
    );
    callee.command("answer");
    caller.wait_for(&format!("Call established: sip:{callee_aor}"));
    std::thread::sleep(Duration::from_secs(4));
    callee.command("terminate");
    caller.wait_for(&format!("sip:{callee_aor}: session closed"));
}

/// Linphone `caller` calls baresip `callee` (`callee_aor`), which answers and, after some
/// seconds of audio, hangs up: the caller hears the BYE (its `call`th call ends).
fn linphone_calls_baresip(
    (caller, call): (&mut Linphone, usize),
    (callee, callee_aor): (&mut Ua, &str),
) {
    caller.command(&format!("call sip:{callee_aor}"));
    callee.wait_for("Incoming call from:");
    callee.command("/accept");
    caller.wait_for_nth("connected.", call, WAIT);
    callee.wait_for("Call established:");
    std::thread::sleep(Duration::from_secs(4));
    callee.command("/hangup");
    caller.wait_for_nth("ended", call, WAIT);
}

/// What Linphone's `recording` holds now, copied to `dir/name` (it records every call into the
/// same file): once it had a moment to write the end of the call.
fn heard_so_far(recording: &Path, dir: &Path, name: &str) -> std::path::PathBuf {
    std::thread::sleep(Duration::from_millis(500));
    let copy = dir.join(name);
    std::fs::copy(recording, &copy).unwrap();
    copy
}
