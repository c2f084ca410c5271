//! Room roles (PROTOCOL.md §5.13): a room's owner, the operators the owner
//! names, and its members; kicks, room bans with an expiry, mutes, and the
//! `topic_locked` and `moderated` modes.
//!
//! Owners, operators and server admins moderate a room. Every action is
//! applied in memory at once (later requests see it), written to the audit
//! log and then to the room's record ([`StoreOp::SetRoles`], the roles
//! whole), and confirmed (`mod_ok`, and the events to the room) once the
//! last of those writes is durable.
//!
//! When the owner leaves (`part`, or a kick or ban by an admin), the
//! longest-standing operator becomes the owner; with no operator the room
//! has no owner until an admin names an operator, who then becomes it.

use alloc::boxed::Box;
use alloc::vec;

use super::audit::Action;
use super::*;
use crate::session::{MAX_ROOM_BAN_SECS, MAX_ROOM_BANS, MAX_ROOM_MUTED, MAX_ROOM_OPS, RoomRole};
use store::{RoomBan, RoomRoles};

/// What to tell, once a room's change is durable.
#[derive(Debug)]
pub(super) struct Change {
    /// The session that asked, answered with `mod_ok` (`None`: a change
    /// that followed a `part`, answered by `parted`).
    pub conn: Option<u64>,
    /// `mod_ok`'s `action` and `target`.
    pub action: String,
    pub target: String,
    /// The room.
    pub room: String,
    /// To the room's online members.
    pub to_room: Vec<ServerMessage>,
    /// To one account (its [`username_key`]), if online: `kicked`.
    pub to_user: Option<(String, ServerMessage)>,
}

impl Room {
    /// Whether the account `key` owns the room.
    pub(super) fn is_owner(&self, key: &str) -> bool {
        !self.owner.is_empty() && username_key(&self.owner) == key
    }

    /// Whether the account `key` is one of the room's operators.
    pub(super) fn is_op(&self, key: &str) -> bool {
        self.roles.ops.iter().any(|o| username_key(o) == key)
    }

    /// Whether the account `key` is muted in the room.
    pub(super) fn is_muted(&self, key: &str) -> bool {
        self.roles.muted.iter().any(|m| username_key(m) == key)
    }

    /// The ban of the account `key` that is in force at `now_ms`.
    pub(super) fn ban_of(&self, key: &str, now_ms: u64) -> Option<&RoomBan> {
        self.roles
            .bans
            .iter()
            .find(|b| username_key(&b.user) == key && b.until.is_none_or(|u| u > now_ms))
    }
}

/// `#room user`: the audit log's target of an action on a member.
fn target(room: &str, user: &str) -> String {
    format!("{room} {user}")
}

/// A reason as given: absent or empty is none; otherwise text of at most
/// [`MAX_QUIT_MESSAGE`] bytes.
fn reason_of(reason: Option<String>) -> Result<Option<String>, String> {
    match reason.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) if r.len() > MAX_QUIT_MESSAGE => Err(format!(
            "a reason is at most {MAX_QUIT_MESSAGE} bytes; this one is {}",
            r.len()
        )),
        Some(r) => match validate_text(&r) {
            Ok(()) => Ok(Some(r)),
            Err(e) => Err(format!("the reason: {e}")),
        },
    }
}

impl Server {
    /// Whether `name` may moderate `room`: its owner, an operator, or a
    /// server admin.
    pub(super) fn may_moderate(&self, room: &Room, name: &str) -> bool {
        let key = username_key(name);
        room.is_owner(&key) || room.is_op(&key) || self.is_admin(name)
    }

    /// Handles the requests of PROTOCOL.md §5.13 from the logged-in user
    /// `name`.
    pub(super) fn handle_room_roles(
        &mut self,
        now: Instant,
        conn: u64,
        name: String,
        message: ClientMessage,
    ) {
        if !self.take_message_token(now, conn) {
            self.rate_limited(conn);
            return;
        }
        let (room, user) = match &message {
            ClientMessage::RoomKick { room, user, .. }
            | ClientMessage::RoomBan { room, user, .. }
            | ClientMessage::RoomUnban { room, user }
            | ClientMessage::RoomMute { room, user }
            | ClientMessage::RoomUnmute { room, user }
            | ClientMessage::RoomOp { room, user }
            | ClientMessage::RoomDeop { room, user } => (room.clone(), Some(user.clone())),
            ClientMessage::RoomMode { room, .. } => (room.clone(), None),
            _ => return,
        };
        let owner_only = matches!(
            message,
            ClientMessage::RoomOp { .. } | ClientMessage::RoomDeop { .. }
        );
        if !self.moderator_of(conn, &name, &room, owner_only) {
            return;
        }
        let Some(user) = user else {
            if let ClientMessage::RoomMode {
                topic_locked,
                moderated,
                ..
            } = message
            {
                self.on_room_mode(conn, &name, room, topic_locked, moderated);
            }
            return;
        };
        // The account acted on, by its name as registered.
        let key = username_key(&user);
        let Some(account) = self.users.get(&key).map(|u| u.name.clone()) else {
            self.error(
                conn,
                ErrorCode::UnknownUser,
                format!("there is no user named {user}"),
            );
            return;
        };
        if key == username_key(&name) {
            self.error(
                conn,
                ErrorCode::NotPermitted,
                "a moderator does not act on themselves (leave with part)".to_string(),
            );
            return;
        }
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        // Operators do not act on the owner; the owner and admins may.
        let actor = username_key(&name);
        if r.is_owner(&key) && !r.is_owner(&actor) && !self.is_admin(&name) {
            self.error(
                conn,
                ErrorCode::NotPermitted,
                format!("operators may not act on the owner of {room}"),
            );
            return;
        }
        let member = r.members.contains_key(&key);
        let needs_member = matches!(
            message,
            ClientMessage::RoomKick { .. }
                | ClientMessage::RoomMute { .. }
                | ClientMessage::RoomOp { .. }
        );
        if needs_member && !member {
            self.error(
                conn,
                ErrorCode::NotMember,
                format!("{account} is not a member of {room}"),
            );
            return;
        }
        match message {
            ClientMessage::RoomKick { reason, .. } => match reason_of(reason) {
                Ok(reason) => self.on_kick(conn, &name, room, account, reason, None),
                Err(e) => self.error(conn, ErrorCode::InvalidText, e),
            },
            ClientMessage::RoomBan { secs, reason, .. } => {
                if let Some(s) = secs
                    && !(1..=MAX_ROOM_BAN_SECS).contains(&s)
                {
                    self.error(
                        conn,
                        ErrorCode::BadMessage,
                        format!(
                            "a ban lasts 1 to {MAX_ROOM_BAN_SECS} seconds, or has no secs and no end"
                        ),
                    );
                    return;
                }
                match reason_of(reason) {
                    Ok(reason) => {
                        let until = secs.map(|s| self.unix_time() + s * 1000);
                        self.on_ban(conn, &name, room, account, member, reason, until);
                    }
                    Err(e) => self.error(conn, ErrorCode::InvalidText, e),
                }
            }
            ClientMessage::RoomUnban { .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                r.roles.bans.retain(|b| username_key(&b.user) != key);
                self.commit(&name, "room_unban", conn, room, account, Vec::new(), None);
            }
            ClientMessage::RoomMute { .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                if !r.is_muted(&key) {
                    if r.roles.muted.len() >= MAX_ROOM_MUTED {
                        self.list_full(conn, &room, "muted members", MAX_ROOM_MUTED);
                        return;
                    }
                    r.roles.muted.push(account.clone());
                }
                let event = ServerMessage::MemberMuted {
                    room: room.clone(),
                    user: account.clone(),
                    by: name.clone(),
                };
                self.commit(&name, "room_mute", conn, room, account, vec![event], None);
            }
            ClientMessage::RoomUnmute { .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                let was = r.is_muted(&key);
                r.roles.muted.retain(|m| username_key(m) != key);
                let events = if was {
                    vec![ServerMessage::MemberUnmuted {
                        room: room.clone(),
                        user: account.clone(),
                        by: name.clone(),
                    }]
                } else {
                    Vec::new()
                };
                self.commit(&name, "room_unmute", conn, room, account, events, None);
            }
            ClientMessage::RoomOp { .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                // A room without an owner gets one: the first operator an
                // admin names.
                let role = if r.owner.is_empty() {
                    r.owner.clone_from(&account);
                    RoomRole::Owner
                } else if r.is_owner(&key) {
                    RoomRole::Owner
                } else {
                    if !r.is_op(&key) {
                        if r.roles.ops.len() >= MAX_ROOM_OPS {
                            self.list_full(conn, &room, "operators", MAX_ROOM_OPS);
                            return;
                        }
                        r.roles.ops.push(account.clone());
                    }
                    RoomRole::Op
                };
                let event = ServerMessage::RoomRole {
                    room: room.clone(),
                    user: account.clone(),
                    role,
                    by: name.clone(),
                };
                self.commit(&name, "room_op", conn, room, account, vec![event], None);
            }
            ClientMessage::RoomDeop { .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                let was = r.is_op(&key);
                r.roles.ops.retain(|o| username_key(o) != key);
                let events = if was {
                    vec![ServerMessage::RoomRole {
                        room: room.clone(),
                        user: account.clone(),
                        role: RoomRole::Member,
                        by: name.clone(),
                    }]
                } else {
                    Vec::new()
                };
                self.commit(&name, "room_deop", conn, room, account, events, None);
            }
            _ => {}
        }
    }

    /// Checks that `room` exists and that `name` moderates it (with
    /// `owner_only`, owns it, or is an admin); tells the client when not.
    fn moderator_of(&mut self, conn: u64, name: &str, room: &str, owner_only: bool) -> bool {
        if let Err(e) = session::validate_room(room) {
            self.error(conn, ErrorCode::InvalidRoom, e.to_string());
            return false;
        }
        let Some(r) = self.rooms.get(room) else {
            self.error(
                conn,
                ErrorCode::NoSuchRoom,
                format!("there is no room {room}"),
            );
            return false;
        };
        let key = username_key(name);
        let allowed = if owner_only {
            r.is_owner(&key) || self.is_admin(name)
        } else {
            self.may_moderate(r, name)
        };
        if !allowed {
            let who = if owner_only {
                "its owner"
            } else {
                "its owner and operators"
            };
            self.error(
                conn,
                ErrorCode::NotPermitted,
                format!("only {who} may do that in {room}"),
            );
        }
        allowed
    }

    fn list_full(&mut self, conn: u64, room: &str, what: &str, max: usize) {
        self.error(
            conn,
            ErrorCode::ListFull,
            format!("{room} has {max} {what}, as many as a room keeps"),
        );
    }

    /// `room_kick`, and the removal part of `room_ban` (`banned` with the
    /// ban's end).
    fn on_kick(
        &mut self,
        conn: u64,
        by: &str,
        room: String,
        user: String,
        reason: Option<String>,
        banned: Option<Option<u64>>,
    ) {
        let key = username_key(&user);
        let mut ops = Vec::new();
        // Out of the room at once, as `part` does.
        if let Some(set) = self.memberships.get_mut(&key) {
            set.remove(&room);
            if set.is_empty() {
                self.memberships.remove(&key);
            }
        }
        let session = self.online.get(&key).map(|(c, _)| *c);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.members.remove(&key);
        if let Some(s) = session {
            r.present.remove(&s);
        }
        let empty = r.members.is_empty();
        let verb = if banned.is_some() { "banned" } else { "kicked" };
        let said = match &reason {
            Some(why) => format!("{verb} by {by}: {why}"),
            None => format!("{verb} by {by}"),
        };
        let mut events = Vec::new();
        if r.members.len() < self.config.max_presence {
            events.push(ServerMessage::MemberLeft {
                room: room.clone(),
                user: user.clone(),
                reason: Some(said),
            });
        }
        let kicked = ServerMessage::Kicked {
            room: room.clone(),
            by: by.to_string(),
            reason: reason.clone(),
            banned: banned.is_some(),
            until: banned.flatten(),
        };
        let action = if banned.is_some() {
            "room_ban"
        } else {
            "room_kick"
        };
        if empty {
            // The last member was removed: the room and its history go.
            self.rooms.remove(&room);
            self.audit(
                Action {
                    by,
                    action,
                    target: &target(&room, &user),
                    reason: reason.as_deref().unwrap_or(""),
                    until: banned.flatten(),
                },
                None,
            );
            let change = Change {
                conn: Some(conn),
                action: action.to_string(),
                target: target(&room, &user),
                room: room.clone(),
                to_room: Vec::new(),
                to_user: Some((key, kicked)),
            };
            self.store(
                StoreOp::DeleteRoom { room },
                Some(Write::RoomChange(Box::new(change))),
            );
            return;
        }
        ops.push(StoreOp::Part {
            room: room.clone(),
            user: user.clone(),
        });
        if let Some((_, mut more)) = self.after_leaving(&room, &key, by) {
            events.append(&mut more);
        }
        self.commit_with(
            Action {
                by,
                action,
                target: &target(&room, &user),
                reason: reason.as_deref().unwrap_or(""),
                until: banned.flatten(),
            },
            conn,
            room,
            ops,
            events,
            Some((key, kicked)),
        );
    }

    #[allow(clippy::too_many_arguments)] // the request's fields, as parsed
    fn on_ban(
        &mut self,
        conn: u64,
        by: &str,
        room: String,
        user: String,
        member: bool,
        reason: Option<String>,
        until: Option<u64>,
    ) {
        let now_ms = self.unix_time();
        let key = username_key(&user);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.roles
            .bans
            .retain(|b| username_key(&b.user) != key && b.until.is_none_or(|u| u > now_ms));
        if r.roles.bans.len() >= MAX_ROOM_BANS {
            self.list_full(conn, &room, "bans", MAX_ROOM_BANS);
            return;
        }
        r.roles.bans.push(RoomBan {
            user: user.clone(),
            until,
        });
        if member {
            self.on_kick(conn, by, room, user, reason, Some(until));
        } else {
            self.commit_with(
                Action {
                    by,
                    action: "room_ban",
                    target: &target(&room, &user),
                    reason: reason.as_deref().unwrap_or(""),
                    until,
                },
                conn,
                room,
                Vec::new(),
                Vec::new(),
                None,
            );
        }
    }

    fn on_room_mode(
        &mut self,
        conn: u64,
        by: &str,
        room: String,
        topic_locked: Option<bool>,
        moderated: Option<bool>,
    ) {
        if topic_locked.is_none() && moderated.is_none() {
            self.error(
                conn,
                ErrorCode::BadMessage,
                "room_mode needs topic_locked, moderated, or both".to_string(),
            );
            return;
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        if let Some(t) = topic_locked {
            r.roles.topic_locked = t;
        }
        if let Some(m) = moderated {
            r.roles.moderated = m;
        }
        let (t, m) = (r.roles.topic_locked, r.roles.moderated);
        let event = ServerMessage::RoomMode {
            room: room.clone(),
            by: by.to_string(),
            topic_locked: t,
            moderated: m,
        };
        let reason = format!("topic_locked={t} moderated={m}");
        self.commit_with(
            Action {
                by,
                action: "room_mode",
                target: &room,
                reason: &reason,
                until: None,
            },
            conn,
            room.clone(),
            Vec::new(),
            vec![event],
            None,
        );
    }

    /// Audits an action on `user` in `room` with no reason nor expiry, and
    /// writes the room's roles.
    #[allow(clippy::too_many_arguments)] // the action and whom to tell
    fn commit(
        &mut self,
        by: &str,
        action: &str,
        conn: u64,
        room: String,
        user: String,
        events: Vec<ServerMessage>,
        to_user: Option<(String, ServerMessage)>,
    ) {
        self.commit_with(
            Action {
                by,
                action,
                target: &target(&room, &user),
                reason: "",
                until: None,
            },
            conn,
            room,
            Vec::new(),
            events,
            to_user,
        );
    }

    /// Writes the audit entry, then `ops`, then the room's roles; once the
    /// last is durable, `conn` gets `mod_ok` and the others the events.
    fn commit_with(
        &mut self,
        action: Action<'_>,
        conn: u64,
        room: String,
        ops: Vec<StoreOp>,
        to_room: Vec<ServerMessage>,
        to_user: Option<(String, ServerMessage)>,
    ) {
        let change = Change {
            conn: Some(conn),
            action: action.action.to_string(),
            target: action.target.to_string(),
            room: room.clone(),
            to_room,
            to_user,
        };
        self.audit(action, None);
        for op in ops {
            self.store(op, None);
        }
        let roles = self.roles_op(&room);
        self.store(roles, Some(Write::RoomChange(Box::new(change))));
    }

    /// The [`StoreOp::SetRoles`] of a room as it is in memory, its expired
    /// bans dropped first.
    fn roles_op(&mut self, room: &str) -> StoreOp {
        let now_ms = self.unix_time();
        let (owner, roles) = match self.rooms.get_mut(room) {
            Some(r) => {
                r.roles.bans.retain(|b| b.until.is_none_or(|u| u > now_ms));
                (r.owner.clone(), r.roles.clone())
            }
            None => (String::new(), RoomRoles::default()),
        };
        StoreOp::SetRoles {
            room: room.to_string(),
            owner,
            roles,
        }
    }

    /// After the account `key` left `room` (which still has members): it
    /// is no longer an operator, and if it owned the room, the
    /// longest-standing operator owns it now (or nobody). Returns the
    /// store change and the events for the room, if anything changed.
    pub(super) fn after_leaving(
        &mut self,
        room: &str,
        key: &str,
        by: &str,
    ) -> Option<(StoreOp, Vec<ServerMessage>)> {
        let r = self.rooms.get_mut(room)?;
        let was_op = r.is_op(key);
        let was_owner = r.is_owner(key);
        if !was_op && !was_owner {
            return None;
        }
        r.roles.ops.retain(|o| username_key(o) != key);
        let mut events = Vec::new();
        if was_owner {
            if r.roles.ops.is_empty() {
                r.owner.clear();
            } else {
                r.owner = r.roles.ops.remove(0);
                events.push(ServerMessage::RoomRole {
                    room: room.to_string(),
                    user: r.owner.clone(),
                    role: RoomRole::Owner,
                    by: by.to_string(),
                });
            }
        }
        Some((self.roles_op(room), events))
    }

    /// A room change is durable: `mod_ok` to whom asked, `kicked` to whom
    /// was removed, the events to the room.
    pub(super) fn room_changed(&mut self, change: Change) {
        if self.node.is_some() {
            let (owner, roles) = self
                .rooms
                .get(&change.room)
                .map(|r| (r.owner.clone(), r.roles.clone()))
                .unwrap_or_default();
            let (removed, kicked) = match &change.to_user {
                Some((key, m)) => (Some(key.clone()), Some(Box::new(m.clone()))),
                None => (None, None),
            };
            let events = change.to_room.clone();
            let room = change.room.clone();
            self.publish_with(|node| ClusterMessage::RoomRoles {
                node,
                room,
                owner,
                roles,
                removed,
                kicked,
                events,
            });
        }
        for m in &change.to_room {
            self.send_to_room(&change.room, u64::MAX, Marker::Command, m);
        }
        if let Some((key, message)) = change.to_user
            && let Some(&(target, _)) = self.online.get(&key)
        {
            self.send(target, &message);
            self.process_later(target);
        }
        if let Some(conn) = change.conn {
            self.send(
                conn,
                &ServerMessage::ModOk {
                    action: change.action,
                    target: change.target,
                },
            );
            self.process_later(conn);
        }
    }

    /// Whether `name` may `say` in `r`: tells the client why not.
    pub(super) fn may_say(&mut self, conn: u64, name: &str, room: &str) -> bool {
        let Some(r) = self.rooms.get(room) else {
            return false;
        };
        let key = username_key(name);
        let admin = self.is_admin(name);
        let code = if r.is_muted(&key) && !admin {
            ErrorCode::Muted
        } else if r.roles.moderated && !(r.is_owner(&key) || r.is_op(&key) || admin) {
            ErrorCode::Moderated
        } else {
            return true;
        };
        let message = if code == ErrorCode::Muted {
            format!("you are muted in {room}")
        } else {
            format!("{room} is moderated: only its operators speak")
        };
        self.error(conn, code, message);
        false
    }

    /// Whether `name` may set the topic of `room`: tells the client when
    /// not (the topic is locked and they are no operator).
    pub(super) fn may_set_topic(&mut self, conn: u64, name: &str, room: &str) -> bool {
        let Some(r) = self.rooms.get(room) else {
            return false;
        };
        if !r.roles.topic_locked || self.may_moderate(r, name) {
            return true;
        }
        self.error(
            conn,
            ErrorCode::NotPermitted,
            format!("the topic of {room} is locked: only its operators may set it"),
        );
        false
    }

    /// Whether `name` may join `room`: tells the client when a ban is in
    /// force.
    pub(super) fn may_join(&mut self, conn: u64, name: &str, room: &str) -> bool {
        let now_ms = self.unix_time();
        let Some(ban) = self
            .rooms
            .get(room)
            .and_then(|r| r.ban_of(&username_key(name), now_ms))
        else {
            return true;
        };
        let message = match ban.until {
            Some(until) => format!(
                "you are banned from {room} for {} more seconds",
                (until - now_ms).div_ceil(1000)
            ),
            None => format!("you are banned from {room}"),
        };
        self.error(conn, ErrorCode::BannedFromRoom, message);
        false
    }
}
