//! The headless front end (ARCHITECTURE.md, Interfaces): a command per line on stdin, read
//! into the same [`Command`]s the screen makes from keys; one JSON event per line on stdout.

use crate::phone::PhoneEvent;
use crate::screen::app::{Command, aor};
use crate::ua::RegEvent;
use crate::ua::presence::Seen;
use serde_json::json;
use std::io::Write as _;

/// A stdin line as a command, or why it is not one.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let mut words = line.trim().splitn(3, ' ');
    Ok(Some(match (words.next(), words.next(), words.next()) {
        (Some("msg"), Some(to), Some(text)) => Command::Message {
            to: aor(to),
            text: text.to_string(),
        },
        (Some("call"), Some(to), None) => Command::Call(to.to_string()),
        (Some("answer"), None, None) => Command::Answer,
        (Some("hangup"), None, None) => Command::Hangup,
        (Some("hold"), None, None) => Command::Hold(true),
        (Some("resume"), None, None) => Command::Hold(false),
        (Some("dtmf"), Some(digits), None) => Command::Dtmf(digits.to_string()),
        (Some("quit"), None, None) => Command::Quit,
        (Some("watch"), Some(who), None) => Command::Watch(aor(who)),
        (Some("note"), None, None) => Command::Note(None),
        (Some("note"), Some(first), rest) => Command::Note(Some(match rest {
            Some(rest) => format!("{first} {rest}"),
            None => first.to_string(),
        })),
        (Some(""), None, None) => return Ok(None),
        _ => return Err(format!("not a command: {line}")),
    }))
}

/// One event as a JSON line on stdout.
pub fn emit(event: &PhoneEvent) {
    let line = match event {
        PhoneEvent::Registration(RegEvent::Registered { expires }) => {
            json!({"event": "registered", "expires": expires})
        }
        PhoneEvent::Registration(RegEvent::Unregistered) => json!({"event": "unregistered"}),
        PhoneEvent::Registration(RegEvent::Failed { code, reason }) => {
            json!({"event": "registration_failed", "code": code, "reason": reason})
        }
        PhoneEvent::Message(m) => json!({
            "event": "message", "from": m.from, "to": m.to, "text": m.text,
            "date": m.date, "sent_by_me": m.sent_by_me,
        }),
        PhoneEvent::MessageResult { to, status, reason } => {
            json!({"event": "message_result", "to": to, "status": status, "reason": reason})
        }
        PhoneEvent::IncomingCall { from } => json!({"event": "incoming_call", "from": from}),
        PhoneEvent::CallState {
            state,
            remote,
            codec,
            srtp,
        } => json!({
            "event": "call_state", "state": state.as_str(), "remote": remote,
            "codec": codec, "srtp": srtp,
        }),
        PhoneEvent::CallEnded {
            remote,
            code,
            reason,
        } => json!({"event": "call_ended", "remote": remote, "code": code, "reason": reason}),
        PhoneEvent::CallRefused(reason) => json!({"event": "error", "reason": reason}),
        PhoneEvent::Dtmf(digit) => json!({"event": "dtmf", "digit": digit.to_string()}),
        PhoneEvent::Presence { who, seen } => {
            let (state, note) = match seen {
                Seen::Known(s) => (if s.open { "online" } else { "offline" }, s.note.clone()),
                Seen::Pending => ("pending", None),
                Seen::Unknown => ("unknown", None),
            };
            json!({"event": "presence", "who": who, "state": state, "note": note})
        }
        PhoneEvent::NoteSet { ok, note } => json!({"event": "note_set", "ok": ok, "note": note}),
        PhoneEvent::MediaAddress(address) => {
            json!({"event": "media_address", "address": address.to_string()})
        }
        PhoneEvent::MediaStats(media, jitter) => json!({
            "event": "media_stats", "sent": media.sent, "received": media.received,
            "rejected": media.rejected, "played": jitter.played, "lost": jitter.lost,
            "late": jitter.late, "dropped": jitter.dropped, "waited": jitter.waited,
        }),
    };
    say(&line);
}

/// A JSON line on stdout, flushed at once (a test or script reads it as it comes).
pub fn say(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// An error for the user as a JSON line.
pub fn error(reason: &str) {
    say(&json!({"event": "error", "reason": reason}));
}
