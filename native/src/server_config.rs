//! `chatserver`'s optional configuration file (`--config PATH` or
//! `CHAT_SERVER_CONFIG`): TOML.
//!
//! Each setting is taken from the first place that has it, as for
//! `chatclient`: the command-line flag, then its environment variable,
//! then this file, then the built-in default. A setting the file does not
//! know is refused, naming the file, so that a typo is not silently
//! ignored.
//!
//! ```toml
//! # The accounts that are server admins (PROTOCOL.md §5.12); the flag
//! # --admin or CHAT_ADMINS, when given, replaces this list.
//! admins = ["alice", "bob"]
//! # One node of a cluster (docs/CLUSTER.md): --cluster / CHAT_CLUSTER and
//! # --node / CHAT_NODE win over these.
//! cluster = "redis://127.0.0.1:6379"
//! node = "a"
//! ```

use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::config::ConfigError;

/// The settings a server configuration file may hold; each is optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Server admins, by username.
    pub admins: Option<Vec<String>>,
    /// The Redis URL of the cluster this server is a node of.
    pub cluster: Option<String>,
    /// This node's name in the cluster.
    pub node: Option<String>,
}

/// Reads the configuration file at `path` (it must exist: it was named).
pub fn load(path: &Path) -> Result<ServerFile, ConfigError> {
    let text = fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
    parse(&text).map_err(|m| ConfigError::Parse(path.to_path_buf(), m))
}

fn parse(text: &str) -> Result<ServerFile, String> {
    let file: ServerFile =
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    for name in file.admins.iter().flatten() {
        udpchat_core::session::validate_username(name)
            .map_err(|e| format!("admins: {name:?}: {e}"))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn admins_parse_and_an_empty_file_sets_nothing() {
        let file = parse("admins = [\"alice\", \"Bob\"]\n").unwrap();
        assert_eq!(
            file.admins,
            Some(vec!["alice".to_string(), "Bob".to_string()])
        );
        assert_eq!(parse("").unwrap(), ServerFile::default());
        let file = parse("cluster = \"redis://127.0.0.1:6379\"\nnode = \"a\"\n").unwrap();
        assert_eq!(file.cluster.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(file.node.as_deref(), Some("a"));
    }

    #[test]
    fn unknown_keys_bad_values_and_bad_names_are_refused() {
        for text in [
            "admin = [\"alice\"]",
            "admins = \"alice\"",
            "admins = [1]",
            "admins = [\"not a name\"]",
            "[",
        ] {
            assert!(parse(text).is_err(), "{text} accepted");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        fs::write(&path, "admins = [\"alice\"]\nport = 1\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("server.toml") && e.contains("port"), "{e}");
        let missing = load(&PathBuf::from("/nonexistent/server.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read(..)));
    }
}
