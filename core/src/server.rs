//! The server endpoint: one socket, a table of sessions keyed by connection
//! id, the online list, relaying.
//!
//! Drive it like this (the native `chatserver` does exactly this):
//!
//! ```text
//! loop {
//!     while let Some(t) = server.poll_transmit(now) { socket.send_to(&t.bytes, t.to) }
//!     while let Some(r) = server.poll_request() { workers.submit(r) }        // password work
//!     while let Some(e) = server.poll_event() { log(e) }
//!     wait for a datagram, a worker result, or server.poll_timeout()
//!     server.handle_datagram(now, from, bytes) | server.handle_response(now, r)
//!         | server.handle_timeout(now)
//! }
//! ```

use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::{IpAddr, SocketAddr};

use crate::crypto::{self, CookieKeys, ReplayWindow, Rng, StaticKey, Transport};
use crate::reliable::{Channel, ChannelConfig, ChannelError, SendError};
use crate::session::{
    self, ClientMessage, ErrorCode, LoginFailure, MAX_LISTED, MAX_PASSWORD, Operation,
    ServerMessage, username_key, validate_text, validate_username,
};
use crate::time::{Duration, Instant};
use crate::wire::{
    BASE_DATAGRAM, CloseCode, Datagram, DecodeError, HEADER_LEN, Header, Initial, MAX_DATAGRAM,
    MIN_INITIAL_LEN, Marker, PacketKind, RESET_TOKEN_LEN, encode_simple,
};

/// Most sources tracked by the per-address rate limiters before full
/// buckets are forgotten.
const MAX_TRACKED_SOURCES: usize = 4096;

/// A token bucket's shape: `burst` tokens at once, one more every
/// `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens available at once.
    pub burst: u32,
    /// Time to earn one token back.
    pub interval: Duration,
}

impl RateLimit {
    /// No practical limit (for benchmarks).
    pub const UNLIMITED: RateLimit = RateLimit {
        burst: u32::MAX / 2,
        interval: Duration::from_micros(1),
    };

    /// A burst of `burst`, then `n` per second.
    pub const fn per_second(burst: u32, n: u32) -> RateLimit {
        let n = if n == 0 { 1 } else { n as u64 };
        RateLimit {
            burst,
            interval: Duration::from_micros(1_000_000 / n),
        }
    }

    /// A burst of `burst`, then `n` per minute.
    pub const fn per_minute(burst: u32, n: u32) -> RateLimit {
        let n = if n == 0 { 1 } else { n as u64 };
        RateLimit {
            burst,
            interval: Duration::from_micros(60_000_000 / n),
        }
    }
}

const TOKEN: u64 = 1_000_000;

/// A token bucket, in millionths of a token.
#[derive(Clone, Copy, Debug)]
struct TokenBucket {
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    fn full(now: Instant, limit: RateLimit) -> Self {
        TokenBucket {
            micro_tokens: u64::from(limit.burst) * TOKEN,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant, limit: RateLimit) {
        let elapsed = now.saturating_since(self.last).as_micros();
        let add = elapsed.saturating_mul(TOKEN) / limit.interval.as_micros().max(1);
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(add)
            .min(u64::from(limit.burst) * TOKEN);
        self.last = now;
    }

    fn has(&mut self, now: Instant, limit: RateLimit) -> bool {
        self.refill(now, limit);
        self.micro_tokens >= TOKEN
    }

    fn take(&mut self, now: Instant, limit: RateLimit) -> bool {
        if self.has(now, limit) {
            self.micro_tokens -= TOKEN;
            true
        } else {
            false
        }
    }

    fn is_full(&mut self, now: Instant, limit: RateLimit) -> bool {
        self.refill(now, limit);
        self.micro_tokens >= u64::from(limit.burst) * TOKEN
    }

    /// Whole seconds until one token is back (at least 1).
    fn wait_secs(&self, limit: RateLimit) -> u64 {
        let missing = TOKEN.saturating_sub(self.micro_tokens);
        let micros = (missing as u128 * limit.interval.as_micros() as u128 / TOKEN as u128) as u64;
        micros.div_ceil(1_000_000).max(1)
    }
}

/// Forgets the sources whose buckets are full again.
fn prune<K: Ord + Clone>(map: &mut BTreeMap<K, TokenBucket>, now: Instant, limit: RateLimit) {
    map.retain(|_, b| !b.is_full(now, limit));
}

/// Limits and timers of a server. Each default is stated on its field.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Timers and limits of each session's channel (see [`ChannelConfig`]).
    pub channel: ChannelConfig,
    /// Most sessions at once, logged in or not: 10,000.
    pub max_sessions: usize,
    /// Most password checks and registrations in flight: 256.
    pub max_pending_checks: usize,
    /// Failed password attempts before a session is closed: 5.
    pub max_login_failures: u32,
    /// How long a session lingers after `Bye` or `Shutdown` so that its last
    /// messages are acknowledged: 3 s.
    pub linger: Duration,
    /// Sessions from one IP address: 64.
    pub max_sessions_per_ip: usize,
    /// Sessions that have not logged in yet: 1,000.
    pub max_handshaking: usize,
    /// New sessions per source IP address: a burst of 20, then 5 per
    /// second.
    pub handshakes: RateLimit,
    /// Public and direct messages per session: a burst of 10, then 5 per
    /// second.
    pub messages: RateLimit,
    /// Failed logins, counted per account and per source IP address: 5,
    /// then one more every 12 s (5 per minute).
    pub login_failures: RateLimit,
    /// A session that has not logged in this long after its handshake is
    /// closed: 60 s.
    pub login_timeout: Duration,
    /// Most names in an online list (`login_ok`, `online`): 1,000
    /// ([`MAX_LISTED`]); a longer list is cut and carries the count.
    pub max_listed: usize,
    /// Logins and logouts are announced (`joined`, `left`) while at most
    /// this many users are online, the user in question included: 1,000
    /// (as many as an online list holds). In a larger
    /// crowd a notice to everyone for every arrival would cost the server
    /// more than the chat itself.
    pub max_presence: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            channel: ChannelConfig::default(),
            max_sessions: 10_000,
            max_pending_checks: 256,
            max_login_failures: 5,
            linger: Duration::from_secs(3),
            max_sessions_per_ip: 64,
            max_handshaking: 1000,
            handshakes: RateLimit::per_second(20, 5),
            messages: RateLimit::per_second(10, 5),
            login_failures: RateLimit::per_minute(5, 5),
            login_timeout: Duration::from_secs(60),
            max_listed: MAX_LISTED,
            max_presence: MAX_LISTED,
        }
    }
}

/// An account as the user store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The username as registered.
    pub name: String,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: String,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// Identifies a [`Request`] and its [`Response`].
pub type RequestId = u64;

/// Slow work for the driver, off the datagram loop.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Hash `password` and store a new account; answer with
    /// [`Response::Registered`] only once the account is on disk.
    Register {
        /// Echo this in the response.
        id: RequestId,
        /// The username.
        username: String,
        /// The password, to hash.
        password: String,
    },
    /// Check `password` against `password_hash`; answer with
    /// [`Response::Verified`].
    Verify {
        /// Echo this in the response.
        id: RequestId,
        /// The username.
        username: String,
        /// The password offered.
        password: String,
        /// The stored PHC string.
        password_hash: String,
    },
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print passwords.
        match self {
            Request::Register { id, username, .. } => f
                .debug_struct("Register")
                .field("id", id)
                .field("username", username)
                .finish_non_exhaustive(),
            Request::Verify { id, username, .. } => f
                .debug_struct("Verify")
                .field("id", id)
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// The result of a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The account was stored (with its hash) or could not be.
    Registered {
        /// The request's id.
        id: RequestId,
        /// The stored PHC hash, or why storing failed.
        result: Result<String, String>,
    },
    /// Whether the password matched.
    Verified {
        /// The request's id.
        id: RequestId,
        /// True when it matched.
        ok: bool,
    },
    /// The driver could not take the job (its queue is full): the client is
    /// told to try again; no failure is counted.
    Unavailable {
        /// The request's id.
        id: RequestId,
    },
}

/// Why a datagram was dropped without effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// It did not decode.
    Malformed(DecodeError),
    /// It named a session that does not exist and was not an Initial.
    UnknownConnection,
    /// An Initial naming an existing session, from another address.
    AddressMismatch,
    /// An Initial shorter than [`MIN_INITIAL_LEN`].
    InitialTooSmall,
    /// A limit refused a new session (sessions, per address, handshaking),
    /// or the server is shutting down.
    Refused,
    /// The source sent new sessions faster than its rate limit.
    RateLimited,
    /// A kind a client never sends (Retry, Handshake, Reset).
    UnexpectedKind,
    /// The first handshake message was invalid.
    HandshakeFailed,
    /// A Data datagram that did not authenticate with its session's keys.
    Unauthenticated,
    /// A Data datagram whose packet number was seen before.
    Replay,
}

/// Something for the operator's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client opened a session.
    SessionOpened {
        /// The connection id.
        connection_id: u64,
        /// The client's address.
        addr: SocketAddr,
    },
    /// A user logged in.
    LoggedIn {
        /// The username.
        user: String,
        /// From where.
        addr: SocketAddr,
        /// True when the account was just created.
        new_user: bool,
    },
    /// A login failed.
    LoginFailed {
        /// The username tried.
        user: String,
        /// From where.
        addr: SocketAddr,
        /// Why.
        reason: LoginFailure,
    },
    /// A user went offline.
    LoggedOut {
        /// The username.
        user: String,
        /// `"exit"`, `"timeout"`, `"replaced"`, `"too slow"`, `"error"` or
        /// `"shutdown"`.
        reason: &'static str,
    },
    /// A session ended.
    SessionClosed {
        /// The connection id.
        connection_id: u64,
        /// Why, if the channel failed.
        error: Option<ChannelError>,
    },
    /// A datagram was dropped.
    Dropped {
        /// From where.
        from: SocketAddr,
        /// Why.
        reason: DropReason,
    },
    /// An authenticated client moved to a new address.
    Migrated {
        /// The connection id.
        connection_id: u64,
        /// The old address.
        from: SocketAddr,
        /// The new address.
        to: SocketAddr,
    },
    /// A client sent a message the server refused.
    ClientError {
        /// The connection id.
        connection_id: u64,
        /// What was wrong.
        code: ErrorCode,
    },
}

/// Counters of a server, for the status line and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Datagrams handed to [`Server::handle_datagram`].
    pub datagrams_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Datagrams returned by [`Server::poll_transmit`].
    pub datagrams_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Dropped: did not decode.
    pub dropped_malformed: u64,
    /// Dropped: unknown connection.
    pub dropped_unknown: u64,
    /// Dropped: an Initial naming an existing session from another address.
    pub dropped_spoofed: u64,
    /// Dropped: Initial too small, or refused by a limit.
    pub dropped_refused: u64,
    /// Dropped: a source over its handshake rate.
    pub dropped_rate_limited: u64,
    /// Dropped: did not authenticate.
    pub dropped_unauthenticated: u64,
    /// Dropped: replayed.
    pub dropped_replay: u64,
    /// Retry datagrams sent (cookies to unproven addresses).
    pub retries_sent: u64,
    /// Reset datagrams sent (unknown connections).
    pub resets_sent: u64,
    /// Public or direct messages refused by the per-session rate limit.
    pub messages_rate_limited: u64,
    /// Sessions closed for not logging in within the login timeout.
    pub login_timeouts: u64,
    /// Public messages accepted.
    pub public_messages: u64,
    /// Direct messages delivered.
    pub direct_messages: u64,
    /// Messages queued to recipients (a public message counts once per
    /// recipient).
    pub deliveries: u64,
    /// Successful logins.
    pub logins: u64,
    /// Failed logins.
    pub failed_logins: u64,
}

#[derive(Debug)]
enum SessionState {
    AwaitUser,
    AwaitPassword {
        name: String,
        new_user: bool,
        failures: u32,
    },
    Checking {
        new_user: bool,
        request: RequestId,
        failures: u32,
    },
    LoggedIn {
        name: String,
        op: Option<Operation>,
    },
    Closing {
        until: Instant,
    },
}

#[derive(Debug)]
struct Session {
    addr: SocketAddr,
    channel: Channel,
    transport: Transport,
    replay: ReplayWindow,
    /// The Handshake datagram, kept until the client's first Data datagram
    /// shows it arrived.
    handshake_reply: Option<Vec<u8>>,
    messages: TokenBucket,
    logged_in_once: bool,
    /// Until then the session must log in.
    login_deadline: Instant,
    /// Set when the client moved to an address that has not yet shown it
    /// receives there: bytes the server may still send to it.
    unvalidated: Option<Unvalidated>,
    state: SessionState,
    scheduled: Option<Instant>,
    ready: bool,
    /// Whether the session is in [`Server::urgent`].
    urgent: bool,
    /// The server's login count when this session logged in (0 before):
    /// it is told of the presence changes made since.
    login_seq: u64,
}

/// A presence notice (`joined`, `left`) waiting for the next round.
#[derive(Debug)]
struct Notice {
    /// The login count when it was made: sessions that logged in later
    /// already have it in their online list.
    seq: u64,
    /// The session it is about, which is not told.
    except: u64,
    /// The user it is about (lowercased).
    about: String,
    bytes: Arc<[u8]>,
}

/// A message encoded once into bytes that channels can share.
fn encode_shared(message: &ServerMessage) -> Arc<[u8]> {
    Arc::from(session::encode(message))
}

/// Presence notices go out at once, unless the last round was less than
/// this long ago: then they wait and go out together, so that a storm of
/// logins costs each online user one datagram per round rather than one
/// per login.
pub const PRESENCE_INTERVAL: Duration = Duration::from_millis(100);

/// Anti-amplification toward an address a session moved to: until the
/// client acknowledges a segment sent there, the server sends it at most
/// three times what it received from it, plus one datagram.
#[derive(Debug, Clone, Copy)]
struct Unvalidated {
    budget: usize,
    /// When the session moved: an acknowledgement of a segment sent since
    /// then (so, sent to the new address) validates it.
    since: Instant,
}

#[derive(Debug)]
struct Pending {
    connection_id: u64,
    name: String,
}

/// The server's state machine. See the [module docs](self) for the loop.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    key: StaticKey,
    rng: Rng,
    cookies: CookieKeys,
    per_ip: BTreeMap<IpAddr, u32>,
    handshaking: usize,
    handshake_buckets: BTreeMap<IpAddr, TokenBucket>,
    failures_by_account: BTreeMap<String, TokenBucket>,
    failures_by_ip: BTreeMap<IpAddr, TokenBucket>,
    users: BTreeMap<String, UserRecord>,
    registering: BTreeSet<String>,
    sessions: BTreeMap<u64, Session>,
    online: BTreeMap<String, (u64, String)>,
    pending: BTreeMap<RequestId, Pending>,
    next_request: RequestId,
    requests: VecDeque<Request>,
    events: VecDeque<ServerEvent>,
    direct: VecDeque<Transmit>,
    ready: VecDeque<u64>,
    /// Sessions with chat data (`public`, `direct`) to send: served before
    /// [`Server::ready`], so that a burst of notices or handshakes does not
    /// hold up messages.
    urgent: VecDeque<u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    stats: ServerStats,
    shutting_down: bool,
    /// The latest time an input brought.
    now: Instant,
    /// Logins so far (see [`Session::login_seq`]).
    logins: u64,
    presence: Vec<Notice>,
    last_presence: Option<Instant>,
}

impl Server {
    /// A server with the accounts of the user store, its static key, and 32
    /// random bytes from the OS (for cookie secrets and handshake keys).
    pub fn new(
        config: ServerConfig,
        users: impl IntoIterator<Item = UserRecord>,
        key: StaticKey,
        random: [u8; 32],
    ) -> Self {
        let mut rng = Rng::from_seed(random);
        let cookies = CookieKeys::new(rng.seed());
        Server {
            config,
            key,
            rng,
            cookies,
            per_ip: BTreeMap::new(),
            handshaking: 0,
            handshake_buckets: BTreeMap::new(),
            failures_by_account: BTreeMap::new(),
            failures_by_ip: BTreeMap::new(),
            users: users
                .into_iter()
                .map(|u| (username_key(&u.name), u))
                .collect(),
            registering: BTreeSet::new(),
            sessions: BTreeMap::new(),
            online: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_request: 1,
            requests: VecDeque::new(),
            events: VecDeque::new(),
            direct: VecDeque::new(),
            ready: VecDeque::new(),
            urgent: VecDeque::new(),
            timers: BinaryHeap::new(),
            stats: ServerStats::default(),
            shutting_down: false,
            now: Instant::ZERO,
            logins: 0,
            presence: Vec::new(),
            last_presence: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// Mixes 32 fresh random bytes from the OS into the generator of
    /// handshake keys. Call now and then (the native server does every
    /// minute), so that reading the server's memory once does not reveal
    /// the keys of later handshakes.
    pub fn add_entropy(&mut self, random: [u8; 32]) {
        self.rng.mix(random);
    }

    /// The server's public key, which clients pin.
    pub fn public_key(&self) -> &[u8; crypto::KEY_LEN] {
        self.key.public()
    }

    /// Sessions open, logged in or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Users online, in case-insensitive order.
    pub fn online_users(&self) -> impl Iterator<Item = &str> {
        self.online.values().map(|(_, n)| n.as_str())
    }

    /// Whether an account exists for `name` (case-insensitive).
    pub fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(&username_key(name))
    }

    /// Whether shutdown was asked and every session is gone.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.sessions.is_empty() && self.direct.is_empty()
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.now = self.now.max(now);
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        let header = match Header::decode(bytes) {
            Ok(h) => h,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::Malformed(e));
                return;
            }
        };
        match header.kind {
            PacketKind::Initial => self.on_initial(now, from, header, bytes),
            PacketKind::Data => self.on_data(now, from, header, bytes),
            PacketKind::Retry | PacketKind::Handshake | PacketKind::Reset => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::UnexpectedKind);
            }
        }
    }

    fn on_initial(&mut self, now: Instant, from: SocketAddr, header: Header, bytes: &[u8]) {
        if bytes.len() < MIN_INITIAL_LEN {
            self.stats.dropped_refused += 1;
            self.drop_event(from, DropReason::InitialTooSmall);
            return;
        }
        let initial = match Initial::decode(&bytes[HEADER_LEN..]) {
            Ok(i) => i,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::Malformed(e));
                return;
            }
        };
        let id = header.connection_id;
        if let Some(s) = self.sessions.get(&id) {
            // A retransmitted Initial: the Handshake answer was lost.
            match &s.handshake_reply {
                Some(reply) if s.addr == from => {
                    let reply = reply.clone();
                    self.send_direct(from, reply);
                }
                _ => {
                    self.stats.dropped_spoofed += 1;
                    self.drop_event(from, DropReason::AddressMismatch);
                }
            }
            return;
        }
        let cookie_ok = initial
            .cookie
            .is_some_and(|c| self.cookies.verify(now, &from, id, c));
        if !cookie_ok {
            // Stateless: prove the address first. The Retry is far smaller
            // than the padded Initial that asked for it.
            let cookie = self.cookies.cookie(now, &from, id);
            self.stats.retries_sent += 1;
            self.send_direct(from, encode_simple(PacketKind::Retry, id, &cookie));
            return;
        }
        // The client receives at its address: state may be kept from here.
        let ip = from.ip();
        let per_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.shutting_down
            || self.sessions.len() >= self.config.max_sessions
            || per_ip as usize >= self.config.max_sessions_per_ip
            || self.handshaking >= self.config.max_handshaking
        {
            self.stats.dropped_refused += 1;
            self.drop_event(from, DropReason::Refused);
            return;
        }
        let limits = self.config.handshakes;
        let bucket = self
            .handshake_buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::full(now, limits));
        if !bucket.take(now, limits) {
            self.stats.dropped_rate_limited += 1;
            self.drop_event(from, DropReason::RateLimited);
            return;
        }
        if self.handshake_buckets.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.handshake_buckets, now, limits);
        }
        let token = crypto::reset_token(&self.key, id);
        let seed = self.rng.seed();
        let (transport, msg2) = match crypto::respond(&self.key, id, seed, initial.msg1, &token) {
            Ok(r) => r,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::HandshakeFailed);
                return;
            }
        };
        let reply = encode_simple(PacketKind::Handshake, id, &msg2);
        self.sessions.insert(
            id,
            Session {
                addr: from,
                channel: Channel::new(self.config.channel.clone(), id, now),
                transport,
                replay: ReplayWindow::default(),
                handshake_reply: Some(reply.clone()),
                messages: TokenBucket::full(now, self.config.messages),
                logged_in_once: false,
                login_deadline: now + self.config.login_timeout,
                unvalidated: None,
                state: SessionState::AwaitUser,
                scheduled: None,
                ready: false,
                urgent: false,
                login_seq: 0,
            },
        );
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.handshaking += 1;
        self.events.push_back(ServerEvent::SessionOpened {
            connection_id: id,
            addr: from,
        });
        self.send_direct(from, reply);
        self.reschedule(id);
    }

    fn on_data(&mut self, now: Instant, from: SocketAddr, header: Header, bytes: &[u8]) {
        let id = header.connection_id;
        let Some(s) = self.sessions.get_mut(&id) else {
            self.stats.dropped_unknown += 1;
            self.drop_event(from, DropReason::UnknownConnection);
            // Tell a client whose session this server lost (say, after a
            // restart) with a token only this server can make; the answer is
            // never larger than the datagram that asked.
            if bytes.len() > HEADER_LEN + RESET_TOKEN_LEN {
                let token = crypto::reset_token(&self.key, id);
                self.stats.resets_sent += 1;
                self.send_direct(from, encode_simple(PacketKind::Reset, id, &token));
            }
            return;
        };
        let Ok(plain) = s.transport.open(bytes) else {
            self.stats.dropped_unauthenticated += 1;
            self.drop_event(from, DropReason::Unauthenticated);
            return;
        };
        let pn = header.packet_number;
        if !s.replay.is_fresh(pn) {
            self.stats.dropped_replay += 1;
            self.drop_event(from, DropReason::Replay);
            return;
        }
        let newest = s.replay.is_newest(pn);
        s.replay.record(pn);
        s.handshake_reply = None;
        let Ok(datagram) = Datagram::decode(&plain) else {
            self.stats.dropped_malformed += 1;
            self.drop_event(from, DropReason::Malformed(DecodeError::MalformedFrame));
            return;
        };
        s.channel.handle_frames(now, datagram.frames());
        if from == s.addr {
            if let Some(u) = &mut s.unvalidated {
                u.budget = u.budget.saturating_add(3 * bytes.len());
                if s.channel.latest_acked_sent().is_some_and(|t| t >= u.since) {
                    s.unvalidated = None;
                }
            }
        } else if newest {
            // An authenticated datagram from a new address: the client's
            // NAT rebound or it moved. Follow it, but send little there
            // until the client shows it receives there.
            s.unvalidated = Some(Unvalidated {
                budget: BASE_DATAGRAM + 3 * bytes.len(),
                since: now,
            });
            // A new path: what the old one carried says nothing of it.
            s.channel.reset_path();
            let old = core::mem::replace(&mut s.addr, from);
            self.events.push_back(ServerEvent::Migrated {
                connection_id: id,
                from: old,
                to: from,
            });
            self.count_ip(old.ip(), false);
            self.count_ip(from.ip(), true);
        }
        self.process(now, id);
    }

    fn count_ip(&mut self, ip: IpAddr, add: bool) {
        if add {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        } else if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn send_direct(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.direct.push_back(Transmit { to, bytes });
    }

    fn drop_event(&mut self, from: SocketAddr, reason: DropReason) {
        self.events.push_back(ServerEvent::Dropped { from, reason });
    }

    /// Handles the result of a [`Request`].
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        self.now = self.now.max(now);
        let id = match &response {
            Response::Registered { id, .. }
            | Response::Verified { id, .. }
            | Response::Unavailable { id } => *id,
        };
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let key = username_key(&pending.name);
        let conn = pending.connection_id;
        let (new_user, failures) = match self.sessions.get(&conn).map(|s| &s.state) {
            Some(SessionState::Checking {
                request,
                new_user,
                failures,
                ..
            }) if *request == id => (*new_user, *failures),
            _ => {
                // The session is gone; a stored account still counts.
                if let Response::Registered { result: Ok(h), .. } = response {
                    self.registering.remove(&key);
                    self.users.insert(
                        key,
                        UserRecord {
                            name: pending.name,
                            password_hash: h,
                        },
                    );
                } else {
                    self.registering.remove(&key);
                }
                return;
            }
        };
        let addr = self.sessions.get(&conn).map(|s| s.addr);
        match response {
            Response::Registered { result: Ok(h), .. } => {
                self.registering.remove(&key);
                self.users.insert(
                    key,
                    UserRecord {
                        name: pending.name.clone(),
                        password_hash: h,
                    },
                );
                self.login_success(now, conn, pending.name, true);
            }
            Response::Registered { result: Err(e), .. } => {
                self.registering.remove(&key);
                self.set_state(
                    conn,
                    SessionState::AwaitPassword {
                        name: pending.name.clone(),
                        new_user: true,
                        failures,
                    },
                );
                self.login_failed(
                    conn,
                    addr,
                    &pending.name,
                    LoginFailure::StoreFailed,
                    format!("the server could not store the new account ({e}); try again"),
                );
            }
            Response::Verified { ok: true, .. } => {
                self.login_success(now, conn, pending.name, new_user);
            }
            Response::Unavailable { .. } => {
                if new_user {
                    self.registering.remove(&key);
                }
                self.set_state(
                    conn,
                    SessionState::AwaitPassword {
                        name: pending.name.clone(),
                        new_user,
                        failures,
                    },
                );
                self.login_failed(
                    conn,
                    addr,
                    &pending.name,
                    LoginFailure::Busy,
                    "the server is busy checking passwords; try again in a moment".to_string(),
                );
            }
            Response::Verified { ok: false, .. } => {
                let failures = failures + 1;
                self.record_login_failure(now, &key, addr);
                self.login_failed(
                    conn,
                    addr,
                    &pending.name,
                    LoginFailure::WrongPassword,
                    format!("wrong password for {}; try again", pending.name),
                );
                if failures >= self.config.max_login_failures {
                    self.set_state(
                        conn,
                        SessionState::Closing {
                            until: now + self.config.linger,
                        },
                    );
                } else {
                    self.set_state(
                        conn,
                        SessionState::AwaitPassword {
                            name: pending.name,
                            new_user: false,
                            failures,
                        },
                    );
                }
            }
        }
        self.process(now, conn);
    }

    fn set_state(&mut self, conn: u64, state: SessionState) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.state = state;
        }
    }

    fn login_failed(
        &mut self,
        conn: u64,
        addr: Option<SocketAddr>,
        name: &str,
        reason: LoginFailure,
        message: String,
    ) {
        self.stats.failed_logins += 1;
        if let Some(addr) = addr {
            self.events.push_back(ServerEvent::LoginFailed {
                user: name.to_string(),
                addr,
                reason,
            });
        }
        self.send(conn, &ServerMessage::LoginFailed { reason, message });
    }

    fn login_success(&mut self, now: Instant, conn: u64, name: String, new_user: bool) {
        let key = username_key(&name);
        if let Some(&(old, _)) = self.online.get(&key)
            && old != conn
        {
            self.logout(old, "replaced");
            if let Some(s) = self.sessions.get_mut(&old) {
                s.channel.close(CloseCode::Normal);
            }
            self.process(now, old);
        }
        self.online.insert(key, (conn, name.clone()));
        self.logins += 1;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.login_seq = self.logins;
            if !s.logged_in_once {
                s.logged_in_once = true;
                self.handshaking = self.handshaking.saturating_sub(1);
            }
        }
        self.set_state(
            conn,
            SessionState::LoggedIn {
                name: name.clone(),
                op: None,
            },
        );
        self.stats.logins += 1;
        if let Some(addr) = self.sessions.get(&conn).map(|s| s.addr) {
            self.events.push_back(ServerEvent::LoggedIn {
                user: name.clone(),
                addr,
                new_user,
            });
        }
        let (online, count) = self.online_list();
        self.send(
            conn,
            &ServerMessage::LoginOk {
                name: name.clone(),
                new_user,
                online,
                count,
            },
        );
        if self.online.len() <= self.config.max_presence {
            self.announce(conn, &ServerMessage::Joined { user: name });
        }
    }

    /// Takes a user offline and tells the others; the session stays.
    fn logout(&mut self, conn: u64, reason: &'static str) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let SessionState::LoggedIn { name, .. } = &s.state else {
            return;
        };
        let name = name.clone();
        s.state = SessionState::Closing {
            until: Instant::ZERO,
        };
        let announce = self.online.len() <= self.config.max_presence;
        self.online.remove(&username_key(&name));
        self.events.push_back(ServerEvent::LoggedOut {
            user: name.clone(),
            reason,
        });
        if announce {
            self.announce(
                conn,
                &ServerMessage::Left {
                    user: name,
                    reason: reason.to_string(),
                },
            );
        }
    }

    /// Queues `message` to one session. A session whose send queue is full
    /// is closed: it is not keeping up.
    fn send(&mut self, conn: u64, message: &ServerMessage) {
        let marker = match message {
            ServerMessage::Public { .. } | ServerMessage::Direct { .. } => Marker::Data,
            _ => Marker::Command,
        };
        self.send_bytes(conn, marker, &encode_shared(message));
    }

    fn send_bytes(&mut self, conn: u64, marker: Marker, bytes: &Arc<[u8]>) -> bool {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return false;
        };
        match s.channel.send_shared(marker, bytes) {
            Ok(()) => {
                if marker == Marker::Data {
                    if !s.urgent {
                        s.urgent = true;
                        self.urgent.push_back(conn);
                    }
                } else if !s.ready {
                    s.ready = true;
                    self.ready.push_back(conn);
                }
                true
            }
            Err(SendError::QueueFull) => {
                self.logout(conn, "too slow");
                let Some(s) = self.sessions.get_mut(&conn) else {
                    return false;
                };
                s.channel.close(CloseCode::Refused);
                if !s.ready {
                    s.ready = true;
                    self.ready.push_back(conn);
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Sends `message` to every online user but `except`; returns how many
    /// got it.
    fn broadcast(&mut self, except: u64, message: &ServerMessage) -> u32 {
        let marker = match message {
            ServerMessage::Public { .. } => Marker::Data,
            _ => Marker::Command,
        };
        // Encoded once; every recipient's channel shares the bytes.
        let bytes = encode_shared(message);
        let targets: Vec<u64> = self
            .online
            .values()
            .map(|(c, _)| *c)
            .filter(|c| *c != except)
            .collect();
        let mut n = 0;
        for conn in targets {
            if self.send_bytes(conn, marker, &bytes) {
                n += 1;
            }
        }
        n
    }

    /// Tells every other online user of a login or logout: at once, or
    /// with the next round of notices (see [`PRESENCE_INTERVAL`]).
    fn announce(&mut self, about: u64, message: &ServerMessage) {
        let now = self.now;
        if self.presence.is_empty()
            && self
                .last_presence
                .is_none_or(|t| now >= t + PRESENCE_INTERVAL)
        {
            self.last_presence = Some(now);
            self.broadcast(about, message);
            return;
        }
        let user = match message {
            ServerMessage::Joined { user } | ServerMessage::Left { user, .. } => user,
            _ => return,
        };
        self.presence.push(Notice {
            seq: self.logins,
            except: about,
            about: username_key(user),
            bytes: encode_shared(message),
        });
    }

    /// Sends the waiting presence notices, each to the online users who do
    /// not know of it yet.
    fn flush_presence(&mut self) {
        if self.presence.is_empty() {
            return;
        }
        self.last_presence = Some(self.now);
        let notices = core::mem::take(&mut self.presence);
        let targets: Vec<(u64, u64)> = self
            .online
            .values()
            .filter_map(|(c, _)| self.sessions.get(c).map(|s| (*c, s.login_seq)))
            .collect();
        for (conn, seq) in targets {
            for n in &notices {
                if conn != n.except && seq <= n.seq {
                    self.send_bytes(conn, Marker::Command, &n.bytes);
                }
            }
        }
    }

    /// Sends the waiting notices first if one is about `user`, so that
    /// nobody hears from a user before hearing that they arrived. Nothing
    /// to do (and nothing allocated) in the usual case of no waiting notice.
    fn presence_before(&mut self, user: &str) {
        if self.presence.is_empty() {
            return;
        }
        let key = username_key(user);
        if self.presence.iter().any(|n| n.about == key) {
            self.flush_presence();
        }
    }

    fn error(&mut self, conn: u64, code: ErrorCode, message: String) {
        self.events.push_back(ServerEvent::ClientError {
            connection_id: conn,
            code,
        });
        self.send(conn, &ServerMessage::Error { code, message });
    }

    /// Delivers received messages, reaps a failed channel, reschedules.
    fn process(&mut self, now: Instant, conn: u64) {
        loop {
            let Some(s) = self.sessions.get_mut(&conn) else {
                return;
            };
            let Some(msg) = s.channel.recv() else {
                break;
            };
            self.handle_message(now, conn, &msg);
        }
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        if let Some(error) = s.channel.error() {
            let reason = match error {
                ChannelError::IdleTimeout | ChannelError::Unacknowledged => "timeout",
                ChannelError::PeerClosed(_) => "exit",
                ChannelError::LocallyClosed => "replaced",
                _ => "error",
            };
            self.logout(conn, reason);
            self.remove(now, conn, Some(error));
            return;
        }
        if !s.logged_in_once
            && now >= s.login_deadline
            && !matches!(s.state, SessionState::Closing { .. })
        {
            // Logging in takes seconds; a session that idles before login
            // only holds a slot.
            self.stats.login_timeouts += 1;
            s.channel.close(CloseCode::Normal);
            self.remove(now, conn, None);
            return;
        }
        if let SessionState::Closing { until } = s.state
            && (s.channel.is_flushed() || now >= until)
        {
            // Tell the client, in case it did not end the session itself.
            s.channel.close(CloseCode::Normal);
            self.remove(now, conn, None);
            return;
        }
        if !s.ready && s.channel.wants_transmit() {
            s.ready = true;
            self.ready.push_back(conn);
        }
        self.reschedule(conn);
    }

    /// Removes a session, sending its channel's last datagrams first.
    fn remove(&mut self, now: Instant, conn: u64, error: Option<ChannelError>) {
        if let Some(mut s) = self.sessions.remove(&conn) {
            while let Some(plain) = s.channel.poll_transmit(now) {
                if let Ok(bytes) = s.transport.seal(&plain) {
                    self.direct.push_back(Transmit { to: s.addr, bytes });
                }
            }
            if !s.logged_in_once {
                self.handshaking = self.handshaking.saturating_sub(1);
            }
            self.count_ip(s.addr.ip(), false);
            self.events.push_back(ServerEvent::SessionClosed {
                connection_id: conn,
                error: match error {
                    Some(ChannelError::LocallyClosed) => None,
                    e => e,
                },
            });
        }
    }

    fn reschedule(&mut self, conn: u64) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let mut next = s.channel.poll_timeout();
        if let SessionState::Closing { until } = s.state {
            next = Some(next.map_or(until, |n| n.min(until)));
        } else if !s.logged_in_once {
            let until = s.login_deadline;
            next = Some(next.map_or(until, |n| n.min(until)));
        }
        if next != s.scheduled {
            s.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, conn)));
            }
        }
        if self.timers.len() > 64 + 4 * self.sessions.len() {
            self.timers = self
                .sessions
                .iter()
                .filter_map(|(c, s)| s.scheduled.map(|t| Reverse((t, *c))))
                .collect();
        }
    }

    fn handle_message(&mut self, now: Instant, conn: u64, bytes: &[u8]) {
        let msg: ClientMessage = match session::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.error(
                    conn,
                    ErrorCode::BadMessage,
                    format!("could not parse the message: {e}"),
                );
                return;
            }
        };
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let addr = s.addr;
        match (&mut s.state, msg) {
            (SessionState::Closing { .. }, _) => {}
            (
                SessionState::AwaitUser | SessionState::AwaitPassword { .. },
                ClientMessage::User { name },
            ) => self.on_user(conn, name),
            (
                SessionState::AwaitPassword {
                    name,
                    new_user,
                    failures,
                },
                ClientMessage::Password { password },
            ) => {
                let (name, new_user, failures) = (name.clone(), *new_user, *failures);
                self.on_password(now, conn, addr, name, new_user, failures, password);
            }
            (SessionState::AwaitUser, ClientMessage::Password { .. }) => self.error(
                conn,
                ErrorCode::NotLoggedIn,
                "send the username first".to_string(),
            ),
            (SessionState::Checking { .. }, _) => self.error(
                conn,
                ErrorCode::Busy,
                "the password is being checked; wait for the answer".to_string(),
            ),
            (SessionState::AwaitUser | SessionState::AwaitPassword { .. }, _) => {
                self.error(conn, ErrorCode::NotLoggedIn, "log in first".to_string())
            }
            (SessionState::LoggedIn { .. }, ClientMessage::User { .. })
            | (SessionState::LoggedIn { .. }, ClientMessage::Password { .. }) => self.error(
                conn,
                ErrorCode::AlreadyLoggedIn,
                "already logged in".to_string(),
            ),
            (SessionState::LoggedIn { op, .. }, ClientMessage::Op { op: new_op }) => {
                *op = Some(new_op);
                match new_op {
                    Operation::PM => self.send(conn, &ServerMessage::OpOk { op: new_op }),
                    Operation::DM => self.send_online(conn),
                    Operation::EX => {
                        self.send(conn, &ServerMessage::Bye);
                        self.logout(conn, "exit");
                        self.set_state(
                            conn,
                            SessionState::Closing {
                                until: now + self.config.linger,
                            },
                        );
                    }
                }
            }
            (SessionState::LoggedIn { .. }, ClientMessage::Who) => self.send_online(conn),
            // `pm` and `dm` are accepted with or without the `op` before
            // them: the classic flow sends it, a client that already has
            // its text and recipient need not wait for the answer.
            (SessionState::LoggedIn { op, name }, ClientMessage::Pm { text }) => {
                *op = None;
                let name = name.clone();
                if !self.take_message_token(now, conn) {
                    self.rate_limited(conn);
                } else if let Err(e) = validate_text(&text) {
                    self.error(conn, ErrorCode::InvalidText, e.to_string());
                } else {
                    self.stats.public_messages += 1;
                    self.presence_before(&name);
                    let n = self.broadcast(conn, &ServerMessage::Public { from: name, text });
                    self.stats.deliveries += u64::from(n);
                    self.send(
                        conn,
                        &ServerMessage::Confirm {
                            op: Operation::PM,
                            to: None,
                            recipients: n,
                        },
                    );
                }
            }
            (SessionState::LoggedIn { op, name }, ClientMessage::Dm { to, text }) => {
                *op = None;
                let name = name.clone();
                if !self.take_message_token(now, conn) {
                    self.rate_limited(conn);
                } else if let Err(e) = validate_text(&text) {
                    self.error(conn, ErrorCode::InvalidText, e.to_string());
                } else {
                    self.on_direct(conn, name, to, text);
                }
            }
        }
    }

    /// Seconds to wait if the account or the source address has used up its
    /// failed logins.
    fn login_throttled(&mut self, now: Instant, key: &str, ip: IpAddr) -> Option<u64> {
        let limit = self.config.login_failures;
        let mut wait = None;
        if let Some(b) = self.failures_by_account.get_mut(key)
            && !b.has(now, limit)
        {
            wait = Some(b.wait_secs(limit));
        }
        if let Some(b) = self.failures_by_ip.get_mut(&ip)
            && !b.has(now, limit)
        {
            wait = Some(wait.unwrap_or(0).max(b.wait_secs(limit)));
        }
        wait
    }

    fn record_login_failure(&mut self, now: Instant, key: &str, addr: Option<SocketAddr>) {
        let limit = self.config.login_failures;
        self.failures_by_account
            .entry(key.to_string())
            .or_insert_with(|| TokenBucket::full(now, limit))
            .take(now, limit);
        if let Some(addr) = addr {
            self.failures_by_ip
                .entry(addr.ip())
                .or_insert_with(|| TokenBucket::full(now, limit))
                .take(now, limit);
        }
        if self.failures_by_account.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.failures_by_account, now, limit);
        }
        if self.failures_by_ip.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.failures_by_ip, now, limit);
        }
    }

    fn take_message_token(&mut self, now: Instant, conn: u64) -> bool {
        let limit = self.config.messages;
        self.sessions
            .get_mut(&conn)
            .is_some_and(|s| s.messages.take(now, limit))
    }

    fn rate_limited(&mut self, conn: u64) {
        self.stats.messages_rate_limited += 1;
        let l = self.config.messages;
        let per_sec = 1_000_000 / l.interval.as_micros().max(1);
        self.error(
            conn,
            ErrorCode::RateLimited,
            format!(
                "slow down: at most {} messages at once, then {per_sec} per second; this one was not sent",
                l.burst
            ),
        );
    }

    fn send_online(&mut self, conn: u64) {
        let (users, count) = self.online_list();
        self.send(conn, &ServerMessage::Online { users, count });
    }

    /// The first [`ServerConfig::max_listed`] online users, and how many
    /// are online when that is more.
    fn online_list(&self) -> (Vec<String>, Option<u32>) {
        let max = self.config.max_listed;
        let users = self.online_users().take(max).map(String::from).collect();
        let count =
            (self.online.len() > max).then(|| u32::try_from(self.online.len()).unwrap_or(u32::MAX));
        (users, count)
    }

    fn on_user(&mut self, conn: u64, name: String) {
        if let Err(e) = validate_username(&name) {
            self.error(conn, ErrorCode::InvalidUsername, e.to_string());
            return;
        }
        let key = username_key(&name);
        if self.registering.contains(&key) {
            self.error(
                conn,
                ErrorCode::UsernameBusy,
                format!("{name} is being registered right now; try again"),
            );
            return;
        }
        let (name, new_user) = match self.users.get(&key) {
            Some(u) => (u.name.clone(), false),
            None => (name, true),
        };
        // Choosing the name again keeps the count of failed passwords.
        let failures = match self.sessions.get(&conn).map(|s| &s.state) {
            Some(SessionState::AwaitPassword { failures, .. }) => *failures,
            _ => 0,
        };
        self.set_state(
            conn,
            SessionState::AwaitPassword {
                name: name.clone(),
                new_user,
                failures,
            },
        );
        self.send(conn, &ServerMessage::PasswordRequired { name, new_user });
    }

    #[allow(clippy::too_many_arguments)] // one call site, each argument distinct
    fn on_password(
        &mut self,
        now: Instant,
        conn: u64,
        addr: SocketAddr,
        name: String,
        new_user: bool,
        failures: u32,
        password: String,
    ) {
        if password.is_empty() || password.len() > MAX_PASSWORD {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::InvalidPassword,
                format!("the password must be 1 to {MAX_PASSWORD} bytes"),
            );
            return;
        }
        if self.pending.len() >= self.config.max_pending_checks {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::Busy,
                "the server is busy checking passwords; try again in a moment".to_string(),
            );
            return;
        }
        let key = username_key(&name);
        if !new_user && let Some(wait) = self.login_throttled(now, &key, addr.ip()) {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::Throttled,
                format!(
                    "too many failed logins for {name} or from your address; try again in {wait} s"
                ),
            );
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        let request = if new_user {
            if self.users.contains_key(&key) || self.registering.contains(&key) {
                self.set_state(conn, SessionState::AwaitUser);
                self.error(
                    conn,
                    ErrorCode::UsernameBusy,
                    format!("{name} was registered by someone else meanwhile; choose again"),
                );
                return;
            }
            self.registering.insert(key);
            Request::Register {
                id,
                username: name.clone(),
                password,
            }
        } else {
            let Some(user) = self.users.get(&key) else {
                self.set_state(conn, SessionState::AwaitUser);
                return;
            };
            Request::Verify {
                id,
                username: name.clone(),
                password,
                password_hash: user.password_hash.clone(),
            }
        };
        self.pending.insert(
            id,
            Pending {
                connection_id: conn,
                name: name.clone(),
            },
        );
        self.requests.push_back(request);
        self.set_state(
            conn,
            SessionState::Checking {
                new_user,
                request: id,
                failures,
            },
        );
    }

    fn on_direct(&mut self, conn: u64, from: String, to: String, text: String) {
        let key = username_key(&to);
        let Some(user) = self.users.get(&key) else {
            self.error(
                conn,
                ErrorCode::UnknownUser,
                format!("there is no user named {to}"),
            );
            return;
        };
        let to_name = user.name.clone();
        let Some(&(target, _)) = self.online.get(&key) else {
            self.error(
                conn,
                ErrorCode::NotOnline,
                format!("{to_name} is not online"),
            );
            return;
        };
        self.presence_before(&from);
        let delivered = u32::from(self.send_bytes(
            target,
            Marker::Data,
            &encode_shared(&ServerMessage::Direct { from, text }),
        ));
        self.stats.direct_messages += u64::from(delivered);
        self.stats.deliveries += u64::from(delivered);
        self.send(
            conn,
            &ServerMessage::Confirm {
                op: Operation::DM,
                to: Some(to_name),
                recipients: delivered,
            },
        );
        self.process_later(target);
    }

    /// Marks a session touched by another session's message so that its
    /// timers are recomputed.
    fn process_later(&mut self, conn: u64) {
        self.reschedule(conn);
    }

    /// Handles expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self
            .last_presence
            .is_some_and(|t| now >= t + PRESENCE_INTERVAL)
        {
            self.flush_presence();
        }
        while let Some(&Reverse((t, conn))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if s.scheduled != Some(t) {
                continue;
            }
            s.scheduled = None;
            s.channel.handle_timeout(now);
            self.process(now, conn);
        }
    }

    /// The next instant [`Server::handle_timeout`] has work, if any.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let presence = match self.last_presence {
            Some(t) if !self.presence.is_empty() => Some(t + PRESENCE_INTERVAL),
            _ => None,
        };
        while let Some(&Reverse((t, conn))) = self.timers.peek() {
            match self.sessions.get(&conn) {
                Some(s) if s.scheduled == Some(t) => {
                    return Some(presence.map_or(t, |p| p.min(t)));
                }
                _ => {
                    self.timers.pop();
                }
            }
        }
        presence
    }

    /// The next datagram to send. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        loop {
            if let Some(t) = self.direct.pop_front() {
                self.stats.datagrams_sent += 1;
                self.stats.bytes_sent += t.bytes.len() as u64;
                return Some(t);
            }
            let (conn, urgent) = match self.urgent.pop_front() {
                Some(conn) => (conn, true),
                None => (self.ready.pop_front()?, false),
            };
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let limit = s
                .unvalidated
                .map_or(MAX_DATAGRAM, |u| u.budget.min(MAX_DATAGRAM))
                .saturating_sub(crypto::SEAL_OVERHEAD);
            if let Some(plain) = s.channel.poll_transmit_within(now, limit) {
                if urgent {
                    self.urgent.push_front(conn);
                } else {
                    self.ready.push_front(conn);
                }
                let Ok(bytes) = s.transport.seal(&plain) else {
                    continue;
                };
                if let Some(u) = &mut s.unvalidated {
                    u.budget = u.budget.saturating_sub(bytes.len());
                }
                self.stats.datagrams_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                return Some(Transmit { to: s.addr, bytes });
            }
            if urgent {
                s.urgent = false;
            } else {
                s.ready = false;
            }
            // A channel closed for a full queue ends here, after its CLOSE.
            if s.channel.error().is_some() {
                self.process(now, conn);
            } else {
                self.reschedule(conn);
            }
        }
    }

    /// The next slow job for the driver.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The next event for the operator's log.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Starts an orderly shutdown: every session is told `Shutdown`, no new
    /// session is accepted. Keep driving until [`Server::is_shut_down`] (or
    /// the linger time has passed).
    pub fn shutdown(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.shutting_down = true;
        let conns: Vec<u64> = self.sessions.keys().copied().collect();
        for conn in conns {
            self.send(conn, &ServerMessage::Shutdown);
            self.logout(conn, "shutdown");
            self.set_state(
                conn,
                SessionState::Closing {
                    until: now + self.config.linger,
                },
            );
            self.process(now, conn);
        }
    }
}
