//! Store writes in flight, and what the server does once each is durable
//! (or failed): confirmations and relaying wait for the disk.

use super::offline::{Delivery, Waiting};
use super::rooms::room_msg;
use super::*;
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
    /// Confirm a direct message stored for an offline user, or (`online`)
    /// for a user online on another node of a cluster, whose node delivers
    /// it from the store's publication.
    Offline {
        conn: u64,
        message: OfflineMessage,
        online: bool,
    },
    /// Forget a delivered offline message.
    Removed { to: String, id: u64 },
    /// A moderation action's audit entry is on disk: answer `mod_ok`.
    Audited {
        conn: u64,
        action: String,
        target: String,
    },
    /// An address ban is on disk: it takes effect; answer `mod_ok`.
    Banned { conn: u64, ban: store::AddressBan },
    /// A lifted address ban is on disk: answer `mod_ok`.
    Unbanned { conn: u64, range: String },
    /// An account change (a suspension) is on disk: apply it, audit it.
    Account {
        conn: u64,
        by: String,
        op: AccountOp,
    },
    /// A new invite code is on disk: answer `invite_code`.
    Invited { conn: u64, invite: store::Invite },
    /// A room's roles changed (PROTOCOL.md §5.13).
    RoomChange(alloc::boxed::Box<super::room_roles::Change>),
}

impl Server {
    pub(super) fn store(&mut self, op: StoreOp, then: Option<Write>) {
        let id = self.next_request;
        self.next_request += 1;
        if let Some(w) = then {
            self.writes.insert(id, w);
        }
        self.requests.push_back(Request::Store { id, op });
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
            Response::Appended { id, result } => {
                let Some(write) = self.writes.remove(&id) else {
                    return;
                };
                match (result, write) {
                    (
                        Ok(offset),
                        Write::Said {
                            conn,
                            room,
                            message,
                        },
                    ) => {
                        let mut message = (*message).clone();
                        message.offset = offset;
                        self.stored(Write::Said {
                            conn,
                            room,
                            message: Arc::new(message),
                        });
                    }
                    (Ok(_), write) => self.stored(write),
                    (Err(e), write) => self.store_failed(write, e),
                }
            }
            Response::RoomFound { id, room } => {
                let Some(write) = self.writes.remove(&id) else {
                    return;
                };
                self.adopt_room(*room);
                self.stored(write);
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

    pub(super) fn stored(&mut self, write: Write) {
        match write {
            Write::Joined { conn, room, user } => {
                if let Some(r) = self.rooms.get(&room) {
                    let (epoch, owner) = (r.epoch.clone(), r.owner.clone());
                    self.publish_with(|node| ClusterMessage::RoomJoined {
                        node,
                        room: room.clone(),
                        user: user.clone(),
                        epoch,
                        owner,
                    });
                }
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
                self.publish_with(|node| ClusterMessage::RoomParted {
                    node,
                    room: room.clone(),
                    user: user.clone(),
                    reason: reason.clone(),
                });
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
            } if self.node.is_some() => {
                // In a cluster every node relays it as the store published
                // it, in offset order (see ClusterMessage::RoomMessage).
                self.stats.room_messages += 1;
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
                self.publish_with(|node| ClusterMessage::RoomTopic {
                    node,
                    room: room.clone(),
                    by: by.clone(),
                    text: text.clone(),
                });
                let m = ServerMessage::Topic {
                    room: room.clone(),
                    by,
                    text,
                };
                self.send_to_room(&room, u64::MAX, Marker::Command, &m);
                self.process_later(conn);
            }
            Write::Offline {
                conn,
                message,
                online,
            } => {
                let key = username_key(&message.to);
                let to = message.to.clone();
                let message_to = to.clone();
                self.offline
                    .entry(key.clone())
                    .or_default()
                    .push_back(Waiting {
                        message,
                        state: Delivery::Waiting,
                    });
                if online {
                    self.stats.direct_messages += 1;
                } else {
                    self.stats.offline_stored += 1;
                }
                // For a user online on another node: stored, and published
                // with it to that node, which delivers it.
                self.send(
                    conn,
                    &ServerMessage::Confirm {
                        op: Operation::DM,
                        to: Some(to),
                        recipients: u32::from(online),
                        stored: !online,
                    },
                );
                // Delivered, and its sender learns why no answer may come
                // soon.
                let away = online
                    .then(|| self.remote_away_text(&key).map(String::from))
                    .flatten();
                if let Some(text) = away {
                    self.send(
                        conn,
                        &ServerMessage::AwayReply {
                            user: message_to,
                            text,
                        },
                    );
                }
                self.process_later(conn);
                // The recipient logged in here while it was being written.
                if let Some(&(target, _)) = self.online.get(&key) {
                    self.deliver_offline(target, &key, !online);
                    self.process_later(target);
                }
            }
            Write::Audited {
                conn,
                action,
                target,
            } => {
                self.send(conn, &ServerMessage::ModOk { action, target });
                self.process_later(conn);
            }
            Write::Banned { conn, ban } => self.banned(conn, ban),
            Write::Unbanned { conn, range } => self.unbanned(conn, range),
            Write::Account { conn, by, op } => self.account_stored(conn, &by, op),
            Write::Invited { conn, invite } => self.invite_stored(conn, invite),
            Write::RoomChange(change) => self.room_changed(*change),
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

    pub(super) fn store_failed(&mut self, write: Write, error: String) {
        self.events.push_back(ServerEvent::StoreFailed { error });
        let conn = match write {
            Write::Joined { conn, .. }
            | Write::Parted { conn, .. }
            | Write::Said { conn, .. }
            | Write::Topic { conn, .. }
            | Write::Offline { conn, .. }
            | Write::Audited { conn, .. }
            | Write::Banned { conn, .. }
            | Write::Unbanned { conn, .. } => conn,
            Write::Account { conn, .. } => conn,
            Write::Invited { conn, invite } => {
                self.invite_failed(&invite);
                conn
            }
            Write::RoomChange(change) => match change.conn {
                Some(conn) => conn,
                None => return,
            },
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
