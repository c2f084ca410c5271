//! Direct messages for offline users: stored, delivered after the next
//! login, and removed once the recipient's channel acknowledged them
//! (PROTOCOL.md §5.11).

use super::writes::Write;
use super::*;
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

impl Server {
    /// Direct messages waiting for offline users.
    pub fn offline_count(&self) -> usize {
        self.offline.values().map(VecDeque::len).sum()
    }

    /// Sends the waiting direct messages of `key` not yet sent on `conn`,
    /// marked `offline` when they waited for a login (rather than came
    /// from another node of a cluster while the user was online here).
    pub(super) fn deliver_offline(&mut self, conn: u64, key: &str, offline: bool) {
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
                offline,
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

    /// A direct message to an offline user, or (`online`) to a user online
    /// on another node of a cluster: stored, then confirmed. The store
    /// publishes it to the other nodes; the recipient's delivers it and,
    /// once acknowledged, removes it, as for a user who was offline.
    pub(super) fn store_offline(
        &mut self,
        conn: u64,
        from: String,
        to: String,
        text: String,
        online: bool,
    ) {
        let key = username_key(&to);
        // Waiting for `to`, and from `from` to `to`: those stored and
        // those still being written, so a burst within one commit cannot
        // pass either limit. (Names compare as their keys do: ASCII case
        // folded.)
        let stored = self
            .offline
            .get(&key)
            .into_iter()
            .flatten()
            .map(|w| &w.message);
        let writing = self.writes.values().filter_map(|w| match w {
            Write::Offline { message, .. } if message.to.eq_ignore_ascii_case(&to) => Some(message),
            _ => None,
        });
        let (waiting, from_sender) = stored.chain(writing).fold((0, 0), |(all, mine), m| {
            (
                all + 1,
                mine + usize::from(m.from.eq_ignore_ascii_case(&from)),
            )
        });
        // A user online elsewhere has them waiting until their node saw
        // them acknowledged.
        let state = if online {
            "has not yet received"
        } else {
            "is offline and has"
        };
        if waiting >= self.config.max_offline_per_user {
            self.error(
                conn,
                ErrorCode::InboxFull,
                format!("{to} {state} as many waiting messages as the server keeps"),
            );
            return;
        }
        if from_sender >= self.config.max_offline_per_sender {
            self.error(
                conn,
                ErrorCode::InboxFull,
                format!(
                    "{to} {state} {from_sender} waiting messages from you; wait until they are read"
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
            Some(Write::Offline {
                conn,
                message,
                online,
            }),
        );
    }
}
