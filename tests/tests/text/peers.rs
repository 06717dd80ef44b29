//! Real peers: baresip texting baresip through openline, online and offline; SIPp sending
//! MESSAGEs under load to a registered SIPp responder and to a user who is offline.

use super::*;
use openline_registrar::store::{MailboxStore, Store};
use openline_tests::baresip::Ua;

const DAVE_SIP: u16 = 5300;
const ERIN_SIP: u16 = 5302;
const UAS: u16 = 5310;
const UAC: u16 = 5312;

#[test]
fn baresip_texts_baresip_online_and_offline() {
    let db = sqlite_db("text-baresip");
    for user in ["dave", "erin"] {
        add_user(&db, &format!("{user}@{DOMAIN}"), "s3cret");
    }
    let server = Subject::start_on(&db, &[]);
    let dir = scratch_dir("text-baresip-logs");
    // Each UA keeps its profile (and so its +sip.instance) across restarts: one device.
    let env_of = |user: &str, who: &str| {
        [
            ("CONTACTS", format!("sip:{who}@openline.test")),
            (
                "DIR",
                dir.join(format!("{user}-profile")).display().to_string(),
            ),
        ]
    };
    let start = |user: &str, port: u16, log: &str, contact: &str| {
        let env = env_of(user, contact);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ua::start(
            server.udp,
            &format!("{user}@openline.test"),
            port,
            dir.join(log),
            &env,
        )
    };
    let mut dave = start("dave", DAVE_SIP, "dave.log", "erin");
    let mut erin = start("erin", ERIN_SIP, "erin-1.log", "dave");

    dave.command("/message hello erin");
    erin.wait_for("sip:dave@openline.test: \"hello erin\"");
    erin.command("/message hello dave");
    dave.wait_for("sip:erin@openline.test: \"hello dave\"");

    // erin quits (un-registering); what dave writes meanwhile waits for her.
    erin.quit();
    dave.command("/message while you were away");
    // baresip 1.0.0 prints nothing for a 2xx to MESSAGE: give the store a moment.
    std::thread::sleep(Duration::from_millis(500));
    // The wrapper makes its control FIFO afresh in the kept profile.
    let _ = std::fs::remove_file(dir.join("erin-profile/ctl"));
    let erin = start("erin", ERIN_SIP, "erin-2.log", "dave");
    erin.wait_for("sip:dave@openline.test: \"while you were away\"");
    std::thread::sleep(QUIET);
    assert_eq!(
        erin.said().matches("while you were away").count(),
        1,
        "once:\n{}",
        erin.said()
    );
    dave.quit();
    erin.quit();
}

/// Runs SIPp's bench MESSAGE sender in `dir` from `port`: `count` MESSAGEs at `rate`/s to
/// `user`; its exit status and final screen.
fn sipp_messages(
    server: &Subject,
    (dir, port): (&std::path::Path, u16),
    user: &str,
    count: usize,
    rate: usize,
) -> (i32, String) {
    let scenario = corpora_bench("uac_message.xml");
    let out = openline_tests::run_peer(
        dir,
        "sipp",
        [
            server.udp.to_string().as_str(),
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            user,
            "-m",
            &count.to_string(),
            "-r",
            &rate.to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-nostdin",
            "-trace_screen",
            "-trace_err",
            "-timeout",
            "120",
        ],
        Duration::from_secs(150),
    );
    let screen = openline_tests::sipp_screen(dir);
    (out.status.code().unwrap_or(-1), screen)
}

fn corpora_bench(file: &str) -> std::path::PathBuf {
    openline_tests::repo_file("bench/reference/signaling/scenarios").join(file)
}

#[test]
fn sipp_sends_messages_under_load_with_no_failure_on_sqlite() {
    sipp_load(&sqlite_db("text-sipp"), (UAS, UAC));
}

#[test]
fn sipp_sends_messages_under_load_with_no_failure_on_postgresql() {
    let db = openline_tests::fresh_postgres_database("openline_text_sipp");
    sipp_load(&db, (UAS + 10, UAC + 10));
}

/// SIPp sends 3,000 MESSAGEs at 500/s to a registered SIPp responder and 1,000 to a user with
/// no device: not one fails, and the 1,000 are in the mailbox. `(uas, uac)`: SIPp's ports.
fn sipp_load(db: &str, (uas_port, uac_port): (u16, u16)) {
    const ONLINE: usize = 3000;
    const OFFLINE: usize = 1000;
    let db = db.to_string();
    for user in ["bench-uas", "away"] {
        add_user(&db, &format!("{user}@{DOMAIN}"), "s3cret");
    }
    let server = Subject::start_on(&db, &[]);
    let dir = scratch_dir("text-sipp");

    // A registered responder: every MESSAGE relayed to it and answered 200.
    let mut uas = openline_tests::Background(
        std::process::Command::new("timeout")
            .args(["200", "sipp", "-sf"])
            .arg(corpora_bench("uas_message.xml"))
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &uas_port.to_string(),
                "-nostdin",
                "-buff_size",
                "4194304",
            ])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sipp (sip-tester is installed by scripts/install-test-deps)"),
    );
    let mut registrar = Phone::new("bench-uas", DOMAIN, "s3cret", server.udp);
    registrar.set_contact(&format!("sip:bench-uas@127.0.0.1:{uas_port}"));
    assert_eq!(registrar.register(3600), 200);

    let online = dir.join("online");
    std::fs::create_dir_all(&online).unwrap();
    let (code, screen) = sipp_messages(&server, (&online, uac_port), "bench-uas", ONLINE, 500);
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        openline_tests::sipp_successful_calls(&screen),
        Some(ONLINE),
        "{screen}"
    );
    uas.stop();

    // Nobody there: each is stored, and only then answered 202.
    let offline = dir.join("offline");
    std::fs::create_dir_all(&offline).unwrap();
    let (code, screen) = sipp_messages(&server, (&offline, uac_port), "away", OFFLINE, 500);
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        openline_tests::sipp_successful_calls(&screen),
        Some(OFFLINE),
        "{screen}"
    );
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            Store::open(&db)
                .await
                .unwrap()
                .mailbox_counts()
                .await
                .unwrap()
        });
    assert_eq!(stored, [(format!("away@{DOMAIN}"), OFFLINE as u64)]);
}
