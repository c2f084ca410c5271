//! What a typed line means: the command parser (the commands' table and
//! help text are in `help`).
//!
//! A plain line is a public message. A line starting with `/` is a command
//! (see [`COMMANDS`]); `//text` sends `/text` as a public message. The
//! assignment's operations stay: `PM`, `DM` or `EX` alone on a line enter
//! that flow (send `/say PM` for a message that is literally "PM").

use core::fmt;

use crate::session::Operation;

mod help;

pub use help::{COMMANDS, CommandInfo, find_command, help};

/// A line the user typed, understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Nothing but blanks.
    Empty,
    /// `PM`, `DM` or `EX` alone: the assignment's menu flow.
    Menu(Operation),
    /// A public message: a plain line, `/say TEXT` or `//TEXT`.
    Say(&'a str),
    /// `/me ACTION`: a public action, shown as `* alice ACTION`.
    Me(&'a str),
    /// `/msg USER TEXT` (alias `/dm`): a direct message.
    Msg {
        /// The recipient.
        to: &'a str,
        /// The text.
        text: &'a str,
    },
    /// `/who` (aliases `/users`, `/names`): the online list.
    Who,
    /// `/quit [REASON]` (alias `/exit`): leave.
    Quit(Option<&'a str>),
    /// `/help [COMMAND]`.
    Help(Option<&'a str>),
    /// `/connect`: reconnect now instead of at the next retry.
    Connect,
    /// `/confirm on|off`: show the server's confirmations (`ok: ...`) or
    /// not; without an argument, say which.
    Confirm(Option<bool>),
    /// `/more`: the last message that was shown cut, whole.
    More,
    /// `/away [TEXT]`: away with TEXT, or back without.
    Away(Option<&'a str>),
    /// `/whois USER`: who USER is, whether online, for how long, away.
    Whois(&'a str),
    /// `/notice TEXT`: a notice to everyone online (admins only).
    Notice(&'a str),
    /// `/audit [N]`: the latest N entries of the audit log (admins only).
    Audit(Option<u32>),
    /// `/banip RANGE [DURATION] [REASON]`: ban an address range (admins
    /// only).
    BanIp {
        /// An address or a network (`203.0.113.0/24`).
        range: &'a str,
        /// How long, in seconds (none: until lifted).
        secs: Option<u64>,
        /// Why.
        reason: Option<&'a str>,
    },
    /// `/unbanip RANGE`: lift an address ban (admins only).
    UnbanIp(&'a str),
    /// `/bans [AFTER]`: the address bans in force (admins only), after
    /// the range AFTER when given.
    Bans(Option<&'a str>),
    /// `/suspend USER [DURATION] [REASON]`: suspend an account for a
    /// duration (seconds), or until lifted (admins only).
    Suspend {
        /// The account.
        user: &'a str,
        /// How long, in seconds; `None`: until lifted.
        secs: Option<u64>,
        /// Why, if given.
        reason: Option<&'a str>,
    },
    /// `/unsuspend USER`: lift a suspension (admins only).
    Unsuspend(&'a str),
    /// `/disconnect USER [REASON]`: end a user's session (admins only).
    Disconnect {
        /// The user.
        user: &'a str,
        /// Why, if given.
        reason: Option<&'a str>,
    },
    /// `/registration open|closed|invite`: who may register (admins only).
    Registration(crate::session::RegistrationMode),
    /// `/invite`: a new single-use invite code (admins only).
    Invite,
    /// `/join #ROOM`: join a room (making it if none has that name), and
    /// make it where plain lines go.
    Join(&'a str),
    /// `/part [#ROOM] [REASON]`: leave a room (the active one without
    /// `#ROOM`).
    Part {
        /// The room, if named.
        room: Option<&'a str>,
        /// What the members see, if anything.
        reason: Option<&'a str>,
    },
    /// `/go #ROOM`: plain lines go to that room; `/go` or `/go *`: to
    /// everyone online again.
    Go(Option<&'a str>),
    /// `/rooms`: the rooms that exist.
    Rooms,
    /// `/names [#ROOM]`: a room's members (the active room's; with no
    /// active room, who is online, as `/who`).
    Names(Option<&'a str>),
    /// `/topic [#ROOM] [TEXT]`: set a room's topic, or show it.
    Topic {
        /// The room, if named.
        room: Option<&'a str>,
        /// The new topic; `None` shows the topic.
        text: Option<&'a str>,
    },
    /// `/history [#ROOM] [N]`: the latest N messages of a room.
    History {
        /// The room, if named.
        room: Option<&'a str>,
        /// How many: 1 to [`MAX_HISTORY_LINES`], [`HISTORY_LINES`] when
        /// not given.
        limit: u32,
    },
    /// `/kick [#ROOM] USER [REASON]`: remove a member from a room.
    Kick {
        /// The room, if named.
        room: Option<&'a str>,
        /// The member.
        user: &'a str,
        /// Why, if said.
        reason: Option<&'a str>,
    },
    /// `/ban [#ROOM] USER [DURATION] [REASON]`: ban an account from a room.
    Ban {
        /// The room, if named.
        room: Option<&'a str>,
        /// The account.
        user: &'a str,
        /// How long, in seconds (`None`: no end).
        secs: Option<u64>,
        /// Why, if said.
        reason: Option<&'a str>,
    },
    /// `/unban`, `/mute`, `/unmute`, `/op`, `/deop` `[#ROOM] USER`.
    RoomUser {
        /// Which.
        action: RoomUserAction,
        /// The room, if named.
        room: Option<&'a str>,
        /// The account.
        user: &'a str,
    },
    /// `/lock-topic [#ROOM] on|off` and `/moderated [#ROOM] on|off`.
    RoomMode {
        /// The room, if named.
        room: Option<&'a str>,
        /// Lock (or unlock) the topic.
        topic_locked: Option<bool>,
        /// Moderate the room, or not.
        moderated: Option<bool>,
    },
    /// `/ignore [USER]`: hide USER's messages on this client; alone, list
    /// the users ignored.
    Ignore(Option<&'a str>),
    /// `/unignore USER`: show USER's messages again.
    Unignore(&'a str),
}

/// What `/unban`, `/mute`, `/unmute`, `/op` and `/deop` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomUserAction {
    /// Lift a room ban.
    Unban,
    /// Mute a member.
    Mute,
    /// Let a muted member speak.
    Unmute,
    /// Make a member an operator (the owner only).
    Op,
    /// Make an operator a member again (the owner only).
    Deop,
}

/// How many messages `/history` shows when not told.
pub const HISTORY_LINES: u32 = 20;
/// The most messages one `/history` shows.
pub const MAX_HISTORY_LINES: u32 = 200;

/// Why a line is not a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// `/name` is no command.
    Unknown(&'a str),
    /// The command's arguments are missing.
    Usage(&'static CommandInfo),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown(name) => write!(
                f,
                "unknown command /{name}: /help lists the commands; //{name} sends it as a message"
            ),
            ParseError::Usage(info) => write!(f, "usage: {}", info.usage),
        }
    }
}

/// The first word of `text` and the rest, its leading blanks trimmed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    }
}

/// A duration such as `90`, `90s`, `30m`, `2h` or `7d`, in seconds: a
/// number (1 or more) and a unit (seconds when none). `None` when `word`
/// is not one, or is longer than [`crate::session::MAX_SUSPEND_SECS`].
pub fn parse_duration(word: &str) -> Option<u64> {
    let (digits, unit) = match word.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => word.split_at(i),
        None => (word, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(scale)?;
    (1..=crate::session::MAX_SUSPEND_SECS)
        .contains(&secs)
        .then_some(secs)
}

/// Understands a line the user typed at the menu (without its line ending).
pub fn parse_command(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Command::Empty);
    }
    let Some(body) = trimmed.strip_prefix('/') else {
        // Only the assignment's exact words: "ex" or "pm" typed in a
        // conversation are chat, not a way out.
        return Ok(match trimmed {
            "PM" => Command::Menu(Operation::PM),
            "DM" => Command::Menu(Operation::DM),
            "EX" => Command::Menu(Operation::EX),
            // As typed: leading blanks may be meant.
            _ => Command::Say(line.trim_end_matches(['\r', '\n'])),
        });
    };
    if body.starts_with('/') {
        // `//text` is the message `/text`.
        return Ok(Command::Say(body));
    }
    let (name, rest) = match body.split_once(char::is_whitespace) {
        Some((n, r)) => (n, r.trim_start()),
        None => (body, ""),
    };
    let Some(info) = find_command(name) else {
        return Err(ParseError::Unknown(name));
    };
    let usage = Err(ParseError::Usage(info));
    Ok(match info.name {
        "msg" => {
            let Some((to, text)) = rest.split_once(char::is_whitespace) else {
                return usage;
            };
            let text = text.trim_start();
            if text.is_empty() {
                return usage;
            }
            Command::Msg { to, text }
        }
        "me" if rest.is_empty() => return usage,
        "me" => Command::Me(rest),
        "say" if rest.is_empty() => return usage,
        "say" => Command::Say(rest),
        "who" => Command::Who,
        "quit" => Command::Quit(Some(rest).filter(|r| !r.is_empty())),
        "connect" => Command::Connect,
        "more" => Command::More,
        "away" => Command::Away(Some(rest).filter(|r| !r.is_empty())),
        "whois" if rest.is_empty() || rest.contains(char::is_whitespace) => return usage,
        "whois" => Command::Whois(rest),
        "notice" if rest.is_empty() => return usage,
        "notice" => Command::Notice(rest),
        "audit" if rest.is_empty() => Command::Audit(None),
        "audit" => match rest.parse::<u32>() {
            Ok(n) if (1..=crate::session::MAX_AUDIT_PAGE).contains(&n) => Command::Audit(Some(n)),
            _ => return usage,
        },
        "banip" if rest.is_empty() => return usage,
        "banip" => {
            let (range, rest) = split_word(rest);
            let (secs, reason) = match split_word(rest) {
                ("", _) => (None, ""),
                (word, after) => match super::duration::parse_duration(word) {
                    Some(secs) => (Some(secs), after),
                    None => (None, rest),
                },
            };
            Command::BanIp {
                range,
                secs,
                reason: Some(reason).filter(|r| !r.is_empty()),
            }
        }
        "suspend" => {
            let (user, rest) = split_word(rest);
            if user.is_empty() {
                return usage;
            }
            let (word, after) = split_word(rest);
            let (secs, reason) = match parse_duration(word) {
                Some(secs) => (Some(secs), after),
                None if !word.is_empty() && word.starts_with(|c: char| c.is_ascii_digit()) => {
                    return usage;
                }
                None => (None, rest),
            };
            Command::Suspend {
                user,
                secs,
                reason: Some(reason).filter(|r| !r.is_empty()),
            }
        }
        "unbanip" if rest.is_empty() || rest.contains(char::is_whitespace) => return usage,
        "unbanip" => Command::UnbanIp(rest),
        "bans" if rest.contains(char::is_whitespace) => return usage,
        "bans" => Command::Bans(Some(rest).filter(|r| !r.is_empty())),
        "unsuspend" if rest.is_empty() || rest.contains(char::is_whitespace) => return usage,
        "unsuspend" => Command::Unsuspend(rest),
        "disconnect" => {
            let (user, reason) = split_word(rest);
            if user.is_empty() {
                return usage;
            }
            Command::Disconnect {
                user,
                reason: Some(reason).filter(|r| !r.is_empty()),
            }
        }
        "registration" => match crate::session::RegistrationMode::parse(rest) {
            Some(mode) => Command::Registration(mode),
            None => return usage,
        },
        "invite" if !rest.is_empty() => return usage,
        "invite" => Command::Invite,
        "join" if rest.is_empty() || rest.contains(char::is_whitespace) => return usage,
        "join" => Command::Join(rest),
        "part" => {
            let (room, reason) = room_first(rest);
            Command::Part { room, reason }
        }
        "go" if rest.contains(char::is_whitespace) => return usage,
        "go" if rest.is_empty() || rest == "*" => Command::Go(None),
        "go" => Command::Go(Some(rest)),
        "rooms" => Command::Rooms,
        "names" if rest.contains(char::is_whitespace) => return usage,
        "names" => Command::Names(Some(rest).filter(|r| !r.is_empty())),
        "topic" => {
            let (room, text) = room_first(rest);
            Command::Topic { room, text }
        }
        "history" => {
            let (room, rest) = room_first(rest);
            let limit = match rest {
                None => HISTORY_LINES,
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if n > 0 => n.min(MAX_HISTORY_LINES),
                    _ => return usage,
                },
            };
            Command::History { room, limit }
        }
        "kick" => match room_and_user(rest) {
            Some((room, user, reason)) => Command::Kick { room, user, reason },
            None => return usage,
        },
        "ban" => match room_and_user(rest) {
            Some((room, user, rest)) => {
                let (first, after) = match rest.map(|r| r.split_once(char::is_whitespace)) {
                    Some(Some((first, after))) => (Some(first), Some(after.trim_start())),
                    Some(None) => (rest, None),
                    None => (None, None),
                };
                match first.and_then(super::duration::parse_duration) {
                    Some(secs) => Command::Ban {
                        room,
                        user,
                        secs: Some(secs),
                        reason: after.filter(|r| !r.is_empty()),
                    },
                    None => Command::Ban {
                        room,
                        user,
                        secs: None,
                        reason: rest,
                    },
                }
            }
            None => return usage,
        },
        "unban" | "mute" | "unmute" | "op" | "deop" => {
            let action = match info.name {
                "unban" => RoomUserAction::Unban,
                "mute" => RoomUserAction::Mute,
                "unmute" => RoomUserAction::Unmute,
                "op" => RoomUserAction::Op,
                _ => RoomUserAction::Deop,
            };
            match room_and_user(rest) {
                Some((room, user, None)) => Command::RoomUser { action, room, user },
                _ => return usage,
            }
        }
        "lock-topic" | "moderated" => {
            let (room, rest) = room_first(rest);
            let on = match rest.map(str::to_ascii_lowercase).as_deref() {
                Some("on") => true,
                Some("off") => false,
                _ => return usage,
            };
            let (topic_locked, moderated) = if info.name == "lock-topic" {
                (Some(on), None)
            } else {
                (None, Some(on))
            };
            Command::RoomMode {
                room,
                topic_locked,
                moderated,
            }
        }
        "ignore" if rest.contains(char::is_whitespace) => return usage,
        "ignore" => Command::Ignore(Some(rest).filter(|r| !r.is_empty())),
        "unignore" if rest.is_empty() || rest.contains(char::is_whitespace) => return usage,
        "unignore" => Command::Unignore(rest),
        "confirm" => match rest.to_ascii_lowercase().as_str() {
            "" => Command::Confirm(None),
            "on" => Command::Confirm(Some(true)),
            "off" => Command::Confirm(Some(false)),
            _ => return usage,
        },
        _ => Command::Help(Some(rest).filter(|r| !r.is_empty())),
    })
}

/// A leading `#ROOM` word, if any, and the rest (`None` when empty).
fn room_first(rest: &str) -> (Option<&str>, Option<&str>) {
    let (room, rest) = match rest.strip_prefix('#') {
        Some(_) => match rest.split_once(char::is_whitespace) {
            Some((room, rest)) => (Some(room), rest.trim_start()),
            None => (Some(rest), ""),
        },
        None => (None, rest),
    };
    (room, Some(rest).filter(|r| !r.is_empty()))
}

/// A leading `#ROOM` word, if any, then a user's name, and the rest
/// (`None` when empty); `None` without a name.
fn room_and_user(rest: &str) -> Option<(Option<&str>, &str, Option<&str>)> {
    let (room, rest) = room_first(rest);
    let rest = rest?;
    Some(match rest.split_once(char::is_whitespace) {
        Some((user, more)) => (
            room,
            user,
            Some(more.trim_start()).filter(|m| !m.is_empty()),
        ),
        None => (room, rest, None),
    })
}

#[cfg(test)]
mod tests;
