//! Room roles in the client (PROTOCOL.md §5.13): the moderation requests
//! of a room's owner and operators, and the events that tell of roles.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::*;
use crate::session::MAX_ROOM_BAN_SECS;

/// A room's roles as `room` and `names` tell them: sent as
/// [`ClientEvent::RoomRoles`] after [`ClientEvent::RoomJoined`] or
/// [`ClientEvent::Names`] when any is set.
fn roles_event(
    room: &str,
    ops: Vec<String>,
    muted: Vec<String>,
    topic_locked: bool,
    moderated: bool,
) -> Option<ClientEvent> {
    (!ops.is_empty() || !muted.is_empty() || topic_locked || moderated).then(|| {
        ClientEvent::RoomRoles {
            room: room.to_string(),
            ops,
            muted,
            topic_locked,
            moderated,
        }
    })
}

impl Client {
    fn room_and_user(&self, room: &str, user: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        validate_username(user).map_err(CommandError::InvalidUsername)?;
        Ok(())
    }

    fn reason(reason: Option<&str>) -> Result<Option<String>, CommandError> {
        match reason.filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(r) => {
                validate_text(r).map_err(CommandError::InvalidText)?;
                if r.len() > MAX_QUIT_MESSAGE {
                    return Err(CommandError::ReasonTooLong(r.len()));
                }
                Ok(Some(r.to_string()))
            }
        }
    }

    /// Removes `user` from `room` (its owner and operators; answered by
    /// [`ClientEvent::ModOk`]).
    pub fn room_kick(
        &mut self,
        room: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        self.room_and_user(room, user)?;
        let reason = Self::reason(reason)?;
        self.send(&ClientMessage::RoomKick {
            room: room.to_string(),
            user: user.to_string(),
            reason,
        })
    }

    /// Bans `user` from `room` for `secs` (`None`: no expiry; longer than
    /// [`MAX_ROOM_BAN_SECS`] is refused as [`CommandError::BanTooLong`]).
    pub fn room_ban(
        &mut self,
        room: &str,
        user: &str,
        secs: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        self.room_and_user(room, user)?;
        if let Some(s) = secs
            && !(1..=MAX_ROOM_BAN_SECS).contains(&s)
        {
            return Err(CommandError::BanTooLong(s));
        }
        let reason = Self::reason(reason)?;
        self.send(&ClientMessage::RoomBan {
            room: room.to_string(),
            user: user.to_string(),
            secs,
            reason,
        })
    }

    /// Lifts a room ban.
    pub fn room_unban(&mut self, room: &str, user: &str) -> Result<(), CommandError> {
        self.room_and_user(room, user)?;
        self.send(&ClientMessage::RoomUnban {
            room: room.to_string(),
            user: user.to_string(),
        })
    }

    /// Mutes (`true`) or unmutes a member of `room`.
    pub fn room_mute(&mut self, room: &str, user: &str, mute: bool) -> Result<(), CommandError> {
        self.room_and_user(room, user)?;
        let (room, user) = (room.to_string(), user.to_string());
        self.send(&if mute {
            ClientMessage::RoomMute { room, user }
        } else {
            ClientMessage::RoomUnmute { room, user }
        })
    }

    /// Makes a member an operator (`true`) or a plain member again (the
    /// room's owner only).
    pub fn room_op(&mut self, room: &str, user: &str, op: bool) -> Result<(), CommandError> {
        self.room_and_user(room, user)?;
        let (room, user) = (room.to_string(), user.to_string());
        self.send(&if op {
            ClientMessage::RoomOp { room, user }
        } else {
            ClientMessage::RoomDeop { room, user }
        })
    }

    /// Sets a room's modes; `None` leaves one as it is.
    pub fn room_mode(
        &mut self,
        room: &str,
        topic_locked: Option<bool>,
        moderated: Option<bool>,
    ) -> Result<(), CommandError> {
        self.require_login()?;
        validate_room(room).map_err(CommandError::InvalidRoom)?;
        self.send(&ClientMessage::RoomMode {
            room: room.to_string(),
            topic_locked,
            moderated,
        })
    }

    /// The event for a room-role message from the server; `None` for
    /// another.
    pub(super) fn on_roles_message(&mut self, msg: ServerMessage) -> Option<ClientEvent> {
        Some(match msg {
            ServerMessage::Kicked {
                room,
                by,
                reason,
                banned,
                until,
            } => {
                // Out of the room, as after `parted`.
                self.config.memory.positions.remove(&room);
                ClientEvent::Kicked {
                    room,
                    by,
                    reason,
                    banned,
                    until,
                }
            }
            ServerMessage::RoomRole {
                room,
                user,
                role,
                by,
            } => ClientEvent::RoomRole {
                room,
                user,
                role,
                by,
            },
            ServerMessage::MemberMuted { room, user, by } => ClientEvent::MemberMuted {
                room,
                user,
                by,
                muted: true,
            },
            ServerMessage::MemberUnmuted { room, user, by } => ClientEvent::MemberMuted {
                room,
                user,
                by,
                muted: false,
            },
            ServerMessage::RoomMode {
                room,
                by,
                topic_locked,
                moderated,
            } => ClientEvent::RoomMode {
                room,
                by,
                topic_locked,
                moderated,
            },
            _ => return None,
        })
    }

    /// Queues `first`, and the roles event after it when the room has any
    /// roles set; returns the last to queue.
    pub(super) fn with_roles(
        &mut self,
        first: ClientEvent,
        room: &str,
        ops: Vec<String>,
        muted: Vec<String>,
        topic_locked: bool,
        moderated: bool,
    ) -> ClientEvent {
        match roles_event(room, ops, muted, topic_locked, moderated) {
            Some(roles) => {
                self.events.push(first);
                roles
            }
            None => first,
        }
    }
}
