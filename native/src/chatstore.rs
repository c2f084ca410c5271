//! The chat store: rooms, memberships, room history and offline direct
//! messages, `chat_data.redb` by default.
//!
//! The server's core keeps all of this in memory and hands every change to
//! its driver as a [`StoreOp`]; [`ChatStore`] is what the driver writes
//! them to. [`RedbStore`] keeps them in one embedded
//! [redb](https://docs.rs/redb) file; a cluster's store (Redis) is another
//! implementation of the same trait. The semantics of each operation are
//! those of [`MemoryStore`](udpchat_core::server::store::MemoryStore),
//! which the tests here compare against.
//!
//! [`StoreWriter`] runs a store on its own thread: the event loop hands it
//! requests without waiting, it writes everything waiting in one
//! transaction (group commit), and it answers in the order it was asked,
//! once the transaction is durable.
//!
//! # The file (version 1)
//!
//! Four tables, and a fifth holding the format version:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `rooms` | name (`&str`) | JSON `{"epoch","owner","topic","created","last_offset","count"}` |
//! | `members` | (room, user) | `()` |
//! | `messages` | (room, offset) | time (u64, little-endian), sender's length (u8), sender, text (UTF-8) |
//! | `offline` | id (u64) | JSON `{"from","to","text","time"}` |
//! | `meta` | `"version"` | `1` (u64) |
//! | `meta` | `"registration"` | who may register: 0 open (also when absent), 1 closed, 2 by invite |
//! | `audit` | id (u64) | JSON `{"time","by","action","target","reason","until"}` |
//! | `invites` | code (`&str`) | JSON `{"expires","by"}`: an unused invite code |
//!
//! `count` is the number of the room's messages in `messages`, so that
//! retention (the latest `max_messages`, none older than `max_age_ms`
//! before the newest) costs a lookup, not a scan, per message.
//!
//! A missing file is created (mode 0600 on Unix). A file that is not a
//! redb database, is corrupt, is held open by another process, or has
//! another format version makes [`RedbStore::open`] fail with a message
//! naming it; it is never recreated or overwritten.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use udpchat_core::server::Response;
use udpchat_core::server::store::{
    AUDIT_MEMORY, AddressBan, AuditEntry, Invite, OfflineMessage, Page, Retention, RoomBan,
    RoomMessage, RoomRecord, RoomRoles, Snapshot, StoreOp,
};
use udpchat_core::session::RegistrationMode;

/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The default file name, beside the user store.
pub const DATA_FILE: &str = "chat_data.redb";

const ROOMS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("rooms");
const MEMBERS: TableDefinition<'_, (&str, &str), ()> = TableDefinition::new("members");
const MESSAGES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("messages");
const OFFLINE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("offline");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The audit log: entry id → [`AuditRow`] as JSON.
const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// Address bans: the normalised range → [`BanRow`] as JSON.
const BANS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("bans");
/// Unused invite codes: code → [`InviteRow`] as JSON.
const INVITES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("invites");

/// An invite code's row (the code is the key).
#[derive(Serialize, Deserialize)]
struct InviteRow {
    expires: u64,
    by: String,
}

/// The registration mode as `meta` keeps it.
fn registration_number(mode: RegistrationMode) -> u64 {
    match mode {
        RegistrationMode::Open => 0,
        RegistrationMode::Closed => 1,
        RegistrationMode::Invite => 2,
    }
}

/// redb's magic number, the first bytes of every database file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// A store error: what failed, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(redb::Error::from(e).to_string())
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// Where rooms, history and offline messages are kept. Opening one is
/// the implementation's own business (a file, a server address); once
/// open, the driver loads it once and then applies changes and reads
/// pages, from one thread.
pub trait ChatStore: Send + 'static {
    /// Everything the server needs at start: every room with its latest
    /// `keep` messages, and every waiting direct message, oldest first.
    fn load(&self, keep: usize) -> Result<Snapshot, StoreError>;

    /// Applies `ops`, in order, all or none: durable when this returns
    /// `Ok`.
    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError>;

    /// A page of a room's history, oldest first, and whether there is
    /// more in that direction (as
    /// [`MemoryStore::page`](udpchat_core::server::store::MemoryStore::page)).
    fn page(
        &self,
        room: &str,
        page: Page,
        limit: u32,
    ) -> Result<(Vec<RoomMessage>, bool), StoreError>;
}

/// A room's record in the `rooms` table.
#[derive(Serialize, Deserialize)]
struct RoomRow {
    epoch: String,
    owner: String,
    topic: String,
    created: u64,
    last_offset: u64,
    count: u64,
    /// Operators, in the order named (absent in files from before room
    /// roles, as are the fields below).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ops: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bans: Vec<RoomBanRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    muted: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    topic_locked: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    moderated: bool,
}

/// A room ban as stored in its [`RoomRow`].
#[derive(Serialize, Deserialize)]
struct RoomBanRow {
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
}

/// A waiting direct message in the `offline` table (the id is the key).
#[derive(Serialize, Deserialize)]
struct OfflineRow {
    from: String,
    to: String,
    text: String,
    time: u64,
}

/// An audit entry as stored (its id is the key).
#[derive(Serialize, Deserialize)]
struct AuditRow {
    time: u64,
    by: String,
    action: String,
    target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
}

/// An address ban as stored (its range is the key).
#[derive(Serialize, Deserialize)]
struct BanRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    by: String,
    time: u64,
}

/// A room message as stored: its time (8 bytes, little-endian), the
/// length of its sender's name (1 byte), the name, then the text; into `v`,
/// cleared first.
fn encode_message_into(m: &RoomMessage, v: &mut Vec<u8>) {
    let from = m.from.as_bytes();
    let from = &from[..from.len().min(255)];
    v.clear();
    v.reserve(9 + from.len() + m.text.len());
    v.extend_from_slice(&m.time.to_le_bytes());
    v.push(from.len() as u8);
    v.extend_from_slice(from);
    v.extend_from_slice(m.text.as_bytes());
}

/// The time of a stored room message, without reading the rest.
fn message_time(offset: u64, v: &[u8]) -> Result<u64, StoreError> {
    match v.get(..8) {
        Some(time) if v.len() >= 9 => {
            let mut b = [0; 8];
            b.copy_from_slice(time);
            Ok(u64::from_le_bytes(b))
        }
        _ => Err(StoreError(format!(
            "a stored room message (offset {offset}) is malformed"
        ))),
    }
}

fn decode_message(offset: u64, v: &[u8]) -> Result<RoomMessage, StoreError> {
    let bad = || {
        StoreError(format!(
            "a stored room message (offset {offset}) is malformed"
        ))
    };
    if v.len() < 9 {
        return Err(bad());
    }
    let time = u64::from_le_bytes(v[..8].try_into().map_err(|_| bad())?);
    let n = v[8] as usize;
    let rest = &v[9..];
    if rest.len() < n {
        return Err(bad());
    }
    let from = std::str::from_utf8(&rest[..n]).map_err(|_| bad())?;
    let text = std::str::from_utf8(&rest[n..]).map_err(|_| bad())?;
    Ok(RoomMessage {
        offset,
        from: from.to_string(),
        text: text.to_string(),
        time,
    })
}

fn decode_room(name: &str, v: &[u8]) -> Result<RoomRow, StoreError> {
    serde_json::from_slice(v)
        .map_err(|e| StoreError(format!("the record of room {name} is malformed: {e}")))
}

/// The stored record of `room`, if it is stored.
fn room_row(
    rooms: &impl ReadableTable<&'static str, &'static [u8]>,
    room: &str,
) -> Result<Option<RoomRow>, StoreError> {
    rooms
        .get(room)?
        .map(|v| decode_room(room, v.value()))
        .transpose()
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The store in one redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    retention: Retention,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .finish()
    }
}

impl RedbStore {
    /// Opens the database at `path`, creating it (mode 0600 on Unix) when
    /// it is missing; its directory must exist. Every error names the
    /// file.
    pub fn open(path: &Path, retention: Retention) -> Result<RedbStore, StoreError> {
        let shown = path.display();
        let named = |what: String| StoreError(format!("chat store {shown}: {what}"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file: File = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                named(format!(
                    "cannot create it: the directory {} does not exist",
                    crate::state::parent_dir(path).display()
                ))
            } else {
                named(format!("cannot open it: {e}"))
            }
        })?;
        // redb initializes an empty file; anything else must be a redb
        // database (checked here so that no other file is ever written to).
        let len = file
            .metadata()
            .map_err(|e| named(format!("cannot read it: {e}")))?
            .len();
        if len > 0 {
            let mut head = [0u8; REDB_MAGIC.len()];
            let n = file
                .read(&mut head)
                .map_err(|e| named(format!("cannot read it: {e}")))?;
            if n < head.len() || head != REDB_MAGIC {
                return Err(named(
                    "not a redb database (move it away or restore it from a backup)".into(),
                ));
            }
        }
        let mut builder = Database::builder();
        let repaired = path.display().to_string();
        builder.set_repair_callback(move |session| {
            // Once per open that follows a crash, before the first page.
            // (An empty file, just made, is initialized, not repaired.)
            if len > 0 && session.progress() == 0.0 {
                tracing::info!(path = %repaired, "the chat store was not closed cleanly: checking it");
            }
        });
        let db = builder.create_file(file).map_err(|e| {
            named(format!(
                "{} (move it away or restore it from a backup)",
                redb::Error::from(e)
            ))
        })?;
        let store = RedbStore {
            db,
            path: path.to_path_buf(),
            retention,
        };
        store.init().map_err(|e| named(e.0))?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the tables of a new file, and checks the version of an
    /// existing one.
    fn init(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get("version")?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("version", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError(format!(
                        "format version {other}; this build reads only version {FORMAT_VERSION}"
                    )));
                }
            }
            txn.open_table(ROOMS)?;
            txn.open_table(MEMBERS)?;
            txn.open_table(MESSAGES)?;
            txn.open_table(OFFLINE)?;
            txn.open_table(AUDIT)?;
            txn.open_table(BANS)?;
            txn.open_table(INVITES)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes a room's members and messages.
    fn purge(txn: &WriteTransaction, room: &str) -> Result<(), StoreError> {
        txn.open_table(MEMBERS)?
            .retain_in((room, "")..=(room, "\u{10FFFF}"), |(r, _), ()| r != room)?;
        txn.open_table(MESSAGES)?
            .retain_in((room, 0)..=(room, u64::MAX), |(r, _), _| r != room)?;
        Ok(())
    }

    /// Appends `messages` (in offset order) to the history of `room`, then
    /// lets the oldest go while there are more than the retention allows
    /// or they are too old: the room's record is read and written once for
    /// the lot, and the same messages remain as if each had been appended
    /// and trimmed in turn. Nothing happens for a room that is not stored.
    fn append_run(
        &self,
        txn: &WriteTransaction,
        room: &str,
        messages: &[&RoomMessage],
    ) -> Result<(), StoreError> {
        let mut rooms = txn.open_table(ROOMS)?;
        let Some(mut row) = room_row(&rooms, room)? else {
            return Ok(());
        };
        let mut table = txn.open_table(MESSAGES)?;
        let mut newest = 0;
        let mut value = Vec::new();
        for message in messages {
            encode_message_into(message, &mut value);
            let old = table.insert((room, message.offset), value.as_slice())?;
            if old.is_none() {
                row.count += 1;
            }
            drop(old);
            row.last_offset = row.last_offset.max(message.offset);
            newest = newest.max(message.time);
        }
        // Retention: the oldest go while there are too many or they are
        // too old, found in one pass from the oldest, then removed.
        let oldest = newest.saturating_sub(self.retention.max_age_ms);
        let mut excess = row.count.saturating_sub(self.retention.max_messages);
        let mut expired = Vec::new();
        for entry in table.range((room, 0)..=(room, u64::MAX))? {
            let (k, v) = entry?;
            let offset = k.value().1;
            if excess == 0 && message_time(offset, v.value())? >= oldest {
                break;
            }
            excess = excess.saturating_sub(1);
            expired.push(offset);
        }
        for offset in expired {
            table.remove((room, offset))?;
            row.count = row.count.saturating_sub(1);
        }
        rooms.insert(room, encode(&row).as_slice())?;
        Ok(())
    }

    fn apply_one(&self, txn: &WriteTransaction, op: &StoreOp) -> Result<(), StoreError> {
        match op {
            StoreOp::CreateRoom {
                room,
                epoch,
                owner,
                time,
            } => {
                // A room made again starts from nothing.
                Self::purge(txn, room)?;
                let row = RoomRow {
                    epoch: epoch.clone(),
                    owner: owner.clone(),
                    topic: String::new(),
                    created: *time,
                    last_offset: 0,
                    count: 0,
                    ops: Vec::new(),
                    bans: Vec::new(),
                    muted: Vec::new(),
                    topic_locked: false,
                    moderated: false,
                };
                txn.open_table(ROOMS)?
                    .insert(room.as_str(), encode(&row).as_slice())?;
                txn.open_table(MEMBERS)?
                    .insert((room.as_str(), owner.as_str()), ())?;
            }
            StoreOp::Join { room, user } => {
                if txn.open_table(ROOMS)?.get(room.as_str())?.is_some() {
                    txn.open_table(MEMBERS)?
                        .insert((room.as_str(), user.as_str()), ())?;
                }
            }
            StoreOp::Part { room, user } => {
                txn.open_table(MEMBERS)?
                    .remove((room.as_str(), user.as_str()))?;
            }
            StoreOp::DeleteRoom { room } => {
                txn.open_table(ROOMS)?.remove(room.as_str())?;
                Self::purge(txn, room)?;
            }
            StoreOp::SetTopic { room, topic } => {
                let mut rooms = txn.open_table(ROOMS)?;
                if let Some(mut row) = room_row(&rooms, room)? {
                    row.topic.clone_from(topic);
                    rooms.insert(room.as_str(), encode(&row).as_slice())?;
                }
            }
            StoreOp::SetRoles { room, owner, roles } => {
                let mut rooms = txn.open_table(ROOMS)?;
                if let Some(mut row) = room_row(&rooms, room)? {
                    row.owner.clone_from(owner);
                    row.ops.clone_from(&roles.ops);
                    row.bans = roles
                        .bans
                        .iter()
                        .map(|b| RoomBanRow {
                            user: b.user.clone(),
                            until: b.until,
                        })
                        .collect();
                    row.muted.clone_from(&roles.muted);
                    row.topic_locked = roles.topic_locked;
                    row.moderated = roles.moderated;
                    rooms.insert(room.as_str(), encode(&row).as_slice())?;
                }
            }
            StoreOp::Append { room, message } => {
                self.append_run(txn, room, &[message])?;
            }
            StoreOp::PutOffline(m) => {
                let row = OfflineRow {
                    from: m.from.clone(),
                    to: m.to.clone(),
                    text: m.text.clone(),
                    time: m.time,
                };
                txn.open_table(OFFLINE)?
                    .insert(m.id, encode(&row).as_slice())?;
            }
            StoreOp::RemoveOffline { id, .. } => {
                txn.open_table(OFFLINE)?.remove(*id)?;
            }
            StoreOp::Registration(mode) => {
                txn.open_table(META)?
                    .insert("registration", registration_number(*mode))?;
            }
            StoreOp::AddInvite(i) => {
                let row = InviteRow {
                    expires: i.expires,
                    by: i.by.clone(),
                };
                txn.open_table(INVITES)?
                    .insert(i.code.as_str(), encode(&row).as_slice())?;
            }
            StoreOp::RemoveInvite { code } => {
                txn.open_table(INVITES)?.remove(code.as_str())?;
            }
            StoreOp::Audit(e) => {
                let row = AuditRow {
                    time: e.time,
                    by: e.by.clone(),
                    action: e.action.clone(),
                    target: e.target.clone(),
                    reason: e.reason.clone(),
                    until: e.until,
                };
                txn.open_table(AUDIT)?
                    .insert(e.id, encode(&row).as_slice())?;
            }
            StoreOp::BanAddress(b) => {
                let row = BanRow {
                    until: b.until,
                    reason: b.reason.clone(),
                    by: b.by.clone(),
                    time: b.time,
                };
                txn.open_table(BANS)?
                    .insert(b.range.as_str(), encode(&row).as_slice())?;
            }
            StoreOp::UnbanAddress { range } => {
                txn.open_table(BANS)?.remove(range.as_str())?;
            }
        }
        Ok(())
    }
}

impl ChatStore for RedbStore {
    fn load(&self, keep: usize) -> Result<Snapshot, StoreError> {
        let txn = self.db.begin_read()?;
        let rooms = txn.open_table(ROOMS)?;
        let members = txn.open_table(MEMBERS)?;
        let messages = txn.open_table(MESSAGES)?;
        let offline = txn.open_table(OFFLINE)?;
        let mut snapshot = Snapshot::default();
        for entry in rooms.iter()? {
            let (k, v) = entry?;
            let name = k.value();
            let row = decode_room(name, v.value())?;
            let mut names = Vec::new();
            for m in members.range((name, "")..=(name, "\u{10FFFF}"))? {
                let (k, ()) = (m?.0, ());
                names.push(k.value().1.to_string());
            }
            let mut recent = Vec::new();
            for m in messages
                .range((name, 0)..=(name, u64::MAX))?
                .rev()
                .take(keep)
            {
                let (k, v) = m?;
                recent.push(decode_message(k.value().1, v.value())?);
            }
            recent.reverse();
            snapshot.rooms.push(RoomRecord {
                name: name.to_string(),
                epoch: row.epoch,
                owner: row.owner,
                topic: row.topic,
                created: row.created,
                members: names,
                last_offset: row.last_offset,
                recent,
                roles: RoomRoles {
                    ops: row.ops,
                    bans: row
                        .bans
                        .into_iter()
                        .map(|b| RoomBan {
                            user: b.user,
                            until: b.until,
                        })
                        .collect(),
                    muted: row.muted,
                    topic_locked: row.topic_locked,
                    moderated: row.moderated,
                },
            });
        }
        for entry in offline.iter()? {
            let (k, v) = entry?;
            let id = k.value();
            let row: OfflineRow = serde_json::from_slice(v.value())
                .map_err(|e| StoreError(format!("the offline message {id} is malformed: {e}")))?;
            snapshot.offline.push(OfflineMessage {
                id,
                from: row.from,
                to: row.to,
                text: row.text,
                time: row.time,
            });
        }
        let audit = txn.open_table(AUDIT)?;
        for entry in audit.iter()?.rev().take(AUDIT_MEMORY) {
            let (k, v) = entry?;
            let id = k.value();
            let row: AuditRow = serde_json::from_slice(v.value())
                .map_err(|e| StoreError(format!("the audit entry {id} is malformed: {e}")))?;
            snapshot.audit.push(AuditEntry {
                id,
                time: row.time,
                by: row.by,
                action: row.action,
                target: row.target,
                reason: row.reason,
                until: row.until,
            });
        }
        snapshot.audit.reverse();
        for entry in txn.open_table(BANS)?.iter()? {
            let (k, v) = entry?;
            let range = k.value();
            let row: BanRow = serde_json::from_slice(v.value())
                .map_err(|e| StoreError(format!("the ban of {range} is malformed: {e}")))?;
            snapshot.bans.push(AddressBan {
                range: range.to_string(),
                until: row.until,
                reason: row.reason,
                by: row.by,
                time: row.time,
            });
        }
        snapshot.registration = match txn.open_table(META)?.get("registration")? {
            None => RegistrationMode::Open,
            Some(v) => match v.value() {
                0 => RegistrationMode::Open,
                1 => RegistrationMode::Closed,
                2 => RegistrationMode::Invite,
                other => {
                    return Err(StoreError(format!(
                        "the registration mode {other} is unknown to this build"
                    )));
                }
            },
        };
        for entry in txn.open_table(INVITES)?.iter()? {
            let (k, v) = entry?;
            let code = k.value().to_string();
            let row: InviteRow = serde_json::from_slice(v.value())
                .map_err(|e| StoreError(format!("the invite {code} is malformed: {e}")))?;
            snapshot.invites.push(Invite {
                code,
                expires: row.expires,
                by: row.by,
            });
        }
        Ok(snapshot)
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        let mut run = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            // An error drops (aborts) the transaction: all or none.
            if let StoreOp::Append { room, .. } = &ops[i] {
                // Consecutive messages to one room: one pass over its record.
                run.clear();
                while let Some(StoreOp::Append { room: r, message }) = ops.get(i)
                    && r == room
                {
                    run.push(message);
                    i += 1;
                }
                self.append_run(&txn, room, &run)?;
                continue;
            }
            self.apply_one(&txn, &ops[i])?;
            i += 1;
        }
        txn.commit()?;
        Ok(())
    }

    fn page(
        &self,
        room: &str,
        page: Page,
        limit: u32,
    ) -> Result<(Vec<RoomMessage>, bool), StoreError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let limit = limit as usize;
        let mut out = Vec::new();
        let more;
        match page {
            Page::Before(b) => {
                if b == 0 {
                    return Ok((out, false));
                }
                let mut range = messages.range((room, 0)..(room, b))?.rev();
                for m in range.by_ref().take(limit) {
                    let (k, v) = m?;
                    out.push(decode_message(k.value().1, v.value())?);
                }
                more = range.next().is_some();
                out.reverse();
            }
            Page::After(a) => {
                let Some(from) = a.checked_add(1) else {
                    return Ok((out, false));
                };
                let mut range = messages.range((room, from)..=(room, u64::MAX))?;
                for m in range.by_ref().take(limit) {
                    let (k, v) = m?;
                    out.push(decode_message(k.value().1, v.value())?);
                }
                more = range.next().is_some();
            }
        }
        Ok((out, more))
    }
}

/// One request to the store thread.
#[derive(Debug)]
pub enum StoreJob {
    /// Make a change durable; answered with [`Response::Stored`].
    Write { id: u64, op: StoreOp },
    /// Read a page; answered with [`Response::History`].
    Read {
        id: u64,
        room: String,
        page: Page,
        limit: u32,
    },
}

/// How much the store thread did: for the status line and the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Changes written.
    pub writes: u64,
    /// Total time spent committing (apply and fsync).
    pub commit_time: Duration,
    /// The longest commit.
    pub max_commit: Duration,
    /// The time of each commit.
    pub commit_durations: crate::metrics::Histogram,
}

/// The writer's [`WriterStats`] as they stand, updated after each batch;
/// for `chatserver --metrics`.
#[derive(Debug, Default, Clone)]
pub struct LiveStats(Arc<Mutex<WriterStats>>);

impl LiveStats {
    /// A copy of the counters.
    #[must_use]
    pub fn get(&self) -> WriterStats {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, stats: &WriterStats) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = *stats;
    }
}

/// The store's thread: one writer, group commit, answers in order.
pub struct StoreWriter {
    tx: Option<Sender<StoreJob>>,
    rx: Receiver<Response>,
    handle: Option<thread::JoinHandle<WriterStats>>,
    live: LiveStats,
}

/// Most changes in one transaction.
const MAX_BATCH: usize = 4096;

impl StoreWriter {
    /// Starts the thread over `store`, holding at most `capacity` requests
    /// waiting; `wake` is called after each batch of answers.
    pub fn spawn<S: ChatStore>(
        mut store: S,
        capacity: usize,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<StoreWriter> {
        let (tx, jobs) = bounded::<StoreJob>(capacity);
        let (answers, rx) = unbounded::<Response>();
        let live = LiveStats::default();
        let shared = live.clone();
        let handle = thread::Builder::new()
            .name("chat-store".into())
            .spawn(move || {
                let mut stats = WriterStats::default();
                let mut batch: Vec<StoreJob> = Vec::new();
                while let Ok(first) = jobs.recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let go_on = run_batch(&mut store, &mut batch, &answers, &mut stats);
                    shared.set(&stats);
                    if !go_on {
                        break;
                    }
                    wake();
                }
                stats
            })?;
        Ok(StoreWriter {
            tx: Some(tx),
            rx,
            handle: Some(handle),
            live,
        })
    }

    /// Hands a request to the thread without waiting: `Err` gives back
    /// its id when the queue is full (answer
    /// [`Response::Unavailable`]) or the thread is gone.
    pub fn submit(&self, job: StoreJob) -> Result<(), u64> {
        let id = match &job {
            StoreJob::Write { id, .. } | StoreJob::Read { id, .. } => *id,
        };
        match &self.tx {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) | TrySendError::Disconnected(_) => id,
            }),
            None => Err(id),
        }
    }

    /// The answers ready, in request order.
    pub fn answers(&self) -> &Receiver<Response> {
        &self.rx
    }

    /// The counters as they stand, shared with the thread.
    pub fn live_stats(&self) -> LiveStats {
        self.live.clone()
    }

    /// Waits for everything handed over to be written, and stops the
    /// thread.
    pub fn finish(&mut self) -> WriterStats {
        self.tx = None;
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Writes and answers one batch: consecutive writes share a transaction,
/// a read sees every write before it. Returns false when nobody listens.
fn run_batch<S: ChatStore>(
    store: &mut S,
    batch: &mut Vec<StoreJob>,
    answers: &Sender<Response>,
    stats: &mut WriterStats,
) -> bool {
    let mut ids = Vec::new();
    let mut ops = Vec::new();
    for job in batch.drain(..) {
        match job {
            StoreJob::Write { id, op } => {
                ids.push(id);
                ops.push(op);
            }
            StoreJob::Read {
                id,
                room,
                page,
                limit,
            } => {
                if !commit(store, &mut ids, &mut ops, answers, stats) {
                    return false;
                }
                let result = store.page(&room, page, limit).map_err(|e| e.0);
                if answers.send(Response::History { id, result }).is_err() {
                    return false;
                }
            }
        }
    }
    commit(store, &mut ids, &mut ops, answers, stats)
}

/// Commits `ops` in one transaction and answers each.
fn commit<S: ChatStore>(
    store: &mut S,
    ids: &mut Vec<u64>,
    ops: &mut Vec<StoreOp>,
    answers: &Sender<Response>,
    stats: &mut WriterStats,
) -> bool {
    if ops.is_empty() {
        return true;
    }
    let started = Instant::now();
    let result = store.apply(ops).map_err(|e| e.0);
    let took = started.elapsed();
    stats.commits += 1;
    stats.writes += ops.len() as u64;
    stats.commit_time += took;
    stats.max_commit = stats.max_commit.max(took);
    stats.commit_durations.observe(took);
    ops.clear();
    for id in ids.drain(..) {
        let response = Response::Stored {
            id,
            result: result.clone(),
        };
        if answers.send(response).is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
