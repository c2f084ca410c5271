//! The chat-client look of an event, for a terminal: a time stamp, a
//! colour per user, a style per kind of line, and rows cut to the
//! terminal's width.

use alloc::format;
use alloc::string::{String, ToString};

use super::*;

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
    pub const ROOM: &str = "1;34";
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
        ChatEvent::ModOk { .. } => p.paint(sgr::OK, &render_plain(event)),
        ChatEvent::Audit { .. } | ChatEvent::Bans { .. } | ChatEvent::InviteCode { .. } => {
            p.paint(sgr::INFO, &render_plain(event))
        }
        ChatEvent::Notice { .. } => p.paint(sgr::ERROR, &render_plain(event)),
        ChatEvent::Kicked { .. } => p.paint(sgr::ERROR, &render_plain(event)),
        ChatEvent::RoomRole { .. }
        | ChatEvent::MemberMuted { .. }
        | ChatEvent::RoomMode { .. }
        | ChatEvent::RoomRoles { .. }
        | ChatEvent::Ignored { .. } => p.paint(sgr::INFO, &render_plain(event)),
        ChatEvent::More { message } => return styled(message, time, color, true),
        ChatEvent::OfflineDirect {
            from, text, sent, ..
        } => {
            p.paint(sgr::DIRECT, "*");
            p.nick(from);
            p.paint(sgr::DIRECT, "*");
            p.paint(
                sgr::DIM,
                &format!(" ({} UTC, while you were away)", utc_clock(*sent)),
            );
            p.plain(" ");
            p.paint(sgr::DIRECT, &body(text, whole));
        }
        ChatEvent::RoomMessage {
            room,
            from,
            text,
            action,
            mention,
            history,
            sent,
            ..
        } => {
            if *history {
                p.paint(
                    sgr::DIM,
                    &format!("[{} {}]", sanitize(room), utc_clock(*sent)),
                );
            } else {
                p.paint(sgr::ROOM, &format!("[{}]", sanitize(room)));
            }
            if *action {
                p.plain(" * ");
                p.nick(from);
                p.plain(" ");
            } else {
                p.plain(" <");
                p.nick(from);
                p.plain("> ");
            }
            match (*mention, *history) {
                (true, false) => p.paint(sgr::MENTION, &body(text, whole)),
                (_, true) => p.paint(sgr::DIM, &body(text, whole)),
                _ => p.plain(&body(text, whole)),
            }
        }
        ChatEvent::MemberJoined { room, user } => {
            p.paint(sgr::JOIN, "--> ");
            p.nick(user);
            p.paint(sgr::JOIN, &format!(" joined {}", sanitize(room)));
        }
        ChatEvent::MemberLeft { room, user, reason } => {
            p.paint(sgr::LEAVE, "<-- ");
            p.nick(user);
            let why = reason
                .as_deref()
                .map(|r| format!(" ({})", sanitize(r)))
                .unwrap_or_default();
            p.paint(sgr::LEAVE, &format!(" left {}{why}", sanitize(room)));
        }
        ChatEvent::Names { room, users, count } => {
            p.paint(sgr::INFO, &format!("members of {}: ", sanitize(room)));
            p.nicks(users);
            p.paint(sgr::INFO, &more(users.len(), *count));
        }
        ChatEvent::Said { .. } => p.paint(sgr::OK, &render_plain(event)),
        ChatEvent::Resumed {
            recovered: false, ..
        } => p.paint(sgr::DISCONNECT, &render_plain(event)),
        ChatEvent::RoomJoined { .. }
        | ChatEvent::Parted { .. }
        | ChatEvent::RoomList { .. }
        | ChatEvent::Topic { .. }
        | ChatEvent::HistoryEnd { .. }
        | ChatEvent::Resumed { .. } => p.paint(sgr::INFO, &render_plain(event)),
    }
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn s(x: &str) -> String {
        x.to_string()
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
}
