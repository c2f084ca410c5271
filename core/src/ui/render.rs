//! What the console shows, as structured events and as text.
//!
//! [`ChatEvent`] is every thing a user sees, in a form a driver can print
//! ([`render_plain`], [`render_styled`]) or serialize (one JSON object per
//! line: `chatclient --json`). Received names and texts are kept as
//! received in the event and made harmless (control characters replaced)
//! when rendered.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Serialize;

use super::sanitize;

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

mod event;
mod moderation;
mod room;
mod room_roles;
mod styled;

pub use event::ChatEvent;
use room::as_rfc3339;
pub use room::{rfc3339, utc_clock};

pub use styled::{CONTINUATION, render_styled, user_color, wrap_rows};

#[cfg(test)]
mod tests;
