//! The Redis schema: the names of the keys the nodes share, and the
//! scripts that change them atomically.

use super::*;

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
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Jobs waiting for the writer; more are dropped (publications) or refused
/// (registrations).
pub(super) const WRITER_QUEUE: usize = 65_536;
/// Most jobs the writer sends in one pipeline.
pub(super) const PIPELINE: usize = 512;

/// A counter: each start of a node takes the next number, which makes the
/// ids of the direct messages it stores unique across the cluster.
pub const NODE_SEQ: &str = "udpchat:node_seq";
/// Ids of stored direct messages per start of a node: 2^40.
pub(super) const OFFLINE_ID_BITS: u32 = 40;

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
pub(super) const REGISTER: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0";

/// Changes an account that exists, and tells the nodes: KEYS[1] the
/// accounts hash, KEYS[2] the channel; ARGV[1] the lowercase name, ARGV[2]
/// the account, ARGV[3] the `account_changed` message. 1 if it existed.
pub(super) const CHANGE_ACCOUNT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0";

/// Deletes an account, and tells the nodes: KEYS[1] the accounts hash,
/// KEYS[2] the channel; ARGV[1] the lowercase name, ARGV[2] the
/// `account_deleted` message. 1 if it existed.
pub(super) const DELETE_ACCOUNT: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', KEYS[2], ARGV[2])
  return 1
end
return 0";

/// Most old messages one append drops from a room's stream: 100.
pub(super) const TRIM_PER_APPEND: usize = 100;

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
pub(super) const APPEND: &str = r"
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
pub(super) const CREATE_ROOM: &str = r"
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
