//! Registrar suite: real clients (sipsak, SIPp) register against a running `openline`; the
//! results are checked on the wire and in the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod baresip;
mod database;
mod linphone;
mod peers;
mod phone;
mod push;

use openline_tests::subject::Subject;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use openline_tests::subject::{db_bindings, wall};

/// A scratch directory for peer files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    openline_tests::subject::scratch_dir(name)
}

/// What sipsak said: its exit code and every status line it received, in order.
pub(crate) struct SipsakRun {
    pub(crate) exit: Option<i32>,
    pub(crate) statuses: Vec<String>,
    pub(crate) output: String,
}

impl SipsakRun {
    /// The Contact values of the last 200 it printed.
    pub(crate) fn contacts_of_final_200(&self) -> Vec<String> {
        // The message as received (sipsak -vvv prints it at the start of a line, CRLFs kept).
        let Some(start) = self.output.rfind("\nSIP/2.0 200") else {
            return Vec::new();
        };
        self.output[start + 1..]
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("Contact: "))
            .map(str::to_string)
            .collect()
    }
}

/// Sends a REGISTER for `user` with sipsak (which answers the 401 with `password`); `contact`
/// None makes it a fetch.
pub(crate) fn sipsak_register(
    server: &Subject,
    user: &str,
    password: &str,
    contact: Option<&str>,
    expires: &str,
) -> SipsakRun {
    let dir = scratch("sipsak");
    let domain = &server.domain;
    let mut lines = vec![
        format!("REGISTER sip:{domain} SIP/2.0"),
        format!("From: <sip:{user}@{domain}>;tag=r{}", std::process::id()),
        format!("To: <sip:{user}@{domain}>"),
        format!(
            "Call-ID: reg-{user}-{}@127.0.0.1",
            dir.file_name().unwrap().to_string_lossy()
        ),
        "CSeq: 1 REGISTER".into(),
    ];
    if let Some(c) = contact {
        lines.push(format!("Contact: {c}"));
        lines.push(format!("Expires: {expires}"));
    }
    lines.extend([
        "Max-Forwards: 70".into(),
        "Content-Length: 0".into(),
        String::new(),
    ]);
    let file = dir.join("reg.sip");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let target = format!("sip:{user}@{}", server.udp);
    let args = [
        file.to_str().unwrap(),
        "-s",
        &target,
        "-u",
        user,
        "-a",
        password,
        "-H",
        "127.0.0.1",
        "-vvv",
    ];
    let out = openline_tests::run_peer(
        &dir,
        "sipsak",
        std::iter::once("-f").chain(args),
        Duration::from_secs(20),
    );
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    let statuses = output
        .lines()
        .filter(|l| l.starts_with("SIP/2.0 "))
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(dir);
    SipsakRun {
        exit: out.status.code(),
        statuses,
        output,
    }
}

pub(crate) use openline_tests::eventually;
