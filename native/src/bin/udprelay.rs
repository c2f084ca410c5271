//! `udprelay`: a lossy UDP relay for end-to-end tests on loopback.
//!
//! Clients send to the relay's listening address; the relay forwards each
//! datagram to the upstream (the chatserver) from a socket of its own per
//! client address, so the server sees as many distinct peers as there are
//! clients, and forwards the answers back. In both directions every datagram
//! may be lost, duplicated, delayed and reordered by the simulation's own
//! network emulator (`udpchat-netem`'s [`Network`], its link model driven by
//! the real clock): loss first; a datagram not lost is sent twice with
//! probability `--duplicate`; each copy is delayed by `--delay-ms` plus a
//! uniform `0..=--jitter-ms`, plus, with probability `--reorder`, a uniform
//! `0..=--reorder-extra-ms`. Copies with different delays overtake each
//! other. Each direction of each client has its own link state.
//!
//! Safety rails, so a test harness can never turn it into a nuisance: it
//! only binds and sends to loopback addresses, keeps at most
//! `--max-clients` upstream sockets and `--max-queue` delayed datagrams, and
//! stops at end of standard input or after `--max-seconds`.
//!
//! Its first line on stdout is `relaying on ADDR`; a summary goes to stderr
//! when it stops.

use std::collections::HashMap;
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
use tracing::{debug, info, warn};
use udpchat_netem::{LinkConfig, Network};

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
    /// Back to the client, from the listening socket.
    Client,
    /// To the upstream, from the client's own upstream socket.
    Upstream(Arc<UdpSocket>),
}

/// A datagram received, for the client at `client` or from it.
struct Datagram {
    client: SocketAddr,
    dest: Dest,
    bytes: Vec<u8>,
}

/// An end of a relayed path, as the emulator's address: each client's two
/// directions (client to upstream, upstream to client) are links of their
/// own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// The client at this address.
    Client(SocketAddr),
    /// The upstream, as seen from the socket of the client at this address.
    Upstream(SocketAddr),
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
    let impairment = LinkConfig::lossy(args.loss)
        .with_duplicate(args.duplicate)
        .with_delay(udpchat_core::Duration::from_millis(args.delay_ms))
        .with_jitter(udpchat_core::Duration::from_millis(args.jitter_ms))
        .with_reorder(
            args.reorder,
            udpchat_core::Duration::from_millis(args.reorder_extra_ms),
        );
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
            client: from,
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
                            client,
                            dest: Dest::Client,
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

/// Hands each datagram to the emulator and sends each copy it delivers
/// when its delay is over. The emulator's clock is the time since the
/// scheduler started, to the microsecond.
fn schedule(
    rx: Receiver<Datagram>,
    listen: Arc<UdpSocket>,
    link: LinkConfig,
    seed: u64,
    max_queue: usize,
    stats: &Stats,
) {
    let start = Instant::now();
    let clock = |t: Instant| {
        let micros = u64::try_from(t.saturating_duration_since(start).as_micros());
        udpchat_core::Instant::from_micros(micros.unwrap_or(u64::MAX))
    };
    let mut net: Network<Hop> = Network::new(seed);
    net.set_default_link(link);
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    loop {
        let now = clock(Instant::now());
        while let Some(d) = net.poll_deliver(now) {
            let result = match d.to {
                Hop::Client(addr) => listen.send_to(&d.bytes, addr),
                Hop::Upstream(client) => match upstreams.get(&client) {
                    Some(socket) => socket.send(&d.bytes),
                    None => continue,
                },
            };
            match result {
                Ok(_) => Stats::bump(&stats.sent),
                Err(e) => debug!(error = %e, "send failed"),
            }
        }
        let wait = net.next_delivery().map_or(Duration::from_secs(1), |at| {
            Duration::from_micros(at.saturating_since(now).as_micros())
        });
        let d = match rx.recv_timeout(wait) {
            Ok(d) => d,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if net.in_flight() >= max_queue {
            Stats::bump(&stats.overflowed);
            continue;
        }
        let client = d.client;
        let (from, to) = match d.dest {
            Dest::Upstream(socket) => {
                upstreams.entry(client).or_insert(socket);
                (Hop::Client(client), Hop::Upstream(client))
            }
            Dest::Client => (Hop::Upstream(client), Hop::Client(client)),
        };
        net.send(clock(Instant::now()), from, to, d.bytes);
        let total = net.total();
        stats.lost.store(total.lost, Ordering::Relaxed);
        stats.duplicated.store(total.duplicated, Ordering::Relaxed);
        stats.reordered.store(total.reordered, Ordering::Relaxed);
    }
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
}
