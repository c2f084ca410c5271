//! `chatclient`'s optional config file: TOML, in the platform's config
//! directory (`~/.config/udpchat/config.toml` on Linux,
//! `~/Library/Application Support/udpchat/config.toml` on macOS,
//! `%APPDATA%\udpchat\config.toml` on Windows), or wherever `CHAT_CONFIG`
//! (or `--config`) points.
//!
//! Each setting is taken from the first place that has it: command-line
//! flags and arguments, then environment variables, then this file, then
//! the built-in defaults. A password is never read from it.
//!
//! ```toml
//! server = "chat.example.org"
//! port = 65015
//! user = "alice"
//! server_key = "3f1c...64 hex digits..."
//! color = "auto"      # auto, always or never
//! json = false
//! reconnect = true
//! ```

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::terminal::ColorChoice;

/// The settings a config file may hold; each is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The server's host name or address.
    pub server: Option<String>,
    /// The server's UDP port.
    pub port: Option<u16>,
    /// The username.
    pub user: Option<String>,
    /// The server's public key, 64 hex digits.
    pub server_key: Option<String>,
    /// When to colour the output.
    pub color: Option<ColorChoice>,
    /// One JSON object per line instead of text.
    pub json: Option<bool>,
    /// Reconnect after losing the server.
    pub reconnect: Option<bool>,
    /// Other nodes of the same chat, `HOST[:PORT]` each.
    pub fallback: Option<Vec<String>>,
    /// Present only to refuse it with a clear message.
    #[serde(default)]
    password: Option<IgnoredAny>,
}

/// Why the config file cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// It could not be read.
    Read(PathBuf, io::Error),
    /// It is not valid TOML, or has unknown or mistyped settings.
    Parse(PathBuf, String),
    /// It holds a password.
    Password(PathBuf),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read(p, e) => {
                write!(f, "cannot read the config file {}: {e}", p.display())
            }
            ConfigError::Parse(p, e) => write!(f, "config file {}: {e}", p.display()),
            ConfigError::Password(p) => write!(
                f,
                "config file {}: passwords are never read from a file; remove `password` and \
                 use CHAT_PASSWORD or the prompt",
                p.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the config file is looked for: `explicit` (from `--config` or
/// `CHAT_CONFIG`) if given, else `udpchat/config.toml` in the platform's
/// config directory.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => udpchat_pin::config_dir().map(|d| d.join("config.toml")),
    }
}

/// Reads the config file at `path`. A missing file is an empty config,
/// unless the path was given explicitly (`required`).
pub fn load(path: &Path, required: bool) -> Result<ClientFile, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
            return Ok(ClientFile::default());
        }
        Err(e) => return Err(ConfigError::Read(path.to_path_buf(), e)),
    };
    parse(&text).map_err(|e| match e {
        ParseFailure::Password => ConfigError::Password(path.to_path_buf()),
        ParseFailure::Toml(m) => ConfigError::Parse(path.to_path_buf(), m),
    })
}

enum ParseFailure {
    Password,
    Toml(String),
}

fn parse(text: &str) -> Result<ClientFile, ParseFailure> {
    // The full message shows the line and points at the setting.
    let file: ClientFile = toml::from_str(text)
        .map_err(|e| ParseFailure::Toml(e.to_string().trim_end().to_string()))?;
    if file.password.is_some() {
        return Err(ParseFailure::Password);
    }
    Ok(file)
}

/// The first of `flag_or_env` (clap has already preferred the flag over
/// the environment), `file` and `default` that is set.
pub fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: Option<T>) -> Option<T> {
    flag_or_env.or(file).or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let file = parse(
            r#"
            server = "chat.example.org"
            port = 7000
            user = "alice"
            server_key = "00"
            color = "never"
            json = true
            reconnect = false
            fallback = ["b.example.org", "c.example.org:7001"]
            "#,
        )
        .ok()
        .unwrap();
        assert_eq!(file.server.as_deref(), Some("chat.example.org"));
        assert_eq!(file.port, Some(7000));
        assert_eq!(file.user.as_deref(), Some("alice"));
        assert_eq!(file.color, Some(ColorChoice::Never));
        assert_eq!(file.json, Some(true));
        assert_eq!(file.reconnect, Some(false));
        assert_eq!(
            file.fallback,
            Some(vec![
                "b.example.org".to_string(),
                "c.example.org:7001".to_string()
            ])
        );
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        assert_eq!(parse("").ok().unwrap(), ClientFile::default());
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        for text in [
            "sever = \"x\"",
            "port = 70000",
            "port = \"x\"",
            "color = \"red\"",
            "[",
        ] {
            match parse(text) {
                Err(ParseFailure::Toml(m)) => assert!(!m.is_empty(), "{text}"),
                _ => panic!("{text} accepted"),
            }
        }
    }

    #[test]
    fn a_password_is_refused_with_a_reason() {
        assert!(matches!(
            parse("password = \"hunter2\""),
            Err(ParseFailure::Password)
        ));
        let e = ConfigError::Password(PathBuf::from("c.toml"));
        assert!(e.to_string().contains("never read from a file"), "{e}");
    }

    #[test]
    fn missing_files_are_empty_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.toml");
        assert_eq!(load(&path, false).unwrap(), ClientFile::default());
        assert!(matches!(load(&path, true), Err(ConfigError::Read(..))));
        fs::write(&path, "user = \"bob\"\n").unwrap();
        assert_eq!(load(&path, true).unwrap().user.as_deref(), Some("bob"));
    }

    #[test]
    fn flags_and_env_beat_the_file_which_beats_defaults() {
        assert_eq!(pick(Some(1), Some(2), Some(3)), Some(1));
        assert_eq!(pick(None, Some(2), Some(3)), Some(2));
        assert_eq!(pick(None, None, Some(3)), Some(3));
        assert_eq!(pick::<u8>(None, None, None), None);
    }
}
