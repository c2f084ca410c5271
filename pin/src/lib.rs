//! What every udpchat client on a desktop shares on disk: the pinned server
//! keys (trust on first use, as ssh's `known_hosts`) and where the per-user
//! files live. `chatclient` and `host-runner` both use it, so a key pinned by
//! one is checked by the other; it depends on nothing of either.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use udpchat_core::crypto::{Hex, KEY_LEN, parse_key};

/// The directory of udpchat's per-user files: `udpchat/` in the platform's
/// config directory (`~/.config/udpchat` on Linux,
/// `~/Library/Application Support/udpchat` on macOS, `%APPDATA%\udpchat` on
/// Windows). `None` when the platform has no such directory (no home).
pub fn config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("udpchat"))
}

/// The file of pinned server keys: `CHAT_KNOWN_SERVERS` if set, else
/// `known_servers` in [`config_dir`].
pub fn known_servers_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAT_KNOWN_SERVERS") {
        return Some(PathBuf::from(p));
    }
    config_dir().map(|d| d.join("known_servers"))
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

    /// Pins `key` for `server`, appending to the file (and creating its
    /// directory).
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

    #[test]
    fn unparsable_lines_are_ignored_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_servers");
        let good = format!("h:1 {}\n", Hex(&[7u8; 32]));
        fs::write(&path, format!("garbage\nh:2 nothex\n{good}")).unwrap();
        let mut k = KnownServers::open(path.clone()).unwrap();
        assert_eq!(k.get("h:1"), Some([7; 32]));
        assert_eq!(k.get("h:2"), None);
        k.add("h:3", &[9; 32]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("garbage\nh:2 nothex\n"), "{text}");
    }

    #[test]
    fn the_pins_live_in_the_config_directory() {
        if std::env::var_os("CHAT_KNOWN_SERVERS").is_none()
            && let Some(dir) = config_dir()
        {
            assert_eq!(known_servers_path(), Some(dir.join("known_servers")));
            assert!(dir.ends_with("udpchat"));
        }
    }
}
