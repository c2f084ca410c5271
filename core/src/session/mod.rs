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

/// A message from the server to a client.
///
/// Decoded through one flat struct of every field (`decode.rs`) rather than serde's internally
/// tagged enums, which first copy every field into a buffer of their own:
/// a client receiving a busy room decodes one of these per message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answers `User`: whether the name is new (will be registered) or
    /// existing, and asks for the password.
    PasswordRequired {
        /// The username as the server will use it.
        name: String,
        /// True when the password will register a new account.
        new_user: bool,
        /// For a new user on a server whose registration is not open: how
        /// one registers there (`closed`: not at all; `invite`: `password`
        /// must carry an invite code). Absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration: Option<RegistrationMode>,
    },
    /// The login succeeded.
    LoginOk {
        /// The username.
        name: String,
        /// True when the account was just created.
        new_user: bool,
        /// Who is online now, the new user included: the first
        /// [`MAX_LISTED`] names.
        online: Vec<String>,
        /// How many are online, when that is more than `online` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// A device token for this account, to keep and present with the
        /// password next time (PROTOCOL.md §5.8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// The session's limit on public and direct messages, so that a
        /// client can pace what its user types instead of having it
        /// refused (PROTOCOL.md §5.6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<MessageRate>,
        /// The rooms the account is a member of (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rooms: Vec<String>,
    },
    /// The login failed; the client may send `Password` (or `User`) again.
    LoginFailed {
        /// Why.
        reason: LoginFailure,
        /// A sentence for the user.
        message: String,
    },
    /// Acknowledges `Op PM`: the client may send `Pm`.
    OpOk {
        /// The operation acknowledged.
        op: Operation,
    },
    /// The online users: answers `Op DM` and `Who`.
    Online {
        /// Usernames, sorted case-insensitively: the first
        /// [`MAX_LISTED`].
        users: Vec<String>,
        /// How many are online, when that is more than `users` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// Those of `users` who are away, in the same order (absent when
        /// none is).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<String>,
    },
    /// A public message relayed from another user.
    Public {
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it, in milliseconds since the Unix
        /// epoch (servers before rooms did not send it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
    },
    /// A direct message from another user.
    Direct {
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it, in milliseconds since the Unix
        /// epoch (servers before rooms did not send it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
        /// For a message stored while the recipient was offline: its id
        /// (a client drops one whose id it has already seen).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// True for a message stored while the recipient was offline.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        offline: bool,
    },
    /// A user logged in.
    Joined {
        /// Who.
        user: String,
    },
    /// A user left.
    Left {
        /// Who.
        user: String,
        /// Why: `"exit"`, `"timeout"`, `"replaced"` (logged in again
        /// elsewhere), `"too slow"` (did not keep up), `"error"`,
        /// `"shutdown"` or `"deleted"` (the account was deleted).
        reason: String,
        /// With `exit`: what the user said when leaving, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Confirms a PM or DM.
    Confirm {
        /// The operation confirmed.
        op: Operation,
        /// For a DM, the recipient.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// How many users the message was delivered to.
        recipients: u32,
        /// For a DM to an offline user: the message was stored, and will be
        /// delivered when the recipient next logs in.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        stored: bool,
    },
    /// A request was refused.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
    /// Answers `Away`: the user's away text now (`None`: back).
    AwayOk {
        /// The away text, or `None` when the user is back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// The recipient of a direct message is away: sent to its sender after
    /// the `Confirm` (the message was delivered all the same).
    AwayReply {
        /// The recipient.
        user: String,
        /// The recipient's away text.
        text: String,
    },
    /// Answers `Whois`.
    Whois {
        /// The username, as registered.
        name: String,
        /// Whether the user is online.
        online: bool,
        /// When online: for how many seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        online_secs: Option<u64>,
        /// When online and away: the away text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// Answers `Op EX`: the session is over.
    Bye,
    /// The server is shutting down; the session is over.
    Shutdown,
    /// Answers `join`: the user is a member of the room. Its latest
    /// `backlog` messages follow as `room_msg`s marked `history`.
    Room {
        /// The room.
        room: String,
        /// The room's epoch.
        epoch: String,
        /// The offset of its latest message (0: none yet).
        offset: u64,
        /// Its topic (absent when none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        topic: String,
        /// Who made it.
        owner: String,
        /// Its members, sorted case-insensitively: the first
        /// [`MAX_LISTED`].
        members: Vec<String>,
        /// How many members it has, when that is more than `members` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// How many messages of history follow.
        backlog: u32,
        /// Its operators, besides the owner, in the order they were named
        /// (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ops: Vec<String>,
        /// Its muted members (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        muted: Vec<String>,
        /// Only operators may set the topic (absent when not).
        #[serde(default, skip_serializing_if = "is_false")]
        topic_locked: bool,
        /// Only operators may speak (absent when not).
        #[serde(default, skip_serializing_if = "is_false")]
        moderated: bool,
    },
    /// Answers `part`: the user is no longer a member.
    Parted {
        /// The room.
        room: String,
    },
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
        /// What they said when leaving, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A message in a room.
    RoomMsg {
        /// The room.
        room: String,
        /// Its offset in the room.
        offset: u64,
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it, in milliseconds since the Unix
        /// epoch.
        time: u64,
        /// True for a message from the room's history (after `join`,
        /// `history` or a resume) rather than one just sent.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        history: bool,
    },
    /// Answers `say`: the message is stored and relayed.
    Said {
        /// The room.
        room: String,
        /// The message's offset.
        offset: u64,
        /// When the server accepted it.
        time: u64,
    },
    /// Answers `rooms`.
    RoomList {
        /// The rooms, sorted by name: the first [`MAX_LISTED`].
        rooms: Vec<RoomInfo>,
        /// How many exist, when that is more than `rooms` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// Answers `names`.
    Names {
        /// The room.
        room: String,
        /// Its members, sorted case-insensitively: the first
        /// [`MAX_LISTED`].
        users: Vec<String>,
        /// How many members it has, when that is more than `users` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// Its owner (absent when it has none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        owner: String,
        /// Its operators, as in [`ServerMessage::Room`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ops: Vec<String>,
        /// Its muted members (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        muted: Vec<String>,
    },
    /// A room's topic was set (sent to every online member, the setter
    /// included).
    Topic {
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// The topic (empty: cleared).
        text: String,
    },
    /// Ends the answer to `history`.
    HistoryEnd {
        /// The room.
        room: String,
        /// The room's epoch.
        epoch: String,
        /// The offset of the room's latest message.
        offset: u64,
        /// How many `room_msg`s the answer had.
        count: u32,
        /// True when the store holds more in the asked direction.
        more: bool,
    },
    /// Answers a `resume` position after `login_ok`. With `recovered`, the
    /// `missed` messages came just before, as `room_msg`s marked
    /// `history`, and nothing was missed; without it none came (the
    /// epoch changed, or more were missed than the server replays) and the
    /// client has a gap in the room's history up to `offset`.
    RoomResume {
        /// The room.
        room: String,
        /// Whether every missed message was sent.
        recovered: bool,
        /// How many messages the client missed (0 when unknown: another
        /// epoch).
        missed: u64,
        /// The room's epoch.
        epoch: String,
        /// The offset of the room's latest message.
        offset: u64,
    },
    /// A moderation request was carried out (and written to the audit
    /// log): answers `suspend`, `ban_address`, `kick`, … (PROTOCOL.md
    /// §5.12).
    ModOk {
        /// The request's `t`.
        action: String,
        /// What it acted on: an account, an address range, a room.
        target: String,
    },
    /// A notice from a server admin to everyone online.
    Notice {
        /// The admin.
        from: String,
        /// The text.
        text: String,
    },
    /// Answers `audit`: the latest entries of the audit log, oldest first.
    AuditLog {
        /// The entries.
        entries: Vec<AuditItem>,
    },
    /// Answers `bans`: the address bans in force, by range.
    BanList {
        /// The bans, IPv4 ranges first, each family by address, at most
        /// [`MAX_BAN_PAGE`].
        bans: Vec<BanItem>,
        /// How many bans there are after the asked position in all (only
        /// when the list was cut): ask again with `after`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// Answers `invite`: a new single-use invite code, on disk.
    InviteCode {
        /// The code: 16 lowercase hexadecimal digits.
        code: String,
        /// When it expires, in milliseconds since the Unix epoch.
        expires: u64,
    },
    /// The user was removed from a room by an operator (and, with
    /// `banned`, banned from it).
    Kicked {
        /// The room.
        room: String,
        /// The operator.
        by: String,
        /// Why (absent when no reason was given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Banned too (absent when not).
        #[serde(default, skip_serializing_if = "is_false")]
        banned: bool,
        /// When the ban ends, in milliseconds since the Unix epoch (absent:
        /// no expiry, or no ban).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// A member's role in a room changed (to every online member).
    RoomRole {
        /// The room.
        room: String,
        /// Whose.
        user: String,
        /// The new role.
        role: RoomRole,
        /// Who changed it.
        by: String,
    },
    /// A member was muted (to every online member).
    MemberMuted {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
    },
    /// A member may speak again (to every online member).
    MemberUnmuted {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
    },
    /// A room's modes changed (to every online member): both, as they now
    /// are.
    RoomMode {
        /// The room.
        room: String,
        /// Who changed them.
        by: String,
        /// Only operators may set the topic.
        topic_locked: bool,
        /// Only operators may speak.
        moderated: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One address ban as [`ServerMessage::BanList`] sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanItem {
    /// The range, normalised (`203.0.113.0/24`, `2001:db8::/64`).
    pub range: String,
    /// When it ends, in milliseconds since the Unix epoch (absent: when it
    /// is lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Why (absent when no reason was given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The admin who banned it.
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
}

/// One entry of the audit log as [`ServerMessage::AuditLog`] sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditItem {
    /// Its number: unique on the server, and growing.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
    /// Who acted.
    pub by: String,
    /// What was done (the request's `t`).
    pub action: String,
    /// To whom or what.
    pub target: String,
    /// Why (absent when no reason was given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the effect ends, in milliseconds since the Unix epoch (absent:
    /// no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// Most address bans a server keeps: 10,000. A lookup costs one ordered
/// map search per prefix length in use, whatever the number of bans.
pub const MAX_BANS: usize = 10_000;

/// Most bans one `ban_list` holds: 200 (each at most about 350 bytes, so
/// the answer stays well below the largest message).
pub const MAX_BAN_PAGE: usize = 200;

/// Most entries one `audit_log` holds: 200 (also the default).
pub const MAX_AUDIT_PAGE: u32 = 200;

/// Why a login failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// The password does not match the account.
    WrongPassword,
    /// The password is empty or too long.
    InvalidPassword,
    /// The server could not store the new account; try again later.
    StoreFailed,
    /// The server is too busy to check passwords; try again later.
    Busy,
    /// Too many failed logins for this account or from this address; wait.
    Throttled,
    /// The last wrong password this connection may try: the server closes
    /// it (a new connection may try again, within the limits).
    TooManyAttempts,
    /// The password is right, but the account is suspended: the `message`
    /// says until when and why.
    Suspended,
    /// The server registers no new accounts (only existing ones log in).
    RegistrationClosed,
    /// A new account needs an invite code on this server, and `password`
    /// carried none.
    InviteRequired,
    /// The invite code is unknown, expired or used.
    InvalidInvite,
    /// A reason this version does not know, from a newer server: the
    /// `message` says what happened; the login failed all the same.
    #[serde(other)]
    Unknown,
}

/// What went wrong with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message could not be parsed.
    BadMessage,
    /// The username breaks the username rules.
    InvalidUsername,
    /// Someone is registering this name right now.
    UsernameBusy,
    /// The operation needs a login first.
    NotLoggedIn,
    /// Already logged in.
    AlreadyLoggedIn,
    /// `Pm`/`Dm` without the operation first. Sent by servers before
    /// `pm` and `dm` were accepted on their own; this one never sends it.
    NoOperation,
    /// The text is empty, too long or has control characters.
    InvalidText,
    /// DM to a name with no account.
    UnknownUser,
    /// DM to a user who is not online. Sent by servers before offline
    /// messages were stored; this one stores them instead.
    NotOnline,
    /// Too many requests; slow down.
    RateLimited,
    /// The server is busy with this session (a password check is running)
    /// or at a limit.
    Busy,
    /// The user logged in again from another place: this session is over
    /// (the server closes it after this message).
    Replaced,
    /// The room name breaks the rules of [`validate_room`].
    InvalidRoom,
    /// The request is about a room the user is not a member of.
    NotMember,
    /// No room has that name.
    NoSuchRoom,
    /// The user is in as many rooms as a user may be, or the server has as
    /// many rooms as it keeps.
    TooManyRooms,
    /// The room has as many members as a room may have.
    RoomFull,
    /// The topic is too long or has control characters.
    InvalidTopic,
    /// The recipient is offline and has as many waiting messages as the
    /// server keeps (in all, or from this sender).
    InboxFull,
    /// The server could not store the change; nothing happened. Try again
    /// later.
    StoreFailed,
    /// The user may not do this: a moderation request from someone
    /// without the role it needs.
    NotPermitted,
    /// The account was deleted: a logged-in session is over (the server
    /// closes it after this message); one that was logging in is back in
    /// AwaitUser.
    AccountDeleted,
    /// The session's address was banned by a server admin: the session is
    /// over, and new ones from that address get no answer.
    Banned,
    /// A `ban_address` or `unban_address` range that is malformed, too
    /// broad, not banned (unban), or covers the admin's own address.
    InvalidRange,
    /// A new address ban on a server that has [`MAX_BANS`] already.
    TooManyBans,
    /// A server admin suspended the account: this session is over (the
    /// server closes it after this message).
    Suspended,
    /// A server admin ended this session (the server closes it after this
    /// message).
    Disconnected,
    /// An `invite` while the server holds as many unused invite codes as
    /// it keeps.
    TooManyInvites,
    /// `join` of a room the account is banned from.
    BannedFromRoom,
    /// `say` in a room where the user is muted.
    Muted,
    /// `say` from a member who is not an operator in a moderated room.
    Moderated,
    /// A room's operators, bans or mutes are as many as a room keeps.
    ListFull,
    /// A code this version does not know, from a newer server: the
    /// `message` says what happened.
    #[serde(other)]
    Unknown,
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
pub use decode::decode_server;
pub use range::{IpNet, MAX_RANGE_TEXT, MIN_PREFIX_V4, MIN_PREFIX_V6, RangeError, parse_range};
pub use rules::{
    RoomError, TextError, UsernameError, username_key, username_skeleton, validate_room,
    validate_text, validate_username,
};

#[cfg(test)]
mod tests;
