//! Rooms, their history, resuming after a reconnect, and direct messages
//! stored for offline users.
//!
//! Rooms, memberships, each room's latest messages and the waiting direct
//! messages live in memory; every change is also a [`StoreOp`] the driver
//! makes durable (see [`store`](super::store)). What a user is told comes
//! only once the change is durable: `room` after `join`, `said` after
//! `say` (and the other members get the message then, in offset order),
//! `confirm` with `stored` after a direct message to an offline user.

use super::offline::Delivery;
use super::*;
use crate::session::MAX_TOPIC;
use store::RoomRoles;

/// A room in memory.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) epoch: String,
    pub(super) owner: String,
    pub(super) topic: String,
    /// Members: [`username_key`] to the name as registered.
    pub(super) members: BTreeMap<String, String>,
    /// The offset of the latest durable message.
    pub(super) last_offset: u64,
    /// The offset the next message gets.
    pub(super) next_offset: u64,
    /// The latest durable messages, oldest first (at most
    /// [`Server::room_memory`]).
    pub(super) recent: VecDeque<Arc<RoomMessage>>,
    /// The sessions of the members who are online: a room message goes to
    /// these without a lookup per member.
    pub(super) present: BTreeSet<u64>,
    /// Whether `recent` holds every message the store keeps (until the
    /// first is dropped from memory).
    pub(super) complete: bool,
    /// Operators, bans, mutes and modes (see [`room_roles`](super::room_roles)).
    pub(super) roles: RoomRoles,
}

/// A room message as sent to clients.
pub(super) fn room_msg(room: &str, m: &RoomMessage, history: bool) -> ServerMessage {
    ServerMessage::RoomMsg {
        room: room.to_string(),
        offset: m.offset,
        from: m.from.clone(),
        text: m.text.clone(),
        time: m.time,
        history,
    }
}

/// The first `max` names of `members` (sorted by key), and the count when
/// that is more.
fn listed(members: &BTreeMap<String, String>, max: usize) -> (Vec<String>, Option<u32>) {
    let names = members.values().take(max).cloned().collect();
    let count = (members.len() > max).then(|| u32::try_from(members.len()).unwrap_or(u32::MAX));
    (names, count)
}

impl ServerConfig {
    /// How many of each room's latest messages the server keeps in memory
    /// (and wants in the [`Snapshot`] it restores): enough for a join's
    /// history and a resume's replay, 300 by default.
    pub fn room_memory(&self) -> usize {
        self.history_on_join.max(self.max_replay).max(1)
    }
}

impl Server {
    /// Loads what the store keeps (at start, before any datagram).
    pub fn restore(&mut self, snapshot: Snapshot) {
        let keep = self.room_memory();
        for r in snapshot.rooms {
            let mut members = BTreeMap::new();
            for m in r.members {
                self.memberships
                    .entry(username_key(&m))
                    .or_default()
                    .insert(r.name.clone());
                members.insert(username_key(&m), m);
            }
            // The loader gives at most what memory keeps: fewer means all.
            let complete = r.recent.len() < keep;
            let skip = r.recent.len().saturating_sub(keep);
            let recent = r.recent.into_iter().skip(skip).map(Arc::new).collect();
            self.rooms.insert(
                r.name,
                Room {
                    epoch: r.epoch,
                    owner: r.owner,
                    topic: r.topic,
                    members,
                    last_offset: r.last_offset,
                    next_offset: r.last_offset + 1,
                    recent,
                    present: BTreeSet::new(),
                    complete,
                    roles: r.roles,
                },
            );
        }
        self.restore_bans(snapshot.bans);
        self.restore_registration(snapshot.registration, snapshot.invites);
        for e in snapshot.audit {
            self.next_audit_id = self.next_audit_id.max(e.id + 1);
            self.remember_audit(e);
        }
        for m in snapshot.offline {
            self.next_offline_id = self.next_offline_id.max(m.id + 1);
            self.offline
                .entry(username_key(&m.to))
                .or_default()
                .push_back(Waiting {
                    message: m,
                    state: Delivery::Waiting,
                });
        }
    }

    /// Sets the wall clock: at `now` the Unix time is `unix_ms`
    /// milliseconds. Messages carry the time it gives; call at start and
    /// now and then (the native server does every turn).
    pub fn set_unix_time(&mut self, now: Instant, unix_ms: u64) {
        self.wall = (now, unix_ms);
    }

    /// The Unix time now, in milliseconds.
    pub(super) fn unix_time(&self) -> u64 {
        let (at, ms) = self.wall;
        ms + self.now.saturating_since(at).as_millis()
    }

    /// How many of a room's latest messages stay in memory: enough for a
    /// join's history and a resume's replay.
    pub(super) fn room_memory(&self) -> usize {
        self.config.room_memory()
    }

    /// The rooms `name` is a member of.
    pub(super) fn rooms_of(&self, name: &str) -> Vec<String> {
        self.memberships
            .get(&username_key(name))
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Rooms on the server.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The epoch and the owner (empty: none) of `room`, if there is one.
    pub fn room_epoch_and_owner(&self, room: &str) -> Option<(&str, &str)> {
        self.rooms
            .get(room)
            .map(|r| (r.epoch.as_str(), r.owner.as_str()))
    }

    /// Checks the room name and membership for a request about `room`;
    /// tells the client when it fails.
    pub(super) fn member_of(&mut self, conn: u64, name: &str, room: &str) -> bool {
        if let Err(e) = session::validate_room(room) {
            self.error(conn, ErrorCode::InvalidRoom, e.to_string());
            return false;
        }
        match self.rooms.get(room) {
            None => {
                self.error(
                    conn,
                    ErrorCode::NoSuchRoom,
                    format!("there is no room {room}"),
                );
                false
            }
            Some(r) if !r.members.contains_key(&username_key(name)) => {
                self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not a member of {room}"),
                );
                false
            }
            Some(_) => true,
        }
    }

    /// Sends `message` to the room's online members but `except`.
    pub(super) fn send_to_room(
        &mut self,
        room: &str,
        except: u64,
        marker: Marker,
        message: &ServerMessage,
    ) -> u32 {
        let Some(r) = self.rooms.get(room) else {
            return 0;
        };
        let targets: Vec<u64> = r.present.iter().copied().filter(|c| *c != except).collect();
        let bytes = encode_shared(message);
        let mut n = 0;
        for conn in targets {
            if self.send_bytes(conn, marker, &bytes) {
                n += 1;
            }
        }
        n
    }

    /// Marks the session `conn` of the account `key` present (or not) in
    /// each of its rooms, as it logs in or out.
    pub(super) fn set_present(&mut self, key: &str, conn: u64, present: bool) {
        let Some(rooms) = self.memberships.get(key) else {
            return;
        };
        for room in rooms {
            if let Some(r) = self.rooms.get_mut(room) {
                if present {
                    r.present.insert(conn);
                } else {
                    r.present.remove(&conn);
                }
            }
        }
    }

    /// Handles `join`, `part`, `say`, `rooms`, `names`, `topic` and
    /// `history` from the logged-in user `name`.
    pub(super) fn handle_room_message(
        &mut self,
        now: Instant,
        conn: u64,
        name: String,
        message: ClientMessage,
    ) {
        // Everything that writes or sends much is paced like messages.
        let paced = matches!(
            message,
            ClientMessage::Join { .. }
                | ClientMessage::Part { .. }
                | ClientMessage::Say { .. }
                | ClientMessage::Topic { .. }
                | ClientMessage::History { .. }
        );
        if paced && !self.take_message_token(now, conn) {
            self.rate_limited(conn);
            return;
        }
        match message {
            ClientMessage::Join { room } => self.on_join(conn, name, room),
            ClientMessage::Part { room, reason } => self.on_part(conn, name, room, reason),
            ClientMessage::Say { room, text } => self.on_say(conn, name, room, text),
            ClientMessage::Rooms => self.on_rooms(conn),
            ClientMessage::Names { room } => {
                if let Err(e) = session::validate_room(&room) {
                    self.error(conn, ErrorCode::InvalidRoom, e.to_string());
                } else if let Some(r) = self.rooms.get(&room) {
                    let (users, count) = listed(&r.members, self.config.max_listed);
                    let names = ServerMessage::Names {
                        room,
                        users,
                        count,
                        owner: r.owner.clone(),
                        ops: r.roles.ops.clone(),
                        muted: r.roles.muted.clone(),
                    };
                    self.send(conn, &names);
                } else {
                    self.error(
                        conn,
                        ErrorCode::NoSuchRoom,
                        format!("there is no room {room}"),
                    );
                }
            }
            ClientMessage::Topic { room, text } => {
                if !self.member_of(conn, &name, &room) || !self.may_set_topic(conn, &name, &room) {
                    return;
                }
                let max = self.config.max_topic.min(MAX_TOPIC);
                if text.len() > max || (!text.is_empty() && validate_text(&text).is_err()) {
                    self.error(
                        conn,
                        ErrorCode::InvalidTopic,
                        format!("a topic is text of at most {max} bytes"),
                    );
                    return;
                }
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.topic.clone_from(&text);
                }
                self.store(
                    StoreOp::SetTopic {
                        room: room.clone(),
                        topic: text.clone(),
                    },
                    Some(Write::Topic {
                        conn,
                        room,
                        by: name,
                        text,
                    }),
                );
            }
            ClientMessage::History {
                room,
                before,
                after,
                limit,
            } => self.on_history(conn, &name, room, before, after, limit),
            other => self.handle_room_roles(now, conn, name, other),
        }
    }

    fn on_join(&mut self, conn: u64, name: String, room: String) {
        if let Err(e) = session::validate_room(&room) {
            self.error(conn, ErrorCode::InvalidRoom, e.to_string());
            return;
        }
        let key = username_key(&name);
        if let Some(r) = self.rooms.get(&room)
            && r.members.contains_key(&key)
        {
            // Already a member: the answer again, as after a join.
            self.send_room(conn, &room);
            return;
        }
        if !self.may_join(conn, &name, &room) {
            return;
        }
        let mine = self.memberships.get(&key).map_or(0, BTreeSet::len);
        if mine >= self.config.max_rooms_per_user {
            self.error(
                conn,
                ErrorCode::TooManyRooms,
                format!("you are in {mine} rooms, as many as a user may be; leave one first"),
            );
            return;
        }
        let op = match self.rooms.get_mut(&room) {
            Some(r) => {
                if r.members.len() >= self.config.max_room_members {
                    self.error(
                        conn,
                        ErrorCode::RoomFull,
                        format!("{room} has as many members as a room may have"),
                    );
                    return;
                }
                r.members.insert(key.clone(), name.clone());
                r.present.insert(conn);
                StoreOp::Join {
                    room: room.clone(),
                    user: name.clone(),
                }
            }
            None => {
                if self.rooms.len() >= self.config.max_rooms {
                    self.error(
                        conn,
                        ErrorCode::TooManyRooms,
                        "the server has as many rooms as it keeps".to_string(),
                    );
                    return;
                }
                // Unique rather than secret: the clock and a counter, mixed
                // (the handshake keys' generator is left alone).
                self.rooms_made += 1;
                let epoch = format!(
                    "{:016x}",
                    (self.unix_time() ^ self.rooms_made.rotate_left(48))
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                );
                let mut members = BTreeMap::new();
                members.insert(key.clone(), name.clone());
                self.rooms.insert(
                    room.clone(),
                    Room {
                        epoch: epoch.clone(),
                        owner: name.clone(),
                        topic: String::new(),
                        members,
                        last_offset: 0,
                        next_offset: 1,
                        recent: VecDeque::new(),
                        present: BTreeSet::from([conn]),
                        complete: true,
                        roles: RoomRoles::default(),
                    },
                );
                StoreOp::CreateRoom {
                    room: room.clone(),
                    epoch,
                    owner: name.clone(),
                    time: self.unix_time(),
                }
            }
        };
        self.memberships
            .entry(key)
            .or_default()
            .insert(room.clone());
        self.store(
            op,
            Some(Write::Joined {
                conn,
                room,
                user: name,
            }),
        );
    }

    /// Sends `room` (the answer to `join`) and the room's latest messages.
    pub(super) fn send_room(&mut self, conn: u64, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let (members, count) = listed(&r.members, self.config.max_listed);
        let skip = r.recent.len().saturating_sub(self.config.history_on_join);
        let backlog: Vec<Arc<RoomMessage>> = r.recent.iter().skip(skip).cloned().collect();
        let answer = ServerMessage::Room {
            room: room.to_string(),
            epoch: r.epoch.clone(),
            offset: r.last_offset,
            topic: r.topic.clone(),
            owner: r.owner.clone(),
            members,
            count,
            backlog: u32::try_from(backlog.len()).unwrap_or(u32::MAX),
            ops: r.roles.ops.clone(),
            muted: r.roles.muted.clone(),
            topic_locked: r.roles.topic_locked,
            moderated: r.roles.moderated,
        };
        self.send(conn, &answer);
        for m in backlog {
            self.send(conn, &room_msg(room, &m, true));
        }
    }

    fn on_part(&mut self, conn: u64, name: String, room: String, reason: Option<String>) {
        if !self.member_of(conn, &name, &room) {
            return;
        }
        let reason = reason
            .filter(|r| !r.is_empty() && r.len() <= MAX_QUIT_MESSAGE && validate_text(r).is_ok());
        let key = username_key(&name);
        if let Some(set) = self.memberships.get_mut(&key) {
            set.remove(&room);
            if set.is_empty() {
                self.memberships.remove(&key);
            }
        }
        let empty = match self.rooms.get_mut(&room) {
            Some(r) => {
                r.members.remove(&key);
                r.present.remove(&conn);
                r.members.is_empty()
            }
            None => false,
        };
        let write = Write::Parted {
            conn,
            room: room.clone(),
            user: name.clone(),
            reason,
        };
        if empty {
            // The last member left: the room and its history go.
            self.rooms.remove(&room);
            self.store(StoreOp::DeleteRoom { room }, Some(write));
        } else {
            // An operator is one no longer; an owner hands the room on.
            let roles = self.after_leaving(&room, &key, &name);
            self.store(
                StoreOp::Part {
                    room: room.clone(),
                    user: name,
                },
                Some(write),
            );
            if let Some((op, to_room)) = roles {
                let change = room_roles::Change {
                    conn: None,
                    action: String::new(),
                    target: String::new(),
                    room,
                    to_room,
                    to_user: None,
                };
                self.store(op, Some(Write::RoomChange(alloc::boxed::Box::new(change))));
            }
        }
    }

    fn on_say(&mut self, conn: u64, name: String, room: String, text: String) {
        if !self.member_of(conn, &name, &room) || !self.may_say(conn, &name, &room) {
            return;
        }
        if let Err(e) = validate_text(&text) {
            self.error(conn, ErrorCode::InvalidText, e.to_string());
            return;
        }
        let time = self.unix_time();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let offset = r.next_offset;
        r.next_offset += 1;
        let message = RoomMessage {
            offset,
            from: name,
            text,
            time,
        };
        self.store(
            StoreOp::Append {
                room: room.clone(),
                message: message.clone(),
            },
            Some(Write::Said {
                conn,
                room,
                message: Arc::new(message),
            }),
        );
    }

    fn on_rooms(&mut self, conn: u64) {
        let max = self.config.max_listed;
        let rooms = self
            .rooms
            .iter()
            .take(max)
            .map(|(name, r)| session::RoomInfo {
                room: name.clone(),
                members: u32::try_from(r.members.len()).unwrap_or(u32::MAX),
                topic: r.topic.clone(),
            })
            .collect();
        let count =
            (self.rooms.len() > max).then(|| u32::try_from(self.rooms.len()).unwrap_or(u32::MAX));
        self.send(conn, &ServerMessage::RoomList { rooms, count });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StaticKey;
    use crate::server::store::{OfflineMessage, RoomRecord};
    use alloc::vec;

    fn record(name: &str, members: &[&str], messages: u64) -> RoomRecord {
        RoomRecord {
            name: name.to_string(),
            epoch: "e".to_string(),
            owner: members[0].to_string(),
            topic: String::new(),
            created: 0,
            members: members.iter().map(|m| m.to_string()).collect(),
            last_offset: messages,
            roles: RoomRoles::default(),
            recent: (1..=messages)
                .map(|o| RoomMessage {
                    offset: o,
                    from: members[0].to_string(),
                    text: format!("m{o}"),
                    time: o,
                })
                .collect(),
        }
    }

    fn server() -> Server {
        Server::new(
            ServerConfig::default(),
            [],
            StaticKey::from_private([7; 32]),
            [1; 32],
        )
    }

    #[test]
    fn a_restored_server_knows_rooms_members_and_waiting_messages() {
        let mut s = server();
        let keep = s.config.room_memory();
        s.restore(Snapshot {
            rooms: vec![
                record("#a", &["Alice", "bob"], 3),
                record("#b", &["bob"], keep as u64),
            ],
            offline: vec![OfflineMessage {
                id: 41,
                from: "bob".to_string(),
                to: "Alice".to_string(),
                text: "x".to_string(),
                time: 0,
            }],
            audit: vec![AuditEntry {
                id: 7,
                time: 5,
                by: "root".to_string(),
                action: "notice".to_string(),
                target: "*".to_string(),
                reason: "hi".to_string(),
                until: None,
            }],
            bans: vec![
                store::AddressBan {
                    range: "203.0.113.0/24".to_string(),
                    until: None,
                    reason: String::new(),
                    by: "root".to_string(),
                    time: 5,
                },
                store::AddressBan {
                    range: "not a range".to_string(),
                    until: None,
                    reason: String::new(),
                    by: "root".to_string(),
                    time: 5,
                },
            ],
            ..Snapshot::default()
        });
        assert_eq!(s.room_count(), 2);
        assert_eq!(s.address_bans().count(), 1, "a malformed range is skipped");
        assert!(s.is_banned("203.0.113.200".parse().unwrap()));
        assert_eq!(s.audit_log().count(), 1);
        assert_eq!(s.next_audit_id, 8, "audit ids go on growing");
        assert_eq!(s.rooms_of("alice"), ["#a"]);
        assert_eq!(s.rooms_of("BOB"), ["#a", "#b"]);
        assert_eq!(s.offline_count(), 1);
        assert_eq!(s.next_offline_id, 42, "ids go on growing");
        let a = &s.rooms["#a"];
        assert_eq!((a.last_offset, a.next_offset), (3, 4));
        // Fewer than memory keeps: memory has them all; as many: maybe not.
        assert!(a.complete);
        assert!(!s.rooms["#b"].complete);
    }

    #[test]
    fn a_room_knows_which_members_are_online() {
        let mut s = server();
        s.restore(Snapshot {
            rooms: vec![
                record("#a", &["alice", "bob"], 0),
                record("#b", &["alice"], 0),
            ],
            offline: vec![],
            audit: vec![],
            bans: vec![],
            ..Snapshot::default()
        });
        s.set_present("alice", 7, true);
        s.set_present("bob", 9, true);
        assert_eq!(
            s.rooms["#a"].present.iter().copied().collect::<Vec<_>>(),
            [7, 9]
        );
        assert_eq!(
            s.rooms["#b"].present.iter().copied().collect::<Vec<_>>(),
            [7]
        );
        s.set_present("alice", 7, false);
        assert_eq!(
            s.rooms["#a"].present.iter().copied().collect::<Vec<_>>(),
            [9]
        );
        assert!(s.rooms["#b"].present.is_empty());
        // Someone in no room changes nothing.
        s.set_present("carol", 11, true);
        assert_eq!(s.rooms["#a"].present.len(), 1);
    }

    #[test]
    fn member_lists_stop_at_the_limit_and_give_the_count() {
        let members: BTreeMap<String, String> =
            (0..5).map(|i| (format!("u{i}"), format!("U{i}"))).collect();
        assert_eq!(
            listed(&members, 10),
            (
                vec![
                    "U0".into(),
                    "U1".into(),
                    "U2".into(),
                    "U3".into(),
                    "U4".into()
                ],
                None
            )
        );
        assert_eq!(
            listed(&members, 2),
            (vec!["U0".into(), "U1".into()], Some(5))
        );
    }
}
