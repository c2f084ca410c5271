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
        /// The message ([`ChatEvent::Public`], [`ChatEvent::Direct`] or
        /// [`ChatEvent::Sent`]).
        message: Box<ChatEvent>,
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
}

/// Whether the terminal's bell should ring for this event: a public
/// message that names the user, and every direct message. A terminal
/// driver writes BEL (`\x07`) after the line; piped output never does.
pub fn rings_bell(event: &ChatEvent) -> bool {
    matches!(
        event,
        ChatEvent::Public { mention: true, .. } | ChatEvent::Direct { .. }
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
    }
}

/// ANSI SGR parameters of each kind of text in [`render_styled`].
mod sgr {
    pub const TIME: &str = "2";
    pub const DIRECT: &str = "1;35";
    pub const JOIN: &str = "32";
    pub const LEAVE: &str = "33";
    pub const OK: &str = "2;32";
    pub const ERROR: &str = "1;31";
    pub const DISCONNECT: &str = "1;33";
    pub const INFO: &str = "36";
    pub const DIM: &str = "2";
    pub const MENTION: &str = "1;93";
}

/// Colours for usernames: the 16-colour palette without red (errors) and
/// without black and white (invisible on one background or the other).
const USER_COLORS: [&str; 10] = ["32", "33", "34", "35", "36", "92", "93", "94", "95", "96"];

/// The ANSI SGR colour of a username: the same for the same name (ASCII
/// case ignored, as usernames are) on every client, since it is a hash of
/// the name.
pub fn user_color(name: &str) -> &'static str {
    // FNV-1a.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0193);
    }
    USER_COLORS[h as usize % USER_COLORS.len()]
}

/// Builds one styled line.
struct Painter {
    color: bool,
    out: String,
}

impl Painter {
    fn plain(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn paint(&mut self, sgr: &str, text: &str) {
        if self.color {
            self.out.push_str("\x1b[");
            self.out.push_str(sgr);
            self.out.push('m');
            self.out.push_str(text);
            self.out.push_str("\x1b[0m");
        } else {
            self.out.push_str(text);
        }
    }

    fn nick(&mut self, name: &str) {
        self.paint(user_color(name), &sanitize(name));
    }

    fn nicks(&mut self, names: &[String]) {
        self.nicks_marked(names, &[]);
    }

    fn nicks_marked(&mut self, names: &[String], away: &[String]) {
        if names.is_empty() {
            self.plain("nobody");
        }
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                self.plain(", ");
            }
            self.nick(name);
            if away.contains(name) {
                self.paint(sgr::DIM, " (away)");
            }
        }
    }
}

/// What starts every row of a message after its first when
/// [`wrap_rows`] cuts it: no received text can put it at the start of a
/// row, so a continuation never passes for a line of its own.
pub const CONTINUATION: &str = "  \u{21b3} ";

/// Cuts a rendered line into rows of fewer than `width` terminal columns,
/// so that the terminal never wraps it itself, and starts every row after
/// the first with [`CONTINUATION`]. A message padded to the terminal's
/// width therefore cannot make a row that reads like another user's line.
/// SGR colour sequences count no columns and are carried over to the next
/// row. A `width` below 16 leaves the line as it is.
pub fn wrap_rows(line: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if width < 16 {
        return line.to_string();
    }
    // One column of margin: a terminal may draw some sequences wider than
    // their characters' widths add up to.
    let limit = width - 1;
    let marker_width = 4;
    let mut out = String::with_capacity(line.len() + 16);
    let mut column = 0;
    let mut active_sgr: Option<&str> = None;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b'
            && let Some(end) = rest.find('m')
        {
            let (sgr, after) = rest.split_at(end + 1);
            active_sgr = (sgr != "\x1b[0m").then_some(sgr);
            out.push_str(sgr);
            rest = after;
            continue;
        }
        let w = match c {
            // May turn the character before it into a two-column emoji.
            '\u{fe0f}' => 1,
            c => c.width().unwrap_or(0),
        };
        if column + w > limit {
            if active_sgr.is_some() {
                out.push_str("\x1b[0m");
            }
            out.push('\n');
            out.push_str(CONTINUATION);
            column = marker_width;
            if let Some(sgr) = active_sgr {
                out.push_str(sgr);
            }
        }
        out.push(c);
        column += w;
        rest = &rest[c.len_utf8()..];
    }
    out
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

/// The chat-client look of an event, for a terminal: an optional `[HH:MM]`
/// stamp (not on [`ChatEvent::Info`] lines), `<bob> hi` with a stable colour per user, direct messages, joins
/// and leaves, errors and confirmations each in their own style. With
/// `color` false the same text comes without escape sequences.
pub fn render_styled(event: &ChatEvent, time: Option<ClockTime>, color: bool) -> String {
    match event {
        ChatEvent::More { message } => styled(message, time, color, true),
        event => styled(event, time, color, false),
    }
}

fn styled(event: &ChatEvent, time: Option<ClockTime>, color: bool, whole: bool) -> String {
    let mut p = Painter {
        color,
        out: String::new(),
    };
    // Help and hints read better without a stamp.
    if let (Some(t), false) = (time, matches!(event, ChatEvent::Info { .. })) {
        p.paint(
            sgr::TIME,
            &format!("[{:02}:{:02}]", t.hour % 24, t.minute % 60),
        );
        p.plain(" ");
    }
    match event {
        ChatEvent::Public {
            from,
            text,
            action,
            mention,
        } => {
            if *action {
                p.plain(" * ");
                p.nick(from);
                p.plain(" ");
            } else {
                p.plain("<");
                p.nick(from);
                p.plain("> ");
            }
            if *mention {
                p.paint(sgr::MENTION, &body(text, whole));
            } else {
                p.plain(&body(text, whole));
            }
        }
        ChatEvent::Direct { from, text } => {
            p.paint(sgr::DIRECT, "[DM from ");
            p.nick(from);
            p.paint(sgr::DIRECT, "]");
            p.plain(" ");
            p.paint(sgr::DIRECT, &body(text, whole));
        }
        ChatEvent::Sent {
            to: Some(to), text, ..
        } => {
            p.paint(sgr::DIRECT, "-> ");
            p.nick(to);
            p.paint(sgr::DIRECT, ":");
            p.plain(" ");
            p.paint(sgr::DIRECT, &body(text, whole));
        }
        ChatEvent::Sent {
            from,
            text,
            action: false,
            ..
        } => {
            p.plain("<");
            p.nick(from);
            p.plain("> ");
            p.plain(&body(text, whole));
        }
        ChatEvent::Sent { from, text, .. } => {
            p.plain(" * ");
            p.nick(from);
            p.plain(" ");
            p.plain(&body(text, whole));
        }
        ChatEvent::Join { user } => {
            p.paint(sgr::JOIN, "--> ");
            p.nick(user);
            p.paint(sgr::JOIN, " joined");
        }
        ChatEvent::Leave { user, reason, .. } => {
            p.paint(sgr::LEAVE, "<-- ");
            p.nick(user);
            p.paint(
                sgr::LEAVE,
                &format!(" left ({})", leave_reason(event, reason)),
            );
        }
        ChatEvent::Queued { .. } => p.paint(sgr::DIM, &render_plain(event)),
        ChatEvent::NotSent { .. } => p.paint(sgr::ERROR, &render_plain(event)),
        ChatEvent::Online { users, count, away } => {
            p.paint(sgr::INFO, "online: ");
            p.nicks_marked(users, away);
            p.paint(sgr::INFO, &more(users.len(), *count));
        }
        ChatEvent::Away { .. } | ChatEvent::Whois { .. } => {
            p.paint(sgr::INFO, &render_plain(event));
        }
        ChatEvent::AwayReply { user, text } => {
            p.nick(user);
            p.paint(sgr::INFO, &format!(" is away: {}", sanitize(text)));
        }
        ChatEvent::LoggedIn {
            user,
            new_user,
            online,
            count,
        } => {
            p.paint(
                sgr::INFO,
                if *new_user {
                    "registered and logged in as "
                } else {
                    "logged in as "
                },
            );
            p.nick(user);
            p.paint(sgr::INFO, "; online: ");
            p.nicks(online);
            p.paint(sgr::INFO, &more(online.len(), *count));
            p.paint(sgr::DIM, " (/help for commands)");
        }
        ChatEvent::Confirmation { .. } => p.paint(sgr::OK, &render_plain(event)),
        ChatEvent::Error { .. } => p.paint(sgr::ERROR, &render_plain(event)),
        ChatEvent::Disconnect { .. } => p.paint(sgr::DISCONNECT, &render_plain(event)),
        ChatEvent::Bye => p.paint(sgr::DIM, "bye"),
        ChatEvent::Connecting { .. } | ChatEvent::PasswordRequired { .. } => {
            p.paint(sgr::INFO, &render_plain(event));
        }
        ChatEvent::Info { text } => p.plain(&sanitize(text)),
        ChatEvent::More { message } => return styled(message, time, color, true),
    }
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// Every kind of event, with its plain line.
    fn samples() -> Vec<(ChatEvent, &'static str)> {
        vec![
            (
                ChatEvent::Connecting {
                    user: s("alice"),
                    attempt: 0,
                },
                "Connecting as alice...",
            ),
            (
                ChatEvent::Connecting {
                    user: s("alice"),
                    attempt: 2,
                },
                "Reconnecting as alice (attempt 2)...",
            ),
            (
                ChatEvent::PasswordRequired {
                    user: s("alice"),
                    new_user: true,
                },
                "alice is a new user: choose a password to register.",
            ),
            (
                ChatEvent::PasswordRequired {
                    user: s("alice"),
                    new_user: false,
                },
                "alice is registered: enter the password.",
            ),
            (
                ChatEvent::LoggedIn {
                    user: s("alice"),
                    new_user: true,
                    online: vec![s("alice"), s("bob")],
                    count: None,
                },
                "registered and logged in as alice; online: alice, bob",
            ),
            (
                ChatEvent::LoggedIn {
                    user: s("alice"),
                    new_user: false,
                    online: vec![s("alice"), s("bob")],
                    count: Some(5_000),
                },
                "logged in as alice; online: alice, bob and 4998 more",
            ),
            (
                ChatEvent::Online {
                    users: vec![],
                    count: None,
                    away: vec![],
                },
                "online: nobody",
            ),
            (
                ChatEvent::Online {
                    users: vec![s("a"), s("b")],
                    count: Some(3),
                    away: vec![],
                },
                "online: a, b and 1 more",
            ),
            (
                ChatEvent::Online {
                    users: vec![s("a"), s("b"), s("c")],
                    count: None,
                    away: vec![s("b")],
                },
                "online: a, b (away), c",
            ),
            (
                ChatEvent::Away {
                    text: Some(s("lunch")),
                },
                "you are away: lunch (/away alone to come back)",
            ),
            (ChatEvent::Away { text: None }, "you are back"),
            (
                ChatEvent::AwayReply {
                    user: s("bob"),
                    text: s("lunch"),
                },
                "bob is away: lunch",
            ),
            (
                ChatEvent::Whois {
                    user: s("bob"),
                    online: true,
                    online_secs: Some(3725),
                    away: Some(s("lunch")),
                },
                "bob is online (for 1 h 2 min); away: lunch",
            ),
            (
                ChatEvent::Whois {
                    user: s("bob"),
                    online: true,
                    online_secs: Some(42),
                    away: None,
                },
                "bob is online (for 42 s)",
            ),
            (
                ChatEvent::Whois {
                    user: s("carol"),
                    online: false,
                    online_secs: None,
                    away: None,
                },
                "carol is not online",
            ),
            (
                ChatEvent::Public {
                    from: s("bob"),
                    text: s("hi"),
                    action: false,
                    mention: false,
                },
                "[bob] hi",
            ),
            (
                ChatEvent::Public {
                    from: s("bob"),
                    text: s("waves"),
                    action: true,
                    mention: false,
                },
                "* bob waves",
            ),
            (
                ChatEvent::Direct {
                    from: s("bob"),
                    text: s("psst"),
                },
                "[DM from bob] psst",
            ),
            (ChatEvent::Join { user: s("bob") }, "* bob joined"),
            (
                ChatEvent::Leave {
                    user: s("bob"),
                    reason: s("exit"),
                    message: None,
                },
                "* bob left (exit)",
            ),
            (
                ChatEvent::Leave {
                    user: s("bob"),
                    reason: s("exit"),
                    message: Some(s("gone \u{202e}fishing")),
                },
                "* bob left (exit: gone <U+202E>fishing)",
            ),
            (
                ChatEvent::Queued { waiting: 3 },
                "(queued: 3 messages wait for the server's rate limit)",
            ),
            (
                ChatEvent::NotSent {
                    to: Some(s("bob")),
                    text: s("psst"),
                    reason: s("bob is not online"),
                },
                "! not sent to bob: \"psst\" (bob is not online)",
            ),
            (
                ChatEvent::Confirmation {
                    kind: Delivery::Public,
                    to: None,
                    recipients: 1,
                    text: None,
                    action: false,
                },
                "ok: public message delivered to 1 user",
            ),
            (
                ChatEvent::Confirmation {
                    kind: Delivery::Public,
                    to: None,
                    recipients: 0,
                    text: None,
                    action: false,
                },
                "ok: public message delivered to 0 users",
            ),
            (
                ChatEvent::Confirmation {
                    kind: Delivery::Direct,
                    to: Some(s("bob")),
                    recipients: 1,
                    text: None,
                    action: false,
                },
                "ok: direct message delivered to bob",
            ),
            (
                ChatEvent::Sent {
                    from: s("alice"),
                    to: None,
                    text: s("hello"),
                    action: false,
                },
                "[alice] hello",
            ),
            (
                ChatEvent::Sent {
                    from: s("alice"),
                    to: None,
                    text: s("waves"),
                    action: true,
                },
                "* alice waves",
            ),
            (
                ChatEvent::Sent {
                    from: s("alice"),
                    to: Some(s("bob")),
                    text: s("psst"),
                    action: false,
                },
                "-> bob: psst",
            ),
            (
                ChatEvent::Error {
                    message: s("carol is not online"),
                },
                "! carol is not online",
            ),
            (
                ChatEvent::Disconnect {
                    reason: s("the server is shutting down"),
                    reconnect_in: None,
                },
                "! disconnected: the server is shutting down",
            ),
            (
                ChatEvent::Disconnect {
                    reason: s("lost"),
                    reconnect_in: Some(4),
                },
                "! disconnected: lost; reconnecting in 4 s (/connect: now, /quit: give up)",
            ),
            (ChatEvent::Bye, "bye"),
            (ChatEvent::Info { text: s("hint") }, "hint"),
        ]
    }

    #[test]
    fn plain_lines_are_the_assignments() {
        for (event, line) in samples() {
            assert_eq!(render_plain(&event), line, "{event:?}");
        }
    }

    #[test]
    fn styled_without_colour_has_no_escapes_and_the_time() {
        let t = ClockTime { hour: 9, minute: 5 };
        for (event, plain) in samples() {
            let line = render_styled(&event, Some(t), false);
            if matches!(event, ChatEvent::Info { .. }) {
                assert_eq!(line, plain);
            } else {
                assert!(line.starts_with("[09:05] "), "{line}");
            }
            assert!(!line.contains('\x1b'), "{line}");
        }
        let public = ChatEvent::Public {
            from: s("bob"),
            text: s("hi"),
            action: false,
            mention: false,
        };
        assert_eq!(render_styled(&public, Some(t), false), "[09:05] <bob> hi");
        assert_eq!(render_styled(&public, None, false), "<bob> hi");
        let join = ChatEvent::Join { user: s("bob") };
        assert_eq!(render_styled(&join, None, false), "--> bob joined");
        // Your own messages, once confirmed, read as chat.
        let sent = |to: Option<&str>, text: &str, action| ChatEvent::Sent {
            from: s("alice"),
            to: to.map(s),
            text: s(text),
            action,
        };
        assert_eq!(
            render_styled(&sent(None, "hello", false), None, false),
            "<alice> hello"
        );
        assert_eq!(
            render_styled(&sent(None, "waves", true), None, false),
            " * alice waves"
        );
        assert_eq!(
            render_styled(&sent(Some("bob"), "psst", false), None, false),
            "-> bob: psst"
        );
    }

    #[test]
    fn styled_with_colour_styles_each_kind_apart() {
        let public = ChatEvent::Public {
            from: s("bob"),
            text: s("hi"),
            action: false,
            mention: false,
        };
        let line = render_styled(&public, None, true);
        assert_eq!(line, format!("<\x1b[{}mbob\x1b[0m> hi", user_color("bob")));
        let direct = render_styled(
            &ChatEvent::Direct {
                from: s("bob"),
                text: s("psst"),
            },
            None,
            true,
        );
        assert!(direct.starts_with("\x1b[1;35m[DM from "), "{direct:?}");
        let error = render_styled(&ChatEvent::Error { message: s("no") }, None, true);
        assert_eq!(error, "\x1b[1;31m! no\x1b[0m");
        let ok = render_styled(
            &ChatEvent::Confirmation {
                kind: Delivery::Public,
                to: None,
                recipients: 2,
                text: None,
                action: false,
            },
            None,
            true,
        );
        assert!(ok.starts_with("\x1b[2;32mok: "), "{ok:?}");
        let join = render_styled(&ChatEvent::Join { user: s("bob") }, None, true);
        let leave = render_styled(
            &ChatEvent::Leave {
                user: s("bob"),
                reason: s("exit"),
                message: None,
            },
            None,
            true,
        );
        assert!(join.starts_with("\x1b[32m-->"), "{join:?}");
        assert!(leave.starts_with("\x1b[33m<--"), "{leave:?}");
    }

    #[test]
    fn a_mention_is_highlighted_and_rings_the_bell() {
        let named = ChatEvent::Public {
            from: s("bob"),
            text: s("hi alice"),
            action: false,
            mention: true,
        };
        assert_eq!(
            render_styled(&named, None, true),
            format!(
                "<\x1b[{}mbob\x1b[0m> \x1b[1;93mhi alice\x1b[0m",
                user_color("bob")
            )
        );
        assert_eq!(render_styled(&named, None, false), "<bob> hi alice");
        assert_eq!(render_plain(&named), "[bob] hi alice");
        assert!(rings_bell(&named));
        let direct = ChatEvent::Direct {
            from: s("bob"),
            text: s("psst"),
        };
        assert!(rings_bell(&direct));
        let plain = ChatEvent::Public {
            from: s("bob"),
            text: s("hi all"),
            action: false,
            mention: false,
        };
        assert!(!rings_bell(&plain));
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            r#"{"type":"public","from":"bob","text":"hi alice","mention":true}"#
        );
    }

    #[test]
    fn a_long_message_is_shown_cut_and_more_shows_it_whole() {
        let text = format!("{}{}", "é".repeat(SHOWN_CHARS), "x".repeat(58_000));
        let long = ChatEvent::Public {
            from: s("bob"),
            text: text.clone(),
            action: false,
            mention: false,
        };
        let marker = " \u{2026} (58,000 more characters: /more to read all)";
        // Piped output is never cut: scripts read it.
        assert_eq!(render_plain(&long), format!("[bob] {text}"));
        let line = render_styled(&long, None, false);
        assert_eq!(line, format!("<bob> {}{marker}", "é".repeat(SHOWN_CHARS)));
        let more = ChatEvent::More {
            message: Box::new(long.clone()),
        };
        assert_eq!(render_plain(&more), format!("[bob] {text}"));
        assert_eq!(render_styled(&more, None, false), format!("<bob> {text}"));
        let direct = ChatEvent::Direct {
            from: s("bob"),
            text: "y".repeat(SHOWN_CHARS + 1),
        };
        assert!(
            render_styled(&direct, None, false)
                .ends_with(" \u{2026} (1 more character: /more to read all)")
        );
        // Exactly the limit is shown whole.
        let direct = ChatEvent::Direct {
            from: s("bob"),
            text: "y".repeat(SHOWN_CHARS),
        };
        assert_eq!(
            render_plain(&direct),
            format!("[DM from bob] {}", "y".repeat(SHOWN_CHARS))
        );
        // JSON keeps every character.
        let json = serde_json::to_string(&long).unwrap();
        assert!(json.contains(&text));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(span(59), "59 s");
        assert_eq!(span(600), "10 min");
        assert_eq!(span(7200), "2 h");
        assert_eq!(span(90_000), "1 d 1 h");
    }

    #[test]
    fn user_colours_are_stable_and_ignore_case() {
        assert_eq!(user_color("alice"), user_color("ALICE"));
        assert_eq!(user_color("alice"), user_color("alice"));
        // Not all names share a colour.
        let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
        let first = user_color(names[0]);
        assert!(names.iter().any(|n| user_color(n) != first));
        assert!(!USER_COLORS.contains(&"31"), "red is for errors");
    }

    #[test]
    fn a_padded_message_cannot_make_a_row_that_reads_as_another_line() {
        // mallory pads to the terminal's width so that the rest would start
        // a row of its own and read as bob's line.
        let width = 60;
        let prefix_len = "[17:06] <mallory> ".len();
        let text = format!(
            "{}[17:06] <bob> alice, the server moved",
            " ".repeat(width - prefix_len)
        );
        let evil = ChatEvent::Public {
            from: s("mallory"),
            text,
            action: false,
            mention: false,
        };
        let time = ClockTime {
            hour: 17,
            minute: 6,
        };
        for color in [false, true] {
            let rows = wrap_rows(&render_styled(&evil, Some(time), color), width);
            let rows: Vec<&str> = rows.split('\n').collect();
            assert!(rows.len() >= 2, "{rows:?}");
            for row in &rows[1..] {
                assert!(row.starts_with(CONTINUATION), "{row:?}");
            }
            for row in &rows {
                let visible: String = strip_sgr(row);
                assert!(
                    unicode_width::UnicodeWidthStr::width(visible.as_str()) < width,
                    "{row:?}"
                );
            }
        }
        // Short lines are left alone; wide characters count two columns.
        assert_eq!(wrap_rows("<bob> hi", width), "<bob> hi");
        let cjk = "漢".repeat(40);
        let rows = wrap_rows(&cjk, 60);
        assert_eq!(rows.split('\n').next().unwrap().chars().count(), 29);
    }

    fn strip_sgr(row: &str) -> String {
        let mut out = String::new();
        let mut in_sgr = false;
        for c in row.chars() {
            match (in_sgr, c) {
                (false, '\x1b') => in_sgr = true,
                (true, 'm') => in_sgr = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn json_lines_escape_what_could_split_or_reorder_them() {
        let e = ChatEvent::Public {
            from: s("bob"),
            text: s("a\u{2028}b\u{202e}c\u{200b}d 👩\u{200d}💻"),
            action: false,
            mention: false,
        };
        let json = escape_json_invisibles(&serde_json::to_string(&e).unwrap());
        assert!(json.contains(r"a\u2028b\u202ec\u200bd"), "{json}");
        assert!(!json.contains('\u{2028}') && !json.contains('\u{202e}'));
        // The same value for a program that parses it (the joiner too).
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["text"], "a\u{2028}b\u{202e}c\u{200b}d 👩\u{200d}💻");
    }

    #[test]
    fn received_text_cannot_drive_the_terminal() {
        let evil = ChatEvent::Public {
            from: s("bob"),
            text: s("\x1b[2Jgotcha"),
            action: false,
            mention: false,
        };
        assert_eq!(render_plain(&evil), "[bob] \u{fffd}[2Jgotcha");
        assert!(!render_styled(&evil, None, false).contains('\x1b'));
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let json = |e: &ChatEvent| serde_json::to_string(e).unwrap();
        assert_eq!(
            json(&ChatEvent::Public {
                from: s("bob"),
                text: s("hi"),
                action: false,
                mention: false,
            }),
            r#"{"type":"public","from":"bob","text":"hi"}"#
        );
        assert_eq!(
            json(&ChatEvent::Public {
                from: s("bob"),
                text: s("waves"),
                action: true,
                mention: false,
            }),
            r#"{"type":"public","from":"bob","text":"waves","action":true}"#
        );
        assert_eq!(
            json(&ChatEvent::Confirmation {
                kind: Delivery::Direct,
                to: Some(s("bob")),
                recipients: 1,
                text: None,
                action: false,
            }),
            r#"{"type":"confirmation","kind":"direct","to":"bob","recipients":1}"#
        );
        assert_eq!(
            json(&ChatEvent::Confirmation {
                kind: Delivery::Public,
                to: None,
                recipients: 2,
                text: Some(s("waves")),
                action: true,
            }),
            r#"{"type":"confirmation","kind":"public","recipients":2,"text":"waves","action":true}"#
        );
        assert_eq!(
            json(&ChatEvent::Disconnect {
                reason: s("gone"),
                reconnect_in: None
            }),
            r#"{"type":"disconnect","reason":"gone","reconnect_in":null}"#
        );
        assert_eq!(json(&ChatEvent::Bye), r#"{"type":"bye"}"#);
        assert_eq!(
            render_json(
                &ChatEvent::Join { user: s("bob") },
                "2026-12-03T09:00:00.000Z"
            ),
            r#"{"time":"2026-12-03T09:00:00.000Z","type":"join","user":"bob"}"#
        );
        assert_eq!(
            json(&ChatEvent::Leave {
                user: s("bob"),
                reason: s("exit"),
                message: None,
            }),
            r#"{"type":"leave","user":"bob","reason":"exit"}"#
        );
        assert_eq!(
            json(&ChatEvent::Leave {
                user: s("bob"),
                reason: s("exit"),
                message: Some(s("lunch")),
            }),
            r#"{"type":"leave","user":"bob","reason":"exit","message":"lunch"}"#
        );
        assert_eq!(
            json(&ChatEvent::Queued { waiting: 2 }),
            r#"{"type":"queued","waiting":2}"#
        );
    }
}
