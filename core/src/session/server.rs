//! The messages from the server to a client ([`ServerMessage`]), and the
//! items, failures and error codes they carry.

use super::{MessageRate, Operation, RegistrationMode, RoomInfo, RoomRole};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

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
        /// [`MAX_LISTED`](super::MAX_LISTED) names.
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
        /// [`MAX_LISTED`](super::MAX_LISTED).
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
        /// [`MAX_LISTED`](super::MAX_LISTED).
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
        /// The rooms, sorted by name: the first [`MAX_LISTED`](super::MAX_LISTED).
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
        /// [`MAX_LISTED`](super::MAX_LISTED).
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
    /// The room name breaks the rules of [`validate_room`](super::validate_room).
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
