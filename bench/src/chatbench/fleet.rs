//! The simulated users: a few worker threads, each owning a shard of users
//! (one [`Client`] and one non-blocking UDP socket each), driven by one
//! `mio` poll per thread.
//!
//! Users are numbered in the order they were added (their global index);
//! each group of users added together is dealt out in turn over the workers
//! it is given (all of them unless told otherwise), and [`Fleet`] remembers
//! where each one lives. The orchestrating thread talks to the workers with [`Command`]s and reads the
//! few live counters in [`Shared`]; everything else is counted locally and
//! collected at the end with [`Command::Report`].
//!
//! Deliveries are counted where they arrive (at the receiving user), never
//! at the sender. Each message carries its send time in its text:
//! `t=<µs since the shared origin>;p=<phase>;s=<sender>;n=<seq>;` padded
//! with `x` to the message size.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, bail};
use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use udpchat_core::Instant;
use udpchat_core::client::{ChatKind, Client, ClientConfig, ClientEvent, EventRef};
use udpchat_core::session::{LoginFailure, Operation};

use super::histogram::Histogram;

/// The first bytes of a raw-ceiling datagram (never a valid chat header).
pub const RAW_MAGIC: &[u8; 8] = b"\xffCBRAW\xff\xff";

/// Latency phases a message can be stamped with.
pub const PHASES: usize = 4;

/// Groups of users whose login times are told apart.
pub const LOGIN_GROUPS: usize = 2;

/// Datagrams read from one socket before the others get a turn (at least
/// this many, as one read may bring a coalesced run of them).
const READ_BATCH: usize = 32;
/// Messages one sender may queue in one turn.
const SEND_BATCH: u32 = 16;
/// An open-loop sender this far behind its schedule skips ahead (and counts
/// the messages it did not send).
const MAX_LAG_US: u64 = 100_000;
/// How long a worker sleeps at most before looking at its commands.
const IDLE_WAIT_US: u64 = 5_000;
/// How many times a user's login may start again after its session ended
/// during the login (handshake or login timeout).
const LOGIN_ATTEMPTS: u32 = 3;
/// Delay before a login refused as busy is tried again.
const BUSY_RETRY_US: u64 = 200_000;

/// Counters the orchestrator reads while the run goes on.
#[derive(Debug)]
pub struct Shared {
    /// The origin of every timestamp (µs) in the run.
    pub origin: std::time::Instant,
    /// The phase new messages are stamped with.
    pub phase: AtomicU32,
    /// Users logged in (ever; not decremented on exit).
    pub logged_in: AtomicU64,
    /// Users whose login failed for good.
    pub login_failed: AtomicU64,
    /// Sessions that ended without the bench asking for it.
    pub lost_sessions: AtomicU64,
    /// Sessions closed after EX.
    pub exited: AtomicU64,
    /// Deliveries the receivers should see, from messages sent.
    pub expected: AtomicU64,
    /// Deliveries seen by the receivers (each message once per receiver).
    pub delivered: AtomicU64,
    /// Raw-ceiling datagrams seen by the receivers.
    pub raw_received: AtomicU64,
    /// Datagrams from the server, to all users.
    pub datagrams_in: AtomicU64,
    /// Closed-loop senders keep the messages not yet received by every
    /// receiver under this (see [`Completion`]).
    pub window: AtomicU64,
    /// Which closed-loop messages every receiver has; set before the
    /// closed-loop senders start.
    pub completion: std::sync::OnceLock<Completion>,
    /// Each worker's waker, by worker number: a message received by every
    /// receiver wakes a closed-loop sender's worker waiting for its window
    /// at once, as `ircd-fanout` unparks its sender.
    wakers: std::sync::OnceLock<Vec<Arc<mio::Waker>>>,
    /// Whether senders send.
    pub sending: AtomicBool,
    /// Messages confirmed to their senders (`confirm` or `said`).
    pub confirmed: AtomicU64,
    /// DMs confirmed as stored for an offline recipient.
    pub stored: AtomicU64,
    /// Messages the server refused (an error answering a sender).
    pub refused: AtomicU64,
    /// Users whose `join` of a room was answered.
    pub rooms_joined: AtomicU64,
    /// When the last delivery arrived, µs since the origin.
    pub last_delivery_us: AtomicU64,
    /// When the last login succeeded, µs since the origin.
    pub last_login_us: AtomicU64,
}

impl Shared {
    fn new() -> Self {
        Shared {
            origin: std::time::Instant::now(),
            phase: AtomicU32::new(0),
            logged_in: AtomicU64::new(0),
            login_failed: AtomicU64::new(0),
            lost_sessions: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            raw_received: AtomicU64::new(0),
            datagrams_in: AtomicU64::new(0),
            window: AtomicU64::new(0),
            completion: std::sync::OnceLock::new(),
            wakers: std::sync::OnceLock::new(),
            sending: AtomicBool::new(false),
            confirmed: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            rooms_joined: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
            last_login_us: AtomicU64::new(0),
        }
    }

    /// Microseconds since the origin.
    pub fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
}

/// The closed-loop window, counted as `ircd-fanout` counts it: messages
/// sent and not yet received by every receiver. A receiver that falls
/// behind holds the senders back, instead of drifting further behind while
/// the others take the window's deliveries.
///
/// Each sender delivers to each receiver in order, so a sender's messages
/// still incomplete span at most `window` sequence numbers: a ring of
/// `span > window` slots per sender counts their receipts.
#[derive(Debug)]
pub struct Completion {
    /// The closed-loop senders (user indices), in slot order.
    senders: Vec<u32>,
    /// Receipts that complete a message.
    receivers: u32,
    /// Slots per sender.
    span: u64,
    /// Receipts per (sender, sequence number) slot.
    got: Vec<AtomicU32>,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Messages received by every receiver.
    pub completed: AtomicU64,
    /// The workers (one bit each) whose senders wait for room in the
    /// window: the next message completed wakes them.
    waiting: AtomicU64,
}

impl Completion {
    /// For closed-loop `senders` (user indices), each message of which
    /// `receivers` users receive, with `window` messages in flight.
    pub fn new(senders: Vec<u32>, receivers: u64, window: u64) -> Completion {
        let span = (window + 1).next_power_of_two();
        let slots = (span as usize).saturating_mul(senders.len());
        Completion {
            got: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            senders,
            receivers: u32::try_from(receivers).unwrap_or(u32::MAX),
            span,
            sent: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
        }
    }

    fn slot(&self, sender: u32, seq: u64) -> Option<&AtomicU32> {
        let rank = self.senders.iter().position(|&s| s == sender)? as u64;
        self.got.get((rank * self.span + seq % self.span) as usize)
    }

    /// Messages in flight: sent and not yet received by every receiver.
    pub fn in_flight(&self) -> u64 {
        self.sent
            .load(Relaxed)
            .saturating_sub(self.completed.load(SeqCst))
    }

    /// `sender` sends message `seq`.
    fn on_send(&self, sender: u32, seq: u64) {
        if let Some(slot) = self.slot(sender, seq) {
            slot.store(0, Relaxed);
            self.sent.fetch_add(1, Relaxed);
        }
    }

    /// A receiver got message `seq` of `sender`.
    /// Returns the workers (one bit each) to wake: those whose senders
    /// waited for the message this receipt completed.
    fn on_receipt(&self, sender: u32, seq: u64) -> u64 {
        if let Some(slot) = self.slot(sender, seq)
            && slot.fetch_add(1, Relaxed) + 1 == self.receivers
        {
            self.completed.fetch_add(1, SeqCst);
            if self.waiting.load(SeqCst) != 0 {
                return self.waiting.swap(0, SeqCst);
            }
        }
        0
    }
}

/// What a sender sends.
#[derive(Clone, Debug)]
pub enum Target {
    /// PM: a public message to everyone online.
    Public,
    /// DM to this user.
    Direct(String),
    /// `say` in this room (which the sender joined).
    Room(String),
    /// DMs to these users in turn (message `i` to user `i % len`): with a
    /// per-recipient sequence in the stamp, so that each recipient sees
    /// every sender's messages numbered 0, 1, 2, ...
    Spread(Arc<Vec<String>>),
}

/// One user's sending schedule.
#[derive(Clone, Debug)]
pub struct SendPlan {
    /// The sending user (global index).
    pub user: usize,
    /// What it sends.
    pub target: Target,
    /// Deliveries one message should produce.
    pub receivers: u64,
    /// Microseconds between messages; 0 for closed loop (as fast as the
    /// shared window allows).
    pub interval_us: u64,
    /// The first send, in µs since the origin.
    pub start_us: u64,
    /// Message size in bytes.
    pub size: usize,
    /// Messages to send in all (then the sender stops); `None`: until told.
    pub count: Option<u64>,
    /// Closed loop on the sender's own confirmations: at most this many
    /// messages unconfirmed (instead of the shared delivery window; for
    /// messages delivered later, such as DMs stored for offline users).
    pub confirm_window: Option<u64>,
}

/// Orders for a worker.
pub enum Command {
    /// Creates these users (global index, name; they take the next local
    /// indices of the worker, in order), binds their sockets, and
    /// starts their logins, at most `concurrency` at a time on this worker.
    Login {
        users: Vec<(usize, String)>,
        concurrency: usize,
        /// Which login-time histogram their logins go to.
        group: usize,
    },
    /// Starts these sending schedules (each with its user's local index).
    Send(Vec<(usize, SendPlan)>),
    /// Stops all sending.
    StopSending,
    /// Every logged-in user joins this room.
    Join(String),
    /// Sends EX for every logged-in user.
    Exit,
    /// Local addresses of these users (local indices).
    Addrs(Vec<usize>, Sender<Vec<SocketAddr>>),
    /// Sets the worker thread's time slice (see `sched`), answering how
    /// that went.
    Slice(StdDuration, Sender<std::io::Result<()>>),
    /// The worker's counters and histograms.
    Report(Sender<Report>),
    /// Resets the datagram size histogram.
    ResetSizes,
}

/// Counters of one worker (summed over workers by [`Report::merge`]).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Messages handed to the client library.
    pub sent: u64,
    /// Messages the local client refused (send queue full).
    pub send_refused_locally: u64,
    /// Open-loop messages skipped because the sender fell behind.
    pub missed_sends: u64,
    /// Server errors answering a message (rate limits, not online, ...).
    pub refused: u64,
    /// Confirmations of messages.
    pub confirmed: u64,
    /// DMs confirmed as stored for an offline recipient.
    pub stored: u64,
    /// DMs delivered from the recipient's offline inbox.
    pub offline_deliveries: u64,
    /// Deliveries the server claimed in its confirmations.
    pub confirmed_recipients: u64,
    /// Messages received twice.
    pub duplicates: u64,
    /// Messages skipped in a sender's sequence (refused or lost).
    pub gaps: u64,
    /// Chat texts that were not bench messages.
    pub foreign: u64,
    /// Joined / Left notices received.
    pub joined: u64,
    pub left: u64,
    /// Logins refused as busy and tried again.
    pub busy_retries: u64,
    /// Logins started again from the handshake after their session ended.
    pub login_restarts: u64,
    /// Datagrams sent and received (chat only).
    pub datagrams_out: u64,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Sends that failed (socket buffer full or an error).
    pub send_failures: u64,
}

/// What a worker reports.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub counters: Counters,
    /// One-way latency of messages by the phase they were sent in.
    pub latency: [Histogram; PHASES],
    /// Login time (start of the handshake to logged in), µs, per group of
    /// users (see [`Command::Login`]).
    pub login: [Histogram; LOGIN_GROUPS],
    /// Sizes of the datagrams from the server that carried exactly one
    /// bench message, bytes.
    pub sizes: Histogram,
    /// Offline DMs: from the recipient's `login_ok` to the DM, µs.
    pub after_login: Histogram,
    /// The first few problems, for the operator.
    pub problems: Vec<String>,
}

impl Report {
    /// Adds another worker's report.
    pub fn merge(&mut self, o: &Report) {
        let (a, b) = (&mut self.counters, &o.counters);
        a.sent += b.sent;
        a.send_refused_locally += b.send_refused_locally;
        a.missed_sends += b.missed_sends;
        a.refused += b.refused;
        a.confirmed += b.confirmed;
        a.stored += b.stored;
        a.offline_deliveries += b.offline_deliveries;
        a.confirmed_recipients += b.confirmed_recipients;
        a.duplicates += b.duplicates;
        a.gaps += b.gaps;
        a.foreign += b.foreign;
        a.joined += b.joined;
        a.left += b.left;
        a.busy_retries += b.busy_retries;
        a.login_restarts += b.login_restarts;
        a.datagrams_out += b.datagrams_out;
        a.datagrams_in += b.datagrams_in;
        a.bytes_in += b.bytes_in;
        a.send_failures += b.send_failures;
        for (x, y) in self.latency.iter_mut().zip(&o.latency) {
            x.merge(y);
        }
        for (x, y) in self.login.iter_mut().zip(&o.login) {
            x.merge(y);
        }
        self.sizes.merge(&o.sizes);
        self.after_login.merge(&o.after_login);
        for p in &o.problems {
            if self.problems.len() < 8 && !self.problems.contains(p) {
                self.problems.push(p.clone());
            }
        }
    }
}

/// The worker threads and their users.
pub struct Fleet {
    txs: Vec<Sender<Command>>,
    handles: Vec<JoinHandle<()>>,
    /// Live counters.
    pub shared: Arc<Shared>,
    /// The local UDP ports of the users that logged in so far (see
    /// [`Fleet::wait_logins`]).
    pub ports: std::collections::HashSet<u16>,
    /// Per global index: its worker and its index on that worker.
    place: Vec<(usize, usize)>,
    /// Users on each worker.
    per_worker: Vec<usize>,
}

/// How users reach the server.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Other nodes of the same chat (a cluster): users are spread over
    /// `addr` and these in turn.
    pub others: Vec<SocketAddr>,
    pub config: ClientConfig,
    pub password: String,
}

impl Fleet {
    /// Starts `threads` workers.
    pub fn new(threads: usize, server: Endpoint) -> Result<Fleet> {
        let shared = Arc::new(Shared::new());
        let mut txs = Vec::new();
        let mut handles = Vec::new();
        let mut wakers = Vec::new();
        for id in 0..threads {
            let (tx, rx) = unbounded();
            let worker = Worker::new(id, shared.clone(), server.clone())?;
            wakers.push(worker.waker.clone());
            handles.push(
                thread::Builder::new()
                    .name(format!("bench-{id}"))
                    .spawn(move || worker.run(rx))?,
            );
            txs.push(tx);
        }
        let _ = shared.wakers.set(wakers);
        Ok(Fleet {
            txs,
            handles,
            shared,
            ports: std::collections::HashSet::new(),
            place: Vec::new(),
            per_worker: vec![0; threads],
        })
    }

    /// Sets the time slice of every worker thread (`sched::set_slice`).
    pub fn set_slice(&self, slice: StdDuration) -> Result<()> {
        for worker in 0..self.txs.len() {
            let (tx, rx) = unbounded();
            self.send(worker, Command::Slice(slice, tx))?;
            rx.recv_timeout(StdDuration::from_secs(5))
                .map_err(|_| anyhow::anyhow!("bench worker {worker} did not answer"))?
                .with_context(|| format!("bench worker {worker}"))?;
        }
        Ok(())
    }

    /// How many worker threads drive the users.
    pub fn threads(&self) -> usize {
        self.txs.len()
    }

    fn send(&self, worker: usize, c: Command) -> Result<()> {
        self.txs[worker]
            .send(c)
            .map_err(|_| anyhow::anyhow!("bench worker {worker} ended"))
    }

    /// Adds users with these names, dealt out in turn over the workers
    /// `workers` (clamped to the workers there are; all of them when
    /// empty), and starts their logins, at most `concurrency` at once in
    /// all; returns their global indices.
    pub fn login(
        &mut self,
        names: &[String],
        concurrency: usize,
        group: usize,
        workers: std::ops::Range<usize>,
    ) -> Result<Vec<usize>> {
        let w = self.txs.len();
        let workers = if workers.start < workers.end.min(w) {
            workers.start..workers.end.min(w)
        } else {
            0..w
        };
        let first = self.place.len();
        let mut per: Vec<Vec<(usize, String)>> = vec![Vec::new(); w];
        for (i, name) in names.iter().enumerate() {
            let id = workers.start + i % workers.len();
            self.place.push((id, self.per_worker[id]));
            self.per_worker[id] += 1;
            per[id].push((first + i, name.clone()));
        }
        let concurrency = concurrency.div_ceil(workers.len()).max(1);
        for (id, users) in per.into_iter().enumerate() {
            if users.is_empty() {
                continue;
            }
            self.send(
                id,
                Command::Login {
                    users,
                    concurrency,
                    group,
                },
            )?;
        }
        Ok((first..self.place.len()).collect())
    }

    /// Waits until `target` users in all have logged in (or failed), and
    /// learns their ports; fails after `timeout`. Prints progress on stderr
    /// when `progress`.
    pub fn wait_logins(&mut self, target: u64, timeout: StdDuration, progress: bool) -> Result<()> {
        self.wait_logins_only(target, timeout, progress)?;
        let all: Vec<usize> = (0..self.place.len()).collect();
        self.ports = self.addrs(&all)?.iter().map(SocketAddr::port).collect();
        Ok(())
    }

    fn wait_logins_only(&self, target: u64, timeout: StdDuration, progress: bool) -> Result<()> {
        let start = std::time::Instant::now();
        let ok_before = self.shared.logged_in.load(Relaxed);
        let mut last_print = start;
        loop {
            let ok = self.shared.logged_in.load(Relaxed);
            let failed = self.shared.login_failed.load(Relaxed);
            if ok + failed >= target {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "only {ok} of {target} users logged in after {} s ({failed} failed)",
                    timeout.as_secs()
                );
            }
            if progress && last_print.elapsed() >= StdDuration::from_secs(5) {
                last_print = std::time::Instant::now();
                eprintln!(
                    "chatbench: {ok}/{target} logged in ({:.0}/s)",
                    (ok - ok_before) as f64 / start.elapsed().as_secs_f64()
                );
            }
            thread::sleep(StdDuration::from_millis(10));
        }
    }

    /// How many users were added.
    pub fn user_count(&self) -> usize {
        self.place.len()
    }

    /// Starts sending: each plan goes to its user's worker.
    pub fn start_sending(&self, plans: Vec<SendPlan>) -> Result<()> {
        let w = self.txs.len();
        let mut per: Vec<Vec<(usize, SendPlan)>> = vec![Vec::new(); w];
        for p in plans {
            let Some(&(id, local)) = self.place.get(p.user) else {
                bail!("no bench user {}", p.user);
            };
            per[id].push((local, p));
        }
        self.shared.sending.store(true, Relaxed);
        for (id, plans) in per.into_iter().enumerate() {
            self.send(id, Command::Send(plans))?;
        }
        Ok(())
    }

    /// Every logged-in user joins `room` (see [`Shared::rooms_joined`]).
    pub fn join(&self, room: &str) -> Result<()> {
        for id in 0..self.txs.len() {
            self.send(id, Command::Join(room.to_string()))?;
        }
        Ok(())
    }

    /// Stops sending.
    pub fn stop_sending(&self) -> Result<()> {
        self.shared.sending.store(false, Relaxed);
        for id in 0..self.txs.len() {
            self.send(id, Command::StopSending)?;
        }
        Ok(())
    }

    /// Waits until every expected delivery arrived, or nothing arrived for
    /// `quiet`, or `limit` passed.
    pub fn drain(&self, quiet: StdDuration, limit: StdDuration) {
        let start = std::time::Instant::now();
        let mut last = self.shared.delivered.load(Relaxed);
        let mut last_change = start;
        while start.elapsed() < limit {
            let d = self.shared.delivered.load(Relaxed);
            if d >= self.shared.expected.load(Relaxed) {
                return;
            }
            if d != last {
                last = d;
                last_change = std::time::Instant::now();
            } else if last_change.elapsed() >= quiet {
                return;
            }
            thread::sleep(StdDuration::from_millis(5));
        }
    }

    /// The local addresses of these users.
    pub fn addrs(&self, users: &[usize]) -> Result<Vec<SocketAddr>> {
        let w = self.txs.len();
        let mut out = Vec::new();
        for id in 0..w {
            let mine: Vec<usize> = users
                .iter()
                .filter_map(|g| self.place.get(*g))
                .filter(|(worker, _)| *worker == id)
                .map(|(_, local)| *local)
                .collect();
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.send(id, Command::Addrs(mine, tx))?;
            out.extend(
                rx.recv_timeout(StdDuration::from_secs(10))
                    .context("a bench worker did not answer")?,
            );
        }
        Ok(out)
    }

    /// Forgets the datagram sizes seen so far.
    pub fn reset_sizes(&self) -> Result<()> {
        for id in 0..self.txs.len() {
            self.send(id, Command::ResetSizes)?;
        }
        Ok(())
    }

    /// The merged report of all workers.
    pub fn report(&self) -> Result<Report> {
        let mut all = Report::default();
        for id in 0..self.txs.len() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.send(id, Command::Report(tx))?;
            let r = rx
                .recv_timeout(StdDuration::from_secs(10))
                .context("a bench worker did not answer")?;
            all.merge(&r);
        }
        Ok(all)
    }

    /// Sends EX for every logged-in user and waits (at most `timeout`) for
    /// the server's goodbyes.
    pub fn exit_all(&self, timeout: StdDuration) -> Result<()> {
        let before = self.shared.exited.load(Relaxed);
        for id in 0..self.txs.len() {
            self.send(id, Command::Exit)?;
        }
        let target = self.shared.logged_in.load(Relaxed);
        let start = std::time::Instant::now();
        while self.shared.exited.load(Relaxed) - before < target && start.elapsed() < timeout {
            thread::sleep(StdDuration::from_millis(10));
        }
        Ok(())
    }

    /// Stops the workers (their sockets close).
    pub fn shutdown(self) {
        drop(self.txs);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserState {
    Waiting,
    LoggingIn,
    LoggedIn,
    Exiting,
    Done,
}

struct User {
    name: String,
    /// Its index over the whole fleet.
    global: usize,
    socket: UdpSocket,
    /// How its socket is read (quinn-udp: GRO where the kernel has it).
    udp: quinn_udp::UdpSocketState,
    client: Option<Client>,
    state: UserState,
    /// The deadline this user is filed under in the timer heap.
    armed: Option<u64>,
    started_us: u64,
    /// Per sender: the next sequence number expected.
    /// Per sender heard from: the next sequence number expected (a few
    /// senders per user: a list beats hashing).
    next_seq: Vec<(u32, u64)>,
    /// Deliveries one of this user's messages should produce.
    per_message: u64,
    /// Whether the user is in the worker's list of sockets to read again.
    queued_read: bool,
    /// Its login group.
    group: usize,
    /// Logins started again after a timeout.
    attempts: u32,
    /// Its messages confirmed by the server (or refused).
    answered: u64,
    /// When it logged in, µs since the origin.
    logged_in_us: u64,
}

struct Sending {
    local: usize,
    sender_id: u32,
    target: Target,
    receivers: u64,
    interval_us: u64,
    next_us: u64,
    seq: u64,
    size: usize,
    count: Option<u64>,
    confirm_window: Option<u64>,
}

/// Reads from one socket in one call, at most (quinn-udp: one `recvmmsg`
/// on Linux, one datagram a call where there is no such call).
const READ_CALL: usize = if quinn_udp::BATCH_SIZE < 16 {
    quinn_udp::BATCH_SIZE
} else {
    16
};

/// Room for one read: a datagram or, with UDP GRO (Linux), a run of
/// datagrams from one sender handed over in one piece, as the server's GSO
/// sends them; never more than an IP datagram's 64 KiB.
const READ_SLOT: usize = 1 << 16;

/// Buffers for the datagrams waiting at one user's socket, read with
/// quinn-udp: up to [`READ_CALL`] reads in one call, each a datagram or a
/// run of them coalesced by the kernel (GRO), as the IRC workload's
/// receivers read whatever bytes wait at their TCP socket in one call.
struct ReadBufs {
    bufs: Vec<Vec<u8>>,
    meta: Vec<quinn_udp::RecvMeta>,
    /// Per datagram read: its buffer, where it starts and ends, and its
    /// sender.
    got: Vec<(usize, usize, usize, SocketAddr)>,
}

impl ReadBufs {
    fn new() -> Self {
        ReadBufs {
            bufs: (0..READ_CALL).map(|_| vec![0u8; READ_SLOT]).collect(),
            meta: vec![quinn_udp::RecvMeta::default(); READ_CALL],
            got: Vec::with_capacity(READ_CALL * 8),
        }
    }

    /// The `i`th datagram of the last [`ReadBufs::recv`].
    fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (buf, start, end, from) = self.got[i];
        (from, &self.bufs[buf][start..end])
    }

    /// Reads the datagrams waiting at `socket`, as many as the buffers
    /// hold, a coalesced run cut back into its datagrams; returns how many
    /// (`WouldBlock` when none).
    fn recv(
        &mut self,
        udp: &quinn_udp::UdpSocketState,
        socket: &UdpSocket,
    ) -> std::io::Result<usize> {
        use std::io::IoSliceMut;
        self.got.clear();
        let mut bufs = self.bufs.iter_mut();
        let mut iovs: [IoSliceMut<'_>; READ_CALL] =
            std::array::from_fn(|_| IoSliceMut::new(bufs.next().expect("READ_CALL buffers")));
        let n = udp.recv(socket.into(), &mut iovs, &mut self.meta)?;
        for (buf, m) in self.meta[..n].iter().enumerate() {
            // A run of datagrams of `stride` bytes each, the last one
            // possibly shorter; without GRO, one datagram (`stride` = len).
            let len = m.len.min(READ_SLOT);
            let stride = if m.stride == 0 { len.max(1) } else { m.stride };
            if len == 0 {
                self.got.push((buf, 0, 0, m.addr));
            }
            let mut start = 0;
            while start < len {
                let end = (start + stride).min(len);
                self.got.push((buf, start, end, m.addr));
                start = end;
            }
        }
        Ok(self.got.len())
    }
}

/// The poll token of a worker's waker (no user has it).
const WAKE: Token = Token(usize::MAX);

struct Worker {
    /// Its number, below 64 (see [`Completion::waiting`]).
    id: usize,
    /// Wakes its poll from another thread.
    waker: Arc<mio::Waker>,
    shared: Arc<Shared>,
    server: Endpoint,
    poll: Poll,
    users: Vec<User>,
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    waiting: VecDeque<usize>,
    logging_in: usize,
    concurrency: usize,
    retries: BinaryHeap<Reverse<(u64, usize)>>,
    senders: Vec<Sending>,
    readable: VecDeque<usize>,
    report: Report,
    /// The datagram being sent, kept from one to the next.
    outgoing: Vec<u8>,
    /// A socket could not be opened: later users are counted as failed.
    broken: bool,
    /// Deliveries on this worker.
    deliveries: u64,
    /// Deliveries not yet added to the shared count: it is updated once per
    /// datagram, not once per message, so that the workers do not contend
    /// for its cache line.
    unpublished: u64,
}

impl Worker {
    fn new(id: usize, shared: Arc<Shared>, server: Endpoint) -> Result<Self> {
        let poll = Poll::new().context("cannot create a poll instance")?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        Ok(Worker {
            id,
            waker,
            shared,
            server,
            poll,
            users: Vec::new(),
            timers: BinaryHeap::new(),
            waiting: VecDeque::new(),
            logging_in: 0,
            concurrency: 1,
            retries: BinaryHeap::new(),
            senders: Vec::new(),
            readable: VecDeque::new(),
            report: Report::default(),
            outgoing: Vec::new(),
            broken: false,
            deliveries: 0,
            unpublished: 0,
        })
    }

    fn problem(&mut self, p: String) {
        if self.report.problems.len() < 8 && !self.report.problems.contains(&p) {
            self.report.problems.push(p);
        }
    }

    fn run(mut self, rx: Receiver<Command>) {
        let mut events = Events::with_capacity(1024);
        let mut bufs = ReadBufs::new();
        loop {
            loop {
                match rx.try_recv() {
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let now = self.shared.now_us();
            self.start_logins(now);
            self.run_retries(now);
            self.run_timers(now);
            let next_send = self.run_senders();
            let now = self.shared.now_us();
            let mut wait = IDLE_WAIT_US;
            if !self.readable.is_empty() {
                wait = 0;
            }
            if let Some(Reverse((t, _))) = self.timers.peek() {
                wait = wait.min(t.saturating_sub(now));
            }
            if let Some(Reverse((t, _))) = self.retries.peek() {
                wait = wait.min(t.saturating_sub(now));
            }
            if let Some(t) = next_send {
                wait = wait.min(t.saturating_sub(now));
            }
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(StdDuration::from_micros(wait)))
                && e.kind() != ErrorKind::Interrupted
            {
                self.problem(format!("poll failed: {e}"));
                thread::sleep(StdDuration::from_millis(10));
            }
            for ev in events.iter() {
                let li = ev.token().0;
                if let Some(u) = self.users.get_mut(li)
                    && !u.queued_read
                {
                    u.queued_read = true;
                    self.readable.push_back(li);
                }
            }
            for _ in 0..self.readable.len() {
                let Some(li) = self.readable.pop_front() else {
                    break;
                };
                if self.read(li, &mut bufs) {
                    self.readable.push_back(li);
                } else {
                    self.users[li].queued_read = false;
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Login {
                users,
                concurrency,
                group,
            } => {
                self.concurrency = concurrency;
                for (g, name) in users {
                    let li = self.users.len();
                    let socket = if self.broken {
                        None
                    } else {
                        match self.bind(li) {
                            Ok(s) => Some(s),
                            Err(e) => {
                                self.problem(format!("cannot open a UDP socket: {e:#}"));
                                self.broken = true;
                                None
                            }
                        }
                    };
                    let Some((socket, udp)) = socket else {
                        // This worker cannot add users any more: count the
                        // rest as failed so that the run reports it.
                        self.shared.login_failed.fetch_add(1, Relaxed);
                        continue;
                    };
                    self.users.push(User {
                        name,
                        global: g,
                        socket,
                        udp,
                        client: None,
                        state: UserState::Waiting,
                        armed: None,
                        started_us: 0,
                        next_seq: Vec::new(),
                        per_message: 0,
                        queued_read: false,
                        group: group.min(LOGIN_GROUPS - 1),
                        attempts: 0,
                        answered: 0,
                        logged_in_us: 0,
                    });
                    self.waiting.push_back(li);
                }
            }
            Command::Send(plans) => {
                let now = self.shared.now_us();
                for (local, p) in plans {
                    if let Some(u) = self.users.get_mut(local) {
                        u.per_message = p.receivers;
                    }
                    self.senders.push(Sending {
                        local,
                        sender_id: p.user as u32,
                        target: p.target,
                        receivers: p.receivers,
                        interval_us: p.interval_us,
                        next_us: p.start_us.max(now),
                        seq: 0,
                        size: p.size,
                        count: p.count,
                        confirm_window: p.confirm_window,
                    });
                }
            }
            Command::StopSending => self.senders.clear(),
            Command::Join(room) => {
                let now = self.shared.now_us();
                for li in 0..self.users.len() {
                    let u = &mut self.users[li];
                    if u.state != UserState::LoggedIn {
                        continue;
                    }
                    if let Some(c) = u.client.as_mut()
                        && let Err(e) = c.join(&room)
                    {
                        self.problem(format!("cannot join {room}: {e}"));
                    }
                    self.service(li, now);
                }
            }
            Command::Exit => {
                let now = self.shared.now_us();
                for li in 0..self.users.len() {
                    let u = &mut self.users[li];
                    if u.state != UserState::LoggedIn {
                        continue;
                    }
                    if let Some(c) = u.client.as_mut()
                        && c.request_operation(Operation::EX).is_ok()
                    {
                        u.state = UserState::Exiting;
                    }
                    self.service(li, now);
                }
            }
            Command::Addrs(users, reply) => {
                let addrs = users
                    .iter()
                    .filter_map(|li| self.users.get(*li))
                    .filter_map(|u| u.socket.local_addr().ok())
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::Slice(slice, reply) => {
                let _ = reply.send(crate::sched::set_slice(0, slice));
            }
            Command::Report(reply) => {
                let _ = reply.send(self.report.clone());
            }
            Command::ResetSizes => self.report.sizes = Histogram::default(),
        }
    }

    /// The node user `g` (global index) talks to: users in turn by their
    /// index over the whole fleet, so that users `2k` and `2k + 1` (a
    /// pair of the dm workload) are on different nodes.
    fn node_of(&self, g: usize) -> SocketAddr {
        match g % (self.server.others.len() + 1) {
            0 => self.server.addr,
            i => self.server.others[i - 1],
        }
    }

    fn bind(&mut self, li: usize) -> Result<(UdpSocket, quinn_udp::UdpSocketState)> {
        let ip = self.server.addr.ip();
        let local = match ip {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let socket = std::net::UdpSocket::bind(SocketAddr::new(local, 0))
            .with_context(|| format!("bind {local}:0 (is `ulimit -n` high enough?)"))?;
        // Runs of datagrams from the server read in one piece (UDP GRO),
        // where the kernel has it.
        let udp = quinn_udp::UdpSocketState::new((&socket).into())
            .context("set up the UDP socket for batched reads")?;
        // As chatclient does: larger datagrams where they cannot fragment.
        self.server.config.channel.max_datagram = udpchat_native::udp::max_datagram(&socket);
        socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(socket);
        self.poll
            .registry()
            .register(&mut socket, Token(li), Interest::READABLE)?;
        Ok((socket, udp))
    }

    fn start_logins(&mut self, now: u64) {
        while self.logging_in < self.concurrency {
            let Some(li) = self.waiting.pop_front() else {
                return;
            };
            let u = &mut self.users[li];
            match Client::new(
                Instant::from_micros(now),
                self.server.config.clone(),
                rand::random(),
                &u.name,
            ) {
                Ok(c) => {
                    u.client = Some(c);
                    u.state = UserState::LoggingIn;
                    u.started_us = now;
                    self.logging_in += 1;
                    self.service(li, now);
                }
                Err(e) => {
                    u.state = UserState::Done;
                    self.shared.login_failed.fetch_add(1, Relaxed);
                    let name = u.name.clone();
                    self.problem(format!("invalid username {name}: {e}"));
                }
            }
        }
    }

    fn run_retries(&mut self, now: u64) {
        while let Some(&Reverse((t, li))) = self.retries.peek() {
            if t > now {
                return;
            }
            self.retries.pop();
            let u = &mut self.users[li];
            if u.state == UserState::LoggingIn
                && let Some(c) = u.client.as_mut()
            {
                let _ = c.submit_password(&self.server.password);
                self.service(li, now);
            }
        }
    }

    fn run_timers(&mut self, now: u64) {
        let mut budget = self.users.len() * 2 + 64;
        while let Some(&Reverse((t, li))) = self.timers.peek() {
            if t > now || budget == 0 {
                return;
            }
            budget -= 1;
            self.timers.pop();
            let u = &mut self.users[li];
            if u.armed != Some(t) {
                continue;
            }
            u.armed = None;
            if let Some(c) = u.client.as_mut() {
                c.handle_timeout(Instant::from_micros(now));
            }
            self.service(li, now);
        }
    }

    /// Sends what is due; returns when the next open-loop message is due
    /// (or soon, when a closed-loop sender waits for its window).
    fn run_senders(&mut self) -> Option<u64> {
        if self.senders.is_empty() || !self.shared.sending.load(Relaxed) {
            return None;
        }
        let mut next: Option<u64> = None;
        for s in 0..self.senders.len() {
            let li = self.senders[s].local;
            if self.users[li].state != UserState::LoggedIn {
                continue;
            }
            let mut n = 0;
            loop {
                let now = self.shared.now_us();
                let sd = &mut self.senders[s];
                if n >= SEND_BATCH {
                    next = Some(now);
                    break;
                }
                if sd.count.is_some_and(|c| sd.seq >= c) {
                    break;
                }
                if let Some(w) = sd.confirm_window {
                    if sd.seq.saturating_sub(self.users[li].answered) >= w {
                        // Woken by the confirmations, read on this thread.
                        break;
                    }
                } else if sd.interval_us == 0 {
                    let window = self.shared.window.load(Relaxed);
                    let full = match self.shared.completion.get() {
                        Some(c) => c.in_flight() >= window,
                        None => {
                            let outstanding = self
                                .shared
                                .expected
                                .load(Relaxed)
                                .saturating_sub(self.shared.delivered.load(Relaxed));
                            outstanding + sd.receivers > window * sd.receivers
                        }
                    };
                    if full {
                        // Deliveries happen on other threads: the one that
                        // completes a message wakes this worker, and it
                        // looks again soon in any case.
                        if let Some(c) = self.shared.completion.get()
                            && self.id < 64
                        {
                            c.waiting.fetch_or(1 << self.id, SeqCst);
                            if c.in_flight() < window {
                                continue;
                            }
                        }
                        next = Some(next.map_or(now + 200, |x| x.min(now + 200)));
                        break;
                    }
                } else {
                    if sd.next_us > now {
                        next = Some(next.map_or(sd.next_us, |x| x.min(sd.next_us)));
                        break;
                    }
                    if now - sd.next_us > MAX_LAG_US {
                        let skipped = (now - sd.next_us).checked_div(sd.interval_us).unwrap_or(0);
                        self.report.counters.missed_sends += skipped;
                        sd.next_us += skipped * sd.interval_us;
                    }
                    sd.next_us += sd.interval_us;
                }
                let phase = self.shared.phase.load(Relaxed);
                let seq = match &sd.target {
                    Target::Spread(to) => sd.seq / to.len().max(1) as u64,
                    _ => sd.seq,
                };
                let text = payload(now, phase, sd.sender_id, seq, sd.size);
                let receivers = sd.receivers;
                let Some(c) = self.users[li].client.as_mut() else {
                    break;
                };
                // Straight to `pm`/`dm`, without `op` first (as chatclient
                // sends one-line messages).
                let sd = &self.senders[s];
                let r = match &sd.target {
                    Target::Public => c.send_public(&text),
                    Target::Direct(to) => c.send_direct(to, &text),
                    Target::Room(room) => c.say(room, &text),
                    Target::Spread(to) => c.send_direct(&to[sd.seq as usize % to.len()], &text),
                };
                match r {
                    Ok(()) => {
                        if sd.interval_us == 0
                            && sd.confirm_window.is_none()
                            && let Some(c) = self.shared.completion.get()
                        {
                            c.on_send(sd.sender_id, sd.seq);
                        }
                        self.senders[s].seq += 1;
                        self.report.counters.sent += 1;
                        self.shared.expected.fetch_add(receivers, Relaxed);
                    }
                    Err(e) => {
                        self.report.counters.send_refused_locally += 1;
                        self.problem(format!("could not queue a message: {e}"));
                    }
                }
                n += 1;
            }
            if n > 0 {
                let now = self.shared.now_us();
                self.service(li, now);
            }
        }
        next
    }

    /// Reads until [`READ_BATCH`] datagrams or more were taken in, or the
    /// socket is empty; true if there may be more.
    fn read(&mut self, li: usize, bufs: &mut ReadBufs) -> bool {
        let mut read = 0;
        while read < READ_BATCH {
            let n = match bufs.recv(&self.users[li].udp, &self.users[li].socket) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                // Interrupted, or an ICMP error surfacing as refused /
                // reset: the server will be heard from again, or the
                // client times out.
                Err(_) => {
                    read += 1;
                    continue;
                }
            };
            read += n;
            for i in 0..n {
                let (from, bytes) = bufs.get(i);
                let len = bytes.len();
                if from != self.node_of(self.users[li].global) {
                    if bytes.starts_with(RAW_MAGIC) {
                        self.shared.raw_received.fetch_add(1, Relaxed);
                    }
                    continue;
                }
                self.report.counters.datagrams_in += 1;
                self.report.counters.bytes_in += len as u64;
                self.shared.datagrams_in.fetch_add(1, Relaxed);
                let now = self.shared.now_us();
                if let Some(c) = self.users[li].client.as_mut() {
                    c.handle_datagram(Instant::from_micros(now), bytes);
                }
                let before = self.deliveries;
                self.service(li, now);
                if self.deliveries == before + 1 {
                    self.report.sizes.record(len as u64);
                }
            }
        }
        true
    }

    /// Hands the client's events, then its datagrams, and files its timer.
    fn service(&mut self, li: usize, now: u64) {
        // One event at a time, straight from the client: what handling an
        // event makes the client queue comes in the same loop. Chat
        // messages are read borrowed: only their stamp is kept.
        while let Some(ev) = self.users[li]
            .client
            .as_mut()
            .and_then(|c| c.poll_event_ref())
        {
            match ev {
                EventRef::Chat(chat) => {
                    // A room's history, replayed on joining, is not a
                    // delivery.
                    if !matches!(chat.kind, ChatKind::Room { history: true, .. }) {
                        let stamp = Stamp::parse(chat.text);
                        self.delivery(li, stamp, now);
                    }
                }
                EventRef::Event(ev) => self.event(li, ev, now),
            }
        }
        if self.unpublished > 0 {
            self.shared
                .delivered
                .fetch_add(std::mem::take(&mut self.unpublished), Relaxed);
            self.shared.last_delivery_us.fetch_max(now, Relaxed);
        }
        let server = self.node_of(self.users[li].global);
        let u = &mut self.users[li];
        let Some(c) = u.client.as_mut() else {
            return;
        };
        let t = Instant::from_micros(now);
        let d = &mut self.outgoing;
        while c.poll_transmit(t, d).is_some() {
            self.report.counters.datagrams_out += 1;
            if u.socket.send_to(d, server).is_err() {
                // The client retransmits what mattered.
                self.report.counters.send_failures += 1;
            }
        }
        match c.poll_timeout() {
            Some(t) => {
                let t = t.as_micros();
                if u.armed != Some(t) {
                    u.armed = Some(t);
                    self.timers.push(Reverse((t, li)));
                }
            }
            None => u.armed = None,
        }
    }

    fn event(&mut self, li: usize, ev: ClientEvent, now: u64) {
        match ev {
            ClientEvent::ServerKey(_)
            | ClientEvent::OperationReady(_)
            | ClientEvent::Online { .. }
            | ClientEvent::Away(_)
            | ClientEvent::AwayReply { .. }
            | ClientEvent::Whois { .. }
            | ClientEvent::ModOk { .. }
            | ClientEvent::Notice { .. }
            | ClientEvent::AuditLog(_)
            | ClientEvent::Kicked { .. }
            | ClientEvent::RoomRole { .. }
            | ClientEvent::MemberMuted { .. }
            | ClientEvent::RoomMode { .. }
            | ClientEvent::RoomRoles { .. } => {}
            ClientEvent::PasswordRequired { .. } => {
                let pw = self.server.password.clone();
                if let Some(c) = self.users[li].client.as_mut()
                    && let Err(e) = c.submit_password(&pw)
                {
                    self.problem(format!("cannot send the password: {e}"));
                }
            }
            ClientEvent::LoggedIn { .. } => {
                let u = &mut self.users[li];
                if u.state == UserState::LoggingIn {
                    u.state = UserState::LoggedIn;
                    u.logged_in_us = now;
                    self.logging_in -= 1;
                    self.report.login[u.group].record(now.saturating_sub(u.started_us));
                    self.shared.logged_in.fetch_add(1, Relaxed);
                    self.shared.last_login_us.fetch_max(now, Relaxed);
                }
            }
            ClientEvent::LoginFailed { reason, message } => {
                if matches!(reason, LoginFailure::Busy | LoginFailure::StoreFailed) {
                    self.report.counters.busy_retries += 1;
                    let jitter = rand::random::<u64>() % BUSY_RETRY_US;
                    self.retries
                        .push(Reverse((now + BUSY_RETRY_US + jitter, li)));
                } else {
                    let name = self.users[li].name.clone();
                    self.problem(format!("login of {name} failed: {message}"));
                    self.end_login(li);
                    if let Some(c) = self.users[li].client.as_mut() {
                        c.abort();
                    }
                }
            }
            ClientEvent::Direct {
                text,
                offline: true,
                ..
            } => {
                self.report.counters.offline_deliveries += 1;
                let since_login = now.saturating_sub(self.users[li].logged_in_us);
                self.report.after_login.record(since_login);
                self.delivery(li, Stamp::parse(&text), now);
            }
            ClientEvent::RoomJoined { .. } => {
                self.shared.rooms_joined.fetch_add(1, Relaxed);
            }
            // Chat messages delivered live come borrowed (`service`).
            ClientEvent::Public { .. }
            | ClientEvent::Direct { .. }
            | ClientEvent::RoomMessage { .. }
            | ClientEvent::Parted(_)
            | ClientEvent::MemberJoined { .. }
            | ClientEvent::MemberLeft { .. }
            | ClientEvent::RoomList { .. }
            | ClientEvent::Names { .. }
            | ClientEvent::Topic { .. }
            | ClientEvent::HistoryEnd { .. }
            | ClientEvent::Resumed { .. }
            | ClientEvent::BanList { .. }
            | ClientEvent::InviteCode { .. } => {}
            ClientEvent::Said { .. } => {
                self.report.counters.confirmed += 1;
                self.users[li].answered += 1;
                self.shared.confirmed.fetch_add(1, Relaxed);
            }
            ClientEvent::Joined(_) => self.report.counters.joined += 1,
            ClientEvent::Left { .. } => self.report.counters.left += 1,
            ClientEvent::Confirmed {
                recipients, stored, ..
            } => {
                self.report.counters.confirmed += 1;
                self.report.counters.confirmed_recipients += u64::from(recipients);
                self.users[li].answered += 1;
                self.shared.confirmed.fetch_add(1, Relaxed);
                if stored {
                    self.report.counters.stored += 1;
                    self.shared.stored.fetch_add(1, Relaxed);
                }
            }
            ClientEvent::Error { code, message } => {
                let u = &self.users[li];
                if u.state == UserState::LoggedIn && u.per_message > 0 {
                    // A refused message: its deliveries will not come.
                    self.report.counters.refused += 1;
                    self.shared.expected.fetch_sub(u.per_message, Relaxed);
                    self.shared.refused.fetch_add(1, Relaxed);
                    self.users[li].answered += 1;
                }
                self.problem(format!("server error {code:?}: {message}"));
            }
            ClientEvent::Closed(reason) => {
                let u = &mut self.users[li];
                match u.state {
                    UserState::Exiting => {
                        self.shared.exited.fetch_add(1, Relaxed);
                    }
                    UserState::LoggingIn if u.attempts < LOGIN_ATTEMPTS => {
                        // A user whose handshake or login timed out starts
                        // again, as a person would; counted and reported.
                        u.attempts += 1;
                        let name = u.name.clone();
                        let fresh = Client::new(
                            Instant::from_micros(now),
                            self.server.config.clone(),
                            rand::random(),
                            &name,
                        );
                        self.report.counters.login_restarts += 1;
                        self.problem(format!(
                            "a login was started again after: {reason} (see login restarts)"
                        ));
                        match fresh {
                            Ok(c) => self.users[li].client = Some(c),
                            Err(_) => self.end_login(li),
                        }
                        return;
                    }
                    UserState::LoggingIn => {
                        let name = u.name.clone();
                        self.end_login(li);
                        self.problem(format!("{name}: session closed during login: {reason}"));
                    }
                    UserState::LoggedIn => {
                        self.shared.lost_sessions.fetch_add(1, Relaxed);
                        let name = u.name.clone();
                        self.problem(format!("{name}: session lost: {reason}"));
                    }
                    UserState::Waiting | UserState::Done => {}
                }
                self.users[li].state = UserState::Done;
            }
        }
    }

    /// A login that failed for good.
    fn end_login(&mut self, li: usize) {
        if self.users[li].state == UserState::LoggingIn {
            self.logging_in -= 1;
            self.users[li].state = UserState::Done;
            self.shared.login_failed.fetch_add(1, Relaxed);
        }
    }

    fn delivery(&mut self, li: usize, stamp: Option<Stamp>, now: u64) {
        let Some(m) = stamp else {
            self.report.counters.foreign += 1;
            return;
        };
        let seqs = &mut self.users[li].next_seq;
        let i = match seqs.iter().position(|(s, _)| *s == m.sender) {
            Some(i) => i,
            None => {
                seqs.push((m.sender, 0));
                seqs.len() - 1
            }
        };
        let next = &mut seqs[i].1;
        if m.seq < *next {
            self.report.counters.duplicates += 1;
            return;
        }
        if m.seq > *next {
            self.report.counters.gaps += m.seq - *next;
        }
        *next = m.seq + 1;
        if let Some(c) = self.shared.completion.get() {
            let wake = c.on_receipt(m.sender, m.seq);
            if wake != 0
                && let Some(wakers) = self.shared.wakers.get()
            {
                for (id, waker) in wakers.iter().enumerate() {
                    if id < 64 && wake & (1 << id) != 0 {
                        let _ = waker.wake();
                    }
                }
            }
        }
        self.deliveries += 1;
        self.unpublished += 1;
        if let Some(h) = self.report.latency.get_mut(m.phase as usize) {
            h.record(now.saturating_sub(m.sent_us));
        }
    }
}

/// The stamp at the start of a bench message.
#[derive(Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sent_us: u64,
    pub phase: u32,
    pub sender: u32,
    pub seq: u64,
}

impl Stamp {
    /// Reads `t=..;p=..;s=..;n=..;` at the start of `text`. One pass over
    /// the bytes: every receiver reads every message's stamp, and the
    /// bench shares the machine with the server it measures.
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut rest = text.as_bytes();
        let mut next = |key: &[u8]| -> Option<u64> {
            rest = rest.strip_prefix(key)?;
            let mut value: u64 = 0;
            let mut digits = 0;
            while let Some((&b, tail)) = rest.split_first() {
                rest = tail;
                match b {
                    b'0'..=b'9' if digits < 20 => {
                        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                        digits += 1;
                    }
                    b';' if digits > 0 => return Some(value),
                    _ => return None,
                }
            }
            None
        };
        Some(Stamp {
            sent_us: next(b"t=")?,
            phase: u32::try_from(next(b"p=")?).ok()?,
            sender: u32::try_from(next(b"s=")?).ok()?,
            seq: next(b"n=")?,
        })
    }
}

/// The shortest stamp is under this; longer ones make the text longer than
/// `size`.
pub const MIN_MESSAGE: usize = 48;

/// A message of `size` bytes (at least the stamp) stamped with its send
/// time.
pub fn payload(now_us: u64, phase: u32, sender: u32, seq: u64, size: usize) -> String {
    let mut s = format!("t={now_us};p={phase};s={sender};n={seq};");
    while s.len() < size {
        s.push('x');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of datagrams sent in one GSO send comes out of the reads as
    /// the datagrams it was, in order, the shorter last one included; with
    /// GRO (Linux) several of them in one read.
    #[test]
    fn a_coalesced_run_is_read_back_as_its_datagrams() {
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let send_state = quinn_udp::UdpSocketState::new((&sender).into()).unwrap();
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let udp = quinn_udp::UdpSocketState::new((&receiver).into()).unwrap();
        let receiver = UdpSocket::from_std(receiver);

        let sizes = [1200, 1200, 1200, 1200, 1200, 300];
        let datagrams: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i * 31) as u8).collect())
            .collect();
        let run: Vec<u8> = datagrams.concat();
        if send_state.max_gso_segments() >= datagrams.len() {
            let t = quinn_udp::Transmit {
                destination: to,
                ecn: None,
                contents: &run,
                segment_size: Some(1200),
                src_ip: None,
            };
            send_state.try_send((&sender).into(), &t).unwrap();
        } else {
            for d in &datagrams {
                sender.send_to(d, to).unwrap();
            }
        }

        let mut bufs = ReadBufs::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut most_in_one_read = 0;
        let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
        while got.len() < datagrams.len() && std::time::Instant::now() < deadline {
            match bufs.recv(&udp, &receiver) {
                Ok(n) => {
                    for i in 0..n {
                        let (from, bytes) = bufs.get(i);
                        assert_eq!(from, sender.local_addr().unwrap());
                        got.push(bytes.to_vec());
                    }
                    let mut per_read = [0usize; READ_CALL];
                    for &(buf, ..) in &bufs.got {
                        per_read[buf] += 1;
                    }
                    most_in_one_read =
                        most_in_one_read.max(per_read.into_iter().max().unwrap_or(0));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(StdDuration::from_millis(1))
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(got, datagrams);
        if udp.gro_segments() > 1 && send_state.max_gso_segments() >= datagrams.len() {
            assert!(
                most_in_one_read > 1,
                "GRO on both ends, yet every datagram came in a read of its own"
            );
        }
    }

    /// A message stays in flight until its last receiver has it, however
    /// many receipts the other messages got; its slot serves again later.
    #[test]
    fn the_window_counts_messages_not_yet_received_by_everyone() {
        let c = Completion::new(vec![7, 9], 3, 4);
        for seq in 0..3 {
            c.on_send(7, seq);
        }
        c.on_send(9, 0);
        assert_eq!(c.in_flight(), 4);
        // Two receivers have everything; the third lags behind.
        for _ in 0..2 {
            for seq in 0..3 {
                c.on_receipt(7, seq);
            }
            c.on_receipt(9, 0);
        }
        assert_eq!(c.in_flight(), 4);
        c.on_receipt(7, 0);
        c.on_receipt(9, 0);
        assert_eq!(c.in_flight(), 2);
        // A sender that is not counted changes nothing.
        c.on_send(8, 0);
        c.on_receipt(8, 0);
        assert_eq!(c.in_flight(), 2);
        // Sequence 8 takes the slot of 0 again (8 slots per sender).
        c.on_send(7, 8);
        c.on_receipt(7, 8);
        c.on_receipt(7, 8);
        assert_eq!(c.in_flight(), 3);
        c.on_receipt(7, 8);
        assert_eq!(c.in_flight(), 2);
    }

    #[test]
    fn stamps_round_trip() {
        let p = payload(123_456_789, 2, 17, 99, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(
            Stamp::parse(&p),
            Some(Stamp {
                sent_us: 123_456_789,
                phase: 2,
                sender: 17,
                seq: 99
            })
        );
        assert_eq!(Stamp::parse("hello"), None);
        assert_eq!(Stamp::parse("t=1;p=0;s=1;"), None);
        assert_eq!(Stamp::parse("t=1;p=0;s=1;n=;"), None);
        assert_eq!(Stamp::parse("t=1;p=0;s=1;n=2"), None);
        assert_eq!(Stamp::parse("t=1;p=0;s=-1;n=2;"), None);
        assert_eq!(Stamp::parse("t=1;p=4294967296;s=1;n=2;"), None);
        assert_eq!(Stamp::parse("t=99999999999999999999;p=0;s=1;n=2;"), None);
        assert_eq!(
            Stamp::parse("t=18446744073709551615;p=0;s=1;n=2;x"),
            Some(Stamp {
                sent_us: u64::MAX,
                phase: 0,
                sender: 1,
                seq: 2
            })
        );
    }
}
