//! What every udpchat client on a desktop shares on disk: the pinned server
//! keys (trust on first use, as ssh's `known_hosts`), the device tokens, the
//! input history's place, and where the per-user files live. `chatclient` and `host-runner` both use it, so a key pinned by
//! one is checked by the other; it depends on nothing of either.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use udpchat_core::crypto::{Hex, KEY_LEN, parse_key};

/// Rewrites `path` with `lines`, one per line, so that only its owner may
/// read or write it (mode 0600 on Unix): into a temporary file beside it,
/// flushed to disk, then renamed over it, so that a crash leaves the old
/// file or the new one. Makes the directory when it is missing.
pub fn write_private_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        for line in lines {
            writeln!(f, "{line}")?;
        }
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

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
    /// directory). When the path names something other than a regular file
    /// (`/dev/null`, `NUL`), nothing is written: that keeps nothing.
    pub fn add(&mut self, server: &str, key: &[u8; KEY_LEN]) -> io::Result<()> {
        if fs::metadata(&self.path).is_ok_and(|m| !m.is_file()) {
            self.entries.push((server.to_string(), *key));
            return Ok(());
        }
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

    /// Pins `key` for `server` in place of any other key pinned for it:
    /// the user accepted a new key. Nothing changes when it is the key
    /// already pinned.
    pub fn replace(&mut self, server: &str, key: &[u8; KEY_LEN]) -> io::Result<()> {
        match self.get(server) {
            Some(pinned) if pinned == *key => Ok(()),
            Some(_) => {
                self.remove(server)?;
                self.add(server, key)
            }
            None => self.add(server, key),
        }
    }

    /// Forgets the pin of `server` and returns it (`None` when there was
    /// none, and then the file is left alone). The file is rewritten
    /// atomically (temporary file, fsync, rename) with every other line
    /// kept as it was, unparsable ones included.
    pub fn remove(&mut self, server: &str) -> io::Result<Option<[u8; KEY_LEN]>> {
        let Some(key) = self.get(server) else {
            return Ok(None);
        };
        if fs::metadata(&self.path).is_ok_and(|m| !m.is_file()) {
            self.entries.retain(|(name, _)| name != server);
            return Ok(Some(key));
        }
        let text = fs::read_to_string(&self.path)?;
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            for line in text.lines() {
                let name = line.trim().split_once(' ').map(|(name, _)| name);
                if name != Some(server) {
                    writeln!(f, "{line}")?;
                }
            }
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        self.entries.retain(|(name, _)| name != server);
        Ok(Some(key))
    }

    /// Where the pins live.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The file of device tokens: `CHAT_DEVICE_TOKENS` if set, else
/// `device_tokens` in [`config_dir`].
pub fn device_tokens_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAT_DEVICE_TOKENS") {
        return Some(PathBuf::from(p));
    }
    config_dir().map(|d| d.join("device_tokens"))
}

/// Where a client keeps chat logs (`--log`): `CHAT_LOG_DIR` if set, else
/// `udpchat/logs` in the platform's data directory (`~/.local/share` on
/// Linux).
pub fn log_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAT_LOG_DIR") {
        return Some(PathBuf::from(p));
    }
    dirs::data_dir().map(|d| d.join("udpchat").join("logs"))
}

/// The input history of the clients' line editors: `CHAT_HISTORY` if set
/// (empty: keep none), else `history` in [`config_dir`].
pub fn history_path() -> Option<PathBuf> {
    match std::env::var_os("CHAT_HISTORY") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => config_dir().map(|d| d.join("history")),
    }
}

/// Device tokens that servers issued at successful logins, one
/// `HOST:PORT USERNAME TOKEN` per line (the username in lowercase). A token
/// lets its holder past the per-account limit on failed logins, so the file
/// is private to the user: created with mode 0600 on Unix, rewritten
/// atomically (temporary file, fsync, rename).
#[derive(Debug)]
pub struct DeviceTokens {
    path: PathBuf,
    entries: Vec<(String, String, String)>,
}

impl DeviceTokens {
    /// Reads the file; a missing file is empty; unparsable lines are
    /// dropped at the next write.
    pub fn open(path: PathBuf) -> io::Result<DeviceTokens> {
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let entries = text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let (server, user, token) = (parts.next()?, parts.next()?, parts.next()?);
                Some((server.to_string(), user.to_string(), token.to_string()))
            })
            .collect();
        Ok(DeviceTokens { path, entries })
    }

    /// The token for `user` on `server` (`HOST:PORT`), if any.
    pub fn get(&self, server: &str, user: &str) -> Option<&str> {
        let user = user.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(s, u, _)| s == server && *u == user)
            .map(|(_, _, t)| t.as_str())
    }

    /// Keeps `token` for `user` on `server`, replacing an older one, and
    /// writes the file. When the path names something other than a regular
    /// file (`/dev/null`, `NUL`), nothing is written: that keeps nothing.
    pub fn set(&mut self, server: &str, user: &str, token: &str) -> io::Result<()> {
        let user = user.to_ascii_lowercase();
        if fs::metadata(&self.path).is_ok_and(|m| !m.is_file()) {
            return Ok(());
        }
        if server.contains(char::is_whitespace) || token.contains(char::is_whitespace) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a server name or token with white space",
            ));
        }
        self.entries
            .retain(|(s, u, _)| !(s == server && *u == user));
        self.entries
            .push((server.to_string(), user, token.to_string()));
        write_private_lines(
            &self.path,
            self.entries.iter().map(|(s, u, t)| format!("{s} {u} {t}")),
        )
    }

    /// Where the tokens live.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_tokens_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("device_tokens");
        let mut t = DeviceTokens::open(path.clone()).unwrap();
        assert_eq!(t.get("h:1", "alice"), None);
        t.set("h:1", "Alice", "aa").unwrap();
        t.set("h:2", "alice", "bb").unwrap();
        t.set("h:1", "alice", "cc").unwrap();
        let t = DeviceTokens::open(path.clone()).unwrap();
        assert_eq!(t.get("h:1", "ALICE"), Some("cc"));
        assert_eq!(t.get("h:2", "alice"), Some("bb"));
        assert_eq!(t.get("h:1", "bob"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut t = DeviceTokens::open(path).unwrap();
        assert!(t.set("h:1", "alice", "a b").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let mut null = DeviceTokens::open(PathBuf::from("/dev/null")).unwrap();
            null.set("h:1", "alice", "aa").unwrap();
            assert!(
                fs::metadata("/dev/null")
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
            assert!(!Path::new("/dev/null.tmp").exists());
        }
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

    #[test]
    fn a_pin_is_forgotten_or_replaced_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_servers");
        fs::write(
            &path,
            format!(
                "garbage\nh:1 {}\nh:2 {}\n",
                Hex(&[1u8; 32]),
                Hex(&[2u8; 32])
            ),
        )
        .unwrap();
        let mut k = KnownServers::open(path.clone()).unwrap();
        assert_eq!(k.remove("h:3").unwrap(), None);
        assert_eq!(k.remove("h:1").unwrap(), Some([1; 32]));
        assert_eq!(k.get("h:1"), None);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("garbage\nh:2 {}\n", Hex(&[2u8; 32]))
        );
        k.replace("h:2", &[5; 32]).unwrap();
        k.replace("h:4", &[4; 32]).unwrap();
        let k = KnownServers::open(path.clone()).unwrap();
        assert_eq!(k.get("h:2"), Some([5; 32]));
        assert_eq!(k.get("h:4"), Some([4; 32]));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!path.with_extension("tmp").exists());
        #[cfg(unix)]
        {
            let mut null = KnownServers::open(PathBuf::from("/dev/null")).unwrap();
            null.replace("h:1", &[1; 32]).unwrap();
            null.replace("h:1", &[2; 32]).unwrap();
            assert_eq!(null.remove("h:1").unwrap(), Some([2; 32]));
            assert!(!Path::new("/dev/null.tmp").exists());
        }
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
