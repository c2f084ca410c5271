//! The store file on disk: reading and checking it, what identifies one
//! version of it, writing it atomically, and the lock of its writers.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, LOCK_TIMEOUT, StoreError, UserRecord, fold};

/// What identifies one version of the store file: its `generation`, and
/// what the file system says of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Marker {
    pub(super) generation: u64,
    /// `None`: there is no file.
    pub(super) stamp: Option<Stamp>,
}

/// The file's length, modification time and identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
    /// Device and inode (Unix); every rewrite is a new file.
    pub(super) id: (u64, u64),
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Stamp {
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
pub(super) struct Loaded {
    pub(super) users: Vec<UserRecord>,
    pub(super) index: HashMap<String, usize>,
    pub(super) marker: Marker,
}

/// The held lock of a store; released when dropped (the file is closed).
pub(super) struct StoreLock {
    _file: fs::File,
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

/// The lock file of the store at `path`: `<file name>.lock` beside it.
pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    parent_dir(path).join(name)
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
pub(super) fn current_marker(path: &Path) -> Result<Marker, StoreError> {
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
pub(super) fn load(path: &Path) -> Result<Loaded, StoreError> {
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

/// The file's bytes for `users` as generation `generation`.
pub(super) fn encode(users: &[UserRecord], generation: u64) -> Vec<u8> {
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
pub(super) struct WriteFailure {
    pub(super) error: io::Error,
    /// Whether the target had already been replaced by the new content when
    /// the failure happened (only the directory flush failed).
    pub(super) replaced: bool,
}

/// Distinguishes the temporary files of concurrent writes within a process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, and returns once the new content is durable.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
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
pub(super) fn parent_dir(path: &Path) -> &Path {
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

/// Takes the store's lock, waiting at most [`LOCK_TIMEOUT`].
pub(super) fn lock(lock_path: &Path) -> Result<StoreLock, StoreError> {
    let lock_error = |source| StoreError::Lock {
        path: lock_path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(lock_path).map_err(lock_error)?;
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
