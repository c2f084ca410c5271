//! The session layer: the messages a client and the server exchange over a
//! reliable channel, and the rules for usernames and message text.
//!
//! Every message is one JSON object with a `"t"` field naming its type,
//! encoded as UTF-8 and sent as one reliable-channel message.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Longest username, in bytes.
pub const MAX_USERNAME: usize = 32;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;
/// Longest chat text (public or direct), in bytes of UTF-8.
pub const MAX_TEXT: usize = 60_000;
/// Most names in an online list (`login_ok`, `online`): 1,000. Beyond it
/// the list is cut and says how many are online in all, so that the
/// answer stays one modest message however crowded the server is.
pub const MAX_LISTED: usize = 1000;

/// An operation of the assignment's menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Public message to everyone online.
    PM,
    /// Direct message to one online user.
    DM,
    /// Exit.
    EX,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::PM => "PM",
            Operation::DM => "DM",
            Operation::EX => "EX",
        })
    }
}

/// A message from a client to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Step 2: the username to log in as or register.
    User {
        /// The username.
        name: String,
    },
    /// Step 3: the password for the username.
    Password {
        /// The password.
        password: String,
        /// A device token from an earlier `login_ok` of this account
        /// (optional): exempts the check from the per-account limit on
        /// failed logins (PROTOCOL.md §5.8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// Where the client left each room it follows (optional): after
        /// `login_ok` the server answers each with `room_resume`
        /// (PROTOCOL.md §5.10).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resume: Vec<RoomPosition>,
        /// An invite code (optional): registers a new account on a server
        /// whose registration is by invite (PROTOCOL.md §5.12). Ignored
        /// for an existing account and when registration is open.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
    },
    /// Starts an operation (PM, DM or EX).
    Op {
        /// The operation.
        op: Operation,
        /// With EX: why the user leaves, shown to the others with `left`
        /// (optional; valid text of at most [`MAX_QUIT_MESSAGE`] bytes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The text of a public message, after `Op PM` was acknowledged.
    Pm {
        /// The text.
        text: String,
    },
    /// A direct message, after `Op DM` was answered with the online list.
    Dm {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
    },
    /// Asks for the online list at any time after login.
    Who,
    /// Marks the user away, with a text that others are shown (a DM's
    /// sender, `whois`); without `text`, or with an empty one, the user is
    /// back. Answered by [`ServerMessage::AwayOk`].
    Away {
        /// Why the user is away: text (see [`validate_text`]) of at most
        /// [`MAX_AWAY`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Asks about one user: answered by [`ServerMessage::Whois`], or by
    /// `error` `unknown_user` when no account has that name.
    Whois {
        /// The username (case-insensitive).
        name: String,
    },
    /// Joins a room, making it if it does not exist: answered by
    /// [`ServerMessage::Room`] and the room's latest messages.
    Join {
        /// The room (see [`validate_room`]).
        room: String,
    },
    /// Leaves a room: answered by [`ServerMessage::Parted`].
    Part {
        /// The room.
        room: String,
        /// Why, shown to the other members (optional; text of at most
        /// [`MAX_QUIT_MESSAGE`] bytes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A message to a room the user is a member of: answered by
    /// [`ServerMessage::Said`] once it is stored.
    Say {
        /// The room.
        room: String,
        /// The text.
        text: String,
    },
    /// Asks for the rooms that exist: answered by
    /// [`ServerMessage::RoomList`].
    Rooms,
    /// Asks for a room's members: answered by [`ServerMessage::Names`].
    Names {
        /// The room.
        room: String,
    },
    /// Sets a room's topic (members only; empty clears it): every online
    /// member gets [`ServerMessage::Topic`].
    Topic {
        /// The room.
        room: String,
        /// The topic: text of at most [`MAX_TOPIC`] bytes, or empty.
        text: String,
    },
    /// Asks for a page of a room's history (members only): answered by
    /// `room_msg`s marked `history` and then [`ServerMessage::HistoryEnd`].
    /// With `before`, the latest messages below that offset; with `after`,
    /// the first ones above it; with neither, the latest.
    History {
        /// The room.
        room: String,
        /// Messages with an offset below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Messages with an offset above this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// How many, at most [`MAX_HISTORY_PAGE`] (the default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// A notice to everyone online (server admins only): each gets
    /// [`ServerMessage::Notice`]; answered by [`ServerMessage::ModOk`].
    Notice {
        /// The text (the rules of `pm`).
        text: String,
    },
    /// Asks for the latest entries of the audit log (server admins only):
    /// answered by [`ServerMessage::AuditLog`].
    Audit {
        /// How many, at most [`MAX_AUDIT_PAGE`] (the default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Bans an address range (server admins only): its datagrams are
    /// dropped unanswered and its sessions end; answered by
    /// [`ServerMessage::ModOk`] once the ban is on disk.
    BanAddress {
        /// An address or a network in CIDR notation ([`parse_range`]).
        range: String,
        /// How long the ban lasts, in seconds (at least 1); absent: until
        /// it is lifted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<u64>,
        /// Why (text of at most [`MAX_QUIT_MESSAGE`] bytes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lifts the ban of exactly this range (server admins only).
    UnbanAddress {
        /// The range, as banned (any spelling of it).
        range: String,
    },
    /// Asks for the address bans in force (server admins only): answered
    /// by [`ServerMessage::BanList`], at most [`MAX_BAN_PAGE`] at a time.
    Bans {
        /// Only the ranges after this one, in the list's order (the next
        /// page: the last range of the previous one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Suspends an account (server admins only): its live session ends and
    /// it cannot log in until the suspension ends or is lifted. Answered
    /// by [`ServerMessage::ModOk`] once the suspension is on disk.
    Suspend {
        /// The account (any case).
        name: String,
        /// How long, in seconds: 1 to [`MAX_SUSPEND_SECS`]; absent: until
        /// lifted. The server computes the end from its own clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<u64>,
        /// Why: text of at most [`MAX_REASON`] bytes, shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lifts an account's suspension (server admins only): answered by
    /// [`ServerMessage::ModOk`] once that is on disk.
    Unsuspend {
        /// The account (any case).
        name: String,
    },
    /// Ends a user's live session (server admins only): answered by
    /// [`ServerMessage::ModOk`].
    Disconnect {
        /// The user (any case).
        name: String,
        /// Why: text of at most [`MAX_REASON`] bytes, shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Sets who may register new accounts (server admins only): answered
    /// by [`ServerMessage::ModOk`] once the mode is on disk.
    Registration {
        /// The new mode.
        mode: RegistrationMode,
    },
    /// Asks for a new single-use invite code (server admins only):
    /// answered by [`ServerMessage::InviteCode`] once it is on disk.
    Invite,
    /// Removes a member from a room (the room's operators, PROTOCOL.md
    /// §5.13): answered by [`ServerMessage::ModOk`].
    RoomKick {
        /// The room.
        room: String,
        /// The member.
        user: String,
        /// Why: text of at most [`MAX_QUIT_MESSAGE`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Bans an account from a room, for `secs` or for good (a member is
    /// removed too).
    RoomBan {
        /// The room.
        room: String,
        /// The account.
        user: String,
        /// How long, in seconds: 1 to [`MAX_ROOM_BAN_SECS`] (absent: no
        /// expiry).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<u64>,
        /// Why: text of at most [`MAX_QUIT_MESSAGE`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lifts a room ban.
    RoomUnban {
        /// The room.
        room: String,
        /// The account.
        user: String,
    },
    /// Refuses a member's `say` in a room until `room_unmute`.
    RoomMute {
        /// The room.
        room: String,
        /// The member.
        user: String,
    },
    /// Lets a muted member speak again.
    RoomUnmute {
        /// The room.
        room: String,
        /// The account.
        user: String,
    },
    /// Makes a member an operator of the room (the owner only).
    RoomOp {
        /// The room.
        room: String,
        /// The member.
        user: String,
    },
    /// Makes an operator a plain member again (the owner only).
    RoomDeop {
        /// The room.
        room: String,
        /// The operator.
        user: String,
    },
    /// Sets a room's modes; an absent one stays as it is.
    RoomMode {
        /// The room.
        room: String,
        /// Only operators may set the topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_locked: Option<bool>,
        /// Only operators may speak.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moderated: Option<bool>,
    },
}

/// Most operators a room has besides its owner: 100.
pub const MAX_ROOM_OPS: usize = 100;
/// Most accounts banned from one room: 1,000 (expired bans are dropped
/// first when it is reached).
pub const MAX_ROOM_BANS: usize = 1000;
/// Most accounts muted in one room: 1,000.
pub const MAX_ROOM_MUTED: usize = 1000;
/// Longest room ban with an expiry: 365 days, in seconds (a longer one is
/// a ban without expiry).
pub const MAX_ROOM_BAN_SECS: u64 = 365 * 24 * 3600;

/// A member's role in a room (PROTOCOL.md §5.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    /// The owner: may name and remove operators.
    Owner,
    /// An operator: may kick, ban, mute and set the modes.
    Op,
    /// A member.
    Member,
    /// A role this version does not know, from a newer server.
    #[serde(other)]
    Unknown,
}

/// Who may register a new account (PROTOCOL.md §5.12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone (the default).
    #[default]
    Open,
    /// Nobody: only existing accounts log in.
    Closed,
    /// Whoever has an invite code from a server admin.
    Invite,
}

impl RegistrationMode {
    /// The mode as the protocol spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Invite => "invite",
        }
    }

    /// The mode spelled `s` (`open`, `closed` or `invite`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "invite" => Some(Self::Invite),
            _ => None,
        }
    }
}

/// Longest reason of a `suspend` or `disconnect`, in bytes: 200.
pub const MAX_REASON: usize = 200;

/// Longest suspension a `suspend` may ask for, in seconds: 10 years
/// (315,360,000 s). Longer: suspend without `secs` (until lifted).
pub const MAX_SUSPEND_SECS: u64 = 10 * 365 * 24 * 3600;

/// Longest invite code a `password` may carry, in bytes: 64 (the server's
/// codes are 16).
pub const MAX_INVITE: usize = 64;

/// Where a client left a room: the room's epoch and the offset of the last
/// message it saw (0: none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPosition {
    /// The room.
    pub room: String,
    /// The room's epoch when the client saw that message.
    pub epoch: String,
    /// The offset of the last message the client saw.
    pub offset: u64,
}

/// A room as [`ServerMessage::RoomList`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room.
    pub room: String,
    /// How many members it has.
    pub members: u32,
    /// Its topic (absent when none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
}

/// Longest room name, `#` included: 33 bytes.
pub const MAX_ROOM: usize = 33;

/// Longest topic, in bytes: 300.
pub const MAX_TOPIC: usize = 300;

/// Most messages in one page of history: 200.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Most positions a `password` message may carry in `resume`: 1,000.
pub const MAX_RESUME: usize = 1000;

/// Longest away text (`away`'s `text`), in bytes: 200.
pub const MAX_AWAY: usize = 200;

/// Longest reason a user may give when leaving (`op EX`'s `reason`), in
/// bytes: 200.
pub const MAX_QUIT_MESSAGE: usize = 200;

/// A limit on the public and direct messages of a session: `burst` at once,
/// then one more every `interval_ms` milliseconds (a token bucket that
/// starts full when the session logs in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRate {
    /// Messages that may be sent at once.
    pub burst: u32,
    /// Milliseconds to earn one more.
    pub interval_ms: u32,
}

/// Encodes a message as JSON bytes.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing these plain enums to a Vec cannot fail: no maps with
    // non-string keys, no I/O.
    serde_json::to_vec(message).unwrap_or_default()
}

/// Why a session message could not be decoded: not JSON, not an object of
/// a known type, a missing or mistyped field. The text says what and where
/// (for the `bad_message` error sent back, and for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError(String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Error> for MessageError {
    fn from(e: serde_json::Error) -> Self {
        MessageError(alloc::string::ToString::to_string(&e))
    }
}

/// Decodes a message from JSON bytes.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, MessageError> {
    Ok(serde_json::from_slice(bytes)?)
}

mod decode;
mod range;
mod rules;
mod server;
pub use decode::{Chat, ChatKind, decode_server, read_chat};
pub use range::{IpNet, MAX_RANGE_TEXT, MIN_PREFIX_V4, MIN_PREFIX_V6, RangeError, parse_range};
pub use rules::{
    RoomError, TextError, UsernameError, username_key, username_skeleton, validate_room,
    validate_text, validate_username,
};
pub use server::{
    AuditItem, BanItem, ErrorCode, LoginFailure, MAX_AUDIT_PAGE, MAX_BAN_PAGE, MAX_BANS,
    ServerMessage,
};

#[cfg(test)]
mod tests;
