//! `chatclient`: the udpchat client in line mode.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use crossbeam_channel::{Sender, select, unbounded};
use udpchat_core::crypto::{Hex, parse_key};
use udpchat_core::ui::{Console, ConsoleConfig, ConsoleOutput};
use udpchat_native::clock::Clock;
use udpchat_native::keys::{KnownServers, known_servers_path};

const AFTER_HELP: &str = "\
The password is read from CHAT_PASSWORD if set; otherwise it is prompted for
without echo on a terminal; otherwise it is the first line of standard input.
It is never a command-line flag.

The server's key is pinned on first use in the known_servers file of your
config directory (CHAT_KNOWN_SERVERS overrides its path); a server that later
shows another key is refused. --server-key pins a key explicitly (ask the
operator for the output of `chatserver --print-key`).

After login, type an operation: PM (public message), DM (direct message) or
EX (exit). Also: /who, /msg USER TEXT, /quit, /help. End of input exits.

Examples:
  chatclient localhost 65015 momodou
  printf 'secret\\nPM\\nhello all\\nEX\\n' | chatclient 127.0.0.1 65015 alice";

/// The udpchat client: log in, send public and direct messages, see who is
/// online.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// The server's host name or address.
    #[arg(env = "CHAT_SERVER")]
    host: String,
    /// The server's UDP port.
    #[arg(env = "CHAT_PORT")]
    port: u16,
    /// Your username (registered on first login).
    #[arg(env = "CHAT_USER")]
    username: String,
    /// The server's public key (64 hex digits), instead of trusting the
    /// key it shows on first use.
    #[arg(long, env = "CHAT_SERVER_KEY", value_parser = parse_key_arg)]
    server_key: Option<[u8; 32]>,
}

fn parse_key_arg(s: &str) -> Result<[u8; 32], String> {
    parse_key(s).ok_or_else(|| "expected 64 hex digits".to_string())
}

enum Input {
    Datagram(Vec<u8>),
    Line(String),
    Eof,
    Password(Option<String>),
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chatclient: {e:#}");
            ExitCode::FAILURE
        }
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

fn run(args: Args) -> Result<u8> {
    let server = resolve(&args.host, args.port)?;
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

    let interactive = std::io::stdin().is_terminal();
    let show_prompts = interactive && std::io::stdout().is_terminal();
    let env_password = std::env::var("CHAT_PASSWORD").ok();
    let password_from_lines = env_password.is_none() && !interactive;

    let server_name = format!("{}:{}", args.host, args.port);
    let mut known = known_servers_path().and_then(|p| KnownServers::open(p).ok());
    let pinned = args
        .server_key
        .or_else(|| known.as_ref().and_then(|k| k.get(&server_name)));

    let clock = Clock::new();
    let mut config = ConsoleConfig {
        password_from_lines,
        ..ConsoleConfig::default()
    };
    config.client.server_key = pinned;
    let mut console = match Console::new(clock.now(), config, rand::random(), &args.username) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chatclient: invalid username {:?}: {e}", args.username);
            return Ok(2);
        }
    };

    let (tx, rx) = unbounded::<Input>();
    spawn_socket_reader(socket.clone(), tx.clone())?;
    let mut stdin_started = false;
    if !interactive {
        spawn_stdin_reader(tx.clone())?;
        stdin_started = true;
    }
    let mut stdout = std::io::stdout().lock();
    loop {
        while let Some(d) = console.poll_transmit(clock.now()) {
            // A send error (e.g. ICMP unreachable) shows up later as a lost
            // server; keep going.
            let _ = socket.send(&d);
        }
        while let Some(out) = console.poll_output() {
            match out {
                ConsoleOutput::Line(l) => writeln!(stdout, "{l}")?,
                ConsoleOutput::Prompt(p) => {
                    if show_prompts {
                        write!(stdout, "{p}")?;
                    }
                }
                ConsoleOutput::ServerKey(key) => {
                    if pinned.is_none() {
                        // Trust on first use, as ssh does.
                        match known.as_mut().map(|k| k.add(&server_name, &key)) {
                            Some(Ok(())) => eprintln!(
                                "chatclient: {server_name} has key {}; remembered in {}",
                                Hex(&key),
                                known
                                    .as_ref()
                                    .map(|k| k.path().display().to_string())
                                    .unwrap_or_default()
                            ),
                            _ => eprintln!(
                                "chatclient: {server_name} has key {} (could not remember it)",
                                Hex(&key)
                            ),
                        }
                    }
                }
                ConsoleOutput::NeedPassword { failures, .. } => {
                    if let Some(p) = &env_password {
                        if failures > 0 {
                            console.give_up("! login refused with CHAT_PASSWORD");
                        } else {
                            console.submit_password(clock.now(), p);
                        }
                    } else if interactive {
                        stdout.flush()?;
                        spawn_password_prompt(tx.clone())?;
                    }
                }
            }
        }
        stdout.flush()?;
        if let Some(code) = console.exit_code() {
            // Acknowledge the server's last message before leaving.
            while let Some(d) = console.poll_transmit(clock.now()) {
                let _ = socket.send(&d);
            }
            return Ok(code);
        }
        if interactive && !stdin_started && console.client().is_logged_in() {
            spawn_stdin_reader(tx.clone())?;
            stdin_started = true;
        }
        let wait = console
            .poll_timeout()
            .map(|t| clock.until(t))
            .unwrap_or(StdDuration::from_secs(1));
        let input = select! {
            recv(rx) -> input => input.ok(),
            default(wait) => None,
        };
        let now = clock.now();
        match input {
            Some(Input::Datagram(d)) => console.handle_datagram(now, &d),
            Some(Input::Line(l)) => console.handle_line(now, &l),
            Some(Input::Eof) => console.handle_eof(now),
            Some(Input::Password(Some(p))) => console.submit_password(now, &p),
            Some(Input::Password(None)) => console.handle_eof(now),
            None => {}
        }
        // Drain whatever else arrived before running timers.
        while let Ok(input) = rx.try_recv() {
            match input {
                Input::Datagram(d) => console.handle_datagram(now, &d),
                Input::Line(l) => console.handle_line(now, &l),
                Input::Eof => console.handle_eof(now),
                Input::Password(Some(p)) => console.submit_password(now, &p),
                Input::Password(None) => console.handle_eof(now),
            }
        }
        if console.poll_timeout().is_some_and(|t| t <= clock.now()) {
            console.handle_timeout(clock.now());
        }
    }
}

fn spawn_socket_reader(socket: Arc<UdpSocket>, tx: Sender<Input>) -> Result<()> {
    thread::Builder::new()
        .name("udp-recv".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        if tx.send(Input::Datagram(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
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
