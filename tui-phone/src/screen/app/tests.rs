#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;
use crate::screen::view;
use crate::ua::chat::Incoming;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn type_line(app: &mut App, text: &str) -> Option<Command> {
    for c in text.chars() {
        assert_eq!(app.on_key(key(KeyCode::Char(c))), None);
    }
    app.on_key(key(KeyCode::Enter))
}

/// The screen as text, `width` x `height`.
fn screen(app: &App, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| view::draw(f, app, Instant::now())).unwrap();
    let buffer = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn typing_adds_a_contact_writes_to_it_and_commands_come_out() {
    let mut app = App::new("alice@club-a.test");
    assert_eq!(type_line(&mut app, "hello"), None, "no contact yet");
    assert!(app.notice.contains("/add"));
    assert_eq!(type_line(&mut app, "/add bob@club-b.test"), None);
    assert_eq!(
        type_line(&mut app, "hi bob"),
        Some(Command::Message {
            to: "sip:bob@club-b.test".into(),
            text: "hi bob".into()
        })
    );
    assert_eq!(
        app.on_key(key(KeyCode::F(5))),
        Some(Command::Call("sip:bob@club-b.test".into()))
    );
    assert_eq!(
        type_line(&mut app, "/dtmf 12#"),
        Some(Command::Dtmf("12#".into()))
    );
    assert_eq!(type_line(&mut app, "/nonsense"), None);
    assert!(app.notice.contains("not a command"));
    assert_eq!(
        app.take_unsaved(),
        vec![
            Unsaved::Contact("sip:bob@club-b.test".into()),
            Unsaved::Line(
                "sip:bob@club-b.test".into(),
                Line {
                    mine: true,
                    text: "hi bob".into(),
                    date: None
                }
            ),
        ]
    );
}

#[test]
fn messages_from_others_count_as_unread_until_their_contact_is_selected() {
    let mut app = App::new("alice@club-a.test");
    type_line(&mut app, "/add bob@club-b.test");
    let from_carol = PhoneEvent::Message(Incoming {
        from: "sip:carol@club-c.test".into(),
        to: "sip:alice@club-a.test".into(),
        text: "are you there?".into(),
        date: Some("Thu, 26 Nov 2026 18:00:00 GMT".into()),
        sent_by_me: false,
    });
    app.on_event(Instant::now(), &from_carol);
    assert_eq!(app.contacts[1].unread, 1);
    let shown = screen(&app, 100, 20);
    assert!(shown.contains("carol@club-c.test (1)"), "{shown}");
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.contacts[1].unread, 0);
    let shown = screen(&app, 100, 20);
    assert!(shown.contains("are you there?"), "{shown}");
    assert!(
        shown.contains("18:00:00"),
        "the stored message's date: {shown}"
    );
}

#[test]
fn the_call_bar_and_status_line_follow_the_phone_and_survive_a_resize() {
    let mut app = App::new("alice@club-a.test");
    app.on_event(
        Instant::now(),
        &PhoneEvent::Registration(RegEvent::Registered { expires: 600 }),
    );
    app.on_event(
        Instant::now(),
        &PhoneEvent::CallState {
            state: CallState::Established,
            remote: "sip:bob@club-b.test".into(),
            codec: Some("opus"),
            srtp: true,
        },
    );
    for (w, h) in [(120, 30), (60, 12), (140, 40)] {
        let shown = screen(&app, w, h);
        assert!(
            shown.contains("Call: sip:bob@club-b.test - established 0:00 [opus, SRTP]"),
            "{w}x{h}:\n{shown}"
        );
        assert!(shown.contains("registered (600 s)"), "{w}x{h}:\n{shown}");
        assert!(shown.contains("F5 call"), "key help at {w}x{h}:\n{shown}");
    }
    app.on_event(
        Instant::now(),
        &PhoneEvent::CallEnded {
            remote: "sip:bob@club-b.test".into(),
            code: 0,
            reason: "the other side hung up".into(),
        },
    );
    let shown = screen(&app, 120, 30);
    assert!(shown.contains("No call"));
    assert!(shown.contains("ended: the other side hung up"), "{shown}");
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Command::Quit)
    );
}
