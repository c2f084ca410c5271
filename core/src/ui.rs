//! The line-mode user interface of a client, shared by the native
//! `chatclient` and the WebAssembly client.
//!
//! [`Console`] reads lines the user typed, turns them into protocol steps of
//! a [`Client`], and reports what happens as [`ChatEvent`]s, which a driver
//! prints as text ([`render_plain`], [`render_styled`]) or as JSON.
//!
//! What a line means ([`parse_command`]): a plain line is a public message
//! (or a message to the active room, below);
//! `/msg USER TEXT`, `/me ACTION`, `/who`, `/away [TEXT]`, `/whois USER`,
//! `/more`, `/confirm on|off`, `/quit`, `/help [COMMAND]`, `/connect`,
//! `/say TEXT` and the room commands are commands ([`COMMANDS`]). The assignment's
//! menu stays: `PM`, `DM` or `EX` alone on a line enter that flow (`PM` asks
//! for the message; `DM` shows who is online, asks for the recipient, then
//! the message). A line that should literally be "PM" is sent with
//! `/say PM`; `//text` sends "/text". A `/me` action travels as a public
//! message whose text starts with `/me `, which clients show as an action.
//! `/quit REASON` sends the reason with EX; the others see
//! `left (exit: REASON)`.
//!
//! # Rooms
//!
//! `/join #room` joins a room and makes it the active room at once (the
//! lines typed after it go there; a refused join makes the room active
//! before it active again). Plain lines, `/say` and `/me` go to the active
//! room, and the prompt says which ([`PromptKind::Room`]: `#rust> `);
//! `/go #room` picks another room the user is in, `/go` or `/go *` sends
//! plain lines to everyone online again. `PM`, `DM` and `EX` keep their
//! flows whatever room is active. `/msg #room TEXT` sends to a room (a `#`
//! target is a room), `/part`, `/names`, `/topic` and `/history` take the
//! active room when none is named. Room messages are paced with the
//! others and shown on a terminal once stored ([`ChatEvent::RoomMessage`]);
//! the history that comes with a join, `/history` or a resume is marked
//! (`history`). After a reconnection the new client gets the old one's
//! [`ClientConfig::memory`], so the server replays what the rooms said
//! meanwhile ([`ChatEvent::Resumed`]) and drops offline direct messages
//! shown already; the active room stays active while the user is in it.
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
//! # Full screen
//!
//! [`Windows`] is the model of a full-screen client built on the console:
//! a window for the server, one per room and one per conversation, where
//! each [`ChatEvent`] goes, unread counts and mention marks, scrolling and
//! the fetches of older history ([`Console::fetch_history`]); a line typed
//! in a window becomes the console's lines ([`Windows::typed`]).
//! [`EditLine`] is its input line. Neither draws: `chatclient` draws them
//! with ratatui.
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
use crate::reliable::ChannelError;
use crate::server::RateLimit;
use crate::server::limits::TokenBucket;
use crate::session::{
    ErrorCode, LoginFailure, MessageRate, Operation, validate_text, validate_username,
};
use crate::time::{Duration, Instant};
use crate::wire::CloseCode;

mod address;
mod client_event;
mod command;
mod complete;
mod duration;
mod editline;
mod input;
mod mention;
mod outgoing;
mod render;
mod room;
mod room_roles;
mod sanitize;
mod windows;

use outgoing::{FALLBACK_RATE, Outgoing, Pacer, Unanswered};

pub use address::{HostPort, parse_port, parse_server_port};
pub use command::{
    COMMANDS, Command, CommandInfo, HISTORY_LINES, MAX_HISTORY_LINES, ParseError, RoomUserAction,
    find_command, help, parse_command,
};
pub use complete::complete;
pub use editline::{Edit, EditLine};
pub use mention::mentions;
pub use render::{
    CONTINUATION, ChatEvent, ClockTime, Delivery, SHOWN_CHARS, escape_json_invisibles, is_cut,
    render_json, render_plain, render_styled, rfc3339, rings_bell, user_color, utc_clock,
    wrap_rows,
};
pub use room_roles::MAX_IGNORED;
pub use sanitize::sanitize;
pub use windows::{
    Activity, Entry, HISTORY_PAGE, HistoryFetch, MAX_ENTRIES, Marker, WINDOW_COMMANDS, Window,
    WindowKind, Windows,
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
    /// The users ignored (`/ignore`, `/unignore`) changed: a driver that
    /// can keep files stores this list (private to the user) and gives it
    /// to [`Console::set_ignored`] next time.
    Ignored(Vec<String>),
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
    /// A command or a message to `room`, where plain lines go now
    /// (after `/join` or `/go`); `PM`, `DM` and `EX` still enter their
    /// flows.
    Room {
        /// The active room.
        room: String,
    },
}

impl PromptKind {
    /// The prompt of a line editor on a terminal: `alice> ` at the menu,
    /// `Message to bob: ` in the DM flow, the assignment's texts otherwise.
    pub fn terminal_text(&self, user: &str) -> String {
        match self {
            PromptKind::Menu => alloc::format!("{user}> "),
            PromptKind::Room { room } => alloc::format!("{}> ", sanitize(room)),
            PromptKind::DirectText { to } => alloc::format!("Message to {to}: "),
            other => other.text().to_string(),
        }
    }

    /// The assignment's prompt text: [`MENU_PROMPT`] (also with an active
    /// room: see [`PromptKind::terminal_text`]), `To: ` or `Message: `.
    pub fn text(&self) -> &'static str {
        match self {
            PromptKind::Menu | PromptKind::Room { .. } => MENU_PROMPT,
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
    /// The rooms the user is in, with their topics when known.
    rooms: BTreeMap<String, Option<String>>,
    /// Where plain lines go: this room, or everyone online (`None`).
    active: Option<String>,
    /// The users whose messages are hidden (`/ignore`), by
    /// [`username_key`](crate::session::username_key), to the name as
    /// typed.
    ignored: BTreeMap<String, String>,
    /// `/join`s not yet answered: the room (active at once, so that the
    /// lines after it go there) and the room active before, active again
    /// if the join is refused.
    joins: VecDeque<(String, Option<String>)>,
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
            rooms: BTreeMap::new(),
            active: None,
            ignored: BTreeMap::new(),
            joins: VecDeque::new(),
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

    /// An invite code to register a new account with, on a server whose
    /// registration is by invite (PROTOCOL.md §5.12); set it before the
    /// password is given.
    pub fn set_invite(&mut self, code: Option<String>) {
        self.client.set_invite(code);
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
        // The server resumes the rooms from where this session left them
        // and drops offline messages shown already.
        self.config.client.memory = self.client.memory().clone();
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

    /// The next datagram for the server, written into `buf` (cleared
    /// first); returns its length. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        self.client.poll_transmit(now, buf)
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
                Output::Reconnect | Output::DeviceToken(_) | Output::Ignored(_) => continue,
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
    /// names after `/`, the rooms the user is in where a room is expected,
    /// the names of users known to be online elsewhere (see [`complete`]).
    pub fn complete(&self, line: &str, cursor: usize) -> (usize, Vec<String>) {
        complete(line, cursor, self.online_names().1)
    }

    /// The users known to be online and the rooms the user is in (what
    /// [`Console::complete`] completes), and a number that changes
    /// whenever they do: a line editor on another thread copies them only
    /// when it changed.
    pub fn online_names(&self) -> (u64, impl Iterator<Item = &str>) {
        (
            self.online_changes,
            self.online
                .values()
                .map(String::as_str)
                .chain(self.rooms.keys().map(String::as_str)),
        )
    }

    /// The room plain lines go to, if any (`/join`, `/go`).
    pub fn active_room(&self) -> Option<&str> {
        self.active.as_deref()
    }

    /// The rooms the user is in.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
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

    /// The OS reported that nothing listens at the server's address any
    /// more (an ICMP port unreachable) while logged in, or while logging in
    /// again: the session counts as lost now rather than at the idle
    /// timeout, and the console reconnects as after any loss (when it
    /// would). For a driver that has another node of the same chat to try
    /// (a cluster); nothing happens while it already waits to reconnect.
    pub fn server_unreachable(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if matches!(self.mode, Mode::Offline { .. } | Mode::AwaitReconnect) {
            return;
        }
        let reason = CloseReason::ServerLost(ChannelError::Unacknowledged);
        if self.may_reconnect(&reason) {
            self.schedule_reconnect(now, &reason);
        }
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
        if self.hides(&event) {
            return;
        }
        if let ChatEvent::Public { text, .. }
        | ChatEvent::Direct { text, .. }
        | ChatEvent::OfflineDirect { text, .. }
        | ChatEvent::RoomMessage { text, .. }
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
        match self.active.clone() {
            Some(room) => self.prompt(PromptKind::Room { room }),
            None => self.prompt(PromptKind::Menu),
        }
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
}

fn error_event(message: impl Display) -> ChatEvent {
    ChatEvent::Error {
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests;
