//! Presence across the nodes of a cluster (issue #9): a watcher subscribed at one node hears
//! a presentity whose devices register through another, from the database's news.

use super::{DOMAIN, next_notify, pidf, publish, subscribe};
use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, scratch_dir};
use openline_tests::wire::{header, status};

#[test]
fn a_watcher_at_one_node_sees_a_presentity_register_through_another() {
    let db = openline_tests::fresh_postgres_database("openline_cluster_presence");
    add_user(&db, "alice@openline.test", "pw-a");
    add_user(&db, "bob@openline.test", "pw-b");
    let dir = scratch_dir("cluster-presence");
    let start = |n: &str| {
        let control = dir.join(format!("{n}.sock"));
        Subject::start_on(&db, &["--node", n, "--control", control.to_str().unwrap()])
    };
    let (n1, n2) = (start("n1"), start("n2"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut alice = Phone::new("alice", DOMAIN, "pw-a", n1.udp);
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", n2.udp);
    let ok = subscribe(&mut alice, "bob@openline.test", 600, None, "presence");
    assert_eq!(status(&ok), Some(200), "{}", String::from_utf8_lossy(&ok));
    assert_eq!(
        next_notify(&mut alice).1,
        Some(false),
        "nobody registered yet"
    );
    assert_eq!(bob.register(300), 200);
    assert_eq!(
        next_notify(&mut alice).1,
        Some(true),
        "bob came online at n2"
    );
    // bob's note, published through n2, reaches alice's subscription at n1.
    let published = publish(
        &mut bob,
        &pidf("bob@openline.test", "open", "in a meeting"),
        "",
    );
    assert_eq!(status(&published), Some(200));
    let (notify, open) = next_notify(&mut alice);
    assert_eq!(open, Some(true));
    assert!(notify.body().contains("in a meeting"), "{}", notify.body());
    // Its refresh may come through n1 (DNS SRV gave bob the other node): n1 knows its tag.
    let etag = header(&published, "SIP-ETag", None).unwrap();
    bob.set_server(n1.udp);
    let refreshed = publish(&mut bob, "", &format!("SIP-If-Match: {etag}\r\n"));
    assert_eq!(
        status(&refreshed),
        Some(200),
        "{}",
        String::from_utf8_lossy(&refreshed)
    );
    bob.set_server(n2.udp);
    assert_eq!(bob.register(0), 200);
    assert_eq!(next_notify(&mut alice).1, Some(false), "bob left at n2");
}
