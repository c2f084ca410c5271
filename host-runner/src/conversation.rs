//! The host's implementation of `chat:host/conversation`: the one
//! capability the guest gets.

use std::io::Write;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use udpchat_term::{EditorInput, LineEditor};

use crate::bindings::{
    Event, HostLimits, NetError, PasswordSource, SessionInfo, WallTime, conversation,
};
use crate::input::{Input, PasswordRequest, UserInput};
use crate::link::{Incoming, MAX_DATAGRAM, ServerLink};

/// Longest input line handed to the guest, in bytes.
pub const MAX_LINE: usize = 65_536;
/// Longest wait of one `next-event`.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for a password.
pub const PASSWORD_WAIT: Duration = Duration::from_secs(5 * 60);
/// Prompts longer than this are cut for display (they come from the guest).
const MAX_PROMPT_CHARS: usize = 200;
/// Longest text one `show` prints, in bytes.
const MAX_SHOW: usize = 1 << 20;
/// Most usernames kept for Tab completion.
const MAX_NAMES: usize = 10_000;

/// Where passwords come from, decided once at start-up like `chatclient`
/// does.
pub enum Passwords {
    /// `CHAT_PASSWORD` was set: used for the first attempt only.
    Env(String),
    /// Stdin is a terminal: prompt there, echo off.
    Terminal,
    /// Stdin is a pipe or file: its next line.
    InputLines,
}

impl Passwords {
    /// `CHAT_PASSWORD` if set, else by whether stdin is a terminal.
    pub fn from_env(stdin_is_terminal: bool) -> Self {
        match std::env::var("CHAT_PASSWORD") {
            Ok(password) => Passwords::Env(password),
            Err(_) if stdin_is_terminal => Passwords::Terminal,
            Err(_) => Passwords::InputLines,
        }
    }

    /// What the guest is told.
    pub fn source(&self) -> PasswordSource {
        match self {
            Passwords::Env(_) => PasswordSource::Environment,
            Passwords::Terminal => PasswordSource::Terminal,
            Passwords::InputLines => PasswordSource::InputLines,
        }
    }
}

/// The state behind the guest's imports.
pub struct Conversation {
    session: SessionInfo,
    link: ServerLink,
    incoming: Receiver<Incoming>,
    input: UserInput,
    /// `false` once end of input was delivered (or consumed by a password
    /// read): from then on only the socket is waited on.
    input_open: bool,
    passwords: Passwords,
    /// When control last went back to the guest: the watchdog's reference.
    last_return: Instant,
    /// The line editor, on a terminal: started by the guest's first prompt.
    editor: Option<LineEditor>,
    editor_started: bool,
    /// Where the device tokens are kept, if anywhere.
    devices: Option<udpchat_pin::DeviceTokens>,
}

impl Drop for Conversation {
    fn drop(&mut self) {
        // What the guest showed last is printed, and the terminal is put
        // back as it was.
        if let Some(mut editor) = self.editor.take() {
            editor.restore();
        }
    }
}

impl Conversation {
    /// Everything the guest may use; threads already running.
    pub fn new(
        session: SessionInfo,
        link: ServerLink,
        incoming: Receiver<Incoming>,
        input: UserInput,
        passwords: Passwords,
        editor: Option<LineEditor>,
        devices: Option<udpchat_pin::DeviceTokens>,
    ) -> Self {
        Conversation {
            session,
            link,
            incoming,
            input,
            input_open: true,
            passwords,
            last_return: Instant::now(),
            editor,
            editor_started: false,
            devices,
        }
    }

    /// Starts the line editor with its first prompt: from now on it reads
    /// the terminal and hands whole lines (a paste split into its lines) to
    /// `next-event`.
    fn start_editor(&mut self, prompt: &str) {
        let Some(editor) = self.editor.as_mut() else {
            return;
        };
        self.input.hand_over();
        let lines = self.input.editor_lines.clone();
        let started = editor.start(prompt, move |input| match input {
            EditorInput::Line(line) => lines.send(crate::input::Input::Line(line)).is_ok(),
            EditorInput::Eof => {
                let _ = lines.send(crate::input::Input::End);
                false
            }
            // Ctrl-C threw the line away; the editor goes on.
            EditorInput::Cancelled => true,
        });
        match started {
            Ok(()) => self.editor_started = true,
            Err(e) => {
                tracing::warn!("cannot start the line editor: {e}");
                self.editor = None;
            }
        }
    }

    /// How long the guest has been running since it last called an import
    /// of this interface.
    pub fn guest_running_for(&self) -> Duration {
        self.last_return.elapsed()
    }

    /// Marks the moment control goes (back) to the guest.
    pub fn touch(&mut self) {
        self.last_return = Instant::now();
    }

    fn wait_event(&mut self, wait: Duration) -> Event {
        // A clone (cheap) so the arms below may update `self`.
        let lines = if self.input_open {
            self.input.lines.clone()
        } else {
            crossbeam_channel::never()
        };
        select! {
            recv(self.incoming) -> item => match item {
                Ok(Incoming::Datagram(d)) => Event::Datagram(d),
                Ok(Incoming::Error(e)) => Event::NetworkError(e),
                Err(_) => {
                    // The socket thread ended; say so once, then only wait.
                    self.incoming = crossbeam_channel::never();
                    Event::NetworkError(NetError::Io("the socket receiver stopped".into()))
                }
            },
            recv(lines) -> item => match item {
                Ok(Input::Line(line)) => Event::Line(line),
                Ok(Input::End) | Err(_) => {
                    self.input_open = false;
                    Event::EndOfInput
                }
            },
            default(wait) => Event::Timeout,
        }
    }

    fn password(&mut self, prompt: String, attempt: u32) -> Option<String> {
        match &self.passwords {
            Passwords::Env(password) => (attempt == 0).then(|| password.clone()),
            Passwords::Terminal => {
                let requests = self.input.passwords.as_ref()?;
                let (reply, answer) = crossbeam_channel::bounded(1);
                requests.send(PasswordRequest { prompt, reply }).ok()?;
                answer.recv_timeout(PASSWORD_WAIT).ok().flatten()
            }
            Passwords::InputLines => {
                if !self.input_open {
                    return None;
                }
                match self.input.lines.recv_timeout(PASSWORD_WAIT) {
                    Ok(Input::Line(password)) => Some(password),
                    Ok(Input::End) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        self.input_open = false;
                        None
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                }
            }
        }
    }
}

impl conversation::Host for Conversation {
    fn limits(&mut self) -> HostLimits {
        self.touch();
        host_limits()
    }

    fn session(&mut self) -> SessionInfo {
        self.touch();
        self.session.clone()
    }

    fn send(&mut self, datagram: Vec<u8>) -> Result<(), NetError> {
        let result = self.link.send(&datagram);
        if let Err(e) = &result {
            tracing::debug!("send of {} bytes failed: {e:?}", datagram.len());
        }
        self.touch();
        result
    }

    fn next_server(&mut self) {
        match self.link.next_server() {
            Ok(server) => {
                tracing::debug!("the conversation turns to {server}");
                // What the server before sent and the guest has not read
                // yet is for a connection that is over.
                while let Ok(Incoming::Datagram(_) | Incoming::Error(_)) = self.incoming.try_recv()
                {
                }
            }
            // The reconnection's handshake then fails and the guest tries
            // the next one later, as after any loss.
            Err(e) => tracing::warn!("cannot turn to the next server: {e}"),
        }
        self.touch();
    }

    fn next_event(&mut self, timeout_ms: u32) -> Event {
        let wait = Duration::from_millis(timeout_ms.into()).min(MAX_WAIT);
        let event = self.wait_event(wait);
        self.touch();
        event
    }

    fn show(&mut self, mut text: String) {
        if text.len() > MAX_SHOW {
            let mut end = MAX_SHOW;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        match (&mut self.editor, self.editor_started) {
            (Some(editor), true) => editor.print(&text),
            _ => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
        self.touch();
    }

    fn set_prompt(&mut self, prompt: String) {
        let prompt: String = prompt
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_PROMPT_CHARS)
            .collect();
        if self.session.show_prompts {
            match (&self.editor, self.editor_started) {
                (Some(editor), true) => editor.set_prompt(&prompt),
                (Some(_), false) => self.start_editor(&prompt),
                // A terminal the editor cannot drive: a plain prompt.
                (None, _) => {
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "{prompt}");
                    let _ = out.flush();
                }
            }
        }
        self.touch();
    }

    fn completion_names(&mut self, names: Vec<String>) {
        if let Some(editor) = &self.editor {
            editor.set_names(names.iter().take(MAX_NAMES).map(String::as_str));
        }
        self.touch();
    }

    fn clock(&mut self) -> WallTime {
        let local = udpchat_term::local_time();
        self.touch();
        WallTime {
            hour: local.hour,
            minute: local.minute,
            utc: udpchat_term::utc_timestamp(),
        }
    }

    fn terminal_width(&mut self) -> Option<u32> {
        self.touch();
        udpchat_term::width().and_then(|w| u32::try_from(w).ok())
    }

    fn remember_device_token(&mut self, token: String) {
        let (server, user) = (&self.session.server, &self.session.username);
        if let Some(d) = self.devices.as_mut()
            && let Err(e) = d.set(server, user, &token)
        {
            eprintln!(
                "host-runner: cannot keep the device token in {}: {e}",
                d.path().display()
            );
        }
        self.touch();
    }

    fn remember_server_key(&mut self, key: Vec<u8>) {
        self.touch();
        let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
            return;
        };
        if self.session.server_key.is_some() {
            return;
        }
        let server = &self.session.server;
        match udpchat_pin::known_servers_path().map(|p| {
            udpchat_pin::KnownServers::open(p).and_then(|mut k| {
                k.add(server, &key)?;
                Ok(k.path().display().to_string())
            })
        }) {
            Some(Ok(path)) => eprintln!(
                "host-runner: {server} has key {}; remembered in {path}",
                udpchat_core::crypto::Hex(&key)
            ),
            _ => eprintln!(
                "host-runner: {server} has key {} (could not remember it)",
                udpchat_core::crypto::Hex(&key)
            ),
        }
    }

    fn read_password(&mut self, prompt: String, new_user: bool, attempt: u32) -> Option<String> {
        tracing::debug!("password requested (new user: {new_user}, attempt {attempt})");
        let prompt: String = prompt
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_PROMPT_CHARS)
            .collect();
        let password = self.password(prompt, attempt);
        self.touch();
        password
    }
}

/// The limits as the guest sees them.
pub fn host_limits() -> HostLimits {
    HostLimits {
        max_datagram_bytes: MAX_DATAGRAM as u32,
        max_line_bytes: MAX_LINE as u32,
        max_wait_ms: MAX_WAIT.as_millis() as u32,
    }
}
