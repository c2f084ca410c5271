//! The users a client ignores (`/ignore`), kept in the file `ignored`
//! beside `known_servers` and `device_tokens` in the config directory
//! (`CHAT_IGNORED` names another): one `HOST:PORT USER NAME` per line, for
//! the account USER on that server (USER in lowercase). The file is
//! private to the user (mode 0600 on Unix) and rewritten atomically
//! (temporary file, fsync, rename).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The file of ignored users: `CHAT_IGNORED` if set, else `ignored` in
/// the config directory.
pub fn ignored_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAT_IGNORED") {
        return Some(PathBuf::from(p));
    }
    udpchat_pin::config_dir().map(|d| d.join("ignored"))
}

/// The users ignored, per server and account.
#[derive(Debug)]
pub struct IgnoreFile {
    path: PathBuf,
    /// (server, account, ignored name), in the file's order.
    entries: Vec<(String, String, String)>,
}

impl IgnoreFile {
    /// Reads the file; a missing file is empty; lines that are not three
    /// words are dropped at the next write.
    pub fn open(path: PathBuf) -> io::Result<IgnoreFile> {
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let entries = text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let entry = (parts.next()?, parts.next()?, parts.next()?);
                parts.next().is_none().then(|| {
                    (
                        entry.0.to_string(),
                        entry.1.to_string(),
                        entry.2.to_string(),
                    )
                })
            })
            .collect();
        Ok(IgnoreFile { path, entries })
    }

    /// The users `user` ignores on `server` (`HOST:PORT`).
    pub fn get(&self, server: &str, user: &str) -> Vec<String> {
        let user = user.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(s, u, _)| s == server && *u == user)
            .map(|(_, _, n)| n.clone())
            .collect()
    }

    /// Replaces the users `user` ignores on `server` with `names`, and
    /// writes the file. When the path names something other than a regular
    /// file (`/dev/null`), nothing is written.
    pub fn set(&mut self, server: &str, user: &str, names: &[String]) -> io::Result<()> {
        if fs::metadata(&self.path).is_ok_and(|m| !m.is_file()) {
            return Ok(());
        }
        let user = user.to_ascii_lowercase();
        if server.contains(char::is_whitespace)
            || user.contains(char::is_whitespace)
            || names
                .iter()
                .any(|n| n.is_empty() || n.contains(char::is_whitespace))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a server or user name with white space",
            ));
        }
        self.entries
            .retain(|(s, u, _)| !(s == server && *u == user));
        self.entries.extend(
            names
                .iter()
                .map(|n| (server.to_string(), user.clone(), n.clone())),
        );
        udpchat_pin::write_private_lines(
            &self.path,
            self.entries.iter().map(|(s, u, n)| format!("{s} {u} {n}")),
        )
    }

    /// Where the list lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_round_trips_privately_per_server_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("ignored");
        let mut f = IgnoreFile::open(path.clone()).unwrap();
        assert!(f.get("h:1", "alice").is_empty());
        f.set("h:1", "Alice", &["bob".into(), "Carol".into()])
            .unwrap();
        f.set("h:2", "alice", &["dave".into()]).unwrap();
        f.set("h:1", "bob", &["alice".into()]).unwrap();
        // A new list replaces the old one.
        f.set("h:1", "alice", &["Carol".into()]).unwrap();
        let f = IgnoreFile::open(path.clone()).unwrap();
        assert_eq!(f.get("h:1", "ALICE"), ["Carol"]);
        assert_eq!(f.get("h:2", "alice"), ["dave"]);
        assert_eq!(f.get("h:1", "bob"), ["alice"]);
        assert!(!path.with_extension("tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Emptied, and garbage lines dropped at the next write.
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("garbage\nh:9 x y z\n");
        fs::write(&path, text).unwrap();
        let mut f = IgnoreFile::open(path.clone()).unwrap();
        f.set("h:1", "alice", &[]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "h:2 alice dave\nh:1 bob alice\n"
        );
        assert!(f.set("h:1", "alice", &["a b".into()]).is_err());
    }

    #[test]
    fn a_path_that_is_no_file_keeps_nothing() {
        let mut f = IgnoreFile::open(PathBuf::from("/dev/null")).unwrap();
        f.set("h:1", "alice", &["bob".into()]).unwrap();
        assert!(f.get("h:1", "alice").is_empty());
    }
}
