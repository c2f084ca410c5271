//! What the server reports to its driver: events, drop reasons, and
//! counters.

use super::*;

/// Why a datagram was dropped without effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// It did not decode.
    Malformed(DecodeError),
    /// It named a session that does not exist and was not an Initial.
    UnknownConnection,
    /// An Initial naming an existing session, from another address.
    AddressMismatch,
    /// An Initial that is not exactly [`MIN_INITIAL_LEN`] (1200) bytes.
    InitialWrongSize,
    /// A limit refused a new session (sessions, per address, handshaking),
    /// or a move of a session to an address at its limit,
    /// or the server is shutting down.
    Refused,
    /// The source sent new sessions faster than its rate limit.
    RateLimited,
    /// An Initial with a valid cookie found the queue of Initials waiting
    /// for their handshake full ([`ServerConfig::max_queued_initials`]).
    InitialQueueFull,
    /// A kind a client never sends (Retry, Handshake, Reset).
    UnexpectedKind,
    /// The first handshake message was invalid.
    HandshakeFailed,
    /// A Data datagram that did not authenticate with its session's keys.
    Unauthenticated,
    /// A Data datagram whose packet number was seen before.
    Replay,
    /// Any datagram from a banned address (PROTOCOL.md §5.12): dropped
    /// before anything else, unanswered.
    Banned,
}

/// Why a user went offline: the `reason` of `left` (PROTOCOL.md §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// `exit`: the user said `op EX`, or the client sent CLOSE.
    Exit,
    /// `timeout`: the idle timeout or the acknowledgement deadline passed.
    Timeout,
    /// `replaced`: the same user logged in on another connection.
    Replaced,
    /// `too slow`: the send queue to the user overflowed.
    TooSlow,
    /// `error`: the client broke the protocol.
    Error,
    /// `shutdown`: the server is shutting down.
    Shutdown,
    /// `deleted`: the account was deleted (`chatserver accounts delete`).
    Deleted,
    /// `banned`: a server admin banned the session's address.
    Banned,
    /// `suspended`: a server admin suspended the account.
    Suspended,
    /// `disconnected`: a server admin ended the session.
    Disconnected,
}

impl LeaveReason {
    /// The reason as `left` carries it on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Timeout => "timeout",
            Self::Replaced => "replaced",
            Self::TooSlow => "too slow",
            Self::Error => "error",
            Self::Shutdown => "shutdown",
            Self::Deleted => "deleted",
            Self::Banned => "banned",
            Self::Suspended => "suspended",
            Self::Disconnected => "disconnected",
        }
    }

    /// Why a failed channel takes its user offline.
    #[must_use]
    pub const fn from_channel_error(error: &ChannelError) -> Self {
        match error {
            ChannelError::IdleTimeout | ChannelError::Unacknowledged => Self::Timeout,
            ChannelError::PeerClosed(_) => Self::Exit,
            ChannelError::LocallyClosed => Self::Replaced,
            ChannelError::MessageTooLarge | ChannelError::SequenceExhausted => Self::Error,
        }
    }
}

impl core::fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
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
        /// Why.
        reason: LeaveReason,
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
    /// A store request failed (the user was told, and nothing changed).
    StoreFailed {
        /// What the driver reported.
        error: String,
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
    /// Dropped: an Initial with a valid cookie, with the queue of Initials
    /// waiting for their handshake full.
    pub dropped_queue_full: u64,
    /// Dropped: did not authenticate.
    pub dropped_unauthenticated: u64,
    /// Dropped: replayed.
    pub dropped_replay: u64,
    /// Dropped: from a banned address.
    pub dropped_banned: u64,
    /// Retry datagrams sent (cookies to unproven addresses).
    pub retries_sent: u64,
    /// Handshakes done: the X25519 work of answering an Initial with a
    /// valid cookie (at most [`ServerConfig::handshakes_per_turn`] per
    /// turn).
    pub handshakes: u64,
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
    /// Room messages stored and relayed.
    pub room_messages: u64,
    /// Direct messages stored for offline users.
    pub offline_stored: u64,
    /// Successful logins.
    pub logins: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// Password checks exempted from the per-account limit by a valid
    /// device token.
    pub device_token_logins: u64,
    /// Sessions that had not logged in, closed to make room for a new one.
    pub evicted_before_login: u64,
}

impl Server {
    pub(super) fn drop_event(&mut self, from: SocketAddr, reason: DropReason) {
        self.events.push_back(ServerEvent::Dropped { from, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_reasons_are_the_strings_of_the_protocol() {
        let all = [
            (LeaveReason::Exit, "exit"),
            (LeaveReason::Timeout, "timeout"),
            (LeaveReason::Replaced, "replaced"),
            (LeaveReason::TooSlow, "too slow"),
            (LeaveReason::Error, "error"),
            (LeaveReason::Shutdown, "shutdown"),
            (LeaveReason::Deleted, "deleted"),
            (LeaveReason::Banned, "banned"),
        ];
        for (reason, wire) in all {
            assert_eq!(reason.as_str(), wire);
            assert_eq!(reason.to_string(), wire);
        }
        assert_eq!(
            LeaveReason::from_channel_error(&ChannelError::SequenceExhausted),
            LeaveReason::Error
        );
        assert_eq!(
            LeaveReason::from_channel_error(&ChannelError::IdleTimeout),
            LeaveReason::Timeout
        );
    }
}
