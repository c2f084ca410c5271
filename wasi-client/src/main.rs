//! The udpchat client as a WebAssembly component: `chatclient`'s line mode,
//! run by `host-runner` in a sandbox.
//!
//! All protocol, session and console logic is `udpchat_core::ui::Console`;
//! this file is only the loop that feeds it the host's events and carries
//! out its outputs. The host's imports (`host-runner/wit/chat-host.wit`) are
//! the guest's only way to the world besides stdout and stderr.
//!
//! * time: WASI's monotonic clock (`std::time::Instant`), from 0 at start;
//! * the connection id and the handshake's ephemeral key: 32 random bytes
//!   from WASI's `wasi:random/random` (through `getrandom`);
//! * the server's pinned key: from the host's `session`; a key learned on
//!   first use goes back to the host with `remember-server-key`;
//! * the password: from the console's own input lines when stdin is piped,
//!   else from the host's `read-password` (`CHAT_PASSWORD`, or a terminal
//!   prompt without echo), as `chatclient` does;
//! * what the user sees: each event rendered as `chatclient` renders it (the
//!   chat look with `[HH:MM]` and colours, the assignment's plain lines, or
//!   JSON, as the host's `session-info.display` says) and handed to the
//!   host's `show`, which prints it above the line being typed; prompts go
//!   to the host's line editor with `set-prompt`;
//! * reconnection: when the server goes away after a login, a new handshake
//!   over the same conversation, with fresh random bytes, as `chatclient`
//!   does; with other nodes of the chat named (`--fallback`), the host's
//!   `next-server` turns the conversation to the next one first, and a
//!   server reported unreachable after a login is given up at once.

use std::process::ExitCode;

use udpchat_core::Instant;
use udpchat_core::client::StartError;
use udpchat_core::ui::{
    ChatEvent, ClockTime, Console, ConsoleConfig, Output, render_json, render_plain, render_styled,
    rings_bell, wrap_rows,
};
use wasi_client::host::{self, Display, Event, NetError, PasswordSource, SessionInfo};

/// The prompt shown by the host on a terminal (the console has already
/// said whether a new password is being chosen).
const PASSWORD_PROMPT: &str = "Password: ";

fn main() -> ExitCode {
    ExitCode::from(run())
}

/// Microseconds since the client started, on WASI's monotonic clock.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        let micros = self.0.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

fn run() -> u8 {
    let session = host::session();
    let limits = host::limits();
    let clock = Clock(std::time::Instant::now());
    let Some(random) = fresh_random() else {
        return 1;
    };
    let mut config = ConsoleConfig {
        password_from_lines: session.password_source == PasswordSource::InputLines,
        reconnect: session.reconnect,
        // As chatclient: on a terminal, your own messages shown as chat.
        show_sent: session.display == Display::Styled,
        ..ConsoleConfig::default()
    };
    config.client.device_token = session.device_token.clone();
    // As chatclient's default --connect-timeout: a server that does not
    // answer the handshake is reported in 5 s, not after the idle timeout.
    config.client.handshake_timeout = Some(udpchat_core::Duration::from_secs(5));
    config.client.server_key = session
        .server_key
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    let mut console = match Console::new(clock.now(), config, random, &session.username) {
        Ok(console) => console,
        Err(e) => {
            match e {
                StartError::Username(e) => {
                    eprintln!("wasi-client: invalid username {:?}: {e}", session.username);
                }
                other => eprintln!("wasi-client: {other}"),
            }
            // chatclient exits 2 here; WASI's exit carries only success or
            // failure, so a guest's 2 would arrive as 1 anyway.
            return 1;
        }
    };
    let mut notes = Notes::default();
    drive(
        &mut console,
        &clock,
        &session,
        limits.max_wait_ms,
        &mut notes,
    )
}

/// 32 bytes from WASI's random source, for a connection.
fn fresh_random() -> Option<[u8; 32]> {
    let mut random = [0u8; 32];
    match getrandom::fill(&mut random) {
        Ok(()) => Some(random),
        Err(e) => {
            eprintln!("wasi-client: no randomness for the connection: {e}");
            None
        }
    }
}

/// An event as the user sees it: as `chatclient` renders it for the same
/// display.
fn render(event: &ChatEvent, session: &SessionInfo) -> String {
    let text = match session.display {
        Display::Json => return render_json(event, &host::clock().utc),
        Display::Styled => {
            let now = host::clock();
            let time = ClockTime {
                hour: now.hour,
                minute: now.minute,
            };
            render_styled(event, Some(time), session.color)
        }
        Display::Plain if session.color => render_styled(event, None, true),
        Display::Plain => render_plain(event),
    };
    // On a terminal, long messages are cut into rows that the terminal
    // does not wrap again, each continuation marked.
    let mut text = match host::terminal_width() {
        Some(width) => wrap_rows(&text, width as usize),
        None => text,
    };
    // A message that names you, or a direct message, rings the terminal's
    // bell, as in chatclient.
    if session.display == Display::Styled && rings_bell(event) {
        text.push('\x07');
    }
    text
}

/// The driving loop: outputs out, then wait for one event, then timers.
fn drive(
    console: &mut Console,
    clock: &Clock,
    session: &SessionInfo,
    max_wait_ms: u32,
    notes: &mut Notes,
) -> u8 {
    let mut completion_names = 0;
    // Whether a login ever succeeded: from then on, with other nodes to
    // try, an unreachable server is given up at once (as chatclient does).
    let mut logged_in = false;
    let fallbacks = session.fallbacks > 0;
    loop {
        if send_all(console, clock, notes) && logged_in && fallbacks {
            console.server_unreachable(clock.now());
        }
        while let Some(output) = console.poll() {
            match output {
                Output::Event(event) => {
                    logged_in |= matches!(event, ChatEvent::LoggedIn { .. });
                    host::show(&render(&event, session));
                }
                Output::Prompt(kind) if session.show_prompts => {
                    host::set_prompt(&kind.terminal_text(console.client().username()));
                }
                // The host pins it on first use.
                Output::ServerKey(key) => host::remember_server_key(&key),
                Output::NeedPassword { new_user, failures } => match session.password_source {
                    // The console takes it from the next input line.
                    PasswordSource::InputLines => {}
                    PasswordSource::Environment if failures > 0 => {
                        console.give_up("! login refused with CHAT_PASSWORD");
                    }
                    PasswordSource::Environment | PasswordSource::Terminal => {
                        match host::read_password(PASSWORD_PROMPT, new_user, failures) {
                            Some(password) => console.submit_password(clock.now(), &password),
                            None => console.handle_eof(clock.now()),
                        }
                    }
                },
                // The server went away: a new handshake over the same
                // conversation, to the next node when there are others.
                Output::Reconnect => match fresh_random() {
                    Some(random) => {
                        if fallbacks {
                            host::next_server();
                        }
                        console.reconnect(clock.now(), random);
                    }
                    None => console.give_up("! no randomness for a new connection"),
                },
                // The host keeps it for the next run.
                Output::DeviceToken(token) => host::remember_device_token(&token),
                _ => {}
            }
        }
        // The host's editor completes the users known to be online.
        {
            let (names_version, names) = console.online_names();
            if session.show_prompts && names_version != completion_names {
                completion_names = names_version;
                host::completion_names(&names.map(str::to_string).collect::<Vec<_>>());
            }
        }
        if let Some(code) = console.exit_code() {
            // Acknowledge the server's last messages before leaving.
            send_all(console, clock, notes);
            return code;
        }

        let wait_ms = match console.poll_timeout() {
            Some(deadline) => {
                // Round up: waking a little early would only spin.
                let micros = deadline.saturating_since(clock.now()).as_micros();
                u32::try_from(micros.div_ceil(1000))
                    .unwrap_or(u32::MAX)
                    .min(max_wait_ms)
            }
            None => max_wait_ms,
        };
        let event = host::next_event(wait_ms);
        let now = clock.now();
        match event {
            Event::Datagram(datagram) => console.handle_datagram(now, &datagram),
            Event::Line(line) => console.handle_line(now, &line),
            Event::EndOfInput => console.handle_eof(now),
            Event::Timeout => {}
            Event::NetworkError(e) => {
                notes.network_error(&e);
                if matches!(e, NetError::Unreachable) && logged_in && fallbacks {
                    console.server_unreachable(now);
                }
            }
        }
        if console.poll_timeout().is_some_and(|t| t <= clock.now()) {
            console.handle_timeout(clock.now());
        }
    }
}

/// Sends every datagram the console has ready; true when the network
/// reported the server unreachable.
fn send_all(console: &mut Console, clock: &Clock, notes: &mut Notes) -> bool {
    let mut datagram = Vec::new();
    let mut unreachable = false;
    while console.poll_transmit(clock.now(), &mut datagram).is_some() {
        if let Err(e) = host::send(&datagram) {
            // Loss is the reliable channel's business: it retransmits, and
            // declares the server lost if nothing gets through.
            unreachable |= matches!(e, NetError::Unreachable);
            notes.network_error(&e);
        }
    }
    unreachable
}

/// Network trouble worth one line on stderr, not one per datagram.
#[derive(Default)]
struct Notes {
    unreachable: bool,
    too_large: bool,
    io: bool,
}

impl Notes {
    fn network_error(&mut self, e: &NetError) {
        let (seen, message) = match e {
            NetError::Unreachable => (
                &mut self.unreachable,
                "the network reports the server unreachable; retrying".to_owned(),
            ),
            NetError::TooLarge(limit) => (
                &mut self.too_large,
                format!("a datagram over the host's {limit}-byte limit was dropped"),
            ),
            NetError::Io(description) => (&mut self.io, format!("socket error: {description}")),
        };
        if !*seen {
            *seen = true;
            eprintln!("wasi-client: {message}");
        }
    }
}
