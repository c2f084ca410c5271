//! What a client reports: its events, why a session ended, and why a
//! start or a command was refused.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::crypto::{self, KEY_LEN};
use crate::reliable::{ChannelError, SendError};
use crate::session::{
    AuditItem, BanItem, ErrorCode, LoginFailure, MAX_AWAY, MAX_PASSWORD, MAX_QUIT_MESSAGE,
    MAX_TOPIC, MessageRate, Operation, RangeError, RegistrationMode, RoomError, TextError,
    UsernameError,
};
use crate::wire::CloseCode;

#[cfg(doc)]
use super::{Client, ClientConfig};

/// Why a client's session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The server confirmed EX.
    Exit,
    /// The server is shutting down.
    ServerShutdown,
    /// The user logged in again from another place, which replaced this
    /// session.
    Replaced,
    /// The server ended the session on a server admin's word: the account
    /// was suspended, or the session disconnected (PROTOCOL.md §5.12).
    Ended {
        /// `suspended` or `disconnected`.
        code: ErrorCode,
        /// The server's sentence: until when and why, or why.
        message: String,
    },
    /// The server closed the connection with this code.
    ServerClosed(CloseCode),
    /// The server stopped answering.
    ServerLost(ChannelError),
    /// The server never answered the handshake within
    /// [`ClientConfig::handshake_timeout`].
    NoAnswer,
    /// The server proved a different key than the pinned one.
    ServerKeyMismatch {
        /// The pinned key.
        expected: [u8; KEY_LEN],
        /// The key the server proved.
        actual: [u8; KEY_LEN],
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Exit => f.write_str("session ended"),
            CloseReason::ServerShutdown => f.write_str("the server is shutting down"),
            CloseReason::Replaced => {
                f.write_str("you logged in from another place; this session is over")
            }
            CloseReason::Ended { message, .. } => f.write_str(message),
            CloseReason::ServerClosed(CloseCode::UnknownConnection) => {
                f.write_str("the server does not know this session (it may have restarted)")
            }
            CloseReason::ServerClosed(CloseCode::Refused) => {
                f.write_str("the server dropped this session: it was not keeping up")
            }
            CloseReason::ServerClosed(code) => {
                write!(f, "the server closed the connection ({code:?})")
            }
            CloseReason::ServerLost(e) => write!(f, "lost the server: {e}"),
            CloseReason::NoAnswer => f.write_str("no answer from the server"),
            CloseReason::ServerKeyMismatch { expected, actual } => write!(
                f,
                "THE SERVER'S KEY HAS CHANGED: expected {}, got {}. Someone may be \
                 impersonating the server, or it was reinstalled; refusing to connect",
                crypto::Hex(expected),
                crypto::Hex(actual)
            ),
        }
    }
}

/// Something that happened, for the user interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake proved the server holds this key (the pinned one, if
    /// any); a driver that trusts on first use remembers it.
    ServerKey([u8; KEY_LEN]),
    /// The server asks for the password; `new_user` says whether it will
    /// register a new account.
    PasswordRequired {
        /// The username.
        name: String,
        /// True for a new account.
        new_user: bool,
        /// For a new account on a server whose registration is not open:
        /// `closed` (it will be refused) or `invite` (the password needs
        /// an invite code, [`Client::set_invite`]).
        registration: Option<RegistrationMode>,
    },
    /// Logged in.
    LoggedIn {
        /// The username.
        name: String,
        /// True when the account was just created.
        new_user: bool,
        /// Who is online: the first 1,000 names at most.
        online: Vec<String>,
        /// How many are online, when that is more than `online` lists.
        count: Option<u32>,
        /// A device token for this account: keep it (private to the user)
        /// and set it as [`ClientConfig::device_token`] next time.
        device: Option<String>,
        /// The session's limit on public and direct messages, if the
        /// server states it: pace sends to it rather than have them
        /// refused.
        rate: Option<MessageRate>,
        /// The rooms the account is a member of.
        rooms: Vec<String>,
    },
    /// The login failed; submit the password again to retry.
    LoginFailed {
        /// Why.
        reason: LoginFailure,
        /// A sentence for the user.
        message: String,
    },
    /// The server acknowledged an operation: the message may follow.
    OperationReady(Operation),
    /// The online list.
    Online {
        /// The names: the first 1,000 at most.
        users: Vec<String>,
        /// How many are online, when that is more than `users` lists.
        count: Option<u32>,
        /// Those of `users` who are away.
        away: Vec<String>,
    },
    /// The server took the user's away text ([`Client::set_away`]):
    /// `None` when the user is back.
    Away(Option<String>),
    /// A direct message was delivered to a user who is away.
    AwayReply {
        /// The recipient.
        user: String,
        /// Its away text.
        text: String,
    },
    /// A moderation request was carried out (PROTOCOL.md §5.12).
    ModOk {
        /// The request's `t`.
        action: String,
        /// What it acted on.
        target: String,
    },
    /// A notice from a server admin to everyone online.
    Notice {
        /// The admin.
        from: String,
        /// The text.
        text: String,
    },
    /// The answer to an `audit` request: the latest entries, oldest first.
    AuditLog(Vec<AuditItem>),
    /// The answer to [`Client::request_bans`]: the address bans in force.
    BanList {
        /// The bans, by range.
        bans: Vec<BanItem>,
        /// How many there are in all from the asked position, when the
        /// list was cut.
        count: Option<u32>,
    },
    /// The answer to [`Client::request_invite`]: a single-use invite code.
    InviteCode {
        /// The code.
        code: String,
        /// When it expires, in milliseconds since the Unix epoch.
        expires: u64,
    },
    /// The user was removed from a room by its operator (PROTOCOL.md
    /// §5.13).
    Kicked {
        /// The room.
        room: String,
        /// The operator.
        by: String,
        /// Why, if said.
        reason: Option<String>,
        /// Banned too.
        banned: bool,
        /// When the ban ends, in milliseconds since the Unix epoch.
        until: Option<u64>,
    },
    /// A member's role in a room changed.
    RoomRole {
        /// The room.
        room: String,
        /// Whose.
        user: String,
        /// The new role.
        role: crate::session::RoomRole,
        /// Who changed it.
        by: String,
    },
    /// A member was muted (`muted`) or may speak again.
    MemberMuted {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
        /// Muted now.
        muted: bool,
    },
    /// A room's modes changed.
    RoomMode {
        /// The room.
        room: String,
        /// By whom.
        by: String,
        /// Only operators may set the topic.
        topic_locked: bool,
        /// Only operators may speak.
        moderated: bool,
    },
    /// A room's roles, after [`ClientEvent::RoomJoined`] or
    /// [`ClientEvent::Names`] when any is set.
    RoomRoles {
        /// The room.
        room: String,
        /// Its operators (besides the owner).
        ops: Vec<String>,
        /// Its muted members.
        muted: Vec<String>,
        /// Only operators may set the topic.
        topic_locked: bool,
        /// Only operators may speak.
        moderated: bool,
    },
    /// The answer to [`Client::request_whois`].
    Whois {
        /// The username, as registered.
        name: String,
        /// Whether the user is online.
        online: bool,
        /// When online: for how many seconds.
        online_secs: Option<u64>,
        /// When online and away: the away text.
        away: Option<String>,
    },
    /// A public message.
    Public {
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it (ms since the Unix epoch), if it
        /// said.
        time: Option<u64>,
    },
    /// A direct message.
    Direct {
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it (ms since the Unix epoch), if it
        /// said.
        time: Option<u64>,
        /// True for a message stored while the user was offline.
        offline: bool,
    },
    /// A user logged in.
    Joined(String),
    /// A user left.
    Left {
        /// Who.
        user: String,
        /// Why.
        reason: String,
        /// What the user said when leaving, if anything.
        message: Option<String>,
    },
    /// A PM or DM was delivered.
    Confirmed {
        /// Which operation.
        op: Operation,
        /// For a DM, the recipient.
        to: Option<String>,
        /// How many users got it.
        recipients: u32,
        /// A DM to an offline user was stored for later delivery.
        stored: bool,
    },
    /// The server refused a request.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
    /// The session is over.
    Closed(CloseReason),
    /// Answers a join: the user is a member of `room`; `backlog` messages
    /// of history follow as [`ClientEvent::RoomMessage`]s.
    RoomJoined {
        /// The room.
        room: String,
        /// Its epoch.
        epoch: String,
        /// The offset of its latest message.
        offset: u64,
        /// Its topic (empty: none).
        topic: String,
        /// Who made it.
        owner: String,
        /// Its members (the first [`crate::session::MAX_LISTED`]).
        members: Vec<String>,
        /// How many members, when more than `members` lists.
        count: Option<u32>,
        /// Messages of history that follow.
        backlog: u32,
    },
    /// The user left a room.
    Parted(String),
    /// Another user joined a room the user is in.
    MemberJoined {
        /// The room.
        room: String,
        /// Who.
        user: String,
    },
    /// Another user left a room the user is in.
    MemberLeft {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// What they said, if anything.
        reason: Option<String>,
    },
    /// A message in a room.
    RoomMessage {
        /// The room.
        room: String,
        /// Its offset.
        offset: u64,
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it (ms since the Unix epoch).
        time: u64,
        /// True for a message of the room's history.
        history: bool,
    },
    /// The user's room message was stored and relayed.
    Said {
        /// The room.
        room: String,
        /// Its offset.
        offset: u64,
        /// When the server accepted it.
        time: u64,
    },
    /// The rooms that exist.
    RoomList {
        /// The rooms (the first [`crate::session::MAX_LISTED`]).
        rooms: Vec<crate::session::RoomInfo>,
        /// How many, when more than `rooms` lists.
        count: Option<u32>,
    },
    /// A room's members.
    Names {
        /// The room.
        room: String,
        /// Members (the first [`crate::session::MAX_LISTED`]).
        users: Vec<String>,
        /// How many, when more than `users` lists.
        count: Option<u32>,
    },
    /// A room's topic was set.
    Topic {
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// The topic (empty: cleared).
        text: String,
    },
    /// The end of a page of history.
    HistoryEnd {
        /// The room.
        room: String,
        /// How many messages the page had.
        count: u32,
        /// Whether the server holds more in that direction.
        more: bool,
    },
    /// The answer to a resume position: with `recovered`, the `missed`
    /// messages came just before; without, the room's history has a gap.
    Resumed {
        /// The room.
        room: String,
        /// Whether every missed message came.
        recovered: bool,
        /// How many were missed (0 when unknown).
        missed: u64,
    },
}

/// Why a client could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The username breaks the username rules.
    Username(UsernameError),
    /// The handshake's first message could not be built.
    Handshake,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Username(e) => write!(f, "invalid username: {e}"),
            StartError::Handshake => f.write_str("the handshake could not be started"),
        }
    }
}

/// Why a command was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Needs a login first.
    NotLoggedIn,
    /// The text breaks the text rules.
    InvalidText(TextError),
    /// The recipient's name breaks the username rules.
    InvalidUsername(UsernameError),
    /// The password is empty or longer than [`MAX_PASSWORD`].
    InvalidPassword,
    /// A reason for leaving longer than [`MAX_QUIT_MESSAGE`] bytes.
    ReasonTooLong(usize),
    /// An away text longer than [`MAX_AWAY`] bytes.
    AwayTooLong(usize),
    /// The room name breaks the room rules.
    InvalidRoom(RoomError),
    /// A topic longer than [`MAX_TOPIC`] bytes.
    TopicTooLong(usize),
    /// A room ban of 0 seconds or longer than
    /// [`crate::session::MAX_ROOM_BAN_SECS`].
    BanTooLong(u64),
    /// The channel refused it.
    Send(SendError),
    /// The session is over.
    Closed,
    /// An address range that is malformed or too broad.
    InvalidRange(RangeError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotLoggedIn => f.write_str("not logged in yet"),
            CommandError::InvalidText(e) => e.fmt(f),
            CommandError::InvalidUsername(e) => e.fmt(f),
            CommandError::InvalidPassword => {
                write!(f, "the password must be 1 to {MAX_PASSWORD} bytes")
            }
            CommandError::ReasonTooLong(n) => write!(
                f,
                "the reason is {n} bytes; at most {MAX_QUIT_MESSAGE} are shown to the others"
            ),
            CommandError::AwayTooLong(n) => {
                write!(
                    f,
                    "the away text is {n} bytes; at most {MAX_AWAY} are allowed"
                )
            }
            CommandError::InvalidRoom(e) => e.fmt(f),
            CommandError::TopicTooLong(n) => {
                write!(f, "the topic is {n} bytes; at most {MAX_TOPIC} are allowed")
            }
            CommandError::BanTooLong(s) => write!(
                f,
                "a room ban lasts 1 to {} seconds (365 days), not {s}; leave the duration out for no end",
                crate::session::MAX_ROOM_BAN_SECS
            ),
            CommandError::Send(e) => e.fmt(f),
            CommandError::Closed => f.write_str("the session is over"),
            CommandError::InvalidRange(e) => e.fmt(f),
        }
    }
}
