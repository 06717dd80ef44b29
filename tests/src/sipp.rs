//! SIPp scenarios kept in tests/peers/sipp, and the steps several suites take with them.

use std::time::Duration;

/// A scenario file under `tests/peers/sipp`.
pub fn scenario(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers/sipp")
        .join(name)
}

/// Registers `user@domain` at `server` (IP:PORT) with `contact`, answering the digest
/// challenge (password s3cret), from `port`.
pub fn register_at(
    server: &str,
    dir: &std::path::Path,
    user: &str,
    domain: &str,
    contact: &str,
    port: u16,
) {
    let scenario = scenario("register-as.xml");
    let port = port.to_string();
    let out = crate::run_peer(
        dir,
        "sipp",
        [
            server,
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            user,
            "-key",
            "domain",
            domain,
            "-key",
            "contact",
            contact,
            "-key",
            "pw",
            "s3cret",
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-nostdin",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "registering {user}@{domain} at {server}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One call of `scenario` (uac-auth.xml and its kin under tests/peers/sipp) from `caller`
/// (user, domain, password) to `callee` (user, domain) through `server`, from a free port, in
/// `dir`, bounded by `limit`: SIPp's output (its status says whether the scenario held).
pub fn call(
    dir: &std::path::Path,
    server: std::net::SocketAddr,
    scenario_name: &str,
    (user, domain, password): (&str, &str, &str),
    (callee, callee_domain): (&str, &str),
    limit: Duration,
) -> std::process::Output {
    let scenario = scenario(scenario_name);
    let port = crate::media::free_udp_addr().port().to_string();
    crate::run_peer(
        dir,
        "sipp",
        [
            server.to_string().as_str(),
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            callee,
            "-key",
            "callee_domain",
            callee_domain,
            "-key",
            "user",
            user,
            "-key",
            "domain",
            domain,
            "-key",
            "pw",
            password,
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-nostdin",
            // What went wrong, if anything, in a file of the scratch directory.
            "-trace_err",
        ],
        limit,
    )
}
