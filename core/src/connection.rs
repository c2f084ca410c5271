//! One live connection: the Noise transport, the replay window, the
//! reliable channel and, on the server, the anti-amplification budget of a
//! path that has not been validated yet.
//!
//! Both endpoints use [`Connection`] once the handshake is done: the
//! [`crate::client::Client`] for its one connection, the
//! [`crate::server::Server`] for each session. A received Data datagram
//! goes through [`Connection::handle_datagram`] (open, replay check,
//! decode, frames into the channel); what the channel sends comes out of
//! [`Connection::poll_transmit`] sealed. Decisions that need more than one
//! connection's state (which connection a datagram is for, whether an
//! address may take one more session) stay with the endpoint: it says
//! where a datagram came from with [`Source`], and the connection reports
//! with [`Received`] whether it moved.

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::{ReplayWindow, Transport};
use crate::reliable::Channel;
use crate::time::Instant;
use crate::wire::{BASE_DATAGRAM, Datagram, DecodeError, Header, MAX_DATAGRAM, SEAL_OVERHEAD};

/// Sealed datagrams up to this size are opened into a buffer on the stack.
const OPEN_ON_STACK: usize = 512;

/// Where a Data datagram came from, as the endpoint sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The address the connection is at (always, for a client).
    Current,
    /// Another address: the peer's NAT rebound or it moved.
    NewAddress {
        /// Whether the endpoint lets the connection follow it there
        /// (false when that address already has its share of sessions).
        may_migrate: bool,
    },
}

/// What an authenticated, fresh datagram did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Received {
    /// Its frames went into the channel; the connection stays where it is
    /// (an older datagram from another address does not move it).
    Delivered,
    /// Its frames went into the channel, and it was the newest datagram
    /// from a [`Source::NewAddress`]: the connection now sends there,
    /// within an anti-amplification budget until the peer shows it
    /// receives there, and path probing starts again. The endpoint moves
    /// its record of the address.
    Migrated,
}

/// Why a Data datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramError {
    /// It did not authenticate with the connection's keys.
    Unauthenticated,
    /// Its packet number was seen before, or is older than the replay
    /// window.
    Replay,
    /// It was the newest datagram, from an address the endpoint does not
    /// let the connection move to (`may_migrate: false`). Nothing was
    /// recorded: the same datagram is still fresh.
    MigrationRefused,
    /// It authenticated, but its header or frames do not decode. Its
    /// packet number is recorded.
    Malformed(DecodeError),
}

impl DatagramError {
    /// Whether the datagram authenticated and was fresh, so that the peer
    /// is known to have received the handshake's answer.
    pub fn was_authenticated(&self) -> bool {
        matches!(self, DatagramError::Malformed(_))
    }
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramError::Unauthenticated => f.write_str("datagram did not authenticate"),
            DatagramError::Replay => f.write_str("datagram replayed"),
            DatagramError::MigrationRefused => {
                f.write_str("move to an address at its limit of sessions")
            }
            DatagramError::Malformed(e) => write!(f, "malformed datagram: {e}"),
        }
    }
}

/// Anti-amplification toward an address a connection moved to: until the
/// peer acknowledges a segment sent there, at most three times what was
/// received from it, plus one datagram, is sent there.
#[derive(Clone, Copy, Debug)]
struct Unvalidated {
    /// Bytes that may still be sent.
    budget: usize,
    /// When the connection moved: an acknowledgement of a segment sent
    /// since then (so, sent to the new address) validates it.
    since: Instant,
}

/// One established connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    transport: Transport,
    replay: ReplayWindow,
    channel: Channel,
    /// Set while the current address has not shown that it receives.
    unvalidated: Option<Unvalidated>,
}

impl Connection {
    /// The connection a finished handshake gives: its keys and the channel
    /// (which may already hold messages queued during the handshake).
    pub fn new(transport: Transport, channel: Channel) -> Connection {
        Connection {
            transport,
            replay: ReplayWindow::default(),
            channel,
            unvalidated: None,
        }
    }

    /// The reliable channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The reliable channel, to send, receive, close or time out.
    pub fn channel_mut(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Whether the current address has shown that it receives (always
    /// true until the connection moves).
    pub fn is_validated(&self) -> bool {
        self.unvalidated.is_none()
    }

    /// Handles a Data datagram of this connection from `source`: opens it,
    /// checks and records its packet number, decodes it and hands its
    /// frames to the channel; then keeps the path's state (a datagram from
    /// the current address adds to the anti-amplification budget and may
    /// validate it; the newest from a new address moves the connection).
    /// Read the channel afterwards ([`Channel::recv`], [`Channel::error`]).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: Source,
        bytes: &[u8],
    ) -> Result<Received, DatagramError> {
        self.handle_datagram_in(now, source, bytes, &mut Vec::new())
    }

    /// [`Connection::handle_datagram`], opening a datagram larger than
    /// 512 bytes in `scratch`, which grows to the largest datagram and is
    /// best kept across calls (one per endpoint, not per connection): then
    /// taking a datagram in allocates nothing. Smaller datagrams
    /// (acknowledgements, most commands) are opened on the stack.
    pub fn handle_datagram_in(
        &mut self,
        now: Instant,
        source: Source,
        bytes: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<Received, DatagramError> {
        let mut small = [0u8; OPEN_ON_STACK];
        let out: &mut [u8] = if bytes.len() <= OPEN_ON_STACK {
            &mut small
        } else {
            if scratch.len() < bytes.len() {
                scratch.resize(bytes.len(), 0);
            }
            scratch
        };
        let Ok(n) = self.transport.open_into(bytes, out) else {
            return Err(DatagramError::Unauthenticated);
        };
        let plain = out.get(..n).ok_or(DatagramError::Unauthenticated)?;
        let pn = Header::decode(bytes)
            .map_err(DatagramError::Malformed)?
            .packet_number;
        if !self.replay.is_fresh(pn) {
            return Err(DatagramError::Replay);
        }
        let newest = self.replay.is_newest(pn);
        if source == (Source::NewAddress { may_migrate: false }) && newest {
            return Err(DatagramError::MigrationRefused);
        }
        self.replay.record(pn);
        let datagram = Datagram::decode(plain).map_err(DatagramError::Malformed)?;
        self.channel.handle_frames(now, datagram.frames());
        match source {
            Source::Current => {
                if let Some(u) = &mut self.unvalidated {
                    u.budget = u.budget.saturating_add(3 * bytes.len());
                    if self
                        .channel
                        .latest_acked_sent()
                        .is_some_and(|t| t >= u.since)
                    {
                        self.unvalidated = None;
                    }
                }
                Ok(Received::Delivered)
            }
            Source::NewAddress { .. } if newest => {
                self.unvalidated = Some(Unvalidated {
                    budget: BASE_DATAGRAM + 3 * bytes.len(),
                    since: now,
                });
                // A new path: what the old one carried says nothing of it.
                self.channel.reset_path();
                Ok(Received::Migrated)
            }
            Source::NewAddress { .. } => Ok(Received::Delivered),
        }
    }

    /// The next sealed datagram, within the anti-amplification budget of
    /// an address not yet validated (what does not fit waits). Call until
    /// `None` after every input.
    #[must_use]
    ///
    /// The datagram is written into `buf` (cleared first); returns its
    /// length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let limit = self
            .unvalidated
            .map_or(MAX_DATAGRAM, |u| u.budget.min(MAX_DATAGRAM))
            .saturating_sub(SEAL_OVERHEAD);
        loop {
            if !self.channel.poll_transmit_into(now, limit, buf) {
                return None;
            }
            let Ok(len) = self.transport.seal_in_place(buf) else {
                continue;
            };
            if let Some(u) = &mut self.unvalidated {
                u.budget = u.budget.saturating_sub(len);
            }
            return Some(len);
        }
    }

    /// The next sealed datagram of a connection that is being dropped
    /// (its last datagrams, such as a CLOSE), whatever the budget. Call
    /// until `None`.
    #[must_use]
    pub fn poll_transmit_final(&mut self, now: Instant) -> Option<Vec<u8>> {
        loop {
            let plain = self.channel.poll_transmit(now)?;
            if let Ok(bytes) = self.transport.seal(&plain) {
                return Some(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Initiator, StaticKey, respond};
    use crate::reliable::ChannelConfig;
    use crate::time::Duration;
    use crate::wire::Marker;

    const ID: u64 = 0x0123_4567_89ab_cdef;

    /// A client's and a server's connection after a real handshake.
    fn pair() -> (Connection, Connection) {
        let key = StaticKey::from_private([9; 32]);
        let initiator = Initiator::new(ID, [1; 32]).unwrap();
        let (server_transport, msg2) = respond(&key, ID, [2; 32], initiator.msg1(), None).unwrap();
        let est = initiator.finish(&msg2).unwrap();
        let channel = || Channel::new(ChannelConfig::default(), ID, Instant::ZERO);
        (
            Connection::new(est.transport, channel()),
            Connection::new(server_transport, channel()),
        )
    }

    fn send(from: &mut Connection, now: Instant, text: &[u8]) -> Vec<u8> {
        from.channel_mut().send(Marker::Data, text).unwrap();
        let mut d = Vec::new();
        from.poll_transmit(now, &mut d).unwrap();
        assert!(from.poll_transmit(now, &mut Vec::new()).is_none());
        d
    }

    #[test]
    fn a_sealed_datagram_is_delivered_once() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        let d = send(&mut client, now, b"hello");
        assert_eq!(
            server.handle_datagram(now, Source::Current, &d),
            Ok(Received::Delivered)
        );
        assert_eq!(server.channel_mut().recv().as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            server.handle_datagram(now, Source::Current, &d),
            Err(DatagramError::Replay)
        );
        let mut forged = d.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(
            server.handle_datagram(now, Source::Current, &forged),
            Err(DatagramError::Unauthenticated)
        );
        assert_eq!(
            client.handle_datagram(now, Source::Current, &d),
            Err(DatagramError::Unauthenticated),
            "each direction has its own key"
        );
    }

    #[test]
    fn one_scratch_buffer_opens_datagrams_of_every_size() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        let mut scratch = Vec::new();
        let mut largest = 0;
        // Larger, smaller and on-the-stack datagrams through one buffer,
        // a forged one among them.
        for (i, len) in [1000usize, 600, 100, 1100, 520, 700]
            .into_iter()
            .enumerate()
        {
            let text = alloc::vec![i as u8; len];
            let d = send(&mut client, now, &text);
            largest = largest.max(d.len());
            if i == 3 {
                let mut forged = d.clone();
                forged[40] ^= 1;
                assert_eq!(
                    server.handle_datagram_in(now, Source::Current, &forged, &mut scratch),
                    Err(DatagramError::Unauthenticated)
                );
            }
            assert_eq!(
                server.handle_datagram_in(now, Source::Current, &d, &mut scratch),
                Ok(Received::Delivered)
            );
            assert_eq!(server.channel_mut().recv(), Some(text), "datagram {i}");
        }
        // It grew to the largest datagram, and no more.
        assert_eq!(scratch.len(), largest);
    }

    #[test]
    fn a_move_is_followed_only_when_allowed_and_newest() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        let first = send(&mut client, now, b"one");
        let second = send(&mut client, now, b"two");
        let refused = Source::NewAddress { may_migrate: false };
        assert_eq!(
            server.handle_datagram(now, refused, &second),
            Err(DatagramError::MigrationRefused)
        );
        let allowed = Source::NewAddress { may_migrate: true };
        assert_eq!(
            server.handle_datagram(now, allowed, &second),
            Ok(Received::Migrated),
            "a refused datagram is still fresh"
        );
        assert!(!server.is_validated());
        assert_eq!(
            server.handle_datagram(now, allowed, &first),
            Ok(Received::Delivered),
            "an older datagram does not move the connection"
        );
    }

    #[test]
    fn an_unvalidated_address_gets_three_times_what_it_sent() {
        let (mut client, mut server) = pair();
        let mut now = Instant::ZERO;
        let d = send(&mut client, now, b"moved");
        let source = Source::NewAddress { may_migrate: true };
        assert_eq!(
            server.handle_datagram(now, source, &d),
            Ok(Received::Migrated)
        );
        let budget = BASE_DATAGRAM + 3 * d.len();
        for _ in 0..20 {
            server
                .channel_mut()
                .send(Marker::Data, &[b'x'; 1000])
                .unwrap();
        }
        let mut sent = 0;
        let mut d = Vec::new();
        while server.poll_transmit(now, &mut d).is_some() {
            sent += d.len();
            let _ = client.handle_datagram(now, Source::Current, &d);
        }
        assert!(sent > 0 && sent <= budget, "{sent} of {budget}");
        // The client acknowledges what reached it at the new address:
        // that validates it.
        let mut acked = false;
        while !server.is_validated() {
            server.channel_mut().handle_timeout(now);
            client.channel_mut().handle_timeout(now);
            while server.poll_transmit(now, &mut d).is_some() {
                let _ = client.handle_datagram(now, Source::Current, &d);
            }
            while client.poll_transmit(now, &mut d).is_some() {
                let _ = server.handle_datagram(now, Source::Current, &d);
                acked = true;
            }
            now += Duration::from_millis(10);
            assert!(now < Instant::ZERO + Duration::from_secs(5));
        }
        assert!(acked);
    }
}
