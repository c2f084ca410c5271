//! [`ClusterMessage`]: what one node publishes for the others, as JSON.

use super::super::store::RoomRoles;
use super::super::*;
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
