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
use super::*;

mod message;
mod rooms;

pub use message::ClusterMessage;

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
            self.end_replaced(now, old);
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
mod tests;
