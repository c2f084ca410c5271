//! Addresses as people type them: `HOST`, `HOST:PORT`, `[IPV6]:PORT`, and
//! `chatclient`'s positional arguments made of them.
//!
//! `chatclient` takes `HOST[:PORT] USERNAME` or `HOST PORT USERNAME`; an
//! IPv6 address with a port is written in brackets (`[::1]:7000`), without
//! one as it is (`::1`).

use std::fmt;

pub use udpchat_core::ui::{HostPort, parse_port, parse_server_port};

/// What `chatclient`'s positional arguments say: none, `HOST[:PORT]`,
/// `HOST[:PORT] USERNAME` or `HOST PORT USERNAME`. What they leave out
/// comes from the environment, the config file or the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positionals {
    /// The server, with the port written with it (`HOST:PORT`).
    pub server: Option<HostPort>,
    /// The port given as an argument of its own (`HOST PORT USERNAME`).
    pub port: Option<u16>,
    /// The username.
    pub username: Option<String>,
}

impl Positionals {
    /// Reads the arguments. Two are `HOST[:PORT] USERNAME`, except a host
    /// without a port followed by digits only: that is `HOST PORT`, as
    /// before usernames could follow the host (the username then comes
    /// from elsewhere). A username of digits only is given with the port:
    /// `HOST:PORT 1234` or `HOST PORT 1234`.
    pub fn parse(args: &[String]) -> Result<Positionals, String> {
        let server = HostPort::parse_server;
        match args {
            [] => Ok(Positionals::default()),
            [host] => Ok(Positionals {
                server: Some(server(host)?),
                ..Positionals::default()
            }),
            [host, second] => {
                let hp = server(host)?;
                if hp.port.is_none() && second.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(Positionals {
                        server: Some(hp),
                        port: Some(parse_server_port(second).map_err(|e| format!("PORT: {e}"))?),
                        username: None,
                    });
                }
                Ok(Positionals {
                    server: Some(hp),
                    port: None,
                    username: Some(second.clone()),
                })
            }
            [host, port, user] => {
                let hp = server(host)?;
                if hp.port.is_some() {
                    return Err(format!(
                        "the port is given twice: in {host:?} and as {port:?}; \
                         use HOST:PORT USERNAME or HOST PORT USERNAME"
                    ));
                }
                Ok(Positionals {
                    server: Some(hp),
                    port: Some(parse_server_port(port).map_err(|e| format!("PORT: {e}"))?),
                    username: Some(user.clone()),
                })
            }
            _ => Err(format!(
                "{} arguments; expected HOST[:PORT] USERNAME or HOST PORT USERNAME",
                args.len()
            )),
        }
    }
}

/// A server as shown to people: `HOST:PORT`, an IPv6 address in brackets.
#[derive(Clone, Copy, Debug)]
pub struct ServerName<'a> {
    /// The host name or address, as given.
    pub host: &'a str,
    /// The port.
    pub port: u16,
}

impl fmt::Display for ServerName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: Option<u16>) -> HostPort {
        HostPort {
            host: host.to_string(),
            port,
        }
    }

    fn args(list: &[&str]) -> Result<Positionals, String> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Positionals::parse(&list)
    }

    #[test]
    fn hosts_with_and_without_ports() {
        assert_eq!(HostPort::parse("localhost"), Ok(hp("localhost", None)));
        assert_eq!(
            HostPort::parse("localhost:7000"),
            Ok(hp("localhost", Some(7000)))
        );
        assert_eq!(HostPort::parse("127.0.0.1:0"), Ok(hp("127.0.0.1", Some(0))));
        assert_eq!(HostPort::parse("[::1]:7000"), Ok(hp("::1", Some(7000))));
        assert_eq!(HostPort::parse("[::1]"), Ok(hp("::1", None)));
        assert_eq!(HostPort::parse("::1"), Ok(hp("::1", None)));
        assert_eq!(
            HostPort::parse("fe80::1:7000"),
            Ok(hp("fe80::1:7000", None))
        );
        for bad in [
            "",
            ":7000",
            "host:",
            "host:x",
            "host:70000",
            "[::1",
            "[::1]7000",
            "[]:1",
            "a b",
            "127.0.0.1:7000:1",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_argument_forms() {
        assert_eq!(args(&[]), Ok(Positionals::default()));
        assert_eq!(
            args(&["localhost"]),
            Ok(Positionals {
                server: Some(hp("localhost", None)),
                ..Positionals::default()
            })
        );
        let alice = Some("alice".to_string());
        assert_eq!(
            args(&["localhost", "alice"]),
            Ok(Positionals {
                server: Some(hp("localhost", None)),
                port: None,
                username: alice.clone(),
            })
        );
        assert_eq!(
            args(&["localhost:7000", "alice"]),
            Ok(Positionals {
                server: Some(hp("localhost", Some(7000))),
                port: None,
                username: alice.clone(),
            })
        );
        assert_eq!(
            args(&["[::1]:7000", "alice"]),
            Ok(Positionals {
                server: Some(hp("::1", Some(7000))),
                port: None,
                username: alice.clone(),
            })
        );
        assert_eq!(
            args(&["localhost", "7000", "alice"]),
            Ok(Positionals {
                server: Some(hp("localhost", None)),
                port: Some(7000),
                username: alice.clone(),
            })
        );
        assert_eq!(
            args(&["::1", "7000", "alice"]),
            Ok(Positionals {
                server: Some(hp("::1", None)),
                port: Some(7000),
                username: alice.clone(),
            })
        );
        // A host and digits are a host and a port, as they always were; a
        // username of digits comes after a port.
        assert_eq!(
            args(&["localhost", "7000"]),
            Ok(Positionals {
                server: Some(hp("localhost", None)),
                port: Some(7000),
                username: None,
            })
        );
        assert_eq!(
            args(&["localhost:7000", "1234"]),
            Ok(Positionals {
                server: Some(hp("localhost", Some(7000))),
                port: None,
                username: Some("1234".to_string()),
            })
        );
        for bad in [
            &["localhost:7000", "7001", "alice"][..],
            &["localhost", "x", "alice"],
            &["localhost", "0", "alice"],
            &["localhost:0", "alice"],
            &["localhost", "70000"],
            &["a", "b", "c", "d"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_bracket_ipv6_addresses() {
        let name = |host, port| ServerName { host, port }.to_string();
        assert_eq!(name("localhost", 65015), "localhost:65015");
        assert_eq!(name("::1", 7000), "[::1]:7000");
    }
}
