//! `chatserver --cluster`: what the nodes of one chat share, in Redis.
//!
//! Three threads, each with its own synchronous connection, talk to the
//! event loop through channels and wake it; the loop never waits on Redis
//! (docs/CLUSTER.md has the whole design):
//!
//! * the writer sends what the server publishes, pipelined, with the
//!   presence hash of this node kept beside it, and registers accounts with
//!   one atomic script (`HSETNX`, then `PUBLISH` only if it set the field);
//!   account changes, room creation (answered with the room Redis has
//!   when it had one) and room messages are scripts too;
//! * the subscriber listens on [`CHANNEL`]; after every (re)subscription it
//!   reads the accounts and who is online on the live nodes, and hands the
//!   loop a [`Event::Snapshot`];
//! * the lease thread renews this node's lease every [`LEASE_RENEW`] and
//!   notices nodes whose lease has expired.
//!
//! Here: the handle the event loop holds ([`Cluster`]) and what the
//! threads tell it ([`Event`]). Beside it: `keys` (the Redis schema: key
//! names and the scripts that change them), `writer`, `subscriber` and
//! `lease` (the three threads), `read` (reading accounts, rooms, offline
//! messages and presence back) and `accounts` (the accounts as
//! `chatserver accounts --cluster` changes them).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tracing::{info, warn};
use udpchat_core::server::store::{
    OfflineMessage, Page, RoomBan, RoomMessage, RoomRecord, RoomRoles, StoreOp,
};
use udpchat_core::server::{AccountOp, ClusterMessage};
use udpchat_core::session::username_key;

use crate::store::{StoredSuspension, UserRecord};

mod accounts;
mod keys;
mod lease;
mod read;
mod subscriber;
mod writer;

pub use accounts::*;
pub use keys::*;
use lease::*;
use read::*;
use subscriber::*;
use writer::*;

/// What the cluster's threads tell the event loop.
#[derive(Debug)]
pub enum Event {
    /// Another node published this.
    Message(ClusterMessage),
    /// After (re)subscribing: every account, who is online on the other
    /// live nodes (node, name), and every stored direct message.
    Snapshot {
        /// Every account.
        accounts: Vec<UserRecord>,
        /// Users online on other nodes.
        users: Vec<(String, String)>,
        /// Of those, the ones away (name, away text).
        away: Vec<(String, String)>,
        /// Direct messages waiting for offline users.
        offline: Vec<OfflineMessage>,
        /// Every room, with its latest messages.
        rooms: Vec<RoomRecord>,
    },
    /// A room message is stored, at this offset, or is not.
    Appended {
        /// The server's request id.
        id: u64,
        /// Its offset, or why it failed.
        result: Result<u64, String>,
    },
    /// A room this node asked to make was in Redis already: the member
    /// was added to it, and here it is as Redis has it.
    RoomFound {
        /// The server's request id.
        id: u64,
        /// The room, with its latest messages.
        room: RoomRecord,
    },
    /// A page of a room's history.
    History {
        /// The server's request id.
        id: u64,
        /// The messages, oldest first, and whether there are more.
        result: Result<(Vec<RoomMessage>, bool), String>,
    },
    /// A store request is done (Redis has it), or failed.
    Stored {
        /// The server's request id.
        id: u64,
        /// Why it failed.
        result: Result<(), String>,
    },
    /// This node's lease thread found the lease of this node gone.
    NodeGone(String),
    /// This node's own lease had lapsed, or another node had taken it for
    /// gone (while Redis was away, say): what the others know of its users
    /// may be out of date, and its presence must be published again.
    Lapsed,
    /// A registration is stored (its hash), or is not (why).
    Registered {
        /// The server's request id.
        id: u64,
        /// The hash, or the error.
        result: Result<String, String>,
    },
}

enum Job {
    Publish(ClusterMessage),
    Store {
        id: u64,
        op: StoreOp,
    },
    History {
        id: u64,
        room: String,
        page: Page,
        limit: u32,
    },
    Register {
        id: u64,
        name: String,
        hash: String,
    },
    Account {
        id: u64,
        op: AccountOp,
    },
}

/// How a node keeps rooms in the cluster.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Messages kept per room (about: streams are trimmed with
    /// `MAXLEN ~`).
    pub max_messages: u64,
    /// How old, in ms, the oldest message of a room may be, counted back
    /// from its latest (`--history-max-days`).
    pub max_age_ms: u64,
    /// Each room's latest messages the server keeps in memory.
    pub room_memory: usize,
}

/// What a node reads from the cluster when it joins.
pub struct Joined {
    /// Every account.
    pub accounts: Vec<UserRecord>,
    /// Every room, with its latest messages.
    pub rooms: Vec<RoomRecord>,
    /// Every direct message waiting for an offline user.
    pub offline: Vec<OfflineMessage>,
    /// The first id of the direct messages this node stores.
    pub first_offline_id: u64,
}

/// What a node's threads measure of the cluster, for the metrics.
#[derive(Debug)]
struct Health {
    /// Nodes whose lease was live at the last renewal, this one included
    /// (0 until the first renewal).
    nodes: AtomicU64,
    /// The latest heartbeat's way through Redis back to this node's
    /// subscriber, in microseconds; [`u64::MAX`] when none came back on
    /// the current subscription.
    lag_micros: AtomicU64,
}

/// What a node knows of the cluster's state, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterStats {
    /// Whether Redis answered the last time a thread asked.
    pub connected: bool,
    /// Nodes with a live lease, this one included.
    pub nodes: u64,
    /// How long the latest heartbeat took from this node through Redis's
    /// pub/sub back to its subscriber: a backlog in Redis's output buffer
    /// or in the subscriber shows here. None until one came back on the
    /// current subscription.
    pub broker_lag: Option<Duration>,
}

/// This node's connection to the cluster.
pub struct Cluster {
    node: String,
    jobs: Sender<Job>,
    events: Receiver<Event>,
    connected: Arc<AtomicBool>,
    health: Arc<Health>,
}

impl Cluster {
    /// Connects to Redis at `url` as the node `node`: reads the accounts,
    /// adds those of `import` that Redis does not have, announces the node
    /// (its users on an earlier run are gone) and starts the threads, which
    /// call `wake` after each event.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn start(
        url: &str,
        node: &str,
        import: &[UserRecord],
        settings: Settings,
        wake: impl Fn() + Clone + Send + 'static,
    ) -> anyhow::Result<(Cluster, Joined)> {
        let client = redis::Client::open(url)?;
        let mut con = connect(&client)?;
        let mut imported = 0;
        for user in import {
            let json = serde_json::to_string(user)?;
            let added: bool = redis::cmd("HSETNX")
                .arg(ACCOUNTS)
                .arg(username_key(&user.name))
                .arg(json)
                .query(&mut con)?;
            imported += usize::from(added);
        }
        if imported > 0 {
            info!(imported, "accounts of the user store added to the cluster");
        }
        let accounts = read_accounts(&mut con)?;
        let offline = read_offline(&mut con)?;
        let rooms = read_rooms(&mut con, settings.room_memory)?;
        let seq: u64 = redis::cmd("INCR").arg(NODE_SEQ).query(&mut con)?;
        let first_offline_id = seq << OFFLINE_ID_BITS;
        let up = ClusterMessage::NodeUp {
            node: node.to_string(),
        }
        .encode();
        redis::pipe()
            .cmd("DEL")
            .arg(presence_key(node))
            .ignore()
            .cmd("DEL")
            .arg(away_key(node))
            .ignore()
            .cmd("SADD")
            .arg(NODES)
            .arg(node)
            .ignore()
            .cmd("SET")
            .arg(lease_key(node))
            .arg(1)
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .ignore()
            .cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(up)
            .ignore()
            .query::<()>(&mut con)?;
        let (jobs_tx, jobs_rx) = bounded(WRITER_QUEUE);
        let (events_tx, events_rx) = bounded(WRITER_QUEUE);
        let connected = Arc::new(AtomicBool::new(true));
        let health = Arc::new(Health {
            nodes: AtomicU64::new(0),
            lag_micros: AtomicU64::new(u64::MAX),
        });
        // Heartbeats carry the microseconds since this instant.
        let epoch = std::time::Instant::now();
        let writer = Writer {
            client: client.clone(),
            max_messages: settings.max_messages,
            max_age_ms: settings.max_age_ms,
            room_memory: settings.room_memory,
            con: Some(con),
            node: node.to_string(),
            events: events_tx.clone(),
            wake: wake.clone(),
            connected: connected.clone(),
        };
        thread::Builder::new()
            .name("cluster-writer".into())
            .spawn(move || writer.run(&jobs_rx))?;
        let (sub_client, sub_node, sub_events, sub_wake) = (
            client.clone(),
            node.to_string(),
            events_tx.clone(),
            wake.clone(),
        );
        let sub_connected = connected.clone();
        let sub_health = health.clone();
        thread::Builder::new()
            .name("cluster-subscriber".into())
            .spawn(move || {
                let heard = Heard {
                    node: &sub_node,
                    keep: settings.room_memory,
                    events: &sub_events,
                    wake: &sub_wake,
                    connected: &sub_connected,
                    health: &sub_health,
                    epoch,
                };
                subscribe(&sub_client, &heard)
            })?;
        let lease_node = node.to_string();
        let lease_health = health.clone();
        thread::Builder::new()
            .name("cluster-lease".into())
            .spawn(move || {
                lease(
                    &client,
                    &lease_node,
                    &events_tx,
                    &wake,
                    &lease_health,
                    epoch,
                )
            })?;
        Ok((
            Cluster {
                node: node.to_string(),
                jobs: jobs_tx,
                events: events_rx,
                connected,
                health,
            },
            Joined {
                accounts,
                rooms,
                offline,
                first_offline_id,
            },
        ))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last time a thread asked.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Redis's state as this node's threads last saw it.
    pub fn stats(&self) -> ClusterStats {
        let lag = self.health.lag_micros.load(Ordering::Relaxed);
        ClusterStats {
            connected: self.is_connected(),
            nodes: self.health.nodes.load(Ordering::Relaxed),
            broker_lag: (lag != u64::MAX).then(|| Duration::from_micros(lag)),
        }
    }

    /// What the threads have for the event loop.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Publishes `message` (and keeps this node's presence hash with it);
    /// false if the writer's queue is full and it was dropped.
    pub fn publish(&self, message: ClusterMessage) -> bool {
        match self.jobs.try_send(Job::Publish(message)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits, at most `timeout`, for the writer to send what is queued
    /// (the last logouts, at shutdown).
    pub fn finish(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.jobs.is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // The batch taken last is being sent.
        thread::sleep(Duration::from_millis(100).min(timeout));
    }

    /// Stores a direct message for an offline user, or removes a delivered
    /// one, and tells the other nodes; answered with [`Event::Stored`].
    /// False if it could not be queued.
    pub fn store(&self, id: u64, op: StoreOp) -> bool {
        self.jobs.try_send(Job::Store { id, op }).is_ok()
    }

    /// Whether the cluster keeps what `op` changes (rooms, their roles
    /// and history, direct messages for offline users); the audit log,
    /// address bans, the registration mode and invite codes stay in the
    /// node's own chat store (docs/CLUSTER.md).
    pub fn keeps(op: &StoreOp) -> bool {
        !matches!(
            op,
            StoreOp::Audit(_)
                | StoreOp::BanAddress(_)
                | StoreOp::UnbanAddress { .. }
                | StoreOp::Registration(_)
                | StoreOp::AddInvite(_)
                | StoreOp::RemoveInvite { .. }
        )
    }

    /// Reads a page of a room's history; answered with
    /// [`Event::History`]. False if it could not be queued.
    pub fn history(&self, id: u64, room: String, page: Page, limit: u32) -> bool {
        self.jobs
            .try_send(Job::History {
                id,
                room,
                page,
                limit,
            })
            .is_ok()
    }

    /// Changes an account (an admin's suspension) where every node reads
    /// accounts, and tells the nodes; answered with [`Event::Stored`].
    /// False if it could not be queued.
    pub fn account(&self, id: u64, op: AccountOp) -> bool {
        self.jobs.try_send(Job::Account { id, op }).is_ok()
    }

    /// Stores a new account unless another node has that name; answered
    /// with [`Event::Registered`]. False if it could not be queued.
    pub fn register(&self, id: u64, name: String, hash: String) -> bool {
        self.jobs.try_send(Job::Register { id, name, hash }).is_ok()
    }
}

/// Logs a change of the connection's state once.
fn set_connected(connected: &AtomicBool, now: bool, error: Option<&redis::RedisError>) {
    if connected.swap(now, Ordering::Relaxed) != now {
        if now {
            info!("Redis is reachable again; the cluster is resynchronised");
        } else {
            warn!(
                error = %error.map(ToString::to_string).unwrap_or_default(),
                "Redis is unreachable: serving this node's sessions only, refusing registrations"
            );
        }
    }
}
