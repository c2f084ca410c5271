//! `chatclient`: the udpchat client.
//!
//! On a terminal: full-screen windows for the server, each room and each
//! conversation, with a status bar, member lists and an input line
//! (`tui`); with `--line`, a line editor with history, incoming lines
//! printed above the line being typed, `[HH:MM]` stamps and colours.
//! Piped: the assignment's plain lines. With `--json`: one JSON object per event.
//! Everything the user types means the same in all three (see
//! `udpchat_core::ui`).

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{Sender, select, unbounded};
use udpchat_core::client::StartError;
use udpchat_core::session::RegistrationMode;
use udpchat_core::time::Duration;
use udpchat_core::ui::{
    ChatEvent, Console, ConsoleConfig, Output, PromptKind, render_json, render_plain,
    render_styled, rings_bell, wrap_rows,
};
use udpchat_native::address::ServerName;
use udpchat_native::clock::Clock;
use udpchat_native::ignored::{IgnoreFile, ignored_path};
use udpchat_native::manpage;
use udpchat_native::terminal::{self, EditorInput, LineEditor};
use udpchat_native::udp;
use udpchat_pin::{DeviceTokens, KnownServers, device_tokens_path, known_servers_path};

#[path = "chatclient/cli.rs"]
mod cli;
#[path = "chatclient/ending.rs"]
mod ending;
#[path = "chatclient/server_key.rs"]
mod server_key;
#[path = "chatclient/tui/mod.rs"]
mod tui;

use cli::{Settings, Sub, command, settings, usage_exit};
use ending::{Ending, is_port_unreachable, transmit};
use server_key::PinSource;

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

enum Input {
    Datagram(Vec<u8>),
    Line(String),
    Eof,
    /// Ctrl-C outside the line editor, SIGTERM, SIGHUP.
    Quit,
    /// Ctrl-C in the line editor: the line was thrown away.
    Cancelled,
    Password(Option<String>),
    /// An invite code typed at the prompt, before the password.
    Invite(String),
    /// The system says nothing listens on the server's port (an ICMP port
    /// unreachable).
    Refused,
    /// A key, a paste, the mouse or a resize, in full-screen mode.
    Term(crossterm::event::Event),
}

/// The full-screen mode: its state from the start (events are kept for
/// the windows while the password is asked), its terminal once the
/// console takes input.
struct Full {
    state: tui::FullScreen,
    tui: Option<tui::Tui>,
    color: bool,
}

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(c) => c,
        Err(e) => return usage_exit(&e),
    };
    if let Some(Sub::Completions { shell }) = cli.command {
        let mut cmd = command(false);
        clap_complete::generate(shell, &mut cmd, "chatclient", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &cli.generate_man {
        return match manpage::write_pages(command(false), dir) {
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
    if let Some(server) = &cli.forget_server {
        return server_key::forget(server);
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

/// Every address of `host`, IPv4 first (the server's default bind address
/// is IPv4).
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    if addrs.is_empty() {
        return Err(anyhow!("{host} has no address"));
    }
    Ok(addrs)
}

/// Opens the client's socket, bound to `--bind` (or any address) and
/// connected to the server: the first address of the server with a local
/// address of the same family.
fn open_socket(settings: &Settings) -> Result<(UdpSocket, SocketAddr)> {
    let servers = resolve(&settings.host, settings.port)?;
    let (server, local) = match &settings.bind {
        Some(bind) => {
            let locals = resolve(&bind.host, bind.port.unwrap_or(0))
                .context("--bind: cannot use that address")?;
            servers
                .iter()
                .find_map(|s| {
                    let l = locals.iter().find(|l| l.is_ipv4() == s.is_ipv4())?;
                    Some((*s, *l))
                })
                .ok_or_else(|| {
                    anyhow!(
                        "--bind {}: no address of the same family (IPv4 or IPv6) as the \
                         server's ({})",
                        ServerName {
                            host: &bind.host,
                            port: bind.port.unwrap_or(0)
                        },
                        servers[0]
                    )
                })?
        }
        None => {
            let server = servers[0];
            let local: SocketAddr = if server.is_ipv4() {
                "0.0.0.0:0".parse()?
            } else {
                "[::]:0".parse()?
            };
            (server, local)
        }
    };
    let socket =
        UdpSocket::bind(local).with_context(|| format!("cannot open a UDP socket on {local}"))?;
    socket
        .connect(server)
        .with_context(|| format!("cannot reach {server} from {local}"))?;
    Ok((socket, server))
}

/// Where events and prompts go.
struct Screen {
    display: Display,
    editor: Option<LineEditor>,
    /// Prompts without a line editor (a terminal rustyline cannot drive).
    plain_prompts: bool,
    stdout: std::io::Stdout,
    /// The chat log (`--log`), if kept.
    log: Option<std::fs::File>,
    /// The full-screen mode, unless lines are printed.
    full: Option<Full>,
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
        if let Some(mut full) = self.full.take()
            && let Some(mut tui) = full.tui.take()
        {
            tui.restore();
            // What was not sent stays in sight once the windows are gone.
            let mut out = self.stdout.lock();
            for event in full.state.not_sent() {
                let _ = writeln!(out, "{}", tui::line_text(event, full.color));
            }
            let _ = out.flush();
        }
    }

    fn event(&mut self, event: &ChatEvent) -> Result<()> {
        if let Some(log) = &mut self.log {
            // A log that cannot be written is given up, with a warning.
            let line = format!("{} {}\n", terminal::utc_timestamp(), render_plain(event));
            if let Err(e) = log.write_all(line.as_bytes()) {
                eprintln!("chatclient: the chat log stops: {e}");
                self.log = None;
            }
        }
        if let Some(full) = &mut self.full {
            full.state.event(event, std::time::Instant::now());
            if full.tui.is_some() {
                // A message that names you, or a direct message, rings the
                // terminal's bell, as in line mode.
                if rings_bell(event) {
                    let mut out = self.stdout.lock();
                    out.write_all(b"\x07")?;
                    out.flush()?;
                }
                return Ok(());
            }
        }
        let text = match self.display {
            Display::Json => render_json(event, &terminal::utc_timestamp()),
            Display::Styled { color } => render_styled(event, Some(terminal::local_time()), color),
            Display::Plain { color: true } => render_styled(event, None, true),
            Display::Plain { color: false } => render_plain(event),
        };
        // On a terminal, long messages are cut into rows that the terminal
        // does not wrap again, each continuation marked.
        let mut text = match (self.display, terminal::width()) {
            (Display::Json, _) | (_, None) => text,
            (_, Some(width)) => wrap_rows(&text, width),
        };
        // A message that names you, or a direct message, rings the
        // terminal's bell.
        if matches!(self.display, Display::Styled { .. }) && rings_bell(event) {
            text.push('\x07');
        }
        match &mut self.editor {
            // Until the editor reads lines, what is printed goes straight
            // to the terminal, in order with the password prompt.
            Some(editor) if editor.is_started() => editor.print(&text),
            _ => {
                let mut out = self.stdout.lock();
                writeln!(out, "{text}")?;
                out.flush()?;
            }
        }
        Ok(())
    }

    fn prompt(&mut self, kind: &PromptKind, user: &str) -> Result<()> {
        if let Some(full) = &mut self.full {
            full.state.prompt(kind);
            return Ok(());
        }
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
    // Full screen on a terminal that can draw it, unless --line.
    let full =
        (use_editor && !settings.line && std::env::var_os("TERM").is_none_or(|t| t != "dumb"))
            .then(|| Full {
                state: tui::FullScreen::new(
                    &settings.username,
                    ServerName {
                        host: &settings.host,
                        port: settings.port,
                    }
                    .to_string(),
                    tui::Theme {
                        color,
                        light: settings.theme == cli::Theme::Light,
                    },
                ),
                tui: None,
                color,
            })
            .map(|mut full| {
                if let Some(path) = udpchat_pin::history_path() {
                    full.state.keep_history(path);
                }
                full
            });
    // A terminal rustyline cannot drive (TERM=dumb) reads plain lines.
    let editor = if use_editor && full.is_none() {
        LineEditor::new(udpchat_pin::history_path()).ok()
    } else {
        None
    };
    let plain_prompts = use_editor && editor.is_none();
    let mut screen = Screen {
        log: match settings.log {
            true => Some(open_log(&settings)?),
            false => None,
        },
        display,
        editor,
        plain_prompts,
        stdout: std::io::stdout(),
        full,
    };
    let result = drive(&settings, &mut screen, stdin_terminal);
    screen.detach_editor();
    result
}

fn drive(settings: &Settings, screen: &mut Screen, interactive: bool) -> Result<u8> {
    let (socket, server_addr) = open_socket(settings)?;
    let socket = Arc::new(socket);

    let env_password = std::env::var("CHAT_PASSWORD").ok();
    let password_from_lines = env_password.is_none() && !interactive;

    let server_name = server_key::pin_name(&settings.host, settings.port);
    let mut known = known_servers_path().and_then(|p| KnownServers::open(p).ok());
    let (pinned, pin_source) = match (settings.server_key, &known) {
        (Some(key), _) => (Some(key), PinSource::Setting),
        (None, Some(k)) => (
            k.get(&server_name),
            PinSource::KnownServers(k.path().to_path_buf()),
        ),
        (None, None) => (None, PinSource::Setting),
    };
    let ending = Ending {
        server: ServerName {
            host: &settings.host,
            port: settings.port,
        },
        address: server_addr,
        pin_source,
        connect_timeout: settings.connect_timeout,
        json: settings.json,
    };

    let clock = Clock::new();
    let mut config = ConsoleConfig {
        password_from_lines,
        reconnect: settings.reconnect.unwrap_or(interactive || settings.json),
        // On a terminal your own messages read as chat; piped output keeps
        // the assignment's `ok: ...` lines.
        show_sent: matches!(screen.display, Display::Styled { .. }),
        ..ConsoleConfig::default()
    };
    config.client.server_key = pinned;
    config.client.handshake_timeout = Some(Duration::from_secs(settings.connect_timeout));
    let mut devices = device_tokens_path().and_then(|p| DeviceTokens::open(p).ok());
    // Where tokens can be kept, present the one kept (or ask for a first).
    config.client.device_token = devices.as_ref().map(|d| {
        d.get(&server_name, &settings.username)
            .unwrap_or_default()
            .to_string()
    });
    let mut ignored = ignored_path().and_then(|p| IgnoreFile::open(p).ok());
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
    console.set_invite(settings.invite.clone());
    if let Some(f) = &ignored {
        console.set_ignored(f.get(&server_name, &settings.username));
    }

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
    // The server, then the other nodes given with --fallback, of the same
    // address family (the socket's).
    let mut nodes = vec![server_addr];
    for f in &settings.fallback {
        let addrs = resolve(&f.host, f.port.unwrap_or(settings.port))?;
        match addrs
            .into_iter()
            .find(|a| a.is_ipv4() == server_addr.is_ipv4())
        {
            Some(a) => nodes.push(a),
            None => {
                return Err(anyhow!(
                    "--fallback {}: no address of the server's family",
                    f.host
                ));
            }
        }
    }
    let mut node = 0;
    let mut quits = 0;
    let mut cancel_hint_shown = false;
    let mut completion_names = 0;
    // Whether a login ever succeeded: until then a server that cannot be
    // reached ends the client, after it the client reconnects.
    let mut logged_in = false;
    loop {
        if transmit(&mut console, &socket, clock.now()) {
            ending.refused(&mut console, logged_in);
            if logged_in && nodes.len() > 1 {
                // Another node may answer: try it now, not at the idle
                // timeout.
                console.server_unreachable(clock.now());
            }
        }
        while let Some(out) = console.poll() {
            if console.exit_code().is_some() {
                // The last messages (why the session ended) are printed
                // here and now, not handed to the editor's thread.
                screen.detach_editor();
            }
            match out {
                Output::Event(event) => {
                    logged_in |= matches!(event, ChatEvent::LoggedIn { .. });
                    let events = match event {
                        ChatEvent::Disconnect {
                            reconnect_in: None, ..
                        } => ending.explain(event, console.client().closed(), logged_in),
                        event => vec![event],
                    };
                    for event in &events {
                        screen.event(event)?;
                    }
                }
                Output::Prompt(kind) => screen.prompt(&kind, console.client().username())?,
                // Trust on first use: pin what the server proved.
                // Trust on first use, or a key given as a setting that the
                // server proved: pin what the server proved.
                Output::ServerKey(key) => server_key::remember(&mut known, &server_name, &key),
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
                // The `/ignore` list, kept for the next run.
                Output::Ignored(names) => {
                    if let Some(f) = ignored.as_mut()
                        && let Err(e) = f.set(&server_name, &settings.username, &names)
                    {
                        eprintln!(
                            "chatclient: cannot keep the ignore list in {}: {e}",
                            f.path().display()
                        );
                    }
                }
                Output::NeedPassword { failures, new_user } => {
                    if let Some(p) = &env_password {
                        if failures > 0 {
                            console.give_up("! login refused with CHAT_PASSWORD");
                        } else {
                            console.submit_password(clock.now(), p);
                        }
                    } else if interactive {
                        // A server that registers by invite only: the code
                        // first, unless --invite gave it.
                        let client = console.client();
                        let ask_invite = new_user
                            && client.registration() == Some(RegistrationMode::Invite)
                            && client.invite().is_none();
                        spawn_password_prompt(tx.clone(), new_user, ask_invite)?;
                    }
                }
                Output::Reconnect => {
                    if nodes.len() > 1 {
                        // The next node of the cluster; they share the key
                        // the client pinned.
                        node = (node + 1) % nodes.len();
                        if let Err(e) = socket.connect(nodes[node]) {
                            eprintln!("chatclient: cannot reach {}: {e}", nodes[node]);
                        }
                    }
                    console.reconnect(clock.now(), rand::random());
                }
                _ => {}
            }
        }
        // Tab completes the users known to be online.
        {
            let (names_version, names) = console.online_names();
            if names_version != completion_names {
                completion_names = names_version;
                if let Some(editor) = &screen.editor {
                    editor.set_names(names);
                }
            }
        }
        if let Some(code) = console.exit_code() {
            // Acknowledge the server's last message before leaving.
            transmit(&mut console, &socket, clock.now());
            return Ok(code);
        }
        if interactive
            && !input_started
            && console.is_ready()
            && let Some(full) = &mut screen.full
        {
            full.tui = Some(tui::Tui::start().context("cannot take over the terminal")?);
            spawn_terminal_reader(tx.clone())?;
            input_started = true;
        }
        if let Some(Full {
            state,
            tui: Some(tui),
            ..
        }) = &mut screen.full
        {
            state.update(&console, std::time::Instant::now());
            if console.is_ready() {
                for room in state.windows.members_wanted() {
                    console.request_members(&room);
                }
            }
            if let Some(fetch) = state.draw(&mut tui.terminal)?
                && !console.fetch_history(&fetch.room, fetch.before, fetch.limit)
            {
                state.windows.fetch_failed(&fetch.room);
            }
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
        let mut wait = console
            .poll_timeout()
            .map(|t| clock.until(t))
            .unwrap_or(StdDuration::from_secs(1));
        if screen.full.is_some() {
            // The status bar counts down to the next reconnection.
            wait = wait.min(StdDuration::from_secs(1));
        }
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
                Input::Invite(code) => console.set_invite(Some(code)),
                Input::Refused => {
                    ending.refused(&mut console, logged_in);
                    if logged_in && nodes.len() > 1 {
                        console.server_unreachable(clock.now());
                    }
                }
                Input::Term(event) => {
                    let Some(Full {
                        state,
                        tui: Some(tui),
                        ..
                    }) = &mut screen.full
                    else {
                        continue;
                    };
                    for action in state.input(event, &console) {
                        match action {
                            tui::Action::Line(l) => console.handle_line(now, &l),
                            tui::Action::Eof => console.handle_eof(now),
                            tui::Action::Redraw => tui.clear(),
                        }
                    }
                }
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

/// Opens (creating it private to the user) the chat log of this server and
/// user, for appending.
fn open_log(settings: &Settings) -> Result<std::fs::File> {
    let dir = udpchat_pin::log_dir().ok_or_else(|| anyhow!("no data directory for the log"))?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let name: String = format!(
        "{}_{}-{}.log",
        settings.host, settings.port, settings.username
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || "._-".contains(c) {
            c
        } else {
            '_'
        }
    })
    .collect();
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&path)
        .with_context(|| format!("cannot open the chat log {}", path.display()))
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
                    // Nothing listens on the server's port.
                    Err(e) if is_port_unreachable(&e) => {
                        if tx.send(Input::Refused).is_err() {
                            return;
                        }
                        thread::sleep(StdDuration::from_millis(50));
                    }
                    // Other ICMP errors from an absent server: the client
                    // reports it when it stops answering.
                    Err(_) => thread::sleep(StdDuration::from_millis(50)),
                }
            }
        })?;
    Ok(())
}

/// Reads the terminal's keys, pastes, mouse and resizes in full-screen
/// mode.
fn spawn_terminal_reader(tx: Sender<Input>) -> Result<()> {
    thread::Builder::new()
        .name("terminal".into())
        .spawn(move || {
            loop {
                match crossterm::event::read() {
                    Ok(event) => {
                        if tx.send(Input::Term(event)).is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        let _ = tx.send(Input::Eof);
                        return;
                    }
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

/// Asks for the password without echo on the terminal, in a thread of its
/// own; a new account's password twice, until both are the same.
fn spawn_password_prompt(tx: Sender<Input>, new_user: bool, ask_invite: bool) -> Result<()> {
    thread::Builder::new()
        .name("password".into())
        .spawn(move || {
            if ask_invite {
                match rpassword::prompt_password("Invite code: ") {
                    Ok(code) if !code.trim().is_empty() => {
                        let _ = tx.send(Input::Invite(code.trim().to_string()));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = tx.send(Input::Password(None));
                        return;
                    }
                }
            }
            let p = if new_user {
                new_password()
            } else {
                rpassword::prompt_password("Password: ").ok()
            };
            let _ = tx.send(Input::Password(p));
        })?;
    Ok(())
}

/// The password of a new account, typed twice (a typo would lock the user
/// out of the account just made). `None` at the end of input.
fn new_password() -> Option<String> {
    let mut prompt = "New password: ";
    loop {
        let first = rpassword::prompt_password(prompt).ok()?;
        if first.is_empty() {
            // The console says why an empty password will not do.
            return Some(first);
        }
        let again = rpassword::prompt_password("Repeat the new password: ").ok()?;
        if first == again {
            return Some(first);
        }
        prompt = "The two passwords differ; try again.\nNew password: ";
    }
}
