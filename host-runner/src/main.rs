//! `host-runner HOST PORT USERNAME`: the udpchat client, compiled to a
//! WebAssembly component, run in a wasmtime sandbox that grants it one
//! thing: a UDP conversation with the server named on the command line, or
//! in turn with the other nodes named with `--fallback` (plus the user's
//! console). `wit/chat-host.wit` is the spec of what crosses the boundary.
//!
//! The host owns standard input (a thread, then on a terminal the line
//! editor's thread) and the socket (a thread); the guest's calls to
//! `next-event` wait on both through crossbeam channels.

mod bindings;
mod cache;
mod conversation;
mod input;
mod link;
mod sandbox;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;

use udpchat_term::{ColorChoice, LineEditor};

use crate::bindings::{Display, SessionInfo};
use crate::conversation::{Conversation, MAX_LINE, Passwords};
use crate::link::{Peer, ServerLink};
use crate::sandbox::{HostState, Outcome};

/// File name of the client component that `ci/build-wasm.sh` builds.
const MODULE_FILE: &str = "wasi-client.wasm";
/// Modules larger than this are not loaded.
const MAX_MODULE: u64 = 64 << 20;
/// Exit code when the host, not the guest, ends the run.
const EXIT_HOST_FAILURE: u8 = 2;

/// Run the udpchat client as a sandboxed WebAssembly component.
///
/// Same usage as `chatclient`: the password comes from CHAT_PASSWORD if set,
/// else from a prompt without echo on a terminal, else from the next line of
/// standard input. Commands are read from standard input, one per line (PM,
/// DM, EX, /msg, /who, /join, /quit, /help); end of input behaves like EX.
/// On a terminal the line is edited as in chatclient (arrows, history,
/// Ctrl-C throws it away) and incoming messages are printed above it.
///
/// The sandbox lends the client one UDP conversation at a time; the only
/// peers it may ever have are the server and the fallbacks named on the
/// command line (--fallback).
///
/// Exit status: the guest's own (0 after EX or end of input, 1 on failure),
/// or 2 when the host ended it (bad usage, no module, trap, limit).
#[derive(Parser, Debug)]
#[command(name = "host-runner", version)]
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
    /// The client component to run. Without it: `wasi-client.wasm` next to
    /// this executable, else `../wasm32-wasip2/release/wasi-client.wasm`
    /// relative to this executable's directory (where `ci/build-wasm.sh`
    /// puts it when both are built in the same target directory).
    #[arg(long, env = "UDPCHAT_MODULE", value_name = "PATH")]
    module: Option<PathBuf>,
    /// Where compiled modules are cached [default: $XDG_CACHE_HOME or
    /// ~/.cache, then udpchat/host-runner]. Deleting it is always safe.
    #[arg(long, env = "UDPCHAT_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile the module every time; do not read or write the cache.
    #[arg(long)]
    no_cache: bool,
    /// Compile the module into the cache (if it is not there yet) and exit
    /// without running it.
    #[arg(long, hide = true)]
    precompile: bool,
    /// The server's public key (64 hex digits), instead of trusting the
    /// key it shows on first use (pins are kept in the known_servers file
    /// of your config directory, as chatclient does; CHAT_KNOWN_SERVERS
    /// overrides its path).
    #[arg(long, env = "CHAT_SERVER_KEY", value_parser = parse_key_arg)]
    server_key: Option<[u8; 32]>,
    /// Print every event as one JSON object per line (commands are still
    /// read as lines), as chatclient --json does.
    #[arg(long)]
    json: bool,
    /// When to colour the output [default: auto: on a terminal, unless
    /// NO_COLOR is set].
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    color: ColorChoice,
    /// Reconnect and log in again when the server goes away [default: on a
    /// terminal or with --json].
    #[arg(long, overrides_with = "no_reconnect")]
    reconnect: bool,
    /// End with status 1 when the server goes away.
    #[arg(long, overrides_with = "reconnect")]
    no_reconnect: bool,
    /// Another node of the same chat (chatserver --cluster, the same key),
    /// as HOST or HOST:PORT (the port defaults to the server's); repeat it or
    /// separate several with commas. Each reconnection goes to the next of
    /// the server and these, in turn, as chatclient --fallback does. The
    /// server and these are the only peers the client may talk to, one at
    /// a time.
    #[arg(long, env = "CHAT_FALLBACK", value_name = "HOST[:PORT]", value_delimiter = ',',
          value_parser = Peer::parse_server)]
    fallback: Vec<Peer>,
}

fn parse_key_arg(s: &str) -> Result<[u8; 32], String> {
    udpchat_core::crypto::parse_key(s).ok_or_else(|| "expected 64 hex digits".to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    match run(&args) {
        Ok(Outcome::Exited(code)) => ExitCode::from(code),
        Ok(Outcome::Failed(message)) => {
            eprintln!("host-runner: {message}");
            ExitCode::from(EXIT_HOST_FAILURE)
        }
        Err(e) => {
            eprintln!("host-runner: {e:#}");
            ExitCode::from(EXIT_HOST_FAILURE)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let module_path = match &args.module {
        Some(path) => path.clone(),
        None => default_module()?,
    };
    let wasm = read_module(&module_path)?;

    let link = ServerLink::connect(&args.host, args.port, &args.fallback)?;
    tracing::debug!(
        "socket {} connected to {}",
        link.local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string()),
        link.server()
    );

    let engine = sandbox::engine()?;
    let cache_dir = match (&args.cache_dir, args.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => cache::default_dir(),
    };
    let (component, provenance) = cache::load(&engine, &wasm, cache_dir.as_deref())
        .with_context(|| format!("cannot load {}", module_path.display()))?;
    tracing::debug!(
        "{} ready after {} ms ({provenance:?})",
        module_path.display(),
        started.elapsed().as_millis()
    );
    if args.precompile {
        return Ok(Outcome::Exited(0));
    }
    sandbox::start_epoch_ticker(&engine).context("cannot start the epoch thread")?;

    let stop = Arc::new(AtomicBool::new(false));
    let (datagram_tx, datagram_rx) = crossbeam_channel::bounded(link::QUEUE);
    link.spawn_receiver(datagram_tx, Arc::clone(&stop))
        .context("cannot start the socket thread")?;
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let passwords = Passwords::from_env(stdin_is_terminal);
    let input = input::spawn(MAX_LINE).context("cannot start the stdin thread")?;

    let server_name = format!("{}:{}", args.host, args.port);
    let pinned = args.server_key.or_else(|| {
        udpchat_pin::known_servers_path()
            .and_then(|p| udpchat_pin::KnownServers::open(p).ok())
            .and_then(|k| k.get(&server_name))
    });
    let stdout_is_terminal = std::io::stdout().is_terminal();
    // As chatclient decides: JSON when asked, the chat look on a terminal,
    // the assignment's lines in a pipe.
    let display = if args.json {
        Display::Json
    } else if stdout_is_terminal {
        Display::Styled
    } else {
        Display::Plain
    };
    let interactive = stdin_is_terminal && stdout_is_terminal;
    let editor = if interactive && !args.json {
        LineEditor::new(udpchat_pin::history_path()).ok()
    } else {
        None
    };
    let devices =
        udpchat_pin::device_tokens_path().and_then(|p| udpchat_pin::DeviceTokens::open(p).ok());
    let reconnect = if args.reconnect {
        true
    } else if args.no_reconnect {
        false
    } else {
        stdin_is_terminal || args.json
    };
    let session = SessionInfo {
        username: args.username.clone(),
        server_key: pinned.map(|k| k.to_vec()),
        password_source: passwords.source(),
        // As chatclient: prompts only when a person types and reads.
        show_prompts: interactive && !args.json,
        display,
        color: args.color.enabled(stdout_is_terminal),
        reconnect,
        // Where tokens can be kept, present the one kept (or ask for one).
        device_token: devices.as_ref().map(|d| {
            d.get(&server_name, &args.username)
                .unwrap_or_default()
                .to_string()
        }),
        server: server_name,
        fallbacks: u32::try_from(link.fallbacks()).unwrap_or(u32::MAX),
    };
    let conversation = Conversation::new(
        session,
        link,
        datagram_rx,
        input,
        passwords,
        editor,
        devices,
    );
    let outcome = sandbox::run(&engine, &component, HostState::new(conversation));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(outcome)
}

/// Where the client component is when `--module` is not given.
fn default_module() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join(MODULE_FILE),
        dir.join("..")
            .join("wasm32-wasip2")
            .join("release")
            .join(MODULE_FILE),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no client module found at {} or {}: build it with ci/build-wasm.sh, \
             or pass --module PATH",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > MAX_MODULE {
        bail!(
            "{} is {len} bytes, more than a client module can be",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
