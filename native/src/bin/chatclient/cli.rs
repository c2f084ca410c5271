//! `chatclient`'s command line: the arguments and flags, `--help` (with
//! where this user's files are), and the settings they make together with
//! the environment, the config file and the defaults.

// The doc comments of the arguments are their `--help` text, where
// brackets are literal (`[::1]:7000`, `HOST[:PORT]`), not links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use udpchat_core::crypto::parse_key;
use udpchat_native::address::{HostPort, Positionals, parse_server_port};
use udpchat_native::config::{self, ClientFile};
use udpchat_native::terminal::ColorChoice;
use udpchat_pin::{device_tokens_path, known_servers_path};

/// The server's default port.
pub const DEFAULT_PORT: u16 = 65015;

/// How long the first answer of a server may take by default, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 5;

/// The end of `--help`; `{files}` is replaced by where the files are.
const AFTER_HELP: &str = "\
Where to connect:
  HOST[:PORT] USERNAME, or HOST PORT USERNAME; the port is 65015 unless given
  (with the host, as PORT, in CHAT_PORT or in the config file). An IPv6 address
  with a port is written in brackets: [::1]:7000. HOST followed by digits only
  is HOST PORT: a username of digits comes after the port (HOST:PORT 1234).

Typing:
  A plain line is a public message. Commands: /msg USER TEXT (/dm), /me ACTION,
  /who (/users), /quit [REASON] (/exit), /connect, /say TEXT, /help [COMMAND].
  Rooms: /join #ROOM (plain lines then go there; the prompt says #ROOM> ),
  /go #ROOM or /go alone (everyone online), /msg #ROOM TEXT, /part [#ROOM],
  /rooms, /names [#ROOM], /topic [#ROOM] [TEXT], /history [#ROOM] [N].
  The assignment's menu stays: PM, DM or EX (exactly so, in capitals) alone
  on a line enter that flow (/say PM sends the text \"PM\"). Ctrl-C throws
  away the line being typed; Ctrl-D on an empty line or the end of input
  exits. A pasted block of lines is sent line by line. Messages beyond the
  server's rate limit wait their turn (\"queued\") and are never dropped;
  the input history is kept in history in your config directory
  (CHAT_HISTORY overrides its path).

Full screen (the default on a terminal; --line for one stream of lines):
  a window for the server, each room and each conversation. Alt-1..9,
  Alt-Left/Right, Ctrl-N/P or /window N switch; /query USER opens a
  conversation, /close closes it; plain lines go to the active window's
  room or user. PgUp/PgDn and the mouse wheel scroll (older room history
  is fetched at the start); F2 or /members shows a room's members. The
  status bar marks windows with unread messages (! for a mention).
  --theme light suits a light background (env: CHAT_THEME).

Password:
  Read from CHAT_PASSWORD if set; otherwise prompted for without echo on a
  terminal; otherwise the first line of standard input. Never a flag, never
  in the config file. After a reconnection the same password is used again.
  A server that registers new accounts by invite only wants a code from a
  server admin: --invite CODE (or CHAT_INVITE), else asked for before the
  password on a terminal.

Server key:
  Pinned on first use in known_servers in your config directory
  (CHAT_KNOWN_SERVERS overrides its path); a server that later shows another
  key is refused, and the client says which file holds the pin. If the
  server's operator confirms the new key (`chatserver --print-key`), accept
  it with --forget-server HOST:PORT (the next connection pins the key it
  shows) or by connecting once with --server-key KEY, which replaces the pin.

Unreachable server:
  When nothing listens on the server's port (the system says so), the client
  says so at once; a server that does not answer at all is given up after
  --connect-timeout (5 s). Either ends with status 1 before the first login;
  after a login the client keeps trying to reconnect.

Device tokens:
  After a login the server hands out a device token, kept in device_tokens
  in your config directory (CHAT_DEVICE_TOKENS overrides its path; mode
  0600). With it this device logs in even while others guess your password
  and the account is throttled for them.

Ignored users:
  /ignore USER hides USER's messages on this client; the list is kept per
  server and account in ignored in your config directory (CHAT_IGNORED
  overrides its path; mode 0600).

Settings:
  Each comes from the first of: flags and arguments, environment variables,
  the config file (TOML: server, port, user, server_key, color, json,
  reconnect; in udpchat/config.toml of your config directory, or CHAT_CONFIG),
  built-in defaults (port 65015, color auto, reconnect on a terminal or with
  --json). NO_COLOR turns colour off unless --color always.

Files:
{files}

Exit status:
  0 after EX, /quit or the end of input (and after --forget-server); 1 when
  the server cannot be reached (nothing listens on its port, or no answer
  within --connect-timeout), refuses the login (piped: the password on the
  first line), changes its key or goes away (without reconnect), or when a
  message could not be sent; 2 on usage errors.

Examples:
  chatclient localhost momodou
  chatclient chat.example.org:7000 momodou
  chatclient [::1]:7000 momodou
  chatclient --bind 192.168.1.20 chat.example.org momodou
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
    override_usage = "chatclient [OPTIONS] HOST[:PORT] USERNAME\n       \
                      chatclient [OPTIONS] HOST PORT USERNAME\n       \
                      chatclient --forget-server HOST[:PORT]\n       \
                      chatclient completions SHELL",
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Sub>,
    /// The server: a host name or address, with its port or without
    /// ([::1]:7000 for an IPv6 address with a port) (env: CHAT_SERVER;
    /// config: server).
    #[arg(value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// Your username, registered on first login (env: CHAT_USER; config:
    /// user). The form HOST PORT USERNAME works too (env: CHAT_PORT;
    /// config: port) [default port: 65015].
    #[arg(value_name = "USERNAME")]
    pub username: Option<String>,
    /// The username after HOST PORT.
    #[arg(hide = true)]
    pub third: Option<String>,
    /// The server's public key (64 hex digits), instead of trusting the
    /// key it shows on first use; once the server proves it, it replaces
    /// the key pinned in known_servers (config: server_key).
    #[arg(long, env = "CHAT_SERVER_KEY", value_name = "KEY", value_parser = parse_key_arg)]
    pub server_key: Option<[u8; 32]>,
    /// Forget the key pinned for HOST:PORT in known_servers (after its
    /// operator confirmed a new key), then exit.
    #[arg(long, value_name = "HOST[:PORT]", conflicts_with_all = ["server", "username", "third"])]
    pub forget_server: Option<String>,
    /// The local address of the client's socket: HOST or HOST:PORT
    /// (localhost, 127.0.0.1:0, [::1]:5000) [default: any address of the
    /// server's family, a port the system picks].
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_arg)]
    pub bind: Option<HostPort>,
    /// How long to wait for the server's first answer before giving up
    /// (and, after a login, before the next reconnection attempt).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = DEFAULT_CONNECT_TIMEOUT,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub connect_timeout: u64,
    /// Print every event as one JSON object per line (commands are still
    /// read as lines) (config: json).
    #[arg(long)]
    pub json: bool,
    /// When to colour the output (config: color) [default: auto].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// One stream of lines with a line editor instead of the full-screen
    /// windows (which are the default on a terminal; piped input or output
    /// always gets lines).
    #[arg(long)]
    pub line: bool,
    /// The full-screen colours for a dark or a light terminal background
    /// [default: dark].
    #[arg(long, value_enum, value_name = "BACKGROUND", env = "CHAT_THEME")]
    pub theme: Option<Theme>,
    /// Reconnect and log in again when the server goes away (config:
    /// reconnect) [default: on a terminal or with --json].
    #[arg(long, overrides_with = "no_reconnect")]
    pub reconnect: bool,
    /// End with status 1 when the server goes away.
    #[arg(long, overrides_with = "reconnect")]
    pub no_reconnect: bool,
    /// Another node of the same chat (a cluster whose nodes share one
    /// key), HOST[:PORT] [default port: the server's]: each reconnection
    /// attempt goes to the next of the server and these, in turn (repeat
    /// the flag, or separate them with commas; config: fallback, a list).
    #[arg(long, env = "CHAT_FALLBACK", value_name = "HOST[:PORT]", value_delimiter = ',',
          value_parser = parse_bind_arg)]
    pub fallback: Vec<HostPort>,
    /// Keep a log of the chat: every event as a plain line with its UTC
    /// time, appended to HOST_PORT-USER.log in the log directory (see
    /// Files below; mode 0600).
    #[arg(long)]
    pub log: bool,
    /// An invite code from a server admin, to register a new account on a
    /// server whose registration is by invite (ignored for an existing
    /// account).
    #[arg(long, env = "CHAT_INVITE", value_name = "CODE")]
    pub invite: Option<String>,
    /// The config file [default: udpchat/config.toml in your config
    /// directory].
    #[arg(long, env = "CHAT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the manual pages into DIR (for ci/man.sh).
    #[arg(long, hide = true, value_name = "DIR")]
    pub generate_man: Option<PathBuf>,
}

/// Reads the command line.
pub fn parse() -> Result<Cli, clap::Error> {
    command(true)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
}

/// The command line's grammar, with where the files are on this machine
/// in `--help` (`here`) or in general (the manual page).
pub fn command(here: bool) -> clap::Command {
    let files = if here {
        files_here()
    } else {
        "  In udpchat/ in your config directory (~/.config/udpchat on Linux,\n  \
         ~/Library/Application Support/udpchat on macOS, %APPDATA%\\udpchat on\n  \
         Windows): config.toml, known_servers, device_tokens, ignored, history."
            .to_string()
    };
    Cli::command().after_help(AFTER_HELP.replace("{files}", &files))
}

/// Where this user's files are, each as it would be used now.
fn files_here() -> String {
    let show = |p: Option<PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => "(none: no config directory)".to_string(),
    };
    let dir = show(udpchat_pin::config_dir());
    let config = std::env::var_os("CHAT_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let config = show(config::config_path(config.as_deref()));
    let history = match std::env::var_os("CHAT_HISTORY") {
        Some(p) if p.is_empty() => "(off: CHAT_HISTORY is empty)".to_string(),
        _ => show(udpchat_pin::history_path()),
    };
    format!(
        "  config directory  {dir}\n  \
         config file       {config}\n  \
         known servers     {}\n  \
         device tokens     {}\n  \
         ignored users     {}\n  \
         input history     {history}\n  \
         chat logs (--log) {}",
        show(known_servers_path()),
        show(device_tokens_path()),
        show(udpchat_native::ignored::ignored_path()),
        show(udpchat_pin::log_dir()),
    )
}

#[derive(Subcommand, Debug)]
pub enum Sub {
    /// Print a completion script for SHELL on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn parse_key_arg(s: &str) -> Result<[u8; 32], String> {
    parse_key(s).ok_or_else(|| "expected 64 hex digits".to_string())
}

fn parse_bind_arg(s: &str) -> Result<HostPort, String> {
    HostPort::parse(s)
}

/// The settings, from flags, environment, config file and defaults.
#[derive(Debug)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub server_key: Option<[u8; 32]>,
    pub bind: Option<HostPort>,
    /// Seconds.
    pub connect_timeout: u64,
    pub json: bool,
    pub color: ColorChoice,
    pub reconnect: Option<bool>,
    /// Other nodes to reconnect to, in turn with the server.
    pub fallback: Vec<HostPort>,
    pub log: bool,
    pub invite: Option<String>,
    pub line: bool,
    pub theme: Theme,
}

/// The terminal's background, for the full-screen colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Theme {
    /// Light text on a dark background.
    #[default]
    Dark,
    /// Dark text on a light background.
    Light,
}

fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    command(false).error(clap::error::ErrorKind::MissingRequiredArgument, message)
}

fn invalid(message: impl std::fmt::Display) -> clap::Error {
    command(false).error(clap::error::ErrorKind::ValueValidation, message)
}

/// An environment variable, when set and not empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A server's `HOST[:PORT]` from `what` (an environment variable or the
/// config file).
fn server_setting(value: Option<String>, what: &str) -> Result<Option<HostPort>, clap::Error> {
    let Some(value) = value else { return Ok(None) };
    let server = HostPort::parse(&value).map_err(|e| invalid(format!("{what}: {e}")))?;
    if server.port == Some(0) {
        return Err(invalid(format!("{what}: port 0 is no server's port")));
    }
    Ok(Some(server))
}

pub fn settings(cli: Cli) -> Result<Settings, clap::Error> {
    let explicit = cli.config.as_deref().filter(|p| !p.as_os_str().is_empty());
    let file = match config::config_path(explicit) {
        Some(path) => config::load(&path, explicit.is_some())
            .map_err(|e| command(false).error(clap::error::ErrorKind::Io, e))?,
        None => ClientFile::default(),
    };
    let file_key = match &file.server_key {
        Some(k) => Some(
            parse_key(k)
                .ok_or_else(|| invalid("server_key in the config file: expected 64 hex digits"))?,
        ),
        None => None,
    };
    let args: Vec<String> = [cli.server, cli.username, cli.third]
        .into_iter()
        .flatten()
        .collect();
    let given = Positionals::parse(&args).map_err(invalid)?;
    let env_server = server_setting(env_var("CHAT_SERVER"), "CHAT_SERVER")?;
    let env_port = match env_var("CHAT_PORT") {
        Some(p) => Some(parse_server_port(&p).map_err(|e| invalid(format!("CHAT_PORT: {e}")))?),
        None => None,
    };
    let file_server = server_setting(file.server, "server in the config file")?;
    let server = config::pick(given.server, env_server, file_server).ok_or_else(|| {
        usage_error("no server: give HOST, set CHAT_SERVER, or set server in the config file")
    })?;
    // A port written with the host belongs to it and comes first.
    let port = server
        .port
        .or(config::pick(given.port, env_port, file.port))
        .unwrap_or(DEFAULT_PORT);
    let username =
        config::pick(given.username, env_var("CHAT_USER"), file.user).ok_or_else(|| {
            usage_error("no username: give USERNAME, set CHAT_USER, or set user in the config file")
        })?;
    let fallback = if cli.fallback.is_empty() {
        file.fallback
            .iter()
            .flatten()
            .map(|f| {
                HostPort::parse(f)
                    .map_err(|e| invalid(format!("fallback in the config file: {f:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        cli.fallback
    };
    let flag_reconnect = if cli.reconnect {
        Some(true)
    } else if cli.no_reconnect {
        Some(false)
    } else {
        None
    };
    Ok(Settings {
        host: server.host,
        port,
        username,
        server_key: config::pick(cli.server_key, file_key, None),
        bind: cli.bind,
        connect_timeout: cli.connect_timeout,
        json: cli.json || file.json.unwrap_or(false),
        color: config::pick(cli.color, file.color, Some(ColorChoice::Auto)).unwrap_or_default(),
        reconnect: config::pick(flag_reconnect, file.reconnect, None),
        fallback,
        log: cli.log,
        invite: cli.invite.filter(|c| !c.is_empty()),
        line: cli.line,
        theme: cli.theme.unwrap_or_default(),
    })
}

/// Prints a clap error (or --help, --version) and exits 2 (0 for help).
pub fn usage_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
