//! [`ChatEvent`]: every thing the console shows, as a structured event.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use super::{Delivery, as_rfc3339, room};

/// Something to show the user.
///
/// Serialized (serde) with a `type` field naming the variant in snake case,
/// the variant's fields beside it: `{"type":"public","from":"bob","text":"hi"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatEvent {
    /// Opening a connection: `attempt` is 0 for the first one, then counts
    /// the reconnection attempts since the connection was lost.
    Connecting {
        /// The username.
        user: String,
        /// 0, or the reconnection attempt.
        attempt: u32,
    },
    /// The server asks for the password.
    PasswordRequired {
        /// The username, as the server spells it.
        user: String,
        /// True when the password will register a new account.
        new_user: bool,
    },
    /// Logged in (again, after a reconnection).
    LoggedIn {
        /// The username, as the server spells it.
        user: String,
        /// True when the account was just created.
        new_user: bool,
        /// Who is online (the first 1,000 names at most).
        online: Vec<String>,
        /// How many are online, when that is more than `online` lists.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// Who is online (after DM or `/who`).
    Online {
        /// The usernames (the first 1,000 at most).
        users: Vec<String>,
        /// How many are online, when that is more than `users` lists.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// Those of `users` who are away (`/whois` tells why).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        away: Vec<String>,
    },
    /// `/away`: the server took this user's away text (`None`: back).
    Away {
        /// The away text, or `None` when back.
        text: Option<String>,
    },
    /// A direct message this user sent went to someone who is away.
    AwayReply {
        /// The recipient.
        user: String,
        /// Its away text.
        text: String,
    },
    /// The answer to `/whois`.
    Whois {
        /// The username, as registered.
        user: String,
        /// Whether the user is online.
        online: bool,
        /// When online: for how many seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        online_secs: Option<u64>,
        /// When online and away: the away text.
        #[serde(skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// A public message from someone else.
    Public {
        /// The sender.
        from: String,
        /// The text (for an action, without its `/me `).
        text: String,
        /// True for `/me ACTION`.
        #[serde(skip_serializing_if = "is_false")]
        action: bool,
        /// True when the text names this user (as a word, case ignored):
        /// highlighted, and the terminal's bell rings ([`rings_bell`](super::rings_bell)).
        #[serde(skip_serializing_if = "is_false")]
        mention: bool,
    },
    /// A direct message to this user.
    Direct {
        /// The sender.
        from: String,
        /// The text.
        text: String,
    },
    /// A user logged in.
    Join {
        /// Who.
        user: String,
    },
    /// A user left.
    Leave {
        /// Who.
        user: String,
        /// Why, as the server says it (`exit`, `timeout`, ...).
        reason: String,
        /// What the user said when leaving (`/quit REASON`), if anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A message waits its turn: the server takes messages at a limited
    /// rate (stated at login), and the console sends them at that pace
    /// rather than have them refused.
    Queued {
        /// Messages waiting, this one included.
        waiting: usize,
    },
    /// A message the server refused or may not have delivered, by its text
    /// (so that the user can send it again).
    NotSent {
        /// For a direct message, the recipient.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// The server delivered a message this user sent.
    Confirmation {
        /// Public or direct.
        kind: Delivery,
        /// For a direct message, the recipient.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// How many users got it.
        recipients: u32,
        /// The text delivered (for an action, without its `/me `), when
        /// the console knows it.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// True for `/me ACTION`.
        #[serde(skip_serializing_if = "is_false")]
        action: bool,
    },
    /// A message this user sent, shown as chat once the server confirmed
    /// it (with [`ConsoleConfig::show_sent`](crate::ui::ConsoleConfig::show_sent)):
    /// `<alice> hello`, `* alice waves`, `-> bob: psst`.
    Sent {
        /// This user's name.
        from: String,
        /// For a direct message, the recipient.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The text (for an action, without its `/me `).
        text: String,
        /// True for `/me ACTION`.
        #[serde(skip_serializing_if = "is_false")]
        action: bool,
    },
    /// Something went wrong: a refusal from the server, or a line the
    /// console could not use.
    Error {
        /// A sentence for the user.
        message: String,
    },
    /// The connection is gone.
    Disconnect {
        /// Why.
        reason: String,
        /// Seconds until the next attempt to reconnect, or `None` when the
        /// client gives up.
        reconnect_in: Option<u64>,
    },
    /// The session ended as the user asked.
    Bye,
    /// Any other line for the user: help, hints.
    Info {
        /// The line.
        text: String,
    },
    /// `/more`: a message that was shown cut (longer than [`SHOWN_CHARS`](super::SHOWN_CHARS)),
    /// again, whole.
    More {
        /// The message ([`ChatEvent::Public`], [`ChatEvent::Direct`],
        /// [`ChatEvent::Sent`], [`ChatEvent::RoomMessage`] or
        /// [`ChatEvent::OfflineDirect`]).
        message: Box<ChatEvent>,
    },
    /// A moderation request was carried out.
    ModOk {
        /// The request (`suspend`, `kick`, …).
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
    /// The answer to `/invite`: a single-use invite code.
    InviteCode {
        /// The code.
        code: String,
        /// When it expires.
        #[serde(serialize_with = "as_rfc3339")]
        expires: u64,
    },
    /// The answer to `/audit`: entries of the audit log, oldest first.
    Audit {
        /// The entries.
        entries: Vec<crate::session::AuditItem>,
    },
    /// The answer to `/bans`: the address bans in force, by range.
    Bans {
        /// The bans.
        bans: Vec<crate::session::BanItem>,
        /// How many there are in all from the asked position, when the
        /// list was cut (absent otherwise).
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// This user was removed from a room by an operator (PROTOCOL.md
    /// §5.13).
    Kicked {
        /// The room.
        room: String,
        /// The operator.
        by: String,
        /// Why, if said.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Banned too.
        banned: bool,
        /// When the ban ends (ms since the Unix epoch; RFC 3339 UTC text
        /// in JSON); absent: no end, or no ban.
        #[serde(
            skip_serializing_if = "Option::is_none",
            serialize_with = "room::as_rfc3339_opt"
        )]
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
    /// A member was muted in a room (`muted`), or may speak again.
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
    /// A room's operators, muted members and modes, as `/join` and
    /// `/names` tell them (only when any is set).
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
    /// The answer to `/ignore` alone: the users this client hides.
    Ignored {
        /// Their names, sorted.
        users: Vec<String>,
    },
    /// A direct message stored by the server while this user was offline,
    /// delivered at login. Serialized as a `direct` event with
    /// `offline: true` and the time it was sent.
    #[serde(rename = "direct")]
    OfflineDirect {
        /// The sender.
        from: String,
        /// The text.
        text: String,
        /// When the server accepted it (ms since the Unix epoch), as RFC
        /// 3339 UTC text in JSON.
        #[serde(serialize_with = "as_rfc3339")]
        sent: u64,
        /// Always true: it waited for this user.
        offline: bool,
    },
    /// A message in a room (one of this user's own, on a terminal, once
    /// the server stored it).
    RoomMessage {
        /// The room.
        room: String,
        /// The sender.
        from: String,
        /// The text (for an action, without its `/me `).
        text: String,
        /// True for `/me ACTION`.
        #[serde(skip_serializing_if = "is_false")]
        action: bool,
        /// True when the text names this user: highlighted, and the bell
        /// rings.
        #[serde(skip_serializing_if = "is_false")]
        mention: bool,
        /// True for a message of the room's history (the backlog of a
        /// join, `/history`, or what was missed while away).
        #[serde(skip_serializing_if = "is_false")]
        history: bool,
        /// Its offset in the room's history.
        offset: u64,
        /// When the server accepted it (ms since the Unix epoch), as RFC
        /// 3339 UTC text in JSON.
        #[serde(serialize_with = "as_rfc3339")]
        sent: u64,
    },
    /// This user is in a room now (`/join`): its members and topic; its
    /// latest messages follow as history.
    RoomJoined {
        /// The room.
        room: String,
        /// Its topic (empty: none).
        #[serde(skip_serializing_if = "String::is_empty")]
        topic: String,
        /// Its members (the first 1,000).
        members: Vec<String>,
        /// How many members, when more than `members` lists.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// How many messages of history follow.
        backlog: u32,
    },
    /// This user left a room (`/part`).
    Parted {
        /// The room.
        room: String,
    },
    /// Another user joined a room this user is in.
    MemberJoined {
        /// The room.
        room: String,
        /// Who.
        user: String,
    },
    /// Another user left a room this user is in.
    MemberLeft {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// What they said when leaving, if anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The server stored a message this user sent to a room (shown with
    /// `/confirm on`, like [`ChatEvent::Confirmation`]).
    Said {
        /// The room.
        room: String,
        /// The message's offset in the room's history.
        offset: u64,
        /// The text, when the console knows it.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// The rooms that exist (`/rooms`).
    RoomList {
        /// The rooms (the first 1,000): `room`, `members`, `topic`.
        rooms: Vec<crate::session::RoomInfo>,
        /// How many rooms, when more than `rooms` lists.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// A room's members (`/names`).
    Names {
        /// The room.
        room: String,
        /// The members (the first 1,000).
        users: Vec<String>,
        /// How many members, when more than `users` lists.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// A room's topic: set by `by`, or (without `by`) as last known, for
    /// `/topic` without text.
    Topic {
        /// The room.
        room: String,
        /// Who set it, when it was just set.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The topic (empty: none).
        text: String,
    },
    /// The end of a page of history (`/history`).
    HistoryEnd {
        /// The room.
        room: String,
        /// How many messages the page had.
        count: u32,
        /// Whether older messages exist.
        more: bool,
    },
    /// After a reconnection: whether what a room said meanwhile came.
    /// With `recovered`, the `missed` messages came just before (as
    /// history); without, none came and the history has a gap of `missed`
    /// messages (0: the room's history was reset).
    Resumed {
        /// The room.
        room: String,
        /// Whether every missed message came.
        recovered: bool,
        /// How many messages were missed.
        missed: u64,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}
