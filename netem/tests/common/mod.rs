//! A deterministic simulation of one udpchat server and its clients on a
//! virtual clock, connected through the seeded network emulator.
//!
//! [`World`] owns a [`Server`] at [`SERVER`], any number of peers (real
//! [`Client`]s, or [`RawPeer`]s that do the handshake with the public crypto
//! API and then speak the session protocol over a bare reliable channel, for
//! input a `Client` refuses to send), and a [`Network`] between them.
//! Addresses are labels inside the emulator: nothing touches a real network
//! or a real clock. The server's key is fixed ([`SERVER_PRIVATE_KEY`]); its
//! random seed and every client's follow from the test seed.
//!
//! [`World::step`] jumps the clock to the earliest of the network's next
//! delivery, the server's and every peer's `poll_timeout()` and the next
//! password answer, then delivers, answers, handles the timeouts that are
//! due and drains every `poll_transmit` into the network. While doing so it
//! checks, on every step:
//!
//! * the timer property: after a peer's `handle_timeout(now)`, its next
//!   deadline is later than `now` unless it produced a datagram (no timer
//!   that fires early, no busy loop);
//! * a bound on the steps taken at one instant and in one virtual second.
//!
//! Everything observable is recorded: each peer's events with their time, a
//! textual transcript, the server's events, and a digest (optionally the
//! full log) of every datagram sent, so that two runs can be compared byte
//! for byte.
//!
//! Data datagrams are sealed, so the harness keeps a [`Wiretap`]: it knows
//! every seed (the clients' and the server's), replays the endpoints' key
//! derivations with the public crypto API, checks that it derived the very
//! handshake answer the server sent, and so opens every Data datagram of
//! every session, both ways. Segment counts, retransmission counts and the
//! per-segment timing of the tests are taken from these plaintexts.

// Every test file compiles its own copy of this module and uses only a part
// of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use udpchat_core::client::{Client, ClientConfig, ClientEvent, CommandError};
use udpchat_core::crypto::{self, Initiator, ReplayWindow, Rng, StaticKey, Transport};
use udpchat_core::reliable::{Channel, ChannelConfig};
use udpchat_core::server::{
    RateLimit, Request, Response, Server, ServerConfig, ServerEvent, UserRecord, store::MemoryStore,
};
use udpchat_core::session::{self, ClientMessage, Operation, ServerMessage};
use udpchat_core::time::{Duration, Instant};
use udpchat_core::wire::{
    COOKIE_LEN, Datagram, Frame, HEADER_LEN, Header, Initial, Marker, PacketKind,
};
use udpchat_netem::{LinkConfig, Network};

/// The server's address label.
pub const SERVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 65015));

/// The server's private key (fixed: the tests need no secrecy, and a
/// restarted server keeps its key, as a real one does from its key file).
pub const SERVER_PRIVATE_KEY: [u8; 32] = [0x5e; 32];

/// The server's key pair.
pub fn server_key() -> StaticKey {
    StaticKey::from_private(SERVER_PRIVATE_KEY)
}

/// The server configuration of load tests: the defaults, but no limit on
/// messages per session or handshakes per address (those are tested where
/// a test is about them, with `ServerConfig::default()`).
pub fn load_server_config() -> ServerConfig {
    ServerConfig {
        messages: RateLimit::UNLIMITED,
        handshakes: RateLimit::UNLIMITED,
        ..ServerConfig::default()
    }
}

/// Steps allowed at one instant before the harness calls it a busy loop.
pub const MAX_STEPS_PER_INSTANT: u64 = 1_000;
/// Steps allowed within one virtual second (each step is a distinct
/// instant or a burst at one instant).
pub const MAX_STEPS_PER_SECOND: u64 = 20_000;

/// The address label of peer `i`.
pub fn peer_addr(i: usize) -> SocketAddr {
    let i = u16::try_from(i).expect("fewer than 65,536 peers");
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8),
        40_000 + i,
    ))
}

/// Default peer names: alice, bob, carol, dave, erin, then `userN`.
pub fn peer_name(i: usize) -> String {
    const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
    NAMES
        .get(i)
        .map_or_else(|| format!("user{i}"), |n| (*n).to_string())
}

/// The password the harness uses for `name`.
pub fn password_of(name: &str) -> String {
    format!("password of {name}")
}

/// The fake password hash of the simulated user store (no argon2 here).
pub fn fake_hash(password: &str) -> String {
    format!("plain:{password}")
}

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// SplitMix64: the harness's own seeded generator (the clients' and the
/// server's random bytes).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator whose output follows from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// 32 bytes from `rng`, as a driver would take them from the OS.
pub fn random32(rng: &mut SplitMix) -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    out
}

/// FNV-1a, for the digest of every datagram sent.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// The random bytes of server number `generation` of the world seeded with
/// `seed`.
fn server_random(seed: u64, generation: u64) -> [u8; 32] {
    random32(&mut SplitMix::new(
        seed ^ 0x5E2F_E25E_ED00_0000 ^ generation.wrapping_mul(0x9E37_79B9),
    ))
}

/// How to build a [`World`].
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Seeds the network and every endpoint's random bytes.
    pub seed: u64,
    /// The link of every direction (each direction draws its own fate).
    pub link: LinkConfig,
    /// The server's configuration.
    pub server: ServerConfig,
    /// Every client's configuration.
    pub client: ClientConfig,
    /// How long the simulated user store takes to answer a password request.
    pub password_delay: Duration,
    /// Keep every datagram sent (for byte-for-byte comparisons and gap
    /// analysis); the digest is kept either way.
    pub record_datagrams: bool,
    /// Accounts the server knows from the start.
    pub accounts: Vec<UserRecord>,
    /// Where the clock starts.
    pub start: Instant,
    /// The server's processor time per handshake (its X25519 work): after
    /// a call in which it did handshakes, the server is busy that long for
    /// each and handles nothing meanwhile; datagrams for it wait, in order
    /// of arrival, as in a socket's buffer. Zero (the default): the server
    /// takes no time.
    pub handshake_cost: Duration,
}

impl WorldConfig {
    /// Perfect links, default configurations (but the server's message and
    /// handshake rates unlimited: [`load_server_config`]), answers after 5 ms.
    pub fn new(seed: u64) -> Self {
        WorldConfig {
            seed,
            link: LinkConfig::default(),
            server: load_server_config(),
            client: ClientConfig::default(),
            password_delay: ms(5),
            record_datagrams: false,
            accounts: Vec::new(),
            start: Instant::ZERO,
            handshake_cost: Duration::ZERO,
        }
    }

    /// This configuration with `link` on every direction.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// This configuration with `server` for the server.
    pub fn with_server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }

    /// This configuration, with the server busy for `cost` per handshake.
    pub fn with_handshake_cost(mut self, cost: Duration) -> Self {
        self.handshake_cost = cost;
        self
    }

    /// This configuration, recording every datagram.
    pub fn recording(mut self) -> Self {
        self.record_datagrams = true;
        self
    }
}

/// A peer speaking the session protocol over a bare reliable channel: it
/// sends whatever the test queues, valid or not, and keeps what the server
/// sends. It does its own handshake with the public crypto API (Initial,
/// Retry, Initial with the cookie, Handshake), retransmitting the Initial
/// like a client does, then seals and opens its channel's datagrams.
#[derive(Debug)]
pub struct RawPeer {
    /// The channel to the server.
    pub channel: Channel,
    /// Whether the handshake is done.
    pub established: bool,
    /// The server's messages, with when they arrived.
    pub received: Vec<(Instant, ServerMessage)>,
    /// Valid resets received (the server did not know the connection).
    pub resets: u32,
    /// How many of `received` the harness has looked at.
    handled: usize,
    initiator: Initiator,
    cookie: Option<[u8; COOKIE_LEN]>,
    send_at: Instant,
    interval: Duration,
    max_interval: Duration,
    /// The handshake is abandoned at this instant (the idle timeout).
    deadline: Instant,
    transport: Option<Transport>,
    replay: ReplayWindow,
    reset_token: [u8; crypto::RESET_TOKEN_LEN],
}

impl RawPeer {
    /// A raw peer for connection `connection_id` whose ephemeral key comes
    /// from `seed`, starting its handshake at `now`.
    pub fn new(config: ChannelConfig, connection_id: u64, seed: [u8; 32], now: Instant) -> Self {
        RawPeer {
            initiator: Initiator::new(connection_id, seed).expect("a valid initiator"),
            cookie: None,
            send_at: now,
            interval: config.initial_rto,
            max_interval: config.max_rto,
            deadline: now + config.idle_timeout,
            transport: None,
            replay: ReplayWindow::default(),
            reset_token: [0; crypto::RESET_TOKEN_LEN],
            channel: Channel::new(config, connection_id, now),
            established: false,
            received: Vec::new(),
            resets: 0,
            handled: 0,
        }
    }

    /// Queues a session message.
    pub fn send(&mut self, message: &ClientMessage) {
        let marker = match message {
            ClientMessage::Pm { .. } | ClientMessage::Dm { .. } => Marker::Data,
            _ => Marker::Command,
        };
        self.channel
            .send(marker, &session::encode(message))
            .expect("the raw channel accepts the message");
    }

    /// The connection id.
    pub fn connection_id(&self) -> u64 {
        self.channel.connection_id()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.established {
            self.channel.poll_timeout()
        } else if self.send_at < self.deadline {
            Some(self.send_at)
        } else {
            None
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.established {
            self.channel.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match &self.transport {
            Some(t) => {
                let plain = self.channel.poll_transmit(now)?;
                Some(t.seal(&plain).expect("a plaintext datagram seals"))
            }
            None => {
                if now < self.send_at || self.send_at >= self.deadline {
                    return None;
                }
                self.send_at = now + self.interval;
                self.interval = (self.interval + self.interval).min(self.max_interval);
                let initial = Initial {
                    cookie: self.cookie.as_ref().map(|c| &c[..]),
                    msg1: self.initiator.msg1(),
                    issue_id: true,
                };
                Some(initial.encode(self.connection_id()))
            }
        }
    }

    fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(header) = Header::decode(bytes) else {
            return;
        };
        if header.connection_id != self.connection_id() {
            return;
        }
        let body = &bytes[HEADER_LEN..];
        match (header.kind, &self.transport) {
            (PacketKind::Retry, None) => {
                if let Ok(c) = <[u8; COOKIE_LEN]>::try_from(body) {
                    self.cookie = Some(c);
                    self.send_at = now;
                }
            }
            (PacketKind::Handshake, None) => {
                let Ok(est) = self.initiator.finish(body) else {
                    return;
                };
                assert_eq!(&est.server_key, server_key().public());
                let id = est.issued_id.expect("the server issues the connection id");
                self.channel.set_connection_id(id);
                self.transport = Some(est.transport);
                self.reset_token = est.reset_token;
                self.established = true;
                self.channel.restart(now);
            }
            (PacketKind::Data, Some(t)) => {
                let Ok(plain) = t.open(bytes) else {
                    return;
                };
                if !self.replay.is_fresh(header.packet_number) {
                    return;
                }
                self.replay.record(header.packet_number);
                let Ok(d) = Datagram::decode(&plain) else {
                    return;
                };
                self.channel.handle_frames(now, d.frames());
                while let Some(m) = self.channel.recv() {
                    let m: ServerMessage =
                        session::decode(&m).expect("the server sends valid JSON");
                    self.received.push((now, m));
                }
            }
            (PacketKind::Reset, Some(_)) if crypto::ct_eq(&self.reset_token, body) => {
                self.resets += 1;
            }
            _ => {}
        }
    }
}

/// Replays the key derivations of every endpoint to open every sealed
/// datagram: it knows each client's ephemeral seed (the harness chose it)
/// and follows the server's random draws (one for its cookie secret, one per
/// session it opens, in order), checking each derived handshake answer
/// against the one the server really sent.
#[derive(Debug)]
pub struct Wiretap {
    key: StaticKey,
    server_rng: Rng,
    initiators: BTreeMap<u64, Initiator>,
    /// By the connection id of the client's Initials: the server's answer.
    answers: BTreeMap<u64, Vec<u8>>,
    /// By the session's connection id (issued by the server, or the
    /// client's): the transports that open client-to-server (the
    /// responder's) and server-to-client (the initiator's) datagrams.
    sessions: BTreeMap<u64, (Transport, Transport)>,
}

impl Wiretap {
    fn new(server_random: [u8; 32]) -> Self {
        let mut w = Wiretap {
            key: server_key(),
            server_rng: Rng::from_seed(server_random),
            initiators: BTreeMap::new(),
            answers: BTreeMap::new(),
            sessions: BTreeMap::new(),
        };
        w.server_restarted(server_random);
        w
    }

    /// A new server started with `random`.
    fn server_restarted(&mut self, random: [u8; 32]) {
        self.server_rng = Rng::from_seed(random);
        // `Server::new` draws its cookie secret first.
        let _ = self.server_rng.seed();
    }

    /// A client of connection `id` whose handshake seed is `seed`.
    fn client_started(&mut self, id: u64, seed: [u8; 32]) {
        let i = Initiator::new(id, seed).expect("a valid initiator");
        self.initiators.insert(id, i);
    }

    /// Looks at a datagram the server sends: a new handshake answer means
    /// a new session, and one more random draw.
    fn server_sent(&mut self, bytes: &[u8]) {
        let Ok(h) = Header::decode(bytes) else {
            return;
        };
        if h.kind != PacketKind::Handshake {
            return;
        }
        let body = &bytes[HEADER_LEN..];
        let id = h.connection_id;
        if self.answers.get(&id).is_some_and(|a| a == body) {
            return; // A retransmitted answer.
        }
        let initiator = self
            .initiators
            .get(&id)
            .unwrap_or_else(|| panic!("wiretap: a handshake for unknown connection {id:x}"));
        let est = initiator.finish(body).expect("the wiretap finishes");
        // The server draws the handshake's seed, then the id it issues.
        let seed = self.server_rng.seed();
        if let Some(issued) = est.issued_id {
            assert_eq!(
                self.server_rng.next_u64(),
                issued,
                "wiretap: lost track of the server's random draws (connection {id:x})"
            );
        }
        let (responder, msg2) =
            crypto::respond(&self.key, id, seed, initiator.msg1(), est.issued_id)
                .expect("the wiretap's handshake");
        assert!(
            msg2 == body,
            "wiretap: lost track of the server's random draws (connection {id:x})"
        );
        self.answers.insert(id, msg2);
        self.sessions
            .insert(est.issued_id.unwrap_or(id), (responder, est.transport));
    }

    /// The plaintext of a sealed Data datagram, if its session is known.
    fn open(&self, from_server: bool, bytes: &[u8]) -> Option<Vec<u8>> {
        let h = Header::decode(bytes).ok()?;
        if h.kind != PacketKind::Data {
            return None;
        }
        let (responder, initiator) = self.sessions.get(&h.connection_id)?;
        let t = if from_server { initiator } else { responder };
        t.open(bytes).ok()
    }
}

/// What sits at a peer address.
#[derive(Debug)]
pub enum Endpoint {
    /// The real client state machine.
    Client(Box<Client>),
    /// A bare channel driven by the test.
    Raw(Box<RawPeer>),
}

/// One simulated peer.
#[derive(Debug)]
pub struct Peer {
    /// Its username.
    pub name: String,
    /// Its address label.
    pub addr: SocketAddr,
    /// Its state machine.
    pub endpoint: Endpoint,
    /// Its client events with their time (real clients only).
    pub events: Vec<(Instant, ClientEvent)>,
    /// Once set, the peer is no longer driven: it has vanished.
    pub vanished: bool,
    /// When a datagram from the server was last handed to it.
    pub last_heard: Option<Instant>,
}

impl Peer {
    /// The client; panics for a raw peer.
    pub fn client(&self) -> &Client {
        match &self.endpoint {
            Endpoint::Client(c) => c,
            Endpoint::Raw(_) => panic!("{} is a raw peer", self.name),
        }
    }

    /// The client; panics for a raw peer.
    pub fn client_mut(&mut self) -> &mut Client {
        match &mut self.endpoint {
            Endpoint::Client(c) => c,
            Endpoint::Raw(_) => panic!("{} is a raw peer", self.name),
        }
    }

    /// The raw peer; panics for a client.
    pub fn raw(&self) -> &RawPeer {
        match &self.endpoint {
            Endpoint::Raw(r) => r,
            Endpoint::Client(_) => panic!("{} is a client", self.name),
        }
    }

    /// The raw peer; panics for a client.
    pub fn raw_mut(&mut self) -> &mut RawPeer {
        match &mut self.endpoint {
            Endpoint::Raw(r) => r,
            Endpoint::Client(_) => panic!("{} is a client", self.name),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.endpoint {
            Endpoint::Client(c) => c.poll_timeout(),
            Endpoint::Raw(r) => r.poll_timeout(),
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match &mut self.endpoint {
            Endpoint::Client(c) => c.poll_transmit(now),
            Endpoint::Raw(r) => r.poll_transmit(now),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match &mut self.endpoint {
            Endpoint::Client(c) => c.handle_timeout(now),
            Endpoint::Raw(r) => r.handle_timeout(now),
        }
    }

    fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        match &mut self.endpoint {
            Endpoint::Client(c) => c.handle_datagram(now, bytes),
            Endpoint::Raw(r) => r.handle_datagram(now, bytes),
        }
    }
}

/// A datagram as it was handed to the network (lost or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDatagram {
    /// When.
    pub at: Instant,
    /// From where.
    pub from: SocketAddr,
    /// To where.
    pub to: SocketAddr,
    /// The bytes, as sent (sealed, for a Data datagram).
    pub bytes: Vec<u8>,
    /// For a Data datagram, the plaintext (header and frames) the wiretap
    /// opened.
    pub plain: Option<Vec<u8>>,
}

impl SentDatagram {
    /// The packet kind.
    pub fn kind(&self) -> PacketKind {
        Header::decode(&self.bytes)
            .expect("peers send valid headers")
            .kind
    }

    /// Sequence numbers of the segments it carries (none for the handshake
    /// kinds).
    pub fn segments(&self) -> Vec<u32> {
        self.plain.as_deref().map_or_else(Vec::new, segments_of)
    }
}

/// Sequence numbers of the segments of a plaintext Data datagram.
fn segments_of(plain: &[u8]) -> Vec<u32> {
    Datagram::decode(plain)
        .expect("peers send valid datagrams")
        .frames()
        .filter_map(|f| match f {
            Frame::Segment { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

/// A test's choice of datagrams to lose (see [`World::drop_filter`]).
pub type DropFilter = Box<dyn FnMut(&SentDatagram) -> bool>;

/// One server, its peers and the network between them, on a virtual clock.
pub struct World {
    /// The virtual clock.
    pub now: Instant,
    /// The emulated network.
    pub net: Network<SocketAddr>,
    /// The server.
    pub server: Server,
    /// The server's store of rooms, history and offline messages: it
    /// survives [`World::restart_server`], as a file would.
    pub store: MemoryStore,
    /// Once set, the server is no longer driven: it has vanished.
    pub server_vanished: bool,
    /// The peers, by index.
    pub peers: Vec<Peer>,
    /// The server's events with their time.
    pub server_events: Vec<(Instant, ServerEvent)>,
    /// Every event of every peer and of the server, as text, in order.
    pub transcript: Vec<String>,
    /// Every datagram sent, if the configuration asks for it.
    pub log: Vec<SentDatagram>,
    /// Every datagram that came out of the network, with its arrival time,
    /// if the configuration asks for it (whether or not its recipient was
    /// still there to handle it).
    pub arrived: Vec<SentDatagram>,
    /// FNV-1a over time, addresses and bytes of every datagram sent.
    pub digest: u64,
    /// Datagrams handed to the network.
    pub datagrams_sent: u64,
    /// Segments sent, first transmissions and retransmissions.
    pub segments_sent: u64,
    /// Segments sent again (a sequence number at or below the highest one
    /// already sent in that direction of that connection).
    pub retransmissions: u64,
    /// Public and direct messages received by peers.
    pub deliveries: u64,
    /// Confirmations received by peers.
    pub confirms: u64,
    /// When the server last got a datagram from each address.
    pub server_heard: BTreeMap<SocketAddr, Instant>,
    /// When each chat text was handed to a client (for latency).
    pub sent_at: BTreeMap<String, Instant>,
    /// Steps taken.
    pub steps: u64,
    /// `handle_timeout` calls made, on any endpoint.
    pub timeouts: u64,
    /// `handle_timeout` calls made on the server.
    pub server_timeouts: u64,
    /// `handle_timeout` calls after which the deadline had not moved past
    /// `now` although a datagram was produced (allowed, but counted).
    pub stuck_after_output: u64,
    /// Opens every sealed datagram, for the counts and the log.
    pub wiretap: Wiretap,
    /// A test's own loss: a datagram for which this returns true is logged
    /// as sent but never handed to the network.
    pub drop_filter: Option<DropFilter>,
    /// Datagrams the drop filter took.
    pub dropped_by_filter: u64,
    /// Servers started so far (1, plus one per restart).
    pub server_generation: u64,
    /// The server's turns in which it did a handshake (a turn starts with
    /// each `handle_timeout` call, the first with the server).
    pub handshake_turns: u64,
    /// The most handshakes the server did in one turn.
    pub max_handshakes_in_a_turn: u64,
    /// Handshakes in the server's current turn.
    handshakes_this_turn: u64,
    /// Until then the server is busy with handshakes
    /// ([`WorldConfig::handshake_cost`]).
    pub server_busy_until: Instant,
    /// Datagrams that reached the server while it was busy, oldest first.
    server_inbox: std::collections::VecDeque<(SocketAddr, Vec<u8>)>,
    /// The server's handshake count when last looked at.
    server_handshakes: u64,
    config: WorldConfig,
    ids: SplitMix,
    responses: BTreeMap<(Instant, u64), Response>,
    responses_queued: u64,
    highest_seq: BTreeMap<(SocketAddr, SocketAddr, u64), u32>,
    steps_at_instant: u64,
    second: u64,
    steps_in_second: u64,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl World {
    /// A world with a server and no peers yet.
    pub fn new(config: WorldConfig) -> World {
        let mut net = Network::new(config.seed);
        net.set_default_link(config.link);
        let random = server_random(config.seed, 1);
        World {
            now: config.start,
            net,
            server: Server::new(
                config.server.clone(),
                config.accounts.clone(),
                server_key(),
                random,
            ),
            store: MemoryStore::default(),
            wiretap: Wiretap::new(random),
            drop_filter: None,
            dropped_by_filter: 0,
            server_generation: 1,
            handshake_turns: 0,
            max_handshakes_in_a_turn: 0,
            handshakes_this_turn: 0,
            server_busy_until: config.start,
            server_inbox: std::collections::VecDeque::new(),
            server_handshakes: 0,
            server_vanished: false,
            peers: Vec::new(),
            server_events: Vec::new(),
            transcript: Vec::new(),
            log: Vec::new(),
            arrived: Vec::new(),
            digest: FNV_OFFSET,
            datagrams_sent: 0,
            segments_sent: 0,
            retransmissions: 0,
            deliveries: 0,
            confirms: 0,
            server_heard: BTreeMap::new(),
            sent_at: BTreeMap::new(),
            steps: 0,
            timeouts: 0,
            server_timeouts: 0,
            stuck_after_output: 0,
            ids: SplitMix::new(config.seed ^ 0x5EED_C0DE_1D5E_ED00),
            config,
            responses: BTreeMap::new(),
            responses_queued: 0,
            highest_seq: BTreeMap::new(),
            steps_at_instant: 0,
            second: 0,
            steps_in_second: 0,
        }
    }

    /// A world with `n` clients named by [`peer_name`], already started
    /// (their first datagram is in the network).
    pub fn with_clients(config: WorldConfig, n: usize) -> World {
        let mut w = World::new(config);
        for i in 0..n {
            w.add_client(&peer_name(i));
        }
        w
    }

    /// Starts a client; returns its index.
    pub fn add_client(&mut self, name: &str) -> usize {
        let config = self.config.client.clone();
        self.add_client_with(name, config)
    }

    /// Starts a client with its own configuration; returns its index.
    pub fn add_client_with(&mut self, name: &str, config: ClientConfig) -> usize {
        let addr = peer_addr(self.peers.len());
        self.add_client_at(name, addr, config)
    }

    /// Starts a client at `addr` (several may share an IP address, as behind
    /// a NAT, with different ports); returns its index.
    pub fn add_client_at(&mut self, name: &str, addr: SocketAddr, config: ClientConfig) -> usize {
        let random = random32(&mut self.ids);
        let client = Client::new(self.now, config, random, name).expect("a valid username");
        // `Client::new` draws the connection id, then the handshake seed.
        let mut rng = Rng::from_seed(random);
        let id = rng.next_u64();
        assert_eq!(
            id,
            client.connection_id(),
            "the client's derivation changed"
        );
        self.wiretap.client_started(id, rng.seed());
        self.add_peer(name, addr, Endpoint::Client(Box::new(client)))
    }

    /// Starts a raw peer that sends `User { name }` and answers the password
    /// request itself; returns its index.
    pub fn add_raw_peer(&mut self, name: &str, channel: ChannelConfig) -> usize {
        let mut rng = Rng::from_seed(random32(&mut self.ids));
        let id = rng.next_u64();
        let seed = rng.seed();
        self.wiretap.client_started(id, seed);
        let mut raw = RawPeer::new(channel, id, seed, self.now);
        raw.send(&ClientMessage::User {
            name: name.to_string(),
        });
        let addr = peer_addr(self.peers.len());
        self.add_peer(name, addr, Endpoint::Raw(Box::new(raw)))
    }

    /// Starts a raw peer at `addr` that completes the handshake and then
    /// says nothing (until the test makes it); returns its index.
    pub fn add_silent_peer_at(&mut self, name: &str, addr: SocketAddr) -> usize {
        let mut rng = Rng::from_seed(random32(&mut self.ids));
        let id = rng.next_u64();
        let seed = rng.seed();
        self.wiretap.client_started(id, seed);
        let raw = RawPeer::new(ChannelConfig::default(), id, seed, self.now);
        self.add_peer(name, addr, Endpoint::Raw(Box::new(raw)))
    }

    fn add_peer(&mut self, name: &str, addr: SocketAddr, endpoint: Endpoint) -> usize {
        assert!(
            self.peers.iter().all(|p| p.addr != addr || p.vanished),
            "{addr} is taken"
        );
        let i = self.peers.len();
        self.peers.push(Peer {
            name: name.to_string(),
            addr,
            endpoint,
            events: Vec::new(),
            vanished: false,
            last_heard: None,
        });
        self.flush();
        i
    }

    /// Index of the peer called `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.peers
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// Peer `i`'s client.
    pub fn client(&self, i: usize) -> &Client {
        self.peers[i].client()
    }

    /// The configuration the world was built with.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// The earliest instant at which anything happens, if anything will.
    pub fn next_wakeup(&mut self) -> Option<Instant> {
        let mut next = self.net.next_delivery();
        // What the server has to do waits while it is busy.
        let busy = self.server_busy_until;
        if !self.server_vanished {
            next = earliest(next, self.server.poll_timeout().map(|t| t.max(busy)));
            if !self.server_inbox.is_empty() {
                next = earliest(next, Some(busy));
            }
        }
        for p in &self.peers {
            if !p.vanished {
                next = earliest(next, p.poll_timeout());
            }
        }
        earliest(next, self.responses.keys().next().map(|k| k.0.max(busy)))
    }

    /// Whether the server is free to handle its next input at `now`.
    fn server_free(&self) -> bool {
        !self.server_vanished && self.server_busy_until <= self.now
    }

    /// Counts the handshakes the server did in its last call, in its turn
    /// and in the time it is busy.
    fn charge_server(&mut self) {
        let done = self.server.stats().handshakes;
        let new = done.saturating_sub(self.server_handshakes);
        self.server_handshakes = done;
        if new > 0 {
            if self.handshakes_this_turn == 0 {
                self.handshake_turns += 1;
            }
            self.handshakes_this_turn += new;
            self.max_handshakes_in_a_turn =
                self.max_handshakes_in_a_turn.max(self.handshakes_this_turn);
            let cost = Duration::from_micros(self.config.handshake_cost.as_micros() * new);
            self.server_busy_until = self.server_busy_until.max(self.now) + cost;
        }
    }

    /// Hands the server the datagrams that wait for it, while it is free.
    fn serve_inbox(&mut self) -> bool {
        let mut served = false;
        while self.server_free() {
            let Some((from, bytes)) = self.server_inbox.pop_front() else {
                break;
            };
            served = true;
            let now = self.now;
            self.server_heard.insert(from, now);
            self.server.handle_datagram(now, from, &bytes);
            self.charge_server();
            self.flush();
        }
        served
    }

    /// Moves the clock to the next wakeup and handles everything due then.
    /// Returns the new time, or `None` (leaving the clock alone) when
    /// nothing is scheduled at all.
    pub fn step(&mut self) -> Option<Instant> {
        let next = self.next_wakeup()?;
        // A deadline in the past is due now.
        self.advance(next.max(self.now));
        self.process_due();
        Some(self.now)
    }

    fn advance(&mut self, to: Instant) {
        assert!(to >= self.now, "the clock never goes back");
        self.steps += 1;
        if to == self.now {
            self.steps_at_instant += 1;
            assert!(
                self.steps_at_instant <= MAX_STEPS_PER_INSTANT,
                "busy loop: {} steps at {:?} without the clock moving",
                self.steps_at_instant,
                self.now
            );
        } else {
            self.steps_at_instant = 0;
        }
        let second = to.as_micros() / 1_000_000;
        if second != self.second {
            self.second = second;
            self.steps_in_second = 0;
        }
        self.steps_in_second += 1;
        assert!(
            self.steps_in_second <= MAX_STEPS_PER_SECOND,
            "busy loop: more than {MAX_STEPS_PER_SECOND} steps in virtual second {second}"
        );
        self.now = to;
    }

    /// Runs every step due at or before `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while let Some(next) = self.next_wakeup() {
            if next > t {
                break;
            }
            self.step();
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Steps until `done` holds (checked before every step) or the clock
    /// would pass `deadline`; returns whether `done` held.
    pub fn run_until_cond(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&World) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            match self.next_wakeup() {
                Some(next) if next <= deadline => {
                    self.step();
                }
                _ => {
                    if deadline > self.now {
                        self.now = deadline;
                    }
                    return done(self);
                }
            }
        }
    }

    /// Runs until every non-raw, non-vanished client is logged in; panics
    /// after `timeout`.
    pub fn login_all(&mut self, timeout: Duration) {
        let deadline = self.now + timeout;
        let ok = self.run_until_cond(deadline, |w| {
            w.peers.iter().all(|p| match &p.endpoint {
                Endpoint::Client(c) => p.vanished || c.is_logged_in(),
                Endpoint::Raw(r) => r
                    .received
                    .iter()
                    .any(|(_, m)| matches!(m, ServerMessage::LoginOk { .. })),
            })
        });
        if !ok {
            let stuck: Vec<String> = self
                .peers
                .iter()
                .filter_map(|p| match &p.endpoint {
                    Endpoint::Client(c) if !p.vanished && !c.is_logged_in() => Some(format!(
                        "{} (handshake done: {}, closed: {:?})",
                        p.name,
                        c.is_established(),
                        c.closed()
                    )),
                    Endpoint::Raw(r)
                        if !r
                            .received
                            .iter()
                            .any(|(_, m)| matches!(m, ServerMessage::LoginOk { .. })) =>
                    {
                        Some(format!(
                            "{} (raw; handshake done: {})",
                            p.name, r.established
                        ))
                    }
                    _ => None,
                })
                .collect();
            panic!(
                "not everyone logged in by {deadline:?}: {}",
                stuck.join(", ")
            );
        }
    }

    /// Sends a public message from peer `i`: `PM`, then the text, back to
    /// back (the channel keeps them in order).
    pub fn send_pm(&mut self, i: usize, text: &str) -> Result<(), CommandError> {
        let c = self.peers[i].client_mut();
        c.request_operation(Operation::PM)?;
        c.send_public(text)?;
        self.sent_at.insert(text.to_string(), self.now);
        self.flush();
        Ok(())
    }

    /// Sends a direct message from peer `i` to the user `to`.
    pub fn send_dm(&mut self, i: usize, to: &str, text: &str) -> Result<(), CommandError> {
        let c = self.peers[i].client_mut();
        c.request_operation(Operation::DM)?;
        c.send_direct(to, text)?;
        self.sent_at.insert(text.to_string(), self.now);
        self.flush();
        Ok(())
    }

    /// Queues a message on raw peer `i`'s channel and sends what is ready.
    pub fn raw_send(&mut self, i: usize, message: &ClientMessage) {
        self.peers[i].raw_mut().send(message);
        self.flush();
    }

    /// Runs `f` on peer `i`'s client at the current instant, then sends
    /// what is ready.
    pub fn with_client<T>(&mut self, i: usize, f: impl FnOnce(&mut Client) -> T) -> T {
        let out = f(self.peers[i].client_mut());
        self.flush();
        out
    }

    /// Peer `i` stops: it is no longer driven and what arrives for it is
    /// dropped, like a process killed without a word.
    pub fn vanish_peer(&mut self, i: usize) {
        self.peers[i].vanished = true;
        self.record(format!("{} vanishes", self.peers[i].name));
    }

    /// The server stops, like a process killed without a word.
    pub fn vanish_server(&mut self) {
        self.server_vanished = true;
        self.record("server vanishes".to_string());
    }

    /// A new server process starts at [`SERVER`] with the same key (and the
    /// configured accounts, its user store) but none of the old one's
    /// sessions, as after a crash and restart.
    pub fn restart_server(&mut self) {
        self.server_generation += 1;
        let random = server_random(self.config.seed, self.server_generation);
        self.server = Server::new(
            self.config.server.clone(),
            self.config.accounts.clone(),
            server_key(),
            random,
        );
        self.server
            .restore(self.store.snapshot(self.config.server.room_memory()));
        self.wiretap.server_restarted(random);
        self.server_vanished = false;
        self.server_inbox.clear();
        self.server_handshakes = 0;
        self.handshakes_this_turn = 0;
        self.server_busy_until = self.now;
        self.record("server restarts".to_string());
    }

    /// Peer `i`'s address changes to `addr` (a NAT rebinding): it sends
    /// from `addr` from now on, and what is sent to its old address is lost.
    pub fn rebind_peer(&mut self, i: usize, addr: SocketAddr) {
        let old = std::mem::replace(&mut self.peers[i].addr, addr);
        self.record(format!("{} moves from {old} to {addr}", self.peers[i].name));
    }

    /// Drops everything between peer `i` and the server, both ways, from now
    /// on (datagrams already in flight still arrive). Both ends keep running.
    pub fn blackhole_peer(&mut self, i: usize) {
        let addr = self.peers[i].addr;
        self.net
            .set_link_both(addr, SERVER, LinkConfig::blackholed());
        self.record(format!("{} blackholed", self.peers[i].name));
    }

    /// The data events (public and direct messages) peer `i` received.
    pub fn messages_of(&self, i: usize) -> Vec<(Instant, Received)> {
        self.peers[i]
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                ClientEvent::Public { from, text, .. } => Some((
                    *t,
                    Received {
                        direct: false,
                        from: from.clone(),
                        text: text.clone(),
                    },
                )),
                ClientEvent::Direct { from, text, .. } => Some((
                    *t,
                    Received {
                        direct: true,
                        from: from.clone(),
                        text: text.clone(),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// The datagrams sent from `from` to `to`, from the log.
    pub fn sent_between(&self, from: SocketAddr, to: SocketAddr) -> Vec<&SentDatagram> {
        assert!(
            self.config.record_datagrams,
            "needs WorldConfig::recording()"
        );
        self.log
            .iter()
            .filter(|d| d.from == from && d.to == to)
            .collect()
    }

    fn record(&mut self, line: String) {
        let t = self.now.as_micros();
        self.transcript
            .push(format!("{}.{:06} {line}", t / 1_000_000, t % 1_000_000));
    }

    /// Delivers, answers and times out everything due at `now`, until
    /// nothing more is.
    fn process_due(&mut self) {
        let now = self.now;
        loop {
            let mut progressed = false;
            while let Some(d) = self.net.poll_deliver(now) {
                progressed = true;
                if self.config.record_datagrams {
                    let plain = self.wiretap.open(d.from == SERVER, &d.bytes);
                    self.arrived.push(SentDatagram {
                        at: now,
                        from: d.from,
                        to: d.to,
                        bytes: d.bytes.clone(),
                        plain,
                    });
                }
                if d.to == SERVER {
                    if !self.server_vanished {
                        self.server_inbox.push_back((d.from, d.bytes));
                        self.serve_inbox();
                        continue;
                    }
                } else if let Some(p) = self
                    .peers
                    .iter_mut()
                    .find(|p| p.addr == d.to && !p.vanished)
                {
                    p.last_heard = Some(now);
                    p.handle_datagram(now, &d.bytes);
                }
                self.flush();
            }
            progressed |= self.serve_inbox();
            while self.server_vanished || self.server_free() {
                let Some(entry) = self.responses.first_entry() else {
                    break;
                };
                if entry.key().0 > now {
                    break;
                }
                let response = entry.remove();
                progressed = true;
                if !self.server_vanished {
                    self.server.handle_response(now, response);
                    self.charge_server();
                }
                self.flush();
            }
            if self.server_free() && self.server.poll_timeout().is_some_and(|t| t <= now) {
                progressed = true;
                self.timeouts += 1;
                self.server_timeouts += 1;
                self.handshakes_this_turn = 0;
                self.server.handle_timeout(now);
                self.charge_server();
                let sent = self.drain_server();
                let next = self.server.poll_timeout();
                self.check_timer("server", now, sent, next);
                self.flush();
            }
            for i in 0..self.peers.len() {
                if self.peers[i].vanished || self.peers[i].poll_timeout().is_none_or(|t| t > now) {
                    continue;
                }
                progressed = true;
                self.timeouts += 1;
                self.peers[i].handle_timeout(now);
                let sent = self.drain_peer(i);
                let next = self.peers[i].poll_timeout();
                let who = self.peers[i].name.clone();
                self.check_timer(&who, now, sent, next);
                self.flush();
            }
            if !progressed {
                break;
            }
            self.steps_at_instant += 1;
            assert!(
                self.steps_at_instant <= MAX_STEPS_PER_INSTANT,
                "busy loop: {} rounds at {now:?}",
                self.steps_at_instant
            );
        }
    }

    fn check_timer(&mut self, who: &str, now: Instant, sent: usize, next: Option<Instant>) {
        if next.is_some_and(|t| t <= now) {
            assert!(
                sent > 0,
                "{who}: after handle_timeout({now:?}) nothing was sent and the next \
                 deadline is {next:?}, not later than now: a timer that fires early \
                 or a busy loop"
            );
            self.stuck_after_output += 1;
        }
    }

    /// Sends every datagram the server has ready; returns how many.
    fn drain_server(&mut self) -> usize {
        if self.server_vanished {
            return 0;
        }
        let mut n = 0;
        while let Some(t) = self.server.poll_transmit(self.now) {
            n += 1;
            self.transmit(SERVER, t.to, t.bytes);
        }
        while let Some(r) = self.server.poll_request() {
            if let Some(response) = self.store.answer(&r) {
                self.server.handle_response(self.now, response);
                continue;
            }
            let response = match r {
                Request::Store { .. } | Request::History { .. } => continue,
                Request::Register { id, password, .. } => Response::Registered {
                    id,
                    result: Ok(fake_hash(&password)),
                },
                Request::Verify {
                    id,
                    password,
                    password_hash,
                    ..
                } => Response::Verified {
                    id,
                    ok: password_hash == fake_hash(&password),
                },
            };
            self.responses_queued += 1;
            self.responses.insert(
                (self.now + self.config.password_delay, self.responses_queued),
                response,
            );
        }
        while let Some(e) = self.server.poll_event() {
            self.record(format!("server {e:?}"));
            self.server_events.push((self.now, e));
        }
        n
    }

    /// Sends every datagram peer `i` has ready and takes its events;
    /// returns how many datagrams. Answers password requests.
    fn drain_peer(&mut self, i: usize) -> usize {
        if self.peers[i].vanished {
            return 0;
        }
        let now = self.now;
        let addr = self.peers[i].addr;
        let mut n = 0;
        loop {
            while let Some(bytes) = self.peers[i].poll_transmit(now) {
                n += 1;
                self.transmit(addr, SERVER, bytes);
            }
            let mut acted = false;
            let name = self.peers[i].name.clone();
            match &mut self.peers[i].endpoint {
                Endpoint::Client(c) => {
                    let mut events = Vec::new();
                    while let Some(e) = c.poll_event() {
                        if let ClientEvent::ServerKey(key) = &e {
                            assert_eq!(
                                key,
                                server_key().public(),
                                "{name} was shown another server key"
                            );
                        }
                        if matches!(e, ClientEvent::PasswordRequired { .. }) {
                            c.submit_password(&password_of(&name))
                                .expect("the password is accepted");
                            acted = true;
                        }
                        events.push(e);
                    }
                    for e in events {
                        match &e {
                            ClientEvent::Public { .. } | ClientEvent::Direct { .. } => {
                                self.deliveries += 1;
                            }
                            ClientEvent::Confirmed { .. } => self.confirms += 1,
                            _ => {}
                        }
                        self.record(format!("{name} {e:?}"));
                        self.peers[i].events.push((now, e));
                    }
                }
                Endpoint::Raw(r) => {
                    // Answer a password request that arrived since the last
                    // drain; record what arrived.
                    let new: Vec<ServerMessage> = r.received[r.handled..]
                        .iter()
                        .map(|(_, m)| m.clone())
                        .collect();
                    r.handled = r.received.len();
                    for m in &new {
                        if matches!(m, ServerMessage::PasswordRequired { .. }) {
                            r.send(&ClientMessage::Password {
                                device: None,
                                password: password_of(&name),
                                resume: Vec::new(),
                            });
                            acted = true;
                        }
                    }
                    for m in new {
                        self.record(format!("{name} (raw) {m:?}"));
                    }
                }
            }
            if !acted {
                break;
            }
        }
        n
    }

    /// Sends everything every endpoint has ready.
    pub fn flush(&mut self) {
        self.drain_server();
        for i in 0..self.peers.len() {
            self.drain_peer(i);
        }
        // A password answer with no delay is handled within the same step.
    }

    fn transmit(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.datagrams_sent += 1;
        let mut h = fnv(self.digest, &self.now.as_micros().to_be_bytes());
        h = fnv(h, from.to_string().as_bytes());
        h = fnv(h, to.to_string().as_bytes());
        self.digest = fnv(h, &bytes);
        if from == SERVER {
            self.wiretap.server_sent(&bytes);
        }
        let plain = self.wiretap.open(from == SERVER, &bytes);
        if let Some(plain) = &plain {
            let id = Header::decode(plain).map_or(0, |h| h.connection_id);
            let key = (from, to, id);
            for seq in segments_of(plain) {
                self.segments_sent += 1;
                match self.highest_seq.get(&key) {
                    Some(&top) if seq <= top => self.retransmissions += 1,
                    _ => {
                        self.highest_seq.insert(key, seq);
                    }
                }
            }
        }
        let sent = SentDatagram {
            at: self.now,
            from,
            to,
            bytes,
            plain,
        };
        let dropped = self.drop_filter.as_mut().is_some_and(|f| f(&sent));
        if dropped {
            self.dropped_by_filter += 1;
            self.record(format!("dropped by the test: {from} -> {to}"));
        }
        if self.config.record_datagrams {
            self.log.push(sent.clone());
        }
        if !dropped {
            self.net.send(self.now, from, to, sent.bytes);
        }
    }
}

/// A public or direct message as a peer received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// True for a direct message.
    pub direct: bool,
    /// The sender.
    pub from: String,
    /// The text.
    pub text: String,
}

/// One message of a [`Plan`].
#[derive(Debug, Clone)]
pub struct Msg {
    /// Index of the sending client.
    pub sender: usize,
    /// The sender's count of its messages, from 0.
    pub seq: u32,
    /// For a direct message, the recipient's index.
    pub to: Option<usize>,
    /// The text: `"sender:seq"`, maybe followed by a space and filler.
    pub text: String,
}

/// A deterministic workload: who sends what to whom, in which order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Number of clients (indices `0..clients`).
    pub clients: usize,
    /// The messages in sending order.
    pub msgs: Vec<Msg>,
}

/// What running a [`Plan`] took.
#[derive(Debug, Clone, Copy)]
pub struct PlanRun {
    /// When the first message was handed to a client.
    pub first_send: Instant,
    /// When the last message was handed to a client.
    pub last_send: Instant,
    /// When the last delivery or confirmation arrived.
    pub done: Instant,
}

impl Plan {
    /// `messages` messages from `clients` clients in turn; about one in
    /// three is a direct message to another client, the rest are public.
    /// Some carry filler so that lengths vary.
    pub fn mixed(clients: usize, messages: usize) -> Plan {
        assert!(clients >= 2);
        let mut seqs = vec![0u32; clients];
        let msgs = (0..messages)
            .map(|k| {
                let sender = k % clients;
                let seq = seqs[sender];
                seqs[sender] += 1;
                let round = k / clients;
                let to =
                    (round % 3 == 1).then(|| (sender + 1 + (round / 3) % (clients - 1)) % clients);
                let mut text = format!("{}:{seq}", peer_name(sender));
                if k % 4 == 0 {
                    text.push(' ');
                    text.extend((0..(k * 7) % 120).map(|j| (b'a' + (j % 26) as u8) as char));
                }
                Msg {
                    sender,
                    seq,
                    to,
                    text,
                }
            })
            .collect();
        Plan { clients, msgs }
    }

    /// How many public and direct messages the recipients should get.
    pub fn expected_deliveries(&self) -> u64 {
        self.msgs
            .iter()
            .map(|m| {
                if m.to.is_some() {
                    1
                } else {
                    self.clients as u64 - 1
                }
            })
            .sum()
    }

    /// Sends the plan's messages one every `interval` from now, then runs
    /// until every delivery and confirmation arrived; panics if that takes
    /// longer than `timeout` after the first send.
    pub fn run(&self, w: &mut World, interval: Duration, timeout: Duration) -> PlanRun {
        self.run_with(w, interval, timeout, |_, _| {})
    }

    /// [`Plan::run`], calling `before(w, k)` before message `k` is sent.
    pub fn run_with(
        &self,
        w: &mut World,
        interval: Duration,
        timeout: Duration,
        mut before: impl FnMut(&mut World, usize),
    ) -> PlanRun {
        let base_deliveries = w.deliveries;
        let base_confirms = w.confirms;
        let first_send = w.now;
        let mut last_send = first_send;
        for (k, m) in self.msgs.iter().enumerate() {
            w.run_until(first_send + interval.saturating_mul(k as u64));
            before(w, k);
            last_send = w.now;
            let result = match m.to {
                Some(to) => {
                    let to = w.peers[to].name.clone();
                    w.send_dm(m.sender, &to, &m.text)
                }
                None => w.send_pm(m.sender, &m.text),
            };
            result.unwrap_or_else(|e| panic!("sending {}: {e}", m.text));
        }
        let want_deliveries = base_deliveries + self.expected_deliveries();
        let want_confirms = base_confirms + self.msgs.len() as u64;
        let deadline = first_send + timeout;
        let done = w.run_until_cond(deadline, |w| {
            w.deliveries >= want_deliveries && w.confirms >= want_confirms
        });
        assert!(
            done,
            "by {deadline:?}: {} of {} deliveries, {} of {} confirmations",
            w.deliveries - base_deliveries,
            self.expected_deliveries(),
            w.confirms - base_confirms,
            self.msgs.len()
        );
        PlanRun {
            first_send,
            last_send,
            done: w.now,
        }
    }

    /// Checks that every recipient got each message meant for it exactly
    /// once, in each sender's order, as the right kind; that nobody got
    /// anything else; and that each sender got one confirmation per message,
    /// in order, with the right recipients.
    pub fn check(&self, w: &World) {
        for r in 0..self.clients {
            let got = w.messages_of(r);
            for s in 0..self.clients {
                let sender = &w.peers[s].name;
                let expected: Vec<(bool, &str)> = self
                    .msgs
                    .iter()
                    .filter(|m| m.sender == s && m.sender != r && m.to.is_none_or(|t| t == r))
                    .map(|m| (m.to.is_some(), m.text.as_str()))
                    .collect();
                let actual: Vec<(bool, &str)> = got
                    .iter()
                    .filter(|(_, m)| &m.from == sender)
                    .map(|(_, m)| (m.direct, m.text.as_str()))
                    .collect();
                if expected != actual {
                    let first = expected
                        .iter()
                        .zip(&actual)
                        .position(|(a, b)| a != b)
                        .unwrap_or(expected.len().min(actual.len()));
                    panic!(
                        "{} got {} messages from {sender}, expected {}; first difference \
                         at #{first}: got {:?}, expected {:?}",
                        w.peers[r].name,
                        actual.len(),
                        expected.len(),
                        actual.get(first),
                        expected.get(first)
                    );
                }
            }
            let strangers = got
                .iter()
                .filter(|(_, m)| !(0..self.clients).any(|s| w.peers[s].name == m.from))
                .count();
            assert_eq!(
                strangers, 0,
                "{} got messages from unknown senders",
                w.peers[r].name
            );

            let confirms: Vec<(Operation, Option<String>, u32)> = w.peers[r]
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    ClientEvent::Confirmed {
                        op, to, recipients, ..
                    } => Some((*op, to.clone(), *recipients)),
                    _ => None,
                })
                .collect();
            let expected: Vec<(Operation, Option<String>, u32)> = self
                .msgs
                .iter()
                .filter(|m| m.sender == r)
                .map(|m| match m.to {
                    Some(t) => (Operation::DM, Some(w.peers[t].name.clone()), 1),
                    None => (Operation::PM, None, self.clients as u32 - 1),
                })
                .collect();
            assert_eq!(
                confirms, expected,
                "{}'s confirmations differ from its messages",
                w.peers[r].name
            );
        }
    }
}

/// Percentile `p` (0..=100) of sorted `values` (nearest rank).
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The acceptance link: 30 % loss, 10 % duplication, 10 ms delay with
/// 0–200 ms jitter, and 5 % of datagrams held back up to 100 ms more.
pub fn harsh_link() -> udpchat_netem::LinkConfig {
    udpchat_netem::LinkConfig::lossy(0.3)
        .with_duplicate(0.1)
        .with_delay(ms(10))
        .with_jitter(ms(200))
        .with_reorder(0.05, ms(100))
}
