//! `chatclient`: the udpchat client.
//!
//! On a terminal: a line editor with history, incoming lines printed above
//! the line being typed, `[HH:MM]` stamps and colours. Piped: the
//! assignment's plain lines. With `--json`: one JSON object per event.
//! Everything the user types means the same in all three (see
//! `udpchat_core::ui`).

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, anyhow};
use clap::{CommandFactory, Parser, Subcommand};
use crossbeam_channel::{Sender, select, unbounded};
use udpchat_core::client::StartError;
use udpchat_core::crypto::{Hex, parse_key};
use udpchat_core::ui::{
    ChatEvent, Console, ConsoleConfig, Output, PromptKind, render_json, render_plain,
    render_styled, wrap_rows,
};
use udpchat_native::clock::Clock;
use udpchat_native::config::{self, ClientFile};
use udpchat_native::manpage;
use udpchat_native::terminal::{self, ColorChoice, EditorInput, LineEditor};
use udpchat_native::udp;
use udpchat_pin::{DeviceTokens, KnownServers, device_tokens_path, known_servers_path};

/// The server's default port.
const DEFAULT_PORT: u16 = 65015;

const AFTER_HELP: &str = "\
Typing:
  A plain line is a public message. Commands: /msg USER TEXT (/dm), /me ACTION,
  /who (/users, /names), /quit [REASON] (/exit), /connect, /say TEXT, /help [COMMAND].
  The assignment's menu stays: PM, DM or EX (exactly so, in capitals) alone
  on a line enter that flow (/say PM sends the text \"PM\"). Ctrl-C throws
  away the line being typed; Ctrl-D on an empty line or the end of input
  exits. A pasted block of lines is sent line by line. Messages beyond the
  server's rate limit wait their turn (\"queued\") and are never dropped;
  the input history is kept in history in your config directory
  (CHAT_HISTORY overrides its path).

Password:
  Read from CHAT_PASSWORD if set; otherwise prompted for without echo on a
  terminal; otherwise the first line of standard input. Never a flag, never
  in the config file. After a reconnection the same password is used again.

Server key:
  Pinned on first use in known_servers in your config directory
  (CHAT_KNOWN_SERVERS overrides its path); a server that later shows another
  key is refused. --server-key pins one explicitly (ask the operator for
  `chatserver --print-key`).

Device tokens:
  After a login the server hands out a device token, kept in device_tokens
  in your config directory (CHAT_DEVICE_TOKENS overrides its path; mode
  0600). With it this device logs in even while others guess your password
  and the account is throttled for them.

Settings:
  Each comes from the first of: flags and arguments, environment variables,
  the config file (TOML: server, port, user, server_key, color, json,
  reconnect; in udpchat/config.toml of your config directory, or CHAT_CONFIG),
  built-in defaults (port 65015, color auto, reconnect on a terminal or with
  --json). NO_COLOR turns colour off unless --color always.

Exit status:
  0 after EX, /quit or the end of input; 1 when the server cannot be reached,
  refuses the login (piped: the password on the first line), changes its
  key or goes away (without reconnect), or when a message could not be
  sent; 2 on usage errors.

Examples:
  chatclient localhost 65015 momodou
  CHAT_SERVER=chat.example.org CHAT_USER=alice chatclient
  printf 'secret\\nhello all\\n/msg bob hi\\nEX\\n' | chatclient 127.0.0.1 65015 alice
  CHAT_PASSWORD=secret chatclient --json 127.0.0.1 65015 bot | jq -c 'select(.type==\"public\")'
  chatclient completions bash > ~/.local/share/bash-completion/completions/chatclient";

/// The udpchat client: log in, send public and direct messages, see who is
/// online.
#[derive(Parser, Debug)]
#[command(
    name = "chatclient",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The server's host name or address (config: server).
    #[arg(env = "CHAT_SERVER")]
    host: Option<String>,
    /// The server's UDP port (config: port) [default: 65015].
    #[arg(env = "CHAT_PORT")]
    port: Option<u16>,
    /// Your username, registered on first login (config: user).
    #[arg(env = "CHAT_USER")]
    username: Option<String>,
    /// The server's public key (64 hex digits), instead of trusting the
    /// key it shows on first use (config: server_key).
    #[arg(long, env = "CHAT_SERVER_KEY", value_parser = parse_key_arg)]
    server_key: Option<[u8; 32]>,
    /// Print every event as one JSON object per line (commands are still
    /// read as lines) (config: json).
    #[arg(long)]
    json: bool,
    /// When to colour the output (config: color) [default: auto].
    #[arg(long, value_enum, value_name = "WHEN")]
    color: Option<ColorChoice>,
    /// Reconnect and log in again when the server goes away (config:
    /// reconnect) [default: on a terminal or with --json].
    #[arg(long, overrides_with = "no_reconnect")]
    reconnect: bool,
    /// End with status 1 when the server goes away.
    #[arg(long, overrides_with = "reconnect")]
    no_reconnect: bool,
    /// The config file [default: udpchat/config.toml in your config
    /// directory].
    #[arg(long, env = "CHAT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the manual pages into DIR (for ci/man.sh).
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Print a completion script for SHELL on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn parse_key_arg(s: &str) -> Result<[u8; 32], String> {
    parse_key(s).ok_or_else(|| "expected 64 hex digits".to_string())
}

/// How events are shown.
#[derive(Clone, Copy, Debug)]
enum Display {
    /// One JSON object per line.
    Json,
    /// The chat look, with `[HH:MM]`, for a terminal.
    Styled { color: bool },
    /// The assignment's lines (coloured only with --color always).
    Plain { color: bool },
}

/// The settings, from flags, environment, config file and defaults.
#[derive(Debug)]
struct Settings {
    host: String,
    port: u16,
    username: String,
    server_key: Option<[u8; 32]>,
    json: bool,
    color: ColorChoice,
    reconnect: Option<bool>,
}

fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message)
}

fn settings(cli: Cli) -> Result<Settings, clap::Error> {
    let explicit = cli.config.as_deref().filter(|p| !p.as_os_str().is_empty());
    let file = match config::config_path(explicit) {
        Some(path) => config::load(&path, explicit.is_some())
            .map_err(|e| Cli::command().error(clap::error::ErrorKind::Io, e))?,
        None => ClientFile::default(),
    };
    let file_key = match &file.server_key {
        Some(k) => Some(parse_key(k).ok_or_else(|| {
            Cli::command().error(
                clap::error::ErrorKind::ValueValidation,
                "server_key in the config file: expected 64 hex digits",
            )
        })?),
        None => None,
    };
    let host = config::pick(cli.host, file.server, None).ok_or_else(|| {
        usage_error("no server: give HOST, set CHAT_SERVER, or set server in the config file")
    })?;
    let port = config::pick(cli.port, file.port, Some(DEFAULT_PORT)).unwrap_or(DEFAULT_PORT);
    let username = config::pick(cli.username, file.user, None).ok_or_else(|| {
        usage_error("no username: give USERNAME, set CHAT_USER, or set user in the config file")
    })?;
    let flag_reconnect = if cli.reconnect {
        Some(true)
    } else if cli.no_reconnect {
        Some(false)
    } else {
        None
    };
    Ok(Settings {
        host,
        port,
        username,
        server_key: config::pick(cli.server_key, file_key, None),
        json: cli.json || file.json.unwrap_or(false),
        color: config::pick(cli.color, file.color, Some(ColorChoice::Auto)).unwrap_or_default(),
        reconnect: config::pick(flag_reconnect, file.reconnect, None),
    })
}

enum Input {
    Datagram(Vec<u8>),
    Line(String),
    Eof,
    /// Ctrl-C outside the line editor, SIGTERM, SIGHUP.
    Quit,
    /// Ctrl-C in the line editor: the line was thrown away.
    Cancelled,
    Password(Option<String>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_exit(&e),
    };
    if let Some(Sub::Completions { shell }) = cli.command {
        let mut cmd = Cli::command();
        clap_complete::generate(shell, &mut cmd, "chatclient", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &cli.generate_man {
        return match manpage::write_pages(Cli::command(), dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "chatclient: cannot write the manual pages to {}: {e}",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    let settings = match settings(cli) {
        Ok(s) => s,
        Err(e) => return usage_exit(&e),
    };
    match run(settings) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chatclient: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a clap error (or --help, --version) and exits 2 (0 for help).
fn usage_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Resolves `host`, preferring IPv4 (the server's default bind address is
/// IPv4) when the name has both.
fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| anyhow!("{host} has no address"))
}

/// Where events and prompts go.
struct Screen {
    display: Display,
    editor: Option<LineEditor>,
    /// Prompts without a line editor (a terminal rustyline cannot drive).
    plain_prompts: bool,
    stdout: std::io::Stdout,
}

impl Screen {
    /// Stops printing through the line editor: the client is about to
    /// exit, and what the editor's thread has not printed by then would
    /// never be seen. The terminal is put back as it was, below the line
    /// being typed.
    fn detach_editor(&mut self) {
        if let Some(mut editor) = self.editor.take() {
            editor.restore();
        }
    }

    fn event(&mut self, event: &ChatEvent) -> Result<()> {
        let text = match self.display {
            Display::Json => render_json(event, &terminal::utc_timestamp()),
            Display::Styled { color } => render_styled(event, Some(terminal::local_time()), color),
            Display::Plain { color: true } => render_styled(event, None, true),
            Display::Plain { color: false } => render_plain(event),
        };
        // On a terminal, long messages are cut into rows that the terminal
        // does not wrap again, each continuation marked.
        let text = match (self.display, terminal::width()) {
            (Display::Json, _) | (_, None) => text,
            (_, Some(width)) => wrap_rows(&text, width),
        };
        match &mut self.editor {
            Some(editor) => editor.print(&text),
            None => {
                let mut out = self.stdout.lock();
                writeln!(out, "{text}")?;
                out.flush()?;
            }
        }
        Ok(())
    }

    fn prompt(&mut self, kind: &PromptKind, user: &str) -> Result<()> {
        let prompt = terminal_prompt(kind, user);
        match &self.editor {
            Some(editor) => editor.set_prompt(&prompt),
            None if self.plain_prompts => {
                let mut out = self.stdout.lock();
                write!(out, "{prompt}")?;
                out.flush()?;
            }
            None => {}
        }
        Ok(())
    }
}

/// The prompt of the line editor: `alice> ` at the menu, the assignment's
/// prompts in its flows.
fn terminal_prompt(kind: &PromptKind, user: &str) -> String {
    kind.terminal_text(user)
}

fn run(settings: Settings) -> Result<u8> {
    let stdin_terminal = std::io::stdin().is_terminal();
    let stdout_terminal = std::io::stdout().is_terminal();
    let color = settings.color.enabled(stdout_terminal);
    let display = if settings.json {
        Display::Json
    } else if stdout_terminal {
        Display::Styled { color }
    } else {
        Display::Plain { color }
    };
    let use_editor = stdin_terminal && stdout_terminal && !settings.json;
    // A terminal rustyline cannot drive (TERM=dumb) reads plain lines.
    let editor = if use_editor {
        LineEditor::new(udpchat_pin::history_path()).ok()
    } else {
        None
    };
    let plain_prompts = use_editor && editor.is_none();
    let mut screen = Screen {
        display,
        editor,
        plain_prompts,
        stdout: std::io::stdout(),
    };
    let result = drive(&settings, &mut screen, stdin_terminal);
    if let Some(editor) = &mut screen.editor {
        editor.restore();
    }
    result
}

fn drive(settings: &Settings, screen: &mut Screen, interactive: bool) -> Result<u8> {
    let server = resolve(&settings.host, settings.port)?;
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
    socket
        .connect(server)
        .with_context(|| format!("cannot reach {server}"))?;
    let socket = Arc::new(socket);

    let env_password = std::env::var("CHAT_PASSWORD").ok();
    let password_from_lines = env_password.is_none() && !interactive;

    let server_name = format!("{}:{}", settings.host, settings.port);
    let mut known = known_servers_path().and_then(|p| KnownServers::open(p).ok());
    let pinned = settings
        .server_key
        .or_else(|| known.as_ref().and_then(|k| k.get(&server_name)));

    let clock = Clock::new();
    let mut config = ConsoleConfig {
        password_from_lines,
        reconnect: settings.reconnect.unwrap_or(interactive || settings.json),
        ..ConsoleConfig::default()
    };
    config.client.server_key = pinned;
    let mut devices = device_tokens_path().and_then(|p| DeviceTokens::open(p).ok());
    // Where tokens can be kept, present the one kept (or ask for a first).
    config.client.device_token = devices.as_ref().map(|d| {
        d.get(&server_name, &settings.username)
            .unwrap_or_default()
            .to_string()
    });
    // Datagrams above 1200 bytes only where they cannot be fragmented.
    config.client.channel.max_datagram = udp::max_datagram(&socket);
    let mut console = match Console::new(clock.now(), config, rand::random(), &settings.username) {
        Ok(c) => c,
        Err(e) => {
            match e {
                StartError::Username(e) => {
                    eprintln!("chatclient: invalid username {:?}: {e}", settings.username);
                }
                other => eprintln!("chatclient: {other}"),
            }
            return Ok(2);
        }
    };

    let (tx, rx) = unbounded::<Input>();
    spawn_socket_reader(socket.clone(), tx.clone())?;
    {
        let tx = tx.clone();
        // Ctrl-C outside the line editor, and SIGTERM: leave with EX.
        ctrlc::set_handler(move || {
            let _ = tx.send(Input::Quit);
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let mut input_started = false;
    if !interactive {
        spawn_stdin_reader(tx.clone())?;
        input_started = true;
    }
    let mut quits = 0;
    let mut cancel_hint_shown = false;
    loop {
        while let Some(d) = console.poll_transmit(clock.now()) {
            // A send error (e.g. ICMP unreachable) shows up later as a lost
            // server; keep going.
            let _ = socket.send(&d);
        }
        while let Some(out) = console.poll() {
            if console.exit_code().is_some() {
                // The last messages (why the session ended) are printed
                // here and now, not handed to the editor's thread.
                screen.detach_editor();
            }
            match out {
                Output::Event(event) => screen.event(&event)?,
                Output::Prompt(kind) => screen.prompt(&kind, console.client().username())?,
                // Trust on first use: pin what the server proved.
                Output::ServerKey(key) if pinned.is_none() => {
                    remember_key(&mut known, &server_name, &key);
                }
                // Kept so that this device gets in while others guess the
                // password (PROTOCOL.md §5.8).
                Output::DeviceToken(token) => {
                    if let Some(d) = devices.as_mut()
                        && let Err(e) = d.set(&server_name, &settings.username, &token)
                    {
                        eprintln!(
                            "chatclient: cannot keep the device token in {}: {e}",
                            d.path().display()
                        );
                    }
                }
                Output::NeedPassword { failures, .. } => {
                    if let Some(p) = &env_password {
                        if failures > 0 {
                            console.give_up("! login refused with CHAT_PASSWORD");
                        } else {
                            console.submit_password(clock.now(), p);
                        }
                    } else if interactive {
                        spawn_password_prompt(tx.clone())?;
                    }
                }
                Output::Reconnect => console.reconnect(clock.now(), rand::random()),
                _ => {}
            }
        }
        if let Some(code) = console.exit_code() {
            // Acknowledge the server's last message before leaving.
            while let Some(d) = console.poll_transmit(clock.now()) {
                let _ = socket.send(&d);
            }
            return Ok(code);
        }
        if interactive && !input_started && console.is_ready() {
            match &mut screen.editor {
                Some(editor) => {
                    let tx = tx.clone();
                    let prompt = terminal_prompt(&PromptKind::Menu, console.client().username());
                    editor.start(&prompt, move |input| {
                        let input = match input {
                            EditorInput::Line(l) => Input::Line(l),
                            EditorInput::Eof => Input::Eof,
                            EditorInput::Cancelled => Input::Cancelled,
                        };
                        tx.send(input).is_ok()
                    })?;
                }
                None => spawn_stdin_reader(tx.clone())?,
            }
            input_started = true;
        }
        let wait = console
            .poll_timeout()
            .map(|t| clock.until(t))
            .unwrap_or(StdDuration::from_secs(1));
        let input = select! {
            recv(rx) -> input => input.ok(),
            default(wait) => None,
        };
        let mut next = input;
        // Take whatever else arrived before running timers.
        while let Some(input) = next.take().or_else(|| rx.try_recv().ok()) {
            let now = clock.now();
            match input {
                Input::Datagram(d) => console.handle_datagram(now, &d),
                Input::Line(l) => console.handle_line(now, &l),
                Input::Eof | Input::Password(None) => console.handle_eof(now),
                Input::Password(Some(p)) => console.submit_password(now, &p),
                Input::Cancelled => {
                    if !cancel_hint_shown {
                        cancel_hint_shown = true;
                        screen.event(&ChatEvent::Info {
                            text: "(Ctrl-C throws away the line; Ctrl-D or /quit leaves)"
                                .to_string(),
                        })?;
                    }
                }
                Input::Quit => {
                    quits += 1;
                    if quits > 1 {
                        // Asked twice: do not wait for the server.
                        return Ok(1);
                    }
                    console.quit(now);
                }
            }
        }
        if console.poll_timeout().is_some_and(|t| t <= clock.now()) {
            console.handle_timeout(clock.now());
        }
    }
}

/// Pins a key learned on first use, as ssh does.
fn remember_key(known: &mut Option<KnownServers>, server_name: &str, key: &[u8; 32]) {
    match known.as_mut().map(|k| k.add(server_name, key)) {
        Some(Ok(())) => eprintln!(
            "chatclient: {server_name} has key {}; remembered in {}",
            Hex(key),
            known
                .as_ref()
                .map(|k| k.path().display().to_string())
                .unwrap_or_default()
        ),
        _ => eprintln!(
            "chatclient: {server_name} has key {} (could not remember it)",
            Hex(key)
        ),
    }
}

/// How long one receive waits before it starts again.
const RECV_TIMEOUT: StdDuration = StdDuration::from_millis(250);

fn spawn_socket_reader(socket: Arc<UdpSocket>, tx: Sender<Input>) -> Result<()> {
    thread::Builder::new()
        .name("udp-recv".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            // Each receive gives up after a while and starts again: a
            // blocking receive that an error interrupted (an ICMP port
            // unreachable from a server that was gone for a moment) must
            // not be the last one, whatever the platform does with it.
            let _ = socket.set_read_timeout(Some(RECV_TIMEOUT));
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        if tx.send(Input::Datagram(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    // ICMP errors from an absent server: the channel's idle
                    // timeout reports the server as lost.
                    Err(_) => thread::sleep(StdDuration::from_millis(50)),
                }
            }
        })?;
    Ok(())
}

fn spawn_stdin_reader(tx: Sender<Input>) -> Result<()> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock();
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Input::Eof);
                    return;
                }
                Ok(_) => {
                    let l = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(Input::Line(l)).is_err() {
                        return;
                    }
                }
            }
        }
    })?;
    Ok(())
}

fn spawn_password_prompt(tx: Sender<Input>) -> Result<()> {
    thread::Builder::new()
        .name("password".into())
        .spawn(move || {
            let p = rpassword::prompt_password("Password: ").ok();
            let _ = tx.send(Input::Password(p));
        })?;
    Ok(())
}
