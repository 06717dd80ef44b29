//! SIPVicious 0.3.3 (Debian's sipvicious) from a namespace of its own against a server
//! started as the README says. svmap must find it (the scanners do reach it), svwar must not
//! tell a user from a name nobody has, by REGISTER, INVITE or OPTIONS, and svcrack must not
//! find a password from a list that holds it, while it finds one at the head of a list (the
//! control: the tool works against us). Throttled guesses and the flood of retransmissions
//! that follows are written as a handful of lines, and counted each in the metrics.

use super::*;

const PASSWORD: &str = "tr0ub4dor&3";
const METRICS_PORT: u16 = 9464;

/// What `tool ARGS` printed, run in `ns` for at most `limit` seconds (svcrack goes on
/// retransmitting when a flood is dropped: the limit ends it).
fn scan(ns: &Namespace, limit: u32, tool: &str, args: &[&str]) -> String {
    let out = ns
        .command("timeout")
        .arg(limit.to_string())
        .arg(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (sipvicious)"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The rows of svwar's or svcrack's result table (`| 1001 | reqauth |`).
fn rows(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("| ") && !l.contains("Extension") && !l.contains("SIP Device"))
        .map(str::to_string)
        .collect()
}

#[test]
fn scanners_learn_no_user_and_no_password_and_cost_a_few_log_lines() {
    let server_ns = Namespace::new("server");
    let scanner = Namespace::new("scanner");
    let link = Link::new(&server_ns, &scanner, Family::V4);
    let metrics = format!("tcp:{}:{METRICS_PORT}", link.a(false));
    let server = Server::start(
        &server_ns,
        &[
            ("1001@club-a.test", PASSWORD),
            ("1002@club-a.test", "correct-horse"),
        ],
        &["--domain", "club-a.test", "--metrics", &metrics],
    );
    let ip = link.a(false).to_string();
    let target = format!("udp://{ip}:5060");
    let dir = openline_tests::subject::scratch_dir("scanners");

    let map = scan(&scanner, 30, "svmap", &[&ip]);
    assert!(
        map.contains("Openline/"),
        "svmap found no SIP server:\n{map}"
    );

    for method in ["REGISTER", "INVITE", "OPTIONS"] {
        let args = [
            "--force",
            "--domain",
            "club-a.test",
            "-m",
            method,
            "-e1000-1010",
            &target,
        ];
        let out = scan(&scanner, 60, "svwar", &args);
        assert!(
            rows(&out).is_empty() && out.contains("found nothing"),
            "svwar by {method} told users apart:\n{out}"
        );
    }

    // The control: the right password first, so svcrack finds it.
    let good = dir.join("good.txt");
    std::fs::write(&good, "correct-horse\n").unwrap();
    let control = [
        "--domain",
        "club-a.test",
        "-u",
        "1002",
        "-d",
        good.to_str().unwrap(),
        &target,
    ];
    let out = scan(&scanner, 30, "svcrack", &control);
    assert!(
        rows(&out).iter().any(|r| r.contains("correct-horse")),
        "svcrack cannot crack even a list starting with the password:\n{out}"
    );

    // The attack: forty guesses, then the password, then more.
    let mut list: Vec<String> = (1..=40).map(|i| format!("guess{i}")).collect();
    list.push(PASSWORD.into());
    list.extend((41..=60).map(|i| format!("guess{i}")));
    let dictionary = dir.join("dictionary.txt");
    std::fs::write(&dictionary, list.join("\n") + "\n").unwrap();
    let attack = [
        "--domain",
        "club-a.test",
        "-u",
        "1001",
        "-d",
        dictionary.to_str().unwrap(),
        &target,
    ];
    let out = scan(&scanner, 40, "svcrack", &attack);
    assert!(
        !out.contains(PASSWORD),
        "svcrack found the password:\n{out}"
    );

    // Every throttled attempt is counted...
    let text = scanner.run(&["curl", "-s", &format!("http://{ip}:{METRICS_PORT}/metrics")]);
    let throttled: f64 = text
        .lines()
        .find(|l| l.starts_with("openline_auth_failures_total{reason=\"throttled\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        throttled >= 10.0,
        "throttled attempts counted: {throttled}\n{text}"
    );
    // ...but written once per source and window, with the count.
    let log = server.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("authentication throttled"))
        .count();
    assert!(
        (1..=4).contains(&lines),
        "{lines} lines for {throttled} throttled attempts:\n{log}"
    );
    let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
    assert!(warnings <= 10, "{warnings} warnings from one scan:\n{log}");
}
