//! What the client says when a server cannot be reached or proves another
//! key: in plain words that name the server, with what to do.

use std::net::{SocketAddr, UdpSocket};

use udpchat_core::client::CloseReason;
use udpchat_core::time::Instant;
use udpchat_core::ui::{ChatEvent, Console};
use udpchat_native::address::ServerName;

use crate::server_key::{self, PinSource};

/// Sends what the console has to send. True when the system answered
/// that nothing listens on the server's port (the error of an ICMP port
/// unreachable, reported on the next call on the socket); other errors
/// show up later as a server that does not answer.
pub fn transmit(console: &mut Console, socket: &UdpSocket, now: Instant) -> bool {
    let mut refused = false;
    let mut d = Vec::new();
    while console.poll_transmit(now, &mut d).is_some() {
        if let Err(e) = socket.send(&d) {
            refused |= is_port_unreachable(&e);
        }
    }
    refused
}

/// How the end of a session that never got going is told: in plain words
/// that name the server, and what to do about a changed key.
pub struct Ending<'a> {
    pub server: ServerName<'a>,
    /// The address the name resolved to.
    pub address: SocketAddr,
    /// Where the pinned key came from.
    pub pin_source: PinSource,
    /// Seconds the first answer may take.
    pub connect_timeout: u64,
    pub json: bool,
}

impl Ending<'_> {
    /// The server as the user named it, and its address when that is not
    /// the name: `localhost:7000 (127.0.0.1:7000)`.
    fn shown(&self) -> String {
        if self.server.host.parse::<std::net::IpAddr>().is_ok() {
            self.server.to_string()
        } else {
            format!("{} ({})", self.server, self.address)
        }
    }

    /// The system said nothing listens on the server's port. Before the
    /// first login that is a wrong address or port, or a server that is not
    /// running: the client says so and ends with 1 at once. After a login
    /// the server is away for a while; the client keeps reconnecting.
    pub fn refused(&self, console: &mut Console, logged_in: bool) {
        if !logged_in && console.exit_code().is_none() {
            console.give_up(&format!(
                "nothing is listening on {}: is chatserver running there, on this port?",
                self.shown()
            ));
        }
    }

    /// What to show for `event`, the console's last word (a disconnection
    /// it does not retry), given why the session closed. A session that
    /// never logged in was never connected: the reason is an error, not a
    /// disconnection.
    pub fn explain(
        &self,
        event: ChatEvent,
        closed: Option<&CloseReason>,
        logged_in: bool,
    ) -> Vec<ChatEvent> {
        let lines = match closed {
            Some(CloseReason::ServerKeyMismatch { expected, actual }) => {
                server_key::mismatch_lines(self.server, expected, actual, &self.pin_source)
            }
            _ if logged_in => return vec![event],
            Some(CloseReason::NoAnswer) => vec![format!(
                "no answer from {} within {} s: is chatserver running there, on this port? \
                 (a firewall may also drop UDP on the way)",
                self.shown(),
                self.connect_timeout
            )],
            Some(reason) => vec![format!("cannot log in on {}: {reason}", self.shown())],
            None => return vec![event],
        };
        // One JSON object holds the whole explanation.
        let (first, rest) = if self.json {
            let joined: Vec<&str> = lines.iter().map(|l| l.trim_start()).collect();
            (joined.join(" "), Vec::new())
        } else {
            let mut lines = lines.into_iter();
            (lines.next().unwrap_or_default(), lines.collect())
        };
        let first = if logged_in {
            ChatEvent::Disconnect {
                reason: first,
                reconnect_in: None,
            }
        } else {
            ChatEvent::Error { message: first }
        };
        std::iter::once(first)
            .chain(rest.into_iter().map(|text| ChatEvent::Info { text }))
            .collect()
    }
}

/// Whether `e` is how the system reports an ICMP port unreachable on a
/// connected UDP socket: ECONNREFUSED on Unix, WSAECONNRESET on Windows.
pub fn is_port_unreachable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
    )
}
