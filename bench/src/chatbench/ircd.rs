//! The fan-out workload through an IRC server over TCP, for comparison
//! with `fanout`: `--users` clients register and join one channel, one of
//! them sends `PRIVMSG`s to it with the same window of messages in flight,
//! message size and duration, and the others count what they receive.
//! Deliveries and latency are counted at the receivers, as for chatbench's
//! own workloads; the server's CPU time comes from `/proc/<pid>/stat`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::histogram::Histogram;
use crate::server::{self, ProcSample};

/// The channel every client joins.
const CHANNEL: &str = "#bench";

/// Slots of the per-message receiver counts: more than any window.
const RING: usize = 1 << 16;

/// The longest a line of the server may be before it is read as garbage.
const MAX_LINE: usize = 8192;

/// Time allowed for one client to register and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
pub struct Options {
    pub addr: SocketAddr,
    pub server_pid: Option<u32>,
    pub users: usize,
    pub seconds: f64,
    pub size: usize,
    pub window: u64,
    /// Messages per second, open loop, instead of the window (at most
    /// [`RING`] messages in flight).
    pub rate: Option<f64>,
    pub threads: usize,
    pub prefix: String,
}

/// What the receivers saw.
pub struct Outcome {
    users: usize,
    size: usize,
    window: u64,
    rate: Option<f64>,
    seconds: f64,
    join_seconds: f64,
    deliveries: u64,
    sent: u64,
    expected: u64,
    delivered: u64,
    latency: Histogram,
    server: Option<(ProcSample, ProcSample)>,
    addr: SocketAddr,
    pid: Option<u32>,
}

/// State shared by the sender and the receivers.
struct Shared {
    start: Instant,
    /// Per message (by sequence number modulo [`RING`]): receivers that have it.
    got: Vec<AtomicU32>,
    /// Messages every receiver has.
    completed: AtomicU64,
    /// Receipts counted in the measured window.
    window_deliveries: AtomicU64,
    /// All receipts of benchmark messages.
    delivered: AtomicU64,
    /// Nanoseconds since `start` bounding the measured window (0: not yet).
    measure_from: AtomicU64,
    measure_to: AtomicU64,
    stop: AtomicBool,
    receivers: u32,
}

impl Shared {
    fn nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// A client's TCP connection, read line by line.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data not yet taken as lines.
    len: usize,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, JOIN_TIMEOUT)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; MAX_LINE * 4],
            len: 0,
        })
    }

    /// Reads what the socket has, then hands each complete line to `line`
    /// (without its CR LF); returns Ok(false) when the server closed.
    fn read_lines(&mut self, mut line: impl FnMut(&mut TcpStream, &[u8])) -> std::io::Result<bool> {
        loop {
            if self.len == self.buf.len() {
                // A line longer than the buffer: drop it.
                self.len = 0;
            }
            match self.stream.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut at = 0;
            while let Some(i) = self.buf[at..self.len].iter().position(|&b| b == b'\n') {
                let mut l = &self.buf[at..at + i];
                if let [rest @ .., b'\r'] = l {
                    l = rest;
                }
                line(&mut self.stream, l);
                at += i + 1;
            }
            self.buf.copy_within(at..self.len, 0);
            self.len -= at;
            return Ok(true);
        }
    }

    /// Blocks until a line containing `needle` arrives, answering PINGs.
    fn wait_for(&mut self, needle: &str, deadline: Instant) -> Result<()> {
        let mut found = false;
        while !found {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the IRC server did not answer with {needle:?} in time");
            }
            self.stream.set_read_timeout(Some(left))?;
            let open = self.read_lines(|s, l| {
                answer_ping(s, l);
                if contains(l, needle.as_bytes()) {
                    found = true;
                }
                if l.starts_with(b"ERROR") {
                    eprintln!(
                        "chatbench: the IRC server said {}",
                        String::from_utf8_lossy(l)
                    );
                }
            })?;
            if !open {
                bail!("the IRC server closed the connection while waiting for {needle:?}");
            }
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn answer_ping(stream: &mut TcpStream, line: &[u8]) {
    if let Some(rest) = line.strip_prefix(b"PING") {
        let mut pong = b"PONG".to_vec();
        pong.extend_from_slice(rest);
        pong.extend_from_slice(b"\r\n");
        let _ = stream.write_all(&pong);
    }
}

/// Registers a client and joins the channel.
fn join(addr: SocketAddr, nick: &str) -> Result<Conn> {
    let mut c = Conn::connect(addr)?;
    let deadline = Instant::now() + JOIN_TIMEOUT;
    c.stream
        .write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :chatbench\r\n").as_bytes())?;
    c.wait_for(" 001 ", deadline)
        .with_context(|| format!("{nick} did not register"))?;
    c.stream
        .write_all(format!("JOIN {CHANNEL}\r\n").as_bytes())?;
    // The end of the channel's NAMES list follows the JOIN.
    c.wait_for(" 366 ", deadline)
        .with_context(|| format!("{nick} did not join {CHANNEL}"))?;
    Ok(c)
}

/// Parses a message's text: sequence number and send time, in hex.
fn parse_text(line: &[u8]) -> Option<(u64, u64)> {
    let text = &line[line.windows(2).position(|w| w == b" :")? + 2..];
    let seq = std::str::from_utf8(text.get(..16)?).ok()?;
    let sent = std::str::from_utf8(text.get(17..33)?).ok()?;
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        u64::from_str_radix(sent, 16).ok()?,
    ))
}

/// The smallest message this workload sends: two 16-digit numbers.
pub const MIN_SIZE: usize = 34;

/// Registers the clients, runs the fan-out, and collects the figures.
pub fn run(o: &Options) -> Result<Outcome> {
    if o.users < 2 {
        bail!("ircd-fanout needs at least 2 users");
    }
    if o.size < MIN_SIZE || o.size > 400 {
        bail!("ircd-fanout sends {MIN_SIZE} to 400 bytes per message (an IRC line is at most 512)");
    }
    if o.window as usize >= RING {
        bail!("--window must be below {RING}");
    }
    let receivers = o.users - 1;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        got: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        completed: AtomicU64::new(0),
        window_deliveries: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        measure_from: AtomicU64::new(0),
        measure_to: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
        receivers: receivers as u32,
    });

    // Receivers, spread over the reading threads as they join.
    let t0 = Instant::now();
    let threads = o.threads.clamp(1, receivers);
    let mut groups: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..receivers {
        let c = join(o.addr, &format!("{}{i}", o.prefix))?;
        c.stream.set_nonblocking(true)?;
        groups[i % threads].push(c);
    }
    let mut sender = join(o.addr, &format!("{}tx", o.prefix))?;
    let join_seconds = t0.elapsed().as_secs_f64();
    eprintln!(
        "chatbench: ircd-fanout: {} clients joined {CHANNEL} at {} in {join_seconds:.1} s",
        o.users, o.addr
    );

    let readers: Vec<_> = groups
        .into_iter()
        .enumerate()
        .map(|(i, conns)| {
            let shared = shared.clone();
            let sender_thread = thread::current();
            thread::Builder::new()
                .name(format!("irc-read-{i}"))
                .spawn(move || read_loop(conns, &shared, &sender_thread))
        })
        .collect::<std::io::Result<_>>()?;

    // Warm-up, then the measured window, then a bounded drain.
    let warmup = (o.seconds / 5.0).min(1.0);
    let end_warmup = Instant::now() + Duration::from_secs_f64(warmup);
    let end = end_warmup + Duration::from_secs_f64(o.seconds);
    let mut seq: u64 = 0;
    let mut line = Vec::with_capacity(o.size + 64);
    let mut before = None;
    let mut measuring = false;
    sender.stream.set_nonblocking(true)?;
    let t_start = shared.nanos();
    while Instant::now() < end {
        if !measuring && Instant::now() >= end_warmup {
            before = o.server_pid.and_then(|p| server::sample(&p.to_string()));
            shared.measure_from.store(shared.nanos(), Release);
            measuring = true;
        }
        let in_flight = (shared.completed.load(Acquire) + o.window).saturating_sub(seq);
        let room = match o.rate {
            // Open loop: what the schedule says is due by now, as
            // `chatbench fanout --rate` sends; a server that falls behind
            // by the whole ring stops the sender.
            Some(rate) => {
                let due = (shared.nanos().saturating_sub(t_start) as f64 * 1e-9 * rate) as u64;
                let ring_room =
                    (shared.completed.load(Acquire) + RING as u64 - 1).saturating_sub(seq);
                due.saturating_sub(seq).min(ring_room)
            }
            None => in_flight,
        };
        if room == 0 {
            match o.rate {
                Some(rate) => thread::sleep(Duration::from_secs_f64((0.5 / rate).min(0.001))),
                None => thread::park_timeout(Duration::from_millis(1)),
            }
            continue;
        }
        line.clear();
        for _ in 0..room {
            shared.got[seq as usize % RING].store(0, Relaxed);
            let head = format!("PRIVMSG {CHANNEL} :{seq:016x} {:016x} ", shared.nanos());
            line.extend_from_slice(head.as_bytes());
            let text_len = head.len() - (10 + CHANNEL.len());
            line.extend(std::iter::repeat_n(b'x', o.size.saturating_sub(text_len)));
            line.extend_from_slice(b"\r\n");
            seq += 1;
        }
        write_blocking(&mut sender.stream, &line)?;
        // Answers PINGs; nothing else comes to the sender.
        let _ = sender.read_lines(answer_ping);
    }
    shared.measure_to.store(shared.nanos(), Release);
    let after = o.server_pid.and_then(|p| server::sample(&p.to_string()));
    let measured = end.duration_since(end_warmup).as_secs_f64();
    let drain_end = Instant::now() + Duration::from_secs(10);
    while shared.completed.load(Acquire) < seq && Instant::now() < drain_end {
        thread::sleep(Duration::from_millis(10));
    }
    shared.stop.store(true, Release);
    let mut latency = Histogram::default();
    for r in readers {
        let h = r
            .join()
            .map_err(|_| anyhow::anyhow!("an IRC reading thread panicked"))??;
        latency.merge(&h);
    }
    let _ = sender.stream.write_all(b"QUIT\r\n");
    Ok(Outcome {
        users: o.users,
        size: o.size,
        window: o.window,
        rate: o.rate,
        seconds: measured,
        join_seconds,
        deliveries: shared.window_deliveries.load(Relaxed),
        sent: seq,
        expected: seq * receivers as u64,
        delivered: shared.delivered.load(Relaxed),
        latency,
        server: before.zip(after),
        addr: o.addr,
        pid: o.server_pid,
    })
}

/// Writes all of `bytes` on a non-blocking stream, waiting while it is full.
fn write_blocking(stream: &mut TcpStream, mut bytes: &[u8]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => bail!("the IRC server closed the sender's connection"),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("the IRC server took nothing from the sender for 30 s");
                }
                thread::sleep(Duration::from_micros(100));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot send to the IRC server"),
        }
    }
    Ok(())
}

/// Reads the receivers' connections with one poll until told to stop.
fn read_loop(mut conns: Vec<Conn>, shared: &Shared, sender: &thread::Thread) -> Result<Histogram> {
    let mut poll = mio::Poll::new()?;
    let mut events = mio::Events::with_capacity(1024);
    let mut streams = Vec::with_capacity(conns.len());
    for (i, c) in conns.iter().enumerate() {
        let mut s = mio::net::TcpStream::from_std(c.stream.try_clone()?);
        poll.registry()
            .register(&mut s, mio::Token(i), mio::Interest::READABLE)?;
        streams.push(s);
    }
    let mut latency = Histogram::default();
    while !shared.stop.load(Acquire) {
        match poll.poll(&mut events, Some(Duration::from_millis(50))) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            // Edge-triggered: read until the socket is empty.
            loop {
                let r = c.read_lines(|s, l| {
                    if !contains(l, b" PRIVMSG ") {
                        answer_ping(s, l);
                        return;
                    }
                    let Some((seq, sent)) = parse_text(l) else {
                        return;
                    };
                    let now = shared.nanos();
                    shared.delivered.fetch_add(1, Relaxed);
                    let from = shared.measure_from.load(Relaxed);
                    if from != 0 && now >= from && now < shared.measure_to.load(Relaxed) {
                        shared.window_deliveries.fetch_add(1, Relaxed);
                    }
                    if from != 0 && sent >= from && sent < shared.measure_to.load(Relaxed) {
                        latency.record(now.saturating_sub(sent) / 1000);
                    }
                    let slot = &shared.got[seq as usize % RING];
                    if slot.fetch_add(1, AcqRel) + 1 == shared.receivers {
                        shared.completed.fetch_add(1, AcqRel);
                        sender.unpark();
                    }
                });
                match r {
                    Ok(true) => {}
                    Ok(false) => bail!("the IRC server closed a receiver's connection"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for c in &mut conns {
        let _ = c.stream.write_all(b"QUIT\r\n");
    }
    Ok(latency)
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }

    fn server_cpu(&self) -> Option<f64> {
        self.server.map(|(a, b)| b.cpu_sec - a.cpu_sec)
    }

    /// Server CPU seconds per million deliveries in the measured window.
    fn cpu_per_million(&self) -> Option<f64> {
        let cpu = self.server_cpu()?;
        (self.deliveries > 0).then(|| cpu * 1e6 / self.deliveries as f64)
    }

    pub fn json(&self) -> Value {
        let q = |x| self.latency.quantile(x);
        json!({
            "workload": "ircd-fanout",
            "server": self.addr.to_string(),
            "server_pid": self.pid,
            "users": self.users,
            "message_bytes": self.size,
            "window": self.window,
            "rate": self.rate,
            "seconds": self.seconds,
            "join_seconds": self.join_seconds,
            "deliveries": self.deliveries,
            "deliveries_per_sec": self.rate(),
            "sent": self.sent,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.expected.saturating_sub(self.delivered),
            "latency_us": {
                "p50": q(0.5), "p99": q(0.99), "p999": q(0.999),
                "max": self.latency.max(), "samples": self.latency.count(),
            },
            "server_cpu_sec": self.server_cpu(),
            "server_cpu_sec_per_million": self.cpu_per_million(),
            "server_rss_kb": self.server.map(|(_, b)| b.rss_kb),
        })
    }

    pub fn table(&self) -> String {
        let q = |x| {
            self.latency
                .quantile(x)
                .map_or("-".to_string(), |v| v.to_string())
        };
        let mode = match self.rate {
            Some(r) => format!("open loop at {r:.0} msgs/s"),
            None => format!("closed loop with {} messages in flight", self.window),
        };
        let mut s = format!(
            "chatbench ircd-fanout: {} users, {}-byte messages, {:.1} s measured, 1 sender, {mode}\n",
            self.users, self.size, self.seconds
        );
        s += &format!(
            "  server                {} (pid {:?})\n",
            self.addr, self.pid
        );
        s += &format!(
            "  deliveries            {} ({:.0}/s at the receivers)\n",
            self.deliveries,
            self.rate()
        );
        s += &format!(
            "  latency (one-way, us) p50 {}  p99 {}  p99.9 {}  max {}  ({} samples)\n",
            q(0.5),
            q(0.99),
            q(0.999),
            self.latency.max(),
            self.latency.count()
        );
        s += &format!(
            "  sent / expected       {} messages, {} deliveries expected, {} delivered\n",
            self.sent, self.expected, self.delivered
        );
        if let (Some(cpu), Some(per)) = (self.server_cpu(), self.cpu_per_million()) {
            s += &format!(
                "  server process        CPU {cpu:.2} s in the measured {:.1} s; {per:.2} s per million deliveries\n",
                self.seconds
            );
        }
        s
    }
}
