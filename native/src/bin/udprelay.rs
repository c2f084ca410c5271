//! `udprelay`: a lossy UDP relay for end-to-end tests on loopback.
//!
//! Clients send to the relay's listening address; the relay forwards each
//! datagram to the upstream (the chatserver) from a socket of its own per
//! client address, so the server sees as many distinct peers as there are
//! clients, and forwards the answers back. In both directions every datagram
//! may be lost, duplicated, delayed and reordered, with the same model as the
//! simulation emulator (`udpchat-netem`): loss first; a datagram not lost is
//! sent twice with probability `--duplicate`; each copy is delayed by
//! `--delay-ms` plus a uniform `0..=--jitter-ms`, plus, with probability
//! `--reorder`, a uniform `0..=--reorder-extra-ms`. Copies with different
//! delays overtake each other.
//!
//! Safety rails, so a test harness can never turn it into a nuisance: it
//! only binds and sends to loopback addresses, keeps at most
//! `--max-clients` upstream sockets and `--max-queue` delayed datagrams, and
//! stops at end of standard input or after `--max-seconds`.
//!
//! Its first line on stdout is `relaying on ADDR`; a summary goes to stderr
//! when it stops.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info, warn};

const AFTER_HELP: &str = "\
Example (20% loss, 5% duplicates, 25% reordered, 20 ms one-way delay):
  udprelay --upstream 127.0.0.1:65015 --loss 0.2 --duplicate 0.05 --reorder 0.25 --delay-ms 20
  chatclient 127.0.0.1 RELAY_PORT alice     # RELAY_PORT from the `relaying on` line

It stops at end of standard input or after --max-seconds.";

/// A lossy UDP relay on loopback for end-to-end tests: forwards datagrams
/// between clients and one upstream server, losing, duplicating, delaying
/// and reordering them in both directions.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// Address to receive clients' datagrams on (loopback only; port 0
    /// picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The server to relay to (loopback only).
    #[arg(long)]
    upstream: SocketAddr,
    /// Probability that a datagram is lost.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    loss: f64,
    /// Probability that a datagram that is not lost is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    duplicate: f64,
    /// Probability that a copy is held back by up to --reorder-extra-ms.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    reorder: f64,
    /// One-way delay added to every datagram, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Extra delay drawn uniformly from 0..=JITTER for each copy, in ms.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Largest hold-back of a reordered copy, in milliseconds.
    #[arg(long, default_value_t = 40)]
    reorder_extra_ms: u64,
    /// Seed of the impairment generator (default: random, printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many seconds even if standard input stays open.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
    /// Most client addresses relayed at once; datagrams from more are dropped.
    #[arg(long, default_value_t = 64)]
    max_clients: usize,
    /// Most datagrams waiting for their delay; more are dropped.
    #[arg(long, default_value_t = 4096)]
    max_queue: usize,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

/// Where a delayed datagram goes.
enum Dest {
    /// Back to a client, from the listening socket.
    Client(SocketAddr),
    /// To the upstream, from the client's own upstream socket.
    Upstream(Arc<UdpSocket>),
}

struct Datagram {
    dest: Dest,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Stats {
    received: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    overflowed: AtomicU64,
    sent: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The impairments applied to each direction.
#[derive(Clone, Copy, Debug)]
struct Impairment {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    delay: Duration,
    jitter: Duration,
    reorder_extra: Duration,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() || !args.upstream.ip().is_loopback() {
        eprintln!(
            "udprelay: --listen and --upstream must be loopback addresses (got {} and {})",
            args.listen, args.upstream
        );
        return ExitCode::from(2);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udprelay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let listen = Arc::new(
        UdpSocket::bind(args.listen).with_context(|| format!("cannot bind {}", args.listen))?,
    );
    let local = listen.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "relaying on {local}")?;
        out.flush()?;
    }
    let impairment = Impairment {
        loss: args.loss,
        duplicate: args.duplicate,
        reorder: args.reorder,
        delay: Duration::from_millis(args.delay_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        reorder_extra: Duration::from_millis(args.reorder_extra_ms),
    };
    info!(%local, upstream = %args.upstream, seed, ?impairment, "relaying");

    let stats = Arc::new(Stats::default());
    let (tx, rx) = bounded::<Datagram>(args.max_queue.max(1));
    let (stop_tx, stop_rx) = bounded::<()>(1);

    {
        let listen = listen.clone();
        let stats = stats.clone();
        thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || schedule(rx, listen, impairment, seed, args.max_queue, &stats))?;
    }
    {
        let listen = listen.clone();
        let stats = stats.clone();
        let upstream = args.upstream;
        let max_clients = args.max_clients;
        thread::Builder::new()
            .name("clients".into())
            .spawn(move || receive_clients(listen, upstream, max_clients, tx, stats))?;
    }
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
            line.clear();
        }
        let _ = stop_tx.send(());
    })?;

    match stop_rx.recv_timeout(Duration::from_secs(args.max_seconds)) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => info!("end of standard input: stopping"),
        Err(RecvTimeoutError::Timeout) => {
            warn!(
                max_seconds = args.max_seconds,
                "time limit reached: stopping"
            )
        }
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "udprelay: seed {seed}: {} received, {} lost, {} duplicated, {} reordered, {} dropped on a full queue, {} sent",
        get(&stats.received),
        get(&stats.lost),
        get(&stats.duplicated),
        get(&stats.reordered),
        get(&stats.overflowed),
        get(&stats.sent),
    );
    Ok(())
}

/// Receives clients' datagrams and hands them to the scheduler, opening an
/// upstream socket (and its receiving thread) for each new client address.
fn receive_clients(
    listen: Arc<UdpSocket>,
    upstream: SocketAddr,
    max_clients: usize,
    tx: Sender<Datagram>,
    stats: Arc<Stats>,
) {
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match listen.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "receive failed");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if !from.ip().is_loopback() {
            continue;
        }
        let socket = match clients.get(&from) {
            Some(s) => s.clone(),
            None => {
                if clients.len() >= max_clients {
                    debug!(%from, "too many clients; dropped");
                    continue;
                }
                match open_upstream(upstream, from, tx.clone(), stats.clone()) {
                    Ok(s) => {
                        info!(client = %from, via = ?s.local_addr().ok(), "new client");
                        clients.insert(from, s.clone());
                        s
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot open an upstream socket");
                        continue;
                    }
                }
            }
        };
        Stats::bump(&stats.received);
        let d = Datagram {
            dest: Dest::Upstream(socket),
            bytes: buf[..n].to_vec(),
        };
        if tx.try_send(d).is_err() {
            Stats::bump(&stats.overflowed);
        }
    }
}

/// A socket connected to the upstream for one client, and the thread that
/// relays the upstream's answers back to that client.
fn open_upstream(
    upstream: SocketAddr,
    client: SocketAddr,
    tx: Sender<Datagram>,
    stats: Arc<Stats>,
) -> Result<Arc<UdpSocket>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        "127.0.0.1:0".parse()?
    } else {
        "[::1]:0".parse()?
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(upstream)?;
    let socket = Arc::new(socket);
    let reader = socket.clone();
    thread::Builder::new()
        .name(format!("upstream-{client}"))
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match reader.recv(&mut buf) {
                    Ok(n) => {
                        Stats::bump(&stats.received);
                        let d = Datagram {
                            dest: Dest::Client(client),
                            bytes: buf[..n].to_vec(),
                        };
                        match tx.try_send(d) {
                            Ok(()) => {}
                            Err(crossbeam_channel::TrySendError::Full(_)) => {
                                Stats::bump(&stats.overflowed)
                            }
                            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                        }
                    }
                    // ECONNREFUSED while the upstream is down: keep waiting.
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        })?;
    Ok(socket)
}

/// Applies the impairments and sends each copy when its delay is over.
/// Delayed datagrams wait in a map ordered by due time, then arrival order.
fn schedule(
    rx: Receiver<Datagram>,
    listen: Arc<UdpSocket>,
    imp: Impairment,
    seed: u64,
    max_queue: usize,
    stats: &Stats,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut queue: BTreeMap<(Instant, u64), Arc<Datagram>> = BTreeMap::new();
    let mut enqueued: u64 = 0;
    loop {
        let now = Instant::now();
        while let Some(entry) = queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let d = entry.remove();
            let result = match &d.dest {
                Dest::Client(addr) => listen.send_to(&d.bytes, addr),
                Dest::Upstream(socket) => socket.send(&d.bytes),
            };
            match result {
                Ok(_) => Stats::bump(&stats.sent),
                Err(e) => debug!(error = %e, "send failed"),
            }
        }
        let wait = queue
            .first_key_value()
            .map(|((at, _), _)| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1));
        let d = match rx.recv_timeout(wait) {
            Ok(d) => d,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if rng.gen_bool(imp.loss) {
            Stats::bump(&stats.lost);
            continue;
        }
        let copies = if rng.gen_bool(imp.duplicate) {
            Stats::bump(&stats.duplicated);
            2
        } else {
            1
        };
        let d = Arc::new(d);
        let arrived = Instant::now();
        for _ in 0..copies {
            if queue.len() >= max_queue {
                Stats::bump(&stats.overflowed);
                continue;
            }
            let mut delay = imp.delay + uniform(&mut rng, imp.jitter);
            if rng.gen_bool(imp.reorder) {
                Stats::bump(&stats.reordered);
                delay += uniform(&mut rng, imp.reorder_extra);
            }
            queue.insert((arrived + delay, enqueued), d.clone());
            enqueued += 1;
        }
    }
}

/// A duration drawn uniformly from `0..=max`, to the microsecond.
fn uniform(rng: &mut StdRng, max: Duration) -> Duration {
    let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.gen_range(0..=max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("1.5").is_err());
        assert!(probability("-0.1").is_err());
        assert!(probability("NaN").is_err());
        assert!(probability("lots").is_err());
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(uniform(&mut rng, Duration::ZERO), Duration::ZERO);
        for _ in 0..1000 {
            assert!(uniform(&mut rng, Duration::from_millis(3)) <= Duration::from_millis(3));
        }
    }
}
