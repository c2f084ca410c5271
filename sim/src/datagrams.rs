//! For tests that keep the datagrams they see: `poll_transmit` into a fresh
//! buffer, the datagram taken out of it.

use core::net::SocketAddr;

use udpchat_core::Instant;
use udpchat_core::client::Client;
use udpchat_core::server::Server;

/// A datagram the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Where to.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// `poll_transmit` returning the datagram itself.
pub trait PollDatagram {
    /// The datagram, with its address for the server.
    type Datagram;
    /// The next datagram to send.
    fn poll_datagram(&mut self, now: Instant) -> Option<Self::Datagram>;
}

impl PollDatagram for Client {
    type Datagram = Vec<u8>;
    fn poll_datagram(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        self.poll_transmit(now, &mut buf).map(|_| buf)
    }
}

impl PollDatagram for Server {
    type Datagram = Sent;
    fn poll_datagram(&mut self, now: Instant) -> Option<Sent> {
        let mut buf = Vec::new();
        self.poll_transmit(now, &mut buf).map(|t| Sent {
            to: t.to,
            bytes: buf,
        })
    }
}
