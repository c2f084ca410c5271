//! What the server keeps beyond a session: rooms, their members and
//! history, and direct messages waiting for an offline user.
//!
//! The server never touches a database. It keeps rooms, memberships, the
//! most recent messages of each room and the waiting direct messages in
//! memory, and every change leaves it as a [`StoreOp`] inside a
//! [`Request::Store`](super::Request::Store); the driver writes it (the
//! native server: one writer thread, one transaction for everything
//! waiting, `redb`) and answers [`Response::Stored`](super::Response::Stored)
//! once it is durable. Only then is the change confirmed to the user: a
//! confirmed room message or stored direct message is never lost.
//!
//! Answers come back in the order the requests were made; the server
//! relies on it (room messages are relayed in offset order).
//!
//! At start the driver loads a [`Snapshot`] from the store and hands it to
//! [`Server::restore`](super::Server::restore). Messages older than those
//! in memory are read with [`Request::History`](super::Request::History).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// One message of a room, as stored and as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomMessage {
    /// Its place in the room: 1 for the first message, then one more for
    /// each (it only grows; a message lost to a failed write leaves a gap).
    pub offset: u64,
    /// The sender's name, as registered.
    pub from: String,
    /// The text.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub time: u64,
}

/// A room as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// The name (`#` and 1 to 32 of `a-z0-9_-.`).
    pub name: String,
    /// Changes only when the room's history is lost (the room was emptied
    /// and made again): a client's position under another epoch means
    /// nothing.
    pub epoch: String,
    /// Who made the room.
    pub owner: String,
    /// The topic (empty: none).
    pub topic: String,
    /// When the room was made, in milliseconds since the Unix epoch.
    pub created: u64,
    /// Its members' names, as registered.
    pub members: Vec<String>,
    /// The offset of the latest message (0: none yet).
    pub last_offset: u64,
    /// The latest messages, oldest first: at most as many as
    /// [`Snapshot`]'s loader was asked for.
    pub recent: Vec<RoomMessage>,
    /// Its operators, bans, mutes and modes (PROTOCOL.md §5.13).
    pub roles: RoomRoles,
}

/// A room's operators, bans, mutes and modes (PROTOCOL.md §5.13): kept
/// whole, and written whole by [`StoreOp::SetRoles`] at each change. As
/// JSON (a cluster's `room_roles` message, the `roles` field of a room's
/// hash in Redis) every field may be absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RoomRoles {
    /// The operators the owner named, as registered, in the order they
    /// were named (the first is the owner's successor).
    pub ops: Vec<String>,
    /// The accounts banned from the room.
    pub bans: Vec<RoomBan>,
    /// The accounts whose `say` is refused, as registered.
    pub muted: Vec<String>,
    /// Only operators may set the topic.
    pub topic_locked: bool,
    /// Only operators may speak.
    pub moderated: bool,
}

/// An account banned from a room.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RoomBan {
    /// The account, as registered.
    pub user: String,
    /// When the ban ends, in milliseconds since the Unix epoch (`None`:
    /// never).
    pub until: Option<u64>,
}

/// A direct message stored for a user who was offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Unique on this server, and growing: the client drops a message
    /// whose id it has seen (one redelivered after a crash).
    pub id: u64,
    /// The sender's name, as registered.
    pub from: String,
    /// The recipient's name, as registered.
    pub to: String,
    /// The text.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub time: u64,
}

/// One moderation action, as the audit log keeps it: who did what to
/// whom, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unique on this server, and growing.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
    /// Who acted: an account's name, as registered, or `"accounts"` for
    /// the accounts tool.
    pub by: String,
    /// What was done (`suspend`, `ban_address`, `kick`, …; PROTOCOL.md
    /// §5.12 lists them).
    pub action: String,
    /// To whom or what: an account, an address range, a room (and, for a
    /// room action on a member, `#room user`).
    pub target: String,
    /// Why, as given (may be empty).
    pub reason: String,
    /// When the action's effect ends, in milliseconds since the Unix
    /// epoch, for actions with an expiry.
    pub until: Option<u64>,
}

/// A ban of an address range (PROTOCOL.md §5.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressBan {
    /// The range, normalised (`203.0.113.0/24`): the key.
    pub range: String,
    /// When it ends, in milliseconds since the Unix epoch; `None`: when it
    /// is lifted.
    pub until: Option<u64>,
    /// Why, as given (may be empty).
    pub reason: String,
    /// The admin who banned it.
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
}

/// A single-use invite code that registers one new account while
/// registration is by invite (PROTOCOL.md §5.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The code: 16 lowercase hexadecimal digits.
    pub code: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires: u64,
    /// The admin who asked for it.
    pub by: String,
}

/// Everything the store holds, as the server needs it at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every room.
    pub rooms: Vec<RoomRecord>,
    /// Every waiting direct message, oldest first.
    pub offline: Vec<OfflineMessage>,
    /// The latest entries of the audit log, oldest first (at most
    /// [`AUDIT_MEMORY`]).
    pub audit: Vec<AuditEntry>,
    /// Every address ban (expired ones may be among them: the server
    /// drops those).
    pub bans: Vec<AddressBan>,
    /// Who may register new accounts (open when never set).
    pub registration: crate::session::RegistrationMode,
    /// The invite codes not used yet (expired ones may be among them).
    pub invites: Vec<Invite>,
}

/// Audit entries the server keeps in memory, and so the most an `audit`
/// request can show: 1,000 (the store keeps every entry).
pub const AUDIT_MEMORY: usize = 1000;

/// One change to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Make a room, with its owner as its only member.
    CreateRoom {
        /// The room's name.
        room: String,
        /// Its epoch.
        epoch: String,
        /// The owner's name.
        owner: String,
        /// When, in milliseconds since the Unix epoch.
        time: u64,
    },
    /// Add a member.
    Join {
        /// The room.
        room: String,
        /// The user's name, as registered.
        user: String,
    },
    /// Remove a member.
    Part {
        /// The room.
        room: String,
        /// The user's name, as registered.
        user: String,
    },
    /// Remove a room and its whole history (its last member left).
    DeleteRoom {
        /// The room.
        room: String,
    },
    /// Set a room's topic.
    SetTopic {
        /// The room.
        room: String,
        /// The new topic (empty: none).
        topic: String,
    },
    /// Add a message to a room's history; the store then drops what its
    /// retention rules no longer keep.
    Append {
        /// The room.
        room: String,
        /// The message.
        message: RoomMessage,
    },
    /// Store a direct message for an offline user.
    PutOffline(OfflineMessage),
    /// Remove a delivered direct message.
    RemoveOffline {
        /// The recipient's name, as registered.
        to: String,
        /// The message's id.
        id: u64,
    },
    /// Append an entry to the audit log.
    Audit(AuditEntry),
    /// Ban an address range, or replace the ban of the same range.
    BanAddress(AddressBan),
    /// Lift the ban of a range (nothing when there is none).
    UnbanAddress {
        /// The range, as [`AddressBan::range`].
        range: String,
    },
    /// Set who may register new accounts.
    Registration(crate::session::RegistrationMode),
    /// Keep a new invite code.
    AddInvite(Invite),
    /// Forget an invite code (used or expired).
    RemoveInvite {
        /// The code.
        code: String,
    },
    /// Set a room's owner and its operators, bans, mutes and modes (all
    /// of them: the previous ones are replaced).
    SetRoles {
        /// The room.
        room: String,
        /// The owner (empty: none).
        owner: String,
        /// Everything else.
        roles: RoomRoles,
    },
}

/// Which page of a room's history a [`Request::History`](super::Request::History)
/// asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// The latest `limit` messages with an offset below this one.
    Before(u64),
    /// The first `limit` messages with an offset above this one.
    After(u64),
}

/// Retention of a room's history: the store keeps the latest
/// `max_messages`, none older than `max_age_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Messages kept per room: 10,000.
    pub max_messages: u64,
    /// Age of the oldest message kept, in milliseconds: 30 days.
    pub max_age_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_messages: 10_000,
            max_age_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

/// A store in memory: what a simulation, an example or a fuzz target
/// answers the server's store requests with. It applies every change at
/// once and keeps nothing across processes.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    rooms: BTreeMap<String, RoomRecord>,
    offline: BTreeMap<u64, OfflineMessage>,
    audit: Vec<AuditEntry>,
    bans: BTreeMap<String, AddressBan>,
    registration: crate::session::RegistrationMode,
    invites: BTreeMap<String, Invite>,
    retention: Retention,
    /// Every change applied, in order (for tests that check the order).
    pub applied: u64,
}

impl MemoryStore {
    /// An empty store with these retention rules.
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            retention,
            ..MemoryStore::default()
        }
    }

    /// Applies one change.
    pub fn apply(&mut self, op: &StoreOp) {
        self.applied += 1;
        match op {
            StoreOp::CreateRoom {
                room,
                epoch,
                owner,
                time,
            } => {
                self.rooms.insert(
                    room.clone(),
                    RoomRecord {
                        name: room.clone(),
                        epoch: epoch.clone(),
                        owner: owner.clone(),
                        topic: String::new(),
                        created: *time,
                        members: alloc::vec![owner.clone()],
                        last_offset: 0,
                        recent: Vec::new(),
                        roles: RoomRoles::default(),
                    },
                );
            }
            StoreOp::Join { room, user } => {
                if let Some(r) = self.rooms.get_mut(room)
                    && !r.members.contains(user)
                {
                    r.members.push(user.clone());
                }
            }
            StoreOp::Part { room, user } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.members.retain(|m| m != user);
                }
            }
            StoreOp::DeleteRoom { room } => {
                self.rooms.remove(room);
            }
            StoreOp::SetTopic { room, topic } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.topic.clone_from(topic);
                }
            }
            StoreOp::Append { room, message } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.last_offset = r.last_offset.max(message.offset);
                    r.recent.push(message.clone());
                    let keep = usize::try_from(self.retention.max_messages).unwrap_or(usize::MAX);
                    let oldest = message.time.saturating_sub(self.retention.max_age_ms);
                    let over = r.recent.len().saturating_sub(keep);
                    let old = r.recent.iter().take_while(|m| m.time < oldest).count();
                    r.recent.drain(..over.max(old));
                }
            }
            StoreOp::PutOffline(m) => {
                self.offline.insert(m.id, m.clone());
            }
            StoreOp::RemoveOffline { id, .. } => {
                self.offline.remove(id);
            }
            StoreOp::Audit(entry) => {
                self.audit.push(entry.clone());
            }
            StoreOp::BanAddress(ban) => {
                self.bans.insert(ban.range.clone(), ban.clone());
            }
            StoreOp::UnbanAddress { range } => {
                self.bans.remove(range);
            }
            StoreOp::Registration(mode) => self.registration = *mode,
            StoreOp::AddInvite(invite) => {
                self.invites.insert(invite.code.clone(), invite.clone());
            }
            StoreOp::RemoveInvite { code } => {
                self.invites.remove(code);
            }
            StoreOp::SetRoles { room, owner, roles } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.owner.clone_from(owner);
                    r.roles = roles.clone();
                }
            }
        }
    }

    /// A page of a room's history, oldest first, and whether there is more
    /// in that direction.
    pub fn page(&self, room: &str, page: Page, limit: u32) -> (Vec<RoomMessage>, bool) {
        let Some(r) = self.rooms.get(room) else {
            return (Vec::new(), false);
        };
        let limit = limit as usize;
        match page {
            Page::Before(b) => {
                let below: Vec<&RoomMessage> = r.recent.iter().filter(|m| m.offset < b).collect();
                let skip = below.len().saturating_sub(limit);
                (
                    below[skip..].iter().map(|m| (*m).clone()).collect(),
                    skip > 0,
                )
            }
            Page::After(a) => {
                let above: Vec<&RoomMessage> = r.recent.iter().filter(|m| m.offset > a).collect();
                let more = above.len() > limit;
                (above.into_iter().take(limit).cloned().collect(), more)
            }
        }
    }

    /// Answers a store request ([`Request::Store`](super::Request::Store)
    /// or [`Request::History`](super::Request::History)); `None` for
    /// password work.
    pub fn answer(&mut self, request: &super::Request) -> Option<super::Response> {
        match request {
            // Made meanwhile (by another node of a cluster sharing this
            // store): joined, and given as it is.
            super::Request::Store {
                id,
                op: StoreOp::CreateRoom { room, owner, .. },
            } if self.rooms.contains_key(room) => {
                self.apply(&StoreOp::Join {
                    room: room.clone(),
                    user: owner.clone(),
                });
                let room = alloc::boxed::Box::new(self.rooms.get(room)?.clone());
                Some(super::Response::RoomFound { id: *id, room })
            }
            super::Request::Store { id, op } => {
                self.apply(op);
                Some(super::Response::Stored {
                    id: *id,
                    result: Ok(()),
                })
            }
            super::Request::History {
                id,
                room,
                page,
                limit,
            } => Some(super::Response::History {
                id: *id,
                result: Ok(self.page(room, *page, *limit)),
            }),
            _ => None,
        }
    }

    /// What a restarted server loads: every room with its latest `keep`
    /// messages, and every waiting direct message.
    pub fn snapshot(&self, keep: usize) -> Snapshot {
        Snapshot {
            rooms: self
                .rooms
                .values()
                .map(|r| {
                    let mut r = r.clone();
                    let skip = r.recent.len().saturating_sub(keep);
                    r.recent.drain(..skip);
                    r
                })
                .collect(),
            offline: self.offline.values().cloned().collect(),
            audit: self.audit[self.audit.len().saturating_sub(AUDIT_MEMORY)..].to_vec(),
            bans: self.bans.values().cloned().collect(),
            registration: self.registration,
            invites: self.invites.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;

    fn message(offset: u64, time: u64) -> RoomMessage {
        RoomMessage {
            offset,
            from: "alice".to_string(),
            text: format!("m{offset}"),
            time,
        }
    }

    fn room_with(store: &mut MemoryStore, n: u64) {
        store.apply(&StoreOp::CreateRoom {
            room: "#r".to_string(),
            epoch: "e".to_string(),
            owner: "alice".to_string(),
            time: 0,
        });
        for o in 1..=n {
            store.apply(&StoreOp::Append {
                room: "#r".to_string(),
                message: message(o, o * 1000),
            });
        }
    }

    #[test]
    fn retention_keeps_the_latest_and_none_too_old() {
        let mut store = MemoryStore::new(Retention {
            max_messages: 5,
            max_age_ms: 1_000_000,
        });
        room_with(&mut store, 8);
        let r = &store.snapshot(100).rooms[0];
        assert_eq!(r.last_offset, 8);
        assert_eq!(
            r.recent.iter().map(|m| m.offset).collect::<Vec<_>>(),
            [4, 5, 6, 7, 8]
        );
        // By age: at time 10,000 ms with a 3,500 ms limit, 7 and later stay.
        let mut store = MemoryStore::new(Retention {
            max_messages: 100,
            max_age_ms: 3_500,
        });
        room_with(&mut store, 10);
        let kept: Vec<u64> = store.snapshot(100).rooms[0]
            .recent
            .iter()
            .map(|m| m.offset)
            .collect();
        assert_eq!(kept, [7, 8, 9, 10]);
    }

    #[test]
    fn pages_go_backwards_and_forwards_and_say_whether_more_remain() {
        let mut store = MemoryStore::default();
        room_with(&mut store, 10);
        let offsets = |(page, more): (Vec<RoomMessage>, bool)| {
            (page.iter().map(|m| m.offset).collect::<Vec<_>>(), more)
        };
        assert_eq!(
            offsets(store.page("#r", Page::Before(6), 3)),
            (vec![3, 4, 5], true)
        );
        assert_eq!(
            offsets(store.page("#r", Page::Before(3), 5)),
            (vec![1, 2], false)
        );
        assert_eq!(
            offsets(store.page("#r", Page::After(7), 2)),
            (vec![8, 9], true)
        );
        assert_eq!(
            offsets(store.page("#r", Page::After(8), 5)),
            (vec![9, 10], false)
        );
        assert_eq!(
            offsets(store.page("#none", Page::After(0), 5)),
            (vec![], false)
        );
    }

    #[test]
    fn a_snapshot_holds_what_a_restarted_server_needs() {
        let mut store = MemoryStore::default();
        room_with(&mut store, 4);
        store.apply(&StoreOp::Join {
            room: "#r".to_string(),
            user: "bob".to_string(),
        });
        store.apply(&StoreOp::Join {
            room: "#r".to_string(),
            user: "bob".to_string(),
        });
        store.apply(&StoreOp::SetTopic {
            room: "#r".to_string(),
            topic: "t".to_string(),
        });
        for id in [3, 1, 2] {
            store.apply(&StoreOp::PutOffline(OfflineMessage {
                id,
                from: "alice".to_string(),
                to: "bob".to_string(),
                text: "x".to_string(),
                time: 0,
            }));
        }
        store.apply(&StoreOp::RemoveOffline {
            to: "bob".to_string(),
            id: 2,
        });
        let s = store.snapshot(2);
        assert_eq!(s.rooms[0].members, ["alice", "bob"]);
        assert_eq!(s.rooms[0].topic, "t");
        assert_eq!(s.rooms[0].recent.len(), 2, "only the latest `keep`");
        assert_eq!(s.rooms[0].last_offset, 4);
        assert_eq!(s.offline.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 3]);
        store.apply(&StoreOp::DeleteRoom {
            room: "#r".to_string(),
        });
        assert!(store.snapshot(2).rooms.is_empty());
    }
}
