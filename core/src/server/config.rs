//! The server's limits and timers, each with its default.

use super::*;

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
    /// Fewest characters in a new account's password: 8 (existing accounts
    /// are not affected).
    pub min_password_chars: usize,
    /// How long a session lingers after `Bye` or `Shutdown` so that its last
    /// messages are acknowledged: 3 s.
    pub linger: Duration,
    /// Sessions from one IP address: 64.
    pub max_sessions_per_ip: usize,
    /// Sessions that have not logged in yet: 1,000. When full, a new one
    /// evicts the oldest that is not waiting for a password check.
    pub max_handshaking: usize,
    /// Sessions that have not logged in yet from one address (an IPv6 /64
    /// counts as one address): 16.
    pub max_handshaking_per_ip: usize,
    /// A session that has not sent `user` this long after its handshake is
    /// closed: 10 s (then `login_timeout` applies).
    pub user_timeout: Duration,
    /// The largest message a session that has not logged in may send:
    /// 4,096 bytes (a `user` or `password` message is far smaller). Whole
    /// sessions get [`ChannelConfig::max_message`] once logged in.
    pub max_message_before_login: usize,
    /// New sessions per source IP address: a burst of 20, then 5 per
    /// second.
    pub handshakes: RateLimit,
    /// Initials with a valid cookie that wait for their handshake, at most:
    /// 1,024 (about 80 KB). One more is dropped
    /// ([`DropReason::InitialQueueFull`]); its client sends it again
    /// 500 ms later, as after a loss.
    pub max_queued_initials: usize,
    /// Handshakes per turn: 8 (0 counts as 1). Each costs the server
    /// three X25519 operations, roughly 50 to 100 µs, so a turn spends at
    /// most about 0.5 ms on them; a flood of handshakes then waits in the
    /// queue of Initials while established sessions' datagrams go on. A
    /// turn ends with each [`Server::handle_timeout`]; see
    /// [`Server::handle_datagram`].
    pub handshakes_per_turn: usize,
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
    /// more than the chat itself. The same bound holds for a room's
    /// `member_joined` and `member_left`, counting the room's members.
    pub max_presence: usize,
    /// Rooms one user may be a member of: 100.
    pub max_rooms_per_user: usize,
    /// Members one room may have: 10,000.
    pub max_room_members: usize,
    /// Rooms on the server: 10,000.
    pub max_rooms: usize,
    /// Messages of history sent with the answer to `join`: 50.
    pub history_on_join: usize,
    /// Most messages a resume replays: 300. A client that missed more is
    /// told of a gap instead (and none is replayed).
    pub max_replay: usize,
    /// Direct messages waiting for one offline user: 1,000.
    pub max_offline_per_user: usize,
    /// Direct messages from one sender waiting for one offline user: 100.
    pub max_offline_per_sender: usize,
    /// Longest room topic, in bytes: 300 ([`session::MAX_TOPIC`], which a
    /// larger value does not raise).
    pub max_topic: usize,
    /// The accounts that are server admins, by [`username_key`] (ASCII
    /// lowercase): none by default. Admins may send the requests of
    /// PROTOCOL.md §5.12 (suspend accounts, ban addresses, end sessions,
    /// notices, registration, the audit log), and moderate every room as
    /// its owner would (§5.13).
    pub admins: BTreeSet<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            channel: ChannelConfig::default(),
            max_sessions: 10_000,
            max_pending_checks: 256,
            max_login_failures: 5,
            min_password_chars: 8,
            linger: Duration::from_secs(3),
            max_sessions_per_ip: 64,
            max_handshaking: 1000,
            max_handshaking_per_ip: 16,
            user_timeout: Duration::from_secs(10),
            max_message_before_login: 4096,
            handshakes: RateLimit::per_second(20, 5),
            max_queued_initials: 1024,
            handshakes_per_turn: 8,
            messages: RateLimit::per_second(10, 5),
            login_failures: RateLimit::per_minute(5, 5),
            login_timeout: Duration::from_secs(60),
            max_listed: MAX_LISTED,
            max_presence: MAX_LISTED,
            max_rooms_per_user: 100,
            max_room_members: 10_000,
            max_rooms: 10_000,
            history_on_join: 50,
            max_replay: 300,
            max_offline_per_user: 1000,
            max_offline_per_sender: 100,
            max_topic: session::MAX_TOPIC,
            admins: BTreeSet::new(),
        }
    }
}
