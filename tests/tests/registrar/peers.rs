//! sipsak and SIPp registering, and what survives a crash.

use crate::{db_bindings, eventually, scratch, sipsak_register, wall};
use openline_registrar::User;
use openline_registrar::store::{Store, UserStore};
use openline_tests::subject::{Subject, add_user};
use std::process::Command;
use std::time::Duration;

#[test]
fn sipsak_registers_with_digest_and_the_binding_is_in_the_database() {
    let server = Subject::start_with_users(&[("alice@openline.test", "s3cret")], &[]);
    let run = sipsak_register(
        &server,
        "alice",
        "s3cret",
        Some("<sip:alice@127.0.0.1:5099>"),
        "600",
    );
    assert_eq!(run.exit, Some(0), "{}", run.output);
    assert_eq!(run.statuses, ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"]);
    assert_eq!(
        run.contacts_of_final_200(),
        ["<sip:alice@127.0.0.1:5099>;expires=600"],
        "{}",
        run.output
    );
    let bindings = db_bindings(&server.db);
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        (bindings[0].aor.as_str(), bindings[0].contact.as_str()),
        ("alice@openline.test", "sip:alice@127.0.0.1:5099")
    );
    assert!((wall() + 595..=wall() + 600).contains(&bindings[0].expires_at));
}

#[test]
fn a_binding_survives_kill_9_right_after_its_200() {
    let mut server = Subject::start_with_users(&[("carol@openline.test", "pw-carol")], &[]);
    let db = server.db.clone();
    let run = sipsak_register(
        &server,
        "carol",
        "pw-carol",
        Some("<sip:carol@127.0.0.1:5111>"),
        "3600",
    );
    assert_eq!(run.exit, Some(0), "{}", run.output);
    server.kill();
    let restarted = Subject::start_on(&db, &[]);
    let fetch = sipsak_register(&restarted, "carol", "pw-carol", None, "0");
    assert_eq!(fetch.exit, Some(0), "{}", fetch.output);
    let contacts = fetch.contacts_of_final_200();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(
        contacts[0].starts_with("<sip:carol@127.0.0.1:5111>;expires="),
        "{contacts:?}"
    );

    // And a request for carol reaches the registered contact through the restarted server.
    let device = std::net::UdpSocket::bind("127.0.0.1:5111").unwrap();
    let caller = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = caller.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:carol@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKk9;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:someone@elsewhere.test>;tag=k\r\nTo: <sip:carol@openline.test>\r\n\
         Call-ID: after-kill-9\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send_to(options.as_bytes(), restarted.udp).unwrap();
    let got = openline_tests::wire::recv_until(&[&device], Duration::from_secs(5), |m| {
        openline_tests::wire::first_line(m).starts_with("OPTIONS ")
    });
    assert!(
        got.iter()
            .any(|m| openline_tests::wire::first_line(m)
                == "OPTIONS sip:carol@127.0.0.1:5111 SIP/2.0"),
        "{got:?}"
    );
}

#[test]
fn two_devices_of_one_user_registering_at_once_are_both_bound() {
    let server = Subject::start_with_users(&[("dave@openline.test", "pw-dave")], &[]);
    let runs: Vec<_> = std::thread::scope(|s| {
        let a = s.spawn(|| {
            sipsak_register(
                &server,
                "dave",
                "pw-dave",
                Some("<sip:dave@127.0.0.1:5121>"),
                "600",
            )
        });
        let b = s.spawn(|| {
            sipsak_register(
                &server,
                "dave",
                "pw-dave",
                Some("<sip:dave@127.0.0.1:5122>"),
                "600",
            )
        });
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for r in &runs {
        assert_eq!(r.exit, Some(0), "{}", r.output);
    }
    let mut contacts: Vec<String> = db_bindings(&server.db)
        .into_iter()
        .map(|b| b.contact)
        .collect();
    contacts.sort();
    assert_eq!(
        contacts,
        ["sip:dave@127.0.0.1:5121", "sip:dave@127.0.0.1:5122"]
    );
    let fetch = sipsak_register(&server, "dave", "pw-dave", None, "0");
    assert_eq!(fetch.contacts_of_final_200().len(), 2);
}

#[test]
fn users_added_and_deleted_while_running_take_effect_without_restart() {
    // Polling until the change shows counts as failed attempts: no throttle here (its own test).
    let server = Subject::start(&["--auth-throttle", "0"]);
    let first = sipsak_register(
        &server,
        "erin",
        "pw-erin",
        Some("<sip:erin@127.0.0.1:5131>"),
        "600",
    );
    assert_eq!(
        first.statuses.last().map(String::as_str),
        Some("SIP/2.0 403 Forbidden (authentication failed)")
    );
    add_user(&server.db, "erin@openline.test", "pw-erin");
    let registered = eventually(Duration::from_secs(5), || {
        sipsak_register(
            &server,
            "erin",
            "pw-erin",
            Some("<sip:erin@127.0.0.1:5131>"),
            "600",
        )
        .exit
            == Some(0)
    });
    assert!(registered, "the new user could register within 5 s");
    let del = Command::new(openline_tests::subject::openline_bin())
        .args(["user", "del", "erin@openline.test", "--db", &server.db])
        .status()
        .unwrap();
    assert!(del.success());
    let refused = eventually(Duration::from_secs(5), || {
        sipsak_register(&server, "erin", "pw-erin", None, "0").exit == Some(1)
    });
    assert!(refused, "the deleted user was refused within 5 s");
    assert!(
        db_bindings(&server.db).is_empty(),
        "deleting a user removes its bindings"
    );
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = Subject::start_with_users(&[("frank@openline.test", "right")], &[]);
    let wrong = sipsak_register(
        &server,
        "frank",
        "wrong",
        Some("<sip:frank@127.0.0.1:5141>"),
        "600",
    );
    let unknown = sipsak_register(
        &server,
        "nobody",
        "right",
        Some("<sip:nobody@127.0.0.1:5141>"),
        "600",
    );
    assert_eq!(wrong.exit, Some(1));
    assert_eq!(wrong.statuses, unknown.statuses);
    assert_eq!(
        wrong.statuses.last().map(String::as_str),
        Some("SIP/2.0 403 Forbidden (authentication failed)")
    );
    assert!(db_bindings(&server.db).is_empty(), "nothing was bound");
}

#[test]
fn sipp_registers_ten_thousand_users_with_digest() {
    const USERS: usize = 10_000;
    let dir = scratch("sipp-reg");
    let db = format!("sqlite://{}/openline.db", dir.display());
    let users: Vec<User> = (0..USERS)
        .map(|i| User::new(&format!("u{i:05}@openline.test"), "s3cret").unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        Store::open(&db)
            .await
            .unwrap()
            .put_users(&users)
            .await
            .unwrap()
    });
    let server = Subject::start_on(&db, &[]);
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..USERS {
        csv +=
            &format!("u{i:05};openline.test;[authentication username=u{i:05} password=s3cret]\n");
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
    let scenario = openline_tests::repo_file("tests/peers/sipp/reg-auth.xml");
    let (users, target) = (USERS.to_string(), server.udp.to_string());
    let args = [
        scenario.to_str().unwrap(),
        "-inf",
        "users.csv",
        "-m",
        &users,
        "-r",
        "1000",
        "-l",
        "400",
        "-key",
        "contact",
        "127.0.0.1:5199",
        "-auth_uri",
        "openline.test",
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-nostdin",
        "-timeout",
        "240",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        "errors.log",
        &target,
    ];
    let out = openline_tests::run_peer(
        &dir,
        "sipp",
        std::iter::once("-sf").chain(args),
        Duration::from_secs(300),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every registration must succeed\n{}\n{}",
        &text[text.len().saturating_sub(3000)..],
        &errors[..errors.len().min(3000)]
    );
    assert_eq!(openline_tests::sipp_successful_calls(&text), Some(USERS));
    assert_eq!(
        db_bindings(&server.db).len(),
        USERS,
        "every binding durable"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn on_postgresql_a_binding_is_stored_and_survives_kill_9() {
    let db = openline_tests::fresh_postgres_database("openline_registrar_e2e");
    add_user(&db, "heidi@openline.test", "pw-heidi");
    let mut server = Subject::start_on(&db, &[]);
    let run = sipsak_register(
        &server,
        "heidi",
        "pw-heidi",
        Some("<sip:heidi@127.0.0.1:5161>"),
        "900",
    );
    assert_eq!(run.exit, Some(0), "{}", run.output);
    let stored = db_bindings(&db);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].contact, "sip:heidi@127.0.0.1:5161");
    server.kill();
    let restarted = Subject::start_on(&db, &[]);
    let fetch = sipsak_register(&restarted, "heidi", "pw-heidi", None, "0");
    assert_eq!(fetch.exit, Some(0), "{}", fetch.output);
    assert_eq!(fetch.contacts_of_final_200().len(), 1, "{}", fetch.output);
}
