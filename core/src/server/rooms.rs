//! Rooms, their history, resuming after a reconnect, and direct messages
//! stored for offline users.
//!
//! Rooms, memberships, each room's latest messages and the waiting direct
//! messages live in memory; every change is also a [`StoreOp`] the driver
//! makes durable (see [`store`](super::store)). What a user is told comes
//! only once the change is durable: `room` after `join`, `said` after
//! `say` (and the other members get the message then, in offset order),
//! `confirm` with `stored` after a direct message to an offline user.

use super::*;
use crate::session::{MAX_HISTORY_PAGE, MAX_TOPIC};

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
    /// Whether `recent` holds every message the store keeps (until the
    /// first is dropped from memory).
    pub(super) complete: bool,
}

/// A direct message waiting for an offline user.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) message: OfflineMessage,
    pub(super) state: Delivery,
}

/// Where a waiting message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Not sent, or sent on a session that ended before acknowledging it.
    Waiting,
    /// Sent on this session, not yet acknowledged.
    Sent(u64),
    /// Acknowledged; its removal from the store is in flight.
    Removing,
}

/// What to do once a store write is durable.
#[derive(Debug)]
pub(super) enum Write {
    /// Answer `join` (the membership is already in memory).
    Joined {
        conn: u64,
        room: String,
        user: String,
    },
    /// Answer `part`.
    Parted {
        conn: u64,
        room: String,
        user: String,
        reason: Option<String>,
    },
    /// Relay a room message and answer `say`.
    Said {
        conn: u64,
        room: String,
        message: Arc<RoomMessage>,
    },
    /// Tell the room of its new topic.
    Topic {
        conn: u64,
        room: String,
        by: String,
        text: String,
    },
    /// Confirm a direct message stored for an offline user.
    Offline { conn: u64, message: OfflineMessage },
    /// Forget a delivered offline message.
    Removed { to: String, id: u64 },
}

/// A room message as sent to clients.
fn room_msg(room: &str, m: &RoomMessage, history: bool) -> ServerMessage {
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
                    complete,
                },
            );
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
    fn room_memory(&self) -> usize {
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

    /// Direct messages waiting for offline users.
    pub fn offline_count(&self) -> usize {
        self.offline.values().map(VecDeque::len).sum()
    }

    fn store(&mut self, op: StoreOp, then: Option<Write>) {
        let id = self.next_request;
        self.next_request += 1;
        if let Some(w) = then {
            self.writes.insert(id, w);
        }
        self.requests.push_back(Request::Store { id, op });
    }

    /// Checks the room name and membership for a request about `room`;
    /// tells the client when it fails.
    fn member_of(&mut self, conn: u64, name: &str, room: &str) -> bool {
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
    fn send_to_room(
        &mut self,
        room: &str,
        except: u64,
        marker: Marker,
        message: &ServerMessage,
    ) -> u32 {
        let Some(r) = self.rooms.get(room) else {
            return 0;
        };
        let targets: Vec<u64> = r
            .members
            .keys()
            .filter_map(|k| self.online.get(k).map(|(c, _)| *c))
            .filter(|c| *c != except)
            .collect();
        let bytes = encode_shared(message);
        let mut n = 0;
        for conn in targets {
            if self.send_bytes(conn, marker, &bytes) {
                n += 1;
            }
        }
        n
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
                    self.send(conn, &ServerMessage::Names { room, users, count });
                } else {
                    self.error(
                        conn,
                        ErrorCode::NoSuchRoom,
                        format!("there is no room {room}"),
                    );
                }
            }
            ClientMessage::Topic { room, text } => {
                if !self.member_of(conn, &name, &room) {
                    return;
                }
                if text.len() > MAX_TOPIC || (!text.is_empty() && validate_text(&text).is_err()) {
                    self.error(
                        conn,
                        ErrorCode::InvalidTopic,
                        format!("a topic is text of at most {MAX_TOPIC} bytes"),
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
            _ => {}
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
                        complete: true,
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
    fn send_room(&mut self, conn: u64, room: &str) {
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
            self.store(StoreOp::Part { room, user: name }, Some(write));
        }
    }

    fn on_say(&mut self, conn: u64, name: String, room: String, text: String) {
        if !self.member_of(conn, &name, &room) {
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

    fn on_history(
        &mut self,
        conn: u64,
        name: &str,
        room: String,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
    ) {
        if !self.member_of(conn, name, &room) {
            return;
        }
        let limit = limit.unwrap_or(MAX_HISTORY_PAGE).min(MAX_HISTORY_PAGE);
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                self.error(
                    conn,
                    ErrorCode::BadMessage,
                    "history takes before or after, not both".to_string(),
                );
                return;
            }
            (_, Some(a)) => Page::After(a),
            (Some(b), None) => Page::Before(b),
            (None, None) => Page::Before(r.last_offset.saturating_add(1)),
        };
        let first_in_memory = r.recent.front().map_or(r.next_offset, |m| m.offset);
        let limit_n = limit as usize;
        // From memory when it holds the whole page, or everything there is
        // in that direction; otherwise the store reads it.
        let answer: Option<(Vec<Arc<RoomMessage>>, bool)> = match page {
            Page::Before(b) => {
                let below: Vec<&Arc<RoomMessage>> =
                    r.recent.iter().take_while(|m| m.offset < b).collect();
                if below.len() >= limit_n || r.complete {
                    let skip = below.len().saturating_sub(limit_n);
                    let more = skip > 0 || !r.complete;
                    Some((below[skip..].iter().map(|m| (*m).clone()).collect(), more))
                } else {
                    None
                }
            }
            Page::After(a) => (r.complete || a.saturating_add(1) >= first_in_memory).then(|| {
                let page: Vec<Arc<RoomMessage>> = r
                    .recent
                    .iter()
                    .filter(|m| m.offset > a)
                    .take(limit_n)
                    .cloned()
                    .collect();
                let more = page.last().is_some_and(|m| m.offset < r.last_offset);
                (page, more)
            }),
        };
        match answer {
            Some((messages, more)) => {
                let messages: Vec<RoomMessage> = messages.iter().map(|m| (**m).clone()).collect();
                self.send_history(conn, &room, &messages, more);
            }
            None => {
                let id = self.next_request;
                self.next_request += 1;
                self.reads.insert(id, (conn, room.clone()));
                self.requests.push_back(Request::History {
                    id,
                    room,
                    page,
                    limit,
                });
            }
        }
    }

    /// Sends a page of history and its `history_end`.
    fn send_history(&mut self, conn: u64, room: &str, messages: &[RoomMessage], more: bool) {
        for m in messages {
            self.send(conn, &room_msg(room, m, true));
        }
        let (epoch, offset) = self
            .rooms
            .get(room)
            .map(|r| (r.epoch.clone(), r.last_offset))
            .unwrap_or_default();
        self.send(
            conn,
            &ServerMessage::HistoryEnd {
                room: room.to_string(),
                epoch,
                offset,
                count: u32::try_from(messages.len()).unwrap_or(u32::MAX),
                more,
            },
        );
    }

    /// After `login_ok`: answers the client's resume positions, then
    /// sends the direct messages that waited.
    pub(super) fn after_login(&mut self, conn: u64, name: &str) {
        let positions = self
            .sessions
            .get_mut(&conn)
            .map(|s| core::mem::take(&mut s.resume))
            .unwrap_or_default();
        let key = username_key(name);
        for p in positions {
            let Some(r) = self.rooms.get(&p.room) else {
                continue;
            };
            if !r.members.contains_key(&key) {
                continue;
            }
            let (epoch, last) = (r.epoch.clone(), r.last_offset);
            let first_in_memory = r.recent.front().map_or(r.next_offset, |m| m.offset);
            let (recovered, missed, replay) = if p.epoch != epoch {
                (false, 0, Vec::new())
            } else if p.offset >= last {
                (true, 0, Vec::new())
            } else {
                let missed = last - p.offset;
                if missed as usize <= self.config.max_replay && p.offset + 1 >= first_in_memory {
                    let replay: Vec<Arc<RoomMessage>> = r
                        .recent
                        .iter()
                        .filter(|m| m.offset > p.offset)
                        .cloned()
                        .collect();
                    (true, replay.len() as u64, replay)
                } else {
                    (false, missed, Vec::new())
                }
            };
            for m in replay {
                self.send(conn, &room_msg(&p.room, &m, true));
            }
            self.send(
                conn,
                &ServerMessage::RoomResume {
                    room: p.room,
                    recovered,
                    missed,
                    epoch,
                    offset: last,
                },
            );
        }
        self.deliver_offline(conn, &key);
    }

    /// Sends the waiting direct messages of `key` not yet sent on `conn`.
    fn deliver_offline(&mut self, conn: u64, key: &str) {
        let Some(queue) = self.offline.get_mut(key) else {
            return;
        };
        let mut out = Vec::new();
        for w in queue.iter_mut() {
            if w.state == Delivery::Removing || w.state == Delivery::Sent(conn) {
                continue;
            }
            w.state = Delivery::Sent(conn);
            out.push(w.message.clone());
        }
        for m in out {
            let bytes = encode_shared(&ServerMessage::Direct {
                from: m.from,
                text: m.text,
                time: Some(m.time),
                id: Some(m.id),
                offline: true,
            });
            if !self.send_bytes(conn, Marker::Data, &bytes) {
                break;
            }
            if let Some(s) = self.sessions.get_mut(&conn) {
                let mark = s.connection.channel().mark();
                s.delivering.push((m.id, mark));
            }
            self.stats.deliveries += 1;
        }
    }

    /// Removes the offline messages `conn`'s client acknowledged.
    pub(super) fn check_offline_acks(&mut self, conn: u64) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        if s.delivering.is_empty() {
            return;
        }
        let SessionState::LoggedIn { name, .. } = &s.state else {
            return;
        };
        let name = name.clone();
        let channel = s.connection.channel();
        let done: Vec<u64> = s
            .delivering
            .iter()
            .filter(|(_, mark)| channel.is_acknowledged(*mark))
            .map(|(id, _)| *id)
            .collect();
        if done.is_empty() {
            return;
        }
        s.delivering.retain(|(id, _)| !done.contains(id));
        let key = username_key(&name);
        if let Some(queue) = self.offline.get_mut(&key) {
            for w in queue.iter_mut().filter(|w| done.contains(&w.message.id)) {
                w.state = Delivery::Removing;
            }
        }
        for id in done {
            self.store(
                StoreOp::RemoveOffline {
                    to: name.clone(),
                    id,
                },
                Some(Write::Removed {
                    to: key.clone(),
                    id,
                }),
            );
        }
    }

    /// A direct message to an offline user: stored, then confirmed.
    pub(super) fn store_offline(&mut self, conn: u64, from: String, to: String, text: String) {
        let key = username_key(&to);
        let from_key = username_key(&from);
        let queue = self.offline.get(&key);
        let waiting = queue.map_or(0, VecDeque::len)
            + self
                .writes
                .values()
                .filter(|w| matches!(w, Write::Offline { message, .. } if username_key(&message.to) == key))
                .count();
        if waiting >= self.config.max_offline_per_user {
            self.error(
                conn,
                ErrorCode::InboxFull,
                format!("{to} is offline and has as many waiting messages as the server keeps"),
            );
            return;
        }
        let from_sender = queue.map_or(0, |q| {
            q.iter()
                .filter(|w| username_key(&w.message.from) == from_key)
                .count()
        });
        if from_sender >= self.config.max_offline_per_sender {
            self.error(
                conn,
                ErrorCode::InboxFull,
                format!(
                    "{to} is offline and has {from_sender} messages from you waiting; wait until they are read"
                ),
            );
            return;
        }
        let message = OfflineMessage {
            id: self.next_offline_id,
            from,
            to,
            text,
            time: self.unix_time(),
        };
        self.next_offline_id += 1;
        self.store(
            StoreOp::PutOffline(message.clone()),
            Some(Write::Offline { conn, message }),
        );
    }

    /// Handles [`Response::Stored`], [`Response::History`], and
    /// [`Response::Unavailable`] for a store request.
    pub(super) fn handle_store_response(&mut self, now: Instant, response: Response) {
        match response {
            Response::Stored { id, result } => {
                let Some(write) = self.writes.remove(&id) else {
                    return;
                };
                match result {
                    Ok(()) => self.stored(write),
                    Err(e) => self.store_failed(write, e),
                }
            }
            Response::History { id, result } => {
                let Some((conn, room)) = self.reads.remove(&id) else {
                    return;
                };
                match result {
                    Ok((messages, more)) => self.send_history(conn, &room, &messages, more),
                    Err(e) => {
                        self.events.push_back(ServerEvent::StoreFailed { error: e });
                        self.error(
                            conn,
                            ErrorCode::StoreFailed,
                            "the server could not read the room's history".to_string(),
                        );
                    }
                }
                self.process_later(conn);
            }
            Response::Unavailable { id } => {
                if let Some(write) = self.writes.remove(&id) {
                    self.store_failed(write, "the store is busy".to_string());
                } else if let Some((conn, _)) = self.reads.remove(&id) {
                    self.error(
                        conn,
                        ErrorCode::Busy,
                        "the server is busy; try again".to_string(),
                    );
                }
            }
            _ => {}
        }
        let _ = now;
    }

    fn stored(&mut self, write: Write) {
        match write {
            Write::Joined { conn, room, user } => {
                self.send_room(conn, &room);
                if self
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.members.len() <= self.config.max_presence)
                {
                    self.send_to_room(
                        &room,
                        conn,
                        Marker::Command,
                        &ServerMessage::MemberJoined {
                            room: room.clone(),
                            user,
                        },
                    );
                }
                self.process_later(conn);
            }
            Write::Parted {
                conn,
                room,
                user,
                reason,
            } => {
                self.send(conn, &ServerMessage::Parted { room: room.clone() });
                if self
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.members.len() < self.config.max_presence)
                {
                    self.send_to_room(
                        &room,
                        conn,
                        Marker::Command,
                        &ServerMessage::MemberLeft {
                            room: room.clone(),
                            user,
                            reason,
                        },
                    );
                }
                self.process_later(conn);
            }
            Write::Said {
                conn,
                room,
                message,
            } => {
                let keep = self.room_memory();
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                r.last_offset = r.last_offset.max(message.offset);
                r.recent.push_back(message.clone());
                while r.recent.len() > keep {
                    r.recent.pop_front();
                    r.complete = false;
                }
                self.stats.room_messages += 1;
                self.presence_before(&message.from);
                let n =
                    self.send_to_room(&room, conn, Marker::Data, &room_msg(&room, &message, false));
                self.stats.deliveries += u64::from(n);
                self.send(
                    conn,
                    &ServerMessage::Said {
                        room,
                        offset: message.offset,
                        time: message.time,
                    },
                );
                self.process_later(conn);
            }
            Write::Topic {
                conn,
                room,
                by,
                text,
            } => {
                let m = ServerMessage::Topic {
                    room: room.clone(),
                    by,
                    text,
                };
                self.send_to_room(&room, u64::MAX, Marker::Command, &m);
                self.process_later(conn);
            }
            Write::Offline { conn, message } => {
                let key = username_key(&message.to);
                let to = message.to.clone();
                self.offline
                    .entry(key.clone())
                    .or_default()
                    .push_back(Waiting {
                        message,
                        state: Delivery::Waiting,
                    });
                self.stats.offline_stored += 1;
                self.send(
                    conn,
                    &ServerMessage::Confirm {
                        op: Operation::DM,
                        to: Some(to),
                        recipients: 0,
                        stored: true,
                    },
                );
                self.process_later(conn);
                // The recipient logged in while it was being written.
                if let Some(&(target, _)) = self.online.get(&key) {
                    self.deliver_offline(target, &key);
                    self.process_later(target);
                }
            }
            Write::Removed { to, id } => {
                if let Some(queue) = self.offline.get_mut(&to) {
                    queue.retain(|w| w.message.id != id);
                    if queue.is_empty() {
                        self.offline.remove(&to);
                    }
                }
            }
        }
    }

    fn store_failed(&mut self, write: Write, error: String) {
        self.events.push_back(ServerEvent::StoreFailed { error });
        let conn = match write {
            Write::Joined { conn, .. }
            | Write::Parted { conn, .. }
            | Write::Said { conn, .. }
            | Write::Topic { conn, .. }
            | Write::Offline { conn, .. } => conn,
            Write::Removed { to, id } => {
                // Still stored: delivered again at the next login (the
                // client drops the copy by its id).
                if let Some(w) = self
                    .offline
                    .get_mut(&to)
                    .and_then(|q| q.iter_mut().find(|w| w.message.id == id))
                {
                    w.state = Delivery::Waiting;
                }
                return;
            }
        };
        self.error(
            conn,
            ErrorCode::StoreFailed,
            "the server could not store that; try again later".to_string(),
        );
        self.process_later(conn);
    }
}
