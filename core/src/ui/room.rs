//! Rooms in the console: the room commands, where plain lines go (the
//! active room, or everyone online), and how the client's room events are
//! shown.

use super::outgoing::Unanswered;
use super::*;
use crate::session::{RoomInfo, validate_room};

/// `#rust` as typed, and `rust` as `#rust`.
pub(super) fn room_name(room: &str) -> String {
    if room.starts_with('#') {
        room.to_string()
    } else {
        alloc::format!("#{room}")
    }
}

impl Console {
    /// The room a command names, or else the active one.
    pub(super) fn target_room(&mut self, named: Option<&str>, usage: &str) -> Option<String> {
        match named.map(room_name).or_else(|| self.active.clone()) {
            Some(room) => Some(room),
            None => {
                self.error(alloc::format!(
                    "no room: name one ({usage}) or /join one first"
                ));
                None
            }
        }
    }

    /// A plain line, `/say` or `/me`: to the active room, or to everyone
    /// online.
    pub(super) fn send_plain(&mut self, text: &str) -> Result<(), CommandError> {
        match self.active.clone() {
            Some(room) => self.send_room(&room, text),
            None => self.send_public(text),
        }
    }

    /// A message to a room, paced with the others.
    pub(super) fn send_room(&mut self, room: &str, text: &str) -> Result<(), CommandError> {
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send_text(Some(room), text);
        Ok(())
    }

    /// Whether a room request counted in the server's message limit
    /// (`join`, `part`, `topic`, `history`) may go now. Refused by the
    /// server, it could not be told from a message's refusal, so it is
    /// refused here instead, and said.
    pub(super) fn within_rate(&mut self) -> bool {
        let now = self.now;
        if self.pacer.as_mut().is_none_or(|p| p.take(now)) {
            return true;
        }
        self.error("too fast for the server's limit: try again in a moment");
        false
    }

    /// The room commands (see [`Command`]).
    pub(super) fn room_command(&mut self, command: Command<'_>) -> Result<(), CommandError> {
        let limited = matches!(
            command,
            Command::Join(_)
                | Command::Part { .. }
                | Command::History { .. }
                | Command::Topic { text: Some(_), .. }
        );
        if limited && !self.within_rate() {
            return Ok(());
        }
        match command {
            Command::Join(room) => {
                // Active at once: the lines after it go to the room (the
                // server takes the join first).
                let room = room_name(room);
                self.client.join(&room)?;
                let previous = self.active.replace(room.clone());
                self.joins.push_back((room, previous));
            }
            Command::Part { room, reason } => {
                if let Some(room) = self.target_room(room, "/part #ROOM") {
                    self.client.part(&room, reason)?;
                    if self.active.as_ref() == Some(&room) {
                        self.active = None;
                    }
                }
            }
            Command::Go(None) => {
                self.active = None;
                self.emit(ChatEvent::Info {
                    text: "plain lines go to everyone online".to_string(),
                });
            }
            Command::Go(Some(room)) => {
                let room = room_name(room);
                // A room joined, or being joined (`/join` then `/go` in a
                // script).
                if self.rooms.contains_key(&room) || self.joins.iter().any(|(r, _)| *r == room) {
                    self.emit(ChatEvent::Info {
                        text: alloc::format!(
                            "plain lines go to {} (/go alone: to everyone online)",
                            sanitize(&room)
                        ),
                    });
                    self.active = Some(room);
                } else {
                    self.error(alloc::format!(
                        "you are not in {}: /join {} first",
                        sanitize(&room),
                        sanitize(&room)
                    ));
                }
            }
            Command::Rooms => self.client.request_rooms()?,
            Command::Names(None) if self.active.is_none() => self.client.request_online()?,
            Command::Names(room) => {
                if let Some(room) = self.target_room(room, "/names #ROOM") {
                    self.client.request_names(&room)?;
                }
            }
            Command::Topic { room, text } => {
                let Some(room) = self.target_room(room, "/topic #ROOM") else {
                    return Ok(());
                };
                match (text, self.rooms.get(&room)) {
                    (Some(text), _) => self.client.set_topic(&room, text)?,
                    (None, Some(Some(topic))) => {
                        let text = topic.clone();
                        self.emit(ChatEvent::Topic {
                            room,
                            by: None,
                            text,
                        });
                    }
                    // Not known yet: the room list says it.
                    (None, _) => self.client.request_rooms()?,
                }
            }
            Command::History { room, limit } => {
                if let Some(room) = self.target_room(room, "/history #ROOM") {
                    self.client.request_history(&room, None, limit)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After `login_ok`: the rooms the account is in. The active room
    /// stays active if the user is still in it.
    pub(super) fn logged_in_rooms(&mut self, rooms: &[String]) {
        let known = core::mem::take(&mut self.rooms);
        self.rooms = rooms
            .iter()
            .map(|r| (r.clone(), known.get(r).cloned().flatten()))
            .collect();
        self.online_changes += 1;
        if self
            .active
            .as_ref()
            .is_some_and(|a| !self.rooms.contains_key(a))
        {
            self.active = None;
        }
    }

    /// A refusal about rooms: a room message's (shown as not sent), a
    /// join's (the room it made active is not), or another room
    /// request's. Room requests are answered when the server is done with
    /// them (a join or a message once stored), not in order, so they are
    /// told apart by the code. False for other refusals.
    pub(super) fn room_refused(&mut self, code: ErrorCode, message: &str) -> bool {
        let message_refused = matches!(code, ErrorCode::NotMember | ErrorCode::NoSuchRoom);
        let join_refused = matches!(
            code,
            ErrorCode::InvalidRoom | ErrorCode::TooManyRooms | ErrorCode::RoomFull
        );
        if !message_refused && !join_refused && code != ErrorCode::InvalidTopic {
            return false;
        }
        let room_message = self
            .unanswered
            .iter()
            .position(|u| matches!(u, Unanswered::Message(m) if m.is_room()));
        if message_refused && let Some(i) = room_message {
            if let Some(Unanswered::Message(m)) = self.unanswered.remove(i) {
                self.not_sent(m, message.to_string());
            }
            return true;
        }
        // The join the message names, or else the latest: a refusal comes
        // at once, an accepted join only once stored.
        let named = self.joins.iter().position(|(room, _)| {
            message
                .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
                .any(|word| word == room)
        });
        if join_refused
            && let Some(i) = named.or(self.joins.len().checked_sub(1))
            && let Some((room, previous)) = self.joins.remove(i)
            && self.active.as_ref() == Some(&room)
        {
            self.active = previous;
            self.active_changed();
        }
        self.emit(ChatEvent::Error {
            message: message.to_string(),
        });
        true
    }

    /// Shows the prompt again when the active room changed at the menu.
    pub(super) fn active_changed(&mut self) {
        if self.mode == Mode::Menu {
            self.enter_menu();
        }
    }

    /// The client's room events.
    pub(super) fn on_room_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::RoomJoined {
                room,
                topic,
                members,
                count,
                backlog,
                ..
            } => {
                if let Some(i) = self.joins.iter().position(|(r, _)| *r == room) {
                    self.joins.remove(i);
                }
                self.rooms.insert(room.clone(), Some(topic.clone()));
                self.online_changes += 1;
                self.emit(ChatEvent::RoomJoined {
                    room,
                    topic,
                    members,
                    count,
                    backlog,
                });
            }
            ClientEvent::Parted(room) => {
                self.rooms.remove(&room);
                self.online_changes += 1;
                if self.active.as_ref() == Some(&room) {
                    self.active = None;
                    self.active_changed();
                }
                self.emit(ChatEvent::Parted { room });
            }
            ClientEvent::MemberJoined { room, user } => {
                self.emit(ChatEvent::MemberJoined { room, user });
            }
            ClientEvent::MemberLeft { room, user, reason } => {
                self.emit(ChatEvent::MemberLeft { room, user, reason });
            }
            ClientEvent::RoomMessage {
                room,
                offset,
                from,
                text,
                time,
                history,
            } => {
                let (text, action) = match text.strip_prefix("/me ") {
                    Some(action) => (action.to_string(), true),
                    None => (text, false),
                };
                let mention = mentions(&text, self.client.username());
                self.emit(ChatEvent::RoomMessage {
                    room,
                    from,
                    text,
                    action,
                    mention,
                    history,
                    offset,
                    sent: time,
                });
            }
            ClientEvent::Said { room, offset, time } => {
                let at = self.unanswered.iter().position(
                    |u| matches!(u, Unanswered::Message(m) if m.to.as_ref() == Some(&room)),
                );
                let text = match at.and_then(|i| self.unanswered.remove(i)) {
                    Some(Unanswered::Message(m)) => Some(m.text),
                    _ => None,
                };
                if self.config.show_sent
                    && let Some(text) = &text
                {
                    let (text, action) = match text.strip_prefix("/me ") {
                        Some(action) => (action.to_string(), true),
                        None => (text.clone(), false),
                    };
                    self.emit(ChatEvent::RoomMessage {
                        room: room.clone(),
                        from: self.client.username().to_string(),
                        text,
                        action,
                        mention: false,
                        history: false,
                        offset,
                        sent: time,
                    });
                }
                if self.confirmations {
                    self.emit(ChatEvent::Said { room, offset, text });
                }
            }
            ClientEvent::RoomList { rooms, count } => {
                for RoomInfo { room, topic, .. } in &rooms {
                    if let Some(known) = self.rooms.get_mut(room) {
                        *known = Some(topic.clone());
                    }
                }
                self.emit(ChatEvent::RoomList { rooms, count });
            }
            ClientEvent::Names { room, users, count } => {
                self.emit(ChatEvent::Names { room, users, count });
            }
            ClientEvent::Topic { room, by, text } => {
                if let Some(known) = self.rooms.get_mut(&room) {
                    *known = Some(text.clone());
                }
                // No setter: a server that learnt of it late (§5.4).
                let by = (!by.is_empty()).then_some(by);
                self.emit(ChatEvent::Topic { room, by, text });
            }
            ClientEvent::HistoryEnd { room, count, more } => {
                self.emit(ChatEvent::HistoryEnd { room, count, more });
            }
            ClientEvent::Resumed {
                room,
                recovered,
                missed,
            } => self.emit(ChatEvent::Resumed {
                room,
                recovered,
                missed,
            }),
            _ => {}
        }
    }
}
