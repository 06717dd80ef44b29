//! The full-screen front end's terminal side: raw mode and the alternate screen while it runs
//! (restored on every way out, panics included, by ratatui's init), keys and resizes read on a
//! thread of their own and handed to the loop, and the screen drawn from the [`App`].

use super::Input;
use crate::screen::app::App;
use crate::screen::history::History;
use crate::screen::view;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// The screen: its state, its terminal and the history it keeps.
pub struct Screen {
    /// What is shown.
    pub app: App,
    terminal: DefaultTerminal,
    /// Where conversations are kept.
    pub history: History,
}

impl Screen {
    /// Takes over the terminal; keys and resizes go to `inputs`.
    pub fn start(app: App, history: History, inputs: UnboundedSender<Input>) -> Screen {
        let terminal = ratatui::init();
        #[allow(clippy::disallowed_methods)]
        // the terminal's blocking reader lives on its own thread
        std::thread::spawn(move || {
            loop {
                let input = match event::read() {
                    Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Input::Key(key),
                    Ok(Event::Resize(..)) => Input::Redraw,
                    Ok(_) => continue,
                    Err(_) => Input::Closed,
                };
                let closed = matches!(input, Input::Closed);
                if inputs.send(input).is_err() || closed {
                    return;
                }
            }
        });
        Screen {
            app,
            terminal,
            history,
        }
    }

    /// Draws the whole screen as the state says now.
    pub fn draw(&mut self, now: Instant) {
        let app = &self.app;
        let _ = self.terminal.draw(|frame| view::draw(frame, app, now));
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
