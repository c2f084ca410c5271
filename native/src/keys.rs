//! The server's static key on disk. (The clients' pinned server keys are
//! in `udpchat-pin`.)

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use udpchat_core::crypto::{Hex, KEY_LEN, StaticKey, parse_key};

use crate::state::parent_dir;

/// Loads the server's static key from `path`, creating it (readable only by
/// its owner on Unix) from 32 random bytes if the file does not exist.
pub fn load_or_create_server_key(path: &Path) -> Result<StaticKey, String> {
    match load_server_key(path)? {
        Some(key) => Ok(key),
        None => create_server_key(path),
    }
}

/// Loads the server's static key from `path`; `None` if there is no such
/// file. A file that is not a key is an error, and is left untouched.
pub fn load_server_key(path: &Path) -> Result<Option<StaticKey>, String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let private = parse_key(&text).ok_or_else(|| {
                format!(
                    "{}: not a server key (expected 64 hex digits); the file was left untouched",
                    path.display()
                )
            })?;
            Ok(Some(StaticKey::from_private(private)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read the server key {}: {e}",
            path.display()
        )),
    }
}

/// Creates a new server key at `path` from 32 random bytes, readable only by
/// its owner on Unix. Fails if the file exists.
pub fn create_server_key(path: &Path) -> Result<StaticKey, String> {
    let private: [u8; KEY_LEN] = rand::random();
    match write_private(path, &format!("{}\n", Hex(&private))) {
        Ok(()) => Ok(StaticKey::from_private(private)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "cannot create the server key {}: the directory {} does not exist",
            path.display(),
            parent_dir(path).display()
        )),
        Err(e) => Err(format!(
            "cannot create the server key {}: {e}",
            path.display()
        )),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the server key is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat_server.key");
        let a = load_or_create_server_key(&path).unwrap();
        let b = load_or_create_server_key(&path).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, "garbage").unwrap();
        let err = load_or_create_server_key(&path).unwrap_err();
        assert!(err.contains("not a server key"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "garbage");
    }

    #[test]
    fn a_missing_key_is_none_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat_server.key");
        assert!(load_server_key(&path).unwrap().is_none());
        assert!(!path.exists());
        let created = create_server_key(&path).unwrap();
        let loaded = load_server_key(&path).unwrap().unwrap();
        assert_eq!(created.public(), loaded.public());
        assert!(create_server_key(&path).is_err(), "never overwritten");
    }

    #[test]
    fn a_key_in_a_missing_directory_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let err = create_server_key(&missing.join("chat_server.key")).unwrap_err();
        assert!(
            err.contains(&format!(
                "the directory {} does not exist",
                missing.display()
            )),
            "{err}"
        );
    }
}
