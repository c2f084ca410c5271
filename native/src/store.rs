//! The user store: `chat_users.json`.
//!
//! # File format (version 1)
//!
//! A single UTF-8 JSON object:
//!
//! ```json
//! {
//!   "version": 1,
//!   "generation": 42,
//!   "users": [
//!     {
//!       "name": "alice",
//!       "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>",
//!       "created": 1700000000
//!     }
//!   ]
//! }
//! ```
//!
//! * `version` — the format version, a JSON integer. This build reads and
//!   writes only `1`; any other value (or none) is refused.
//! * `generation` — a counter every rewrite increases by one, so that a
//!   process that read the file can tell whether someone rewrote it since.
//!   Optional: a file without it (written before it existed) is generation 0.
//! * `users` — the registered users, in registration order.
//! * `name` — the user name exactly as it was registered. Names are unique
//!   *case-insensitively*, comparing ASCII letters without regard to case
//!   (`Alice` and `alice` are the same user; other characters compare as
//!   bytes).
//! * `password_hash` — the password as an argon2id hash in PHC string format
//!   (see [`crate::passwords`]). Passwords are never stored in clear.
//! * `created` — when the user registered, in seconds since the Unix epoch, as
//!   a JSON integer.
//! * `suspended` — present only while the account is suspended: `by` (who
//!   suspended it), `reason` (may be empty) and `until` (milliseconds since
//!   the Unix epoch; absent: until lifted).
//!
//! Unknown fields are refused, both at the top level and in user records, so
//! that a rewrite can never silently drop data this build does not understand;
//! a future incompatible layout bumps `version`. The writer emits the object
//! pretty-printed with a trailing newline; any JSON whitespace is accepted.
//!
//! # Safety of the file
//!
//! * A missing file is an empty store. The file is created on the first
//!   registration, not when the store is opened. Its directory must exist:
//!   a store whose directory does not is refused when opened, rather than
//!   failing at the first registration.
//! * A file that exists but cannot be read, is not valid JSON, does not match
//!   the layout above, names a user twice, or has another `version` makes
//!   [`UserStore::open`] fail with a message naming the file and the problem.
//!   Such a file is never overwritten: the operator fixes or moves it.
//! * Every change rewrites the whole file atomically: the new content goes to
//!   a temporary file in the same directory
//!   (`.chat_users.json.tmp-<pid>-<n>`), which is flushed to disk
//!   (`fsync`), then renamed over the store; on Unix the directory is then
//!   flushed too. A crash at any instant leaves either the old or the new
//!   file, never a mix; a leftover temporary file is ignored when loading.
//!   [`UserStore::add`] and [`UserStore::add_many`] return only once the new
//!   file is durable, so an acknowledged registration is never lost.
//! * Registrations are group-committed: [`UserStore::add_many`] adds a whole
//!   batch (say, every registration waiting when the previous write ended)
//!   with a single rewrite, so the bytes written grow with the number of
//!   batches rather than with the number of registrations. A name already
//!   registered, or repeated within the batch, is refused on its own; the
//!   others still go in. If that one write fails, every registration of the
//!   batch fails and none is kept: the in-memory store always equals the
//!   file.
//! * On Unix the file is created with mode `0600` (owner read/write only).
//!
//! # Several writers
//!
//! The running server and `chatserver accounts` may change the same file at
//! the same time. Every read-modify-write takes an exclusive lock on a
//! sidecar file, `chat_users.json.lock` beside the store (created when
//! missing, mode `0600`, never removed), with [`std::fs::File::lock`]: an
//! advisory lock the OS releases when its holder exits, even by a crash.
//! Under the lock a writer first checks whether the file changed since it
//! last read or wrote it — its `generation`, and the file's length,
//! modification time and (on Unix) device and inode — and if so reloads it,
//! then applies its change to what is on disk now and writes the result
//! with `generation` + 1. So two writers never lose each other's accounts.
//! A writer waits at most [`LOCK_TIMEOUT`] (10 s) for the lock, then fails
//! with [`StoreError::Lock`] and changes nothing.
//!
//! A store file that disappears while a store has it open is not taken as
//! every account deleted: the store keeps its accounts and writes them back
//! with its next change.
//!
//! [`UserStore::refresh`] reloads the file if it changed, without writing;
//! the server calls it about once a second ([`POLL_INTERVAL`]). Each
//! reload records what changed ([`AccountChange`]) for
//! [`UserStore::take_changes`].

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The only file format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The longest a change waits for another process's lock on the store: 10 s.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server looks for changes made by another process: 1 s.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One registered user, as stored in the file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The user name as registered (case preserved).
    pub name: String,
    /// The argon2id password hash, a PHC string.
    pub password_hash: String,
    /// Registration time, seconds since the Unix epoch.
    pub created: u64,
    /// Set while the account is suspended (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<StoredSuspension>,
}

/// An account's suspension as the file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSuspension {
    /// When it ends, milliseconds since the Unix epoch; absent: until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Why (may be empty).
    #[serde(default)]
    pub reason: String,
    /// Who suspended the account.
    pub by: String,
}

impl StoredSuspension {
    /// The same suspension as the server's core sees it.
    pub fn to_core(&self) -> udpchat_core::server::Suspension {
        udpchat_core::server::Suspension {
            until: self.until,
            reason: self.reason.clone(),
            by: self.by.clone(),
        }
    }
}

impl UserRecord {
    /// The same account as the server's core sees it.
    pub fn to_core(&self) -> udpchat_core::server::UserRecord {
        udpchat_core::server::UserRecord {
            name: self.name.clone(),
            password_hash: self.password_hash.clone(),
            suspended: self.suspended.as_ref().map(StoredSuspension::to_core),
        }
    }
}

/// A change another process made to the store, found when it was reloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// An account was added, or its record changed (password, suspension).
    Put(UserRecord),
    /// An account was deleted: its name as it was registered.
    Removed(String),
}

impl fmt::Debug for UserRecord {
    // The hash is not secret in the way a password is, but it has no
    // business in logs either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("created", &self.created)
            .field("suspended", &self.suspended)
            .finish()
    }
}

/// Everything that can go wrong with the user store.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file exists but could not be read (permissions, it is a
    /// directory, an I/O error, …).
    Read {
        /// The store file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The store file is not valid JSON or does not have the expected layout.
    Parse {
        /// The store file.
        path: PathBuf,
        /// The decoder's error, with line and column.
        source: serde_json::Error,
    },
    /// The store file does not exist and neither does its directory, so it
    /// could never be written.
    NoDirectory {
        /// The store file.
        path: PathBuf,
        /// Its directory, which does not exist.
        dir: PathBuf,
    },
    /// The store file has no `version` field, or one this build does not
    /// understand.
    UnsupportedVersion {
        /// The store file.
        path: PathBuf,
        /// The `version` value found, as JSON text (`None` when absent).
        found: Option<String>,
    },
    /// The store file lists the same user name twice (compared
    /// case-insensitively).
    DuplicateInFile {
        /// The store file.
        path: PathBuf,
        /// The second occurrence of the name.
        name: String,
    },
    /// [`UserStore::add`] or [`UserStore::add_many`] was given a name that is
    /// already registered, or repeated within the batch (compared
    /// case-insensitively).
    NameTaken {
        /// The name as it is already registered.
        existing: String,
    },
    /// Writing the new store file failed. The user was not added, nor was
    /// any other of its batch: the in-memory store is unchanged and the file
    /// still holds the previous content.
    Write {
        /// The store file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No account has this name.
    UnknownUser {
        /// The name asked for.
        name: String,
    },
    /// The lock file beside the store could not be created or locked, or
    /// another process held the lock for longer than [`LOCK_TIMEOUT`].
    /// Nothing changed.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error (`TimedOut` when the wait was too long).
        source: io::Error,
    },
    /// A previous write failed after the new file was already in place, and
    /// restoring the previous content failed as well, so the file's content is
    /// unknown. The store refuses further changes; reopen it to recover.
    Poisoned {
        /// The store file.
        path: PathBuf,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(f, "cannot read user store {}: {source}", path.display())
            }
            Self::NoDirectory { path, dir } => write!(
                f,
                "user store {}: the directory {} does not exist; create it first",
                path.display(),
                dir.display()
            ),
            Self::Parse { path, source } => write!(
                f,
                "user store {} is corrupt or not a user store ({source}); \
                 it is left untouched: fix or move it away",
                path.display()
            ),
            Self::UnsupportedVersion {
                path,
                found: Some(found),
            } => write!(
                f,
                "user store {} has format version {found}, this build understands only \
                 version {FORMAT_VERSION}; it is left untouched",
                path.display()
            ),
            Self::UnsupportedVersion { path, found: None } => write!(
                f,
                "user store {} has no \"version\" field; it is left untouched",
                path.display()
            ),
            Self::DuplicateInFile { path, name } => write!(
                f,
                "user store {} lists the user {name:?} more than once (names are \
                 case-insensitive); it is left untouched: fix it by hand",
                path.display()
            ),
            Self::NameTaken { existing } => {
                write!(f, "the user name {existing:?} is already registered")
            }
            Self::Write { path, source } => {
                write!(f, "cannot write user store {}: {source}", path.display())
            }
            Self::UnknownUser { name } => write!(f, "no account is named {name:?}"),
            Self::Lock { path, source } => {
                write!(
                    f,
                    "cannot lock the user store ({}): {source}",
                    path.display()
                )
            }
            Self::Poisoned { path } => write!(
                f,
                "user store {} is in an unknown state after a failed write; \
                 restart to reload it",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } | Self::Lock { source, .. } => {
                Some(source)
            }
            Self::Parse { source, .. } => Some(source),
            Self::NoDirectory { .. }
            | Self::UnsupportedVersion { .. }
            | Self::DuplicateInFile { .. }
            | Self::NameTaken { .. }
            | Self::UnknownUser { .. }
            | Self::Poisoned { .. } => None,
        }
    }
}

/// The registered users, backed by a JSON file (see the [module docs](self)).
///
/// All reads are served from memory; [`add`](Self::add),
/// [`add_many`](Self::add_many) and the other changes take the store's
/// lock and block on disk I/O (including `fsync`), so an event loop should
/// call them from a worker thread.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    /// The sidecar file locked around every read-modify-write.
    lock_path: PathBuf,
    users: Vec<UserRecord>,
    /// ASCII-lowercased name → index into `users`.
    index: HashMap<String, usize>,
    poisoned: bool,
    /// Bytes of the store files written in full since the store was opened.
    bytes_written: u64,
    /// The file as `users` last matched it.
    seen: Marker,
    /// Changes found by reloads, not yet taken.
    changes: Vec<AccountChange>,
    /// Tests: make the next write fail, after replacing the file (`true`)
    /// or before (`false`).
    #[cfg(test)]
    fail_next_write: Option<bool>,
}

/// What identifies one version of the store file: its `generation`, and
/// what the file system says of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Marker {
    generation: u64,
    /// `None`: there is no file.
    stamp: Option<Stamp>,
}

/// The file's length, modification time and identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode (Unix); every rewrite is a new file.
    id: (u64, u64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            id,
        }
    }
}

/// The file as read: its users, and the marker of the bytes read.
struct Loaded {
    users: Vec<UserRecord>,
    index: HashMap<String, usize>,
    marker: Marker,
}

/// A failed [`UserStore::write_locked`].
struct WriteFailed {
    error: StoreError,
    /// Whether the file had already been replaced by the new content.
    replaced: bool,
}

/// The held lock of a store; released when dropped (the file is closed).
struct StoreLock {
    _file: fs::File,
}

/// A registration for [`UserStore::add_many`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NewUser<'a> {
    /// The user name (case preserved).
    pub name: &'a str,
    /// The argon2id password hash, a PHC string.
    pub password_hash: &'a str,
    /// Registration time, seconds since the Unix epoch.
    pub created: u64,
}

impl fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("created", &self.created)
            .finish()
    }
}

/// The whole file, version 1, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[allow(dead_code)] // checked before this is decoded
    version: u64,
    #[serde(default)]
    generation: u64,
    users: Vec<UserRecord>,
}

/// Only the `generation` of a file, the users skipped without being kept.
#[derive(Deserialize)]
struct GenerationOnly {
    #[serde(default)]
    generation: u64,
}

/// The whole file, version 1, as written.
#[derive(Serialize)]
struct FileV1Ref<'a> {
    version: u64,
    generation: u64,
    users: &'a [UserRecord],
}

impl UserStore {
    /// Opens the store at `path`.
    ///
    /// A missing file is an empty store (nothing is created until the first
    /// [`add`](Self::add)), if its directory exists. Any other problem — unreadable file, invalid JSON,
    /// unexpected layout, unknown version, duplicate names — is an error, and
    /// the file is left as it is. Opening takes no lock: every rewrite
    /// replaces the file whole, so a read sees one version or the next.
    pub fn open(path: &Path) -> Result<UserStore, StoreError> {
        let loaded = load(path)?;
        if loaded.marker.stamp.is_none() {
            let dir = parent_dir(path);
            if !dir.is_dir() {
                return Err(StoreError::NoDirectory {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        Ok(UserStore {
            path: path.to_path_buf(),
            lock_path: lock_path(path),
            users: loaded.users,
            index: loaded.index,
            poisoned: false,
            bytes_written: 0,
            seen: loaded.marker,
            changes: Vec::new(),
            #[cfg(test)]
            fail_next_write: None,
        })
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside the store.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The `generation` of the file as last read or written.
    pub fn generation(&self) -> u64 {
        self.seen.generation
    }

    /// All registered users, in registration order.
    pub fn users(&self) -> &[UserRecord] {
        &self.users
    }

    /// The number of registered users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is registered.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Looks a user up by name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&UserRecord> {
        self.index.get(&fold(name)).map(|&i| &self.users[i])
    }

    /// Bytes of the store files written in full (each a whole new file)
    /// since the store was opened.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The changes found by reloads since the last call (oldest first):
    /// accounts another process added, changed or deleted. The store's own
    /// changes are not in it.
    pub fn take_changes(&mut self) -> Vec<AccountChange> {
        std::mem::take(&mut self.changes)
    }

    /// Reloads the file if another process rewrote it since this store last
    /// read or wrote it, recording what changed for
    /// [`take_changes`](Self::take_changes). Returns whether it reloaded.
    ///
    /// When nothing changed this reads the file once, without the lock; a
    /// reload takes the lock. On error (the file became unreadable or
    /// invalid) the store keeps what it had.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        if !self.changed_on_disk()? {
            return Ok(false);
        }
        let _lock = self.lock()?;
        self.sync_locked()
    }

    /// Registers a user and makes it durable before returning.
    ///
    /// Fails with [`StoreError::NameTaken`] if the name is already registered
    /// (case-insensitively), and with [`StoreError::Write`] if the file could
    /// not be written; in both cases nothing changed, in memory or on disk.
    /// Blocks on disk I/O.
    pub fn add(
        &mut self,
        name: &str,
        password_hash: &str,
        created_unix: u64,
    ) -> Result<(), StoreError> {
        self.add_many(&[NewUser {
            name,
            password_hash,
            created: created_unix,
        }])
        .pop()
        .expect("one result per registration")
    }

    /// Registers a batch of users with a single rewrite of the file, and makes
    /// them durable before returning: one result per registration, in order.
    ///
    /// Under the store's lock, the file is first reloaded if another process
    /// changed it. A name already registered, or registered earlier in the
    /// same batch (case-insensitively), is refused with
    /// [`StoreError::NameTaken`]; the others are unaffected. If the file
    /// could not be locked, reloaded or written, every other registration
    /// fails with that error and none is kept, in memory or on disk. When
    /// every registration is refused nothing is written. Blocks on disk I/O.
    pub fn add_many(&mut self, batch: &[NewUser<'_>]) -> Vec<Result<(), StoreError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let _lock = match self.begin() {
            Ok(lock) => lock,
            Err(e) => return batch.iter().map(|_| Err(copy_error(&e))).collect(),
        };
        let before = self.users.len();
        let mut results = Vec::with_capacity(batch.len());
        for user in batch {
            let key = fold(user.name);
            if let Some(&i) = self.index.get(&key) {
                results.push(Err(StoreError::NameTaken {
                    existing: self.users[i].name.clone(),
                }));
                continue;
            }
            self.index.insert(key, self.users.len());
            self.users.push(UserRecord {
                name: user.name.to_owned(),
                password_hash: user.password_hash.to_owned(),
                created: user.created,
                suspended: None,
            });
            results.push(Ok(()));
        }
        if self.users.len() == before {
            return results;
        }
        if let Err(failed) = self.write_locked() {
            for user in self.users.drain(before..) {
                self.index.remove(&fold(&user.name));
            }
            self.restore_after(&failed);
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(copy_error(&failed.error));
                }
            }
        }
        results
    }

    /// Replaces the password hash of the account `name` (case-insensitive),
    /// durably. [`StoreError::UnknownUser`] when there is none.
    pub fn set_password(&mut self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        self.change(name, |user| {
            user.password_hash = password_hash.to_owned();
            Ok(())
        })
    }

    /// Sets (`Some`) or lifts (`None`) the suspension of the account `name`
    /// (case-insensitive), durably. [`StoreError::UnknownUser`] when there is
    /// none.
    pub fn set_suspension(
        &mut self,
        name: &str,
        suspension: Option<StoredSuspension>,
    ) -> Result<(), StoreError> {
        self.change(name, |user| {
            user.suspended = suspension;
            Ok(())
        })
    }

    /// Deletes the account `name` (case-insensitive), durably, and returns
    /// its record. [`StoreError::UnknownUser`] when there is none.
    pub fn remove(&mut self, name: &str) -> Result<UserRecord, StoreError> {
        let _lock = self.begin()?;
        let Some(&i) = self.index.get(&fold(name)) else {
            return Err(StoreError::UnknownUser {
                name: name.to_owned(),
            });
        };
        let removed = self.users.remove(i);
        self.rebuild_index();
        if let Err(failed) = self.write_locked() {
            self.users.insert(i, removed);
            self.rebuild_index();
            self.restore_after(&failed);
            return Err(failed.error);
        }
        Ok(removed)
    }

    /// Applies `f` to the record of `name` under the lock and writes the
    /// result; the record is put back as it was if the write fails.
    fn change(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut UserRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _lock = self.begin()?;
        let Some(&i) = self.index.get(&fold(name)) else {
            return Err(StoreError::UnknownUser {
                name: name.to_owned(),
            });
        };
        let previous = self.users[i].clone();
        f(&mut self.users[i])?;
        if self.users[i] == previous {
            return Ok(());
        }
        if let Err(failed) = self.write_locked() {
            self.users[i] = previous;
            self.restore_after(&failed);
            return Err(failed.error);
        }
        Ok(())
    }

    /// Takes the lock for a change and brings memory up to date with the
    /// file.
    fn begin(&mut self) -> Result<StoreLock, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let lock = self.lock()?;
        if self.changed_on_disk()? {
            self.sync_locked()?;
        }
        Ok(lock)
    }

    /// Takes the store's lock, waiting at most [`LOCK_TIMEOUT`].
    fn lock(&self) -> Result<StoreLock, StoreError> {
        let lock_error = |source| StoreError::Lock {
            path: self.lock_path.clone(),
            source,
        };
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&self.lock_path).map_err(lock_error)?;
        let deadline = std::time::Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(lock_error(e)),
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(lock_error(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "another process has held it for more than {} s",
                        LOCK_TIMEOUT.as_secs()
                    ),
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Whether the file differs from the version `users` matches.
    fn changed_on_disk(&self) -> Result<bool, StoreError> {
        Ok(current_marker(&self.path)? != self.seen)
    }

    /// Reloads the file (the lock held) and records what changed. Returns
    /// whether anything was read.
    fn sync_locked(&mut self) -> Result<bool, StoreError> {
        let loaded = load(&self.path)?;
        if loaded.marker.stamp.is_none() && self.seen.stamp.is_some() {
            // The file vanished (moved or deleted by hand): not every
            // account deleted. Memory is kept, and the next change writes
            // it back.
            self.seen = loaded.marker;
            return Ok(false);
        }
        let mut old: HashMap<String, UserRecord> =
            self.users.drain(..).map(|u| (fold(&u.name), u)).collect();
        for user in &loaded.users {
            match old.remove(&fold(&user.name)) {
                Some(before) if before == *user => {}
                Some(before) if before.name != user.name => {
                    // The same account under another spelling of its name.
                    self.changes.push(AccountChange::Removed(before.name));
                    self.changes.push(AccountChange::Put(user.clone()));
                }
                _ => self.changes.push(AccountChange::Put(user.clone())),
            }
        }
        let mut gone: Vec<UserRecord> = old.into_values().collect();
        gone.sort_by(|a, b| a.name.cmp(&b.name));
        self.changes
            .extend(gone.into_iter().map(|u| AccountChange::Removed(u.name)));
        self.users = loaded.users;
        self.index = loaded.index;
        self.seen = loaded.marker;
        self.poisoned = false;
        Ok(true)
    }

    /// Writes memory to the file as the next generation (the lock held).
    fn write_locked(&mut self) -> Result<(), WriteFailed> {
        let generation = self.seen.generation + 1;
        let bytes = encode(&self.users, generation);
        #[cfg(test)]
        let written = match self.fail_next_write.take() {
            Some(replaced) => Err(WriteFailure {
                error: io::Error::other("injected failure"),
                replaced: replaced && write_atomically(&self.path, &bytes).is_ok(),
            }),
            None => write_atomically(&self.path, &bytes),
        };
        #[cfg(not(test))]
        let written = write_atomically(&self.path, &bytes);
        match written {
            Ok(()) => {
                self.bytes_written += bytes.len() as u64;
                self.seen = Marker {
                    generation,
                    // Unknown stamp: the next check reloads, finding no change.
                    stamp: fs::metadata(&self.path).ok().map(|m| Stamp::of(&m)),
                };
                Ok(())
            }
            Err(failure) => {
                if failure.replaced {
                    self.seen = Marker {
                        generation,
                        stamp: None,
                    };
                }
                Err(WriteFailed {
                    error: StoreError::Write {
                        path: self.path.clone(),
                        source: failure.error,
                    },
                    replaced: failure.replaced,
                })
            }
        }
    }

    /// After a failed write, with memory back as before the change: if the
    /// failed write had already replaced the file, the previous content is
    /// written over it (as the next generation) so that disk matches memory;
    /// if that fails too, the store is poisoned.
    fn restore_after(&mut self, failed: &WriteFailed) {
        if !failed.replaced {
            return;
        }
        let generation = self.seen.generation + 1;
        let previous = encode(&self.users, generation);
        match write_atomically(&self.path, &previous) {
            Ok(()) => {
                self.bytes_written += previous.len() as u64;
                self.seen = Marker {
                    generation,
                    stamp: fs::metadata(&self.path).ok().map(|m| Stamp::of(&m)),
                };
            }
            Err(_) => self.poisoned = true,
        }
    }

    fn rebuild_index(&mut self) {
        self.index = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (fold(&u.name), i))
            .collect();
    }
}

/// The lock file of the store at `path`: `<file name>.lock` beside it.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    parent_dir(path).join(name)
}

/// The same error again, for each registration of a failed batch.
fn copy_error(e: &StoreError) -> StoreError {
    let copy = |source: &io::Error| io::Error::new(source.kind(), source.to_string());
    match e {
        StoreError::Write { path, source } => StoreError::Write {
            path: path.clone(),
            source: copy(source),
        },
        StoreError::Read { path, source } => StoreError::Read {
            path: path.clone(),
            source: copy(source),
        },
        StoreError::Lock { path, source } => StoreError::Lock {
            path: path.clone(),
            source: copy(source),
        },
        StoreError::Poisoned { path } => StoreError::Poisoned { path: path.clone() },
        StoreError::NoDirectory { path, dir } => StoreError::NoDirectory {
            path: path.clone(),
            dir: dir.clone(),
        },
        StoreError::UnsupportedVersion { path, found } => StoreError::UnsupportedVersion {
            path: path.clone(),
            found: found.clone(),
        },
        StoreError::DuplicateInFile { path, name } => StoreError::DuplicateInFile {
            path: path.clone(),
            name: name.clone(),
        },
        StoreError::NameTaken { existing } => StoreError::NameTaken {
            existing: existing.clone(),
        },
        StoreError::UnknownUser { name } => StoreError::UnknownUser { name: name.clone() },
        StoreError::Parse { path, source } => StoreError::Parse {
            path: path.clone(),
            source: serde::de::Error::custom(source.to_string()),
        },
    }
}

/// Opens the file at `path`: its metadata and bytes, read from the same
/// open file (`None`: there is none).
fn read_file(path: &Path) -> Result<Option<(Stamp, Vec<u8>)>, StoreError> {
    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let meta = file.metadata().map_err(read_error)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    io::Read::read_to_end(&mut file, &mut bytes).map_err(read_error)?;
    Ok(Some((Stamp::of(&meta), bytes)))
}

/// The marker of the file now (generation 0 when it has none or when it is
/// not valid: the reload then reports the problem).
fn current_marker(path: &Path) -> Result<Marker, StoreError> {
    Ok(match read_file(path)? {
        None => Marker::default(),
        Some((stamp, bytes)) => Marker {
            generation: serde_json::from_slice::<GenerationOnly>(&bytes)
                .map_or(0, |g| g.generation),
            stamp: Some(stamp),
        },
    })
}

/// Reads and checks the whole file (a missing one is empty).
fn load(path: &Path) -> Result<Loaded, StoreError> {
    let Some((stamp, bytes)) = read_file(path)? else {
        return Ok(Loaded {
            users: Vec::new(),
            index: HashMap::new(),
            marker: Marker::default(),
        });
    };
    let parse_error = |source| StoreError::Parse {
        path: path.to_path_buf(),
        source,
    };
    // First the syntax and the version, so that a file of another version
    // is reported as such rather than as a layout mismatch.
    let probe: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(parse_error)?;
    match probe.get("version") {
        Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
        other => {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: other.map(ToString::to_string),
            });
        }
    }
    drop(probe);
    let file: FileV1 = serde_json::from_slice(&bytes).map_err(parse_error)?;
    let mut index = HashMap::with_capacity(file.users.len());
    for (i, user) in file.users.iter().enumerate() {
        if index.insert(fold(&user.name), i).is_some() {
            return Err(StoreError::DuplicateInFile {
                path: path.to_path_buf(),
                name: user.name.clone(),
            });
        }
    }
    Ok(Loaded {
        users: file.users,
        index,
        marker: Marker {
            generation: file.generation,
            stamp: Some(stamp),
        },
    })
}

/// The case-insensitive key of a name.
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn encode(users: &[UserRecord], generation: u64) -> Vec<u8> {
    let file = FileV1Ref {
        version: FORMAT_VERSION,
        generation,
        users,
    };
    // Serializing plain strings and integers into memory cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&file).expect("user store serializes");
    bytes.push(b'\n');
    bytes
}

/// A failed [`write_atomically`].
struct WriteFailure {
    error: io::Error,
    /// Whether the target had already been replaced by the new content when
    /// the failure happened (only the directory flush failed).
    replaced: bool,
}

/// Distinguishes the temporary files of concurrent writes within a process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, and returns once the new content is durable.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    let not_replaced = |error| WriteFailure {
        error,
        replaced: false,
    };
    let dir = parent_dir(path);
    let file_name = path.file_name().ok_or_else(|| {
        not_replaced(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the store path has no file name",
        ))
    })?;
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = create_private(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(error) = written {
        // Best effort: the temporary file may not exist at all.
        let _ = fs::remove_file(&temp);
        return Err(not_replaced(error));
    }
    sync_dir(dir).map_err(|error| WriteFailure {
        error,
        replaced: true,
    })
}

/// The directory holding `path`; `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates a new file that only its owner can read and write.
fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file to flush it; the rename is as
/// durable as NTFS makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
