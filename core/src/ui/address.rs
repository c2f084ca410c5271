//! Addresses as people type them: `HOST`, `HOST:PORT`, `[IPV6]:PORT`, or
//! a bare IPv6 address; read the same way by `chatclient` and
//! `host-runner`.

use alloc::format;
use alloc::string::{String, ToString};
use core::net::Ipv6Addr;

/// A host name or address, and the port written with it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or address, without brackets.
    pub host: String,
    /// The port after the colon; 0 is allowed here (a local address may
    /// leave the choice to the system).
    pub port: Option<u16>,
}

impl HostPort {
    /// Reads `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6
    /// address (two colons or more: no port).
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: no closing ] after the IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(parse_port(p).map_err(|e| format!("{s:?}: {e}"))?),
                    None => return Err(format!("{s:?}: expected :PORT after ]")),
                },
            };
            (host, port)
        } else if s.matches(':').count() >= 2 {
            if s.parse::<Ipv6Addr>().is_err() {
                return Err(format!(
                    "{s:?} is no IPv6 address (with a port, write one as [::1]:7000)"
                ));
            }
            (s, None)
        } else if let Some((host, p)) = s.split_once(':') {
            (
                host,
                Some(parse_port(p).map_err(|e| format!("{s:?}: {e}"))?),
            )
        } else {
            (s, None)
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{s:?}: expected a host name or address"));
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

/// A port number, 0 to 65535.
pub fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number"));
    }
    s.parse()
        .map_err(|_| format!("{s} is not a port number (at most 65535)"))
}

/// A server's port: 1 to 65535.
pub fn parse_server_port(s: &str) -> Result<u16, String> {
    match parse_port(s)? {
        0 => Err("port 0 is no server's port".to_string()),
        port => Ok(port),
    }
}

impl HostPort {
    /// As [`HostPort::parse`], for a server: a port written with the host
    /// is 1 to 65535.
    pub fn parse_server(s: &str) -> Result<HostPort, String> {
        let hp = HostPort::parse(s)?;
        if hp.port == Some(0) {
            return Err(format!("{s:?}: port 0 is no server's port"));
        }
        Ok(hp)
    }
}
