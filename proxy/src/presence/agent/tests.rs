#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;

const BOB: &str = "sip:bob@club-a.test";

fn dialog(subscriber: &str, call_id: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        their_tag: "t1".into(),
        our_tag: "o1".into(),
        subscriber: subscriber.into(),
        target: format!("{subscriber};transport=udp"),
        route_set: Vec::new(),
    }
}

fn subscribe(
    agent: &mut PresenceAgent,
    now: Instant,
    call_id: &str,
    expires: Option<u32>,
    authorized: bool,
) -> SubscribeOutcome {
    agent.subscribe(
        now,
        SubscribeRequest {
            presentity: BOB,
            dialog: dialog("sip:alice@club-a.test", call_id),
            expires,
            authorized,
        },
    )
}

fn notifies(agent: &mut PresenceAgent) -> Vec<Notify> {
    std::iter::from_fn(|| agent.poll_notify()).collect()
}

fn basic(n: &Notify) -> Option<bool> {
    n.body
        .as_ref()
        .map(|b| pidf::parse(b.as_bytes()).unwrap().open)
}

#[test]
fn a_subscriber_hears_bob_come_online_publish_a_note_and_go_offline() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    assert_eq!(
        subscribe(&mut agent, now, "c1", None, true),
        SubscribeOutcome::Accepted {
            code: 200,
            expires: 3_600,
            subscription: SubscriptionId(1),
        }
    );
    let first = notifies(&mut agent);
    assert_eq!(first.len(), 1, "a NOTIFY at once");
    assert_eq!(first[0].state, "active;expires=3600");
    assert_eq!(basic(&first[0]), Some(false), "nobody registered: closed");
    assert_eq!(first[0].cseq, 1);

    agent.devices_changed(now, BOB, 1);
    let online = notifies(&mut agent);
    assert_eq!(online.len(), 1);
    assert_eq!(basic(&online[0]), Some(true));
    assert_eq!(online[0].cseq, 2);
    agent.devices_changed(now, BOB, 2);
    assert!(
        notifies(&mut agent).is_empty(),
        "a second device changes nothing visible"
    );

    let (etag, expires) = agent
        .publish(
            now,
            BOB,
            None,
            Some(600),
            Some(Status {
                open: true,
                note: Some("in a meeting".into()),
            }),
        )
        .unwrap();
    assert_eq!(expires, 600);
    let noted = notifies(&mut agent);
    assert!(noted[0].body.as_ref().unwrap().contains("in a meeting"));
    // A refresh (etag, no body) keeps the note and says nothing new.
    let (etag2, _) = agent
        .publish(now, BOB, Some(&etag), Some(600), None)
        .unwrap();
    assert_ne!(etag, etag2, "a new entity tag each time");
    assert!(notifies(&mut agent).is_empty());
    assert_eq!(
        agent.publish(now, BOB, Some("nope"), None, None),
        Err((
            412,
            "Conditional Request Failed (unknown entity tag)".into()
        ))
    );

    agent.devices_changed(now, BOB, 0);
    let offline = notifies(&mut agent);
    assert_eq!(basic(&offline[0]), Some(false));
    assert!(
        offline[0].body.as_ref().unwrap().contains("in a meeting"),
        "the note stays"
    );
}

#[test]
fn unsubscribing_refreshing_and_expiry_end_with_a_terminated_notify() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    subscribe(&mut agent, now, "c1", Some(600), true);
    notifies(&mut agent);
    // Refresh later: the same dialog, a new expiry.
    let later = now + Duration::from_secs(500);
    assert_eq!(
        subscribe(&mut agent, later, "c1", Some(600), true),
        SubscribeOutcome::Accepted {
            code: 200,
            expires: 600,
            subscription: SubscriptionId(1),
        }
    );
    let refreshed = notifies(&mut agent);
    assert_eq!(refreshed[0].state, "active;expires=600");
    assert_eq!(agent.len(), 1);
    assert_eq!(agent.poll_timeout(), Some(later + Duration::from_secs(600)));
    // It expires.
    agent.handle_timeout(later + Duration::from_secs(600));
    let ended = notifies(&mut agent);
    assert_eq!(ended[0].state, "terminated;reason=timeout");
    assert!(agent.is_empty());
    // A new one, then Expires: 0.
    subscribe(&mut agent, now, "c2", None, true);
    notifies(&mut agent);
    subscribe(&mut agent, now, "c2", Some(0), true);
    let gone = notifies(&mut agent);
    assert_eq!(gone.len(), 1);
    assert!(gone[0].state.starts_with("terminated"));
    assert!(agent.is_empty());
}

#[test]
fn an_unauthorized_subscriber_is_pending_and_learns_nothing() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    agent.devices_changed(now, BOB, 1);
    agent
        .publish(
            now,
            BOB,
            None,
            None,
            Some(Status {
                open: true,
                note: Some("secret".into()),
            }),
        )
        .unwrap();
    assert_eq!(
        subscribe(&mut agent, now, "c1", None, false),
        SubscribeOutcome::Accepted {
            code: 202,
            expires: 3_600,
            subscription: SubscriptionId(1),
        }
    );
    let n = notifies(&mut agent);
    assert_eq!(n[0].state, "pending;expires=3600");
    assert_eq!(n[0].body, None);
    agent.devices_changed(now, BOB, 0);
    let later = notifies(&mut agent);
    assert!(later.iter().all(|n| n.body.is_none()), "still nothing");
}

#[test]
fn limits_too_brief_and_a_fetch() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig {
        per_subscriber: 2,
        ..PresenceConfig::default()
    });
    assert!(matches!(
        subscribe(&mut agent, now, "c0", Some(5), true),
        SubscribeOutcome::Refused { code: 423, .. }
    ));
    subscribe(&mut agent, now, "c1", None, true);
    subscribe(&mut agent, now, "c2", None, true);
    assert!(matches!(
        subscribe(&mut agent, now, "c3", None, true),
        SubscribeOutcome::Refused { code: 403, .. }
    ));
    notifies(&mut agent);
    // A fetch: one NOTIFY with the state, terminated, nothing kept.
    assert_eq!(
        subscribe(&mut agent, now, "c4", Some(0), true),
        SubscribeOutcome::Accepted {
            code: 200,
            expires: 0,
            subscription: SubscriptionId(3),
        }
    );
    let fetched = notifies(&mut agent);
    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].state.starts_with("terminated") && fetched[0].body.is_some());
    assert_eq!(agent.len(), 2);
    // A NOTIFY that fails ends its subscription quietly.
    agent.notify_failed(SubscriptionId(2));
    assert_eq!(agent.len(), 1);
}

#[test]
fn a_publication_that_is_not_refreshed_lapses_and_subscribers_hear_it() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    agent.devices_changed(now, BOB, 1);
    subscribe(&mut agent, now, "c1", None, true);
    agent
        .publish(
            now,
            BOB,
            None,
            Some(120),
            Some(Status {
                open: false,
                note: Some("away".into()),
            }),
        )
        .unwrap();
    let n = notifies(&mut agent);
    assert_eq!(
        basic(n.last().unwrap()),
        Some(false),
        "published closed wins over online"
    );
    agent.handle_timeout(now + Duration::from_secs(120));
    let n = notifies(&mut agent);
    assert_eq!(
        basic(&n[0]),
        Some(true),
        "the publication lapsed: online again"
    );
    assert!(!n[0].body.as_ref().unwrap().contains("away"));
}

#[test]
fn a_pending_subscriber_becomes_active_once_allowed() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    agent.devices_changed(now, BOB, 1);
    subscribe(&mut agent, now, "c1", None, false);
    assert_eq!(notifies(&mut agent)[0].body, None);
    agent.authorize(now, BOB, "sip:someone@else.test");
    assert!(notifies(&mut agent).is_empty(), "another watcher: nothing");
    agent.authorize(now, BOB, "sip:alice@club-a.test");
    let n = notifies(&mut agent);
    assert_eq!(n.len(), 1);
    assert!(n[0].state.starts_with("active"));
    assert_eq!(basic(&n[0]), Some(true));
    agent.authorize(now, BOB, "sip:alice@club-a.test");
    assert!(notifies(&mut agent).is_empty(), "already active");
}

#[test]
fn a_revoked_watcher_turns_pending_and_learns_nothing_more() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    agent.devices_changed(now, BOB, 1);
    subscribe(&mut agent, now, "c1", None, true);
    notifies(&mut agent);
    agent.revoke(now, BOB, "sip:alice@club-a.test");
    let n = notifies(&mut agent);
    assert_eq!(n.len(), 1);
    assert!(n[0].state.starts_with("pending"));
    assert_eq!(n[0].body, None);
    agent.devices_changed(now, BOB, 0);
    assert!(notifies(&mut agent).iter().all(|n| n.body.is_none()));
}

#[test]
fn a_refresh_moves_the_expiry_and_an_ended_subscription_leaves_no_timer() {
    let t0 = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    subscribe(&mut agent, t0, "c1", Some(60), true);
    subscribe(&mut agent, t0, "c2", Some(120), true);
    assert_eq!(agent.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    let t1 = t0 + Duration::from_secs(30);
    subscribe(&mut agent, t1, "c1", Some(600), true);
    assert_eq!(
        agent.poll_timeout(),
        Some(t0 + Duration::from_secs(120)),
        "c1 refreshed: c2 expires first"
    );
    notifies(&mut agent);
    agent.handle_timeout(t0 + Duration::from_secs(121));
    let ended = notifies(&mut agent);
    assert_eq!(ended.len(), 1, "only c2 ends");
    assert_eq!(ended[0].dialog.call_id, "c2");
    assert_eq!(agent.len(), 1);
    subscribe(&mut agent, t1, "c1", Some(0), true);
    assert_eq!(agent.len(), 0);
    assert_eq!(agent.poll_timeout(), None, "no timer left behind");
    agent.devices_changed(t1, BOB, 1);
    assert!(
        notifies(&mut agent)
            .iter()
            .all(|n| n.state.starts_with("terminated"))
    );
    // The per-subscriber count came back down with them: the limit allows new ones.
    assert!(matches!(
        subscribe(&mut agent, t1, "c3", None, true),
        SubscribeOutcome::Accepted { .. }
    ));
}

#[test]
fn a_publication_refreshed_within_the_same_instant_keeps_its_timer() {
    let t0 = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    let open = Status {
        open: true,
        note: None,
    };
    let (etag, _) = agent.publish(t0, BOB, None, Some(600), Some(open)).unwrap();
    // Same expiry instant as the entry it replaces: the index must keep exactly one.
    agent
        .publish(t0, BOB, Some(&etag), Some(600), None)
        .unwrap();
    assert_eq!(agent.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    agent.handle_timeout(t0 + Duration::from_secs(600));
    assert!(!agent.status(BOB).open, "the publication expired");
    assert_eq!(agent.poll_timeout(), None);
}

#[test]
fn a_server_going_away_deactivates_every_subscription() {
    let now = Instant::now();
    let mut agent = PresenceAgent::new(PresenceConfig::default());
    subscribe(&mut agent, now, "c1", None, true);
    subscribe(&mut agent, now, "c2", None, false);
    notifies(&mut agent);
    agent.deactivate_all(now);
    let last = notifies(&mut agent);
    assert_eq!(last.len(), 2);
    assert!(
        last.iter()
            .all(|n| n.state == "terminated;reason=deactivated")
    );
    assert_eq!(agent.len(), 0);
    assert_eq!(agent.poll_timeout(), None);
}
