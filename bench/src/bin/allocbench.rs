//! `allocbench`: heap allocations on the server's fan-out path, counted by a
//! counting global allocator.
//!
//! One server and `--users` clients run in memory on a virtual clock (no
//! sockets, no loss, 1 ms per step, datagrams up to 16,384 bytes as on
//! loopback). After the logins and a warm-up, one user broadcasts
//! `--messages` public messages, closed loop: at most `--window` messages
//! are in flight (sent but not yet received by every receiver), so the
//! server packs several messages in a datagram as it does under load.
//! What the server's own calls allocate is counted (datagrams in,
//! timers, datagrams out, events drained), and apart from it what the
//! receiving clients' calls allocate (datagrams in, their
//! acknowledgements out, their events drained and dropped); the sender's
//! work and the driver's are not. Printed:
//!
//! * allocations per datagram the server sent (every one is delivered:
//!   nothing is lost in memory), and bytes allocated per datagram;
//! * allocations per delivered message (one public message reaching one
//!   receiver), on the server and in the receiving client, which reads
//!   each message borrowed (`Client::poll_event_ref`), or with
//!   `--owned-events` as an event owning its sender's name and its text
//!   (`Client::poll_event`: two allocations a message at the least);
//! * the time the server's calls and the receiving clients' calls took per
//!   delivered message (wall clock on the one thread: a figure to compare
//!   two builds run alternately on one machine, not an absolute; it moves
//!   by 10 % from run to run on a shared machine, and by more with the
//!   heap's layout, so only large differences mean anything).
//!
//! ```text
//! cargo run --release -p udpchat-bench --bin allocbench -- --users 100
//! ```
//!
//! The counts are the same on every run with the same arguments (the
//! clock, keys and randomness are fixed); the machine does not matter.

use std::alloc::System;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use udpchat_core::client::{Chat, ChatKind, Client, ClientConfig, ClientEvent, EventRef};
use udpchat_core::crypto::StaticKey;
use udpchat_core::server::{RateLimit, Server, ServerConfig, UserRecord};
use udpchat_core::{Duration, Instant, wire};
use udpchat_sim::fake_hash;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Count the server's heap allocations while one user broadcasts to many.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Users logged in: one sender, the others receive.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    users: u64,
    /// Public messages measured.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Public messages sent before counting starts (paths probed, queues
    /// and buffers at their working size).
    #[arg(long, default_value_t = 500)]
    warmup: u64,
    /// Messages in flight at most (sent, not yet received by everyone).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Bytes of each message's text.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(16..=1000))]
    size: u64,
    /// The receiving clients take each message as an owned event
    /// (`poll_event`: its sender's name and text in two new strings)
    /// instead of borrowed (`poll_event_ref`, the default).
    #[arg(long)]
    owned_events: bool,
}

const PASSWORD: &str = "bench password";

/// What some calls allocated, and the time they took.
#[derive(Clone, Copy, Debug, Default)]
struct Counted {
    allocations: u64,
    reallocations: u64,
    bytes: u64,
    /// Wall-clock time in the calls (the program has one thread; the
    /// clock's own reads, about 20 ns each, are included).
    nanos: u64,
}

impl Counted {
    /// Runs `f`, adding what it allocates when `counting`.
    fn count<T>(&mut self, counting: bool, f: impl FnOnce() -> T) -> T {
        let before = GLOBAL.stats();
        let started = std::time::Instant::now();
        let out = f();
        let took = started.elapsed();
        let after = GLOBAL.stats();
        if counting {
            self.nanos += u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            self.allocations += (after.allocations - before.allocations) as u64;
            self.reallocations += (after.reallocations - before.reallocations) as u64;
            self.bytes += (after.bytes_allocated - before.bytes_allocated) as u64;
        }
        out
    }
}

/// The server, its clients, and the counts.
struct World {
    now: Instant,
    server: Server,
    store: udpchat_core::server::store::MemoryStore,
    clients: Vec<Client>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    /// The buffer the server writes its datagrams into.
    buf: Vec<u8>,
    /// Public messages each client received.
    received: Vec<u64>,
    logged_in: usize,
    /// Whether datagrams and allocations are being counted.
    counting: bool,
    counted: Counted,
    /// What the receiving clients' calls allocated.
    receivers_counted: Counted,
    datagrams: u64,
    datagram_bytes: u64,
    /// The receiving clients take messages owned (`poll_event`).
    owned_events: bool,
}

impl World {
    fn new(users: usize) -> Result<World> {
        let now = Instant::ZERO;
        let names: Vec<String> = (0..users).map(|i| format!("user{i}")).collect();
        let records = names.iter().map(|n| UserRecord {
            name: n.clone(),
            password_hash: fake_hash(PASSWORD),
            suspended: None,
        });
        let mut config = ServerConfig {
            max_sessions: users + 16,
            max_handshaking: users + 16,
            messages: RateLimit::UNLIMITED,
            handshakes: RateLimit::UNLIMITED,
            ..ServerConfig::default()
        };
        config.channel.max_datagram = wire::MAX_DATAGRAM;
        let server = Server::new(config, records, StaticKey::from_private([7; 32]), [1; 32]);
        let mut client_config = ClientConfig::default();
        client_config.channel.max_datagram = wire::MAX_DATAGRAM;
        let mut clients = Vec::with_capacity(users);
        let mut addrs = Vec::with_capacity(users);
        for (i, name) in names.iter().enumerate() {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            match Client::new(now, client_config.clone(), seed, name) {
                Ok(c) => clients.push(c),
                Err(e) => bail!("cannot start a client for {name}: {e:?}"),
            }
            // One address each, so no per-address limit applies.
            let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
            addrs.push(SocketAddr::new(IpAddr::V4(ip), 40_000));
        }
        let by_addr = addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        Ok(World {
            now,
            server,
            store: Default::default(),
            received: vec![0; users],
            clients,
            addrs,
            by_addr,
            buf: Vec::new(),
            logged_in: 0,
            counting: false,
            counted: Counted::default(),
            receivers_counted: Counted::default(),
            datagrams: 0,
            datagram_bytes: 0,
            owned_events: false,
        })
    }

    /// Runs `f` on the server, counting what it allocates when counting.
    fn on_server<T>(&mut self, f: impl FnOnce(&mut Server) -> T) -> T {
        let server = &mut self.server;
        self.counted.count(self.counting, || f(server))
    }

    /// One step of 1 ms: everything queued is delivered, then the clock
    /// moves.
    fn step(&mut self) -> Result<()> {
        let now = self.now;
        let mut d = Vec::new();
        for i in 0..self.clients.len() {
            // User 0 sends; the others receive.
            let counting = self.counting && i > 0;
            while self
                .receivers_counted
                .count(counting, || self.clients[i].poll_transmit(now, &mut d))
                .is_some()
            {
                let from = self.addrs[i];
                self.on_server(|s| s.handle_datagram(now, from, &d));
            }
        }
        while let Some(request) = self.on_server(|s| s.poll_request()) {
            if let Some(response) = self.store.answer(&request) {
                self.on_server(|s| s.handle_response(now, response));
                continue;
            }
            let response = udpchat_sim::answer(request);
            self.on_server(|s| s.handle_response(now, response));
        }
        // The driver's one buffer, kept from datagram to datagram.
        let mut buf = core::mem::take(&mut self.buf);
        while let Some(t) = self.on_server(|s| s.poll_transmit(now, &mut buf)) {
            if self.counting {
                self.datagrams += 1;
                self.datagram_bytes += t.len as u64;
            }
            let Some(&i) = self.by_addr.get(&t.to) else {
                bail!("a datagram to an unknown address {}", t.to);
            };
            let (client, bytes) = (&mut self.clients[i], &buf[..t.len]);
            self.receivers_counted.count(self.counting && i > 0, || {
                client.handle_datagram(now, bytes)
            });
        }
        self.buf = buf;
        while self.on_server(|s| s.poll_event()).is_some() {}
        for i in 0..self.clients.len() {
            let counting = self.counting && i > 0;
            loop {
                let client = &mut self.clients[i];
                let owned = self.owned_events;
                let Some(event) = self.receivers_counted.count(counting, || {
                    if owned {
                        return client.poll_event();
                    }
                    // A public message read borrowed is counted as an event
                    // with empty strings, which allocate nothing.
                    client.poll_event_ref().map(|e| match e {
                        EventRef::Chat(Chat {
                            kind: ChatKind::Public,
                            time,
                            ..
                        }) => ClientEvent::Public {
                            from: String::new(),
                            text: String::new(),
                            time,
                        },
                        other => other.into_event(),
                    })
                }) else {
                    break;
                };
                match event {
                    ClientEvent::PasswordRequired { .. } => {
                        if let Err(e) = self.clients[i].submit_password(PASSWORD) {
                            bail!("user{i}: the password was not sent: {e:?}");
                        }
                    }
                    ClientEvent::LoggedIn { .. } => self.logged_in += 1,
                    ClientEvent::Public { .. } => self.received[i] += 1,
                    ClientEvent::LoginFailed { message, .. } => {
                        bail!("user{i} could not log in: {message}")
                    }
                    ClientEvent::Closed(reason) => bail!("user{i}'s session ended: {reason}"),
                    _ => {}
                }
                // Dropping the event (its strings) is the client's cost.
                self.receivers_counted.count(counting, || drop(event));
            }
        }
        self.now += Duration::from_millis(1);
        let now = self.now;
        self.on_server(|s| s.handle_timeout(now));
        for c in &mut self.clients {
            c.handle_timeout(now);
        }
        Ok(())
    }

    /// Public messages received by every receiver (user 0 sends).
    fn delivered_to_all(&self) -> u64 {
        self.received[1..].iter().copied().min().unwrap_or(0)
    }

    /// User 0 broadcasts `count` messages of `size` bytes, at most `window`
    /// in flight, until every receiver has them all.
    fn broadcast(&mut self, first: u64, count: u64, window: u64, size: usize) -> Result<()> {
        let target = first + count;
        let mut sent = first;
        let mut idle_steps = 0u32;
        while self.delivered_to_all() < target {
            while sent < target && sent - self.delivered_to_all() < window {
                let mut text = format!("{sent:08} ");
                text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
                if self.clients[0].send_public(&text).is_err() {
                    // The sender's queue is full: later.
                    break;
                }
                sent += 1;
            }
            let before = self.delivered_to_all();
            self.step()?;
            idle_steps = if self.delivered_to_all() > before {
                0
            } else {
                idle_steps + 1
            };
            // 60 s of virtual time without progress: something is broken.
            if idle_steps > 60_000 {
                bail!(
                    "no progress: {} of {target} messages delivered to everyone",
                    self.delivered_to_all()
                );
            }
        }
        Ok(())
    }
}

fn run(args: &Args) -> Result<()> {
    let users = args.users as usize;
    let mut world = World::new(users)?;
    world.owned_events = args.owned_events;
    // Logins: 60 s of virtual time at most.
    for _ in 0..60_000 {
        if world.logged_in == users {
            break;
        }
        world.step()?;
    }
    if world.logged_in != users {
        bail!("only {} of {users} users logged in", world.logged_in);
    }
    let size = args.size as usize;
    world.broadcast(0, args.warmup, args.window, size)?;
    let deliveries_before = world.server.stats().deliveries;
    world.counting = true;
    world.broadcast(args.warmup, args.messages, args.window, size)?;
    world.counting = false;
    let deliveries = world.server.stats().deliveries - deliveries_before;

    let receivers = (users - 1) as u64;
    let delivered = args.messages * receivers;
    let c = world.counted;
    let per = |n: u64, d: u64| n as f64 / d.max(1) as f64;
    println!(
        "allocbench: {users} users, one sender, {} messages of {size} bytes measured \
         (after {} of warm-up), window {}; the receivers take messages {}",
        args.messages,
        args.warmup,
        args.window,
        if args.owned_events {
            "owned (poll_event)"
        } else {
            "borrowed (poll_event_ref)"
        }
    );
    println!(
        "server datagrams sent: {} ({:.0} bytes on average); messages delivered: {delivered} \
         (server count {deliveries})",
        world.datagrams,
        per(world.datagram_bytes, world.datagrams)
    );
    println!(
        "server allocations: {}, reallocations: {}, bytes allocated: {}",
        c.allocations, c.reallocations, c.bytes
    );
    println!(
        "allocations per datagram sent: {:.2} (with reallocations {:.2}); \
         bytes allocated per datagram: {:.0}",
        per(c.allocations, world.datagrams),
        per(c.allocations + c.reallocations, world.datagrams),
        per(c.bytes, world.datagrams)
    );
    println!(
        "allocations per delivered message: {:.3}; per message sent: {:.1}",
        per(c.allocations, delivered),
        per(c.allocations, args.messages)
    );
    let r = world.receivers_counted;
    println!(
        "receiving clients: allocations {}, reallocations {}, bytes allocated {}; \
         per delivered message: {:.2} allocations, {:.0} bytes",
        r.allocations,
        r.reallocations,
        r.bytes,
        per(r.allocations, delivered),
        per(r.bytes, delivered)
    );
    println!(
        "time in the calls per delivered message: server {:.0} ns, receiving client {:.0} ns \
         (one thread, wall clock: compare builds on the same machine, runs alternating)",
        per(c.nanos, delivered),
        per(r.nanos, delivered)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("allocbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
