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
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The file's form of the server core's suspension.
    pub fn from_core(s: &udpchat_core::server::Suspension) -> Self {
        StoredSuspension {
            until: s.until,
            reason: s.reason.clone(),
            by: s.by.clone(),
        }
    }

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

/// A failed [`UserStore::write_locked`].
struct WriteFailed {
    error: StoreError,
    /// Whether the file had already been replaced by the new content.
    replaced: bool,
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
        let _lock = lock(&self.lock_path)?;
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
        let lock = lock(&self.lock_path)?;
        if self.changed_on_disk()? {
            self.sync_locked()?;
        }
        Ok(lock)
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
                replaced: replaced && write_file(&self.path, &bytes).is_ok(),
            }),
            None => write_file(&self.path, &bytes),
        };
        #[cfg(not(test))]
        let written = write_file(&self.path, &bytes);
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
        match write_file(&self.path, &previous) {
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

/// The case-insensitive key of a name.
pub(super) fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

mod file;

use file::{
    Marker, Stamp, StoreLock, current_marker, encode, load, lock, lock_path, parent_dir,
    write_atomically as write_file,
};
#[cfg(test)]
use file::{WriteFailure, write_atomically};

#[cfg(test)]
mod tests;
