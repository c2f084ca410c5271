//! The line-mode user interface of a client, shared by the native
//! `chatclient` and the WebAssembly client.
//!
//! [`Console`] reads lines the user typed, turns them into protocol steps of
//! a [`Client`], and reports what happens as [`ChatEvent`]s, which a driver
//! prints as text ([`render_plain`], [`render_styled`]) or as JSON.
//!
//! What a line means ([`parse_command`]): a plain line is a public message;
//! `/msg USER TEXT`, `/me ACTION`, `/who`, `/away [TEXT]`, `/whois USER`,
//! `/more`, `/confirm on|off`, `/quit`, `/help [COMMAND]`, `/connect` and
//! `/say TEXT` are commands ([`COMMANDS`]). The assignment's
//! menu stays: `PM`, `DM` or `EX` alone on a line enter that flow (`PM` asks
//! for the message; `DM` shows who is online, asks for the recipient, then
//! the message). A line that should literally be "PM" is sent with
//! `/say PM`; `//text` sends "/text". A `/me` action travels as a public
//! message whose text starts with `/me `, which clients show as an action.
//! `/quit REASON` sends the reason with EX; the others see
//! `left (exit: REASON)`.
//!
//! # Nothing typed is lost
//!
//! The server limits how fast a session may send public and direct
//! messages, and states the limit at login. The console sends at that pace:
//! a message beyond it waits its turn ([`ChatEvent::Queued`]) instead of
//! being refused. A message the server still refuses as too fast is sent
//! again. A message refused for another reason, or not confirmed before the
//! connection was lost, is reported by its text ([`ChatEvent::NotSent`]),
//! and the exit code is then 1. At the end of input the console waits
//! until every message was sent and answered before it says EX.
//!
//! Lines typed before the console is ready for them (while it waits for the
//! server) are queued and used in order, so a script can pipe every line at
//! once.
//!
//! # Your own messages
//!
//! On a terminal ([`ConsoleConfig::show_sent`]) a message the user sent is
//! shown as chat once the server confirms it: `<alice> hello`,
//! `* alice waves`, `-> bob: psst` ([`ChatEvent::Sent`]), and the
//! confirmation itself (`ok: public message delivered to 2 users`) only
//! after `/confirm on`. Refusals and `! not sent` lines are always shown.
//!
//! Piped output keeps the assignment's format: `show_sent` is off, so a
//! confirmation is an `ok: ...` line and the sent text is not repeated.
//! Scripts parse those lines (and the tests of the binaries expect them);
//! `/confirm off` hides them there too. `--json` keeps its `confirmation`
//! events, which carry the delivered `text` (and `action` for `/me`).
//!
//! # Long messages
//!
//! On a terminal ([`render_styled`]) a message longer than [`SHOWN_CHARS`]
//! characters is shown cut, ending with `… (58,000 more characters: /more
//! to read all)`; `/more` shows the last message that was cut, whole
//! ([`ChatEvent::More`]). Piped lines ([`render_plain`]) and `--json` are
//! never cut.
//!
//! # Reconnecting
//!
//! With [`ConsoleConfig::reconnect`], a session that was logged in and loses
//! its server (shutdown, restart, silence) is not over: the console reports
//! a [`ChatEvent::Disconnect`] with the delay until the next attempt (1, 2,
//! 4, 8, then every 15 s: [`RECONNECT_BACKOFF_SECS`]), and when it is due
//! (or at once after `/connect`) asks its driver with [`Output::Reconnect`]
//! for fresh randomness through [`Console::reconnect`]. It then logs in
//! again with the password that worked before (kept in memory for that
//! only) and with the server key it learned; lines typed meanwhile wait. A
//! refused password or a changed server key ends the session with 1.
//!
//! # Two ways to read the output
//!
//! [`Console::poll`] gives structured [`Output`]s; [`Console::poll_output`]
//! gives the same as [`ConsoleOutput`] text lines (rendered with
//! [`render_plain`]), for drivers that only print.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Display;

use crate::client::{Client, ClientConfig, ClientEvent, CloseReason, CommandError, StartError};
use crate::server::RateLimit;
use crate::server::limits::TokenBucket;
use crate::session::{
    ErrorCode, LoginFailure, MessageRate, Operation, validate_text, validate_username,
};
use crate::time::{Duration, Instant};
use crate::wire::CloseCode;

mod command;
mod complete;
mod mention;
mod render;
mod sanitize;

pub use command::{COMMANDS, Command, CommandInfo, ParseError, find_command, help, parse_command};
pub use complete::complete;
pub use mention::mentions;
pub use render::{
    CONTINUATION, ChatEvent, ClockTime, Delivery, SHOWN_CHARS, escape_json_invisibles, is_cut,
    render_json, render_plain, render_styled, rings_bell, user_color, wrap_rows,
};
pub use sanitize::sanitize;

/// The menu prompt.
pub const MENU_PROMPT: &str = "Operation (PM, DM, EX): ";

/// Seconds between reconnection attempts: the first waits 1 s, then 2, 4,
/// 8, and every later one 15.
pub const RECONNECT_BACKOFF_SECS: [u64; 5] = [1, 2, 4, 8, 15];

/// Settings of a console.
#[derive(Clone, Debug, Default)]
pub struct ConsoleConfig {
    /// The client's timers and limits.
    pub client: ClientConfig,
    /// Take the password from the input lines (the next line after the
    /// server asks for one) instead of waiting for
    /// [`Console::submit_password`]. For piped input; a terminal should
    /// prompt without echo instead. A refused password then ends the
    /// session with 1: the lines after it are chat, never a second guess.
    pub password_from_lines: bool,
    /// After a login, survive the loss of the server: retry with backoff
    /// and log in again (see the [module docs](self#reconnecting)). The
    /// driver must then use [`Console::poll`] and answer
    /// [`Output::Reconnect`].
    pub reconnect: bool,
    /// Show the user's own public and direct messages as chat once the
    /// server confirms them ([`ChatEvent::Sent`]: `<alice> hello`),
    /// instead of the confirmations (`ok: public message delivered to 2
    /// users`), which `/confirm on` brings back. For a terminal; see the
    /// [module docs](self#your-own-messages).
    pub show_sent: bool,
}

/// What the console asks its driver to do, as text (see
/// [`Console::poll_output`]).
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

/// What the console asks its driver to do (see [`Console::poll`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Show this: as text ([`render_plain`], [`render_styled`]) or as data.
    Event(ChatEvent),
    /// The console waits for a line of this kind (show a prompt on a
    /// terminal).
    Prompt(PromptKind),
    /// The server proved this key; a driver that pins keys on first use
    /// remembers it for this server. Reported once, for the first
    /// connection; reconnections insist on the same key.
    ServerKey([u8; crate::crypto::KEY_LEN]),
    /// Obtain a password and call [`Console::submit_password`].
    NeedPassword {
        /// True when the password registers a new account.
        new_user: bool,
        /// Failed attempts so far.
        failures: u32,
    },
    /// Time to open a new connection: call [`Console::reconnect`] with 32
    /// fresh random bytes. Only with [`ConsoleConfig::reconnect`].
    Reconnect,
    /// The server issued this device token for the account: a driver that
    /// can keep files stores it (private to the user) and sets it as
    /// [`ClientConfig::device_token`] next time. Reconnections of this
    /// console use it already.
    DeviceToken(String),
}

/// What kind of line the console waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// A command or a public message (the menu).
    Menu,
    /// The text of a public message (after PM).
    PublicText,
    /// The recipient of a direct message (after DM).
    Recipient,
    /// The text of a direct message to `to`.
    DirectText {
        /// The recipient.
        to: String,
    },
    /// The line after a cancelled DM flow, which is not sent.
    CancelledText,
}

impl PromptKind {
    /// The prompt of a line editor on a terminal: `alice> ` at the menu,
    /// `Message to bob: ` in the DM flow, the assignment's texts otherwise.
    pub fn terminal_text(&self, user: &str) -> String {
        match self {
            PromptKind::Menu => alloc::format!("{user}> "),
            PromptKind::DirectText { to } => alloc::format!("Message to {to}: "),
            other => other.text().to_string(),
        }
    }

    /// The assignment's prompt text: [`MENU_PROMPT`], `To: ` or
    /// `Message: `.
    pub fn text(&self) -> &'static str {
        match self {
            PromptKind::Menu => MENU_PROMPT,
            PromptKind::Recipient => "To: ",
            PromptKind::PublicText | PromptKind::DirectText { .. } => "Message: ",
            PromptKind::CancelledText => "Message (not sent: the DM has no recipient): ",
        }
    }
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
    DmText {
        to: String,
    },
    /// The DM flow's recipient was empty or invalid: the next line, meant
    /// as its text, is set aside.
    DmCancelled,
    Exiting,
    /// The server went away; the next attempt is due at `at`.
    Offline {
        at: Instant,
    },
    /// [`Output::Reconnect`] was given; waiting for [`Console::reconnect`].
    AwaitReconnect,
    Done(u8),
}

/// What the server answers in order: a message (`confirm` or `error`) or
/// a request (`away`, `whois`: their answer or `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Unanswered {
    Message(Outgoing),
    Request,
}

/// A public or direct message on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outgoing {
    /// The recipient of a direct message.
    to: Option<String>,
    text: String,
}

/// The client's copy of the server's limit on its messages: the server's
/// own token bucket, a little slower and smaller than the server's, so that
/// delays on the way (a retransmission that lets two messages arrive
/// together) do not make the server refuse what the client paced.
#[derive(Clone, Copy, Debug)]
struct Pacer {
    limit: RateLimit,
    bucket: TokenBucket,
}

/// Messages the client keeps in hand below the server's burst.
const PACER_MARGIN: u32 = 2;
/// When the server did not state its limit and refused a message as too
/// fast, the console assumes this one: one message a second.
const FALLBACK_RATE: MessageRate = MessageRate {
    burst: 1,
    interval_ms: 1000,
};

impl Pacer {
    fn new(now: Instant, rate: MessageRate) -> Pacer {
        let limit = RateLimit {
            burst: rate.burst.saturating_sub(PACER_MARGIN).max(1),
            // 10% slower than the server refills.
            interval: Duration::from_micros(u64::from(rate.interval_ms) * 1100),
        };
        Pacer {
            limit,
            bucket: TokenBucket::full(now, limit),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        self.bucket.take(now, self.limit)
    }

    /// Forgets the tokens: the server said it had none.
    fn empty(&mut self, now: Instant) {
        self.bucket.empty(now);
    }

    /// When the next message may go.
    fn next_at(&self) -> Instant {
        self.bucket.next_at(self.limit)
    }
}

/// A client with a line-mode user interface. See the [module docs](self).
#[derive(Debug)]
pub struct Console {
    client: Client,
    config: ConsoleConfig,
    username: String,
    mode: Mode,
    lines: VecDeque<String>,
    eof: bool,
    failures: u32,
    /// PM and DM texts sent and not yet confirmed or refused: the server
    /// answers each, in order, so an error belongs to the oldest of them.
    unanswered: VecDeque<Unanswered>,
    /// Texts waiting for the pace of the server's limit.
    paced: VecDeque<Outgoing>,
    /// How many at the front of `paced` were refused as too fast (they go
    /// again in the order they were first sent).
    requeued: usize,
    pacer: Option<Pacer>,
    /// Texts refused or lost: the exit code is then 1.
    not_sent: u32,
    /// The latest time an input brought.
    now: Instant,
    /// The reason `/quit` gave, sent with EX.
    quit_reason: Option<String>,
    output: VecDeque<Output>,
    /// The password being checked, and the one that logged in: kept only
    /// with [`ConsoleConfig::reconnect`], to log in again.
    submitted: Option<String>,
    password: Option<String>,
    logged_in_once: bool,
    key_reported: bool,
    /// Reconnection attempts since the last login.
    attempt: u32,
    /// Whether confirmations are shown (`/confirm on|off`).
    confirmations: bool,
    /// The users known to be online, by lowercased name (from `login_ok`,
    /// online lists, arrivals and departures), for completion.
    online: BTreeMap<String, String>,
    /// Counts the changes of `online` (see [`Console::online_names`]).
    online_changes: u64,
    /// The last message shown cut, for `/more`.
    last_cut: Option<ChatEvent>,
    /// The away text the server took last (sent again after a
    /// reconnection).
    away: Option<String>,
}

impl Console {
    /// Starts a session as `username`; `random` must be 32 bytes from the
    /// OS (see [`Client::new`]).
    pub fn new(
        now: Instant,
        config: ConsoleConfig,
        random: [u8; 32],
        username: &str,
    ) -> Result<Console, StartError> {
        let client = Client::new(now, config.client.clone(), random, username)?;
        let mut output = VecDeque::new();
        output.push_back(Output::Event(ChatEvent::Connecting {
            user: username.to_string(),
            attempt: 0,
        }));
        Ok(Console {
            client,
            confirmations: !config.show_sent,
            online: BTreeMap::new(),
            online_changes: 0,
            last_cut: None,
            away: None,
            config,
            username: username.to_string(),
            mode: Mode::Connecting,
            lines: VecDeque::new(),
            eof: false,
            failures: 0,
            unanswered: VecDeque::new(),
            paced: VecDeque::new(),
            requeued: 0,
            pacer: None,
            not_sent: 0,
            now,
            quit_reason: None,
            output,
            submitted: None,
            password: None,
            logged_in_once: false,
            key_reported: false,
            attempt: 0,
        })
    }

    /// The protocol client underneath (a new one after each reconnection).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Gives the password asked for by [`ConsoleOutput::NeedPassword`].
    pub fn submit_password(&mut self, _now: Instant, password: &str) {
        if self.mode != Mode::Password {
            return;
        }
        match self.client.submit_password(password) {
            Ok(()) => {
                self.mode = Mode::LoggingIn;
                if self.config.reconnect {
                    self.submitted = Some(password.to_string());
                }
            }
            Err(e) => {
                self.error(e);
                self.failures += 1;
                self.ask_password(false);
            }
        }
    }

    /// A line the user typed, without its line ending.
    pub fn handle_line(&mut self, now: Instant, line: &str) {
        self.now = self.now.max(now);
        if self.is_offline() {
            // What cannot wait for the server.
            match parse_command(line) {
                Ok(Command::Connect) => return self.reconnect_now(),
                Ok(Command::Quit(_) | Command::Menu(Operation::EX)) => return self.leave_offline(),
                Ok(Command::Help(topic)) => return self.show_help(topic),
                Ok(Command::More) => return self.show_more(),
                _ => {}
            }
        }
        self.lines.push_back(line.to_string());
        self.pump();
    }

    /// End of input: once the queued lines are used, the session ends as
    /// with EX.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.eof = true;
        if self.is_offline() && self.lines.is_empty() {
            self.leave_offline();
        } else {
            self.pump();
        }
    }

    /// The user wants out now (Ctrl-C, a signal): EX if logged in, dropping
    /// queued lines; otherwise the session ends at once.
    pub fn quit(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match self.mode {
            Mode::Done(_) | Mode::Exiting => {}
            Mode::Menu
            | Mode::AwaitOpOk
            | Mode::PmText
            | Mode::AwaitOnline
            | Mode::DmTarget
            | Mode::DmText { .. }
            | Mode::DmCancelled => {
                self.lines.clear();
                self.drop_paced();
                self.exit();
            }
            _ => self.leave_offline(),
        }
    }

    /// A datagram from the server.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        self.now = self.now.max(now);
        self.client.handle_datagram(now, bytes);
        self.drain_events(now);
    }

    /// Expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match self.mode {
            Mode::Offline { at } if now >= at => {
                self.mode = Mode::AwaitReconnect;
                self.output.push_back(Output::Reconnect);
            }
            Mode::Offline { .. } | Mode::AwaitReconnect => {}
            _ => {
                self.client.handle_timeout(now);
                self.drain_events(now);
                self.send_paced();
            }
        }
    }

    /// Opens a new connection after [`Output::Reconnect`] (or at any time
    /// while the server is away): `random` must be 32 fresh bytes from the
    /// OS. Does nothing unless the session is waiting to reconnect.
    pub fn reconnect(&mut self, now: Instant, random: [u8; 32]) {
        if !self.is_offline() {
            return;
        }
        match Client::new(now, self.config.client.clone(), random, &self.username) {
            Ok(client) => {
                self.client = client;
                self.mode = Mode::Connecting;
                self.emit(ChatEvent::Connecting {
                    user: self.username.clone(),
                    attempt: self.attempt,
                });
            }
            // The name was valid when the console started.
            Err(e) => self.finish(1, Some(error_event(e))),
        }
    }

    /// The next datagram for the server.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.client.poll_transmit(now)
    }

    /// The next thing to show or do, structured. Call until `None` after
    /// every input.
    pub fn poll(&mut self) -> Option<Output> {
        self.output.pop_front()
    }

    /// The next thing to show or do, as text: events rendered with
    /// [`render_plain`], prompts as the assignment's texts.
    /// [`Output::Reconnect`] has no text form: a console configured to
    /// reconnect needs [`Console::poll`].
    pub fn poll_output(&mut self) -> Option<ConsoleOutput> {
        loop {
            return Some(match self.output.pop_front()? {
                Output::Event(e) => ConsoleOutput::Line(render_plain(&e)),
                Output::Prompt(p) => ConsoleOutput::Prompt(p.text().to_string()),
                Output::ServerKey(k) => ConsoleOutput::ServerKey(k),
                Output::NeedPassword { new_user, failures } => {
                    ConsoleOutput::NeedPassword { new_user, failures }
                }
                Output::Reconnect | Output::DeviceToken(_) => continue,
            });
        }
    }

    /// The next deadline for [`Console::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.mode {
            Mode::Offline { at } => Some(at),
            Mode::AwaitReconnect => None,
            _ => {
                let client = self.client.poll_timeout();
                let pace = match (&self.pacer, self.paced.is_empty(), self.is_ready()) {
                    (Some(p), false, true) => Some(p.next_at()),
                    _ => None,
                };
                match (client, pace) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Once the session is over: 0 after EX or end of input, 1 on failure.
    pub fn exit_code(&self) -> Option<u8> {
        match self.mode {
            // A message that could not be sent makes a success a failure.
            Mode::Done(0) if self.not_sent > 0 => Some(1),
            Mode::Done(code) => Some(code),
            _ => None,
        }
    }

    /// Tab completion for the line being typed: where the word before
    /// `cursor` (a byte offset) starts, and what it may become: command
    /// names after `/`, the names of users known to be online elsewhere
    /// (see [`complete`]).
    pub fn complete(&self, line: &str, cursor: usize) -> (usize, Vec<String>) {
        complete(line, cursor, self.online.values().map(String::as_str))
    }

    /// The users known to be online (what [`Console::complete`] completes),
    /// and a number that changes whenever they do: a line editor on another
    /// thread copies them only when it changed.
    pub fn online_names(&self) -> (u64, impl Iterator<Item = &str>) {
        (
            self.online_changes,
            self.online.values().map(String::as_str),
        )
    }

    /// Replaces the known online users with `users` (a list cut by the
    /// server is all the console knows).
    fn set_online(&mut self, users: &[String]) {
        self.online_changes += 1;
        self.online = users
            .iter()
            .map(|u| (u.to_ascii_lowercase(), u.clone()))
            .collect();
    }

    /// Messages waiting for the pace of the server's limit.
    pub fn queued(&self) -> usize {
        self.paced.len()
    }

    /// Whether the session is logged in and the console takes commands.
    pub fn is_ready(&self) -> bool {
        matches!(
            self.mode,
            Mode::Menu
                | Mode::AwaitOpOk
                | Mode::PmText
                | Mode::AwaitOnline
                | Mode::DmTarget
                | Mode::DmText { .. }
                | Mode::DmCancelled
        )
    }

    /// Ends the session with exit code 1 and `message` (for a driver that
    /// cannot go on, e.g. a refused password it cannot replace). The server
    /// is told, so the session does not linger there.
    pub fn give_up(&mut self, message: &str) {
        let event = (!message.is_empty()).then(|| ChatEvent::Error {
            message: message.strip_prefix("! ").unwrap_or(message).to_string(),
        });
        self.finish(1, event);
    }

    fn emit(&mut self, event: ChatEvent) {
        if let ChatEvent::Public { text, .. }
        | ChatEvent::Direct { text, .. }
        | ChatEvent::Sent { text, .. } = &event
            && is_cut(text)
        {
            self.last_cut = Some(event.clone());
        }
        self.output.push_back(Output::Event(event));
    }

    /// `/more`: the last message shown cut, whole.
    fn show_more(&mut self) {
        match self.last_cut.clone() {
            Some(message) => self.emit(ChatEvent::More {
                message: alloc::boxed::Box::new(message),
            }),
            None => self.emit(ChatEvent::Info {
                text: alloc::format!(
                    "no message was cut (only those over {SHOWN_CHARS} characters are)"
                ),
            }),
        }
    }

    fn error(&mut self, message: impl Display) {
        self.emit(error_event(message));
    }

    fn prompt(&mut self, kind: PromptKind) {
        self.output.push_back(Output::Prompt(kind));
    }

    fn enter_menu(&mut self) {
        self.mode = Mode::Menu;
        self.prompt(PromptKind::Menu);
    }

    fn ask_password(&mut self, new_user: bool) {
        self.mode = Mode::Password;
        self.output.push_back(Output::NeedPassword {
            new_user,
            failures: self.failures,
        });
    }

    fn show_help(&mut self, topic: Option<&str>) {
        for text in help(topic) {
            self.emit(ChatEvent::Info { text });
        }
    }

    /// Logged in before, and not now: the server went away.
    fn is_offline(&self) -> bool {
        self.logged_in_once
            && matches!(
                self.mode,
                Mode::Offline { .. }
                    | Mode::AwaitReconnect
                    | Mode::Connecting
                    | Mode::Password
                    | Mode::LoggingIn
            )
    }

    fn reconnect_now(&mut self) {
        if self.mode != Mode::AwaitReconnect {
            self.mode = Mode::AwaitReconnect;
            self.output.push_back(Output::Reconnect);
        }
    }

    /// Ends a session that has no server to say EX to.
    fn leave_offline(&mut self) {
        self.client.abort();
        self.finish(0, Some(ChatEvent::Bye));
    }

    fn finish(&mut self, code: u8, event: Option<ChatEvent>) {
        if !matches!(self.mode, Mode::Done(_)) {
            if let Some(event) = event {
                self.emit(event);
            }
            if code != 0 {
                self.client.abort();
            }
            self.mode = Mode::Done(code);
        }
    }

    fn exit(&mut self) {
        if self.is_offline() {
            return self.leave_offline();
        }
        let sent = match self.quit_reason.take() {
            Some(reason) => self.client.exit_saying(&reason),
            None => self.client.request_operation(Operation::EX),
        };
        match sent {
            Ok(()) => self.mode = Mode::Exiting,
            Err(e) => self.finish(1, Some(error_event(e))),
        }
    }

    fn accepts_input(&self) -> bool {
        matches!(
            self.mode,
            Mode::Menu | Mode::PmText | Mode::DmTarget | Mode::DmText { .. } | Mode::DmCancelled
        )
    }

    fn pump(&mut self) {
        if self.mode == Mode::Password && self.config.password_from_lines {
            match self.lines.pop_front() {
                Some(password) => self.submit_password(Instant::ZERO, &password),
                None if self.eof => {
                    self.finish(
                        1,
                        Some(ChatEvent::Error {
                            message: "no password: end of input".to_string(),
                        }),
                    );
                    return;
                }
                None => {}
            }
        }
        while self.accepts_input() {
            let Some(line) = self.lines.pop_front() else {
                // At the end of input, leave once every message went out
                // and was answered (a refusal as too fast is sent again).
                if self.eof && self.paced.is_empty() && self.unanswered.is_empty() {
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
                if let Err(e) = validate_text(line) {
                    self.error(e);
                } else {
                    self.send_text(None, line);
                }
                self.enter_menu();
            }
            Mode::DmTarget => {
                let to = line.trim();
                match validate_username(to) {
                    Ok(()) => {
                        self.mode = Mode::DmText { to: to.to_string() };
                        self.prompt(PromptKind::DirectText { to: to.to_string() });
                    }
                    Err(e) => {
                        // The flow is cancelled, but the next line was
                        // meant as the DM's text (a script sends it
                        // anyway): it is set aside, never sent publicly.
                        self.error(alloc::format!("DM cancelled: {e}"));
                        self.mode = Mode::DmCancelled;
                        self.prompt(PromptKind::CancelledText);
                    }
                }
            }
            Mode::DmCancelled => {
                if !line.trim().is_empty() {
                    self.not_sent(
                        Outgoing {
                            to: None,
                            text: line.to_string(),
                        },
                        "the DM it was meant for had no valid recipient".to_string(),
                    );
                }
                self.enter_menu();
            }
            Mode::DmText { to } => {
                if let Err(e) = validate_text(line) {
                    self.error(e);
                } else {
                    self.send_text(Some(&to), line);
                }
                self.enter_menu();
            }
            other => self.mode = other,
        }
    }

    fn menu(&mut self, line: &str) {
        let command = match parse_command(line) {
            Ok(c) => c,
            Err(e) => {
                self.error(e);
                return self.enter_menu();
            }
        };
        let result = match command {
            Command::Empty => Ok(()),
            Command::Menu(Operation::PM) => match self.client.request_operation(Operation::PM) {
                Ok(()) => return self.mode = Mode::AwaitOpOk,
                Err(e) => Err(e),
            },
            Command::Menu(Operation::DM) => match self.client.request_operation(Operation::DM) {
                Ok(()) => return self.mode = Mode::AwaitOnline,
                Err(e) => Err(e),
            },
            Command::Menu(Operation::EX) | Command::Quit(None) => return self.exit(),
            Command::Quit(Some(reason)) => {
                self.quit_reason = Some(reason.to_string());
                return self.exit();
            }
            Command::Say(text) => self.send_public(text),
            Command::Me(action) => self.send_public(&alloc::format!("/me {action}")),
            Command::Msg { to, text } => self.send_direct(to, text),
            Command::Who => self.client.request_online(),
            Command::Help(topic) => {
                self.show_help(topic);
                Ok(())
            }
            Command::Connect => {
                self.error("already connected");
                Ok(())
            }
            Command::Confirm(on) => {
                self.set_confirmations(on);
                Ok(())
            }
            Command::More => {
                self.show_more();
                Ok(())
            }
            Command::Away(text) => self.request(|c| c.set_away(text)),
            Command::Whois(user) => self.request(|c| c.request_whois(user)),
        };
        if let Err(e) = result {
            self.error(e);
        }
        self.enter_menu();
    }

    /// Sends a request the server answers in turn with the messages.
    fn request(
        &mut self,
        send: impl FnOnce(&mut Client) -> Result<(), CommandError>,
    ) -> Result<(), CommandError> {
        send(&mut self.client)?;
        self.unanswered.push_back(Unanswered::Request);
        Ok(())
    }

    /// The answer to the oldest request arrived.
    fn answered_request(&mut self) {
        if let Some(Unanswered::Request) = self.unanswered.front() {
            self.unanswered.pop_front();
        }
    }

    fn set_confirmations(&mut self, on: Option<bool>) {
        if let Some(on) = on {
            self.confirmations = on;
        }
        let text = match (self.confirmations, on.is_some()) {
            (true, _) => "confirmations are on: \"ok: ...\" when the server delivered your message",
            (false, true) => "confirmations are off; refusals are still shown",
            (false, false) => {
                "confirmations are off (/confirm on shows them); refusals are still shown"
            }
        };
        self.emit(ChatEvent::Info {
            text: text.to_string(),
        });
    }

    /// A public message in one line: the text goes without `op PM`.
    fn send_public(&mut self, text: &str) -> Result<(), CommandError> {
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send_text(None, text);
        Ok(())
    }

    /// A direct message in one line: the text goes without `op DM` (and
    /// its online list).
    fn send_direct(&mut self, to: &str, text: &str) -> Result<(), CommandError> {
        validate_username(to).map_err(CommandError::InvalidUsername)?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send_text(Some(to), text);
        Ok(())
    }

    /// Sends a checked text now, or queues it when the server's limit (or
    /// messages already waiting) says it must wait.
    fn send_text(&mut self, to: Option<&str>, text: &str) {
        let message = Outgoing {
            to: to.map(ToString::to_string),
            text: text.to_string(),
        };
        let now = self.now;
        let may_go = self.paced.is_empty() && self.pacer.as_mut().is_none_or(|p| p.take(now));
        if may_go {
            self.transmit(message);
        } else {
            self.paced.push_back(message);
            self.emit(ChatEvent::Queued {
                waiting: self.paced.len(),
            });
        }
    }

    /// Hands a text to the client; it is then answered, in order.
    fn transmit(&mut self, message: Outgoing) {
        let sent = match &message.to {
            Some(to) => self.client.send_direct(to, &message.text),
            None => self.client.send_public(&message.text),
        };
        match sent {
            Ok(()) => self.unanswered.push_back(Unanswered::Message(message)),
            Err(e) => self.not_sent(message, e.to_string()),
        }
    }

    /// Sends the queued texts the pace allows now.
    fn send_paced(&mut self) {
        if !self.is_ready() {
            return;
        }
        let now = self.now;
        while !self.paced.is_empty() && self.pacer.as_mut().is_none_or(|p| p.take(now)) {
            if let Some(message) = self.paced.pop_front() {
                self.requeued = self.requeued.saturating_sub(1);
                self.transmit(message);
            }
        }
        // The last queued text may have been what the end of input waited
        // for.
        if self.paced.is_empty() {
            self.pump();
        }
    }

    fn not_sent(&mut self, message: Outgoing, reason: String) {
        self.not_sent += 1;
        self.emit(ChatEvent::NotSent {
            to: message.to,
            text: message.text,
            reason,
        });
    }

    /// Ctrl-C: what waits is given up, and said so.
    fn drop_paced(&mut self) {
        self.requeued = 0;
        while let Some(message) = self.paced.pop_front() {
            self.not_sent(message, "you quit before it was sent".to_string());
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            self.on_event(now, event);
        }
        self.pump();
    }

    fn on_event(&mut self, now: Instant, event: ClientEvent) {
        match event {
            ClientEvent::ServerKey(key) => {
                // Reconnections insist on the key the first connection saw.
                if self.config.client.server_key.is_none() {
                    self.config.client.server_key = Some(key);
                }
                if !self.key_reported {
                    self.key_reported = true;
                    self.output.push_back(Output::ServerKey(key));
                }
            }
            ClientEvent::PasswordRequired { name, new_user } => {
                if let (true, Some(password)) = (self.logged_in_once, self.password.clone()) {
                    // Logging in again after a reconnection.
                    match self.client.submit_password(&password) {
                        Ok(()) => self.mode = Mode::LoggingIn,
                        Err(e) => self.finish(1, Some(error_event(e))),
                    }
                    return;
                }
                self.emit(ChatEvent::PasswordRequired {
                    user: name,
                    new_user,
                });
                self.ask_password(new_user);
            }
            ClientEvent::LoginFailed { message, reason } => {
                let event = ChatEvent::Error {
                    message: alloc::format!("login failed: {message}"),
                };
                if reason == LoginFailure::TooManyAttempts {
                    // The server closes this connection: said plainly, not
                    // as a closed connection.
                    return self.finish(1, Some(event));
                }
                if self.logged_in_once {
                    // The password that worked is refused now: nothing
                    // to retry with.
                    return self.finish(1, Some(event));
                }
                if self.config.password_from_lines {
                    // Piped: the next line is chat text, never a second
                    // password guess.
                    self.emit(event);
                    return self.finish(
                        1,
                        Some(ChatEvent::Error {
                            message: "the password from the first input line was refused"
                                .to_string(),
                        }),
                    );
                }
                self.failures += 1;
                self.emit(event);
                self.ask_password(false);
            }
            ClientEvent::LoggedIn {
                name,
                new_user,
                online,
                count,
                device,
                rate,
                ..
            } => {
                // A new session's bucket starts full.
                self.pacer = rate.map(|r| Pacer::new(now, r));
                if let Some(token) = device
                    && self.config.client.device_token.as_ref() != Some(&token)
                {
                    self.config.client.device_token = Some(token.clone());
                    self.output.push_back(Output::DeviceToken(token));
                }
                self.logged_in_once = true;
                self.attempt = 0;
                if let Some(p) = self.submitted.take() {
                    self.password = Some(p);
                }
                self.set_online(&online);
                self.emit(ChatEvent::LoggedIn {
                    user: name,
                    new_user,
                    online,
                    count,
                });
                if let Some(text) = self.away.clone() {
                    // Away before the connection was lost: still away.
                    if let Err(e) = self.request(|c| c.set_away(Some(&text))) {
                        self.error(e);
                    }
                }
                self.enter_menu();
                self.send_paced();
            }
            ClientEvent::OperationReady(Operation::PM) => {
                if self.mode == Mode::AwaitOpOk {
                    self.mode = Mode::PmText;
                    self.prompt(PromptKind::PublicText);
                }
            }
            ClientEvent::OperationReady(_) => {}
            ClientEvent::Away(text) => {
                self.answered_request();
                self.away.clone_from(&text);
                self.emit(ChatEvent::Away { text });
            }
            ClientEvent::AwayReply { user, text } => {
                self.emit(ChatEvent::AwayReply { user, text });
            }
            ClientEvent::Whois {
                name,
                online,
                online_secs,
                away,
            } => {
                self.answered_request();
                self.emit(ChatEvent::Whois {
                    user: name,
                    online,
                    online_secs,
                    away,
                });
            }
            ClientEvent::Online { users, count, away } => {
                self.set_online(&users);
                self.emit(ChatEvent::Online { users, count, away });
                if self.mode == Mode::AwaitOnline {
                    self.mode = Mode::DmTarget;
                    self.prompt(PromptKind::Recipient);
                }
            }
            ClientEvent::Public { from, text, .. } => {
                let (text, action) = match text.strip_prefix("/me ") {
                    Some(action) => (action.to_string(), true),
                    None => (text, false),
                };
                let mention = mentions(&text, self.client.username());
                self.emit(ChatEvent::Public {
                    from,
                    text,
                    action,
                    mention,
                });
            }
            ClientEvent::Direct { from, text, .. } => self.emit(ChatEvent::Direct { from, text }),
            ClientEvent::Joined(user) => {
                self.online_changes += 1;
                self.online.insert(user.to_ascii_lowercase(), user.clone());
                self.emit(ChatEvent::Join { user });
            }
            ClientEvent::Left {
                user,
                reason,
                message,
            } => {
                self.online_changes += 1;
                self.online.remove(&user.to_ascii_lowercase());
                self.emit(ChatEvent::Leave {
                    user,
                    reason,
                    message,
                });
            }
            ClientEvent::Confirmed {
                op, to, recipients, ..
            } => {
                let sent = match self.unanswered.pop_front() {
                    Some(Unanswered::Message(m)) => Some(m),
                    _ => None,
                };
                let kind = match op {
                    Operation::DM => Delivery::Direct,
                    _ => Delivery::Public,
                };
                let to = match kind {
                    Delivery::Direct => Some(to.unwrap_or_default()),
                    Delivery::Public => None,
                };
                let (text, action) = match sent.map(|m| m.text) {
                    Some(text) if kind == Delivery::Public => match text.strip_prefix("/me ") {
                        Some(action) => (Some(action.to_string()), true),
                        None => (Some(text), false),
                    },
                    text => (text, false),
                };
                if self.config.show_sent
                    && let Some(text) = &text
                {
                    self.emit(ChatEvent::Sent {
                        from: self.client.username().to_string(),
                        to: to.clone(),
                        text: text.clone(),
                        action,
                    });
                }
                if self.confirmations {
                    self.emit(ChatEvent::Confirmation {
                        kind,
                        to,
                        recipients,
                        text,
                        action,
                    });
                }
            }
            ClientEvent::Error { code, message } => {
                if let Some(Unanswered::Request) = self.unanswered.front() {
                    // An away or whois request refused.
                    self.unanswered.pop_front();
                    self.emit(ChatEvent::Error { message });
                } else if let Some(Unanswered::Message(refused)) = self.unanswered.pop_front() {
                    // The refusal of an earlier text, not of the operation
                    // the console is waiting for.
                    if code == ErrorCode::RateLimited {
                        // Too fast after all: it goes first when the pace
                        // allows, and the pace starts from empty.
                        let pacer = self
                            .pacer
                            .get_or_insert_with(|| Pacer::new(now, FALLBACK_RATE));
                        pacer.empty(now);
                        let at = self.requeued.min(self.paced.len());
                        self.paced.insert(at, refused);
                        self.requeued += 1;
                        self.emit(ChatEvent::Queued {
                            waiting: self.paced.len(),
                        });
                    } else {
                        self.not_sent(refused, message);
                    }
                } else {
                    self.emit(ChatEvent::Error { message });
                    if matches!(self.mode, Mode::AwaitOpOk | Mode::AwaitOnline) {
                        self.enter_menu();
                    }
                }
            }
            ClientEvent::Closed(CloseReason::Exit) => self.finish(0, Some(ChatEvent::Bye)),
            ClientEvent::Closed(CloseReason::ServerClosed(CloseCode::Normal))
                if matches!(self.mode, Mode::Exiting) =>
            {
                // EX was sent and the server ended the session normally.
                self.finish(0, Some(ChatEvent::Bye));
            }
            ClientEvent::Closed(reason) if self.may_reconnect(&reason) => {
                self.schedule_reconnect(now, &reason);
            }
            ClientEvent::Closed(reason) => self.finish(
                1,
                Some(ChatEvent::Disconnect {
                    reason: reason.to_string(),
                    reconnect_in: None,
                }),
            ),
            // Rooms are not shown by this console yet.
            ClientEvent::RoomJoined { .. }
            | ClientEvent::Parted(_)
            | ClientEvent::MemberJoined { .. }
            | ClientEvent::MemberLeft { .. }
            | ClientEvent::RoomMessage { .. }
            | ClientEvent::Said { .. }
            | ClientEvent::RoomList { .. }
            | ClientEvent::Names { .. }
            | ClientEvent::Topic { .. }
            | ClientEvent::HistoryEnd { .. }
            | ClientEvent::Resumed { .. } => {}
        }
    }

    fn may_reconnect(&self, reason: &CloseReason) -> bool {
        self.config.reconnect
            && self.logged_in_once
            && !matches!(self.mode, Mode::Exiting | Mode::Done(_))
            && matches!(
                reason,
                CloseReason::ServerShutdown
                    | CloseReason::ServerLost(_)
                    | CloseReason::NoAnswer
                    | CloseReason::ServerClosed(
                        CloseCode::UnknownConnection
                            | CloseCode::IdleTimeout
                            | CloseCode::ServerShutdown
                            | CloseCode::Refused
                    )
            )
    }

    fn schedule_reconnect(&mut self, now: Instant, reason: &CloseReason) {
        let unconfirmed = core::mem::take(&mut self.unanswered);
        self.attempt = self.attempt.saturating_add(1);
        let index = (self.attempt as usize - 1).min(RECONNECT_BACKOFF_SECS.len() - 1);
        let secs = RECONNECT_BACKOFF_SECS[index];
        self.emit(ChatEvent::Disconnect {
            reason: reason.to_string(),
            reconnect_in: Some(secs),
        });
        // Sent, but not confirmed: perhaps delivered, perhaps not. Sending
        // them again could deliver them twice, so they are shown instead.
        for message in unconfirmed.into_iter().filter_map(|u| match u {
            Unanswered::Message(m) => Some(m),
            Unanswered::Request => None,
        }) {
            self.not_sent(
                message,
                "the connection was lost before the server confirmed it; it may not have been delivered".to_string(),
            );
        }
        self.mode = Mode::Offline {
            at: now + Duration::from_secs(secs),
        };
    }
}

fn error_event(message: impl Display) -> ChatEvent {
    ChatEvent::Error {
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests;
