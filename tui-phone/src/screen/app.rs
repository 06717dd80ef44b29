//! What the screen shows, as plain data: the contacts, each one's conversation, the call bar,
//! the status line, and what the user is typing. Phone events and key presses go in; commands
//! for the phone come out. No terminal here, so it is tested like the rest of the phone.

use crate::phone::PhoneEvent;
use crate::ua::RegEvent;
use crate::ua::call::CallState;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Instant;

/// What the user asked the phone to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Text `text` to `to`.
    Message {
        /// `sip:user@domain`.
        to: String,
        /// The text.
        text: String,
    },
    /// Call `to`.
    Call(String),
    /// Answer the ringing call.
    Answer,
    /// Hang up, cancel or decline.
    Hangup,
    /// Hold (true) or resume (false).
    Hold(bool),
    /// Send DTMF digits.
    Dtmf(String),
    /// Watch a contact's presence.
    Watch(String),
    /// Publish our note (none: clear it).
    Note(Option<String>),
    /// Leave.
    Quit,
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Written by this user (on this device or another one).
    pub mine: bool,
    /// The text.
    pub text: String,
    /// When, as the server or the phone says (`None`: just now).
    pub date: Option<String>,
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// `sip:user@domain`.
    pub aor: String,
    /// Messages not yet seen (it was not the selected contact).
    pub unread: usize,
    /// The conversation.
    pub lines: Vec<Line>,
    /// What their presence says, once known.
    pub presence: Option<crate::ua::presence::Seen>,
}

/// The call as the call bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBar {
    /// The other side.
    pub remote: String,
    /// Its state word.
    pub state: &'static str,
    /// Since when it is answered (for the duration).
    pub since: Option<Instant>,
    /// Codec and SRTP, once media run.
    pub media: Option<(&'static str, bool)>,
}

/// The screen's state.
#[derive(Debug)]
pub struct App {
    /// Who we are, `user@domain`.
    pub me: String,
    /// The registration, in words.
    pub registration: String,
    /// Contacts in the order shown.
    pub contacts: Vec<Contact>,
    /// The selected contact's index.
    pub selected: usize,
    /// What is being typed.
    pub input: String,
    /// The call, when there is one.
    pub call: Option<CallBar>,
    /// The last notice (a call that ended and why, an error).
    pub notice: String,
    /// Contacts and lines not yet written to the history.
    unsaved: Vec<Unsaved>,
    /// Contacts whose presence is not watched yet.
    to_watch: Vec<String>,
}

/// What the history has yet to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsaved {
    /// A new contact.
    Contact(String),
    /// A new line in the conversation with a contact.
    Line(String, Line),
}

/// `user@domain` or `sip:user@domain` as `sip:user@domain`.
pub fn aor(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("sip:") {
        s.to_string()
    } else {
        format!("sip:{s}")
    }
}

impl App {
    /// An empty screen for `me`.
    pub fn new(me: &str) -> Self {
        App {
            me: me.to_string(),
            registration: "registering...".into(),
            contacts: Vec::new(),
            selected: 0,
            input: String::new(),
            call: None,
            notice: String::new(),
            unsaved: Vec::new(),
            to_watch: Vec::new(),
        }
    }

    /// The contacts to start watching (each once).
    pub fn take_to_watch(&mut self) -> Vec<String> {
        std::mem::take(&mut self.to_watch)
    }

    /// What the history has yet to keep, oldest first (and forgotten here).
    pub fn take_unsaved(&mut self) -> Vec<Unsaved> {
        std::mem::take(&mut self.unsaved)
    }

    /// The contact `aor`, added when new.
    pub fn contact(&mut self, aor_text: &str) -> &mut Contact {
        let aor = aor(aor_text);
        let index = match self.contacts.iter().position(|c| c.aor == aor) {
            Some(i) => i,
            None => {
                self.unsaved.push(Unsaved::Contact(aor.clone()));
                self.to_watch.push(aor.clone());
                self.contacts.push(Contact {
                    aor,
                    unread: 0,
                    lines: Vec::new(),
                    presence: None,
                });
                self.contacts.len() - 1
            }
        };
        &mut self.contacts[index]
    }

    /// The selected contact's address.
    pub fn selected_aor(&self) -> Option<&str> {
        self.contacts.get(self.selected).map(|c| c.aor.as_str())
    }

    fn add_line(&mut self, who: &str, line: Line) {
        let selected = self.selected_aor().map(str::to_string);
        let c = self.contact(who);
        let seen = selected.as_deref() == Some(c.aor.as_str());
        if !seen && !line.mine {
            c.unread += 1;
        }
        let aor = c.aor.clone();
        c.lines.push(line.clone());
        self.unsaved.push(Unsaved::Line(aor, line));
    }

    /// A phone event changes what is shown.
    pub fn on_event(&mut self, now: Instant, event: &PhoneEvent) {
        match event {
            PhoneEvent::Registration(RegEvent::Registered { expires }) => {
                self.registration = format!("registered ({expires} s)");
            }
            PhoneEvent::Registration(RegEvent::Unregistered) => {
                self.registration = "unregistered".into();
            }
            PhoneEvent::Registration(RegEvent::Failed { code, reason }) => {
                self.registration = format!("not registered: {code} {reason}");
            }
            PhoneEvent::Message(m) => {
                let (who, mine) = if m.sent_by_me {
                    (m.to.clone(), true)
                } else {
                    (m.from.clone(), false)
                };
                self.add_line(
                    &who,
                    Line {
                        mine,
                        text: m.text.clone(),
                        date: m.date.clone(),
                    },
                );
            }
            PhoneEvent::MessageResult { to, status, reason } => {
                self.notice = match status {
                    200 => format!("delivered to {to}"),
                    202 => format!("stored for {to} (offline)"),
                    _ => format!("not sent to {to}: {status} {reason}"),
                };
            }
            PhoneEvent::IncomingCall { from } => {
                self.contact(from);
                self.notice = format!("{from} is calling: F6 answers, F7 declines");
            }
            PhoneEvent::CallState {
                state,
                remote,
                codec,
                srtp,
            } => {
                let since = match (&self.call, state) {
                    (Some(c), _) if c.since.is_some() => c.since,
                    (_, CallState::Established) => Some(now),
                    _ => None,
                };
                self.call = Some(CallBar {
                    remote: remote.clone(),
                    state: state.as_str(),
                    since,
                    media: codec.map(|c| (c, *srtp)),
                });
            }
            PhoneEvent::CallEnded {
                remote,
                code,
                reason,
            } => {
                self.call = None;
                self.notice = if *code == 0 {
                    format!("call with {remote} ended: {reason}")
                } else {
                    format!("call with {remote} ended: {code} {reason}")
                };
            }
            PhoneEvent::CallRefused(reason) => self.notice = reason.clone(),
            PhoneEvent::Dtmf(d) => self.notice = format!("the other side pressed {d}"),
            PhoneEvent::Presence { who, seen } => {
                self.contact(who).presence = Some(seen.clone());
            }
            PhoneEvent::NoteSet { ok, note } => {
                self.notice = match (ok, note) {
                    (true, Some(n)) => format!("your note: {n}"),
                    (true, None) => "your note is cleared".into(),
                    (false, _) => "the server did not take your note".into(),
                };
            }
            PhoneEvent::MediaAddress(address) => {
                self.notice = format!("media reachable at {address} (STUN)");
            }
            PhoneEvent::MediaStats(..) => {}
        }
    }

    /// A key press; what the phone should do about it, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => Some(Command::Quit),
            KeyCode::Char(c) => {
                self.input.push(c);
                None
            }
            KeyCode::Backspace => {
                self.input.pop();
                None
            }
            KeyCode::Up => {
                self.select(self.selected.saturating_sub(1));
                None
            }
            KeyCode::Down | KeyCode::Tab => {
                let next = if self.selected + 1 < self.contacts.len() {
                    self.selected + 1
                } else {
                    0
                };
                self.select(next);
                None
            }
            KeyCode::Enter => self.submit(),
            KeyCode::F(5) => match self.selected_aor() {
                Some(to) => Some(Command::Call(to.to_string())),
                None => {
                    self.notice = "no contact to call: /add user@domain first".into();
                    None
                }
            },
            KeyCode::F(6) => Some(Command::Answer),
            KeyCode::F(7) => Some(Command::Hangup),
            KeyCode::F(8) => {
                let held = self.call.as_ref().is_some_and(|c| c.state == "on_hold");
                Some(Command::Hold(!held))
            }
            _ => None,
        }
    }

    fn select(&mut self, index: usize) {
        if let Some(c) = self.contacts.get_mut(index) {
            c.unread = 0;
            self.selected = index;
        }
    }

    /// Enter: a /command, or a message to the selected contact.
    fn submit(&mut self) -> Option<Command> {
        let line = std::mem::take(&mut self.input);
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match (word, rest.is_empty()) {
            ("/add", false) => {
                let aor = aor(rest);
                self.contact(&aor);
                let index = self.contacts.iter().position(|c| c.aor == aor);
                self.select(index.unwrap_or(0));
                None
            }
            ("/call", false) => Some(Command::Call(aor(rest))),
            ("/call", true) => self.selected_aor().map(|to| Command::Call(to.to_string())),
            ("/answer", true) => Some(Command::Answer),
            ("/hangup", true) => Some(Command::Hangup),
            ("/hold", true) => Some(Command::Hold(true)),
            ("/resume", true) => Some(Command::Hold(false)),
            ("/dtmf", false) => Some(Command::Dtmf(rest.to_string())),
            ("/quit", true) => Some(Command::Quit),
            ("/note", empty) => Some(Command::Note((!empty).then(|| rest.to_string()))),
            _ if word.starts_with('/') => {
                self.notice = format!("not a command: {line}");
                None
            }
            _ => {
                let Some(to) = self.selected_aor().map(str::to_string) else {
                    self.notice = "no contact to write to: /add user@domain first".into();
                    return None;
                };
                self.add_line(
                    &to,
                    Line {
                        mine: true,
                        text: line.to_string(),
                        date: None,
                    },
                );
                Some(Command::Message {
                    to,
                    text: line.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
