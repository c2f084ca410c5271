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

/// The pub/sub channel every node publishes on and subscribes to.
pub const CHANNEL: &str = "udpchat:chat";
/// The hash of accounts: lowercase name to the account as JSON.
pub const ACCOUNTS: &str = "udpchat:accounts";
/// The set of nodes that started and were not noticed gone.
pub const NODES: &str = "udpchat:nodes";

/// The channel a node's lease thread publishes its heartbeat on, heard
/// by its own subscriber only: the time it takes to come back is the
/// broker's lag for this node.
pub fn heartbeat_channel(node: &str) -> String {
    format!("udpchat:heartbeat:{node}")
}
/// How long a node's lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a node renews its lease and looks at the others'.
pub const LEASE_RENEW: Duration = Duration::from_secs(1);
/// How long a connection attempt or a command may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Jobs waiting for the writer; more are dropped (publications) or refused
/// (registrations).
const WRITER_QUEUE: usize = 65_536;
/// Most jobs the writer sends in one pipeline.
const PIPELINE: usize = 512;

/// A counter: each start of a node takes the next number, which makes the
/// ids of the direct messages it stores unique across the cluster.
pub const NODE_SEQ: &str = "udpchat:node_seq";
/// Ids of stored direct messages per start of a node: 2^40.
const OFFLINE_ID_BITS: u32 = 40;

/// The hash of the direct messages waiting for a user (lowercase name):
/// id to the `offline` message (JSON) that published it.
pub fn offline_key(user: &str) -> String {
    format!("udpchat:offline:{}", username_key(user))
}

/// The key of a node's lease.
pub fn lease_key(node: &str) -> String {
    format!("udpchat:node:{node}")
}

/// The hash of the users logged in on a node: lowercase name to name.
pub fn presence_key(node: &str) -> String {
    format!("udpchat:presence:{node}")
}

/// The hash of the users logged in on node `node` who are away:
/// lowercase name to away text (same TTL as the presence hash).
pub fn away_key(node: &str) -> String {
    format!("udpchat:away:{node}")
}

/// Registers an account atomically across nodes: KEYS[1] the accounts
/// hash, KEYS[2] the channel; ARGV[1] the lowercase name, ARGV[2] the
/// account, ARGV[3] the `account` message. 1 if it was new.
const REGISTER: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0";

/// Changes an account that exists, and tells the nodes: KEYS[1] the
/// accounts hash, KEYS[2] the channel; ARGV[1] the lowercase name, ARGV[2]
/// the account, ARGV[3] the `account_changed` message. 1 if it existed.
const CHANGE_ACCOUNT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0";

/// Deletes an account, and tells the nodes: KEYS[1] the accounts hash,
/// KEYS[2] the channel; ARGV[1] the lowercase name, ARGV[2] the
/// `account_deleted` message. 1 if it existed.
const DELETE_ACCOUNT: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', KEYS[2], ARGV[2])
  return 1
end
return 0";

/// Most old messages one append drops from a room's stream: 100.
const TRIM_PER_APPEND: usize = 100;

/// The publisher named in the messages of `chatserver accounts --cluster`
/// (no node can have this name: it has a space).
pub const ACCOUNTS_TOOL: &str = "chatserver accounts";

/// Appends a room message: KEYS[1] the room's hash, KEYS[2] its stream,
/// KEYS[3] the channel; ARGV: the stream's length kept, from, text, time,
/// node, room, the age kept in ms, the most old messages to drop. Gives the message the room's next
/// offset (its stream id is `OFFSET-1`), drops the oldest messages that
/// are older than the age kept, counted back from this one (at most
/// [`TRIM_PER_APPEND`] of them, so that a script stays short; the next
/// appends take the rest), publishes it, and returns the offset.
const APPEND: &str = r"
local off = redis.call('HINCRBY', KEYS[1], 'last_offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], off .. '-1',
  'from', ARGV[2], 'text', ARGV[3], 'time', ARGV[4])
local oldest = tonumber(ARGV[4]) - tonumber(ARGV[7])
for _ = 1, tonumber(ARGV[8]) do
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if not first then break end
  local t = nil
  for i = 1, #first[2], 2 do
    if first[2][i] == 'time' then t = tonumber(first[2][i + 1]) end
  end
  if t == nil or t >= oldest then break end
  redis.call('XDEL', KEYS[2], first[1])
end
redis.call('PUBLISH', KEYS[3], cjson.encode({kind = 'room_message', node = ARGV[5],
  room = ARGV[6], offset = off, from = ARGV[2], text = ARGV[3], time = tonumber(ARGV[4])}))
return off";

/// Makes a room unless it exists, and adds its owner as a member either
/// way: KEYS[1] the room's hash, KEYS[2] its members, KEYS[3] the set of
/// rooms; ARGV: room, epoch, owner, time, the owner's lowercase name. 1 if
/// it was made; 0 if it was there already (another node made it), and the
/// writer then reads the room as Redis has it for the node to take.
const CREATE_ROOM: &str = r"
redis.call('HSET', KEYS[2], ARGV[5], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'owner', ARGV[3], 'topic', '',
  'created', ARGV[4], 'last_offset', 0)
return 1";

/// The set of rooms.
pub const ROOMS: &str = "udpchat:rooms";

/// A room's hash: epoch, owner, topic, created, last_offset.
pub fn room_key(room: &str) -> String {
    format!("udpchat:room:{room}")
}

/// A room's members: lowercase name to name.
pub fn members_key(room: &str) -> String {
    format!("udpchat:room:{room}:members")
}

/// A room's history: a stream whose ids are `OFFSET-1`.
pub fn stream_key(room: &str) -> String {
    format!("udpchat:room:{room}:stream")
}

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

/// Every account the cluster at `url` keeps (to export them).
///
/// # Errors
/// When Redis cannot be reached or answers with an error.
pub fn accounts(url: &str) -> anyhow::Result<Vec<UserRecord>> {
    let client = redis::Client::open(url)?;
    let mut con = connect(&client)?;
    Ok(read_accounts(&mut con)?)
}

/// Suspends an account or lifts its suspension (`op`), as `node`: read,
/// changed, and written back with [`CHANGE_ACCOUNT`]. False if there is
/// no such account.
fn change_suspension(
    con: &mut redis::Connection,
    script: &redis::Script,
    node: &str,
    op: &AccountOp,
) -> redis::RedisResult<bool> {
    let (name, suspended) = match op {
        AccountOp::Suspend { name, suspension } => {
            (name, Some(StoredSuspension::from_core(suspension)))
        }
        AccountOp::Unsuspend { name } => (name, None),
    };
    let json: Option<String> = redis::cmd("HGET")
        .arg(ACCOUNTS)
        .arg(username_key(name))
        .query(con)?;
    let Some(mut record) = json.and_then(|j| serde_json::from_str::<UserRecord>(&j).ok()) else {
        return Ok(false);
    };
    record.suspended = suspended;
    write_account(con, script, node, &record)
}

/// Writes `record` over the account it names, if there is one, and
/// publishes `account_changed` as `node`, in one script.
fn write_account(
    con: &mut redis::Connection,
    script: &redis::Script,
    node: &str,
    record: &UserRecord,
) -> redis::RedisResult<bool> {
    let json = serde_json::to_string(record).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Client, "account", e.to_string()))
    })?;
    let message = ClusterMessage::AccountChanged {
        node: node.to_string(),
        name: record.name.clone(),
        password_hash: record.password_hash.clone(),
        suspended: record.suspended.as_ref().map(StoredSuspension::to_core),
    }
    .encode();
    let changed: i64 = script
        .key(ACCOUNTS)
        .key(CHANNEL)
        .arg(username_key(&record.name))
        .arg(json)
        .arg(message)
        .invoke(con)?;
    Ok(changed == 1)
}

/// The cluster's accounts, for `chatserver accounts --cluster`: read at
/// open; each change is one script that also tells the running nodes
/// (`account`, `account_changed`, `account_deleted`), so that a new
/// password holds from the next login on any node and a suspension or a
/// deletion ends the account's session wherever it is.
pub struct AccountsHash {
    con: redis::Connection,
    users: Vec<UserRecord>,
}

impl AccountsHash {
    /// Reads the accounts of the cluster at `url`.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn open(url: &str) -> anyhow::Result<AccountsHash> {
        let client = redis::Client::open(url)?;
        let mut con = connect(&client)?;
        let mut users = read_accounts(&mut con)?;
        users.sort_by_key(|u| username_key(&u.name));
        Ok(AccountsHash { con, users })
    }

    /// Every account, by name.
    pub fn users(&self) -> &[UserRecord] {
        &self.users
    }

    /// The account `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&UserRecord> {
        let key = username_key(name);
        self.users.iter().find(|u| username_key(&u.name) == key)
    }

    /// Reads the accounts again.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let mut users = read_accounts(&mut self.con)?;
        users.sort_by_key(|u| username_key(&u.name));
        self.users = users;
        Ok(())
    }

    /// Adds `record` unless the name is taken (false).
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn add(&mut self, record: UserRecord) -> anyhow::Result<bool> {
        let message = ClusterMessage::Account {
            node: ACCOUNTS_TOOL.to_string(),
            name: record.name.clone(),
            password_hash: record.password_hash.clone(),
        }
        .encode();
        let added: i64 = redis::Script::new(REGISTER)
            .key(ACCOUNTS)
            .key(CHANNEL)
            .arg(username_key(&record.name))
            .arg(serde_json::to_string(&record)?)
            .arg(message)
            .invoke(&mut self.con)?;
        if added == 1 {
            self.users.push(record);
        }
        Ok(added == 1)
    }

    /// Writes `record` over the account it names (false: there is none).
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn change(&mut self, record: UserRecord) -> anyhow::Result<bool> {
        let script = redis::Script::new(CHANGE_ACCOUNT);
        let changed = write_account(&mut self.con, &script, ACCOUNTS_TOOL, &record)?;
        let key = username_key(&record.name);
        if let Some(u) = self.users.iter_mut().find(|u| username_key(&u.name) == key) {
            *u = record;
        }
        Ok(changed)
    }

    /// Deletes the account `name` (case-insensitive); its record, or none
    /// if there was none.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn remove(&mut self, name: &str) -> anyhow::Result<Option<UserRecord>> {
        let key = username_key(name);
        let Some(at) = self.users.iter().position(|u| username_key(&u.name) == key) else {
            return Ok(None);
        };
        let message = ClusterMessage::AccountDeleted {
            node: ACCOUNTS_TOOL.to_string(),
            name: self.users[at].name.clone(),
        }
        .encode();
        let removed: i64 = redis::Script::new(DELETE_ACCOUNT)
            .key(ACCOUNTS)
            .key(CHANNEL)
            .arg(&key)
            .arg(message)
            .invoke(&mut self.con)?;
        let record = self.users.remove(at);
        Ok((removed == 1).then_some(record))
    }
}

/// A connection with timeouts.
fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// Every account in Redis; one that does not parse is logged and left out.
fn read_accounts(con: &mut redis::Connection) -> redis::RedisResult<Vec<UserRecord>> {
    let all: HashMap<String, String> = redis::cmd("HGETALL").arg(ACCOUNTS).query(con)?;
    Ok(all
        .into_iter()
        .filter_map(
            |(key, json)| match serde_json::from_str::<UserRecord>(&json) {
                Ok(u) => Some(u),
                Err(e) => {
                    warn!(account = %key, error = %e, "unreadable account in Redis; left out");
                    None
                }
            },
        )
        .collect())
}

/// A room message from a stream entry, if it is one.
fn stream_message(entry: &redis::streams::StreamId) -> Option<RoomMessage> {
    let offset = entry.id.split('-').next()?.parse().ok()?;
    Some(RoomMessage {
        offset,
        from: entry.get("from")?,
        text: entry.get("text")?,
        time: entry.get("time")?,
    })
}

/// Every room, with its latest `keep` messages.
fn read_rooms(con: &mut redis::Connection, keep: usize) -> redis::RedisResult<Vec<RoomRecord>> {
    let names: Vec<String> = redis::cmd("SMEMBERS").arg(ROOMS).query(con)?;
    let mut rooms = Vec::new();
    for name in names {
        rooms.push(read_room(con, name, keep)?);
    }
    Ok(rooms)
}

/// The room `name`, with its latest `keep` messages.
fn read_room(
    con: &mut redis::Connection,
    name: String,
    keep: usize,
) -> redis::RedisResult<RoomRecord> {
    {
        let meta: HashMap<String, String> =
            redis::cmd("HGETALL").arg(room_key(&name)).query(con)?;
        let members: HashMap<String, String> =
            redis::cmd("HGETALL").arg(members_key(&name)).query(con)?;
        let latest: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(stream_key(&name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(keep)
            .query(con)?;
        let mut recent: Vec<RoomMessage> = latest.ids.iter().filter_map(stream_message).collect();
        recent.reverse();
        let field = |k: &str| meta.get(k).cloned().unwrap_or_default();
        let mut members: Vec<String> = members.into_values().collect();
        members.sort_by_key(|m| username_key(m));
        Ok(RoomRecord {
            epoch: field("epoch"),
            owner: field("owner"),
            topic: field("topic"),
            created: field("created").parse().unwrap_or(0),
            last_offset: field("last_offset").parse().unwrap_or(0),
            roles: decode_roles(&field("roles")),
            members,
            recent,
            name,
        })
    }
}

/// A page of a room's history, oldest first, and whether there is more
/// in that direction.
fn read_page(
    con: &mut redis::Connection,
    room: &str,
    page: Page,
    limit: u32,
) -> redis::RedisResult<(Vec<RoomMessage>, bool)> {
    let limit = limit as usize;
    let reply: redis::streams::StreamRangeReply = match page {
        Page::Before(b) => redis::cmd("XREVRANGE")
            .arg(stream_key(room))
            .arg(format!("({b}-1"))
            .arg("-")
            .arg("COUNT")
            .arg(limit + 1)
            .query(con)?,
        Page::After(a) => redis::cmd("XRANGE")
            .arg(stream_key(room))
            .arg(format!("({a}-1"))
            .arg("+")
            .arg("COUNT")
            .arg(limit + 1)
            .query(con)?,
    };
    let mut messages: Vec<RoomMessage> = reply.ids.iter().filter_map(stream_message).collect();
    let more = messages.len() > limit;
    messages.truncate(limit);
    if let Page::Before(_) = page {
        messages.reverse();
    }
    Ok((messages, more))
}

/// Every direct message waiting for an offline user, oldest first.
fn read_offline(con: &mut redis::Connection) -> redis::RedisResult<Vec<OfflineMessage>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("udpchat:offline:*")
            .arg("COUNT")
            .arg(1000)
            .query(con)?;
        keys.extend(found);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut all = Vec::new();
    for key in keys {
        let values: Vec<Vec<u8>> = redis::cmd("HVALS").arg(&key).query(con)?;
        for v in values {
            match ClusterMessage::decode(&v) {
                Ok(ClusterMessage::Offline {
                    id,
                    from,
                    to,
                    text,
                    time,
                    ..
                }) => all.push(OfflineMessage {
                    id,
                    from,
                    to,
                    text,
                    time,
                }),
                _ => warn!(%key, "unreadable stored direct message in Redis; left out"),
            }
        }
    }
    all.sort_by_key(|m| m.id);
    Ok(all)
}

/// Who is online on the live nodes other than `me`: (node, name).
/// Users online on the other live nodes as (node, name), and those of
/// them who are away as (name, away text).
type Presence = (Vec<(String, String)>, Vec<(String, String)>);

fn read_presence(con: &mut redis::Connection, me: &str) -> redis::RedisResult<Presence> {
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(NODES).query(con)?;
    let mut users = Vec::new();
    let mut away = Vec::new();
    for node in nodes.into_iter().filter(|n| n != me) {
        let alive: bool = redis::cmd("EXISTS").arg(lease_key(&node)).query(con)?;
        if !alive {
            continue;
        }
        let here: HashMap<String, String> =
            redis::cmd("HGETALL").arg(presence_key(&node)).query(con)?;
        let mut texts: HashMap<String, String> =
            redis::cmd("HGETALL").arg(away_key(&node)).query(con)?;
        for (key, name) in here {
            if let Some(text) = texts.remove(&key) {
                away.push((name.clone(), text));
            }
            users.push((node.clone(), name));
        }
    }
    Ok((users, away))
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

struct Writer<W> {
    client: redis::Client,
    /// Messages kept per room's stream (about: `MAXLEN ~`).
    max_messages: u64,
    /// The age of a room's oldest message kept, in ms.
    max_age_ms: u64,
    /// Each room's latest messages the server keeps in memory.
    room_memory: usize,
    con: Option<redis::Connection>,
    node: String,
    events: Sender<Event>,
    wake: W,
    connected: Arc<AtomicBool>,
}

impl<W: Fn()> Writer<W> {
    fn run(mut self, jobs: &Receiver<Job>) {
        let register = redis::Script::new(REGISTER);
        let append = redis::Script::new(APPEND);
        let create_room = redis::Script::new(CREATE_ROOM);
        let change_account = redis::Script::new(CHANGE_ACCOUNT);
        let mut batch = Vec::with_capacity(PIPELINE);
        while let Ok(first) = jobs.recv() {
            batch.push(first);
            while batch.len() < PIPELINE {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // Writes and publications go in one pipeline; a job that needs
            // its own answer (a script, a read) sends what came before it
            // first, so that Redis sees every job in order.
            let mut pipe = redis::pipe();
            let mut stores = Vec::new();
            for job in batch.drain(..) {
                let answer = match job {
                    Job::Store {
                        id,
                        op: StoreOp::Append { room, message },
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self.append(&append, &room, &message);
                        Event::Appended { id, result }
                    }
                    Job::Store {
                        id,
                        op:
                            StoreOp::CreateRoom {
                                room,
                                epoch,
                                owner,
                                time,
                            },
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        match self.create_room(&create_room, &room, &epoch, &owner, time) {
                            Ok(None) => Event::Stored { id, result: Ok(()) },
                            Ok(Some(room)) => Event::RoomFound { id, room },
                            Err(e) => Event::Stored { id, result: Err(e) },
                        }
                    }
                    Job::Store { id, op } => {
                        self.stage(&mut pipe, op);
                        stores.push(id);
                        continue;
                    }
                    Job::Publish(m) => {
                        self.stage_publish(&mut pipe, &m);
                        continue;
                    }
                    Job::Register { id, name, hash } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self.register(&register, &name, &hash);
                        Event::Registered { id, result }
                    }
                    Job::Account { id, op } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let node = self.node.clone();
                        let result = self
                            .with_connection(|con| {
                                change_suspension(con, &change_account, &node, &op)
                            })
                            .map_err(|e| {
                                warn!(error = %e, "could not change an account in Redis");
                                e.to_string()
                            })
                            .and_then(|changed| {
                                if changed {
                                    Ok(())
                                } else {
                                    Err("no such account in the cluster".to_string())
                                }
                            });
                        Event::Stored { id, result }
                    }
                    Job::History {
                        id,
                        room,
                        page,
                        limit,
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self
                            .with_connection(|con| read_page(con, &room, page, limit))
                            .map_err(|e| e.to_string());
                        Event::History { id, result }
                    }
                };
                if self.events.send(answer).is_err() {
                    return;
                }
                (self.wake)();
            }
            if !self.send(&mut pipe, &mut stores) {
                return;
            }
        }
    }

    /// Sends what `pipe` holds and answers the store requests in it; false
    /// once the event loop is gone.
    fn send(&mut self, pipe: &mut redis::Pipeline, stores: &mut Vec<u64>) -> bool {
        if pipe.is_empty() {
            return true;
        }
        let sent = self.with_connection(|con| pipe.query::<()>(con));
        pipe.clear();
        if let Err(e) = &sent {
            warn!(error = %e, "could not write to the cluster");
        }
        for id in stores.drain(..) {
            let result = sent.as_ref().copied().map_err(ToString::to_string);
            if self.events.send(Event::Stored { id, result }).is_err() {
                return false;
            }
            (self.wake)();
        }
        true
    }

    /// Adds a publication (and this node's presence with it) to `pipe`.
    fn stage_publish(&self, pipe: &mut redis::Pipeline, m: &ClusterMessage) {
        match m {
            ClusterMessage::Login { user, .. } => {
                pipe.cmd("HSET")
                    .arg(presence_key(&self.node))
                    .arg(username_key(user))
                    .arg(user)
                    .ignore();
            }
            ClusterMessage::Logout { user, .. } => {
                pipe.cmd("HDEL")
                    .arg(presence_key(&self.node))
                    .arg(username_key(user))
                    .ignore()
                    .cmd("HDEL")
                    .arg(away_key(&self.node))
                    .arg(username_key(user))
                    .ignore();
            }
            ClusterMessage::Away { user, text, .. } => {
                match text {
                    Some(text) => pipe
                        .cmd("HSET")
                        .arg(away_key(&self.node))
                        .arg(username_key(user))
                        .arg(text)
                        .ignore()
                        .cmd("PEXPIRE")
                        .arg(away_key(&self.node))
                        .arg(LEASE.as_millis() as u64)
                        .ignore(),
                    None => pipe
                        .cmd("HDEL")
                        .arg(away_key(&self.node))
                        .arg(username_key(user))
                        .ignore(),
                };
            }
            _ => {}
        }
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(m.encode()).ignore();
    }

    /// Adds a change to `pipe` (with the publication other nodes need).
    fn stage(&self, pipe: &mut redis::Pipeline, op: StoreOp) {
        match op {
            StoreOp::PutOffline(m) => {
                let message = ClusterMessage::offline(&self.node, &m).encode();
                pipe.cmd("HSET")
                    .arg(offline_key(&m.to))
                    .arg(m.id)
                    .arg(&message)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(&message)
                    .ignore();
            }
            StoreOp::RemoveOffline { to, id } => {
                let message = ClusterMessage::OfflineRemoved {
                    node: self.node.clone(),
                    to: to.clone(),
                    id,
                }
                .encode();
                pipe.cmd("HDEL")
                    .arg(offline_key(&to))
                    .arg(id)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(message)
                    .ignore();
            }
            StoreOp::Join { room, user } => {
                pipe.cmd("HSET")
                    .arg(members_key(&room))
                    .arg(username_key(&user))
                    .arg(&user)
                    .ignore();
            }
            StoreOp::Part { room, user } => {
                pipe.cmd("HDEL")
                    .arg(members_key(&room))
                    .arg(username_key(&user))
                    .ignore();
            }
            StoreOp::DeleteRoom { room } => {
                pipe.cmd("SREM")
                    .arg(ROOMS)
                    .arg(&room)
                    .ignore()
                    .cmd("DEL")
                    .arg(room_key(&room))
                    .arg(members_key(&room))
                    .arg(stream_key(&room))
                    .ignore();
            }
            StoreOp::SetTopic { room, topic } => {
                pipe.cmd("HSET")
                    .arg(room_key(&room))
                    .arg("topic")
                    .arg(topic)
                    .ignore();
            }
            StoreOp::SetRoles { room, owner, roles } => {
                pipe.cmd("HSET")
                    .arg(room_key(&room))
                    .arg("owner")
                    .arg(owner)
                    .arg("roles")
                    .arg(encode_roles(&roles))
                    .ignore();
            }
            // Sent on their own, answered (see Writer::run); the others
            // are kept by the node's own chat store (see Cluster::keeps).
            StoreOp::Append { .. }
            | StoreOp::CreateRoom { .. }
            | StoreOp::Audit(_)
            | StoreOp::BanAddress(_)
            | StoreOp::UnbanAddress { .. }
            | StoreOp::Registration(_)
            | StoreOp::AddInvite(_)
            | StoreOp::RemoveInvite { .. } => {}
        }
    }

    /// Appends a room message: Redis gives it the room's next offset,
    /// keeps it in the room's stream and publishes it, in one script.
    fn append(
        &mut self,
        script: &redis::Script,
        room: &str,
        message: &RoomMessage,
    ) -> Result<u64, String> {
        let max = self.max_messages;
        let max_age = self.max_age_ms;
        let node = self.node.clone();
        self.with_connection(|con| {
            script
                .key(room_key(room))
                .key(stream_key(room))
                .key(CHANNEL)
                .arg(max)
                .arg(&message.from)
                .arg(&message.text)
                .arg(message.time)
                .arg(&node)
                .arg(room)
                .arg(max_age)
                .arg(TRIM_PER_APPEND)
                .invoke::<u64>(con)
        })
        .map_err(|e| {
            warn!(error = %e, %room, "could not append a room message in Redis");
            e.to_string()
        })
    }

    /// Makes a room, or joins `owner` to the room another node made
    /// meanwhile, which it then reads (`Some`): a room is never replaced,
    /// its history stays.
    fn create_room(
        &mut self,
        script: &redis::Script,
        room: &str,
        epoch: &str,
        owner: &str,
        time: u64,
    ) -> Result<Option<RoomRecord>, String> {
        let keep = self.room_memory;
        self.with_connection(|con| {
            let made: i64 = script
                .key(room_key(room))
                .key(members_key(room))
                .key(ROOMS)
                .arg(room)
                .arg(epoch)
                .arg(owner)
                .arg(time)
                .arg(username_key(owner))
                .invoke(con)?;
            if made == 1 {
                return Ok(None);
            }
            info!(%room, "the room was in Redis already; this node takes it as it is there");
            read_room(con, room.to_string(), keep).map(Some)
        })
        .map_err(|e| {
            warn!(error = %e, %room, "could not make a room in Redis");
            e.to_string()
        })
    }

    fn register(
        &mut self,
        script: &redis::Script,
        name: &str,
        hash: &str,
    ) -> Result<String, String> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = UserRecord {
            name: name.to_string(),
            password_hash: hash.to_string(),
            created,
            suspended: None,
        };
        let json = serde_json::to_string(&record).map_err(|e| e.to_string())?;
        let message = ClusterMessage::Account {
            node: self.node.clone(),
            name: name.to_string(),
            password_hash: hash.to_string(),
        }
        .encode();
        let key = username_key(name);
        let added = self.with_connection(|con| {
            script
                .key(ACCOUNTS)
                .key(CHANNEL)
                .arg(&key)
                .arg(&json)
                .arg(&message)
                .invoke::<i64>(con)
        });
        match added {
            Ok(1) => Ok(hash.to_string()),
            Ok(_) => Err(format!("{name} was just registered on another node")),
            Err(e) => {
                warn!(error = %e, user = name, "could not store a new account in Redis");
                Err(format!("the account store is unreachable: {e}"))
            }
        }
    }

    /// Runs `f` on the connection, connecting first if there is none; a
    /// failed connection is dropped (the next call connects again).
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        if self.con.is_none() {
            match connect(&self.client) {
                Ok(con) => self.con = Some(con),
                Err(e) => {
                    set_connected(&self.connected, false, Some(&e));
                    return Err(e);
                }
            }
        }
        let Some(con) = self.con.as_mut() else {
            unreachable!("connected above")
        };
        let result = f(con);
        if let Err(e) = &result
            && (e.is_io_error() || e.is_connection_dropped() || e.is_timeout())
        {
            self.con = None;
            set_connected(&self.connected, false, Some(e));
        }
        result
    }
}

/// What the subscriber thread works with.
struct Heard<'a, W> {
    node: &'a str,
    /// Each room's latest messages to read into a snapshot.
    keep: usize,
    events: &'a Sender<Event>,
    wake: &'a W,
    connected: &'a AtomicBool,
    health: &'a Health,
    /// What heartbeats count their microseconds from.
    epoch: std::time::Instant,
}

/// The subscriber thread: subscribes, hands the loop a snapshot, forwards
/// every message; on any failure, waits a second and starts again.
fn subscribe<W: Fn()>(client: &redis::Client, heard: &Heard<'_, W>) {
    loop {
        let result = subscribe_once(client, heard);
        heard.health.lag_micros.store(u64::MAX, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(e) => {
                set_connected(heard.connected, false, Some(&e));
                thread::sleep(LEASE_RENEW);
            }
        }
    }
}

/// One subscription, until it fails (Err) or the loop is gone (Ok).
fn subscribe_once<W: Fn()>(client: &redis::Client, heard: &Heard<'_, W>) -> redis::RedisResult<()> {
    let Heard {
        node,
        keep,
        events,
        wake,
        connected,
        health,
        epoch,
    } = *heard;
    let heartbeats = heartbeat_channel(node);
    let mut con = connect(client)?;
    let mut reader = connect(client)?;
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe(CHANNEL)?;
    pubsub.subscribe(&heartbeats)?;
    // Subscribed first, then read: nothing published meanwhile is missed.
    let accounts = read_accounts(&mut reader)?;
    let (users, away) = read_presence(&mut reader, node)?;
    let snapshot = Event::Snapshot {
        accounts,
        users,
        away,
        offline: read_offline(&mut reader)?,
        rooms: read_rooms(&mut reader, keep)?,
    };
    drop(reader);
    if events.send(snapshot).is_err() {
        return Ok(());
    }
    wake();
    set_connected(connected, true, None);
    // A read timeout only lets a dead connection be noticed; the
    // subscription stays.
    pubsub.set_read_timeout(Some(LEASE_RENEW))?;
    loop {
        let msg = match pubsub.get_message() {
            Ok(msg) => msg,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        if msg.get_channel_name() == heartbeats {
            // Sent after `epoch`, by the lease thread of this process.
            if let Some(sent) = std::str::from_utf8(msg.get_payload_bytes())
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
            {
                let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
                health.lag_micros.store(
                    now.saturating_sub(sent).min(u64::MAX - 1),
                    Ordering::Relaxed,
                );
            }
            continue;
        }
        match ClusterMessage::decode(msg.get_payload_bytes()) {
            // A node's own room messages come back to it: it relays them
            // in the order of their offsets, with the others'.
            Ok(m) if m.node() == node && !matches!(m, ClusterMessage::RoomMessage { .. }) => {}
            Ok(m) => {
                if events.send(Event::Message(m)).is_err() {
                    return Ok(());
                }
                wake();
            }
            Err(e) => warn!(error = %e, "unreadable message on the cluster channel"),
        }
    }
}

/// The lease thread: renews this node's lease and presence, and looks for
/// nodes whose lease expired. The node that removes one from [`NODES`]
/// (`SREM` answers 1 to one node only) announces it to all. Each renewal
/// also counts the live nodes and sends a heartbeat to this node's own
/// subscriber (the microseconds since `epoch`).
fn lease(
    client: &redis::Client,
    node: &str,
    events: &Sender<Event>,
    wake: &impl Fn(),
    health: &Health,
    epoch: std::time::Instant,
) {
    let mut con = None;
    let heartbeats = heartbeat_channel(node);
    let node_down = redis::Script::new(NODE_DOWN);
    loop {
        thread::sleep(LEASE_RENEW);
        if con.is_none() {
            con = connect(client).ok();
        }
        let Some(c) = con.as_mut() else { continue };
        let sent = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        let beat = redis::cmd("PUBLISH")
            .arg(&heartbeats)
            .arg(sent)
            .query::<()>(c);
        match beat.and_then(|()| renew(c, node, &node_down)) {
            Ok((live, gone, lapsed)) => {
                health.nodes.store(live, Ordering::Relaxed);
                if lapsed {
                    info!("this node's lease had lapsed; publishing its users again");
                    if events.send(Event::Lapsed).is_err() {
                        return;
                    }
                    wake();
                }
                for down in gone {
                    info!(node = %down, "a node stopped renewing its lease; its users are offline");
                    if events.send(Event::NodeGone(down)).is_err() {
                        return;
                    }
                    wake();
                }
            }
            Err(_) => con = None,
        }
    }
}

/// Takes a node for gone, in one atomic step: only if its lease (KEYS[1])
/// is still missing and this call removes it from the nodes (KEYS[2]), its
/// presence (KEYS[3]) and away texts (KEYS[5]) are deleted and `node_down`
/// (ARGV[2]) published on the channel (KEYS[4]). A node that renews its
/// lease finds itself removed either before (and publishes its users again
/// after the `node_down`) or not at all.
const NODE_DOWN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[3], KEYS[5])
redis.call('PUBLISH', KEYS[4], ARGV[2])
return 1";

/// Renews `node`'s lease and presence; returns how many nodes are live
/// (this one included), the nodes found gone, and whether this node's
/// lease had lapsed or another node had taken it for gone (its users must
/// then be published again: a node that read the presence meanwhile, or
/// applied the `node_down`, left them out).
fn renew(
    con: &mut redis::Connection,
    node: &str,
    node_down: &redis::Script,
) -> redis::RedisResult<(u64, Vec<String>, bool)> {
    let ms = LEASE.as_millis() as u64;
    let (previous, added): (Option<String>, i64) = redis::pipe()
        .cmd("SET")
        .arg(lease_key(node))
        .arg(1)
        .arg("PX")
        .arg(ms)
        .arg("GET")
        .cmd("PEXPIRE")
        .arg(presence_key(node))
        .arg(ms)
        .ignore()
        .cmd("PEXPIRE")
        .arg(away_key(node))
        .arg(ms)
        .ignore()
        .cmd("SADD")
        .arg(NODES)
        .arg(node)
        .query(con)?;
    let lapsed = previous.is_none() || added == 1;
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(NODES).query(con)?;
    let mut gone = Vec::new();
    let mut live = 1;
    for other in nodes.into_iter().filter(|n| n != node) {
        let alive: bool = redis::cmd("EXISTS").arg(lease_key(&other)).query(con)?;
        if alive {
            live += 1;
            continue;
        }
        let down = ClusterMessage::NodeDown {
            node: node.to_string(),
            down: other.clone(),
        }
        .encode();
        let removed: i64 = node_down
            .key(lease_key(&other))
            .key(NODES)
            .key(presence_key(&other))
            .key(CHANNEL)
            .key(away_key(&other))
            .arg(&other)
            .arg(down)
            .invoke(con)?;
        if removed == 1 {
            gone.push(other);
        }
    }
    Ok((live, gone, lapsed))
}

/// A room's roles as the `roles` field of its Redis hash keeps them (JSON).
fn encode_roles(roles: &RoomRoles) -> String {
    serde_json::json!({
        "ops": roles.ops,
        "bans": roles
            .bans
            .iter()
            .map(|b| serde_json::json!({"user": b.user, "until": b.until}))
            .collect::<Vec<_>>(),
        "muted": roles.muted,
        "topic_locked": roles.topic_locked,
        "moderated": roles.moderated,
    })
    .to_string()
}

/// The roles [`encode_roles`] wrote; none when the field is absent or
/// does not parse (a room made before roles existed).
fn decode_roles(text: &str) -> RoomRoles {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Ban {
        user: String,
        until: Option<u64>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Roles {
        ops: Vec<String>,
        bans: Vec<Ban>,
        muted: Vec<String>,
        topic_locked: bool,
        moderated: bool,
    }
    let r: Roles = serde_json::from_str(text).unwrap_or_default();
    RoomRoles {
        ops: r.ops,
        bans: r
            .bans
            .into_iter()
            .map(|b| RoomBan {
                user: b.user,
                until: b.until,
            })
            .collect(),
        muted: r.muted,
        topic_locked: r.topic_locked,
        moderated: r.moderated,
    }
}
