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

pub use command::{COMMANDS, Command, CommandInfo, ParseError, find_command, help, parse_command};
pub use complete::complete;
pub use mention::mentions;
pub use render::{
    CONTINUATION, ChatEvent, ClockTime, Delivery, SHOWN_CHARS, escape_json_invisibles, is_cut,
    render_json, render_plain, render_styled, rings_bell, user_color, wrap_rows,
};

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
            ClientEvent::Public { from, text } => {
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
            ClientEvent::Direct { from, text } => self.emit(ChatEvent::Direct { from, text }),
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
            ClientEvent::Confirmed { op, to, recipients } => {
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

/// Makes received text harmless to show: nothing in it can drive the
/// terminal, reorder or hide text, or start a new line.
///
/// * Control characters (C0, DEL, C1) become U+FFFD.
/// * Bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069), line and paragraph separators (U+2028, U+2029) and
///   invisible format characters (U+00AD, U+180E, U+200B, U+200C, U+2060–
///   U+2064, U+FEFF, tag characters outside an emoji flag) are shown as
///   `<U+202E>`: visible, and unable to reach past the message.
/// * U+200D (zero-width joiner) is kept between two emoji (👩‍💻 stays one
///   picture) and shown as `<U+200D>` anywhere else.
pub fn sanitize(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let after = chars.get(i + 1).copied();
        if c.is_control() {
            out.push('\u{fffd}');
        } else if (c == '\u{200d}' && before.is_some_and(is_emoji) && after.is_some_and(is_emoji))
            || (is_tag(c) && in_emoji_flag(&chars, i))
        {
            // Part of an emoji: a joiner between two, or a flag's tags.
            out.push(c);
        } else if is_hidden(c) {
            let _ = core::fmt::Write::write_fmt(&mut out, format_args!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that reorder, hide or break text when shown raw.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    ) || is_tag(c)
}

fn is_tag(c: char) -> bool {
    ('\u{e0000}'..='\u{e007f}').contains(&c)
}

/// Tag characters belong to a flag such as 🏴 + tags (England's flag).
fn in_emoji_flag(chars: &[char], i: usize) -> bool {
    let mut j = i;
    while let Some(prev) = j.checked_sub(1).and_then(|k| chars.get(k)) {
        if is_tag(*prev) {
            j -= 1;
        } else {
            return *prev == '\u{1f3f4}';
        }
    }
    false
}

/// Pictographs and the variation selector that makes a character one: what
/// a zero-width joiner may join.
fn is_emoji(c: char) -> bool {
    matches!(
        c,
        '\u{2600}'..='\u{27bf}'
            | '\u{2b00}'..='\u{2bff}'
            | '\u{fe0f}'
            | '\u{1f000}'..='\u{1faff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StaticKey;
    use crate::server::{Request, Response, Server, ServerConfig, UserRecord};
    use alloc::format;
    use alloc::vec;
    use core::net::SocketAddr;

    #[test]
    fn sanitize_replaces_controls() {
        assert_eq!(sanitize("a\u{1b}[2Jb\u{9b}"), "a\u{fffd}[2Jb\u{fffd}");
        assert_eq!(sanitize("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn sanitize_shows_what_would_reorder_hide_or_split_text() {
        // Right-to-left override: "evil" would read backwards to the end of
        // the line.
        assert_eq!(sanitize("a\u{202e}live"), "a<U+202E>live");
        // Isolates and marks.
        assert_eq!(
            sanitize("\u{2066}x\u{2069}\u{200f}"),
            "<U+2066>x<U+2069><U+200F>"
        );
        // Invisible characters.
        assert_eq!(sanitize("al\u{200b}ice"), "al<U+200B>ice");
        assert_eq!(sanitize("\u{feff}hi"), "<U+FEFF>hi");
        assert_eq!(sanitize("a\u{200c}b"), "a<U+200C>b");
        assert_eq!(sanitize("a\u{200d}b"), "a<U+200D>b");
        // Line and paragraph separators would start a new line in a pipe.
        assert_eq!(sanitize("one\u{2028}two\u{2029}"), "one<U+2028>two<U+2029>");
        // Emoji sequences stay whole.
        for emoji in [
            "👩\u{200d}💻",
            "👨\u{200d}👩\u{200d}👧",
            "❤\u{fe0f}\u{200d}🔥",
        ] {
            assert_eq!(sanitize(emoji), emoji);
        }
        let england = "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
        assert_eq!(sanitize(england), england);
        assert_eq!(sanitize("x\u{e0067}"), "x<U+E0067>");
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

    /// The server of these tests: the defaults, but any password length
    /// (the users register with one-letter passwords).
    fn test_config() -> ServerConfig {
        ServerConfig {
            min_password_chars: 1,
            ..ServerConfig::default()
        }
    }

    /// One user's console and what it showed.
    struct User {
        addr: SocketAddr,
        console: Console,
        password: String,
        seen: Vec<Output>,
        reconnects: u8,
    }

    impl User {
        fn events(&self) -> Vec<&ChatEvent> {
            self.seen
                .iter()
                .filter_map(|o| match o {
                    Output::Event(e) => Some(e),
                    _ => None,
                })
                .collect()
        }

        fn lines(&self) -> Vec<String> {
            self.events().into_iter().map(render_plain).collect()
        }

        fn saw(&self, event: &ChatEvent) -> bool {
            self.events().contains(&event)
        }
    }

    /// A server and consoles wired in memory, on a virtual clock, with a
    /// fake password hasher.
    struct Net {
        now: Instant,
        key: [u8; 32],
        server: Server,
        accounts: Vec<UserRecord>,
        users: Vec<User>,
        /// Drop every datagram (the server is down).
        down: bool,
    }

    impl Net {
        fn new() -> Net {
            Net {
                now: Instant::ZERO,
                key: [7; 32],
                server: Server::new(test_config(), [], StaticKey::from_private([7; 32]), [1; 32]),
                accounts: Vec::new(),
                users: Vec::new(),
                down: false,
            }
        }

        /// A server with the same accounts; `key` may differ.
        fn restart(&mut self, key: [u8; 32], seed: u8) {
            self.key = key;
            self.server = Server::new(
                test_config(),
                self.accounts.clone(),
                StaticKey::from_private(key),
                [seed; 32],
            );
        }

        fn join(&mut self, name: &str, password: &str, reconnect: bool) -> usize {
            let config = ConsoleConfig {
                reconnect,
                ..ConsoleConfig::default()
            };
            self.join_with(name, password, config)
        }

        fn join_with(&mut self, name: &str, password: &str, config: ConsoleConfig) -> usize {
            let n = self.users.len() as u8;
            let console = Console::new(self.now, config, [n + 2; 32], name).unwrap();
            self.users.push(User {
                addr: SocketAddr::new([127, 0, 0, 1].into(), 40_000 + u16::from(n)),
                console,
                password: password.to_string(),
                seen: Vec::new(),
                reconnects: 0,
            });
            let i = self.users.len() - 1;
            self.run_until(|net| net.users[i].console.is_ready(), 500);
            i
        }

        fn step(&mut self) {
            for u in &mut self.users {
                while let Some(d) = u.console.poll_transmit(self.now) {
                    if !self.down {
                        self.server.handle_datagram(self.now, u.addr, &d);
                    }
                }
            }
            while let Some(r) = self.server.poll_request() {
                let response = match r {
                    Request::Register {
                        id,
                        username,
                        password,
                    } => {
                        let hash = format!("fake:{password}");
                        self.accounts.push(UserRecord {
                            name: username,
                            password_hash: hash.clone(),
                        });
                        Response::Registered {
                            id,
                            result: Ok(hash),
                        }
                    }
                    Request::Verify {
                        id,
                        password,
                        password_hash,
                        ..
                    } => Response::Verified {
                        id,
                        ok: password_hash == format!("fake:{password}"),
                    },
                };
                self.server.handle_response(self.now, response);
            }
            while let Some(t) = self.server.poll_transmit(self.now) {
                if self.down {
                    continue;
                }
                if let Some(u) = self.users.iter_mut().find(|u| u.addr == t.to) {
                    u.console.handle_datagram(self.now, &t.bytes);
                }
            }
            for u in &mut self.users {
                while let Some(out) = u.console.poll() {
                    match &out {
                        Output::NeedPassword { .. } => {
                            u.console.submit_password(self.now, &u.password)
                        }
                        Output::Reconnect => {
                            u.reconnects += 1;
                            u.console.reconnect(self.now, [100 + u.reconnects; 32]);
                        }
                        _ => {}
                    }
                    u.seen.push(out);
                }
            }
            self.now += Duration::from_millis(10);
            self.server.handle_timeout(self.now);
            for u in &mut self.users {
                if u.console.poll_timeout().is_some_and(|t| t <= self.now) {
                    u.console.handle_timeout(self.now);
                }
            }
        }

        /// Steps until `done` holds; panics after `max` steps (10 ms each).
        fn run_until(&mut self, done: impl Fn(&Net) -> bool, max: u32) {
            for _ in 0..max {
                if done(self) {
                    return;
                }
                self.step();
            }
            let lines: Vec<Vec<String>> = self.users.iter().map(User::lines).collect();
            panic!("not done after {max} steps: {lines:#?}");
        }

        fn line(&mut self, i: usize, line: &str) {
            self.users[i].console.handle_line(self.now, line);
        }

        fn wait_for(&mut self, i: usize, event: ChatEvent) {
            self.run_until(|net| net.users[i].saw(&event), 2000);
        }
    }

    fn public(from: &str, text: &str, action: bool) -> ChatEvent {
        ChatEvent::Public {
            from: from.to_string(),
            text: text.to_string(),
            action,
            mention: false,
        }
    }

    #[test]
    fn completes_commands_and_the_users_known_online() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let albert = net.join("Albert", "b", false);
        net.wait_for(
            alice,
            ChatEvent::Join {
                user: "Albert".to_string(),
            },
        );
        let c = |net: &Net, line: &str| net.users[alice].console.complete(line, line.len());
        assert_eq!(
            c(&net, "hi al"),
            (3, vec!["Albert".to_string(), "alice".to_string()])
        );
        assert_eq!(
            c(&net, "/con"),
            (0, vec!["/confirm".to_string(), "/connect".to_string()])
        );
        // Albert's own list came with login_ok.
        assert_eq!(
            net.users[albert].console.complete("/msg a", 6),
            (5, vec!["Albert".to_string(), "alice".to_string()])
        );
        net.line(albert, "/quit");
        net.wait_for(
            alice,
            ChatEvent::Leave {
                user: "Albert".to_string(),
                reason: "exit".to_string(),
                message: None,
            },
        );
        assert_eq!(c(&net, "hi al"), (3, vec!["alice".to_string()]));
    }

    #[test]
    fn a_long_message_is_cut_and_more_shows_it_whole() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(alice, "/more");
        net.step();
        assert!(
            net.users[alice]
                .lines()
                .last()
                .unwrap()
                .starts_with("no message was cut")
        );
        let long = "z".repeat(60_000);
        net.line(bob, &long);
        net.wait_for(alice, public("bob", &long, false));
        let shown = render_styled(net.users[alice].events().pop().unwrap(), None, false);
        assert!(
            shown.ends_with("(59,000 more characters: /more to read all)"),
            "{}",
            &shown[shown.len() - 80..]
        );
        assert!(shown.len() < 1100);
        net.line(alice, "short");
        net.line(alice, "/more");
        let whole = format!("<bob> {long}");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .any(|e| render_styled(e, None, false) == whole)
            },
            100,
        );
    }

    #[test]
    fn away_whois_and_the_away_reply_to_a_dm() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(bob, "/away at lunch");
        net.wait_for(
            bob,
            ChatEvent::Away {
                text: Some("at lunch".to_string()),
            },
        );
        // A message sent meanwhile is confirmed as usual: answers are
        // matched in order.
        net.line(alice, "/msg bob are you there?");
        net.line(alice, "/whois BOB");
        net.line(alice, "/whois carol");
        net.line(alice, "/who");
        net.wait_for(
            alice,
            ChatEvent::Online {
                users: vec!["alice".to_string(), "bob".to_string()],
                count: None,
                away: vec!["bob".to_string()],
            },
        );
        let lines = net.users[alice].lines();
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "ok: direct message delivered to bob",
                "bob is away: at lunch",
                "bob is online (for 0 s); away: at lunch",
                "! there is no user named carol",
                "online: alice, bob (away)",
            ]
        );
        assert!(
            !net.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::NotSent { .. })),
            "the refused whois is not taken for the message"
        );
        net.line(bob, "/away");
        net.wait_for(bob, ChatEvent::Away { text: None });
        net.line(alice, "/msg bob back?");
        net.line(alice, "/whois bob");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .filter(|e| matches!(e, ChatEvent::Whois { .. }))
                    .count()
                    == 2
            },
            500,
        );
        let last = net.users[alice].lines().pop().unwrap();
        assert!(last.starts_with("bob is online (for "), "{last}");
        assert!(!last.contains("away"), "{last}");
        assert_eq!(
            net.users[alice]
                .events()
                .iter()
                .filter(|e| matches!(e, ChatEvent::AwayReply { .. }))
                .count(),
            1
        );
        // Checked before sending.
        net.line(bob, &format!("/away {}", "x".repeat(201)));
        net.step();
        assert_eq!(
            net.users[bob].lines().pop().unwrap(),
            "! the away text is 201 bytes; at most 200 are allowed"
        );
    }

    #[test]
    fn a_message_that_names_you_is_a_mention() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(bob, "hi Alice!");
        net.line(bob, "malice");
        net.line(bob, "/me pokes alice");
        net.wait_for(alice, public("bob", "malice", false));
        net.run_until(|n| texts_from(n, alice, "bob").len() == 3, 500);
        let mentioned: Vec<(&str, bool)> = net.users[alice]
            .events()
            .into_iter()
            .filter_map(|e| match e {
                ChatEvent::Public { text, mention, .. } => Some((text.as_str(), *mention)),
                _ => None,
            })
            .collect();
        assert_eq!(
            mentioned,
            [
                ("hi Alice!", true),
                ("malice", false),
                ("pokes alice", true)
            ]
        );
    }

    fn delivered(recipients: u32, text: &str) -> ChatEvent {
        ChatEvent::Confirmation {
            kind: Delivery::Public,
            to: None,
            recipients,
            text: Some(text.to_string()),
            action: false,
        }
    }

    #[test]
    fn a_plain_line_is_a_public_message() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(alice, "hello everyone");
        net.wait_for(bob, public("alice", "hello everyone", false));
        net.wait_for(alice, delivered(1, "hello everyone"));
        // No PM prompt or flow in between: the menu again at once.
        assert_eq!(
            net.users[alice].seen.last(),
            Some(&Output::Event(delivered(1, "hello everyone")))
        );
        assert!(net.users[alice].console.is_ready());

        net.line(alice, "/me waves");
        net.wait_for(bob, public("alice", "waves", true));
        assert!(
            net.users[bob]
                .lines()
                .contains(&"* alice waves".to_string())
        );

        net.line(alice, "/say PM");
        net.wait_for(bob, public("alice", "PM", false));
        net.line(alice, "//etc");
        net.wait_for(bob, public("alice", "/etc", false));
    }

    fn terminal() -> ConsoleConfig {
        ConsoleConfig {
            show_sent: true,
            ..ConsoleConfig::default()
        }
    }

    fn sent(to: Option<&str>, text: &str, action: bool) -> ChatEvent {
        ChatEvent::Sent {
            from: "alice".to_string(),
            to: to.map(ToString::to_string),
            text: text.to_string(),
            action,
        }
    }

    #[test]
    fn on_a_terminal_your_own_messages_show_as_chat_once_confirmed() {
        let mut net = Net::new();
        let alice = net.join_with("alice", "a", terminal());
        let bob = net.join("bob", "b", false);
        net.line(alice, "hello");
        net.wait_for(alice, sent(None, "hello", false));
        net.line(alice, "/me waves");
        net.wait_for(alice, sent(None, "waves", true));
        net.line(alice, "/msg bob psst");
        net.wait_for(alice, sent(Some("bob"), "psst", false));
        net.line(alice, "/msg nobody hi");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .any(|e| matches!(e, ChatEvent::NotSent { .. }))
            },
            500,
        );
        let a = &net.users[alice];
        assert!(
            !a.events()
                .iter()
                .any(|e| matches!(e, ChatEvent::Confirmation { .. })),
            "{:#?}",
            a.lines()
        );
        let styled: Vec<String> = a
            .events()
            .iter()
            .map(|e| render_styled(e, None, false))
            .collect();
        for line in ["<alice> hello", " * alice waves", "-> bob: psst"] {
            assert!(styled.iter().any(|l| l == line), "{line}: {styled:#?}");
        }
        assert!(
            styled.iter().any(|l| l.starts_with("! not sent to nobody")),
            "refusals stay: {styled:#?}"
        );
        // Confirmations on request, beside the message.
        net.line(alice, "/confirm on");
        net.line(alice, "again");
        net.wait_for(alice, delivered(1, "again"));
        assert!(net.users[alice].saw(&sent(None, "again", false)));
        net.line(alice, "/confirm off");
        net.line(alice, "quiet");
        net.wait_for(bob, public("alice", "quiet", false));
        net.wait_for(alice, sent(None, "quiet", false));
        assert!(!net.users[alice].saw(&delivered(1, "quiet")));
        // Piped (the default): confirmations, no echo.
        assert!(
            !net.users[bob]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::Sent { .. }))
        );
    }

    /// The public texts `who` saw, in order.
    fn texts_from(net: &Net, who: usize, from: &str) -> Vec<String> {
        net.users[who]
            .events()
            .into_iter()
            .filter_map(|e| match e {
                ChatEvent::Public { from: f, text, .. } if f == from => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_typed_faster_than_the_limit_wait_their_turn_and_all_arrive() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        let sent: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
        for l in &sent {
            net.line(alice, l);
        }
        assert!(net.users[alice].console.queued() > 0, "some lines wait");
        net.run_until(|n| texts_from(n, bob, "alice").len() == 30, 2000);
        assert_eq!(texts_from(&net, bob, "alice"), sent, "all, in order");
        let a = &net.users[alice];
        assert!(
            a.events()
                .iter()
                .any(|e| matches!(e, ChatEvent::Queued { .. }))
        );
        // None refused: the pace kept under the server's limit.
        assert!(
            !a.events()
                .iter()
                .any(|e| matches!(e, ChatEvent::Error { .. } | ChatEvent::NotSent { .. })),
            "{:#?}",
            a.lines()
        );
        assert_eq!(net.server.stats().messages_rate_limited, 0);
    }

    #[test]
    fn a_line_refused_as_too_fast_is_sent_again() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        // A client that believes the limit is far higher than it is.
        net.users[alice].console.pacer = Some(Pacer::new(
            net.now,
            MessageRate {
                burst: 1000,
                interval_ms: 1,
            },
        ));
        let sent: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
        for l in &sent {
            net.line(alice, l);
        }
        net.run_until(|n| texts_from(n, bob, "alice").len() == 20, 2000);
        assert!(net.server.stats().messages_rate_limited > 0);
        let mut got = texts_from(&net, bob, "alice");
        got.sort();
        let mut want = sent.clone();
        want.sort();
        assert_eq!(got, want, "every line arrives once");
        assert!(
            !net.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::NotSent { .. }))
        );
    }

    #[test]
    fn at_the_end_of_input_every_line_goes_before_ex() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        for i in 1..=25 {
            net.line(alice, &format!("piped {i}"));
        }
        net.users[alice].console.handle_eof(net.now);
        net.run_until(|n| n.users[alice].console.exit_code().is_some(), 3000);
        assert_eq!(net.users[alice].console.exit_code(), Some(0));
        assert_eq!(texts_from(&net, bob, "alice").len(), 25);
    }

    #[test]
    fn a_line_that_could_not_be_sent_is_shown_and_fails_the_exit() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        net.line(alice, "/msg nobody hello?");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .any(|e| matches!(e, ChatEvent::NotSent { .. }))
            },
            500,
        );
        assert!(
            net.users[alice]
                .lines()
                .iter()
                .any(|l| l.starts_with("! not sent to nobody: \"hello?\"")),
            "{:#?}",
            net.users[alice].lines()
        );
        net.users[alice].console.handle_eof(net.now);
        net.run_until(|n| n.users[alice].console.exit_code().is_some(), 500);
        assert_eq!(net.users[alice].console.exit_code(), Some(1));
    }

    #[test]
    fn only_the_exact_menu_words_start_a_flow_and_an_empty_recipient_sends_nothing() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        // "ex" in a conversation is a word, not the way out.
        net.line(alice, "ex");
        net.wait_for(bob, public("alice", "ex", false));
        assert!(net.users[alice].console.is_ready());
        // DM with no recipient: the next line is set aside, not made public.
        net.line(alice, "DM");
        net.run_until(|n| n.users[alice].console.mode == Mode::DmTarget, 500);
        net.line(alice, "");
        net.line(alice, "the secret");
        net.line(alice, "after");
        net.wait_for(bob, public("alice", "after", false));
        assert!(!texts_from(&net, bob, "alice").contains(&"the secret".to_string()));
        assert!(
            net.users[alice]
                .lines()
                .iter()
                .any(|l| l.starts_with("! not sent: \"the secret\"")),
            "{:#?}",
            net.users[alice].lines()
        );
    }

    #[test]
    fn a_session_replaced_by_a_new_login_is_told_so_plainly() {
        let mut net = Net::new();
        let first = net.join("alice", "a", true);
        let second = net.join("alice", "a", true);
        net.run_until(|n| n.users[first].console.exit_code().is_some(), 1000);
        assert_eq!(net.users[first].console.exit_code(), Some(1));
        assert_eq!(
            net.users[first].lines().last().map(String::as_str),
            Some("! disconnected: you logged in from another place; this session is over"),
            "no reconnection that would replace the new one in turn"
        );
        assert!(net.users[second].console.is_ready());
    }

    #[test]
    fn the_last_wrong_password_says_too_many_attempts() {
        let mut net = Net::new();
        let first = net.join("alice", "right", false);
        net.users[first].console.handle_eof(net.now);
        net.run_until(|n| n.users[first].console.exit_code().is_some(), 500);
        // A console that keeps offering a wrong password.
        let console = Console::new(net.now, ConsoleConfig::default(), [77; 32], "alice").unwrap();
        net.users.push(User {
            addr: SocketAddr::new([127, 0, 0, 1].into(), 41_000),
            console,
            password: "wrong".to_string(),
            seen: Vec::new(),
            reconnects: 0,
        });
        let i = net.users.len() - 1;
        net.run_until(|n| n.users[i].console.exit_code().is_some(), 5000);
        assert_eq!(net.users[i].console.exit_code(), Some(1));
        let lines = net.users[i].lines();
        let last = lines.last().map(String::as_str).unwrap_or_default();
        assert!(
            last.starts_with("! login failed: ") && last.contains("too many attempts (5)"),
            "{lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("(Normal)")),
            "not a bare closed connection: {lines:#?}"
        );
    }

    #[test]
    fn quit_with_a_reason_tells_the_others() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(alice, "/quit gone fishing");
        net.wait_for(
            bob,
            ChatEvent::Leave {
                user: "alice".to_string(),
                reason: "exit".to_string(),
                message: Some("gone fishing".to_string()),
            },
        );
        assert!(
            net.users[bob]
                .lines()
                .contains(&"* alice left (exit: gone fishing)".to_string())
        );
        assert_eq!(net.users[alice].console.exit_code(), Some(0));
    }

    #[test]
    fn the_menu_flows_still_work() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        let bob = net.join("bob", "b", false);
        net.line(alice, "PM");
        net.run_until(
            |n| {
                n.users[alice]
                    .seen
                    .contains(&Output::Prompt(PromptKind::PublicText))
            },
            100,
        );
        // In the flow, the line is the text, even "EX".
        net.line(alice, "EX");
        net.wait_for(bob, public("alice", "EX", false));
        net.line(alice, "DM");
        net.wait_for(
            alice,
            ChatEvent::Online {
                users: vec!["alice".to_string(), "bob".to_string()],
                count: None,
                away: vec![],
            },
        );
        net.line(alice, "bob");
        net.line(alice, "psst");
        net.wait_for(
            bob,
            ChatEvent::Direct {
                from: "alice".to_string(),
                text: "psst".to_string(),
            },
        );
        net.line(alice, "/msg bob again");
        net.wait_for(
            bob,
            ChatEvent::Direct {
                from: "alice".to_string(),
                text: "again".to_string(),
            },
        );
        net.line(alice, "/who");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .filter(|e| matches!(e, ChatEvent::Online { .. }))
                    .count()
                    == 2
            },
            100,
        );
        let prompts: Vec<&Output> = net.users[alice]
            .seen
            .iter()
            .filter(|o| matches!(o, Output::Prompt(_)))
            .collect();
        assert!(prompts.contains(&&Output::Prompt(PromptKind::Recipient)));
        assert!(prompts.contains(&&Output::Prompt(PromptKind::DirectText {
            to: "bob".to_string()
        })));
        net.line(alice, "EX");
        net.run_until(|n| n.users[alice].console.exit_code() == Some(0), 200);
        assert!(net.users[alice].saw(&ChatEvent::Bye));
    }

    #[test]
    fn bad_lines_are_refused_at_the_menu() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        for line in ["/nope", "/msg bob", "/msg no*name hi", "/connect"] {
            net.line(alice, line);
        }
        net.line(alice, "/help me");
        net.step();
        let lines = net.users[alice].lines();
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "! unknown command /nope: /help lists the commands; //nope sends it as a message",
                "! usage: /msg USER TEXT",
                "! username has the character '*'; use letters, digits, '_', '-' and '.'",
                "! already connected",
                "/me ACTION  Send a public action: others see \"* alice ACTION\".",
                "  example: /me waves",
            ]
        );
        assert!(net.users[alice].console.is_ready());
    }

    #[test]
    fn the_text_form_is_the_assignments() {
        let mut c =
            Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
        assert_eq!(
            c.poll_output(),
            Some(ConsoleOutput::Line("Connecting as alice...".to_string()))
        );
        c.output.push_back(Output::Prompt(PromptKind::Menu));
        c.output.push_back(Output::Reconnect);
        c.output
            .push_back(Output::Event(public("bob", "hi", false)));
        assert_eq!(
            c.poll_output(),
            Some(ConsoleOutput::Prompt(MENU_PROMPT.to_string()))
        );
        assert_eq!(
            c.poll_output(),
            Some(ConsoleOutput::Line("[bob] hi".to_string()))
        );
        assert_eq!(c.poll_output(), None);
    }

    /// The server restarts (same key, same accounts): the console says so,
    /// waits, reconnects, logs in again by itself, and then works.
    #[test]
    fn a_line_unconfirmed_when_the_server_went_away_is_shown_by_its_text() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        // The server is gone (nothing gets through) as alice sends.
        net.down = true;
        net.line(alice, "did this arrive?");
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .any(|e| matches!(e, ChatEvent::Disconnect { .. }))
            },
            3000,
        );
        let lines = net.users[alice].lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("! not sent: \"did this arrive?\" (the connection was lost")),
            "{lines:#?}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("may not have been delivered\"")),
            "by its text, not a count: {lines:#?}"
        );
    }

    #[test]
    fn reconnects_and_logs_in_again_after_a_restart() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        net.line(alice, "before");
        net.wait_for(alice, delivered(0, "before"));
        net.restart([7; 32], 2);
        // The next keepalive meets a server that does not know the session.
        net.run_until(
            |n| {
                n.users[alice].events().iter().any(|e| {
                    matches!(
                        e,
                        ChatEvent::Disconnect {
                            reconnect_in: Some(1),
                            ..
                        }
                    )
                })
            },
            500,
        );
        assert_eq!(net.users[alice].console.exit_code(), None);
        // Typed while away: sent once logged in again.
        net.line(alice, "while away");
        let bob = net.join("bob", "b", false);
        net.wait_for(bob, public("alice", "while away", false));
        assert_eq!(net.users[alice].reconnects, 1);
        let lines = net.users[alice].lines();
        assert!(
            lines.contains(&"Reconnecting as alice (attempt 1)...".to_string()),
            "{lines:#?}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("logged in as alice"))
                .count(),
            1,
            "{lines:#?}"
        );
        // The password was asked for once only (registration).
        let asked = net.users[alice]
            .seen
            .iter()
            .filter(|o| matches!(o, Output::NeedPassword { .. }))
            .count();
        assert_eq!(asked, 1);
        net.line(bob, "welcome back");
        net.wait_for(alice, public("bob", "welcome back", false));
    }

    #[test]
    fn backs_off_while_the_server_is_down_and_connect_retries_now() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        net.down = true;
        // Silence: lost after the idle timeout, then attempts 1, 2, ...
        net.run_until(|n| n.users[alice].reconnects >= 3, 10_000);
        let delays: Vec<u64> = net.users[alice]
            .events()
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Disconnect { reconnect_in, .. } => *reconnect_in,
                _ => None,
            })
            .collect();
        assert_eq!(delays, [1, 2, 4]);
        // Waiting 4 s before attempt 3's successor... /connect skips it.
        let before = net.users[alice].reconnects;
        net.run_until(
            |n| {
                n.users[alice]
                    .events()
                    .iter()
                    .filter(|e| matches!(e, ChatEvent::Disconnect { .. }))
                    .count()
                    == 4
            },
            10_000,
        );
        net.line(alice, "/connect");
        net.step();
        assert_eq!(net.users[alice].reconnects, before + 1);
        net.down = false;
        net.run_until(|n| n.users[alice].console.is_ready(), 2000);
        net.line(alice, "/quit");
        net.run_until(|n| n.users[alice].console.exit_code() == Some(0), 200);
    }

    #[test]
    fn quitting_while_away_ends_at_once() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        net.restart([7; 32], 3);
        net.run_until(|n| !n.users[alice].console.is_ready(), 500);
        net.down = true;
        net.line(alice, "/quit");
        assert_eq!(net.users[alice].console.exit_code(), Some(0));
        net.step();
        assert_eq!(
            net.users[alice].seen.last(),
            Some(&Output::Event(ChatEvent::Bye))
        );
    }

    #[test]
    fn without_reconnect_a_lost_server_ends_the_session() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", false);
        net.restart([7; 32], 2);
        net.run_until(|n| n.users[alice].console.exit_code().is_some(), 500);
        assert_eq!(net.users[alice].console.exit_code(), Some(1));
        let last = net.users[alice].lines().pop().unwrap();
        assert!(
            last.starts_with("! disconnected: the server does not know"),
            "{last}"
        );
    }

    #[test]
    fn a_refused_password_after_reconnecting_ends_with_1() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        for account in &mut net.accounts {
            account.password_hash = "fake:changed".to_string();
        }
        net.restart([7; 32], 2);
        net.run_until(|n| n.users[alice].console.exit_code().is_some(), 1000);
        assert_eq!(net.users[alice].console.exit_code(), Some(1));
        let last = net.users[alice].lines().pop().unwrap();
        assert!(last.starts_with("! login failed: "), "{last}");
    }

    #[test]
    fn a_changed_server_key_is_never_reconnected_to() {
        let mut net = Net::new();
        let alice = net.join("alice", "a", true);
        net.restart([8; 32], 2);
        // The new server's reset is not the old key's: silence, then the
        // idle timeout, then a handshake that shows the other key.
        net.run_until(|n| n.users[alice].console.exit_code().is_some(), 3000);
        assert_eq!(net.users[alice].console.exit_code(), Some(1));
        let lines = net.users[alice].lines();
        assert!(
            lines
                .last()
                .unwrap()
                .contains("THE SERVER'S KEY HAS CHANGED"),
            "{lines:#?}"
        );
        assert_eq!(net.users[alice].reconnects, 1);
    }
}
