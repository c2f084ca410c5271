//! The server's key as `chatclient` keeps it: pinned on first use in
//! `known_servers` (as ssh's `known_hosts`), replaced when the user gives
//! the new key with `--server-key`, forgotten with `--forget-server`, and a
//! changed key explained in words that say what to do.

use std::path::PathBuf;
use std::process::ExitCode;

use udpchat_core::crypto::Hex;
use udpchat_native::address::{HostPort, ServerName};
use udpchat_pin::{KnownServers, known_servers_path};

use crate::cli::DEFAULT_PORT;

/// Where the key the client insists on came from.
#[derive(Clone, Debug)]
pub enum PinSource {
    /// `--server-key`, `CHAT_SERVER_KEY` or `server_key` in the config file.
    Setting,
    /// This file of pinned keys.
    KnownServers(PathBuf),
}

/// The name of a server in `known_servers`: `HOST:PORT` with the host as
/// given, as `host-runner` writes it too.
pub fn pin_name(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

/// Keeps the key the server proved, as ssh does: on first use, or in place
/// of the pin it replaces when the user gave the new key as a setting.
pub fn remember(known: &mut Option<KnownServers>, name: &str, key: &[u8; 32]) {
    let Some(known) = known.as_mut() else {
        eprintln!(
            "chatclient: {name} has key {} (could not remember it)",
            Hex(key)
        );
        return;
    };
    let before = known.get(name);
    if before == Some(*key) {
        return;
    }
    match known.replace(name, key) {
        Ok(()) => match before {
            None => eprintln!(
                "chatclient: {name} has key {}; remembered in {}",
                Hex(key),
                known.path().display()
            ),
            Some(old) => eprintln!(
                "chatclient: {name} has key {}; it replaces {} in {}",
                Hex(key),
                Hex(&old),
                known.path().display()
            ),
        },
        Err(e) => eprintln!(
            "chatclient: {name} has key {} (could not remember it in {}: {e})",
            Hex(key),
            known.path().display()
        ),
    }
}

/// What to tell the user when the server proves another key than the one
/// pinned: the first line says what happened, the others what to do.
pub fn mismatch_lines(
    server: ServerName<'_>,
    expected: &[u8; 32],
    actual: &[u8; 32],
    source: &PinSource,
) -> Vec<String> {
    let pinned_by = match source {
        PinSource::KnownServers(path) => {
            format!("pinned in known_servers ({})", path.display())
        }
        PinSource::Setting => {
            "given by --server-key (or CHAT_SERVER_KEY, or server_key in the config file)"
                .to_string()
        }
    };
    let accept = match source {
        PinSource::KnownServers(_) => format!(
            "  If it prints {}, accept it: `chatclient --forget-server {server}` and connect \
             again, or connect once with `--server-key {}`; either replaces the pin.",
            Hex(actual),
            Hex(actual)
        ),
        PinSource::Setting => format!(
            "  If it prints {}, give that key instead (--server-key, CHAT_SERVER_KEY or \
             server_key in the config file).",
            Hex(actual)
        ),
    };
    vec![
        format!(
            "THE SERVER'S KEY HAS CHANGED: {server} proved key {}, but the key {pinned_by} \
             is {}.",
            Hex(actual),
            Hex(expected)
        ),
        "  Someone may be impersonating the server, or it was reinstalled with a new key; \
         nothing was sent to it."
            .to_string(),
        "  Ask the server's operator for the output of `chatserver --print-key`.".to_string(),
        accept,
    ]
}

/// `chatclient --forget-server HOST[:PORT]`: removes that server's pin from
/// `known_servers` and says what it removed, or that there was none.
pub fn forget(server: &str) -> ExitCode {
    let target = match HostPort::parse(server) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("chatclient: --forget-server {e}");
            return ExitCode::from(2);
        }
    };
    let port = target.port.unwrap_or(DEFAULT_PORT);
    let name = pin_name(&target.host, port);
    let shown = ServerName {
        host: &target.host,
        port,
    };
    let Some(path) = known_servers_path() else {
        eprintln!(
            "chatclient: no known_servers file: no config directory and no CHAT_KNOWN_SERVERS"
        );
        return ExitCode::FAILURE;
    };
    let result = KnownServers::open(path.clone()).and_then(|mut k| k.remove(&name));
    match result {
        Ok(Some(key)) => {
            println!(
                "forgot the key {} of {shown} in {}; the next connection pins the key the \
                 server shows",
                Hex(&key),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("no key of {shown} in {}: nothing to forget", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatclient: cannot rewrite {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
