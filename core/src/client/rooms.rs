//! Rooms in the client: what it remembers from one session to the next
//! (its place in each room, the offline messages it has shown), the room
//! commands, and the room messages from the server.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};

use super::*;

/// What a client remembers from one session to the next on the same
/// server: its place in each room, and the ids of the offline direct
/// messages it has shown (so that one delivered again after a server crash
/// is dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomMemory {
    /// Room to (epoch, offset of the last message seen).
    pub positions: BTreeMap<String, (String, u64)>,
    /// Ids of offline messages seen, the latest [`MAX_SEEN_OFFLINE`].
    pub seen_offline: BTreeSet<u64>,
    /// Room to (epoch, highest offset of a message relayed live): a live
    /// message at or below it was shown already. A node of a cluster that
    /// a client moved to may be behind the node it left, and relay again
    /// what that one had relayed.
    pub relayed: BTreeMap<String, (String, u64)>,
}

/// Ids of offline messages a client remembers: 10,000 (ids grow, so the
/// lowest go first).
pub const MAX_SEEN_OFFLINE: usize = 10_000;

impl RoomMemory {
    pub(super) fn saw(&mut self, room: &str, epoch: Option<&str>, offset: u64) {
        match self.positions.get_mut(room) {
            Some((e, o)) => {
                if let Some(epoch) = epoch
                    && epoch != e
                {
                    *e = epoch.to_string();
                    *o = offset;
                } else if offset > *o {
                    *o = offset;
                }
            }
            None => {
                if let Some(epoch) = epoch {
                    self.positions
                        .insert(room.to_string(), (epoch.to_string(), offset));
                }
            }
        }
    }

    /// Takes in a live room message's offset: false when one at that
    /// offset or above was relayed before in the same epoch of the room;
    /// else records it as relayed and as the room's place. One lookup of
    /// the room's place per message.
    pub(super) fn take_live(&mut self, room: &str, offset: u64) -> bool {
        let Some((epoch, seen)) = self.positions.get_mut(room) else {
            return true;
        };
        match self.relayed.get_mut(room) {
            Some((e, top)) if e == epoch => {
                if offset <= *top {
                    return false;
                }
                *top = offset;
            }
            _ => {
                self.relayed
                    .insert(room.to_string(), (epoch.clone(), offset));
            }
        }
        *seen = (*seen).max(offset);
        true
    }

    /// Records an offline message's id; false when it was seen before.
    pub(super) fn first_sight(&mut self, id: u64) -> bool {
        if !self.seen_offline.insert(id) {
            return false;
        }
        while self.seen_offline.len() > MAX_SEEN_OFFLINE {
            self.seen_offline.pop_first();
        }
        true
    }
}

impl Client {
    /// What this session learnt of rooms and offline messages, to hand to
    /// the next session on this server ([`ClientConfig::memory`]).
    pub fn memory(&self) -> &RoomMemory {
        &self.config.memory
    }

    /// Joins a room, making it if none has that name (answered by
    /// [`ClientEvent::RoomJoined`]).
    pub fn join(&mut self, room: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        self.send(&ClientMessage::Join {
            room: room.to_string(),
        })
    }

    /// Leaves a room, with an optional reason the members see (answered by
    /// [`ClientEvent::Parted`]).
    pub fn part(&mut self, room: &str, reason: Option<&str>) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        let reason = reason.filter(|r| !r.is_empty());
        if let Some(r) = reason {
            validate_text(r).map_err(CommandError::InvalidText)?;
            if r.len() > MAX_QUIT_MESSAGE {
                return Err(CommandError::ReasonTooLong(r.len()));
            }
        }
        self.send(&ClientMessage::Part {
            room: room.to_string(),
            reason: reason.map(ToString::to_string),
        })
    }

    /// Sends a message to a room the user is in (answered by
    /// [`ClientEvent::Said`]).
    pub fn say(&mut self, room: &str, text: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send(&ClientMessage::Say {
            room: room.to_string(),
            text: text.to_string(),
        })
    }

    /// Asks for the rooms that exist ([`ClientEvent::RoomList`]).
    pub fn request_rooms(&mut self) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Rooms)
    }

    /// Asks for a room's members ([`ClientEvent::Names`]).
    pub fn request_names(&mut self, room: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        self.send(&ClientMessage::Names {
            room: room.to_string(),
        })
    }

    /// Sets a room's topic; empty clears it ([`ClientEvent::Topic`]).
    pub fn set_topic(&mut self, room: &str, text: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        if !text.is_empty() {
            validate_text(text).map_err(CommandError::InvalidText)?;
        }
        if text.len() > session::MAX_TOPIC {
            return Err(CommandError::TopicTooLong(text.len()));
        }
        self.send(&ClientMessage::Topic {
            room: room.to_string(),
            text: text.to_string(),
        })
    }

    /// Asks for a page of a room's history: the latest `limit` messages
    /// below `before` (or the latest of all without it), answered by
    /// [`ClientEvent::RoomMessage`]s marked `history` and a
    /// [`ClientEvent::HistoryEnd`].
    pub fn request_history(
        &mut self,
        room: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        self.send(&ClientMessage::History {
            room: room.to_string(),
            before,
            after: None,
            limit: Some(limit.clamp(1, session::MAX_HISTORY_PAGE)),
        })
    }

    /// The event for a room message from the server (updating what the
    /// client remembers); `None` for one that is not about rooms.
    pub(super) fn on_room_message(&mut self, msg: ServerMessage) -> Option<ClientEvent> {
        Some(match msg {
            ServerMessage::Room {
                room,
                epoch,
                offset,
                topic,
                owner,
                members,
                count,
                backlog,
                ops,
                muted,
                topic_locked,
                moderated,
            } => {
                // The backlog that follows ends at `offset`.
                self.config
                    .memory
                    .positions
                    .insert(room.clone(), (epoch.clone(), offset));
                let joined = ClientEvent::RoomJoined {
                    room: room.clone(),
                    epoch,
                    offset,
                    topic,
                    owner,
                    members,
                    count,
                    backlog,
                };
                self.with_roles(joined, &room, ops, muted, topic_locked, moderated)
            }
            ServerMessage::Parted { room } => {
                self.config.memory.positions.remove(&room);
                self.config.memory.relayed.remove(&room);
                ClientEvent::Parted(room)
            }
            ServerMessage::MemberJoined { room, user } => ClientEvent::MemberJoined { room, user },
            ServerMessage::MemberLeft { room, user, reason } => {
                ClientEvent::MemberLeft { room, user, reason }
            }
            chat @ ServerMessage::RoomMsg { .. } => {
                if let Some(chat) = chat.as_chat() {
                    take_chat(&mut self.config.memory, &mut self.events, &chat);
                }
                return None;
            }
            ServerMessage::Said { room, offset, time } => {
                self.config.memory.saw(&room, None, offset);
                ClientEvent::Said { room, offset, time }
            }
            ServerMessage::RoomList { rooms, count } => ClientEvent::RoomList { rooms, count },
            ServerMessage::Names {
                room,
                users,
                count,
                ops,
                muted,
                ..
            } => {
                let names = ClientEvent::Names {
                    room: room.clone(),
                    users,
                    count,
                };
                self.with_roles(names, &room, ops, muted, false, false)
            }
            ServerMessage::Topic { room, by, text } => ClientEvent::Topic { room, by, text },
            ServerMessage::HistoryEnd {
                room, count, more, ..
            } => ClientEvent::HistoryEnd { room, count, more },
            ServerMessage::RoomResume {
                room,
                recovered,
                missed,
                epoch,
                offset,
            } => {
                // Replayed or not, the client is now at the room's end.
                self.config
                    .memory
                    .positions
                    .insert(room.clone(), (epoch, offset));
                ClientEvent::Resumed {
                    room,
                    recovered,
                    missed,
                }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn a_live_message_relayed_again_is_dropped_until_the_epoch_changes() {
        let mut m = RoomMemory::default();
        m.positions.insert("#r".to_string(), ("e1".to_string(), 0));
        assert!(m.take_live("#r", 1));
        assert!(m.take_live("#r", 2));
        assert_eq!(m.positions["#r"], ("e1".to_string(), 2));
        // A resume on a node that is behind sets the position back to 1;
        // that node relays 2 again.
        m.positions.insert("#r".to_string(), ("e1".to_string(), 1));
        assert!(!m.take_live("#r", 2));
        assert_eq!(m.positions["#r"], ("e1".to_string(), 1));
        assert!(m.take_live("#r", 3));
        assert_eq!(m.positions["#r"], ("e1".to_string(), 3));
        // A new epoch: offsets start again.
        m.positions.insert("#r".to_string(), ("e2".to_string(), 0));
        assert!(m.take_live("#r", 1));
        // A room the client has no place in is not held back, and gets no
        // place from a live message.
        assert!(m.take_live("#other", 1));
        assert!(!m.positions.contains_key("#other"));
    }
}
