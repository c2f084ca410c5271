//! The user store: `chat_users.json`.
//!
//! # File format (version 1)
//!
//! A single UTF-8 JSON object:
//!
//! ```json
//! {
//!   "version": 1,
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
//! * `users` — the registered users, in registration order.
//! * `name` — the user name exactly as it was registered. Names are unique
//!   *case-insensitively*, comparing ASCII letters without regard to case
//!   (`Alice` and `alice` are the same user; other characters compare as
//!   bytes).
//! * `password_hash` — the password as an argon2id hash in PHC string format
//!   (see [`crate::passwords`]). Passwords are never stored in clear.
//! * `created` — when the user registered, in seconds since the Unix epoch, as
//!   a JSON integer.
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

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The only file format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

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
            Self::Read { source, .. } | Self::Write { source, .. } => Some(source),
            Self::Parse { source, .. } => Some(source),
            Self::NoDirectory { .. }
            | Self::UnsupportedVersion { .. }
            | Self::DuplicateInFile { .. }
            | Self::NameTaken { .. }
            | Self::Poisoned { .. } => None,
        }
    }
}

/// The registered users, backed by a JSON file (see the [module docs](self)).
///
/// All reads are served from memory; [`add`](Self::add) and
/// [`add_many`](Self::add_many) block on disk I/O (including `fsync`), so an
/// event loop should call them from a worker thread.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    users: Vec<UserRecord>,
    /// ASCII-lowercased name → index into `users`.
    index: HashMap<String, usize>,
    poisoned: bool,
    /// Bytes of the store files written in full since the store was opened.
    bytes_written: u64,
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
    users: Vec<UserRecord>,
}

/// The whole file, version 1, as written.
#[derive(Serialize)]
struct FileV1Ref<'a> {
    version: u64,
    users: &'a [UserRecord],
}

impl UserStore {
    /// Opens the store at `path`.
    ///
    /// A missing file is an empty store (nothing is created until the first
    /// [`add`](Self::add)), if its directory exists. Any other problem — unreadable file, invalid JSON,
    /// unexpected layout, unknown version, duplicate names — is an error, and
    /// the file is left as it is.
    pub fn open(path: &Path) -> Result<UserStore, StoreError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = parent_dir(path);
                if !dir.is_dir() {
                    return Err(StoreError::NoDirectory {
                        path: path.to_path_buf(),
                        dir: dir.to_path_buf(),
                    });
                }
                return Ok(UserStore {
                    path: path.to_path_buf(),
                    users: Vec::new(),
                    index: HashMap::new(),
                    poisoned: false,
                    bytes_written: 0,
                });
            }
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
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
        Ok(UserStore {
            path: path.to_path_buf(),
            users: file.users,
            index,
            poisoned: false,
            bytes_written: 0,
        })
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
    /// A name already registered, or registered earlier in the same batch
    /// (case-insensitively), is refused with [`StoreError::NameTaken`]; the
    /// others are unaffected. If the file could not be written, every other
    /// registration fails with [`StoreError::Write`] and none is kept, in
    /// memory or on disk. When every registration is refused nothing is
    /// written. Blocks on disk I/O.
    pub fn add_many(&mut self, batch: &[NewUser<'_>]) -> Vec<Result<(), StoreError>> {
        if self.poisoned {
            return batch
                .iter()
                .map(|_| {
                    Err(StoreError::Poisoned {
                        path: self.path.clone(),
                    })
                })
                .collect();
        }
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
        let bytes = encode(&self.users);
        match write_atomically(&self.path, &bytes) {
            Ok(()) => {
                self.bytes_written += bytes.len() as u64;
                results
            }
            Err(failure) => {
                for user in self.users.drain(before..) {
                    self.index.remove(&fold(&user.name));
                }
                if failure.replaced {
                    // The new file is in place but not known to be durable:
                    // put the previous content back so disk matches memory.
                    let previous = encode(&self.users);
                    match write_atomically(&self.path, &previous) {
                        Ok(()) => self.bytes_written += previous.len() as u64,
                        Err(_) => self.poisoned = true,
                    }
                }
                let error = failure.error;
                for result in &mut results {
                    if result.is_ok() {
                        *result = Err(StoreError::Write {
                            path: self.path.clone(),
                            source: io::Error::new(error.kind(), error.to_string()),
                        });
                    }
                }
                results
            }
        }
    }
}

/// The case-insensitive key of a name.
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn encode(users: &[UserRecord]) -> Vec<u8> {
    let file = FileV1Ref {
        version: FORMAT_VERSION,
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
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

    fn store_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("chat_users.json")
    }

    #[test]
    fn missing_file_is_empty_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let store = UserStore::open(&path).unwrap();
        assert!(store.is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        store.add("Alice", HASH, 1_700_000_000).unwrap();
        store.add("bob", "$argon2id$other", 1_700_000_001).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("alice").unwrap().name, "Alice");
        assert_eq!(store.get("BOB").unwrap().password_hash, "$argon2id$other");
        assert!(store.get("carol").is_none());

        let reopened = UserStore::open(&path).unwrap();
        assert_eq!(reopened.users(), store.users());
        assert_eq!(reopened.users()[0].created, 1_700_000_000);
        assert_eq!(reopened.get("ALICE").unwrap().name, "Alice");

        // The documented layout, field for field.
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "users": [
                {"name": "Alice", "password_hash": HASH, "created": 1_700_000_000u64},
                {"name": "bob", "password_hash": "$argon2id$other", "created": 1_700_000_001u64},
            ]})
        );
    }

    #[test]
    fn reads_compact_documented_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        fs::write(
            &path,
            format!(r#"{{"version":1,"users":[{{"name":"alice","password_hash":"{HASH}","created":5}}]}}"#),
        )
        .unwrap();
        let store = UserStore::open(&path).unwrap();
        assert_eq!(store.users()[0].name, "alice");
        assert_eq!(store.users()[0].created, 5);
    }

    #[test]
    fn duplicate_rejected_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        let before = fs::read(&path).unwrap();
        match store.add("ALICE", HASH, 2) {
            Err(StoreError::NameTaken { existing }) => assert_eq!(existing, "alice"),
            other => panic!("expected NameTaken, got {other:?}"),
        }
        assert_eq!(store.len(), 1);
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn corrupt_file_is_an_error_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        for bytes in [
            &b"{\"version\":1,\"users\":[{\"name\":\"al"[..],
            b"",
            b"\xff\xfe not utf-8",
            b"[]",
            b"{\"version\":1,\"users\":[{\"name\":\"a\"}]}",
            b"{\"version\":1,\"users\":[],\"extra\":true}",
        ] {
            fs::write(&path, bytes).unwrap();
            let err = UserStore::open(&path).unwrap_err();
            assert!(matches!(err, StoreError::Parse { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn duplicate_in_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let bytes = format!(
            r#"{{"version":1,"users":[
                {{"name":"bob","password_hash":"{HASH}","created":1}},
                {{"name":"Bob","password_hash":"{HASH}","created":2}}]}}"#
        );
        fs::write(&path, &bytes).unwrap();
        let err = UserStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateInFile { name, .. } if name == "Bob"),
            "{err:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes.as_bytes());
    }

    #[test]
    fn unknown_or_missing_version_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        for (bytes, found) in [
            (&b"{\"version\":2,\"users\":[]}"[..], Some("2")),
            (b"{\"version\":\"1\",\"users\":[]}", Some("\"1\"")),
            (b"{\"users\":[]}", None),
        ] {
            fs::write(&path, bytes).unwrap();
            let err = UserStore::open(&path).unwrap_err();
            match &err {
                StoreError::UnsupportedVersion { found: f, .. } => {
                    assert_eq!(f.as_deref(), found)
                }
                other => panic!("expected UnsupportedVersion, got {other:?}"),
            }
            assert!(err.to_string().contains(&path.display().to_string()));
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        fs::create_dir(&path).unwrap();
        let err = UserStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Read { .. }), "{err:?}");
    }

    #[test]
    fn leftover_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        // A crash between writing the temporary file and the rename.
        let temp = dir.path().join(".chat_users.json.tmp-99999-0");
        fs::write(&temp, b"{\"version\":1,\"users\":[{\"name\":\"half").unwrap();

        let mut reopened = UserStore::open(&path).unwrap();
        assert_eq!(reopened.users(), store.users());
        reopened.add("bob", HASH, 2).unwrap();
        assert_eq!(UserStore::open(&path).unwrap().len(), 2);
        // No temporary file of ours is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn failed_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("chat_users.json");
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        // Make the rename impossible: the target becomes a non-empty directory.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();

        let err = store.add("bob", HASH, 2).unwrap_err();
        assert!(matches!(err, StoreError::Write { .. }), "{err:?}");
        assert_eq!(store.len(), 1);
        assert!(store.get("bob").is_none());
        // The temporary file was cleaned up.
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1);

        // Once the obstacle is gone, the name is free again.
        fs::remove_dir_all(&path).unwrap();
        store.add("bob", HASH, 2).unwrap();
        assert_eq!(UserStore::open(&path).unwrap().len(), 2);
    }

    fn new_users<'a>(names: &'a [&'a str]) -> Vec<NewUser<'a>> {
        names
            .iter()
            .map(|name| NewUser {
                name,
                password_hash: HASH,
                created: 7,
            })
            .collect()
    }

    #[test]
    fn a_batch_lands_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        let results = store.add_many(&new_users(&["alice", "bob", "carol"]));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Exactly one file was written: the one now in place.
        assert_eq!(store.bytes_written(), fs::metadata(&path).unwrap().len());
        let reopened = UserStore::open(&path).unwrap();
        assert_eq!(reopened.users(), store.users());
        assert_eq!(reopened.len(), 3);
        // An empty batch writes nothing.
        assert!(store.add_many(&[]).is_empty());
        assert_eq!(store.bytes_written(), fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn duplicates_in_a_batch_are_refused_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        let written = store.bytes_written();
        let results = store.add_many(&new_users(&["Bob", "ALICE", "bob", "carol"]));
        assert!(results[0].is_ok());
        assert!(
            matches!(&results[1], Err(StoreError::NameTaken { existing }) if existing == "alice"),
            "{results:?}"
        );
        assert!(
            matches!(&results[2], Err(StoreError::NameTaken { existing }) if existing == "Bob"),
            "{results:?}"
        );
        assert!(results[3].is_ok());
        let names: Vec<_> = store.users().iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "Bob", "carol"]);
        // One write for the batch.
        assert_eq!(
            store.bytes_written() - written,
            fs::metadata(&path).unwrap().len()
        );
        assert_eq!(UserStore::open(&path).unwrap().users(), store.users());

        // A batch whose every name is taken writes nothing.
        let before = fs::read(&path).unwrap();
        let written = store.bytes_written();
        let results = store.add_many(&new_users(&["BOB", "Carol"]));
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(StoreError::NameTaken { .. }))),
            "{results:?}"
        );
        assert_eq!(store.bytes_written(), written);
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_failed_batch_write_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("chat_users.json");
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        let before_users = store.users().to_vec();
        // Make the rename impossible: the target becomes a non-empty directory.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        let written = store.bytes_written();

        let results = store.add_many(&new_users(&["bob", "Alice", "carol"]));
        assert!(
            matches!(&results[0], Err(StoreError::Write { .. })),
            "{results:?}"
        );
        assert!(
            matches!(&results[1], Err(StoreError::NameTaken { .. })),
            "{results:?}"
        );
        assert!(
            matches!(&results[2], Err(StoreError::Write { .. })),
            "{results:?}"
        );
        // Memory is as before the batch, and so is the directory: the
        // obstacle untouched, no temporary file left behind.
        assert_eq!(store.users(), &before_users[..]);
        assert!(store.get("bob").is_none() && store.get("carol").is_none());
        assert_eq!(store.bytes_written(), written);
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1);
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"x");

        // Once the obstacle is gone, the names are free again.
        fs::remove_dir_all(&path).unwrap();
        let results = store.add_many(&new_users(&["bob", "carol"]));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let reopened = UserStore::open(&path).unwrap();
        assert_eq!(reopened.users(), store.users());
        assert_eq!(reopened.len(), 3);
    }

    /// The bytes written for 10,000 registrations, one rewrite each against
    /// one rewrite per batch. Run with `--nocapture` to see the figures.
    ///
    /// Writing gigabytes with an `fsync` each would take minutes, so the total
    /// is computed from the encoder's output sizes; the model is checked
    /// against the bytes a real store writes for a smaller run.
    #[test]
    fn registration_bytes_written() {
        const N: usize = 10_000;
        let record = |i: usize| UserRecord {
            // Same-length names, so every record encodes to the same size.
            name: format!("user{i:05}"),
            password_hash: HASH.to_owned(),
            created: 1_700_000_000,
            suspended: None,
        };
        let users: Vec<UserRecord> = (0..N).map(record).collect();
        let len1 = encode(&users[..1]).len() as u64;
        let per_user = encode(&users[..2]).len() as u64 - len1;
        // The file's size after `n` registrations (n ≥ 1).
        let file_len = |n: usize| len1 + per_user * (n as u64 - 1);
        for n in [1, 2, 3, 17, 1_000, N] {
            assert_eq!(encode(&users[..n]).len() as u64, file_len(n), "n = {n}");
        }
        // Bytes written when the registrations arrive in batches of `batch`.
        let model = |count: usize, batch: usize| -> u64 {
            (1..=count.div_ceil(batch))
                .map(|k| file_len((k * batch).min(count)))
                .sum()
        };

        // The model against real stores, one registration at a time and in
        // batches.
        for (count, batch) in [(120, 1), (600, 64)] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = UserStore::open(&store_path(&dir)).unwrap();
            for chunk in users[..count].chunks(batch) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|u| NewUser {
                        name: &u.name,
                        password_hash: &u.password_hash,
                        created: u.created,
                    })
                    .collect();
                assert!(store.add_many(&batch).iter().all(Result::is_ok));
            }
            assert_eq!(store.bytes_written(), model(count, batch));
        }

        let before = model(N, 1);
        println!(
            "user store, {N} registrations, final file {} bytes:",
            file_len(N)
        );
        println!("  one write per registration: {before:>14} bytes, {N} writes");
        for batch in [16, 64, 256, 1024] {
            let after = model(N, batch);
            println!(
                "  batches of {batch:>4}:           {after:>14} bytes, {} writes ({:.1}x less)",
                N.div_ceil(batch),
                before as f64 / after as f64
            );
        }
        assert!(model(N, 64) * 60 < before);
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let mut store = UserStore::open(&path).unwrap();
        store.add("alice", HASH, 1).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_store_in_a_missing_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = UserStore::open(&missing.join("chat_users.json")).unwrap_err();
        assert!(matches!(err, StoreError::NoDirectory { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!(
                "the directory {} does not exist",
                missing.display()
            )),
            "{err}"
        );
        assert!(!missing.exists());
    }

    #[test]
    fn bare_file_name_lives_in_current_directory() {
        assert_eq!(parent_dir(Path::new("chat_users.json")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/var/x.json")), Path::new("/var"));
        assert!(write_atomically(Path::new(""), b"{}").is_err());
    }
}
