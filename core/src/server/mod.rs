//! The server endpoint: one socket, a table of sessions keyed by connection
//! id, the online list, relaying.
//!
//! Drive it like this (the native `chatserver` does the same with the
//! `poll_*` and `handle_*` methods the enums are made of, to send in batches):
//!
//! ```text
//! loop {
//!     let deadline = loop {
//!         match server.poll_output(now, &mut buf) {
//!             Output::Transmit(t) => socket.send_to(&buf[..t.len], t.to),
//!             Output::Request(r) => workers.submit(r),                     // password work
//!             Output::Event(e) => log(e),
//!             Output::Timeout(deadline) => break deadline,
//!         }
//!     };
//!     wait for a datagram, a worker result, or the deadline
//!     for each datagram read { server.handle_input(Input::Datagram { now, from, bytes }) }
//!     for each worker result { server.handle_input(Input::Response(now, r)) }
//!     if deadline <= now { server.handle_input(Input::Timeout(now)) }
//! }
//! ```
//!
//! One pass of this loop is a *turn*. Handshakes cost X25519 work, so a
//! turn does at most [`ServerConfig::handshakes_per_turn`] of them: an
//! Initial with a valid cookie that finds the turn's budget spent waits in
//! a bounded queue, and `poll_timeout` returns `now` while any waits, so
//! that the driver reads its socket (established sessions' datagrams
//! first) and comes back at once.

use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::{IpAddr, SocketAddr};

use crate::connection::{Connection, DatagramError, Received, Source};
use crate::crypto::{self, CookieKeys, Rng, StaticKey};
use crate::reliable::{Channel, ChannelConfig, ChannelError, SendError};
use crate::session::{
    self, ClientMessage, ErrorCode, LoginFailure, MAX_AWAY, MAX_LISTED, MAX_PASSWORD,
    MAX_QUIT_MESSAGE, MessageRate, Operation, ServerMessage, username_key, validate_text,
    validate_username,
};
use crate::time::{Duration, Instant};
use crate::wire::{
    CloseCode, DecodeError, HEADER_LEN, Header, Initial, MIN_INITIAL_LEN, MSG1_LEN, Marker,
    PacketKind, RESET_TOKEN_LEN, encode_simple,
};

mod accounts;
mod admission;
mod audit;
mod bans;
pub mod cluster;
mod config;
mod endpoint;
mod event;
mod history;
pub(crate) mod limits;
mod login;
mod offline;
mod registration;
mod relay;
mod room_roles;
mod rooms;
mod schedule;
pub mod store;
mod suspend;
mod writes;

use admission::QueuedInitial;
pub use cluster::ClusterMessage;
pub use config::ServerConfig;
pub use endpoint::{Input, Output};
pub use event::{DropReason, LeaveReason, ServerEvent, ServerStats};
pub use limits::RateLimit;
use limits::{MAX_TRACKED_SOURCES, TokenBucket, prune};
use offline::Waiting;
use registration::Invites;
pub use registration::{INVITE_LIFETIME_MS, MAX_INVITES};
use rooms::Room;
use store::{AuditEntry, OfflineMessage, Page, RoomMessage, Snapshot, StoreOp};
use writes::Write;

/// An account as the user store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The username as registered.
    pub name: String,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: String,
    /// Set while the account is suspended: it cannot log in.
    pub suspended: Option<Suspension>,
}

/// An account's suspension: while it lasts, the account cannot log in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Suspension {
    /// When it ends, in milliseconds since the Unix epoch; `None`: until it
    /// is lifted.
    #[serde(default)]
    pub until: Option<u64>,
    /// Why, as given by whoever suspended it (may be empty).
    pub reason: String,
    /// Who suspended it: an admin's name, or `"accounts"` for the
    /// accounts tool.
    pub by: String,
}

/// A datagram to send: its bytes are the first `len` of the buffer given
/// to [`Server::poll_transmit`] or [`Server::poll_output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The datagram's length in the caller's buffer.
    pub len: usize,
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
    /// Make a change durable; answer with [`Response::Stored`] once it is
    /// (see [`store`]). Answers come in the order of the requests.
    Store {
        /// Echo this in the response.
        id: RequestId,
        /// The change.
        op: StoreOp,
    },
    /// Change an account in the user store (the store that answers
    /// `Register`); answer with [`Response::Stored`] once the change is on
    /// disk (or failed, leaving the account as it was).
    Account {
        /// Echo this in the response.
        id: RequestId,
        /// The change.
        op: AccountOp,
    },
    /// Read a page of a room's history older than the server keeps in
    /// memory; answer with [`Response::History`].
    History {
        /// Echo this in the response.
        id: RequestId,
        /// The room.
        room: String,
        /// Which messages.
        page: Page,
        /// At most this many.
        limit: u32,
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
            Request::Account { id, op } => f
                .debug_struct("Account")
                .field("id", id)
                .field("op", op)
                .finish(),
            Request::Store { id, op } => f
                .debug_struct("Store")
                .field("id", id)
                .field("op", op)
                .finish(),
            Request::History {
                id,
                room,
                page,
                limit,
            } => f
                .debug_struct("History")
                .field("id", id)
                .field("room", room)
                .field("page", page)
                .field("limit", limit)
                .finish(),
        }
    }
}

/// A change to one account of the user store ([`Request::Account`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountOp {
    /// Suspend the account `name` (replacing any suspension it has).
    Suspend {
        /// The account, as registered.
        name: String,
        /// The suspension.
        suspension: Suspension,
    },
    /// Lift the suspension of the account `name`, if it has one.
    Unsuspend {
        /// The account, as registered.
        name: String,
    },
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
    /// A [`Request::Store`] is durable, or failed (nothing was changed).
    Stored {
        /// The request's id.
        id: RequestId,
        /// `Err` says why it failed.
        result: Result<(), String>,
    },
    /// The page a [`Request::History`] asked for.
    History {
        /// The request's id.
        id: RequestId,
        /// The messages, oldest first, and whether the store holds more in
        /// the direction asked; or why it could not be read.
        result: Result<(Vec<RoomMessage>, bool), String>,
    },
    /// A [`StoreOp::Append`] is durable, at the offset the store gave it
    /// (a cluster's store numbers each room's messages itself), or failed.
    Appended {
        /// The request's id.
        id: RequestId,
        /// The message's offset, or why it failed.
        result: Result<u64, String>,
    },
    /// A [`StoreOp::CreateRoom`] found the room in the store already (a
    /// cluster's node made it meanwhile, or this node missed its
    /// creation): the store added the member to that room and gives it as
    /// it is. The server takes its epoch, owner, topic, offsets, roles and
    /// members instead of the ones it made up.
    RoomFound {
        /// The request's id.
        id: RequestId,
        /// The room as the store has it, with its latest messages.
        room: alloc::boxed::Box<store::RoomRecord>,
    },
    /// The driver could not take the job (its queue is full): the client is
    /// told to try again; no failure is counted.
    Unavailable {
        /// The request's id.
        id: RequestId,
    },
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
        /// The away text (`away`), while the user is away.
        away: Option<String>,
        /// When the user logged in (for `whois`).
        since: Instant,
    },
    Closing {
        until: Instant,
    },
}

#[derive(Debug)]
struct Session {
    addr: SocketAddr,
    /// The keys, replay window, channel and path state.
    connection: Connection,
    /// The Handshake datagram, kept until the client's first Data datagram
    /// shows it arrived.
    handshake_reply: Option<Vec<u8>>,
    messages: TokenBucket,
    logged_in_once: bool,
    /// Until then the session must log in.
    login_deadline: Instant,
    state: SessionState,
    scheduled: Option<Instant>,
    ready: bool,
    /// Whether the session is in [`Server::urgent`].
    urgent: bool,
    /// Whether the session is its user's in [`Server::online`]: a
    /// broadcast goes to the sessions marked so.
    listed: bool,
    /// The server's login count when this session logged in (0 before):
    /// it is told of the presence changes made since.
    login_seq: u64,
    /// When its handshake was answered.
    created: Instant,
    /// The client sent `device` with its password: it keeps device tokens,
    /// and `login_ok` carries one.
    wants_device_token: bool,
    /// The connection id of the client's Initials, when the server issued
    /// the session's id (a key of [`Server::issued`]).
    initial_id: Option<u64>,
    /// The room positions the client sent with its password, answered
    /// after `login_ok`.
    resume: Vec<session::RoomPosition>,
    /// Offline direct messages sent on this session and not yet
    /// acknowledged: their ids, and the channel's mark after each.
    delivering: Vec<(u64, crate::reliable::SendMark)>,
}

/// A round of presence notices on its way, [`PRESENCE_SLICE`] online users
/// at a time.
#[derive(Debug)]
struct PresenceRound {
    notices: Vec<Notice>,
    /// The users online when it started (session, login count).
    targets: Vec<(u64, u64)>,
    /// The first target not yet sent to.
    next: usize,
    /// When the next slice goes.
    at: Instant,
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

/// A round of presence notices goes to this many online users at a time,
/// [`PRESENCE_SLICE_GAP`] apart: with many users online a round is a burst
/// of one datagram per user, and of as many acknowledgements back, and
/// chat messages wait behind a burst at the socket and for the CPU. Spread
/// out, a round of 1,000 users takes 16 ms. A message from a user whose
/// notice is still on its way finishes the round first (see
/// `Server::presence_before`).
pub const PRESENCE_SLICE: usize = 64;

/// The time between two slices of a round of presence notices.
pub const PRESENCE_SLICE_GAP: Duration = Duration::from_millis(1);

#[derive(Debug)]
struct Pending {
    connection_id: u64,
    name: String,
    /// For a password check: the failure tokens reserved when it was
    /// submitted, given back if the password was right.
    reserved: Option<Reservation>,
    /// For a registration by invite: the code it claimed, used up once the
    /// account is stored and given back if it is not.
    invite: Option<String>,
}

/// Failure tokens taken from the account's and the address's buckets when
/// a password check is submitted, so that concurrent guesses cannot outrun
/// the limit while the hashing workers are busy.
#[derive(Clone, Copy, Debug)]
struct Reservation {
    /// The account's bucket was charged.
    account: bool,
    /// The address's bucket was charged.
    ip: IpAddr,
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
    /// Sessions that have not logged in, oldest first (by handshake time),
    /// with the address they are counted against.
    unauthenticated: BTreeMap<(Instant, u64), IpAddr>,
    /// Sessions that have not logged in, per address (IPv6: per /64).
    handshaking_per_prefix: BTreeMap<IpAddr, u32>,
    handshake_buckets: BTreeMap<IpAddr, TokenBucket>,
    /// Initials with a valid cookie waiting for their handshake, oldest
    /// first (at most [`ServerConfig::max_queued_initials`]).
    initials: VecDeque<QueuedInitial>,
    /// Handshakes this turn may still do (see
    /// [`ServerConfig::handshakes_per_turn`]).
    handshake_budget: usize,
    failures_by_account: BTreeMap<String, TokenBucket>,
    failures_by_ip: BTreeMap<IpAddr, TokenBucket>,
    users: BTreeMap<String, UserRecord>,
    /// The confusable skeleton of every account's name, and the name
    /// ([`session::username_skeleton`]).
    skeletons: BTreeMap<String, String>,
    registering: BTreeSet<String>,
    /// Accounts with a password check in flight (at most one each).
    checking: BTreeSet<String>,
    sessions: BTreeMap<u64, Session>,
    /// Segments sent again by the channels of sessions that have ended.
    retransmissions_ended: u64,
    /// For sessions whose id the server issued: the id of the client's
    /// Initials, and the session's id (so a retransmitted Initial finds
    /// its answer).
    issued: BTreeMap<u64, u64>,
    online: BTreeMap<String, (u64, String)>,
    pending: BTreeMap<RequestId, Pending>,
    next_request: RequestId,
    requests: VecDeque<Request>,
    events: VecDeque<ServerEvent>,
    /// Datagrams made ahead of time (Retry, Handshake, Reset, a removed
    /// session's last ones), and where they go.
    direct: VecDeque<(SocketAddr, Vec<u8>)>,
    ready: VecDeque<u64>,
    /// Sessions with chat data (`public`, `direct`) to send: served before
    /// [`Server::ready`], so that a burst of notices or handshakes does not
    /// hold up messages.
    urgent: VecDeque<u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Kept between datagrams so that taking one in allocates nothing:
    /// the plaintext of a datagram being opened (one for all sessions),
    /// and a message taken from a session's channel.
    opened: Vec<u8>,
    message: Vec<u8>,
    stats: ServerStats,
    shutting_down: bool,
    /// The latest time an input brought.
    now: Instant,
    /// Logins so far (see [`Session::login_seq`]).
    logins: u64,
    presence: Vec<Notice>,
    last_presence: Option<Instant>,
    /// The round of presence notices under way, if any.
    round: Option<PresenceRound>,
    /// Rooms by name.
    rooms: BTreeMap<String, Room>,
    /// The rooms of each account (by [`username_key`]).
    memberships: BTreeMap<String, BTreeSet<String>>,
    /// Direct messages waiting for each offline account (by
    /// [`username_key`]), oldest first.
    offline: BTreeMap<String, VecDeque<Waiting>>,
    /// The id of the next offline message.
    next_offline_id: u64,
    /// Store writes in flight, and what to do once each is durable.
    writes: BTreeMap<RequestId, Write>,
    /// History reads in flight: the session that asked, and its room.
    reads: BTreeMap<RequestId, (u64, String)>,
    /// The wall clock: an instant and the Unix time in milliseconds then.
    wall: (Instant, u64),
    /// Rooms made by this process (for their epochs).
    rooms_made: u64,
    /// The latest entries of the audit log, oldest first (at most
    /// [`store::AUDIT_MEMORY`]).
    audit: VecDeque<AuditEntry>,
    /// The id of the next audit entry.
    next_audit_id: u64,
    /// Address bans (PROTOCOL.md §5.12).
    bans: bans::BanTable,
    /// Who may register new accounts (PROTOCOL.md §5.12): open unless the
    /// store says otherwise.
    registration: session::RegistrationMode,
    /// Invite codes not yet used, and those claimed by registrations in
    /// flight.
    invites: Invites,
    /// Where invite codes come from: apart from `rng`, whose draws follow
    /// the handshakes.
    invite_rng: Rng,
    /// This server's name as a node of a cluster (`None`: it runs alone).
    node: Option<String>,
    /// Users online on other nodes (by [`username_key`]): their node and
    /// their name as registered.
    remote: BTreeMap<String, (String, String)>,
    /// Of the users in `remote`, those who are away: lowercase name to
    /// away text.
    remote_away: BTreeMap<String, String>,
    /// What the other nodes must learn, oldest first.
    publish: VecDeque<ClusterMessage>,
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
        let handshake_budget = config.handshakes_per_turn.max(1);
        let mut server = Server {
            config,
            key,
            rng,
            cookies,
            per_ip: BTreeMap::new(),
            handshaking: 0,
            unauthenticated: BTreeMap::new(),
            handshaking_per_prefix: BTreeMap::new(),
            handshake_buckets: BTreeMap::new(),
            initials: VecDeque::new(),
            handshake_budget,
            failures_by_account: BTreeMap::new(),
            failures_by_ip: BTreeMap::new(),
            users: users
                .into_iter()
                .map(|u| (username_key(&u.name), u))
                .collect(),
            skeletons: BTreeMap::new(),
            registering: BTreeSet::new(),
            checking: BTreeSet::new(),
            sessions: BTreeMap::new(),
            retransmissions_ended: 0,
            issued: BTreeMap::new(),
            online: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_request: 1,
            requests: VecDeque::new(),
            events: VecDeque::new(),
            direct: VecDeque::new(),
            ready: VecDeque::new(),
            urgent: VecDeque::new(),
            timers: BinaryHeap::new(),
            opened: Vec::new(),
            message: Vec::new(),
            stats: ServerStats::default(),
            shutting_down: false,
            now: Instant::ZERO,
            logins: 0,
            presence: Vec::new(),
            last_presence: None,
            round: None,
            rooms: BTreeMap::new(),
            memberships: BTreeMap::new(),
            offline: BTreeMap::new(),
            next_offline_id: 1,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            wall: (Instant::ZERO, 0),
            rooms_made: 0,
            audit: VecDeque::new(),
            next_audit_id: 1,
            bans: bans::BanTable::default(),
            registration: session::RegistrationMode::Open,
            invites: Invites::default(),
            invite_rng: Rng::derived(random, b"invite codes"),
            node: None,
            remote: BTreeMap::new(),
            remote_away: BTreeMap::new(),
            publish: VecDeque::new(),
        };
        server.skeletons = server
            .users
            .values()
            .map(|u| (session::username_skeleton(&u.name), u.name.clone()))
            .collect();
        server
    }

    /// The existing (or being registered) account whose name looks like
    /// `name`, if any: a new account may not take such a name.
    pub(super) fn look_alike(&self, name: &str) -> Option<String> {
        let skeleton = session::username_skeleton(name);
        if let Some(other) = self.skeletons.get(&skeleton) {
            return Some(other.clone());
        }
        self.registering
            .iter()
            .find(|k| *k != &username_key(name) && session::username_skeleton(k) == skeleton)
            .cloned()
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
        self.invite_rng.mix(random);
    }

    /// The server's public key, which clients pin.
    pub fn public_key(&self) -> &[u8; crypto::KEY_LEN] {
        self.key.public()
    }

    /// Segments sent again by every session's channel so far, sessions
    /// that have ended included. It walks every session: call it for a
    /// status line or a metrics scrape, not per datagram.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions_ended
            + self
                .sessions
                .values()
                .map(|s| s.connection.channel().stats().retransmissions)
                .sum::<u64>()
    }

    /// Sessions open, logged in or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Initials with a valid cookie waiting for their handshake (see
    /// [`ServerConfig::handshakes_per_turn`]).
    pub fn queued_initials(&self) -> usize {
        self.initials.len()
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

    /// Starts an orderly shutdown: every session is told `Shutdown`, no new
    /// session is accepted. Keep driving until [`Server::is_shut_down`] (or
    /// the linger time has passed).
    pub fn shutdown(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.shutting_down = true;
        self.refuse_queued_initials();
        let conns: Vec<u64> = self.sessions.keys().copied().collect();
        for conn in conns {
            self.send(conn, &ServerMessage::Shutdown);
            self.logout(conn, LeaveReason::Shutdown);
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
