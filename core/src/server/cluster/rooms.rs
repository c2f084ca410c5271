//! Rooms across nodes: room changes and messages other nodes published,
//! and the catching up after a resubscription.

use super::super::rooms::{Room, room_msg};
use super::super::store::{RoomRecord, RoomRoles};
use super::super::writes::Write;
use super::super::*;
use alloc::boxed::Box;

impl Server {
    /// Catches up with the rooms as the store has them, after the driver
    /// lost its connection to the other nodes and found it again: what
    /// changed meanwhile is applied as if it had been heard live. A room
    /// not known here is added; a room the store no longer has loses the
    /// members it had; of a known room, the members that came and went are
    /// announced (`member_joined`, `member_left`), a new topic too
    /// (`topic`), the roles are taken, and the messages with an offset
    /// above the latest relayed here are relayed now, in order (a gap is
    /// recovered by offset). `rooms` holds each room's latest messages.
    ///
    /// The memberships of users online on this node are this node's own
    /// doing, and may be on their way to the store: they are left as they
    /// are here. So are a topic or roles this node is writing.
    pub fn sync_rooms(&mut self, now: Instant, rooms: Vec<RoomRecord>) {
        self.now = self.now.max(now);
        let kept: BTreeSet<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<String> = self
            .rooms
            .keys()
            .filter(|name| !kept.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.sync_members(&name, &[]);
        }
        for record in rooms {
            if !self.rooms.contains_key(&record.name) {
                let name = record.name.clone();
                let members: Vec<String> = record.members.iter().map(|m| username_key(m)).collect();
                self.restore(Snapshot {
                    rooms: alloc::vec![record],
                    ..Snapshot::default()
                });
                let present: Vec<u64> = members
                    .iter()
                    .filter_map(|k| self.online.get(k).map(|(c, _)| *c))
                    .collect();
                if let Some(r) = self.rooms.get_mut(&name) {
                    r.present.extend(present);
                }
                continue;
            }
            self.sync_room(record);
        }
    }

    /// A known room as the store has it (see [`Server::sync_rooms`]).
    fn sync_room(&mut self, record: RoomRecord) {
        let name = record.name.clone();
        let keep = self.room_memory();
        let writing_topic = self
            .writes
            .values()
            .any(|w| matches!(w, Write::Topic { room, .. } if *room == name));
        let writing_roles = self
            .writes
            .values()
            .any(|w| matches!(w, Write::RoomChange(c) if c.room == name));
        let Some(r) = self.rooms.get_mut(&name) else {
            return;
        };
        if r.epoch != record.epoch {
            // Emptied and made again meanwhile: another history.
            r.epoch.clone_from(&record.epoch);
            r.last_offset = record.last_offset;
            r.next_offset = record.last_offset + 1;
            r.complete = record.recent.len() < keep;
            let skip = record.recent.len().saturating_sub(keep);
            r.recent = record
                .recent
                .iter()
                .skip(skip)
                .cloned()
                .map(Arc::new)
                .collect();
        }
        if !writing_roles {
            r.owner.clone_from(&record.owner);
            r.roles = record.roles;
        }
        let topic = (!writing_topic && r.topic != record.topic).then(|| {
            r.topic.clone_from(&record.topic);
            record.topic
        });
        self.sync_members(&name, &record.members);
        if let Some(text) = topic {
            let m = ServerMessage::Topic {
                room: name.clone(),
                by: String::new(),
                text,
            };
            self.send_to_room(&name, u64::MAX, Marker::Command, &m);
        }
        let last = self.rooms.get(&name).map_or(u64::MAX, |r| r.last_offset);
        for m in record.recent.into_iter().filter(|m| m.offset > last) {
            self.remote_room_message(true, name.clone(), m);
        }
    }

    /// Makes the members of `room` not online here those of `members`
    /// (the store's), announcing who came and who went; a room left with
    /// no member is gone.
    fn sync_members(&mut self, room: &str, members: &[String]) {
        let max_presence = self.config.max_presence;
        let online = &self.online;
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let wanted: BTreeMap<String, &String> =
            members.iter().map(|m| (username_key(m), m)).collect();
        let left: Vec<(String, String)> = r
            .members
            .iter()
            .filter(|(k, _)| !wanted.contains_key(*k) && !online.contains_key(*k))
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        let came: Vec<(String, String)> = wanted
            .iter()
            .filter(|(k, _)| !r.members.contains_key(*k) && !online.contains_key(*k))
            .map(|(k, n)| (k.clone(), (*n).clone()))
            .collect();
        let mut events = Vec::new();
        for (key, user) in left {
            r.members.remove(&key);
            if let Some(set) = self.memberships.get_mut(&key) {
                set.remove(room);
                if set.is_empty() {
                    self.memberships.remove(&key);
                }
            }
            if r.members.len() < max_presence {
                events.push(ServerMessage::MemberLeft {
                    room: room.to_string(),
                    user,
                    reason: None,
                });
            }
        }
        for (key, user) in came {
            r.members.insert(key.clone(), user.clone());
            self.memberships
                .entry(key)
                .or_default()
                .insert(room.to_string());
            if r.members.len() <= max_presence {
                events.push(ServerMessage::MemberJoined {
                    room: room.to_string(),
                    user,
                });
            }
        }
        if r.members.is_empty() {
            self.rooms.remove(room);
            return;
        }
        for m in &events {
            self.send_to_room(room, u64::MAX, Marker::Command, m);
        }
    }

    /// The room `record` as the store has it, after this node made it up
    /// too (two nodes made it at once, or this node missed its creation):
    /// its epoch, owner, topic, roles and latest messages replace what this
    /// node made up, and its members join those known here. A client's
    /// position is only good under the store's epoch, so every node must
    /// answer with that one.
    pub(in crate::server) fn adopt_room(&mut self, record: RoomRecord) {
        let keep = self.room_memory();
        let name = record.name.clone();
        let mut added = Vec::new();
        let Some(r) = self.rooms.get_mut(&name) else {
            return;
        };
        if r.epoch != record.epoch {
            r.epoch = record.epoch;
            r.last_offset = record.last_offset;
            r.next_offset = record.last_offset + 1;
            r.complete = record.recent.len() < keep;
            let skip = record.recent.len().saturating_sub(keep);
            r.recent = record.recent.into_iter().skip(skip).map(Arc::new).collect();
        }
        r.owner = record.owner;
        r.topic = record.topic;
        r.roles = record.roles;
        for m in record.members {
            let key = username_key(&m);
            if !r.members.contains_key(&key) {
                r.members.insert(key.clone(), m);
                added.push(key);
            }
        }
        for key in added {
            if let Some(&(conn, _)) = self.online.get(&key)
                && let Some(r) = self.rooms.get_mut(&name)
            {
                r.present.insert(conn);
            }
            self.memberships
                .entry(key)
                .or_default()
                .insert(name.clone());
        }
    }

    /// A room's roles changed on another node: taken whole; the member a
    /// kick or ban removed is out of the room (their session here told
    /// `kicked`), and the room's members here are told what the others
    /// were.
    pub(super) fn remote_roles(
        &mut self,
        room: &str,
        owner: String,
        roles: RoomRoles,
        removed: Option<String>,
        kicked: Option<Box<ServerMessage>>,
        events: &[ServerMessage],
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.owner = owner;
        r.roles = roles;
        if let Some(key) = removed {
            let session = self.online.get(&key).map(|(c, _)| *c);
            r.members.remove(&key);
            if let Some(s) = session {
                r.present.remove(&s);
            }
            let empty = r.members.is_empty();
            if let Some(set) = self.memberships.get_mut(&key) {
                set.remove(room);
                if set.is_empty() {
                    self.memberships.remove(&key);
                }
            }
            if empty {
                self.rooms.remove(room);
            }
            if let (Some(s), Some(m)) = (session, kicked) {
                self.send(s, &m);
                self.process_later(s);
            }
        }
        for m in events {
            self.send_to_room(room, u64::MAX, Marker::Command, m);
        }
    }

    /// A member joined a room on another node.
    pub(super) fn remote_joined(
        &mut self,
        room: String,
        user: String,
        epoch: String,
        owner: String,
    ) {
        let key = username_key(&user);
        let r = self.rooms.entry(room.clone()).or_insert_with(|| Room {
            epoch,
            owner,
            topic: String::new(),
            members: BTreeMap::new(),
            last_offset: 0,
            next_offset: 1,
            recent: VecDeque::new(),
            present: BTreeSet::new(),
            complete: true,
            roles: store::RoomRoles::default(),
        });
        if r.members.insert(key.clone(), user.clone()).is_some() {
            return;
        }
        let announce = r.members.len() <= self.config.max_presence;
        self.memberships
            .entry(key)
            .or_default()
            .insert(room.clone());
        if announce {
            self.send_to_room(
                &room,
                u64::MAX,
                Marker::Command,
                &ServerMessage::MemberJoined {
                    room: room.clone(),
                    user,
                },
            );
        }
    }

    /// A member left a room on another node.
    pub(super) fn remote_parted(&mut self, room: &str, user: String, reason: Option<String>) {
        let key = username_key(&user);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.members.remove(&key).is_none() {
            return;
        }
        let (empty, announce) = (
            r.members.is_empty(),
            r.members.len() < self.config.max_presence,
        );
        if let Some(set) = self.memberships.get_mut(&key) {
            set.remove(room);
            if set.is_empty() {
                self.memberships.remove(&key);
            }
        }
        if empty {
            self.rooms.remove(room);
        } else if announce {
            self.send_to_room(
                room,
                u64::MAX,
                Marker::Command,
                &ServerMessage::MemberLeft {
                    room: room.to_string(),
                    user,
                    reason,
                },
            );
        }
    }

    /// A room message with its offset: kept, and relayed to the room's
    /// members here but its sender.
    pub(super) fn remote_room_message(&mut self, own: bool, room: String, message: RoomMessage) {
        let keep = self.room_memory();
        let except = if own {
            self.online
                .get(&username_key(&message.from))
                .map_or(u64::MAX, |(c, _)| *c)
        } else {
            u64::MAX
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        if message.offset <= r.last_offset {
            return;
        }
        r.last_offset = message.offset;
        r.next_offset = r.next_offset.max(message.offset + 1);
        let message = Arc::new(message);
        r.recent.push_back(message.clone());
        while r.recent.len() > keep {
            r.recent.pop_front();
            r.complete = false;
        }
        self.presence_before(&message.from);
        let n = self.send_to_room(
            &room,
            except,
            Marker::Data,
            &room_msg(&room, &message, false),
        );
        self.stats.deliveries += u64::from(n);
    }
}
