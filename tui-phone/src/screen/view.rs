//! Draws the [`App`]: the call bar on top, contacts on the left, the selected conversation and
//! the input line on the right, the status line and the key help at the bottom. Drawn whole
//! each time from the state, so a resize redraws cleanly.

use super::app::App;
use crate::ua::presence::Seen;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use std::time::Instant;

/// The key help shown at the bottom.
pub const KEY_HELP: &str = "Enter send | Up/Down contact | F5 call | F6 answer | F7 hang up | F8 hold | /add USER@DOMAIN | /note TEXT | /dtmf 123 | /quit";

/// `m:ss` since `since`.
fn duration(now: Instant, since: Instant) -> String {
    let s = now.saturating_duration_since(since).as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: Instant) {
    let [call_area, middle, status_area, help_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let call_text = match &app.call {
        Some(c) => {
            let mut s = format!("Call: {} - {}", c.remote, c.state);
            if let Some(since) = c.since {
                s.push_str(&format!(" {}", duration(now, since)));
            }
            if let Some((codec, srtp)) = c.media {
                s.push_str(&format!(" [{codec}{}]", if srtp { ", SRTP" } else { "" }));
            }
            s
        }
        None => "No call".to_string(),
    };
    frame.render_widget(
        Paragraph::new(call_text).style(Style::default().add_modifier(Modifier::BOLD)),
        call_area,
    );

    let [contacts_area, talk_area] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(middle);
    let items: Vec<ListItem<'_>> = app
        .contacts
        .iter()
        .map(|c| {
            let name = c.aor.trim_start_matches("sip:");
            let (mark, note) = match &c.presence {
                Some(Seen::Known(s)) => (if s.open { "+" } else { "-" }, s.note.as_deref()),
                Some(Seen::Pending) => ("?", None),
                Some(Seen::Unknown) | None => (" ", None),
            };
            let mut text = format!("{mark} {name}");
            if c.unread > 0 {
                text.push_str(&format!(" ({})", c.unread));
            }
            if let Some(note) = note {
                text.push_str(&format!(" - {note}"));
            }
            ListItem::new(text)
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(
        List::new(items)
            .block(Block::default().borders(Borders::ALL).title("Contacts"))
            .highlight_symbol("> ")
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        contacts_area,
        &mut state,
    );

    let [conversation_area, input_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(talk_area);
    let selected = app.contacts.get(app.selected);
    let title = selected.map_or("Conversation".to_string(), |c| {
        c.aor.trim_start_matches("sip:").to_string()
    });
    let lines: Vec<Line<'_>> = selected
        .map(|c| {
            c.lines
                .iter()
                .map(|l| {
                    let who = if l.mine { "me" } else { "them" };
                    let when = l
                        .date
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    Line::from(vec![
                        Span::styled(
                            format!("{who}{when}: "),
                            Style::default().add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(l.text.as_str()),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    // Show the end of the conversation: scroll so the last lines fit.
    let inner_height = conversation_area.height.saturating_sub(2);
    let scroll = (lines.len() as u16).saturating_sub(inner_height);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(title))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        conversation_area,
    );
    frame.render_widget(
        Paragraph::new(app.input.as_str()).block(
            Block::default()
                .borders(Borders::ALL)
                .title("Message or /command"),
        ),
        input_area,
    );

    let status = if app.notice.is_empty() {
        format!("{} - {}", app.me, app.registration)
    } else {
        format!("{} - {} - {}", app.me, app.registration, app.notice)
    };
    frame.render_widget(Paragraph::new(status), status_area);
    frame.render_widget(
        Paragraph::new(KEY_HELP).style(Style::default().add_modifier(Modifier::DIM)),
        help_area,
    );
}
