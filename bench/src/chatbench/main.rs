//! `chatbench`: logs in many simulated users (one UDP socket each) to a
//! chatserver, runs a named workload, and prints what the receivers saw:
//! deliveries per second, one-way latency, losses, the server's CPU time and
//! memory, and the machine's raw UDP ceiling measured with the same
//! receivers in the same run.

mod fleet;
mod histogram;
mod ircd;
mod raw;
mod sched;
mod server;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use udpchat_core::client::ClientConfig;

use fleet::{Endpoint, Fleet, MIN_MESSAGE, Report, SendPlan, Target};
use histogram::Histogram;
use raw::RawRun;
use server::{OwnServer, OwnServerOptions, ProcSample};

const AFTER_HELP: &str = "\
Workloads:
  fanout       one or several senders (--senders) broadcast public messages (PM) to
               everyone; closed loop (--window messages in flight) unless --rate is set
  room         every user joins the room #bench, and one or several senders (--senders)
               `say` to it, closed loop or --rate as fanout; the server stores each room
               message (history) before relaying it; deliveries are the live room
               messages at the other members
  offline      --users registered users stay offline while --messages DMs spread over
               them are stored (each confirmed `stored`; as many senders as the server's
               100 messages per sender and recipient need, or --senders); then they all
               log in at once: the time from the first login to the last waiting DM
               delivered, and deliveries/s while they drain
  dm           users in pairs exchange direct messages (DM), --rate messages/s in all
  login-storm  pairs exchange DMs (--rate); after a baseline of --seconds, --logins new
               users log in at once; compares the DM latency before and during the storm
  idle         --users users log in and send nothing for --seconds: server memory and CPU
  ircd-fanout  fanout through an IRC server over TCP (--server HOST:PORT, --server-pid):
               --users clients join #bench, one sends PRIVMSGs to it with --window
               messages in flight (or --rate msgs/s), the others count them; for
               comparison with fanout
               (bench/fanout-vs-ircd.sh runs the two in turn against ngircd)

Latency is one-way, from the sender's send call to the receiver's event, both in this
process (the send time travels in the message). Deliveries are counted at the receivers.
Without --server, chatbench starts the chatserver next to its own executable on a free
loopback port, with the rate and session limits raised for benchmarking, and with
accounts prepared in a temporary directory (--state-dir keeps them). The server's CPU
time and memory come from /proc (Linux, server on this machine). Passwords: the
CHATBENCH_PASSWORD variable (default: a fixed bench password).

Examples:
  chatbench fanout --users 1000 --seconds 5
  chatbench room --users 100 --seconds 5
  chatbench offline --users 100 --messages 1000
  chatbench dm --users 200 --rate 20000 --seconds 5 --json
  chatbench login-storm --users 100 --logins 200
  chatbench idle --users 10000 --seconds 10
  chatbench dm --users 20 --server 127.0.0.1:65015 --server-key <hex>
  chatbench fanout --users 300 --server 127.0.0.1:7000 --server 127.0.0.1:7001 --server 127.0.0.1:7002 \
      --server-key <hex>                # a cluster: users spread over three nodes
  chatbench ircd-fanout --users 100 --server 127.0.0.1:6667 --server-pid 1234";

/// Benchmark a udpchat server with many simulated users.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// The workload.
    workload: Workload,
    /// Users logged in for the workload [default: fanout 100, room 100,
    /// dm 200, login-storm 100, idle 1000; offline: the recipients, 100].
    #[arg(long)]
    users: Option<usize>,
    /// Seconds measured (login-storm: of the baseline; idle: of idling).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// A running chatserver (HOST:PORT); without it chatbench starts its own.
    /// Repeated (or comma-separated), the nodes of one cluster: the first
    /// is the server, the others are as --node.
    #[arg(
        long,
        env = "CHATBENCH_SERVER",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    server: Vec<String>,
    /// With --server: other nodes of the same cluster (HOST:PORT, repeat
    /// or separate with commas); users are spread over the server and
    /// these in turn, so that messages cross nodes. The CPU and memory
    /// figures are those of --server's process.
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_delimiter = ',',
        requires = "server"
    )]
    node: Vec<String>,
    /// With --server: the server's public key (64 hex digits) to pin;
    /// without it the key is trusted on first use.
    #[arg(long, env = "CHATBENCH_SERVER_KEY")]
    server_key: Option<String>,
    /// With --server: its process id, for CPU time and memory [default:
    /// the owner of the UDP port, when the server runs on this machine].
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// fanout, room: users sending [default: 1]; offline: extra users
    /// sending the stored DMs [default: as few as the server's limit of 100
    /// waiting messages per sender and recipient allows].
    #[arg(long)]
    senders: Option<usize>,
    /// offline: DMs stored for the offline users, spread evenly over them.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Messages per second in all [default: dm 20000, login-storm 1000;
    /// fanout, room and ircd-fanout: closed loop].
    #[arg(long)]
    rate: Option<f64>,
    /// fanout and room without --rate: messages in flight in all (sent but
    /// not yet received by every receiver). More in flight lets the server
    /// put more messages in each datagram, and makes each wait longer.
    /// offline: DMs each sender has sent and not yet seen confirmed.
    #[arg(long, default_value_t = 128)]
    window: u64,
    /// Message size in bytes (the text of each PM or DM).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// login-storm: how many users log in during the storm.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// login-storm: the storm registers new accounts instead of logging in
    /// to existing ones (own server; registrations also write the store).
    #[arg(long)]
    storm_register: bool,
    /// Threads driving the simulated users [default: two per core, at most
    /// 4: while one waits for its sockets another runs].
    #[arg(long)]
    threads: Option<usize>,
    /// Logins in progress at once while the users log in (not the storm).
    #[arg(long, default_value_t = 128)]
    login_concurrency: usize,
    /// Linux 6.12+: the time slice, in microseconds (100 to 100,000), the
    /// kernel gives each thread that drives the users; a shorter one lets a
    /// worker woken by a datagram take a core from a running thread sooner
    /// [default: the kernel's own].
    #[arg(long)]
    sched_slice_us: Option<u64>,
    /// Linux 6.12+: the same for every thread the server (own, or
    /// --server-pid on this machine) has when the run starts [default: the
    /// kernel's own].
    #[arg(long)]
    server_sched_slice_us: Option<u64>,
    /// Seconds of each raw UDP ceiling run (0: skip them).
    #[arg(long, default_value_t = 2.0)]
    raw_seconds: f64,
    /// Seconds allowed for all logins.
    #[arg(long, default_value_t = 900)]
    login_timeout: u64,
    /// Username prefix of the simulated users (storm users: PREFIX + "s").
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Own server: keep its users file, key and log in this directory
    /// (reused next time) instead of a temporary one.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Own server: password-hashing threads [default: the server's own, one
    /// per core].
    #[arg(long)]
    hash_workers: Option<usize>,
    /// Own server: the address it binds.
    #[arg(long, default_value = "127.0.0.1")]
    server_bind: String,
    /// Own server: run it in this network namespace (`ip netns exec`).
    #[arg(long)]
    server_netns: Option<String>,
    /// Own server: the largest datagram it sends (chatserver's
    /// --max-datagram) [default: the server's own].
    #[arg(long)]
    server_max_datagram: Option<u16>,
    /// Own server: its log level (RUST_LOG); the log goes to server.log in
    /// its directory.
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Exit 1 unless the run was clean: every user logged in, messages
    /// delivered (except idle), none lost, duplicated or refused, no session
    /// lost.
    #[arg(long)]
    check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Fanout,
    Room,
    Dm,
    LoginStorm,
    Offline,
    Idle,
    IrcdFanout,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Fanout => "fanout",
            Workload::Room => "room",
            Workload::Offline => "offline",
            Workload::Dm => "dm",
            Workload::LoginStorm => "login-storm",
            Workload::Idle => "idle",
            Workload::IrcdFanout => "ircd-fanout",
        }
    }
}

/// The p99 DM latency a login storm may raise messages among logged-in
/// users to, on loopback.
const STORM_P99_TARGET_US: u64 = 5_000;

/// The room of the room workload.
const ROOM: &str = "#bench";

/// Phases stamped in messages.
const WARMUP: u32 = 0;
const MEASURED: u32 = 1;
const STORM: u32 = 2;
const TAIL: u32 = 3;

/// Login groups: the users of the workload, and the storm's.
const BASE_GROUP: usize = 0;
const STORM_GROUP: usize = 1;

/// The workers that drive the workload's users. In a login storm the users
/// who exchange DMs get a worker of their own (the first) and the storm's
/// users the others, when there are two or more: a storm user's login
/// (key generation, the handshake, a first online list and the presence
/// notices that follow) then never holds up the reading of a DM in the
/// same worker, as it would not on a user's own machine. The two still
/// share the machine's cores with each other and with the server.
fn base_workers(workload: Workload, threads: usize) -> std::ops::Range<usize> {
    if workload == Workload::LoginStorm && threads >= 2 {
        0..1
    } else {
        0..threads
    }
}

/// The workers that drive a login storm's users: see [`base_workers`].
fn storm_workers(threads: usize) -> std::ops::Range<usize> {
    if threads >= 2 { 1..threads } else { 0..threads }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("chatbench: --check: the run was not clean (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chatbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the server is and what is known about it.
struct ServerInfo {
    addr: SocketAddr,
    own: Option<OwnServer>,
    pid: Option<u32>,
    key: Option<[u8; 32]>,
}

impl ServerInfo {
    fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(|p| server::sample(&p.to_string()))
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn run(args: &Args) -> Result<bool> {
    if args.workload == Workload::IrcdFanout {
        return run_ircd(args);
    }
    let users = args.users.unwrap_or(match args.workload {
        Workload::Fanout | Workload::Room | Workload::Offline | Workload::IrcdFanout => 100,
        Workload::Dm => 200,
        Workload::LoginStorm => 100,
        Workload::Idle => 1000,
    });
    let senders = match args.workload {
        Workload::Offline => {
            if !(1..=100_000_000).contains(&args.messages) {
                bail!("--messages must be 1 to 100000000");
            }
            // The server's limits on DMs waiting for an offline user
            // (PROTOCOL.md §5.11): per recipient, and per sender and
            // recipient; chatbench's own server runs with the defaults.
            let limits = udpchat_core::server::ServerConfig::default();
            let (max_per_user, max_per_sender) = (
                limits.max_offline_per_user as u64,
                limits.max_offline_per_sender as u64,
            );
            let per_user = args.messages.div_ceil(users as u64);
            if per_user > max_per_user {
                bail!(
                    "{per_user} DMs per recipient: the server keeps at most {max_per_user} waiting for one user (raise --users)"
                );
            }
            let needed = args.messages.div_ceil(max_per_sender * users as u64) as usize;
            let s = args.senders.unwrap_or(needed);
            if !(needed..=1000).contains(&s) {
                bail!(
                    "--senders must be {needed} to 1000: the server keeps at most {max_per_sender} DMs from one sender waiting for one user"
                );
            }
            s
        }
        _ => args.senders.unwrap_or(1),
    };
    if !(1..=10_000).contains(&users) {
        bail!("--users must be 1 to 10000");
    }
    if args.workload != Workload::Idle && users < 2 {
        bail!("{} needs at least 2 users", args.workload.name());
    }
    if matches!(args.workload, Workload::Dm | Workload::LoginStorm) && !users.is_multiple_of(2) {
        bail!(
            "{} pairs its users: --users must be even",
            args.workload.name()
        );
    }
    if matches!(args.workload, Workload::Fanout | Workload::Room) && !(1..=users).contains(&senders)
    {
        bail!("--senders must be 1 to --users");
    }
    if args.workload == Workload::LoginStorm && !(1..=10_000).contains(&args.logins) {
        bail!("--logins must be 1 to 10000");
    }
    if !(MIN_MESSAGE..=60_000).contains(&args.size) {
        bail!("--size must be {MIN_MESSAGE} to 60000 bytes");
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be above 0 and at most 3600");
    }
    if !(0.0..=60.0).contains(&args.raw_seconds) {
        bail!("--raw-seconds must be 0 to 60");
    }
    for (name, v) in [
        ("--sched-slice-us", args.sched_slice_us),
        ("--server-sched-slice-us", args.server_sched_slice_us),
    ] {
        if let Some(v) = v
            && !sched::RANGE_US.contains(&v)
        {
            bail!("{name} must be 100 to 100000 microseconds");
        }
    }
    if let Some(r) = args.rate
        && !(r > 0.0 && r <= 10_000_000.0)
    {
        bail!("--rate must be above 0");
    }
    if args.window == 0 {
        bail!("--window must be at least 1");
    }
    let threads = args.threads();
    let password =
        std::env::var("CHATBENCH_PASSWORD").unwrap_or_else(|_| "chatbench-password".into());
    let base = names(&args.prefix, users);
    let storm_prefix = format!("{}s", args.prefix);
    let (base, storm) = match args.workload {
        Workload::LoginStorm => (base, names(&storm_prefix, args.logins)),
        // The senders log in first; the recipients (the users) later.
        Workload::Offline => {
            if args.storm_register {
                bail!("--storm-register is for login-storm");
            }
            (names(&format!("{}tx", args.prefix), senders), base)
        }
        _ => (base, Vec::new()),
    };

    let mut info = match args.server.first() {
        Some(s) => {
            let addr = s
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve {s}"))?
                .next()
                .with_context(|| format!("{s} has no address"))?;
            let key = args
                .server_key
                .as_deref()
                .map(server::parse_key)
                .transpose()?;
            let pid = args.server_pid.or_else(|| {
                if addr.ip().is_loopback() {
                    server::find_udp_owner(addr.port())
                } else {
                    None
                }
            });
            ServerInfo {
                addr,
                own: None,
                pid,
                key,
            }
        }
        None => {
            let (dir, temporary) = match &args.state_dir {
                Some(d) => (d.clone(), false),
                None => (server::temp_dir(), true),
            };
            let mut accounts = base.clone();
            if !args.storm_register {
                accounts.extend(storm.iter().cloned());
            }
            let own = OwnServer::start(&OwnServerOptions {
                dir,
                temporary,
                accounts,
                password: password.clone(),
                hash_workers: args.hash_workers,
                log_level: args.server_log.clone(),
                bind: args.server_bind.clone(),
                netns: args.server_netns.clone(),
                max_datagram: args.server_max_datagram,
            })?;
            ServerInfo {
                addr: own.addr,
                pid: Some(own.pid),
                key: Some(own.key),
                own: Some(own),
            }
        }
    };
    if !args.json {
        eprintln!(
            "chatbench: {} with {users} users against {} ({}), {threads} threads",
            args.workload.name(),
            info.addr,
            match (&info.own, info.pid) {
                (Some(_), Some(pid)) => format!("own server, pid {pid}"),
                (None, Some(pid)) => format!("pid {pid}"),
                _ => "process unknown: no CPU or memory figures".into(),
            }
        );
    }

    let others = args
        .server
        .iter()
        .skip(1)
        .chain(&args.node)
        .map(|s| {
            s.to_socket_addrs()
                .with_context(|| format!("cannot resolve {s}"))?
                .next()
                .with_context(|| format!("{s} has no address"))
        })
        .collect::<Result<Vec<SocketAddr>>>()?;
    let mut fleet = Fleet::new(
        threads,
        Endpoint {
            addr: info.addr,
            others,
            config: ClientConfig {
                server_key: info.key,
                ..ClientConfig::default()
            },
            password,
        },
    )?;
    let result = slices(args, &fleet, &info)
        .and_then(|()| workload(args, senders, &mut fleet, &mut info, &base, &storm));
    // Leave cleanly, whatever happened: a shared server keeps no ghosts.
    let _ = fleet.exit_all(Duration::from_secs(3));
    fleet.shutdown();
    if let Some(own) = info.own.as_mut() {
        own.stop();
    }
    let mut outcome = result?;
    for (whose, v) in [
        ("the bench's workers", args.sched_slice_us),
        ("the server's threads", args.server_sched_slice_us),
    ] {
        if let Some(us) = v {
            outcome.mode = format!("{}; {whose} at a {us} us time slice", outcome.mode);
        }
    }
    if args.json {
        println!("{}", outcome.json());
    } else {
        print!("{}", outcome.table());
    }
    if args.check {
        return Ok(outcome.clean());
    }
    Ok(true)
}

/// Sets the time slices asked for (--sched-slice-us, --server-sched-slice-us).
fn slices(args: &Args, fleet: &Fleet, info: &ServerInfo) -> Result<()> {
    if let Some(us) = args.sched_slice_us {
        fleet
            .set_slice(Duration::from_micros(us))
            .context("--sched-slice-us: cannot set the slice of the bench's workers")?;
    }
    if let Some(us) = args.server_sched_slice_us {
        let Some(pid) = info.pid else {
            bail!("--server-sched-slice-us: the server's process is unknown (give --server-pid)");
        };
        sched::set_process_slice(pid, Duration::from_micros(us)).with_context(|| {
            format!(
                "--server-sched-slice-us: cannot set the slice of the server's threads (pid {pid})"
            )
        })?;
    }
    Ok(())
}

impl Args {
    /// The benchmark's threads: --threads, or twice the cores (at most 4);
    /// 1 to 64.
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| {
                thread::available_parallelism()
                    .map(|n| n.get() * 2)
                    .unwrap_or(2)
                    .min(4)
            })
            .clamp(1, 64)
    }
}

/// The fan-out through an IRC server: `--server` is required.
fn run_ircd(args: &Args) -> Result<bool> {
    let Some(s) = args.server.first() else {
        bail!("ircd-fanout needs --server HOST:PORT of a running IRC server");
    };
    let addr = s
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {s}"))?
        .next()
        .with_context(|| format!("{s} has no address"))?;
    let threads = args.threads();
    let users = args.users.unwrap_or(100);
    if !(2..=10_000).contains(&users) {
        bail!("--users must be 2 to 10000");
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be above 0 and at most 3600");
    }
    let outcome = ircd::run(&ircd::Options {
        addr,
        server_pid: args.server_pid,
        users,
        seconds: args.seconds,
        size: args.size,
        window: args.window.max(1),
        rate: args.rate,
        threads,
        prefix: args.prefix.clone(),
    })?;
    if args.json {
        println!("{}", outcome.json());
    } else {
        print!("{}", outcome.table());
    }
    Ok(true)
}

/// Logins of a group of users.
#[derive(Default)]
struct Logins {
    count: u64,
    failed: u64,
    seconds: f64,
    latency: Histogram,
    /// Kernel drops while they logged in (server's socket, users' sockets).
    drops: Option<(u64, u64)>,
}

impl Logins {
    fn per_sec(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }
}

/// Everything a run found.
#[derive(Default)]
struct Outcome {
    workload: &'static str,
    users: usize,
    seconds: f64,
    size: usize,
    mode: String,
    server: String,
    /// Deliveries counted at the receivers in the measured window.
    deliveries: u64,
    /// Datagrams from the server to all users in the measured window.
    datagrams: u64,
    /// Kernel drops for full UDP receive buffers in the measured window, at
    /// the server's socket and at the users' sockets.
    drops: Option<(u64, u64)>,
    /// CPU time of the whole machine in the measured window: busy and
    /// available, seconds.
    machine_cpu: Option<(f64, f64)>,
    /// Messages sent in all.
    sent: u64,
    expected_total: u64,
    delivered_total: u64,
    latency: Histogram,
    report: Report,
    raw: Option<RawRun>,
    raw_mmsg: Option<RawRun>,
    raw_size: usize,
    raw_receivers: usize,
    server_cpu_sec: Option<f64>,
    server_rss_kb: Option<u64>,
    server_hwm_kb: Option<u64>,
    bench_cpu_sec: Option<f64>,
    logins: Logins,
    lost_sessions: u64,
    storm: Option<Storm>,
    idle: Option<Idle>,
    offline: Option<Offline>,
}

/// What the offline workload found.
struct Offline {
    senders: usize,
    messages: u64,
    /// DMs confirmed `stored`.
    stored: u64,
    /// From the first DM sent to the last confirmed, seconds.
    store_seconds: f64,
    /// The recipients' logins, all started at once.
    logins: Logins,
    /// From the first login started to the last waiting DM delivered.
    drain_seconds: f64,
    /// From the last login to the last waiting DM delivered.
    after_last_login_seconds: f64,
    /// DMs that came as `direct` with `offline`.
    offline_deliveries: u64,
    /// Time the DMs waited, from their send to their delivery, µs.
    waited: Histogram,
    /// From each recipient's login to each of its DMs, µs.
    after_login: Histogram,
}

struct Storm {
    logins: Logins,
    baseline: Histogram,
    during: Histogram,
    baseline_deliveries_per_sec: f64,
    during_deliveries_per_sec: f64,
    server_cpu_sec: Option<f64>,
    /// Kernel drops during the storm (server's socket, users' sockets).
    drops: Option<(u64, u64)>,
    /// Machine CPU busy and available during the storm, seconds.
    machine_cpu: Option<(f64, f64)>,
}

struct Idle {
    /// Sessions open at the end (logged in, not lost).
    sessions: u64,
    /// Server RSS with the accounts loaded and no session.
    rss_before_kb: u64,
    /// Users logged in first, and the RSS then.
    warm_users: usize,
    rss_warm_kb: u64,
    /// RSS with every user logged in, after idling.
    rss_after_kb: u64,
}

impl Idle {
    /// RSS growth per session from the warm users to all sessions.
    fn bytes_per_session(&self) -> f64 {
        (self.rss_after_kb as f64 - self.rss_warm_kb as f64) * 1024.0
            / self.sessions.saturating_sub(self.warm_users as u64).max(1) as f64
    }
}

impl Outcome {
    fn deliveries_per_sec(&self) -> f64 {
        self.deliveries as f64 / self.seconds.max(1e-9)
    }

    fn lost(&self) -> u64 {
        self.expected_total.saturating_sub(self.delivered_total)
    }

    fn clean(&self) -> bool {
        let c = &self.report.counters;
        let mut ok = true;
        let mut fail = |what: String| {
            eprintln!("chatbench: --check: {what}");
            ok = false;
        };
        if self.logins.failed > 0 {
            fail(format!("{} logins failed", self.logins.failed));
        }
        if let Some(s) = &self.storm
            && s.logins.failed > 0
        {
            fail(format!("{} storm logins failed", s.logins.failed));
        }
        if let Some(o) = &self.offline {
            if o.logins.failed > 0 {
                fail(format!("{} recipient logins failed", o.logins.failed));
            }
            if o.stored != o.messages || o.offline_deliveries != o.messages {
                fail(format!(
                    "{} DMs, {} confirmed stored, {} delivered as offline DMs",
                    o.messages, o.stored, o.offline_deliveries
                ));
            }
        }
        if self.workload != "idle" && self.delivered_total == 0 {
            fail("no message was delivered".into());
        }
        if self.lost() > 0 {
            fail(format!("{} deliveries lost", self.lost()));
        }
        if c.duplicates > 0 || c.gaps > 0 {
            fail(format!(
                "{} duplicates, {} gaps in sequences",
                c.duplicates, c.gaps
            ));
        }
        if c.refused > 0 || c.send_refused_locally > 0 {
            fail(format!(
                "{} messages refused by the server, {} by the client",
                c.refused, c.send_refused_locally
            ));
        }
        if self.lost_sessions > 0 {
            fail(format!("{} sessions lost", self.lost_sessions));
        }
        if self.delivered_total > self.expected_total {
            fail(format!(
                "more deliveries ({}) than expected ({})",
                self.delivered_total, self.expected_total
            ));
        }
        ok
    }

    fn ratio(&self, raw: Option<&RawRun>) -> Option<f64> {
        let r = raw?.per_sec();
        (r > 0.0 && self.workload != "idle").then(|| self.deliveries_per_sec() / r)
    }

    fn json(&self) -> Value {
        let lat = |h: &Histogram| {
            json!({
                "p50": h.quantile(0.5),
                "p99": h.quantile(0.99),
                "p999": h.quantile(0.999),
                "max": (h.count() > 0).then(|| h.max()),
                "samples": h.count(),
            })
        };
        let rawj = |r: &Option<RawRun>| {
            r.map(|r| {
                json!({
                    "per_sec": r.per_sec().round(),
                    "sent": r.sent,
                    "received": r.received_total,
                    "unread": r.lost(),
                    "seconds": r.seconds,
                })
            })
        };
        let c = &self.report.counters;
        let mut v = json!({
            "workload": self.workload,
            "mode": self.mode,
            "server": self.server,
            "users": self.users,
            "seconds": self.seconds,
            "message_bytes": self.size,
            "sent": self.sent,
            "deliveries": self.deliveries,
            "deliveries_per_sec": self.deliveries_per_sec().round(),
            "server_datagrams_per_sec": (self.datagrams as f64 / self.seconds.max(1e-9)).round(),
            "latency_us": lat(&self.latency),
            "expected": self.expected_total,
            "delivered": self.delivered_total,
            "lost": self.lost(),
            "duplicates": c.duplicates,
            "gaps": c.gaps,
            "refused": c.refused,
            "refused_locally": c.send_refused_locally,
            "missed_sends": c.missed_sends,
            "lost_sessions": self.lost_sessions,
            "raw_ceiling_per_sec": self.raw.map(|r| r.per_sec().round()),
            "raw_sendmmsg_per_sec": self.raw_mmsg.map(|r| r.per_sec().round()),
            "raw_datagram_bytes": self.raw_size,
            "raw_receivers": self.raw_receivers,
            "raw": { "sendto": rawj(&self.raw), "sendmmsg": rawj(&self.raw_mmsg) },
            "ratio_to_raw": self.ratio(self.raw.as_ref()),
            "ratio_to_sendmmsg": self.ratio(self.raw_mmsg.as_ref()),
            "server_cpu_sec": self.server_cpu_sec,
            "server_rss_kb": self.server_hwm_kb,
            "server_rss_now_kb": self.server_rss_kb,
            "bench_cpu_sec": self.bench_cpu_sec,
            "logins": {
                "count": self.logins.count,
                "failed": self.logins.failed,
                "seconds": self.logins.seconds,
                "per_sec": self.logins.per_sec(),
                "latency_us": lat(&self.logins.latency),
                "busy_retries": c.busy_retries,
                "restarts": c.login_restarts,
                "kernel_drops_at_server": self.logins.drops.map(|d| d.0),
                "kernel_drops_at_users": self.logins.drops.map(|d| d.1),
            },
            "joined_notices": c.joined,
            "datagrams_in": c.datagrams_in,
            "datagrams_out": c.datagrams_out,
            "problems": self.report.problems,
        });
        v["kernel_drops_at_server"] = json!(self.drops.map(|d| d.0));
        v["kernel_drops_at_users"] = json!(self.drops.map(|d| d.1));
        v["machine_cpu_busy_sec"] = json!(self.machine_cpu.map(|m| m.0));
        v["machine_cpu_available_sec"] = json!(self.machine_cpu.map(|m| m.1));
        if let Some(s) = &self.storm {
            v["storm"] = json!({
                "logins": s.logins.count,
                "failed": s.logins.failed,
                "seconds": s.logins.seconds,
                "logins_per_sec": s.logins.per_sec(),
                "login_latency_us": lat(&s.logins.latency),
                "baseline_latency_us": lat(&s.baseline),
                "storm_latency_us": lat(&s.during),
                "baseline_deliveries_per_sec": s.baseline_deliveries_per_sec.round(),
                "storm_deliveries_per_sec": s.during_deliveries_per_sec.round(),
                "storm_server_cpu_sec": s.server_cpu_sec,
                "storm_kernel_drops_at_server": s.drops.map(|d| d.0),
                "storm_kernel_drops_at_users": s.drops.map(|d| d.1),
                "storm_machine_cpu_busy_sec": s.machine_cpu.map(|m| m.0),
                "p99_target_us": STORM_P99_TARGET_US,
                "p99_within_target": s.during.quantile(0.99).map(|p| p <= STORM_P99_TARGET_US),
            });
        }
        if let Some(o) = &self.offline {
            v["offline"] = json!({
                "recipients": self.users,
                "senders": o.senders,
                "messages": o.messages,
                "stored": o.stored,
                "store_seconds": o.store_seconds,
                "logins": o.logins.count,
                "logins_failed": o.logins.failed,
                "login_seconds": o.logins.seconds,
                "login_latency_us": lat(&o.logins.latency),
                "drain_seconds": o.drain_seconds,
                "after_last_login_seconds": o.after_last_login_seconds,
                "offline_deliveries": o.offline_deliveries,
                "deliveries_per_sec": (o.offline_deliveries as f64 / o.drain_seconds.max(1e-9)).round(),
                "waited_us": lat(&o.waited),
                "after_login_us": lat(&o.after_login),
            });
        }
        if let Some(i) = &self.idle {
            v["idle"] = json!({
                "server_rss_before_logins_kb": i.rss_before_kb,
                "warm_users": i.warm_users,
                "server_rss_warm_kb": i.rss_warm_kb,
                "server_rss_after_kb": i.rss_after_kb,
                "sessions": i.sessions,
                "bytes_per_session": i.bytes_per_session().round(),
            });
        }
        v
    }

    fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let lat = |h: &Histogram| match h.quantile(0.5) {
            None => "no samples".to_string(),
            Some(p50) => format!(
                "p50 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                us(p50),
                us(h.quantile(0.99).unwrap_or(0)),
                us(h.quantile(0.999).unwrap_or(0)),
                us(h.max()),
                h.count()
            ),
        };
        let c = &self.report.counters;
        let _ = writeln!(
            t,
            "chatbench {}: {} users, {}-byte messages, {} s measured, {}",
            self.workload,
            self.users,
            self.size,
            fmt_f(self.seconds, 1),
            self.mode
        );
        let _ = writeln!(t, "  server                {}", self.server);
        let _ = writeln!(
            t,
            "  logins                {} in {} s ({}/s), {} failed; login time (us) {}",
            self.logins.count,
            fmt_f(self.logins.seconds, 1),
            fmt_f(self.logins.per_sec(), 1),
            self.logins.failed,
            lat(&self.logins.latency)
        );
        let _ = writeln!(
            t,
            "  login retries         {} refused as busy and sent again, {} started again after a timeout{}; kernel drops while logging in: {}",
            c.busy_retries,
            c.login_restarts,
            if self.storm.is_some() {
                " (all logins, the storm's included)"
            } else {
                ""
            },
            self.logins.drops.map_or("-".into(), |(s, u)| format!(
                "{} at the server's socket, {} at the users'",
                group(s),
                group(u)
            ))
        );
        if self.lost_sessions > 0 {
            let _ = writeln!(
                t,
                "  sessions lost         {} logged-in sessions ended without being asked to (see the notes)",
                self.lost_sessions
            );
        }
        if self.workload != "idle" {
            let _ = writeln!(
                t,
                "  deliveries            {} ({}/s at the receivers; server sent {} datagrams/s to the users)",
                group(self.deliveries),
                group(self.deliveries_per_sec().round() as u64),
                group((self.datagrams as f64 / self.seconds.max(1e-9)).round() as u64)
            );
            if let Some(o) = &self.offline {
                let _ = writeln!(
                    t,
                    "  stored                {} DMs from {} sender(s) to {} offline users, {} confirmed stored, in {} s",
                    group(o.messages),
                    o.senders,
                    self.users,
                    group(o.stored),
                    fmt_f(o.store_seconds, 2)
                );
                let _ = writeln!(
                    t,
                    "  logins at once        {} in {} s, {} failed; login time (us) {}",
                    o.logins.count,
                    fmt_f(o.logins.seconds, 2),
                    o.logins.failed,
                    lat(&o.logins.latency)
                );
                let _ = writeln!(
                    t,
                    "  waiting DMs delivered {} in {} s from the first login to the last DM ({} s after the last login), {}/s; {} of them as offline DMs",
                    group(self.delivered_total),
                    fmt_f(o.drain_seconds, 3),
                    fmt_f(o.after_last_login_seconds, 3),
                    group((o.offline_deliveries as f64 / o.drain_seconds.max(1e-9)).round() as u64),
                    group(o.offline_deliveries)
                );
                let _ = writeln!(t, "  login_ok to DM (us)   {}", lat(&o.after_login));
                let _ = writeln!(t, "  time stored (us)      {}", lat(&o.waited));
            } else {
                let _ = writeln!(t, "  latency (one-way, us) {}", lat(&self.latency));
            }
            let _ = writeln!(
                t,
                "  sent / expected       {} messages, {} deliveries expected, {} delivered",
                group(self.sent),
                group(self.expected_total),
                group(self.delivered_total)
            );
            if let Some((server, users)) = self.drops {
                let _ = writeln!(
                    t,
                    "  kernel UDP drops      {} at the server's socket, {} at the users' sockets (full receive buffers, in the measured window; each costs a retransmission)",
                    group(server),
                    group(users)
                );
            }
            let _ = writeln!(
                t,
                "  lost                  {}  (duplicates {}, gaps {}, refused {}, refused locally {}, missed sends {}, sessions lost {})",
                self.lost(),
                c.duplicates,
                c.gaps,
                c.refused,
                c.send_refused_locally,
                c.missed_sends,
                self.lost_sessions
            );
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
                t,
                "  storm logins          {} in {} s ({}/s), {} failed; login time (us) {}",
                s.logins.count,
                fmt_f(s.logins.seconds, 2),
                fmt_f(s.logins.per_sec(), 1),
                s.logins.failed,
                lat(&s.logins.latency)
            );
            let _ = writeln!(
                t,
                "  DM latency before     {}  ({}/s)",
                lat(&s.baseline),
                group(s.baseline_deliveries_per_sec.round() as u64)
            );
            let _ = writeln!(
                t,
                "  DM latency in storm   {}  ({}/s)",
                lat(&s.during),
                group(s.during_deliveries_per_sec.round() as u64)
            );
            let verdict = match s.during.quantile(0.99) {
                Some(p) if p <= STORM_P99_TARGET_US => "MET",
                Some(_) => "NOT MET",
                None => "no samples",
            };
            let _ = writeln!(
                t,
                "  storm p99 <= {} ms     {verdict}{}",
                STORM_P99_TARGET_US / 1000,
                s.server_cpu_sec
                    .map(|c| format!(
                        "  (server CPU in the storm {} s in {} s)",
                        fmt_f(c, 2),
                        fmt_f(s.logins.seconds, 2)
                    ))
                    .unwrap_or_default()
            );
            if let Some((server, users)) = s.drops {
                let _ = writeln!(
                    t,
                    "  kernel drops in storm {} at the server's socket, {} at the users' sockets",
                    group(server),
                    group(users)
                );
            }
            if let Some((busy, total)) = s.machine_cpu {
                let _ = writeln!(
                    t,
                    "  machine in storm      CPU busy {} of {} core-seconds",
                    fmt_f(busy, 2),
                    fmt_f(total, 2)
                );
            }
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                t,
                "  server memory (RSS)   {} kB before logins, {} kB with {} sessions, {} kB with {}: {} bytes/session (growth from {} to {} sessions)",
                group(i.rss_before_kb),
                group(i.rss_warm_kb),
                i.warm_users,
                group(i.rss_after_kb),
                i.sessions,
                group(i.bytes_per_session().round().max(0.0) as u64),
                i.warm_users,
                i.sessions
            );
        }
        let raw = |r: &Option<RawRun>| match r {
            Some(r) => format!(
                "{}/s ({} sent, {} lost)",
                group(r.per_sec().round() as u64),
                group(r.sent),
                group(r.lost())
            ),
            None => "not measured".into(),
        };
        if self.raw.is_some() || self.raw_mmsg.is_some() {
            let _ = writeln!(
                t,
                "  raw UDP ceiling       sendto {}; sendmmsg {}  [{} receivers, {}-byte datagrams]",
                raw(&self.raw),
                raw(&self.raw_mmsg),
                self.raw_receivers,
                self.raw_size
            );
            if self.workload != "idle" {
                let pct =
                    |r: Option<f64>| r.map_or("-".into(), |r| format!("{}%", fmt_f(r * 100.0, 1)));
                let _ = writeln!(
                    t,
                    "  chat / raw            {} of sendto, {} of sendmmsg (chat messages/s over one-message datagrams/s)",
                    pct(self.ratio(self.raw.as_ref())),
                    pct(self.ratio(self.raw_mmsg.as_ref()))
                );
                if self.datagrams > 0 && self.deliveries > 0 {
                    let dps = self.datagrams as f64 / self.seconds.max(1e-9);
                    let _ = writeln!(
                        t,
                        "                        the server's datagrams/s are {} of sendto (it packs {} messages per datagram on average, acks and confirmations included)",
                        pct(self.raw.map(|r| dps / r.per_sec().max(1e-9))),
                        fmt_f(self.deliveries as f64 / self.datagrams as f64, 1)
                    );
                }
            }
        }
        let _ = writeln!(
            t,
            "  server process        CPU {} in the measured {} s ({}); RSS now {} kB, peak {} kB",
            self.server_cpu_sec
                .map_or("-".into(), |c| format!("{} s", fmt_f(c, 2))),
            fmt_f(self.seconds, 1),
            self.server_cpu_sec.map_or("-".into(), |c| format!(
                "{}% of a core",
                fmt_f(100.0 * c / self.seconds, 0)
            )),
            self.server_rss_kb.map_or("-".into(), group),
            self.server_hwm_kb.map_or("-".into(), group),
        );
        let _ = writeln!(
            t,
            "  bench process         CPU {} in the measured {} s; {} datagrams in, {} out in all",
            self.bench_cpu_sec
                .map_or("-".into(), |c| format!("{} s", fmt_f(c, 2))),
            fmt_f(self.seconds, 1),
            group(c.datagrams_in),
            group(c.datagrams_out)
        );
        if let Some((busy, total)) = self.machine_cpu {
            let others =
                busy - self.server_cpu_sec.unwrap_or(0.0) - self.bench_cpu_sec.unwrap_or(0.0);
            let _ = writeln!(
                t,
                "  machine               CPU busy {} of {} core-seconds in the measured window; other processes {} (figures are only as good as the machine is quiet)",
                fmt_f(busy, 2),
                fmt_f(total, 2),
                fmt_f(others.max(0.0), 2)
            );
        }
        for p in &self.report.problems {
            let _ = writeln!(t, "  note: {p}");
        }
        t
    }
}

fn fmt_f(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// Microseconds, with thousands separated.
fn us(v: u64) -> String {
    group(v)
}

fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Logs in `names` and waits for them all.
fn login(
    fleet: &mut Fleet,
    names: &[String],
    concurrency: usize,
    group: usize,
    timeout: Duration,
    progress: bool,
    workers: std::ops::Range<usize>,
) -> Result<(Vec<usize>, f64)> {
    let before = fleet.shared.logged_in.load(Relaxed) + fleet.shared.login_failed.load(Relaxed);
    let start = Instant::now();
    let ids = fleet.login(names, concurrency, group, workers)?;
    fleet.wait_logins(before + names.len() as u64, timeout, progress)?;
    Ok((ids, start.elapsed().as_secs_f64()))
}

/// CPU and deliveries at the start of a measured window.
struct Mark {
    at: Instant,
    delivered: u64,
    datagrams: u64,
    drops: Option<(u64, u64)>,
    machine: Option<(f64, f64)>,
    server: Option<ProcSample>,
    bench: Option<ProcSample>,
}

/// Kernel drops at the server's and the users' sockets (on this machine).
fn udp_drops(fleet: &Fleet, info: &ServerInfo) -> Option<(u64, u64)> {
    if !info.addr.ip().is_loopback() && info.pid.is_none() {
        return None;
    }
    server::udp_drops(info.addr.port(), &fleet.ports)
}

fn mark(fleet: &Fleet, info: &ServerInfo) -> Mark {
    Mark {
        at: Instant::now(),
        delivered: fleet.shared.delivered.load(Relaxed),
        datagrams: fleet.shared.datagrams_in.load(Relaxed),
        drops: udp_drops(fleet, info),
        machine: server::machine_cpu(),
        server: info.sample(),
        bench: server::sample("self"),
    }
}

/// What happened in a measured window.
struct Window {
    seconds: f64,
    deliveries: u64,
    datagrams: u64,
    /// Datagrams dropped by the kernel for full receive buffers: at the
    /// server's socket, at the users' sockets.
    drops: Option<(u64, u64)>,
    /// CPU time of the whole machine: busy and available, seconds.
    machine_cpu: Option<(f64, f64)>,
    server_cpu: Option<f64>,
    bench_cpu: Option<f64>,
}

/// The window since `m`.
fn since(m: &Mark, fleet: &Fleet, info: &ServerInfo) -> Window {
    let s = info.sample();
    let b = server::sample("self");
    Window {
        seconds: m.at.elapsed().as_secs_f64(),
        deliveries: fleet.shared.delivered.load(Relaxed) - m.delivered,
        datagrams: fleet.shared.datagrams_in.load(Relaxed) - m.datagrams,
        drops: m
            .drops
            .zip(udp_drops(fleet, info))
            .map(|(a, b)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
        machine_cpu: m
            .machine
            .zip(server::machine_cpu())
            .map(|(a, b)| (b.0 - a.0, b.1 - a.1)),
        server_cpu: m.server.zip(s).map(|(a, b)| b.cpu_sec - a.cpu_sec),
        bench_cpu: m.bench.zip(b).map(|(a, b)| b.cpu_sec - a.cpu_sec),
    }
}

impl Outcome {
    fn set_window(&mut self, w: &Window) {
        self.seconds = w.seconds;
        self.deliveries = w.deliveries;
        self.datagrams = w.datagrams;
        self.drops = w.drops;
        self.machine_cpu = w.machine_cpu;
        self.server_cpu_sec = w.server_cpu;
        self.bench_cpu_sec = w.bench_cpu;
    }
}

fn workload(
    args: &Args,
    senders: usize,
    fleet: &mut Fleet,
    info: &mut ServerInfo,
    base: &[String],
    storm: &[String],
) -> Result<Outcome> {
    let users = base.len();
    let progress = !args.json || users > 500;
    let login_timeout = Duration::from_secs(args.login_timeout);
    let mut out = Outcome {
        workload: args.workload.name(),
        users,
        seconds: args.seconds,
        size: args.size,
        server: match (&info.own, info.pid) {
            (Some(_), Some(pid)) => format!("{} (own chatserver, pid {pid})", info.addr),
            (None, Some(pid)) => format!("{} (pid {pid})", info.addr),
            _ => format!("{} (process not on this machine)", info.addr),
        },
        ..Outcome::default()
    };
    // Memory with the accounts loaded and no session.
    thread::sleep(Duration::from_millis(300));
    let rss_before = info.sample().map(|s| s.rss_kb);

    // Idle measures memory per session as the growth from a first part of
    // the users to all of them: the first logins also grow the server by
    // what does not depend on the number of sessions (argon2's 19 MiB
    // blocks, kept by the allocator's per-thread arenas: about 230 MB after
    // a few dozen logins on a 2-core machine).
    let warm = if args.workload == Workload::Idle && users >= 20 {
        (users / 10).max((users / 2).min(200))
    } else {
        0
    };
    let failed_before = fleet.shared.login_failed.load(Relaxed);
    let login_mark = mark(fleet, info);
    let mut ids = Vec::new();
    let mut login_secs = 0.0;
    let mut rss_warm = None;
    for part in [&base[..warm], &base[warm..]] {
        if part.is_empty() {
            continue;
        }
        let (i, t) = login(
            fleet,
            part,
            args.login_concurrency,
            BASE_GROUP,
            login_timeout,
            progress,
            base_workers(args.workload, fleet.threads()),
        )?;
        ids.extend(i);
        login_secs += t;
        if ids.len() == warm {
            settle(fleet, Duration::from_secs(30));
            thread::sleep(Duration::from_millis(300));
            rss_warm = info.sample().map(|s| s.rss_kb);
        }
    }
    out.logins.count = fleet.shared.logged_in.load(Relaxed);
    out.logins.failed = fleet.shared.login_failed.load(Relaxed) - failed_before;
    out.logins.seconds = login_secs;
    out.logins.drops = since(&login_mark, fleet, info).drops;
    out.logins.latency = fleet.report()?.login[BASE_GROUP].clone();
    // Traffic workloads need every user (the expected deliveries count
    // them); idle reports the sessions it got.
    if out.logins.failed > 0 && args.workload != Workload::Idle {
        bail!(
            "{} of {users} logins failed: {}",
            out.logins.failed,
            fleet.report()?.problems.join("; ")
        );
    }
    // Let the Joined notices of the logins settle before measuring.
    settle(fleet, Duration::from_secs(30));

    let warmup = (args.seconds / 5.0).min(1.0);
    let raw_receivers: Vec<usize>;
    match args.workload {
        Workload::Fanout | Workload::Room => {
            let receivers = (users - 1) as u64;
            let k = senders;
            let target = if args.workload == Workload::Room {
                join_room(fleet, users, login_timeout)?;
                Target::Room(ROOM.into())
            } else {
                Target::Public
            };
            let interval = args.rate.map(|r| (k as f64 / r * 1e6).max(1.0) as u64);
            out.mode = match interval {
                Some(_) => format!(
                    "{k} sender(s), open loop at {} msgs/s",
                    fmt_f(args.rate.unwrap_or(0.0), 0)
                ),
                None => format!(
                    "{k} sender(s), closed loop with {} messages in flight",
                    args.window
                ),
            };
            if args.workload == Workload::Room {
                out.mode = format!("{}; say in {ROOM}, history on", out.mode);
            }
            fleet.shared.window.store(args.window, Relaxed);
            if interval.is_none() {
                let senders = ids[..k].iter().map(|&i| i as u32).collect();
                let _ = fleet.shared.completion.set(fleet::Completion::new(
                    senders,
                    receivers,
                    args.window,
                ));
            }
            let now = fleet.shared.now_us();
            let plans = (0..k)
                .map(|s| SendPlan {
                    user: ids[s],
                    target: target.clone(),
                    receivers,
                    interval_us: interval.unwrap_or(0),
                    start_us: now + interval.map_or(0, |i| i * s as u64 / k as u64),
                    size: args.size,
                    count: None,
                    confirm_window: None,
                })
                .collect();
            measure_traffic(args, fleet, info, plans, warmup, &mut out)?;
            raw_receivers = if k == 1 {
                ids[1..].to_vec()
            } else {
                ids.clone()
            };
        }
        Workload::Dm | Workload::LoginStorm => {
            let rate = args.rate.unwrap_or(match args.workload {
                Workload::Dm => 20_000.0,
                _ => 1_000.0,
            });
            let interval = (users as f64 / rate * 1e6).max(1.0) as u64;
            out.mode = format!(
                "{} pairs, open loop at {} DMs/s in all ({} per user)",
                users / 2,
                fmt_f(rate, 0),
                fmt_f(rate / users as f64, 1)
            );
            let now = fleet.shared.now_us();
            let plans = (0..users)
                .map(|i| SendPlan {
                    user: ids[i],
                    target: Target::Direct(base[i ^ 1].clone()),
                    receivers: 1,
                    interval_us: interval,
                    start_us: now + rand::random::<u64>() % interval,
                    size: args.size,
                    count: None,
                    confirm_window: None,
                })
                .collect();
            if args.workload == Workload::Dm {
                measure_traffic(args, fleet, info, plans, warmup, &mut out)?;
            } else {
                out.mode = format!(
                    "{}; then {} logins at once{}",
                    out.mode,
                    storm.len(),
                    if args.storm_register {
                        " (new accounts)"
                    } else {
                        ""
                    }
                );
                measure_storm(args, fleet, info, plans, warmup, storm, &mut out)?;
            }
            raw_receivers = ids.clone();
        }
        Workload::Offline => {
            out.mode = format!(
                "{} DMs from {senders} sender(s) stored for {} offline users, then they log in at once",
                args.messages,
                storm.len()
            );
            raw_receivers = measure_offline(args, fleet, info, &ids, storm, &mut out)?;
        }
        Workload::IrcdFanout => unreachable!("ircd-fanout runs without a fleet"),
        Workload::Idle => {
            out.mode = "nothing sent".into();
            let m = mark(fleet, info);
            thread::sleep(secs(args.seconds));
            out.set_window(&since(&m, fleet, info));
            if let (Some(before), Some(after)) = (rss_before, info.sample().map(|s| s.rss_kb)) {
                let shared = &fleet.shared;
                out.idle = Some(Idle {
                    sessions: shared.logged_in.load(Relaxed) - shared.lost_sessions.load(Relaxed),
                    rss_before_kb: before,
                    warm_users: warm,
                    rss_warm_kb: rss_warm.unwrap_or(before),
                    rss_after_kb: after,
                });
            }
            raw_receivers = ids.clone();
        }
    }
    if let Some(s) = info.sample() {
        out.server_rss_kb = Some(s.rss_kb);
        out.server_hwm_kb = Some(s.hwm_kb);
    }
    out.lost_sessions = fleet.shared.lost_sessions.load(Relaxed);

    // The raw ceiling, with the same receivers.
    out.report = fleet.report()?;
    out.raw_receivers = raw_receivers.len();
    out.raw_size = out
        .report
        .sizes
        .quantile(0.5)
        .map_or(args.size + CHAT_OVERHEAD, |s| s as usize)
        .max(args.size);
    if args.raw_seconds > 0.0 {
        let targets = fleet.addrs(&raw_receivers)?;
        out.raw = Some(raw::send_to_loop(
            &fleet.shared,
            &targets,
            out.raw_size,
            secs(args.raw_seconds),
        )?);
        out.raw_mmsg = raw::sendmmsg_loop(
            &fleet.shared,
            &targets,
            out.raw_size,
            secs(args.raw_seconds),
        )?;
    }
    out.lost_sessions = fleet.shared.lost_sessions.load(Relaxed);
    if let Some(own) = info.own.as_mut()
        && !own.is_running()
    {
        bail!(
            "the server exited during the run; its log: {}",
            own.log.display()
        );
    }
    Ok(out)
}

/// Bytes a datagram carrying one chat message adds to its text (header,
/// frame, JSON, AEAD tag), used for the raw datagram size when no chat
/// datagram was received (idle). Measured on fanout runs.
const CHAT_OVERHEAD: usize = 90;

/// Waits until the users receive no more than their keep-alive traffic
/// (each client pings every second and the server acknowledges), for
/// `limit` at most: the notices of the logins have then arrived.
fn settle(fleet: &Fleet, limit: Duration) {
    const STEP: Duration = Duration::from_millis(200);
    let quiet = fleet.user_count() as u64 * 2 / 5 + 50; // 2 per user per second
    let start = Instant::now();
    let mut last = fleet.shared.datagrams_in.load(Relaxed);
    while start.elapsed() < limit {
        thread::sleep(STEP);
        let now = fleet.shared.datagrams_in.load(Relaxed);
        if now - last <= quiet {
            return;
        }
        last = now;
    }
}

/// Warm-up, then `args.seconds` measured, then a drain to count losses.
fn measure_traffic(
    args: &Args,
    fleet: &Fleet,
    info: &ServerInfo,
    plans: Vec<SendPlan>,
    warmup: f64,
    out: &mut Outcome,
) -> Result<()> {
    fleet.shared.phase.store(WARMUP, Relaxed);
    fleet.start_sending(plans)?;
    thread::sleep(secs(warmup));
    fleet.reset_sizes()?;
    fleet.shared.phase.store(MEASURED, Relaxed);
    let m = mark(fleet, info);
    thread::sleep(secs(args.seconds));
    let w = since(&m, fleet, info);
    fleet.shared.phase.store(TAIL, Relaxed);
    fleet.stop_sending()?;
    fleet.drain(Duration::from_secs(3), Duration::from_secs(20));
    out.set_window(&w);
    let r = fleet.report()?;
    out.latency = r.latency[MEASURED as usize].clone();
    out.sent = r.counters.sent;
    out.expected_total = fleet.shared.expected.load(Relaxed);
    out.delivered_total = fleet.shared.delivered.load(Relaxed);
    Ok(())
}

/// DMs flow; a baseline of `args.seconds`; then the storm users log in all
/// at once while the DMs go on; the storm ends when the last one is in.
fn measure_storm(
    args: &Args,
    fleet: &mut Fleet,
    info: &ServerInfo,
    plans: Vec<SendPlan>,
    warmup: f64,
    storm: &[String],
    out: &mut Outcome,
) -> Result<()> {
    fleet.shared.phase.store(WARMUP, Relaxed);
    fleet.start_sending(plans)?;
    thread::sleep(secs(warmup));
    fleet.shared.phase.store(MEASURED, Relaxed);
    let m = mark(fleet, info);
    thread::sleep(secs(args.seconds));
    let w = since(&m, fleet, info);

    fleet.shared.phase.store(STORM, Relaxed);
    let m2 = mark(fleet, info);
    let failed_before = fleet.shared.login_failed.load(Relaxed);
    let (_, storm_secs) = login(
        fleet,
        storm,
        storm.len(),
        STORM_GROUP,
        Duration::from_secs(args.login_timeout),
        false,
        storm_workers(fleet.threads()),
    )?;
    let w2 = since(&m2, fleet, info);
    fleet.shared.phase.store(TAIL, Relaxed);
    let storm_failed = fleet.shared.login_failed.load(Relaxed) - failed_before;
    fleet.stop_sending()?;
    fleet.drain(Duration::from_secs(3), Duration::from_secs(20));

    let r = fleet.report()?;
    out.set_window(&w);
    out.latency = r.latency[MEASURED as usize].clone();
    out.sent = r.counters.sent;
    out.expected_total = fleet.shared.expected.load(Relaxed);
    out.delivered_total = fleet.shared.delivered.load(Relaxed);
    out.storm = Some(Storm {
        logins: Logins {
            count: storm.len() as u64 - storm_failed,
            failed: storm_failed,
            seconds: storm_secs,
            latency: r.login[STORM_GROUP].clone(),
            drops: w2.drops,
        },
        baseline: r.latency[MEASURED as usize].clone(),
        during: r.latency[STORM as usize].clone(),
        baseline_deliveries_per_sec: w.deliveries as f64 / w.seconds,
        during_deliveries_per_sec: w2.deliveries as f64 / w2.seconds,
        server_cpu_sec: w2.server_cpu,
        drops: w2.drops,
        machine_cpu: w2.machine_cpu,
    });
    Ok(())
}

/// Every user joins [`ROOM`]; waits for their `room` answers and the
/// members' notices.
fn join_room(fleet: &Fleet, users: usize, timeout: Duration) -> Result<()> {
    let before = fleet.shared.rooms_joined.load(Relaxed);
    fleet.join(ROOM)?;
    let start = Instant::now();
    while fleet.shared.rooms_joined.load(Relaxed) - before < users as u64 {
        if start.elapsed() > timeout {
            bail!(
                "only {} of {users} users joined {ROOM} after {} s",
                fleet.shared.rooms_joined.load(Relaxed) - before,
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
    settle(fleet, Duration::from_secs(30));
    Ok(())
}

/// The senders (`ids`, logged in) store `args.messages` DMs for the
/// `recipients`, who are offline; then the recipients log in all at once
/// and receive them. Returns the recipients' ids.
fn measure_offline(
    args: &Args,
    fleet: &mut Fleet,
    info: &ServerInfo,
    ids: &[usize],
    recipients: &[String],
    out: &mut Outcome,
) -> Result<Vec<usize>> {
    let to = std::sync::Arc::new(recipients.to_vec());
    let k = ids.len() as u64;
    let now = fleet.shared.now_us();
    let plans = ids
        .iter()
        .enumerate()
        .map(|(i, &user)| SendPlan {
            user,
            target: Target::Spread(to.clone()),
            receivers: 1,
            interval_us: 0,
            start_us: now,
            size: args.size,
            count: Some(args.messages / k + u64::from((i as u64) < args.messages % k)),
            confirm_window: Some(args.window),
        })
        .collect();
    fleet.shared.phase.store(MEASURED, Relaxed);
    let start = Instant::now();
    fleet.start_sending(plans)?;
    let answered = |f: &Fleet| f.shared.confirmed.load(Relaxed) + f.shared.refused.load(Relaxed);
    while answered(fleet) < args.messages {
        if start.elapsed() > Duration::from_secs(args.login_timeout) {
            bail!(
                "only {} of {} DMs were answered after {} s",
                answered(fleet),
                args.messages,
                args.login_timeout
            );
        }
        thread::sleep(Duration::from_millis(2));
    }
    let store_seconds = start.elapsed().as_secs_f64();
    fleet.stop_sending()?;
    fleet.shared.phase.store(TAIL, Relaxed);

    // The recipients log in all at once; the waiting DMs follow login_ok.
    let m = mark(fleet, info);
    let first_login_us = fleet.shared.now_us();
    let failed_before = fleet.shared.login_failed.load(Relaxed);
    let (rids, login_seconds) = login(
        fleet,
        recipients,
        recipients.len(),
        STORM_GROUP,
        Duration::from_secs(args.login_timeout),
        false,
        0..fleet.threads(),
    )?;
    fleet.drain(Duration::from_secs(3), Duration::from_secs(120));
    let w = since(&m, fleet, info);
    let last = fleet.shared.last_delivery_us.load(Relaxed);
    let last_login_us = fleet.shared.last_login_us.load(Relaxed);
    let drain_seconds = last.saturating_sub(first_login_us) as f64 / 1e6;
    let failed = fleet.shared.login_failed.load(Relaxed) - failed_before;

    let r = fleet.report()?;
    out.set_window(&w);
    out.users = recipients.len();
    out.seconds = drain_seconds;
    out.latency = Histogram::default();
    out.sent = r.counters.sent;
    out.expected_total = fleet.shared.expected.load(Relaxed);
    out.delivered_total = fleet.shared.delivered.load(Relaxed);
    out.offline = Some(Offline {
        senders: ids.len(),
        messages: args.messages,
        stored: r.counters.stored,
        store_seconds,
        logins: Logins {
            count: recipients.len() as u64 - failed,
            failed,
            seconds: login_seconds,
            latency: r.login[STORM_GROUP].clone(),
            drops: w.drops,
        },
        drain_seconds,
        after_last_login_seconds: last.saturating_sub(last_login_us) as f64 / 1e6,
        offline_deliveries: r.counters.offline_deliveries,
        waited: r.latency[MEASURED as usize].clone(),
        after_login: r.after_login.clone(),
    });
    Ok(rids)
}
