//! Several servers serving one chat: what a node tells the others and what
//! it learns from them.
//!
//! The server never talks to the other nodes itself. Once it is a node
//! ([`Server::set_node`]) it queues a [`ClusterMessage`] for every event the
//! others must learn of (a login, a logout, a public message, a direct
//! message to a user online on another node); the driver takes them with
//! [`Server::poll_publish`] and publishes them (the native server: on a
//! Redis channel every node subscribes to). What the others published comes
//! back through [`Server::handle_remote`]; a node that stopped through
//! [`Server::node_gone`]; the whole picture after the driver lost and
//! regained its connection through [`Server::sync_remote`].
//!
//! Users online on other nodes count as online here: the online list,
//! `joined`/`left`, `whois` and direct messages see them.

use super::offline::{Delivery, Waiting};
use super::rooms::{Room, room_msg};
use super::store::{RoomRecord, RoomRoles};
use super::writes::Write;
use super::*;
use alloc::boxed::Box;
use serde::{Deserialize, Serialize};

/// Server messages inside a cluster message, as the wire has them (JSON
/// objects), read back with [`session::decode_server`].
mod wire_list {
    use super::*;
    use serde::de::Error as _;

    pub(super) fn serialize<S: serde::Serializer>(
        list: &[ServerMessage],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ServerMessage>, D::Error> {
        Vec::<serde_json::Value>::deserialize(d)?
            .iter()
            .map(|v| {
                let bytes = serde_json::to_vec(v).map_err(D::Error::custom)?;
                session::decode_server(&bytes).map_err(D::Error::custom)
            })
            .collect()
    }
}

/// One server message inside a cluster message (see [`wire_list`]).
mod wire_one {
    use super::*;
    use serde::de::Error as _;

    #[allow(clippy::ref_option)] // the signature serde's `with` asks for
    pub(super) fn serialize<S: serde::Serializer>(
        m: &Option<Box<ServerMessage>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Box<ServerMessage>>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None => Ok(None),
            Some(v) => {
                let bytes = serde_json::to_vec(&v).map_err(D::Error::custom)?;
                session::decode_server(&bytes)
                    .map(|m| Some(Box::new(m)))
                    .map_err(D::Error::custom)
            }
        }
    }
}

/// What one node tells the others, as published (JSON, `kind` names it).
/// `node` is always the publisher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterMessage {
    /// `user` logged in on `node`; a session of that user elsewhere is over.
    Login {
        /// The publisher.
        node: String,
        /// The user, as registered.
        user: String,
    },
    /// `user` went offline on `node`.
    Logout {
        /// The publisher.
        node: String,
        /// The user, as registered.
        user: String,
        /// The `left` reason (`exit`, `timeout`, …).
        reason: String,
        /// What the user said when leaving.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// `user`, online on `node`, is away (`text`) or back (`None`).
    Away {
        /// The publisher.
        node: String,
        /// The user, as registered.
        user: String,
        /// The away text, or none: back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// A public message: every node delivers it to its own online users.
    Public {
        /// The publisher.
        node: String,
        /// The sender, as registered.
        from: String,
        /// The text.
        text: String,
        /// When the sender's node accepted it, in ms since the Unix epoch.
        time: u64,
    },
    /// A direct message: the node where `to` is online delivers it.
    Direct {
        /// The publisher.
        node: String,
        /// The node where `to` was online when it was sent: if `to` has
        /// left meanwhile, that node stores it for them.
        at: String,
        /// The sender, as registered.
        from: String,
        /// The recipient, as registered.
        to: String,
        /// The text.
        text: String,
        /// When the sender's node accepted it, in ms since the Unix epoch.
        time: u64,
    },
    /// A direct message stored for an offline user (where every node
    /// reads them): delivered by whichever node the user logs in on.
    Offline {
        /// The publisher.
        node: String,
        /// Unique across the cluster.
        id: u64,
        /// The sender, as registered.
        from: String,
        /// The recipient, as registered.
        to: String,
        /// The text.
        text: String,
        /// When it was accepted, in ms since the Unix epoch.
        time: u64,
    },
    /// A stored direct message was delivered and removed.
    OfflineRemoved {
        /// The publisher.
        node: String,
        /// The recipient, as registered.
        to: String,
        /// The message's id.
        id: u64,
    },
    /// `user` joined `room` (made with `epoch` and `owner` if it is new).
    RoomJoined {
        /// The publisher.
        node: String,
        /// The room.
        room: String,
        /// The user, as registered.
        user: String,
        /// The room's epoch.
        epoch: String,
        /// The room's owner.
        owner: String,
    },
    /// `user` left `room` (the last member: the room is gone).
    RoomParted {
        /// The publisher.
        node: String,
        /// The room.
        room: String,
        /// The user, as registered.
        user: String,
        /// What the user said when leaving.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `room`'s topic changed.
    RoomTopic {
        /// The publisher.
        node: String,
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// The new topic.
        text: String,
    },
    /// `room`'s owner and roles changed (PROTOCOL.md §5.13), and Redis has
    /// them: every node takes them whole, takes the member a kick or a ban
    /// removed out of the room, and tells its own sessions what the
    /// publisher told its own (`events` to the room's members, `kicked` to
    /// the removed member).
    RoomRoles {
        /// The publisher.
        node: String,
        /// The room.
        room: String,
        /// The owner, as registered (empty: none).
        owner: String,
        /// Operators, bans, mutes and modes, whole.
        roles: RoomRoles,
        /// The member a kick or a ban removed, lowercase.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removed: Option<String>,
        /// What the removed member is told (`kicked`), as on the wire.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "wire_one")]
        kicked: Option<Box<ServerMessage>>,
        /// What the room's members are told, in order, as on the wire.
        #[serde(default, skip_serializing_if = "Vec::is_empty", with = "wire_list")]
        events: Vec<ServerMessage>,
    },
    /// A room message, with the offset the store gave it: every node,
    /// the sender's included, relays it to its own members in offset
    /// order.
    RoomMessage {
        /// The publisher.
        node: String,
        /// The room.
        room: String,
        /// Its offset in the room.
        offset: u64,
        /// The sender, as registered.
        from: String,
        /// The text.
        text: String,
        /// When it was accepted, in ms since the Unix epoch.
        time: u64,
    },
    /// A new account, stored where every node reads accounts.
    Account {
        /// The publisher.
        node: String,
        /// The username, as registered.
        name: String,
        /// Its argon2id PHC string.
        password_hash: String,
    },
    /// An account's password or suspension changed where every node reads
    /// accounts: every node takes the account as it now is (a suspension
    /// in force ends the account's session on whichever node has it).
    AccountChanged {
        /// The publisher: a node, or `chatserver accounts` (named so).
        node: String,
        /// The username, as registered.
        name: String,
        /// Its argon2id PHC string.
        password_hash: String,
        /// Its suspension, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suspended: Option<Suspension>,
    },
    /// An account was deleted where every node reads accounts: every node
    /// forgets it (its session, wherever it is, ends).
    AccountDeleted {
        /// The publisher: a node, or `chatserver accounts` (named so).
        node: String,
        /// The username, as registered.
        name: String,
    },
    /// `node` (re)started: whatever was known of its users is stale.
    NodeUp {
        /// The publisher, which started.
        node: String,
    },
    /// The node `down` stopped renewing its lease: its users are offline.
    NodeDown {
        /// The publisher, which noticed.
        node: String,
        /// The node that is gone.
        down: String,
    },
}

impl ClusterMessage {
    /// The node that published it.
    #[must_use]
    pub fn node(&self) -> &str {
        match self {
            ClusterMessage::Login { node, .. }
            | ClusterMessage::Logout { node, .. }
            | ClusterMessage::Away { node, .. }
            | ClusterMessage::Public { node, .. }
            | ClusterMessage::Direct { node, .. }
            | ClusterMessage::Account { node, .. }
            | ClusterMessage::AccountChanged { node, .. }
            | ClusterMessage::AccountDeleted { node, .. }
            | ClusterMessage::Offline { node, .. }
            | ClusterMessage::OfflineRemoved { node, .. }
            | ClusterMessage::RoomJoined { node, .. }
            | ClusterMessage::RoomParted { node, .. }
            | ClusterMessage::RoomTopic { node, .. }
            | ClusterMessage::RoomRoles { node, .. }
            | ClusterMessage::RoomMessage { node, .. }
            | ClusterMessage::NodeUp { node }
            | ClusterMessage::NodeDown { node, .. } => node,
        }
    }

    /// The message as published: one JSON object.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        // Only strings and integers: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `offline` message that publishes `m`, stored by `node`.
    #[must_use]
    pub fn offline(node: &str, m: &OfflineMessage) -> Self {
        ClusterMessage::Offline {
            node: node.into(),
            id: m.id,
            from: m.from.clone(),
            to: m.to.clone(),
            text: m.text.clone(),
            time: m.time,
        }
    }

    /// Reads a published message.
    ///
    /// # Errors
    /// When `bytes` is not one of the messages above.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Server {
    /// Makes this server the node `name` of a cluster: from now on it
    /// queues what the other nodes must learn (see [`Server::poll_publish`]).
    pub fn set_node(&mut self, name: String) {
        self.node = Some(name);
    }

    /// The next message to publish to the other nodes, oldest first.
    pub fn poll_publish(&mut self) -> Option<ClusterMessage> {
        self.publish.pop_front()
    }

    /// Direct messages stored for offline users get ids from `first` on
    /// (those of a snapshot permitting): each node of a cluster is given a
    /// range of its own, so ids are unique across the cluster.
    pub fn set_offline_ids(&mut self, first: u64) {
        self.next_offline_id = self.next_offline_id.max(first);
    }

    /// Takes the accounts as the store every node reads has them (after
    /// the driver lost its connection to the other nodes and found it
    /// again): a new account is added, a changed one (password,
    /// suspension) replaced, as [`Server::put_account`] does — a
    /// suspension in force ends the account's session here. An account
    /// the store no longer has is left alone (it may be this node's own,
    /// from its user store).
    pub fn sync_accounts(&mut self, now: Instant, accounts: Vec<UserRecord>) {
        self.now = self.now.max(now);
        for account in accounts {
            if self.users.get(&username_key(&account.name)) != Some(&account) {
                self.put_account(now, account);
            }
        }
    }

    /// Makes the stored direct messages those of `messages`, every one the
    /// store has (after the driver lost its connection to the other nodes
    /// and found it again): adds those not known yet, delivering those
    /// whose recipient is online here, and forgets those the store no
    /// longer has (delivered on another node meanwhile).
    pub fn sync_offline(&mut self, now: Instant, messages: Vec<OfflineMessage>) {
        self.now = self.now.max(now);
        // Those the store no longer has were delivered and removed (on
        // another node) while this one was not listening: forgotten here.
        // Those still being written are not in `offline` yet.
        let kept: BTreeSet<u64> = messages.iter().map(|m| m.id).collect();
        self.offline.retain(|_, queue| {
            queue.retain(|w| kept.contains(&w.message.id));
            !queue.is_empty()
        });
        for m in messages {
            self.add_offline(m);
        }
    }

    /// A stored direct message, from another node or a resync: kept, and
    /// delivered at once if its recipient is online here.
    fn add_offline(&mut self, message: OfflineMessage) {
        let key = username_key(&message.to);
        let queue = self.offline.entry(key.clone()).or_default();
        if queue.iter().any(|w| w.message.id == message.id) {
            return;
        }
        let at = queue.partition_point(|w| w.message.id < message.id);
        queue.insert(
            at,
            Waiting {
                message,
                state: Delivery::Waiting,
            },
        );
        if let Some(&(target, _)) = self.online.get(&key) {
            // It came while the user was online here.
            self.deliver_offline(target, &key, false);
            self.process_later(target);
        }
    }

    /// Users online on other nodes.
    pub fn remote_count(&self) -> usize {
        self.remote.len()
    }

    /// Queues `make(node)` for the other nodes, when this server is a node.
    pub(super) fn publish_with(&mut self, make: impl FnOnce(String) -> ClusterMessage) {
        if let Some(node) = &self.node {
            let m = make(node.clone());
            self.publish.push_back(m);
        }
    }

    /// Users online here and on other nodes.
    pub(super) fn online_count(&self) -> usize {
        self.online.len() + self.remote.len()
    }

    /// Handles what another node published. A node's own messages are
    /// ignored, but for room messages: every node relays those as they
    /// come, in the order of their offsets.
    pub fn handle_remote(&mut self, now: Instant, message: ClusterMessage) {
        self.now = self.now.max(now);
        let own = self.node.as_deref() == Some(message.node());
        if own && !matches!(message, ClusterMessage::RoomMessage { .. }) {
            return;
        }
        match message {
            ClusterMessage::RoomJoined {
                room,
                user,
                epoch,
                owner,
                ..
            } => self.remote_joined(room, user, epoch, owner),
            ClusterMessage::RoomParted {
                room, user, reason, ..
            } => self.remote_parted(&room, user, reason),
            ClusterMessage::RoomRoles {
                room,
                owner,
                roles,
                removed,
                kicked,
                events,
                ..
            } => self.remote_roles(&room, owner, roles, removed, kicked, &events),
            ClusterMessage::RoomTopic { room, by, text, .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                r.topic.clone_from(&text);
                let m = ServerMessage::Topic {
                    room: room.clone(),
                    by,
                    text,
                };
                self.send_to_room(&room, u64::MAX, Marker::Command, &m);
            }
            ClusterMessage::RoomMessage {
                room,
                offset,
                from,
                text,
                time,
                ..
            } => self.remote_room_message(
                own,
                room,
                RoomMessage {
                    offset,
                    from,
                    text,
                    time,
                },
            ),
            ClusterMessage::Login { node, user } => self.remote_login(now, node, user),
            ClusterMessage::Away { node, user, text } => {
                let key = username_key(&user);
                if self.remote.get(&key).is_some_and(|(n, _)| *n == node) {
                    match text {
                        Some(text) => self.remote_away.insert(key, text),
                        None => self.remote_away.remove(&key),
                    };
                }
            }
            ClusterMessage::Logout {
                node,
                user,
                reason,
                message,
            } => {
                let key = username_key(&user);
                if self.remote.get(&key).is_some_and(|(n, _)| *n == node) {
                    self.remote_leaves(&key, reason, message);
                }
            }
            ClusterMessage::Public {
                from, text, time, ..
            } => {
                self.presence_before(&from);
                let n = self.broadcast(
                    u64::MAX,
                    &ServerMessage::Public {
                        from,
                        text,
                        time: Some(time),
                    },
                );
                self.stats.deliveries += u64::from(n);
            }
            ClusterMessage::Direct {
                from,
                to,
                text,
                time,
                at,
                ..
            } => {
                let key = username_key(&to);
                let Some(&(target, _)) = self.online.get(&key) else {
                    // Gone before it arrived: the node the sender saw the
                    // user on keeps it for their next login (no session
                    // here to confirm it to).
                    if self.node.as_deref() == Some(at.as_str())
                        && !self.remote.contains_key(&key)
                        && self.users.contains_key(&key)
                    {
                        self.store_offline(u64::MAX, from, to, text, false);
                    }
                    return;
                };
                self.presence_before(&from);
                let delivered = self.send_bytes(
                    target,
                    Marker::Data,
                    &encode_shared(&ServerMessage::Direct {
                        from,
                        text,
                        time: Some(time),
                        id: None,
                        offline: false,
                    }),
                );
                self.stats.deliveries += u64::from(delivered);
                self.process_later(target);
            }
            ClusterMessage::Account {
                name,
                password_hash,
                ..
            } => {
                if !self.users.contains_key(&username_key(&name)) {
                    self.put_account(
                        now,
                        UserRecord {
                            name,
                            password_hash,
                            suspended: None,
                        },
                    );
                }
            }
            ClusterMessage::AccountChanged {
                name,
                password_hash,
                suspended,
                ..
            } => self.put_account(
                now,
                UserRecord {
                    name,
                    password_hash,
                    suspended,
                },
            ),
            ClusterMessage::AccountDeleted { name, .. } => self.remove_account(now, &name),
            ClusterMessage::Offline {
                id,
                from,
                to,
                text,
                time,
                ..
            } => self.add_offline(OfflineMessage {
                id,
                from,
                to,
                text,
                time,
            }),
            ClusterMessage::OfflineRemoved { to, id, .. } => {
                let key = username_key(&to);
                if let Some(queue) = self.offline.get_mut(&key) {
                    queue.retain(|w| w.message.id != id);
                    if queue.is_empty() {
                        self.offline.remove(&key);
                    }
                }
            }
            ClusterMessage::NodeUp { node } => self.node_gone(now, &node),
            ClusterMessage::NodeDown { down, .. } => {
                if self.node.as_deref() == Some(down.as_str()) {
                    // Taken for gone (its lease lapsed while Redis was
                    // away): this node says again who is here.
                    self.republish_presence();
                } else {
                    self.node_gone(now, &down);
                }
            }
        }
    }

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
    pub(super) fn adopt_room(&mut self, record: RoomRecord) {
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
    fn remote_roles(
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
    fn remote_joined(&mut self, room: String, user: String, epoch: String, owner: String) {
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
    fn remote_parted(&mut self, room: &str, user: String, reason: Option<String>) {
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
    fn remote_room_message(&mut self, own: bool, room: String, message: RoomMessage) {
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

    /// The node `node` is gone: its users go offline (`left timeout`).
    pub fn node_gone(&mut self, now: Instant, node: &str) {
        self.now = self.now.max(now);
        let gone: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, (n, _))| n == node)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remote_leaves(&key, LeaveReason::Timeout.as_str().to_string(), None);
        }
    }

    /// Makes the users online elsewhere exactly `users` (node, name as
    /// registered), announcing who came and who went: after the driver
    /// lost its connection to the other nodes and found it again.
    pub fn sync_remote(&mut self, now: Instant, users: Vec<(String, String)>) {
        self.now = self.now.max(now);
        let mine = self.node.clone();
        let fresh: BTreeMap<String, (String, String)> = users
            .into_iter()
            .filter(|(node, _)| Some(node) != mine.as_ref())
            .map(|(node, name)| (username_key(&name), (node, name)))
            .collect();
        let gone: Vec<String> = self
            .remote
            .iter()
            .filter(|(k, v)| fresh.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remote_leaves(&key, LeaveReason::Timeout.as_str().to_string(), None);
        }
        for (key, (node, name)) in fresh {
            if !self.remote.contains_key(&key) {
                self.remote_login(now, node, name);
            }
        }
    }

    /// Sets who of the users online elsewhere is away, as the store
    /// keeps it (name as registered, away text), after
    /// [`Server::sync_remote`]: an away text set or cleared while the
    /// driver was cut off from the other nodes.
    pub fn sync_away(&mut self, away: Vec<(String, String)>) {
        self.remote_away = away
            .into_iter()
            .map(|(name, text)| (username_key(&name), text))
            .filter(|(key, _)| self.remote.contains_key(key))
            .collect();
    }

    /// Queues a `login` for every user online here, and an `away` for
    /// each of them who is away, so that the other nodes learn (again)
    /// who is here: after the driver lost its connection and found it
    /// again. A node that already knows ignores it.
    pub fn republish_presence(&mut self) {
        let users: Vec<(String, u64)> =
            self.online.values().map(|(c, n)| (n.clone(), *c)).collect();
        for (user, conn) in users {
            let away = self.away_text(conn).map(String::from);
            self.publish_with(|node| ClusterMessage::Login {
                node,
                user: user.clone(),
            });
            if let Some(text) = away {
                self.publish_with(|node| ClusterMessage::Away {
                    node,
                    user,
                    text: Some(text),
                });
            }
        }
    }

    /// The away text of `key` (a lowercase name) online on another node.
    pub(super) fn remote_away_text(&self, key: &str) -> Option<&str> {
        self.remote_away.get(key).map(String::as_str)
    }

    /// `user` logged in on another node: a local session of theirs is
    /// replaced; everyone here learns of the arrival.
    fn remote_login(&mut self, now: Instant, node: String, user: String) {
        let key = username_key(&user);
        if self
            .remote
            .get(&key)
            .is_some_and(|(n, u)| *n == node && *u == user)
        {
            // Said again (see republish_presence): nothing changed.
            return;
        }
        if let Some(&(old, _)) = self.online.get(&key) {
            self.error(
                old,
                ErrorCode::Replaced,
                "you logged in from another place; this session is over".to_string(),
            );
            self.logout(old, LeaveReason::Replaced);
            self.set_state(
                old,
                SessionState::Closing {
                    until: now + self.config.linger,
                },
            );
            self.process(now, old);
        } else if self.remote.contains_key(&key) {
            self.remote_leaves(&key, LeaveReason::Replaced.as_str().to_string(), None);
        }
        // A new session: not away until it says so.
        self.remote_away.remove(&key);
        self.remote.insert(key, (node, user.clone()));
        self.logins += 1;
        if self.online_count() <= self.config.max_presence {
            self.announce(u64::MAX, &ServerMessage::Joined { user });
        }
    }

    /// A user online on another node is not any more.
    pub(super) fn remote_leaves(&mut self, key: &str, reason: String, message: Option<String>) {
        let announce = self.online_count() <= self.config.max_presence;
        let Some((_, user)) = self.remote.remove(key) else {
            return;
        };
        self.remote_away.remove(key);
        if announce {
            self.announce(
                u64::MAX,
                &ServerMessage::Left {
                    user,
                    reason,
                    message,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_read_back_as_written() {
        let all = [
            ClusterMessage::Login {
                node: "a".to_string(),
                user: "Bob".to_string(),
            },
            ClusterMessage::Logout {
                node: "a".to_string(),
                user: "Bob".to_string(),
                reason: "exit".to_string(),
                message: Some("bye".to_string()),
            },
            ClusterMessage::Direct {
                node: "a".to_string(),
                from: "Bob".to_string(),
                at: "b".to_string(),
                to: "carol".to_string(),
                text: "psst".to_string(),
                time: 7,
            },
            ClusterMessage::NodeDown {
                node: "a".to_string(),
                down: "b".to_string(),
            },
            ClusterMessage::Away {
                node: "a".to_string(),
                user: "Bob".to_string(),
                text: Some("lunch".to_string()),
            },
            ClusterMessage::Away {
                node: "a".to_string(),
                user: "Bob".to_string(),
                text: None,
            },
            ClusterMessage::RoomRoles {
                node: "a".to_string(),
                room: "#r".to_string(),
                owner: "Bob".to_string(),
                roles: RoomRoles {
                    ops: alloc::vec!["carol".to_string()],
                    bans: alloc::vec![store::RoomBan {
                        user: "dave".to_string(),
                        until: Some(9),
                    }],
                    muted: alloc::vec!["erin".to_string()],
                    topic_locked: true,
                    moderated: false,
                },
                removed: Some("dave".to_string()),
                kicked: Some(Box::new(ServerMessage::Kicked {
                    room: "#r".to_string(),
                    by: "Bob".to_string(),
                    reason: Some("spam".to_string()),
                    banned: true,
                    until: Some(9),
                })),
                events: alloc::vec![ServerMessage::MemberLeft {
                    room: "#r".to_string(),
                    user: "dave".to_string(),
                    reason: Some("banned by Bob: spam".to_string()),
                }],
            },
        ];
        for m in all {
            assert_eq!(ClusterMessage::decode(&m.encode()).unwrap(), m);
        }
        assert_eq!(
            ClusterMessage::Login {
                node: "a".to_string(),
                user: "Bob".to_string()
            }
            .encode(),
            br#"{"kind":"login","node":"a","user":"Bob"}"#
        );
        assert_eq!(
            ClusterMessage::Away {
                node: "a".to_string(),
                user: "Bob".to_string(),
                text: None,
            }
            .encode(),
            br#"{"kind":"away","node":"a","user":"Bob"}"#
        );
        assert!(ClusterMessage::decode(b"{\"kind\":\"nope\"}").is_err());
        // The roles alone (no one removed, nothing to tell); an event that
        // is no server message is refused.
        let bare = br##"{"kind":"room_roles","node":"a","room":"#r","owner":"","roles":{}}"##;
        assert!(matches!(
            ClusterMessage::decode(bare),
            Ok(ClusterMessage::RoomRoles { removed: None, kicked: None, ref events, .. }) if events.is_empty()
        ));
        let bad = br##"{"kind":"room_roles","node":"a","room":"#r","owner":"","roles":{},"events":[{"t":7}]}"##;
        assert!(ClusterMessage::decode(bad).is_err());
    }
}
