//! `chatserver`: the udpchat server. One UDP socket, accounts in a JSON
//! file, password hashing on worker threads, rooms, history and offline
//! direct messages in a redb file written by one thread.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use crossbeam_channel::{Receiver, Sender, bounded};
use tracing::{debug, info, warn};
use udpchat_core::crypto::Hex;
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::store::Retention;
use udpchat_core::server::{
    AccountOp, DropReason, RateLimit, Request, Response, Server, ServerConfig, ServerEvent,
    UserRecord,
};
use udpchat_core::session::{MAX_TEXT, MAX_USERNAME};
use udpchat_core::{Duration, wire};
use udpchat_native::chatstore::{self, ChatStore, RedbStore, StoreJob, StoreWriter};
use udpchat_native::clock::Clock;
use udpchat_native::cluster::{self, Cluster};
use udpchat_native::keys::{load_or_create_server_key, load_server_key};
use udpchat_native::passwords::{Job, JobResult, PasswordWorkers};
use udpchat_native::store::{AccountChange, NewUser, POLL_INTERVAL, StoredSuspension, UserStore};
use udpchat_native::{metrics, state, udp};

const AFTER_HELP: &str = "\
Usernames: 1 to 32 ASCII letters, digits, '_', '-' or '.', starting with a letter or digit;
unique regardless of case. Messages: 1 to 60000 bytes of UTF-8 without control characters.
Datagrams are 1200 bytes at most until a probe shows the path carries more (up to
--max-datagram); longer messages are split and reassembled.

Examples:
  chatserver                          # port 65015 on all IPv4 addresses, files in ./data/
  chatserver --bind :: 7000           # IPv6 (and IPv4 where the OS maps it), port 7000
  chatserver --bind 127.0.0.1 0       # a free port on loopback; the address is printed on stdout
  chatserver --print-key              # the public key clients pin (the first start creates it)
  RUST_LOG=debug chatserver           # verbose log on stderr
  chatserver --metrics 9100           # Prometheus metrics at http://127.0.0.1:9100/metrics
  chatserver accounts list           # the accounts; add, passwd, suspend, unsuspend, delete

Metrics (--metrics ADDR, Prometheus text at GET /metrics; the README describes each):
  gauges      udpchat_build_info{version} (1), udpchat_sessions, udpchat_users_online,
              udpchat_rooms, udpchat_offline_messages, udpchat_queued_initials,
              udpchat_cluster_connected, udpchat_cluster_remote_users,
              udpchat_cluster_nodes, udpchat_cluster_broker_lag_seconds (--cluster),
              udpchat_store_commit_duration_max_seconds
  counters    udpchat_messages_total{kind=public|direct|room|offline_stored},
              udpchat_deliveries_total, udpchat_messages_rate_limited_total,
              udpchat_logins_total{result=ok|failed}, udpchat_login_timeouts_total,
              udpchat_handshakes_total, udpchat_datagrams_received_total,
              udpchat_received_bytes_total, udpchat_datagrams_sent_total,
              udpchat_sent_bytes_total, udpchat_retransmissions_total,
              udpchat_retry_datagrams_sent_total,
              udpchat_reset_datagrams_sent_total, udpchat_datagrams_dropped_total{reason=
              malformed|oversized|unknown_connection|address_mismatch|refused|
              rate_limited|initial_queue_full|unauthenticated|replay},
              udpchat_store_commits_total, udpchat_store_writes_total
  histograms  udpchat_loop_turn_duration_seconds, udpchat_store_commit_duration_seconds

Files: the user store, the server's key and the chat store (rooms, history,
offline direct messages) are data/chat_users.json, data/chat_server.key and
data/chat_data.redb under the current directory; data/ is created (mode 0700 on
Unix) when missing. Any other directory given with --users, --key or --data must
exist. A chat store that is not a readable redb database stops the server.

Ctrl-C, SIGTERM or SIGHUP: online clients are told the server is going away, and it
exits 0.";

/// The udpchat server: keeps accounts and relays public and direct messages
/// over UDP.
#[derive(Parser, Debug)]
#[command(name = "chatserver", version, after_help = AFTER_HELP)]
struct Args {
    /// UDP port to listen on; 0 picks a free port.
    #[arg(default_value_t = 65015, env = "CHAT_PORT")]
    port: u16,
    /// Address to bind (IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0", env = "CHAT_BIND")]
    bind: IpAddr,
    /// The user store (JSON, argon2id password hashes). Its directory must
    /// exist, but for data/, which is created (mode 0700) when missing.
    #[arg(long, default_value = state::DEFAULT_USERS, env = "CHAT_USERS", global = true)]
    users: PathBuf,
    /// The server's static key (created on first start, mode 0600).
    /// Default: chat_server.key beside the user store.
    #[arg(long, env = "CHAT_SERVER_KEY_FILE")]
    key: Option<PathBuf>,
    /// The chat store: rooms, memberships, history and offline direct
    /// messages (redb, created when missing, mode 0600). Default:
    /// chat_data.redb beside the user store.
    #[arg(long, env = "CHAT_DATA", value_name = "PATH")]
    data: Option<PathBuf>,
    /// Print the server's public key (hex) and exit; fails if the server
    /// has not created its key yet.
    #[arg(long)]
    print_key: bool,
    /// Most sessions at once, logged in or not.
    #[arg(long, default_value_t = defaults().max_sessions)]
    max_sessions: usize,
    /// Most password checks and registrations in flight.
    #[arg(long, default_value_t = defaults().max_pending_checks)]
    max_pending_checks: usize,
    /// Failed password attempts before a session is closed.
    #[arg(long, default_value_t = defaults().max_login_failures)]
    max_login_failures: u32,
    /// Fewest characters in a new account's password (existing accounts
    /// are not affected).
    #[arg(long, default_value_t = defaults().min_password_chars, global = true)]
    min_password_chars: usize,
    /// Seconds without hearing from a client before it is dropped.
    #[arg(long, default_value_t = defaults().channel.idle_timeout.as_millis() / 1000)]
    idle_timeout: u64,
    /// Segments in flight per session (1 to 256).
    #[arg(long, default_value_t = defaults().channel.window)]
    window: u32,
    /// Largest datagram, in bytes, sent to a client once a probe showed
    /// that the path carries it (1200 to 16384; 1200 turns probing off).
    /// Probing needs the don't-fragment bit, which the server sets on Linux
    /// and macOS; elsewhere it keeps to 1200.
    #[arg(long, env = "CHAT_MAX_DATAGRAM", default_value_t = wire::MAX_DATAGRAM as u16,
          value_parser = clap::value_parser!(u16).range(wire::BASE_DATAGRAM as i64..=wire::MAX_DATAGRAM as i64))]
    max_datagram: u16,
    /// Send a run of datagrams to one client in one system call where the
    /// OS cuts it (Linux UDP generic segmentation offload): the server pads
    /// each datagram of a burst but the last to the path's size. Off: one
    /// datagram per send, unpadded.
    #[arg(long, env = "CHAT_GSO", default_value_t = true, action = clap::ArgAction::Set)]
    gso: bool,
    /// Bytes queued to one session before it is disconnected as too slow.
    #[arg(long, default_value_t = defaults().channel.max_queued_bytes)]
    max_queued_bytes: usize,
    /// Sessions from one IP address.
    #[arg(long, default_value_t = defaults().max_sessions_per_ip)]
    max_sessions_per_ip: usize,
    /// Sessions that have not logged in yet (when full, a new one closes the
    /// oldest that is not waiting for a password check).
    #[arg(long, default_value_t = defaults().max_handshaking)]
    max_handshaking: usize,
    /// Sessions that have not logged in yet from one IP address (an IPv6
    /// /64 counts as one address).
    #[arg(long, default_value_t = defaults().max_handshaking_per_ip)]
    max_handshaking_per_ip: usize,
    /// Seconds a new session has to name its user before it is closed.
    #[arg(long, default_value_t = defaults().user_timeout.as_micros() / 1_000_000)]
    user_timeout: u64,
    /// Largest message in bytes a session may send before it has logged in.
    #[arg(long, default_value_t = defaults().max_message_before_login)]
    max_message_before_login: usize,
    /// New sessions one IP address may open at once...
    #[arg(long, default_value_t = defaults().handshakes.burst)]
    handshake_burst: u32,
    /// ...and then per second.
    #[arg(long, default_value_t = per_second(defaults().handshakes))]
    handshakes_per_sec: u32,
    /// Handshakes (X25519 work, roughly 50-100 µs each) per turn of the
    /// event loop; more wait while established sessions' datagrams go on.
    #[arg(long, default_value_t = defaults().handshakes_per_turn,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    handshakes_per_turn: usize,
    /// New sessions' Initials (with a valid cookie) that may wait for their
    /// handshake; more are dropped, and their clients send them again.
    #[arg(long, default_value_t = defaults().max_queued_initials)]
    max_queued_initials: usize,
    /// Public or direct messages one session may send at once...
    #[arg(long, default_value_t = defaults().messages.burst)]
    message_burst: u32,
    /// ...and then per second.
    #[arg(long, default_value_t = per_second(defaults().messages))]
    messages_per_sec: u32,
    /// Logins and logouts are announced to everyone while at most this many
    /// users are online.
    #[arg(long, default_value_t = defaults().max_presence)]
    max_presence: usize,
    /// Most names in an online list; a longer one is cut and carries the
    /// number online.
    #[arg(long, default_value_t = defaults().max_listed)]
    max_listed: usize,
    /// Failed logins allowed per account and per IP address, per minute
    /// (at once, and then earned back over the minute).
    #[arg(long, default_value_t = per_minute(defaults().login_failures))]
    login_failures_per_min: u32,
    /// Rooms one user may be a member of.
    #[arg(long, default_value_t = defaults().max_rooms_per_user)]
    max_rooms_per_user: usize,
    /// Members one room may have.
    #[arg(long, default_value_t = defaults().max_room_members)]
    max_room_members: usize,
    /// Rooms on the server.
    #[arg(long, default_value_t = defaults().max_rooms)]
    max_rooms: usize,
    /// Messages of history sent with the answer to `join`.
    #[arg(long, default_value_t = defaults().history_on_join)]
    history_on_join: usize,
    /// Most messages a resume replays (a client that missed more is told
    /// of a gap).
    #[arg(long, default_value_t = defaults().max_replay)]
    max_replay: usize,
    /// Direct messages waiting for one offline user.
    #[arg(long, default_value_t = defaults().max_offline_per_user)]
    max_offline_per_user: usize,
    /// Direct messages from one sender waiting for one offline user.
    #[arg(long, default_value_t = defaults().max_offline_per_sender)]
    max_offline_per_sender: usize,
    /// Longest room topic, in bytes (a value above 300, the protocol's limit, means 300).
    #[arg(long, default_value_t = defaults().max_topic)]
    max_topic: usize,
    /// Messages of history kept per room (the oldest go first).
    #[arg(long, default_value_t = Retention::default().max_messages)]
    history_max_messages: u64,
    /// Days of history kept per room, counted back from its latest message.
    #[arg(long, default_value_t = Retention::default().max_age_ms / MS_PER_DAY)]
    history_max_days: u64,
    /// Bytes of the socket's receive and send buffers asked of the OS
    /// (which may cap them: Linux at net.core.rmem_max/wmem_max); bursts of
    /// acknowledgements and logins overflow the usual 208 KiB default.
    #[arg(long, default_value_t = 8 << 20)]
    socket_buffer: usize,
    /// Threads hashing passwords (default: one per core but one, at least
    /// one).
    #[arg(long)]
    hash_workers: Option<usize>,
    /// Seconds between status lines in the log (0: never).
    #[arg(long, default_value_t = 60)]
    status_interval: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, or a
    /// bare PORT on 127.0.0.1; off when not given). The address is printed
    /// on stdout ("metrics on ..."), port 0 picking a free one. The
    /// metrics are listed in the README.
    #[arg(long, env = "CHAT_METRICS", value_name = "ADDR", value_parser = metrics::parse_addr)]
    metrics: Option<SocketAddr>,
    /// An account that is a server admin (repeat the flag, or give a
    /// comma-separated list in CHAT_ADMINS): it may suspend accounts, ban
    /// addresses, end sessions, send notices, set registration and read
    /// the audit log. None by default.
    #[arg(long = "admin", env = "CHAT_ADMINS", value_name = "NAME", value_delimiter = ',',
          value_parser = parse_admin)]
    admins: Vec<String>,
    /// A TOML configuration file; it may hold `admins = ["alice"]`,
    /// `cluster = "redis://HOST:PORT"` and `node = "NAME"`. A flag or its
    /// environment variable, when given, wins over the file; a key the
    /// file does not know is an error.
    #[arg(long, env = "CHAT_SERVER_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run as one node of a cluster whose nodes share accounts, presence and
    /// fan-out through the Redis server at this URL (redis://HOST:PORT);
    /// needs --node. docs/CLUSTER.md describes it. Without it the server
    /// runs alone and needs no Redis.
    #[arg(long, env = "CHAT_CLUSTER", value_name = "URL", global = true)]
    cluster: Option<String>,
    /// This node's name in the cluster (1 to 64 of A-Z a-z 0-9 _ - .),
    /// unique among the nodes.
    #[arg(long, env = "CHAT_NODE", value_name = "NAME", value_parser = parse_node)]
    node: Option<String>,
    /// With --cluster: add the cluster's accounts that the user store
    /// (--users) lacks to it, then exit (the accounts of the user store
    /// are added to the cluster's at every start of a node).
    #[arg(long, requires = "cluster")]
    export_accounts: bool,
    /// Writes the man page into DIR and exits (used by ci/man.sh).
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// List, add, suspend or delete accounts of the user store (--users),
    /// safely while a server runs on it: it notices within a second. With
    /// --cluster, those of the cluster: every running node applies them at
    /// once.
    Accounts(udpchat_native::accounts::AccountsArgs),
}

/// Takes from the configuration file what neither a flag nor its
/// environment variable set (clap has already preferred the flag).
fn apply_file(
    args: &mut Args,
    file: udpchat_native::server_config::ServerFile,
) -> Result<(), String> {
    if args.admins.is_empty() {
        args.admins = file.admins.unwrap_or_default();
    }
    if args.cluster.is_none() {
        args.cluster = file.cluster;
    }
    if args.node.is_none() {
        args.node = file
            .node
            .map(|n| parse_node(&n).map_err(|e| format!("node {n:?}: {e}")))
            .transpose()?;
    }
    Ok(())
}

/// A node's name: 1 to 64 ASCII letters, digits, '_', '-' or '.'.
fn parse_node(name: &str) -> Result<String, String> {
    if (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        Ok(name.to_string())
    } else {
        Err("1 to 64 ASCII letters, digits, '_', '-' or '.'".to_string())
    }
}

/// An admin's name: a valid username.
fn parse_admin(name: &str) -> Result<String, String> {
    udpchat_core::session::validate_username(name)
        .map(|()| name.to_string())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        return match udpchat_native::manpage::write_pages(
            <Args as clap::CommandFactory>::command(),
            dir,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chatserver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut args = args;
    if let Some(path) = args.config.clone() {
        let applied = udpchat_native::server_config::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                apply_file(&mut args, file).map_err(|e| format!("{}: {e}", path.display()))
            });
        if let Err(e) = applied {
            eprintln!("chatserver: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(Command::Accounts(accounts)) = args.command {
        return udpchat_native::accounts::run(
            &args.users,
            args.cluster.as_deref(),
            args.min_password_chars,
            accounts,
        );
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's limits: [`ServerConfig::default()`], which is also where
/// every default of [`Args`] comes from, changed by the flags given.
fn defaults() -> ServerConfig {
    ServerConfig::default()
}

/// Milliseconds in a day.
const MS_PER_DAY: u64 = 24 * 3600 * 1000;

/// The history's retention rules from the flags.
fn retention(args: &Args) -> Retention {
    Retention {
        max_messages: args.history_max_messages,
        max_age_ms: args.history_max_days.saturating_mul(MS_PER_DAY),
    }
}

/// Milliseconds since the Unix epoch, by the system's clock.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How many tokens `limit` earns back per second.
fn per_second(limit: RateLimit) -> u32 {
    u32::try_from(1_000_000 / limit.interval.as_micros().max(1)).unwrap_or(u32::MAX)
}

/// How many tokens `limit` earns back per minute.
fn per_minute(limit: RateLimit) -> u32 {
    u32::try_from(60_000_000 / limit.interval.as_micros().max(1)).unwrap_or(u32::MAX)
}

/// The server's configuration from the flags, with datagrams of at most
/// `max_datagram` bytes.
fn server_config(args: &Args, max_datagram: usize) -> ServerConfig {
    ServerConfig {
        channel: ChannelConfig {
            idle_timeout: Duration::from_secs(args.idle_timeout),
            window: args.window,
            max_queued_bytes: args.max_queued_bytes,
            max_datagram,
            ..ChannelConfig::default()
        },
        max_sessions: args.max_sessions,
        max_pending_checks: args.max_pending_checks,
        max_login_failures: args.max_login_failures,
        min_password_chars: args.min_password_chars,
        max_sessions_per_ip: args.max_sessions_per_ip,
        max_handshaking: args.max_handshaking,
        max_handshaking_per_ip: args.max_handshaking_per_ip,
        user_timeout: Duration::from_secs(args.user_timeout),
        max_message_before_login: args.max_message_before_login,
        max_presence: args.max_presence,
        max_listed: args.max_listed,
        handshakes: RateLimit::per_second(args.handshake_burst, args.handshakes_per_sec),
        handshakes_per_turn: args.handshakes_per_turn,
        max_queued_initials: args.max_queued_initials,
        messages: RateLimit::per_second(args.message_burst, args.messages_per_sec),
        login_failures: RateLimit::per_minute(
            args.login_failures_per_min,
            args.login_failures_per_min,
        ),
        max_rooms_per_user: args.max_rooms_per_user,
        max_room_members: args.max_room_members,
        max_rooms: args.max_rooms,
        history_on_join: args.history_on_join,
        max_replay: args.max_replay,
        max_offline_per_user: args.max_offline_per_user,
        max_offline_per_sender: args.max_offline_per_sender,
        max_topic: args.max_topic,
        admins: args
            .admins
            .iter()
            .map(|a| udpchat_core::session::username_key(a))
            .collect(),
        ..defaults()
    }
}

/// Adds the cluster's accounts that the user store lacks to it.
fn export_accounts(args: &Args) -> Result<()> {
    let url = args.cluster.as_deref().unwrap_or_default();
    let accounts =
        cluster::accounts(url).with_context(|| format!("cannot read the accounts at {url}"))?;
    if state::in_default_dir(&args.users) {
        let dir = state::parent_dir(&args.users);
        state::create_private_dir(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut store = UserStore::open(&args.users).map_err(|e| anyhow::anyhow!("{e}"))?;
    let have: std::collections::HashSet<String> = store
        .users()
        .iter()
        .map(|u| udpchat_core::session::username_key(&u.name))
        .collect();
    let new: Vec<NewUser<'_>> = accounts
        .iter()
        .filter(|u| !have.contains(&udpchat_core::session::username_key(&u.name)))
        .map(|u| NewUser {
            name: &u.name,
            password_hash: &u.password_hash,
            created: u.created,
        })
        .collect();
    let mut added = 0;
    for result in store.add_many(&new) {
        result.map_err(|e| anyhow::anyhow!("{e}"))?;
        added += 1;
    }
    println!(
        "{added} accounts added to {} ({} in the cluster)",
        args.users.display(),
        accounts.len()
    );
    Ok(())
}

/// Prints the public half of the key at `path`, which must exist.
fn print_key(path: &Path) -> Result<()> {
    match load_server_key(path).map_err(anyhow::Error::msg)? {
        Some(key) => {
            println!("{}", Hex(key.public()));
            Ok(())
        }
        None => {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            anyhow::bail!(
                "no server key at {}: the server creates it when it first starts; \
                 start chatserver once (with the same --users or --key), then ask again",
                shown.display()
            )
        }
    }
}

fn run(args: Args) -> Result<()> {
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| state::parent_dir(&args.users).join(state::KEY_FILE));
    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| state::parent_dir(&args.users).join(chatstore::DATA_FILE));
    if args.print_key {
        return print_key(&key_path);
    }
    if args.export_accounts {
        return export_accounts(&args);
    }
    if args.cluster.is_some() && args.node.is_none() {
        anyhow::bail!("--cluster needs --node NAME (or CHAT_NODE): this node's name");
    }
    if args.node.is_some() && args.cluster.is_none() {
        anyhow::bail!("--node names a node of a cluster: give --cluster URL (or CHAT_CLUSTER) too");
    }
    // The socket first: a server that cannot listen leaves no directory, key
    // or user store behind.
    let addr = SocketAddr::new(args.bind, args.port);
    let socket = bind(addr, args.socket_buffer).map_err(|e| bind_error(addr, e))?;
    let metrics_listener = match args.metrics {
        Some(at) => Some(
            std::net::TcpListener::bind(at)
                .with_context(|| format!("cannot serve metrics on TCP {at}"))?,
        ),
        None => None,
    };
    for path in [&args.users, &key_path, &data_path] {
        if state::in_default_dir(path) {
            let dir = state::parent_dir(path);
            state::create_private_dir(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
    }
    // Then the store: a server that cannot use it must not leave a key file
    // behind. Its errors name the file and the problem once.
    let store = UserStore::open(&args.users).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_existed = data_path.exists();
    let chat_store = RedbStore::open(&data_path, retention(&args))?;
    let key = match load_or_create_server_key(&key_path) {
        Ok(key) => key,
        Err(e) => {
            // Nothing is left behind: not a chat store made a moment ago.
            if !data_existed {
                drop(chat_store);
                let _ = std::fs::remove_file(&data_path);
            }
            anyhow::bail!(e)
        }
    };
    let users: Vec<UserRecord> = store.users().iter().map(|u| u.to_core()).collect();
    info!(accounts = users.len(), path = %args.users.display(), "user store loaded");

    let max_datagram = udp::max_datagram(&socket).min(args.max_datagram as usize);
    let gso = args.gso && udp::gso_supported(&socket);
    let mut config = server_config(&args, max_datagram);
    config.channel.pad_bursts = gso;
    info!(key = %Hex(key.public()), path = %key_path.display(), "server key");
    let room_memory = config.room_memory();
    let mut server = Server::new(config, users, key, rand::random());
    let clock = Clock::new();
    server.set_unix_time(clock.now(), unix_ms());
    let mut snapshot = chat_store.load(room_memory)?;
    if args.cluster.is_some() && !snapshot.offline.is_empty() {
        // In a cluster they are kept in Redis, where every node sees them.
        warn!(
            count = snapshot.offline.len(),
            "direct messages stored by this server alone are not delivered in a cluster"
        );
        snapshot.offline.clear();
    }
    info!(
        rooms = snapshot.rooms.len(),
        offline_messages = snapshot.offline.len(),
        path = %data_path.display(),
        "chat store loaded"
    );

    let local = socket.local_addr()?;

    // One thread owns the socket and the server state; password hashing,
    // the user store and signals run elsewhere and wake it when they have
    // something for it.
    let mut poll = mio::Poll::new().context("cannot create the event poll")?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).context("cannot create a waker")?);
    let socket = udp::ServerSocket::new(socket, poll.registry(), SOCKET, waker.clone(), gso)
        .context("cannot watch the socket")?;

    let (stored_tx, stored_rx) = bounded::<Response>(1024);
    let (changes_tx, changes_rx) = bounded::<Vec<AccountChange>>(64);
    let cluster = match (&args.cluster, &args.node) {
        (Some(url), Some(node)) => {
            let cluster_waker = waker.clone();
            let settings = cluster::Settings {
                max_messages: args.history_max_messages,
                max_age_ms: args.history_max_days.saturating_mul(MS_PER_DAY),
                room_memory,
            };
            let (cluster, joined) = Cluster::start(url, node, store.users(), settings, move || {
                let _ = cluster_waker.wake();
            })
            .with_context(|| format!("cannot join the cluster at {url}"))?;
            info!(
                node,
                accounts = joined.accounts.len(),
                offline_messages = joined.offline.len(),
                "joined the cluster"
            );
            for account in joined.accounts {
                server.put_account(clock.now(), account.to_core());
            }
            server.set_node(node.clone());
            server.set_offline_ids(joined.first_offline_id);
            // Rooms and their history are the cluster's, not this node's.
            snapshot.rooms = joined.rooms;
            server.restore(std::mem::take(&mut snapshot));
            server.sync_offline(clock.now(), joined.offline);
            Some(cluster)
        }
        _ => {
            server.restore(std::mem::take(&mut snapshot));
            None
        }
    };
    let store_tx = spawn_store(store, stored_tx, changes_tx, waker.clone())?;
    let chat_waker = waker.clone();
    let mut chat = StoreWriter::spawn(chat_store, STORE_QUEUE, move || {
        let _ = chat_waker.wake();
    })
    .context("cannot start the chat store's thread")?;
    // By default one core is left to the datagram loop: a storm of logins
    // must not take every core from the users already chatting.
    let hash_workers = args
        .hash_workers
        .and_then(std::num::NonZeroUsize::new)
        .unwrap_or_else(|| {
            let cores = PasswordWorkers::default_workers().get();
            std::num::NonZeroUsize::new(cores.saturating_sub(1).max(1))
                .unwrap_or(std::num::NonZeroUsize::MIN)
        });
    let workers = PasswordWorkers::with_config(hash_workers, 1024)?;
    let hashed_rx = forward_results(workers.results().clone(), waker.clone())?;
    let (sig_tx, sig_rx) = bounded::<()>(1);
    let sig_waker = waker.clone();
    ctrlc::set_handler(move || {
        let _ = sig_tx.try_send(());
        let _ = sig_waker.wake();
    })
    .context("cannot install the Ctrl-C/SIGTERM/SIGHUP handler")?;
    let published = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr()?;
            let published = metrics::Published::default();
            metrics::spawn(listener, published.clone(), Some(chat.live_stats()))
                .context("cannot start the metrics thread")?;
            println!("metrics on http://{at}/metrics");
            info!(%at, "serving metrics");
            Some(published)
        }
        None => None,
    };
    // Only now: whoever waits for this line may signal the server at once.
    println!("listening on {local}");
    info!(%local, max_datagram, "listening; max message {MAX_TEXT} bytes, usernames up to {MAX_USERNAME}");

    let mut driver = Driver {
        socket: &socket,
        workers: &workers,
        store_tx: &store_tx,
        registering: HashMap::new(),
        cluster: cluster.as_ref(),
        chat: &chat,
        unsent: Vec::with_capacity(udp::BATCH),
        spare: Vec::with_capacity(udp::BATCH),
        blocked: false,
        backlog: false,
    };
    let mut received = udp::RecvBatch::new();
    let mut events = mio::Events::with_capacity(64);
    let status_every = StdDuration::from_secs(args.status_interval);
    let mut last_status = std::time::Instant::now();
    let mut last_reseed = std::time::Instant::now();
    let mut last_stats = *server.stats();
    let mut shutdown_deadline: Option<std::time::Instant> = None;
    // Whether the socket may still hold datagrams (the last read stopped
    // at its budget rather than at an empty socket).
    let mut more_to_read = false;
    // What --metrics shows: the loop's own counters, copied to the metrics
    // thread at most every PUBLISH_EVERY.
    let mut snapshot = metrics::Snapshot::default();
    let mut turn_started: Option<std::time::Instant> = None;
    let mut last_publish: Option<std::time::Instant> = None;
    // One pass of this loop is one turn of the server's: it does at most
    // --handshakes-per-turn handshakes (three Diffie-Hellman operations
    // each) per turn, and lets the rest wait in its queue of Initials, so
    // that a storm of them does not hold up the chat of users already
    // logged in. While Initials wait, poll_timeout() is now: the socket is
    // read (established sessions' datagrams first) and the loop comes back
    // without sleeping.
    loop {
        driver.flush(&mut server, &clock);
        if let Some(deadline) = shutdown_deadline
            && (server.is_shut_down() || std::time::Instant::now() >= deadline)
        {
            drop(driver);
            if let Some(cluster) = &cluster {
                cluster.finish(StdDuration::from_secs(1));
            }
            let stats = chat.finish();
            info!(
                commits = stats.commits,
                writes = stats.writes,
                mean_commit_us = (stats.commit_time.as_micros() as u64)
                    .checked_div(stats.commits)
                    .unwrap_or(0),
                max_commit_us = stats.max_commit.as_micros() as u64,
                "shut down; user store and chat store are on disk"
            );
            return Ok(());
        }
        if let Some(published) = &published {
            if let Some(started) = turn_started.take() {
                snapshot.turns.observe(started.elapsed());
            }
            if last_publish.is_none_or(|t| t.elapsed() >= PUBLISH_EVERY) {
                snapshot.stats = *server.stats();
                snapshot.sessions = server.session_count() as u64;
                snapshot.users_online = server.online_users().count() as u64;
                snapshot.rooms = server.room_count() as u64;
                snapshot.offline_messages = server.offline_count() as u64;
                snapshot.queued_initials = server.queued_initials() as u64;
                snapshot.cluster = cluster
                    .as_ref()
                    .map(|c| (c.stats(), server.remote_count() as u64));
                snapshot.retransmissions = server.retransmissions();
                published.publish(&snapshot);
                last_publish = Some(std::time::Instant::now());
            }
        }
        let wait = if more_to_read || driver.backlog {
            StdDuration::ZERO
        } else {
            server
                .poll_timeout()
                .map(|t| clock.until(t))
                .unwrap_or(StdDuration::from_secs(1))
                .min(if driver.blocked {
                    BLOCKED_RETRY
                } else {
                    StdDuration::from_secs(1)
                })
        };
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("waiting for the socket failed"),
        }
        if published.is_some() {
            turn_started = Some(std::time::Instant::now());
        }
        // A full send buffer is tried again after every wait: the wait is
        // short while blocked, and a writable event ends it early. Not
        // relying on the event alone keeps a platform that never reports
        // it (or reports it late) from stalling every send.
        driver.blocked = false;
        // Everything the socket holds first (up to a budget, so that timers
        // and workers still get their turn), then timers and the handshakes
        // that wait (handle_timeout). What the datagrams produced goes out
        // once the socket is drained, or at the top of the next pass: under
        // load a pass reads many full batches (mostly acknowledgements),
        // and every message they carried goes to each recipient in one
        // datagram rather than in one fan-out per message.
        more_to_read = true;
        for _ in 0..READ_BUDGET / udp::BATCH {
            match received.recv(&socket) {
                Ok(0) => {
                    more_to_read = false;
                    break;
                }
                Ok(n) => {
                    let now = clock.now();
                    for i in 0..n {
                        let (from, bytes) = received.get(i);
                        if bytes.len() > wire::MAX_DATAGRAM {
                            debug!(%from, len = bytes.len(), "dropped oversized datagram");
                            snapshot.dropped_oversized += 1;
                            continue;
                        }
                        server.handle_datagram(now, from, bytes);
                    }
                    if n < udp::BATCH {
                        // The socket is drained: answers go out at once.
                        driver.flush(&mut server, &clock);
                    }
                }
                Err(e) => {
                    warn!(error = %e, "receive failed");
                    more_to_read = false;
                    break;
                }
            }
        }
        server.set_unix_time(clock.now(), unix_ms());
        while let Ok(response) = driver.chat.answers().try_recv() {
            server.handle_response(clock.now(), response);
        }
        while let Ok(response) = stored_rx.try_recv() {
            server.handle_response(clock.now(), response);
        }
        while let Ok(changes) = changes_rx.try_recv() {
            for change in changes {
                match change {
                    AccountChange::Put(user) => {
                        info!(user = %user.name, "account added or changed in the user store");
                        server.put_account(clock.now(), user.to_core());
                    }
                    AccountChange::Removed(name) => {
                        info!(user = %name, "account deleted from the user store");
                        server.remove_account(clock.now(), &name);
                    }
                }
            }
        }
        if let Some(cluster) = &cluster {
            while let Ok(event) = cluster.events().try_recv() {
                let now = clock.now();
                match event {
                    cluster::Event::Message(m) => server.handle_remote(now, m),
                    cluster::Event::Appended { id, result } => {
                        server.handle_response(now, Response::Appended { id, result });
                    }
                    cluster::Event::RoomFound { id, room } => {
                        let room = Box::new(room);
                        server.handle_response(now, Response::RoomFound { id, room });
                    }
                    cluster::Event::History { id, result } => {
                        server.handle_response(now, Response::History { id, result });
                    }
                    cluster::Event::Stored { id, result } => {
                        server.handle_response(now, Response::Stored { id, result });
                    }
                    cluster::Event::Snapshot {
                        accounts,
                        users,
                        away,
                        offline,
                        rooms,
                    } => {
                        server.sync_offline(now, offline);
                        server.sync_rooms(now, rooms);
                        server.sync_accounts(now, accounts.iter().map(|a| a.to_core()).collect());
                        server.sync_remote(now, users);
                        server.sync_away(away);
                        server.republish_presence();
                    }
                    cluster::Event::NodeGone(node) => server.node_gone(now, &node),
                    cluster::Event::Lapsed => server.republish_presence(),
                    cluster::Event::Registered { id, result } => {
                        server.handle_response(now, Response::Registered { id, result });
                    }
                }
            }
        }
        while let Ok(result) = hashed_rx.try_recv() {
            driver.job_done(&mut server, &clock, result);
        }
        if sig_rx.try_recv().is_ok() && shutdown_deadline.is_none() {
            info!(
                online = server.online_users().count(),
                "shutting down: telling clients"
            );
            server.shutdown(clock.now());
            shutdown_deadline = Some(std::time::Instant::now() + StdDuration::from_secs(3));
        }
        server.handle_timeout(clock.now());
        if last_reseed.elapsed() >= StdDuration::from_secs(60) {
            // Fresh OS randomness for later handshakes' keys.
            server.add_entropy(rand::random());
            last_reseed = std::time::Instant::now();
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            let s = *server.stats();
            let secs = last_status.elapsed().as_secs_f64();
            info!(
                online = server.online_users().count(),
                sessions = server.session_count(),
                msgs_per_sec = format!(
                    "{:.1}",
                    (s.public_messages + s.direct_messages
                        - last_stats.public_messages
                        - last_stats.direct_messages) as f64
                        / secs
                ),
                deliveries_per_sec = format!(
                    "{:.1}",
                    (s.deliveries - last_stats.deliveries) as f64 / secs
                ),
                dropped_malformed = s.dropped_malformed - last_stats.dropped_malformed,
                dropped_unknown = s.dropped_unknown - last_stats.dropped_unknown,
                dropped_spoofed = s.dropped_spoofed - last_stats.dropped_spoofed,
                dropped_refused = s.dropped_refused - last_stats.dropped_refused,
                dropped_rate_limited = s.dropped_rate_limited - last_stats.dropped_rate_limited,
                dropped_queue_full = s.dropped_queue_full - last_stats.dropped_queue_full,
                dropped_unauthenticated =
                    s.dropped_unauthenticated - last_stats.dropped_unauthenticated,
                dropped_replay = s.dropped_replay - last_stats.dropped_replay,
                "status"
            );
            last_stats = s;
            last_status = std::time::Instant::now();
        }
    }
}

/// The poll tokens: the socket, and the waker the other threads use.
const SOCKET: mio::Token = mio::Token(0);
const WAKE: mio::Token = mio::Token(1);

/// Chat store requests waiting for the store's thread; more are answered
/// "unavailable" at once.
const STORE_QUEUE: usize = 16_384;

/// How often, at most, the loop copies its counters for --metrics; it
/// wakes at least once a second, so a scrape sees counters a second old
/// at most.
const PUBLISH_EVERY: StdDuration = StdDuration::from_millis(100);

/// Datagrams read in one go before timers and workers get their turn.
const READ_BUDGET: usize = 1024;

/// How soon sending is tried again after the socket's buffer was full.
const BLOCKED_RETRY: StdDuration = StdDuration::from_millis(1);

/// Datagrams sent in one go before the socket is read again.
const SEND_BUDGET: usize = 256;

/// Hands the password workers' results to the event loop, waking it.
fn forward_results(
    results: Receiver<JobResult>,
    waker: Arc<mio::Waker>,
) -> Result<Receiver<JobResult>> {
    let (tx, rx) = bounded::<JobResult>(1024);
    thread::Builder::new()
        .name("hash-results".into())
        .spawn(move || {
            for result in results {
                if tx.send(result).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
        })?;
    Ok(rx)
}

struct Driver<'a> {
    socket: &'a udp::ServerSocket,
    workers: &'a PasswordWorkers,
    store_tx: &'a Sender<UserJob>,
    /// Registrations being hashed: request id to username.
    registering: HashMap<u64, String>,
    /// The cluster this server is a node of, if any: accounts are stored
    /// there, and what the other nodes must learn is published there.
    cluster: Option<&'a Cluster>,
    /// The chat store's thread: rooms, history and offline messages.
    chat: &'a StoreWriter,
    /// Datagrams taken from the server and not yet accepted by the socket.
    unsent: Vec<(SocketAddr, Vec<u8>)>,
    /// Buffers of datagrams the socket took, for the next ones.
    spare: Vec<Vec<u8>>,
    /// The socket's send buffer was full: wait until it is writable.
    blocked: bool,
    /// The last flush stopped at its budget with datagrams left to send.
    backlog: bool,
}

impl Driver<'_> {
    fn job_done(&mut self, server: &mut Server, clock: &Clock, result: JobResult) {
        match result {
            JobResult::Verified { id, ok } => {
                server.handle_response(clock.now(), Response::Verified { id, ok })
            }
            JobResult::Hashed { id, result } => {
                let Some(name) = self.registering.remove(&id) else {
                    return;
                };
                match result {
                    // The account is acknowledged only once it is on disk:
                    // the store thread answers with `Input::Stored`.
                    Ok(hash) => {
                        if let Some(cluster) = self.cluster {
                            if !cluster.register(id, name, hash) {
                                server.handle_response(
                                    clock.now(),
                                    Response::Registered {
                                        id,
                                        result: Err("the cluster's queue is full".into()),
                                    },
                                );
                            }
                        } else if self.store_tx.send(UserJob::Add { id, name, hash }).is_err() {
                            server.handle_response(
                                clock.now(),
                                Response::Registered {
                                    id,
                                    result: Err("user store unavailable".into()),
                                },
                            );
                        }
                    }
                    Err(e) => server
                        .handle_response(clock.now(), Response::Registered { id, result: Err(e) }),
                }
            }
        }
    }

    /// Hands a request to the chat store's thread; a full queue is
    /// answered at once.
    fn submit_to_store(&self, server: &mut Server, clock: &Clock, job: StoreJob) {
        if let Err(id) = self.chat.submit(job) {
            warn!("chat store queue full; refusing a change or a read");
            server.handle_response(clock.now(), Response::Unavailable { id });
        }
    }

    /// Sends the server's datagrams in batches until it has no more or the
    /// socket's buffer is full; returns whether anything was sent.
    fn send(&mut self, server: &mut Server, clock: &Clock) -> bool {
        let mut progress = false;
        let mut budget = SEND_BUDGET;
        self.backlog = false;
        while !self.blocked {
            if budget == 0 {
                // The socket gets read before the rest goes out: what
                // arrives meanwhile may be more urgent (the server sends
                // chat messages first).
                self.backlog = true;
                break;
            }
            let now = clock.now();
            while self.unsent.len() < udp::BATCH {
                let mut buf = self.spare.pop().unwrap_or_default();
                match server.poll_transmit(now, &mut buf) {
                    Some(t) => self.unsent.push((t.to, buf)),
                    None => {
                        self.spare.push(buf);
                        break;
                    }
                }
            }
            if self.unsent.is_empty() {
                break;
            }
            let batch: Vec<udp::Outgoing<'_>> = self
                .unsent
                .iter()
                .map(|(to, bytes)| udp::Outgoing { to: *to, bytes })
                .collect();
            match udp::send_batch(self.socket, &batch) {
                Ok(n) => {
                    drop(batch);
                    self.spare.extend(self.unsent.drain(..n).map(|(_, b)| b));
                    budget = budget.saturating_sub(n);
                    progress = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.blocked = true,
                Err(e) => {
                    // send_batch passes over what the OS refuses; this is
                    // the socket itself failing.
                    warn!(error = %e, "send failed");
                    drop(batch);
                    self.spare.extend(self.unsent.drain(..).map(|(_, b)| b));
                }
            }
        }
        progress
    }

    /// Performs everything the server has queued: datagrams, jobs, log lines.
    fn flush(&mut self, server: &mut Server, clock: &Clock) {
        loop {
            // At its budget, sending waits for the next turn of the loop.
            let mut progress = self.send(server, clock) && !self.backlog;
            while let Some(request) = server.poll_request() {
                progress = true;
                let (id, job) = match request {
                    Request::Store { id, op } => {
                        match self.cluster {
                            Some(cluster) if Cluster::keeps(&op) => {
                                if !cluster.store(id, op) {
                                    warn!("the cluster's queue is full; refusing a change");
                                    server
                                        .handle_response(clock.now(), Response::Unavailable { id });
                                }
                            }
                            _ => self.submit_to_store(server, clock, StoreJob::Write { id, op }),
                        }
                        continue;
                    }
                    Request::Account { id, op } if self.cluster.is_some() => {
                        // The cluster's accounts hash: Redis writes it and
                        // tells every node.
                        if let Some(cluster) = self.cluster
                            && !cluster.account(id, op)
                        {
                            warn!("the cluster's queue is full; refusing an account change");
                            server.handle_response(clock.now(), Response::Unavailable { id });
                        }
                        continue;
                    }
                    Request::Account { id, op } => {
                        // The user store's thread writes it and answers.
                        if self.store_tx.try_send(UserJob::Account { id, op }).is_err() {
                            warn!("user store queue full; refusing an account change");
                            server.handle_response(clock.now(), Response::Unavailable { id });
                        }
                        continue;
                    }
                    Request::History {
                        id,
                        room,
                        page,
                        limit,
                    } if self.cluster.is_some() => {
                        if let Some(cluster) = self.cluster
                            && !cluster.history(id, room, page, limit)
                        {
                            server.handle_response(clock.now(), Response::Unavailable { id });
                        }
                        continue;
                    }
                    Request::History {
                        id,
                        room,
                        page,
                        limit,
                    } => {
                        self.submit_to_store(
                            server,
                            clock,
                            StoreJob::Read {
                                id,
                                room,
                                page,
                                limit,
                            },
                        );
                        continue;
                    }
                    Request::Register {
                        id,
                        username,
                        password,
                    } => {
                        self.registering.insert(id, username);
                        (id, Job::Hash { id, password })
                    }
                    Request::Verify {
                        id,
                        password,
                        password_hash,
                        ..
                    } => (
                        id,
                        Job::Verify {
                            id,
                            password,
                            phc: password_hash,
                        },
                    ),
                };
                if self.workers.submit(job).is_err() {
                    warn!("password queue full; refusing a login");
                    self.registering.remove(&id);
                    server.handle_response(clock.now(), Response::Unavailable { id });
                }
            }
            while let Some(message) = server.poll_publish() {
                progress = true;
                if let Some(cluster) = self.cluster
                    && !cluster.publish(message)
                {
                    warn!("the cluster's queue is full; a message to the other nodes was dropped");
                }
            }
            while let Some(event) = server.poll_event() {
                progress = true;
                log_event(event);
            }
            if !progress {
                return;
            }
        }
    }
}

fn log_event(event: ServerEvent) {
    match event {
        ServerEvent::SessionOpened {
            connection_id,
            addr,
        } => debug!(conn = format!("{connection_id:016x}"), %addr, "session opened"),
        ServerEvent::LoggedIn {
            user,
            addr,
            new_user,
        } => info!(%user, %addr, new_user, "logged in"),
        ServerEvent::LoginFailed { user, addr, reason } => {
            info!(%user, %addr, ?reason, "login failed")
        }
        ServerEvent::LoggedOut { user, reason } => {
            info!(%user, reason = reason.as_str(), "logged out")
        }
        ServerEvent::SessionClosed {
            connection_id,
            error,
        } => debug!(
            conn = format!("{connection_id:016x}"),
            ?error,
            "session closed"
        ),
        ServerEvent::Dropped { from, reason } => match reason {
            DropReason::Malformed(e) => debug!(%from, error = %e, "dropped malformed datagram"),
            other => debug!(%from, reason = ?other, "dropped datagram"),
        },
        ServerEvent::Migrated {
            connection_id,
            from,
            to,
        } => info!(conn = format!("{connection_id:016x}"), %from, %to, "client moved"),
        ServerEvent::StoreFailed { error } => warn!(%error, "store write failed"),
        ServerEvent::ClientError {
            connection_id,
            code,
        } => debug!(
            conn = format!("{connection_id:016x}"),
            ?code,
            "refused a request"
        ),
    }
}

/// The error of a socket that could not be bound to `addr`.
fn bind_error(addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another program (another chatserver?) uses this port: stop it or choose another port"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; no interface of this machine has that address (see --bind)"
        }
        _ => "",
    };
    anyhow::anyhow!("cannot listen on UDP {addr}: {e}{hint}")
}

/// Binds the server's socket with large buffers.
fn bind(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // `--bind ::` serves IPv4 too where the OS allows it.
        let _ = socket.set_only_v6(false);
    }
    // A smaller buffer than asked is not an error: the OS caps it.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.bind(&addr.into())?;
    debug!(
        recv = socket.recv_buffer_size().unwrap_or(0),
        send = socket.send_buffer_size().unwrap_or(0),
        "socket buffers"
    );
    Ok(socket.into())
}

/// The most registrations the store thread writes with one rewrite of the
/// user store.
const STORE_BATCH: usize = 1024;

/// Work for the thread that owns the user store.
enum UserJob {
    /// Store a new account (its password hashed): answered with
    /// `Response::Registered`.
    Add { id: u64, name: String, hash: String },
    /// Change an account: answered with `Response::Stored`.
    Account { id: u64, op: AccountOp },
}

/// The thread that writes the user store. Registrations are group-committed:
/// after waiting for one, it takes every other already waiting (up to
/// [`STORE_BATCH`]), writes them all with a single durable rewrite, then
/// answers each in order, only once that write is durable. A failed write
/// fails every registration of its batch. An account change (a suspension)
/// is one durable rewrite of its own, answered once it is on disk.
///
/// It also looks for changes another process (`chatserver accounts`) made
/// to the file, at least every [`POLL_INTERVAL`] and before every write, and
/// sends what changed to the event loop on `changes`.
fn spawn_store(
    mut store: UserStore,
    tx: Sender<Response>,
    changes: Sender<Vec<AccountChange>>,
    waker: Arc<mio::Waker>,
) -> Result<Sender<UserJob>> {
    let (store_tx, store_rx): (Sender<UserJob>, Receiver<UserJob>) = bounded(1024);
    thread::Builder::new()
        .name("user-store".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(STORE_BATCH);
            let mut last_check = std::time::Instant::now();
            // The last reload error logged, so that a broken file is
            // reported once, not every second.
            let mut last_error = None;
            loop {
                let wait = POLL_INTERVAL.saturating_sub(last_check.elapsed());
                match store_rx.recv_timeout(wait) {
                    Ok(first) => batch.push(first),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
                if !batch.is_empty() {
                    while batch.len() < STORE_BATCH {
                        match store_rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if !commit(&mut store, &mut batch, &tx, &waker) {
                        return;
                    }
                }
                if last_check.elapsed() >= POLL_INTERVAL {
                    last_check = std::time::Instant::now();
                    match store.refresh() {
                        Ok(_) => last_error = None,
                        Err(e) => {
                            let error = e.to_string();
                            if last_error.as_ref() != Some(&error) {
                                warn!(%error, "cannot reload the user store; keeping the accounts already loaded");
                                last_error = Some(error);
                            }
                        }
                    }
                }
                let found = store.take_changes();
                if !found.is_empty() {
                    info!(changes = found.len(), "the user store was changed by another process");
                    if changes.send(found).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            }
        })?;
    Ok(store_tx)
}

/// Writes a batch of registrations with one rewrite, then each account
/// change, and answers each in order; false once the event loop is gone.
fn commit(
    store: &mut UserStore,
    batch: &mut Vec<UserJob>,
    tx: &Sender<Response>,
    waker: &mio::Waker,
) -> bool {
    let mut adds: Vec<(u64, String, String)> = Vec::with_capacity(batch.len());
    let mut changes: Vec<(u64, AccountOp)> = Vec::new();
    for job in batch.drain(..) {
        match job {
            UserJob::Add { id, name, hash } => adds.push((id, name, hash)),
            UserJob::Account { id, op } => changes.push((id, op)),
        }
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let users: Vec<NewUser<'_>> = adds
        .iter()
        .map(|(_, name, hash)| NewUser {
            name,
            password_hash: hash,
            created,
        })
        .collect();
    let results = if users.is_empty() {
        Vec::new()
    } else {
        store.add_many(&users)
    };
    drop(users);
    let mut answers = Vec::with_capacity(adds.len() + changes.len());
    for ((id, _, hash), result) in adds.into_iter().zip(results) {
        let result = result.map(|()| hash).map_err(|e| {
            warn!(error = %e, "could not store a new account");
            e.to_string()
        });
        answers.push(Response::Registered { id, result });
    }
    for (id, op) in changes {
        let (name, suspended) = match &op {
            AccountOp::Suspend { name, suspension } => {
                (name, Some(StoredSuspension::from_core(suspension)))
            }
            AccountOp::Unsuspend { name } => (name, None),
        };
        let result = store.set_suspension(name, suspended).map_err(|e| {
            warn!(error = %e, account = %name, "could not change an account");
            e.to_string()
        });
        answers.push(Response::Stored { id, result });
    }
    for answer in answers {
        if tx.send(answer).is_err() {
            return false;
        }
        let _ = waker.wake();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_defaults_are_the_server_configs_defaults() {
        let args = Args::try_parse_from(["chatserver"]).unwrap();
        let max = udpchat_core::reliable::ChannelConfig::default().max_datagram;
        let from_flags = server_config(&args, max);
        assert_eq!(
            format!("{from_flags:?}"),
            format!("{:?}", ServerConfig::default())
        );
    }

    #[test]
    fn the_flag_wins_over_the_configuration_file() {
        let file = || udpchat_native::server_config::ServerFile {
            admins: Some(vec!["alice".to_string()]),
            cluster: Some("redis://127.0.0.1:6379".to_string()),
            node: Some("a".to_string()),
        };
        let mut args = Args::try_parse_from([
            "chatserver",
            "--admin",
            "bob",
            "--cluster",
            "redis://127.0.0.1:7000",
            "--node",
            "b",
        ])
        .unwrap();
        apply_file(&mut args, file()).unwrap();
        assert_eq!(args.admins, ["bob"]);
        assert_eq!(args.cluster.as_deref(), Some("redis://127.0.0.1:7000"));
        assert_eq!(args.node.as_deref(), Some("b"));
        let mut args = Args::try_parse_from(["chatserver"]).unwrap();
        if ["CHAT_ADMINS", "CHAT_CLUSTER", "CHAT_NODE"]
            .iter()
            .all(|v| std::env::var_os(v).is_none())
        {
            apply_file(&mut args, file()).unwrap();
            assert_eq!(args.admins, ["alice"]);
            assert_eq!(args.cluster.as_deref(), Some("redis://127.0.0.1:6379"));
            assert_eq!(args.node.as_deref(), Some("a"));
            let mut args = Args::try_parse_from(["chatserver"]).unwrap();
            let bad = udpchat_native::server_config::ServerFile {
                node: Some("not a node".to_string()),
                ..file()
            };
            assert!(
                apply_file(&mut args, bad)
                    .unwrap_err()
                    .contains("not a node")
            );
        }
    }

    #[test]
    fn the_help_and_the_readme_name_every_metric() {
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        let readme = include_str!("../../../README.md");
        let text = metrics::render(
            &metrics::Published::default(),
            Some(&chatstore::LiveStats::default()),
        );
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(names.len() > 20, "{text}");
        for name in names {
            assert!(help.contains(name), "{name} in --help");
            assert!(readme.contains(&format!("| `{name}")), "{name} in README");
        }
    }

    #[test]
    fn the_help_shows_each_default() {
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        let d = ServerConfig::default();
        for (flag, value) in [
            ("--max-sessions", d.max_sessions.to_string()),
            ("--window", d.channel.window.to_string()),
            (
                "--idle-timeout",
                (d.channel.idle_timeout.as_millis() / 1000).to_string(),
            ),
            ("--handshakes-per-sec", per_second(d.handshakes).to_string()),
            ("--handshakes-per-turn", d.handshakes_per_turn.to_string()),
            ("--max-queued-initials", d.max_queued_initials.to_string()),
            (
                "--login-failures-per-min",
                per_minute(d.login_failures).to_string(),
            ),
            ("--max-listed", d.max_listed.to_string()),
            ("--min-password-chars", d.min_password_chars.to_string()),
            ("--max-rooms-per-user", d.max_rooms_per_user.to_string()),
            ("--max-room-members", d.max_room_members.to_string()),
            ("--max-rooms", d.max_rooms.to_string()),
            ("--history-on-join", d.history_on_join.to_string()),
            ("--max-replay", d.max_replay.to_string()),
            ("--max-offline-per-user", d.max_offline_per_user.to_string()),
            (
                "--max-offline-per-sender",
                d.max_offline_per_sender.to_string(),
            ),
            ("--max-topic", d.max_topic.to_string()),
            ("--history-max-messages", "10000".to_string()),
            ("--history-max-days", "30".to_string()),
        ] {
            let at = help
                .find(&format!("{flag} <"))
                .unwrap_or_else(|| panic!("{flag} in {help}"));
            let rest = &help[at..];
            let next = rest[2..].find("\n  -").map_or(rest.len(), |i| i + 2);
            assert!(
                rest[..next].contains(&format!("[default: {value}]")),
                "{flag}: {}",
                &rest[..next]
            );
        }
    }
}
