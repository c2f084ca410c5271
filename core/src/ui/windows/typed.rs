//! What a line typed in a window means: the window commands, done here,
//! and the console's lines, with the window's room or user made explicit.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::super::*;
use super::{Entry, WINDOW_COMMANDS, WindowKind, Windows};

impl Windows {
    /// A line typed in the active window, as the lines the console gets
    /// ([`Console::handle_line`]), in order; the window commands
    /// ([`WINDOW_COMMANDS`]) are done here and give none. `console_room`
    /// is where the console sends plain lines now
    /// ([`Console::active_room`]).
    ///
    /// In a room, plain lines, `/say` and `/me` go to the room, and
    /// `/part`, `/names`, `/topic` and `/history` without a room name it;
    /// in a conversation they go to its user; in the server window to
    /// everyone online. Any other line is the console's as typed.
    pub fn typed(&mut self, line: &str, console_room: Option<&str>) -> Vec<String> {
        let trimmed = line.trim_start();
        let (word, rest) = match trimmed.strip_prefix('/') {
            Some(after) if !after.starts_with('/') => {
                let (w, r) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
                (Some(w.to_ascii_lowercase()), r.trim())
            }
            _ => (None, ""),
        };
        if let Some(w) = word.as_deref()
            && let Some(()) = self.window_command(w, rest)
        {
            return Vec::new();
        }
        if word.as_deref() == Some("help") {
            let topic = rest.trim_start_matches('/');
            if let Some((_, usage, what)) = WINDOW_COMMANDS.iter().find(|(name, _, _)| {
                name.eq_ignore_ascii_case(topic) || (topic == "win" && *name == "window")
            }) {
                self.info(format!("{usage}: {what}"));
                return Vec::new();
            }
            if topic.is_empty() {
                let list: Vec<&str> = WINDOW_COMMANDS.iter().map(|(_, usage, _)| *usage).collect();
                self.info(format!(
                    "windows: {}; F2 members, PgUp/PgDn scroll",
                    list.join(", ")
                ));
            }
        }
        if word.as_deref() == Some("query") {
            // `/query USER TEXT`: the conversation opens, and TEXT goes to
            // it.
            let (user, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if let Err(e) = validate_username(user) {
                self.error(format!("usage: /query USER [TEXT] ({e})"));
                return Vec::new();
            }
            self.query(user);
            let text = text.trim();
            return if text.is_empty() {
                Vec::new()
            } else {
                self.typed(text, console_room)
            };
        }
        if word.as_deref() == Some("join") {
            let room = rest.split_whitespace().next().unwrap_or_default();
            let room = if room.starts_with('#') {
                room.to_string()
            } else {
                format!("#{room}")
            };
            self.joining.insert(room.to_ascii_lowercase());
        }
        // Which message a line is, if it is one: (text, is an action).
        let message = match (word.as_deref(), parse_command(line)) {
            (_, Ok(Command::Say(text))) => Some(text.to_string()),
            (_, Ok(Command::Me(action))) => Some(format!("/me {action}")),
            _ => None,
        };
        match (self.active().kind.clone(), message) {
            (WindowKind::Room(room), Some(text)) => vec![format!("/msg {room} {text}")],
            (WindowKind::Query(user), Some(text)) => vec![format!("/msg {user} {text}")],
            (WindowKind::Server, Some(_)) if console_room.is_some() => {
                // The console sends plain lines to a room since a /join:
                // to everyone online again first, without saying so.
                self.quiet_go += 1;
                vec!["/go".to_string(), line.to_string()]
            }
            (WindowKind::Room(room), None) => vec![name_room(line, word.as_deref(), rest, &room)],
            _ => vec![line.to_string()],
        }
    }

    /// `/window`, `/close`, `/members`: `Some` when done here.
    fn window_command(&mut self, word: &str, rest: &str) -> Option<()> {
        match word {
            "window" | "win" => {
                match rest.parse::<usize>() {
                    Ok(n) if n >= 1 && self.select(n - 1) => {}
                    _ if rest.is_empty() => {
                        let list: Vec<String> = self
                            .windows
                            .iter()
                            .enumerate()
                            .map(|(i, w)| format!("{}:{}", i + 1, sanitize(w.name())))
                            .collect();
                        self.info(format!(
                            "windows: {} (Alt-1..9, Alt-\u{2190}/\u{2192}, Ctrl-N/P)",
                            list.join(" ")
                        ));
                    }
                    _ => self.error(format!(
                        "no window {}: there are {}",
                        sanitize(rest),
                        self.windows.len()
                    )),
                }
                Some(())
            }
            "close" => {
                let w = &self.windows[self.active];
                match &w.kind {
                    WindowKind::Server => self.error("the server window stays".to_string()),
                    WindowKind::Room(r) if w.joined => {
                        let r = sanitize(r);
                        self.error(format!("you are in {r}: /part {r} first"));
                    }
                    _ => {
                        self.windows.remove(self.active);
                        self.select(self.active.min(self.windows.len() - 1));
                    }
                }
                Some(())
            }
            "members" => {
                self.toggle_members();
                Some(())
            }
            _ => None,
        }
    }

    fn info(&mut self, text: String) {
        let i = self.active;
        self.windows[i].add(Entry::Event {
            event: ChatEvent::Info { text },
            time: None,
        });
    }

    fn error(&mut self, message: String) {
        let i = self.active;
        self.windows[i].add(Entry::Event {
            event: ChatEvent::Error { message },
            time: None,
        });
    }
}

/// A room command typed in `room`'s window without a room name, with it.
fn name_room(line: &str, word: Option<&str>, rest: &str, room: &str) -> String {
    let Some(word) = word else {
        return line.to_string();
    };
    let named = rest.starts_with('#');
    match word {
        "part" | "leave" | "names" | "topic" | "history" | "kick" | "ban" | "unban" | "mute"
        | "unmute" | "op" | "deop" | "lock-topic" | "moderated"
            if !named =>
        {
            if rest.is_empty() {
                format!("/{word} {room}")
            } else {
                format!("/{word} {room} {rest}")
            }
        }
        _ => line.to_string(),
    }
}

impl Console {
    /// Asks for `limit` messages of `room` below offset `before` (a
    /// [`HistoryFetch`]), answered by history [`ChatEvent::RoomMessage`]s
    /// and a [`ChatEvent::HistoryEnd`]. The request counts in the
    /// server's message limit: false (and nothing sent) when it would
    /// exceed it now, or when the session is not logged in.
    pub fn fetch_history(&mut self, room: &str, before: u64, limit: u32) -> bool {
        if !self.is_ready() {
            return false;
        }
        let now = self.now;
        if !self.pacer.as_mut().is_none_or(|p| p.take(now)) {
            return false;
        }
        self.client
            .request_history(room, Some(before), limit)
            .is_ok()
    }

    /// Asks for the members of `room` (answered by
    /// [`ChatEvent::Names`]), for a room the user was in before this
    /// session (see [`Windows::members_wanted`]). False when the session is
    /// not logged in.
    pub fn request_members(&mut self, room: &str) -> bool {
        self.is_ready() && self.client.request_names(room).is_ok()
    }
}
