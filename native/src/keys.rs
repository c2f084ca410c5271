//! Key material on disk: the server's static key, and the client's pinned
//! server keys (trust on first use, as ssh's `known_hosts`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use udpchat_core::crypto::{Hex, KEY_LEN, StaticKey, parse_key};

/// Loads the server's static key from `path`, creating it (readable only by
/// its owner on Unix) from 32 random bytes if the file does not exist.
pub fn load_or_create_server_key(path: &Path) -> Result<StaticKey, String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let private = parse_key(&text).ok_or_else(|| {
                format!(
                    "{}: not a server key (expected 64 hex digits); the file was left untouched",
                    path.display()
                )
            })?;
            Ok(StaticKey::from_private(private))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let private: [u8; KEY_LEN] = rand::random();
            write_private(path, &format!("{}\n", Hex(&private)))
                .map_err(|e| format!("cannot create the server key {}: {e}", path.display()))?;
            Ok(StaticKey::from_private(private))
        }
        Err(e) => Err(format!(
            "cannot read the server key {}: {e}",
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

/// The file of pinned server keys: `CHAT_KNOWN_SERVERS` if set, else
/// `known_servers` in the platform's config directory (`udpchat/`).
pub fn known_servers_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAT_KNOWN_SERVERS") {
        return Some(PathBuf::from(p));
    }
    dirs::config_dir().map(|d| d.join("udpchat").join("known_servers"))
}

/// Pinned keys, one `HOST:PORT HEXKEY` per line.
#[derive(Debug)]
pub struct KnownServers {
    path: PathBuf,
    entries: Vec<(String, [u8; KEY_LEN])>,
}

impl KnownServers {
    /// Reads the file; a missing file is empty. Unparsable lines are kept
    /// on disk but ignored.
    pub fn open(path: PathBuf) -> io::Result<KnownServers> {
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let entries = text
            .lines()
            .filter_map(|l| {
                let (name, key) = l.trim().split_once(' ')?;
                Some((name.to_string(), parse_key(key)?))
            })
            .collect();
        Ok(KnownServers { path, entries })
    }

    /// The pinned key of `server` (`HOST:PORT`), if any.
    pub fn get(&self, server: &str) -> Option<[u8; KEY_LEN]> {
        self.entries
            .iter()
            .find(|(n, _)| n == server)
            .map(|(_, k)| *k)
    }

    /// Pins `key` for `server`, appending to the file.
    pub fn add(&mut self, server: &str, key: &[u8; KEY_LEN]) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{server} {}", Hex(key))?;
        f.sync_all()?;
        self.entries.push((server.to_string(), *key));
        Ok(())
    }

    /// Where the pins live.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

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
    fn known_servers_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("known_servers");
        let mut k = KnownServers::open(path.clone()).unwrap();
        assert_eq!(k.get("h:1"), None);
        k.add("h:1", &[3; 32]).unwrap();
        let k = KnownServers::open(path).unwrap();
        assert_eq!(k.get("h:1"), Some([3; 32]));
        assert_eq!(k.get("h:2"), None);
    }
}
