//! The phone's driver: the sockets, the clock and the front end around the sans-IO [`Phone`].
//! One loop serves both front ends: the headless one (stdin lines, JSON events) and the
//! screen (keys, the drawn [`App`](crate::screen::app::App)); both turn what the user does into
//! the same [`Command`]s.

pub mod headless;
pub mod terminal;

use crate::phone::{Phone, PhoneEvent};
use crate::screen::app::Command;
use crate::ua::RegEvent;
use ratatui::crossterm::event::KeyEvent;
use std::time::{Duration, Instant};
use terminal::Screen;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

/// What the user did.
#[derive(Debug)]
pub enum Input {
    /// A command (from a stdin line).
    Command(Command),
    /// A stdin line that is not a command.
    Bad(String),
    /// A key on the screen.
    Key(KeyEvent),
    /// The terminal was resized.
    Redraw,
    /// No more input (stdin closed): as quit.
    Closed,
}

/// Who the user is talking to the phone through.
pub enum Front {
    /// stdin and stdout.
    Headless,
    /// The full screen.
    Screen(Box<Screen>),
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Carries out a command; `leaving` is set by quit.
fn apply(phone: &mut Phone, command: Command, leaving: &mut Option<Instant>) {
    let now = now();
    match command {
        Command::Message { to, text } => phone.send_message(now, &to, &text),
        Command::Call(to) => phone.dial(now, &to),
        Command::Answer => phone.answer(now),
        Command::Hangup => phone.hangup(now),
        Command::Hold(hold) => phone.hold(now, hold),
        Command::Dtmf(digits) => phone.dtmf(&digits),
        Command::Watch(who) => phone.watch(now, &who),
        Command::Note(note) => phone.set_note(now, note),
        Command::Quit if leaving.is_none() => {
            phone.quit(now);
            *leaving = Some(now + Duration::from_secs(3));
        }
        Command::Quit => {}
    }
}

/// Runs the phone until the user quits (and the registrar said goodbye, 3 s at most).
pub async fn run(
    phone: &mut Phone,
    (socket, media): (UdpSocket, UdpSocket),
    mut front: Front,
    mut inputs: UnboundedReceiver<Input>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65_536];
    let mut media_buf = vec![0u8; 2_048];
    let mut leaving: Option<Instant> = None;
    let mut inputs_closed = false;
    loop {
        while let Some(t) = phone.poll_transmit() {
            let _ = socket.send_to(&t.payload, t.destination.addr).await;
        }
        while let Some((to, packet)) = phone.poll_media_transmit() {
            let _ = media.send_to(&packet, to).await;
        }
        let mut goodbye = false;
        while let Some(e) = phone.poll_event() {
            goodbye |= matches!(
                e,
                PhoneEvent::Registration(RegEvent::Unregistered | RegEvent::Failed { .. })
            );
            match &mut front {
                Front::Headless => headless::emit(&e),
                Front::Screen(screen) => screen.app.on_event(now(), &e),
            }
        }
        let mut watched = false;
        if let Front::Screen(screen) = &mut front {
            for who in screen.app.take_to_watch() {
                phone.watch(now(), &who);
                watched = true;
            }
            if let Err(e) = screen.history.save(&mut screen.app).await {
                screen.app.notice = format!("history not saved: {e}");
            }
            screen.draw(now());
        }
        if watched {
            // The SUBSCRIBEs just made go out before we wait.
            continue;
        }
        if leaving.is_some() && goodbye || leaving.is_some_and(|at| at <= now()) {
            return Ok(());
        }
        let mut wake = [phone.poll_timeout(), leaving].into_iter().flatten().min();
        if matches!(front, Front::Screen(_)) {
            // The call bar's clock moves once a second.
            wake = Some(wake.map_or(now() + Duration::from_secs(1), |w| {
                w.min(now() + Duration::from_secs(1))
            }));
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                // An ICMP error from an earlier send shows up here: not a reason to stop.
                if let Ok((n, source)) = received {
                    phone.handle_datagram(now(), source, &buf[..n]);
                }
            }
            received = media.recv_from(&mut media_buf) => {
                if let Ok((n, _)) = received {
                    phone.handle_media(now(), &media_buf[..n]);
                }
            }
            input = inputs.recv(), if !inputs_closed => match (input.unwrap_or(Input::Closed), &mut front) {
                (Input::Command(c), _) => apply(phone, c, &mut leaving),
                (Input::Bad(line), _) => headless::error(&line),
                (Input::Key(key), Front::Screen(screen)) => {
                    if let Some(c) = screen.app.on_key(key) {
                        apply(phone, c, &mut leaving);
                    }
                }
                (Input::Closed, _) => {
                    inputs_closed = true;
                    apply(phone, Command::Quit, &mut leaving);
                }
                (Input::Key(_) | Input::Redraw, _) => {}
            },
            () = sleep_until(wake) => phone.handle_timeout(now()),
        }
    }
}

/// Sleeps until `at`; for ever without it.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
