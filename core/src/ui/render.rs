//! What the console shows, as structured events and as text.
//!
//! [`ChatEvent`] is every thing a user sees, in a form a driver can print
//! ([`render_plain`], [`render_styled`]) or serialize (one JSON object per
//! line: `chatclient --json`). Received names and texts are kept as
//! received in the event and made harmless (control characters replaced)
//! when rendered.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Serialize;

use super::sanitize;

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
        /// highlighted, and the terminal's bell rings ([`rings_bell`]).
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
    /// it (with [`ConsoleConfig::show_sent`](super::ConsoleConfig::show_sent)):
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
    /// `/more`: a message that was shown cut (longer than [`SHOWN_CHARS`]),
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

/// Messages longer than this many characters (about 12 rows of an
/// 80-column terminal) are shown cut by [`render_styled`], with a marker
/// that says how much is left and that `/more` shows it all: a
/// 60,000-byte message must not flood the screen. [`render_plain`] (piped
/// output, which scripts read) and `--json` never cut.
pub const SHOWN_CHARS: usize = 1000;

/// Whether [`render_plain`] and [`render_styled`] cut `text`.
pub fn is_cut(text: &str) -> bool {
    text.len() > SHOWN_CHARS && text.chars().count() > SHOWN_CHARS
}

/// The text of a message as shown: made harmless, and unless `whole`, cut
/// after [`SHOWN_CHARS`] characters with a marker.
fn body(text: &str, whole: bool) -> String {
    if whole || !is_cut(text) {
        return sanitize(text);
    }
    let (end, _) = text
        .char_indices()
        .nth(SHOWN_CHARS)
        .unwrap_or((text.len(), ' '));
    let rest = text[end..].chars().count();
    format!(
        "{} \u{2026} ({} more character{}: /more to read all)",
        sanitize(&text[..end]),
        thousands(rest),
        plural(u32::try_from(rest).unwrap_or(u32::MAX))
    )
}

/// `58000` as `58,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `exit`, or `exit: gone fishing` when the user gave a reason.
fn leave_reason(event: &ChatEvent, reason: &str) -> String {
    match event {
        ChatEvent::Leave {
            message: Some(m), ..
        } => format!("{}: {}", sanitize(reason), sanitize(m)),
        _ => sanitize(reason),
    }
}

/// Which kind of message a [`ChatEvent::Confirmation`] confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// A public message (PM).
    Public,
    /// A direct message (DM).
    Direct,
    /// A direct message to an offline user, stored by the server until
    /// they log in.
    Stored,
}

/// Whether the terminal's bell should ring for this event: a public
/// message that names the user, and every direct message. A terminal
/// driver writes BEL (`\x07`) after the line; piped output never does.
pub fn rings_bell(event: &ChatEvent) -> bool {
    matches!(
        event,
        ChatEvent::Public { mention: true, .. }
            | ChatEvent::RoomMessage {
                mention: true,
                history: false,
                ..
            }
            | ChatEvent::Direct { .. }
            | ChatEvent::OfflineDirect { .. }
    )
}

/// A time of day, from the driver's wall clock, for `[HH:MM]` stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockTime {
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
}

fn list(users: &[String]) -> String {
    list_marked(users, &[])
}

/// The names, each of `away` followed by ` (away)`.
fn list_marked(users: &[String], away: &[String]) -> String {
    if users.is_empty() {
        return "nobody".to_string();
    }
    let v: Vec<String> = users
        .iter()
        .map(|u| {
            if away.contains(u) {
                format!("{} (away)", sanitize(u))
            } else {
                sanitize(u)
            }
        })
        .collect();
    v.join(", ")
}

/// A duration in seconds for people: `45 s`, `12 min`, `3 h 5 min`,
/// `2 d 4 h`.
fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 if secs % 3600 < 60 => format!("{} h", secs / 3600),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// ` and N more` when the server cut the list at `shown` names of `count`.
fn more(shown: usize, count: Option<u32>) -> String {
    match count.map(|c| (c as usize).saturating_sub(shown)) {
        Some(rest) if rest > 0 => format!(" and {rest} more"),
        _ => String::new(),
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The assignment's plain text of an event: one line, no colour, no time
/// (`[bob] hi`, `[DM from bob] hi`, `* bob joined`, `ok: ...`, `! ...`,
/// `bye`). Lines are what the console always printed: scripts rely on them,
/// so long messages are not cut here (only [`render_styled`] cuts them).
pub fn render_plain(event: &ChatEvent) -> String {
    match event {
        ChatEvent::Connecting { user, attempt: 0 } => format!("Connecting as {user}..."),
        ChatEvent::Connecting { user, attempt } => {
            format!("Reconnecting as {user} (attempt {attempt})...")
        }
        ChatEvent::PasswordRequired {
            user,
            new_user: true,
        } => format!(
            "{} is a new user: choose a password to register.",
            sanitize(user)
        ),
        ChatEvent::PasswordRequired { user, .. } => {
            format!("{} is registered: enter the password.", sanitize(user))
        }
        ChatEvent::LoggedIn {
            user,
            new_user,
            online,
            count,
        } => format!(
            "{}logged in as {}; online: {}{}",
            if *new_user { "registered and " } else { "" },
            sanitize(user),
            list(online),
            more(online.len(), *count)
        ),
        ChatEvent::Online { users, count, away } => {
            format!(
                "online: {}{}",
                list_marked(users, away),
                more(users.len(), *count)
            )
        }
        ChatEvent::Away { text: Some(text) } => {
            format!(
                "you are away: {} (/away alone to come back)",
                sanitize(text)
            )
        }
        ChatEvent::Away { text: None } => "you are back".to_string(),
        ChatEvent::AwayReply { user, text } => {
            format!("{} is away: {}", sanitize(user), sanitize(text))
        }
        ChatEvent::Whois {
            user,
            online: true,
            online_secs,
            away,
        } => format!(
            "{} is online{}{}",
            sanitize(user),
            online_secs
                .map(|s| format!(" (for {})", span(s)))
                .unwrap_or_default(),
            away.as_deref()
                .map(|a| format!("; away: {}", sanitize(a)))
                .unwrap_or_default()
        ),
        ChatEvent::Whois { user, .. } => format!("{} is not online", sanitize(user)),
        ChatEvent::Public {
            from,
            text,
            action: false,
            ..
        } => format!("[{}] {}", sanitize(from), sanitize(text)),
        ChatEvent::Public { from, text, .. } => {
            format!("* {} {}", sanitize(from), sanitize(text))
        }
        ChatEvent::Direct { from, text } => {
            format!("[DM from {}] {}", sanitize(from), sanitize(text))
        }
        ChatEvent::Sent {
            to: Some(to), text, ..
        } => format!("-> {}: {}", sanitize(to), sanitize(text)),
        ChatEvent::Sent {
            from,
            text,
            action: false,
            ..
        } => format!("[{}] {}", sanitize(from), sanitize(text)),
        ChatEvent::Sent { from, text, .. } => format!("* {} {}", sanitize(from), sanitize(text)),
        ChatEvent::Join { user } => format!("* {} joined", sanitize(user)),
        ChatEvent::Leave { user, reason, .. } => {
            format!(
                "* {} left ({})",
                sanitize(user),
                leave_reason(event, reason)
            )
        }
        ChatEvent::Queued { waiting } => format!(
            "(queued: {waiting} message{} wait{} for the server's rate limit)",
            plural(*waiting as u32),
            if *waiting == 1 { "s" } else { "" }
        ),
        ChatEvent::NotSent { to, text, reason } => match to {
            Some(to) => format!(
                "! not sent to {}: \"{}\" ({})",
                sanitize(to),
                sanitize(text),
                sanitize(reason)
            ),
            None => format!("! not sent: \"{}\" ({})", sanitize(text), sanitize(reason)),
        },
        ChatEvent::Confirmation {
            kind: Delivery::Stored,
            to,
            ..
        } => format!(
            "ok: direct message stored for {} (offline); delivered when they log in",
            sanitize(to.as_deref().unwrap_or_default())
        ),
        ChatEvent::Confirmation {
            kind: Delivery::Direct,
            to,
            ..
        } => format!(
            "ok: direct message delivered to {}",
            sanitize(to.as_deref().unwrap_or_default())
        ),
        ChatEvent::Confirmation { recipients, .. } => format!(
            "ok: public message delivered to {recipients} user{}",
            plural(*recipients)
        ),
        ChatEvent::Error { message } => format!("! {}", sanitize(message)),
        ChatEvent::Disconnect {
            reason,
            reconnect_in: None,
        } => format!("! disconnected: {}", sanitize(reason)),
        ChatEvent::Disconnect {
            reason,
            reconnect_in: Some(secs),
        } => format!(
            "! disconnected: {}; reconnecting in {secs} s (/connect: now, /quit: give up)",
            sanitize(reason)
        ),
        ChatEvent::Bye => "bye".to_string(),
        ChatEvent::Info { text } => sanitize(text),
        ChatEvent::More { message } => render_plain(message),
        ChatEvent::OfflineDirect { .. }
        | ChatEvent::RoomMessage { .. }
        | ChatEvent::RoomJoined { .. }
        | ChatEvent::Parted { .. }
        | ChatEvent::MemberJoined { .. }
        | ChatEvent::MemberLeft { .. }
        | ChatEvent::Said { .. }
        | ChatEvent::RoomList { .. }
        | ChatEvent::Names { .. }
        | ChatEvent::Topic { .. }
        | ChatEvent::HistoryEnd { .. }
        | ChatEvent::Resumed { .. } => room::plain(event),
        ChatEvent::ModOk { .. }
        | ChatEvent::Audit { .. }
        | ChatEvent::Notice { .. }
        | ChatEvent::Bans { .. } => moderation::plain(event),
        ChatEvent::InviteCode { .. } => moderation::plain(event),
        ChatEvent::Kicked { .. }
        | ChatEvent::RoomRole { .. }
        | ChatEvent::MemberMuted { .. }
        | ChatEvent::RoomMode { .. }
        | ChatEvent::RoomRoles { .. }
        | ChatEvent::Ignored { .. } => room_roles::plain(event),
    }
}

/// One event as the line `--json` prints: `{"time":TIME,"type":…,…}`,
/// with invisible characters escaped ([`escape_json_invisibles`]). `time`
/// is the moment, as RFC 3339 UTC text.
pub fn render_json(event: &ChatEvent, time: &str) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        time: &'a str,
        #[serde(flatten)]
        event: &'a ChatEvent,
    }
    // Serializing these plain structures to a string cannot fail.
    let text = serde_json::to_string(&Line { time, event }).unwrap_or_default();
    escape_json_invisibles(&text)
}

/// A JSON text with every character [`sanitize`] would show as `<U+…>`
/// escaped as `\uXXXX`: the same JSON value, but a line that no terminal
/// or line-oriented program splits or reorders (U+2028 and U+2029 end lines
/// for some). Such characters occur only inside JSON strings, where the
/// escape means the same character.
pub fn escape_json_invisibles(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if super::sanitize::is_hidden(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = core::fmt::Write::write_fmt(&mut out, format_args!("\\u{:04x}", u));
            }
        } else {
            out.push(c);
        }
    }
    out
}

mod moderation;
mod room;
mod room_roles;
mod styled;

use room::as_rfc3339;
pub use room::{rfc3339, utc_clock};

pub use styled::{CONTINUATION, render_styled, user_color, wrap_rows};

#[cfg(test)]
mod tests;
