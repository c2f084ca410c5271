//! The line-mode user interface of a client, shared by the native
//! `chatclient` and the WebAssembly client.
//!
//! [`Console`] reads lines the user typed, turns them into protocol steps of
//! a [`Client`], and renders what happens as lines of text. It keeps the
//! assignment's menu: after login it asks for an operation (`PM`, `DM` or
//! `EX`); `PM` asks for the message; `DM` shows who is online, asks for the
//! recipient, then the message. A few commands work at the menu too:
//! `/who`, `/msg USER TEXT`, `/quit` and `/help`.
//!
//! Lines typed before the console is ready for them (while it waits for the
//! server) are queued and used in order, so a script can pipe every line at
//! once.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::client::{Client, ClientConfig, ClientEvent, CloseReason};
use crate::session::{Operation, UsernameError, validate_username};
use crate::time::Instant;
use crate::wire::CloseCode;

/// The menu prompt.
pub const MENU_PROMPT: &str = "Operation (PM, DM, EX): ";

/// Settings of a console.
#[derive(Clone, Debug, Default)]
pub struct ConsoleConfig {
    /// The client's timers and limits.
    pub client: ClientConfig,
    /// Take passwords from the input lines (the next line after the server
    /// asks for one) instead of waiting for [`Console::submit_password`].
    /// For piped input; a terminal should prompt without echo instead.
    pub password_from_lines: bool,
}

/// What the console asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleOutput {
    /// Print this line on standard output.
    Line(String),
    /// Print this prompt without a newline (on a terminal only).
    Prompt(String),
    /// The server proved this key; a driver that pins keys on first use
    /// remembers it for this server.
    ServerKey([u8; crate::crypto::KEY_LEN]),
    /// Obtain a password and call [`Console::submit_password`]. `failures`
    /// counts the failed attempts so far.
    NeedPassword {
        /// True when the password registers a new account.
        new_user: bool,
        /// Failed attempts so far.
        failures: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Connecting,
    Password,
    LoggingIn,
    Menu,
    AwaitOpOk,
    PmText,
    AwaitOnline,
    DmTarget,
    DmText { to: String },
    Exiting,
    Done(u8),
}

/// A client with a line-mode user interface. See the [module docs](self).
#[derive(Debug)]
pub struct Console {
    client: Client,
    mode: Mode,
    lines: VecDeque<String>,
    eof: bool,
    failures: u32,
    silent_online: u32,
    /// PM and DM texts sent and not yet confirmed or refused: the server
    /// answers each, in order, so an error belongs to the oldest of them.
    unanswered_texts: u32,
    password_from_lines: bool,
    output: VecDeque<ConsoleOutput>,
}

impl Console {
    /// Starts a session as `username`; `random` must be 32 bytes from the
    /// OS (see [`Client::new`]).
    pub fn new(
        now: Instant,
        config: ConsoleConfig,
        random: [u8; 32],
        username: &str,
    ) -> Result<Console, UsernameError> {
        let client = Client::new(now, config.client, random, username)?;
        let password_from_lines = config.password_from_lines;
        let mut output = VecDeque::new();
        output.push_back(ConsoleOutput::Line(format!("Connecting as {username}...")));
        Ok(Console {
            client,
            mode: Mode::Connecting,
            lines: VecDeque::new(),
            eof: false,
            failures: 0,
            silent_online: 0,
            unanswered_texts: 0,
            password_from_lines,
            output,
        })
    }

    /// The protocol client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Gives the password asked for by [`ConsoleOutput::NeedPassword`].
    pub fn submit_password(&mut self, _now: Instant, password: &str) {
        if self.mode != Mode::Password {
            return;
        }
        match self.client.submit_password(password) {
            Ok(()) => self.mode = Mode::LoggingIn,
            Err(e) => {
                self.line(format!("! {e}"));
                self.failures += 1;
                self.ask_password(false);
            }
        }
    }

    /// A line the user typed, without its line ending.
    pub fn handle_line(&mut self, _now: Instant, line: &str) {
        self.lines.push_back(line.to_string());
        self.pump();
    }

    /// End of input: once the queued lines are used, the session ends as
    /// with EX.
    pub fn handle_eof(&mut self, _now: Instant) {
        self.eof = true;
        self.pump();
    }

    /// A datagram from the server.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        self.client.handle_datagram(now, bytes);
        self.drain_events();
    }

    /// Expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.drain_events();
    }

    /// The next datagram for the server.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.client.poll_transmit(now)
    }

    /// The next thing to show or do.
    pub fn poll_output(&mut self) -> Option<ConsoleOutput> {
        self.output.pop_front()
    }

    /// The next deadline for [`Console::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// Once the session is over: 0 after EX or end of input, 1 on failure.
    pub fn exit_code(&self) -> Option<u8> {
        match self.mode {
            Mode::Done(code) => Some(code),
            _ => None,
        }
    }

    fn line(&mut self, s: String) {
        self.output.push_back(ConsoleOutput::Line(s));
    }

    fn prompt(&mut self, s: &str) {
        self.output.push_back(ConsoleOutput::Prompt(s.to_string()));
    }

    fn enter_menu(&mut self) {
        self.mode = Mode::Menu;
        self.prompt(MENU_PROMPT);
    }

    fn ask_password(&mut self, new_user: bool) {
        self.mode = Mode::Password;
        self.output.push_back(ConsoleOutput::NeedPassword {
            new_user,
            failures: self.failures,
        });
    }

    /// Ends the session with exit code 1 and `message` (for a driver that
    /// cannot go on, e.g. a refused password it cannot replace). The server
    /// is told, so the session does not linger there.
    pub fn give_up(&mut self, message: &str) {
        self.finish(1, message.to_string());
    }

    fn finish(&mut self, code: u8, message: String) {
        if !matches!(self.mode, Mode::Done(_)) {
            if !message.is_empty() {
                self.line(message);
            }
            if code != 0 {
                self.client.abort();
            }
            self.mode = Mode::Done(code);
        }
    }

    fn exit(&mut self) {
        match self.client.request_operation(Operation::EX) {
            Ok(()) => self.mode = Mode::Exiting,
            Err(e) => self.finish(1, format!("! {e}")),
        }
    }

    fn accepts_input(&self) -> bool {
        matches!(
            self.mode,
            Mode::Menu | Mode::PmText | Mode::DmTarget | Mode::DmText { .. }
        )
    }

    fn pump(&mut self) {
        if self.mode == Mode::Password && self.password_from_lines {
            match self.lines.pop_front() {
                Some(password) => self.submit_password(Instant::ZERO, &password),
                None if self.eof => {
                    self.finish(1, "! no password: end of input".to_string());
                    return;
                }
                None => {}
            }
        }
        while self.accepts_input() {
            let Some(line) = self.lines.pop_front() else {
                if self.eof {
                    self.exit();
                }
                return;
            };
            self.input(&line);
        }
    }

    fn input(&mut self, line: &str) {
        match core::mem::replace(&mut self.mode, Mode::Menu) {
            Mode::Menu => self.menu(line),
            Mode::PmText => {
                match self.client.send_public(line) {
                    Ok(()) => self.unanswered_texts += 1,
                    Err(e) => self.line(format!("! {e}")),
                }
                self.enter_menu();
            }
            Mode::DmTarget => {
                let to = line.trim();
                match validate_username(to) {
                    Ok(()) => {
                        self.mode = Mode::DmText { to: to.to_string() };
                        self.prompt("Message: ");
                    }
                    Err(e) => {
                        self.line(format!("! {e}"));
                        self.enter_menu();
                    }
                }
            }
            Mode::DmText { to } => {
                match self.client.send_direct(&to, line) {
                    Ok(()) => self.unanswered_texts += 1,
                    Err(e) => self.line(format!("! {e}")),
                }
                self.enter_menu();
            }
            other => self.mode = other,
        }
    }

    fn menu(&mut self, line: &str) {
        let trimmed = line.trim();
        let (command, rest) = match trimmed.split_once(' ') {
            Some((c, r)) => (c, r.trim_start()),
            None => (trimmed, ""),
        };
        let result = match command.to_ascii_uppercase().as_str() {
            "" => {
                self.enter_menu();
                return;
            }
            "PM" => self
                .client
                .request_operation(Operation::PM)
                .map(|()| self.mode = Mode::AwaitOpOk),
            "DM" => self
                .client
                .request_operation(Operation::DM)
                .map(|()| self.mode = Mode::AwaitOnline),
            "EX" | "/QUIT" | "/EXIT" => {
                self.exit();
                return;
            }
            "/WHO" | "/USERS" | "/NAMES" => {
                self.client.request_online().map(|()| self.enter_menu())
            }
            "/MSG" | "/DM" => {
                let Some((to, text)) = rest.split_once(' ') else {
                    self.line("! usage: /msg USER TEXT".to_string());
                    self.enter_menu();
                    return;
                };
                let r = self
                    .client
                    .request_operation(Operation::DM)
                    .and_then(|()| self.client.send_direct(to, text.trim_start()));
                if r.is_ok() {
                    self.silent_online += 1;
                    self.unanswered_texts += 1;
                }
                r.map(|()| self.enter_menu())
            }
            "/HELP" => {
                for l in HELP {
                    self.line((*l).to_string());
                }
                self.enter_menu();
                return;
            }
            _ => {
                self.line(format!(
                    "! unknown operation {:?}: type PM, DM or EX (or /help)",
                    sanitize(trimmed)
                ));
                self.enter_menu();
                return;
            }
        };
        if let Err(e) = result {
            self.line(format!("! {e}"));
            self.enter_menu();
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            self.on_event(event);
        }
        self.pump();
    }

    fn on_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::ServerKey(key) => self.output.push_back(ConsoleOutput::ServerKey(key)),
            ClientEvent::PasswordRequired { name, new_user } => {
                if new_user {
                    self.line(format!(
                        "{name} is a new user: choose a password to register."
                    ));
                } else {
                    self.line(format!("{name} is registered: enter the password."));
                }
                self.ask_password(new_user);
            }
            ClientEvent::LoginFailed { message, .. } => {
                self.failures += 1;
                self.line(format!("! login failed: {}", sanitize(&message)));
                self.ask_password(false);
            }
            ClientEvent::LoggedIn {
                name,
                new_user,
                online,
            } => {
                let how = if new_user {
                    "registered and logged in"
                } else {
                    "logged in"
                };
                self.line(format!("{how} as {name}; online: {}", list(&online)));
                self.enter_menu();
            }
            ClientEvent::OperationReady(Operation::PM) if self.mode == Mode::AwaitOpOk => {
                self.mode = Mode::PmText;
                self.prompt("Message: ");
            }
            ClientEvent::OperationReady(_) => {}
            ClientEvent::Online(users) => {
                if self.mode == Mode::AwaitOnline {
                    self.line(format!("online: {}", list(&users)));
                    self.mode = Mode::DmTarget;
                    self.prompt("To: ");
                } else if self.silent_online > 0 {
                    self.silent_online -= 1;
                } else {
                    self.line(format!("online: {}", list(&users)));
                }
            }
            ClientEvent::Public { from, text } => {
                self.line(format!("[{}] {}", sanitize(&from), sanitize(&text)));
            }
            ClientEvent::Direct { from, text } => {
                self.line(format!("[DM from {}] {}", sanitize(&from), sanitize(&text)));
            }
            ClientEvent::Joined(user) => self.line(format!("* {} joined", sanitize(&user))),
            ClientEvent::Left { user, reason } => {
                self.line(format!(
                    "* {} left ({})",
                    sanitize(&user),
                    sanitize(&reason)
                ));
            }
            ClientEvent::Confirmed {
                op: Operation::DM,
                to,
                ..
            } => {
                self.unanswered_texts = self.unanswered_texts.saturating_sub(1);
                let to = to.unwrap_or_default();
                self.line(format!("ok: direct message delivered to {}", sanitize(&to)));
            }
            ClientEvent::Confirmed { recipients, .. } => {
                self.unanswered_texts = self.unanswered_texts.saturating_sub(1);
                let s = if recipients == 1 { "" } else { "s" };
                self.line(format!(
                    "ok: public message delivered to {recipients} user{s}"
                ));
            }
            ClientEvent::Error { message, .. } => {
                self.line(format!("! {}", sanitize(&message)));
                if self.unanswered_texts > 0 {
                    // The refusal of an earlier text, not of the operation
                    // the console is waiting for.
                    self.unanswered_texts -= 1;
                } else if matches!(self.mode, Mode::AwaitOpOk | Mode::AwaitOnline) {
                    self.enter_menu();
                }
            }
            ClientEvent::Closed(CloseReason::Exit) => self.finish(0, "bye".to_string()),
            ClientEvent::Closed(CloseReason::ServerClosed(CloseCode::Normal))
                if matches!(self.mode, Mode::Exiting) =>
            {
                // EX was sent and the server ended the session normally.
                self.finish(0, "bye".to_string());
            }
            ClientEvent::Closed(reason) => {
                self.finish(1, format!("! disconnected: {reason}"));
            }
        }
    }
}

const HELP: &[&str] = &[
    "operations:",
    "  PM              send a public message to everyone online (asks for the text)",
    "  DM              send a direct message (shows who is online, asks for recipient and text)",
    "  EX              exit (also /quit, or end of input)",
    "commands:",
    "  /who            list who is online            e.g. /who",
    "  /msg USER TEXT  direct message in one line    e.g. /msg bob see you at 5",
    "  /help           this help",
];

fn list(users: &[String]) -> String {
    if users.is_empty() {
        return "nobody".to_string();
    }
    let v: Vec<String> = users.iter().map(|u| sanitize(u)).collect();
    v.join(", ")
}

/// Replaces control characters with U+FFFD, so nothing received can drive
/// the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_controls() {
        assert_eq!(sanitize("a\u{1b}[2Jb\u{9b}"), "a\u{fffd}[2Jb\u{fffd}");
        assert_eq!(sanitize("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn lines_wait_until_login() {
        let mut c =
            Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
        c.handle_line(Instant::ZERO, "PM");
        c.handle_line(Instant::ZERO, "hello");
        c.handle_eof(Instant::ZERO);
        assert_eq!(c.exit_code(), None, "waits for the server, does not exit");
        assert_eq!(c.lines.len(), 2);
        assert!(c.poll_transmit(Instant::ZERO).is_some());
    }

    #[test]
    fn bad_username_is_refused() {
        assert!(Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "a b").is_err());
    }
}
