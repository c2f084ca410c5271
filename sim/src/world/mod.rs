//! The world: one server, its peers and the network, on a virtual clock.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use udpchat_core::client::{Client, ClientConfig, ClientEvent, CommandError};
use udpchat_core::crypto::Rng;
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::store::MemoryStore;
use udpchat_core::server::{Response, Server, ServerConfig, ServerEvent, UserRecord};
use udpchat_core::session::{ClientMessage, Operation, ServerMessage};
use udpchat_core::time::{Duration, Instant};
use udpchat_core::wire::{Datagram, Frame, Header, PacketKind};

use udpchat_netem::{LinkConfig, Network};

use crate::raw::RawPeer;
use crate::wiretap::Wiretap;
use crate::{
    FNV_OFFSET, SERVER, SplitMix, load_server_config, ms, peer_addr, peer_name, random32,
    server_key, server_random,
};

mod drive;

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
    /// Accounts the server knows from the start: the simulated user store.
    /// Account changes (suspensions) are applied to them as a user store
    /// would, so a restarted server starts with them; accounts registered
    /// during the run are not added.
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
            Endpoint::Client(c) => {
                let mut buf = Vec::new();
                c.poll_transmit(now, &mut buf).map(|_| buf)
            }
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
    server_inbox: VecDeque<(SocketAddr, Vec<u8>)>,
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
            wiretap: Wiretap::new(server_key(), random),
            drop_filter: None,
            dropped_by_filter: 0,
            server_generation: 1,
            handshake_turns: 0,
            max_handshakes_in_a_turn: 0,
            handshakes_this_turn: 0,
            server_busy_until: config.start,
            server_inbox: VecDeque::new(),
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
