//! The reliable channel: one per peer, on both sides of a connection.
//!
//! A [`Channel`] turns messages (byte strings of up to
//! [`ChannelConfig::max_message`] bytes) into segments, sends them in
//! datagrams, retransmits what is not acknowledged, and delivers what it
//! receives exactly once and in order.
//!
//! * Sequence numbers count segments, from 0, per direction.
//! * Acknowledgements are cumulative plus a selective bitmap, piggybacked on
//!   every datagram and sent alone when no data flows back.
//! * The retransmission timeout follows RFC 6298 (smoothed RTT, RTT
//!   variance, Karn's rule); each segment's timeout doubles with each of its
//!   retransmissions, capped at [`ChannelConfig::max_rto`]. A segment is
//!   also retransmitted early when a segment sent after it was acknowledged
//!   and a quarter of an RTT more has passed (time-based loss detection in
//!   the style of RACK, RFC 8985).
//! * Memory is bounded: the send queue by [`ChannelConfig::max_queued_bytes`],
//!   the receive buffer by the window, reassembly by the message limit.
//!
//! The channel is sans-IO: it never reads a clock. Every call that depends on
//! time takes `now`, and [`Channel::poll_timeout`] says when it next needs
//! [`Channel::handle_timeout`].
//!
//! [`Channel`] is the facade over four parts: `send` (the send queue,
//! segments in flight, loss detection and retransmission, the window),
//! `recv` (reordering, reassembly, in-order delivery and what to
//! acknowledge), `rtt` (the RTT estimate and retransmission timeout of
//! RFC 6298) and `mtud` (path MTU discovery, `PROTOCOL.md` §3.9).

// No index can panic. Arithmetic is not linted: it is on sequence numbers
// bounded by the sender's checks, on counters, and on `Instant`/`Duration`
// sums, which saturate.
#![deny(clippy::indexing_slicing)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::mem::take;

use crate::time::{Duration, Instant};
use crate::wire::{
    BASE_PLAINTEXT, CloseCode, DatagramBuilder, Frame, Frames, HEADER_LEN, Header, MAX_SACK_BYTES,
    Marker, PacketKind, SEAL_OVERHEAD,
};

mod config;
mod mtud;
mod recv;
mod rtt;
mod send;
#[cfg(test)]
mod testing;

pub use config::ChannelConfig;
pub use mtud::{PROBE_AFTER_FALLBACK, PROBE_AGAIN, PROBE_SIZES, PROBE_TRIES};
pub use recv::ACK_EVERY_SEGMENTS;

use mtud::PathMtu;
use recv::{Arrival, Receiver};
use rtt::RttEstimator;
use send::SendQueue;

/// The largest plaintext datagram without segments: a header, an ACK with
/// the longest bitmap, a PROBE_ACK and a PING.
const CONTROL_ONLY: usize = HEADER_LEN + 6 + MAX_SACK_BYTES + 3 + 1;

/// Why a channel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// Nothing was heard from the peer for the idle timeout.
    IdleTimeout,
    /// A segment stayed unacknowledged past the acknowledgement deadline.
    Unacknowledged,
    /// The peer sent a message larger than the limit.
    MessageTooLarge,
    /// The peer closed the connection with this code.
    PeerClosed(CloseCode),
    /// This side closed the connection.
    LocallyClosed,
    /// The sequence space of the connection is exhausted.
    SequenceExhausted,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::IdleTimeout => f.write_str("peer silent past the idle timeout"),
            ChannelError::Unacknowledged => f.write_str("peer stopped acknowledging"),
            ChannelError::MessageTooLarge => f.write_str("peer sent a message over the limit"),
            ChannelError::PeerClosed(code) => write!(f, "peer closed the connection ({code:?})"),
            ChannelError::LocallyClosed => f.write_str("connection closed"),
            ChannelError::SequenceExhausted => f.write_str("sequence numbers exhausted"),
        }
    }
}

/// Why a message could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The message is larger than [`ChannelConfig::max_message`].
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The send queue is full: the peer is not keeping up.
    QueueFull,
    /// The channel has ended.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes is over the limit of {max}")
            }
            SendError::QueueFull => f.write_str("send queue full"),
            SendError::Closed => f.write_str("connection closed"),
        }
    }
}

/// Counters of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Datagrams produced by [`Channel::poll_transmit`].
    pub datagrams_sent: u64,
    /// Segments sent, retransmissions included.
    pub segments_sent: u64,
    /// Segments sent again.
    pub retransmissions: u64,
    /// Datagrams handed to [`Channel::handle_frames`].
    pub datagrams_received: u64,
    /// Segments received that had been received before.
    pub duplicates_received: u64,
    /// Path probes sent (§3.9 of `PROTOCOL.md`).
    pub probes_sent: u64,
    /// Falls back to [`BASE_DATAGRAM`](crate::wire::BASE_DATAGRAM) after repeated timeouts.
    pub path_fallbacks: u64,
}

/// A point in the stream of messages a channel sends (see
/// [`Channel::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SendMark(u32);

/// One side of a reliable connection. See the [module docs](self).
#[derive(Debug)]
pub struct Channel {
    config: ChannelConfig,
    connection_id: u64,
    next_packet: u32,
    sent: SendQueue,
    received: Receiver,
    rtt: RttEstimator,
    path: PathMtu,
    ping_pending: bool,
    close_pending: Option<CloseCode>,
    last_recv: Instant,
    last_send: Instant,
    error: Option<ChannelError>,
    stats: ChannelStats,
}

impl Channel {
    /// Changes the largest message this channel accepts from its peer and
    /// sends (for example, larger once the peer has logged in). A message
    /// being reassembled is held to the new limit from its next segment.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.config.max_message = max_message;
    }

    /// A channel for connection `connection_id`.
    pub fn new(config: ChannelConfig, connection_id: u64, now: Instant) -> Self {
        let mut config = config;
        config.window = config.window.clamp(1, 8 * MAX_SACK_BYTES as u32);
        let rtt = RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto);
        let path = PathMtu::new(config.max_datagram);
        Channel {
            config,
            connection_id,
            next_packet: 0,
            sent: SendQueue::new(),
            received: Receiver::new(now),
            rtt,
            path,
            ping_pending: false,
            close_pending: None,
            last_recv: now,
            last_send: now,
            error: None,
            stats: ChannelStats::default(),
        }
    }

    /// Largest sealed datagram the channel sends now: [`BASE_DATAGRAM`](crate::wire::BASE_DATAGRAM)
    /// until a probe showed the path carries more.
    pub fn path_max(&self) -> usize {
        self.path.max()
    }

    /// Forgets what was learnt about the path (the peer's address changed):
    /// back to [`BASE_DATAGRAM`](crate::wire::BASE_DATAGRAM), and probing starts again.
    pub fn reset_path(&mut self) {
        self.path.reset();
    }

    /// Returns the memory of emptied queues, which keep the capacity of
    /// their largest burst: with thousands of quiet sessions that adds up.
    fn shrink_if_flushed(&mut self) {
        self.sent.shrink_if_flushed();
        self.received.shrink();
    }

    /// Starts the timers afresh (a client's channel waits for its handshake
    /// before anything is sent).
    pub fn restart(&mut self, now: Instant) {
        self.last_recv = now;
        self.last_send = now;
    }

    /// The connection id written into every header.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// Switches to the connection id the server issued in its handshake
    /// answer (`PROTOCOL.md` §4.7); before the first Data datagram.
    pub fn set_connection_id(&mut self, connection_id: u64) {
        self.connection_id = connection_id;
    }

    /// Why the channel ended, if it has.
    pub fn error(&self) -> Option<ChannelError> {
        self.error
    }

    /// Counters.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// The current smoothed RTT estimate, if any sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// When the most recently sent of the acknowledged segments was sent:
    /// an acknowledgement of anything sent at or after a moment proves the
    /// peer received something sent then.
    pub fn latest_acked_sent(&self) -> Option<Instant> {
        self.sent.latest_acked_sent()
    }

    /// A mark of every message queued so far: [`Channel::is_acknowledged`]
    /// tells when the peer has acknowledged all of them.
    pub fn mark(&self) -> SendMark {
        SendMark(self.sent.next_seq())
    }

    /// Whether the peer acknowledged every message queued before `mark`
    /// was taken.
    pub fn is_acknowledged(&self, mark: SendMark) -> bool {
        self.sent.first_unacknowledged() >= mark.0
    }

    /// Whether every queued message was sent and acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.sent.is_flushed()
    }

    /// When something was last heard from the peer.
    pub fn last_received(&self) -> Instant {
        self.last_recv
    }

    /// Queues a message. `marker` says whether it is chat data (`D`) or a
    /// command (`C`); a datagram carrying any data segment is marked `D`.
    pub fn send(&mut self, marker: Marker, message: &[u8]) -> Result<(), SendError> {
        let pieces = self.admit(message.len())?;
        self.sent.queue(marker, &Arc::from(message), pieces);
        Ok(())
    }

    /// Like [`Channel::send`], for a message whose bytes other channels
    /// may share: a broadcast encoded once costs each recipient's channel
    /// no copy of it.
    pub fn send_shared(&mut self, marker: Marker, message: &Arc<[u8]>) -> Result<(), SendError> {
        let pieces = self.admit(message.len())?;
        self.sent.queue(marker, message, pieces);
        Ok(())
    }

    /// Checks that a message of `len` bytes may be queued; returns how many
    /// segments it takes.
    fn admit(&mut self, len: usize) -> Result<usize, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        // Whatever the configuration, a message is under 4 GiB: the send
        // queue keeps its ranges in 32 bits.
        let max = self.config.max_message.min(u32::MAX as usize);
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        if !self.sent.has_room(len, self.config.max_queued_bytes) {
            return Err(SendError::QueueFull);
        }
        let pieces = send::segments_for(len);
        if !self.sent.can_number(pieces) {
            self.fail(ChannelError::SequenceExhausted);
            return Err(SendError::Closed);
        }
        Ok(pieces)
    }

    /// The next message received in order, if any, in a new buffer; see
    /// [`Channel::recv_into`] to reuse one.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.received.recv()
    }

    /// Replaces the contents of `out` with the next message received in
    /// order and returns true; false, `out` untouched, when none waits.
    /// A buffer kept across calls makes receiving allocate nothing.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> bool {
        self.received.recv_into(out)
    }

    /// The next message received in order, borrowed from the channel's
    /// inbox until the next call that changes the channel: no copy.
    pub fn recv_slice(&mut self) -> Option<&[u8]> {
        self.received.recv_slice()
    }

    /// Ends the channel: a CLOSE frame with `code` goes out with the next
    /// [`Channel::poll_transmit`], then nothing more.
    pub fn close(&mut self, code: CloseCode) {
        if self.error.is_none() {
            self.error = Some(ChannelError::LocallyClosed);
            self.close_pending = Some(code);
        }
    }

    fn fail(&mut self, error: ChannelError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Handles the frames of a datagram that belongs to this channel.
    pub fn handle_frames(&mut self, now: Instant, frames: Frames<'_>) {
        if self.error.is_some() {
            return;
        }
        self.stats.datagrams_received += 1;
        self.last_recv = now;
        let mut eliciting = false;
        for frame in frames {
            match frame {
                Frame::Ack {
                    next_expected,
                    sack,
                } => {
                    if self.sent.on_ack(now, next_expected, sack, &mut self.rtt) {
                        // The path works: probing may start (or go on).
                        self.path.schedule(now, &self.rtt);
                    }
                }
                Frame::Segment { seq, end, data } => {
                    eliciting = true;
                    let window = self.config.window;
                    let max_message = self.config.max_message;
                    match self
                        .received
                        .on_segment(seq, end, data, window, max_message)
                    {
                        Arrival::InOrder => {}
                        Arrival::Reordered | Arrival::BeyondWindow => self.received.ack_at_once(),
                        Arrival::Duplicate => {
                            self.stats.duplicates_received += 1;
                            self.received.ack_at_once();
                        }
                        Arrival::TooLarge => {
                            self.fail(ChannelError::MessageTooLarge);
                            self.close_pending = Some(CloseCode::ProtocolViolation);
                            return;
                        }
                        Arrival::SequenceExhausted => {
                            // A reference sender ends its connection before
                            // numbering this far (`PROTOCOL.md` §3.1).
                            self.fail(ChannelError::SequenceExhausted);
                            self.close_pending = Some(CloseCode::ProtocolViolation);
                            return;
                        }
                    }
                }
                Frame::Ping => {
                    eliciting = true;
                    self.received.ack_at_once();
                    // A keep-alive: the peer has been quiet for a second.
                    // Give back what a burst (a login's online list) grew.
                    self.shrink_if_flushed();
                }
                Frame::Probe(size) => {
                    eliciting = true;
                    self.received.ack_at_once();
                    self.path.on_probe_received(size);
                }
                Frame::ProbeAck(size) => self.path.on_probe_ack(now, size, &self.rtt),
                Frame::Close(code) => {
                    self.fail(ChannelError::PeerClosed(code));
                    return;
                }
            }
            if self.error.is_some() {
                return;
            }
        }
        if eliciting {
            self.received
                .on_eliciting(now, self.config.ack_every, self.config.max_ack_delay);
        }
    }

    /// Handles expired timers: retransmission, keep-alive, idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.error.is_some() {
            return;
        }
        if now >= self.last_recv + self.config.idle_timeout {
            self.fail(ChannelError::IdleTimeout);
            self.close_pending = Some(CloseCode::IdleTimeout);
            return;
        }
        let Ok(timed_out_twice) = self
            .sent
            .on_timeout(now, &self.rtt, self.config.ack_deadline)
        else {
            self.fail(ChannelError::Unacknowledged);
            self.close_pending = Some(CloseCode::IdleTimeout);
            return;
        };
        if timed_out_twice && self.path.fall_back(now) {
            self.stats.path_fallbacks += 1;
        }
        self.path.on_timeout(now, &self.rtt);
        if let Some(k) = self.config.keepalive
            && now >= self.last_send + k
        {
            self.ping_pending = true;
        }
        self.received.on_timeout(now, self.config.max_ack_delay);
    }

    /// The next instant at which [`Channel::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let mut next = self.last_recv + self.config.idle_timeout;
        if let Some(t) = self.sent.next_timeout(&self.rtt, self.config.ack_deadline) {
            next = next.min(t);
        }
        if let Some(k) = self.config.keepalive
            && !self.ping_pending
        {
            next = next.min(self.last_send + k);
        }
        if let Some(t) = self.received.next_timeout(self.config.max_ack_delay) {
            next = next.min(t);
        }
        if let Some(t) = self.path.next_timeout(&self.rtt) {
            next = next.min(t);
        }
        Some(next)
    }

    /// Whether [`Channel::poll_transmit`] would produce a datagram.
    pub fn wants_transmit(&self) -> bool {
        if self.close_pending.is_some() {
            return true;
        }
        if self.error.is_some() {
            return false;
        }
        self.received.ack_now()
            || self.ping_pending
            || self.path.wants_transmit()
            || self.sent.has_data(self.config.window)
    }

    fn header(&self, marker: Marker) -> Header {
        Header {
            marker,
            kind: PacketKind::Data,
            connection_id: self.connection_id,
            packet_number: self.next_packet,
        }
    }

    /// The next datagram to send to the peer, if any. Call until it returns
    /// `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.poll_transmit_within(now, usize::MAX)
    }

    /// Like [`Channel::poll_transmit`], but the plaintext datagram is at
    /// most `limit` bytes (an endpoint that may not send more than a budget
    /// to an unvalidated address). What does not fit waits.
    #[must_use]
    pub fn poll_transmit_within(&mut self, now: Instant, limit: usize) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        self.poll_transmit_into(now, limit, &mut buf).then_some(buf)
    }

    /// Like [`Channel::poll_transmit_within`], the plaintext datagram
    /// written into `buf` (cleared first; left empty when there is nothing
    /// to send): a buffer kept from one datagram to the next allocates
    /// nothing once it is large enough. Returns whether a datagram was
    /// written.
    #[must_use]
    pub fn poll_transmit_into(&mut self, now: Instant, limit: usize, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if let Some(code) = self.close_pending.take() {
            let mut b =
                DatagramBuilder::in_buffer(self.header(Marker::Command), BASE_PLAINTEXT, take(buf));
            b.push(&Frame::Close(code));
            self.next_packet = self.next_packet.saturating_add(1);
            self.stats.datagrams_sent += 1;
            *buf = b.finish();
            return true;
        }
        if self.error.is_some() {
            return false;
        }
        if self.next_packet == u32::MAX {
            // Packet numbers are nonces: never reuse one.
            self.fail(ChannelError::SequenceExhausted);
            return false;
        }
        if let Some(size) = self.path.due_probe()
            && size as usize - SEAL_OVERHEAD <= limit
        {
            *buf = self.probe(now, size, take(buf));
            return true;
        }
        let has_data = self.sent.has_data(self.config.window);
        let mut limit = limit.min(self.path.max() - SEAL_OVERHEAD);
        if !has_data {
            // ACK, PROBE_ACK and PING at most: no need to reserve room for
            // a large datagram (acknowledgements are the commonest kind).
            limit = limit.min(CONTROL_ONLY);
        }
        let mut b = DatagramBuilder::in_buffer(self.header(Marker::Command), limit, take(buf));
        let mut sack = [0u8; MAX_SACK_BYTES];
        let mut acked_now = false;
        // An ACK goes out alone only when due; otherwise it rides on data.
        if self.received.ack_now()
            || (self.received.ack_pending() && (has_data || self.ping_pending))
            || (has_data && self.received.received_any_segment())
        {
            acked_now = b.push(&self.received.ack_frame(&mut sack));
        }
        if let Some(size) = self.path.answer()
            && b.push(&Frame::ProbeAck(size))
        {
            self.path.answered();
        }
        let window = self.config.window;
        let segments = self
            .sent
            .write_segments(&mut b, now, window, &mut self.stats);
        let mut eliciting = segments.is_some();
        if !eliciting && self.ping_pending && b.push(&Frame::Ping) {
            eliciting = true;
        }
        if b.is_empty() {
            *buf = b.finish();
            buf.clear();
            return false;
        }
        if acked_now {
            self.received.ack_sent();
        }
        if eliciting {
            self.ping_pending = false;
            self.last_send = now;
        }
        if self.config.pad_bursts && segments.is_some() && self.sent.has_data(window) {
            b.pad_to(limit);
        }
        b.set_marker(segments.unwrap_or(Marker::Command));
        self.next_packet += 1;
        self.stats.datagrams_sent += 1;
        *buf = b.finish();
        true
    }

    /// A probe of `size` sealed bytes: an ACK and a probe answer if owed,
    /// the PROBE frame, and padding. It carries no segment, so its loss
    /// costs nothing but the probe.
    fn probe(&mut self, now: Instant, size: u16, buf: Vec<u8>) -> Vec<u8> {
        let plain = size as usize - SEAL_OVERHEAD;
        let mut b = DatagramBuilder::in_buffer(self.header(Marker::Command), plain, buf);
        if self.received.ack_pending()
            || self.received.ack_now()
            || self.received.received_any_segment()
        {
            let mut sack = [0u8; MAX_SACK_BYTES];
            b.push(&self.received.ack_frame(&mut sack));
            self.received.ack_sent();
        }
        if let Some(answer) = self.path.answer() {
            self.path.answered();
            b.push(&Frame::ProbeAck(answer));
        }
        b.push(&Frame::Probe(size));
        b.pad_to(plain);
        self.path.on_probe_sent(now, size);
        self.last_send = now;
        self.ping_pending = false;
        self.next_packet += 1;
        self.stats.datagrams_sent += 1;
        self.stats.probes_sent += 1;
        b.finish()
    }
}

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::testing::{deliver, drain, pair};
    use super::*;
    use crate::wire::{BASE_DATAGRAM, Datagram};
    use alloc::vec;

    #[test]
    fn a_kept_buffer_gets_the_same_datagrams_and_is_left_empty_after() {
        let t = Instant::ZERO;
        let (mut a, _) = pair(t);
        let (mut twin, _) = pair(t);
        let mut buf = vec![0xEE; 20_000];
        for (i, len) in [3000usize, 10, 0, 70_000].into_iter().enumerate() {
            let message = vec![u8::try_from(i).unwrap(); len];
            a.send(Marker::Data, &message).unwrap();
            twin.send(Marker::Data, &message).unwrap();
        }
        let mut sent = 0;
        while a.poll_transmit_into(t, usize::MAX, &mut buf) {
            assert_eq!(Some(&buf), twin.poll_transmit(t).as_ref());
            sent += 1;
        }
        assert!(sent > 1, "the long message takes several datagrams");
        assert!(buf.is_empty(), "nothing to send leaves nothing behind");
        assert_eq!(twin.poll_transmit(t), None);
    }

    #[test]
    fn delivers_in_order_and_acks() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        a.send(Marker::Command, b"one").unwrap();
        a.send(Marker::Data, b"two").unwrap();
        let ds = drain(t, &mut a);
        assert_eq!(ds.len(), 1, "both segments coalesce into one datagram");
        assert_eq!(ds[0][0], b'D');
        deliver(t, &ds[0], &mut b);
        assert_eq!(b.recv(), Some(b"one".to_vec()));
        assert_eq!(b.recv(), Some(b"two".to_vec()));
        assert!(drain(t, &mut b).is_empty(), "one datagram: the ACK waits");
        let due = b.poll_timeout().unwrap();
        assert_eq!(due, t + ChannelConfig::default().max_ack_delay);
        b.handle_timeout(due);
        let acks = drain(due, &mut b);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0][0], b'C');
        deliver(due, &acks[0], &mut a);
        assert!(a.is_flushed());
    }

    #[test]
    fn close_frame_ends_the_peer() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        a.close(CloseCode::Normal);
        let d = drain(t, &mut a);
        assert_eq!(d.len(), 1);
        deliver(t, &d[0], &mut b);
        assert_eq!(b.error(), Some(ChannelError::PeerClosed(CloseCode::Normal)));
        assert_eq!(a.poll_transmit(t), None);
    }

    #[test]
    fn a_padded_burst_is_equal_datagrams_but_the_last() {
        let t = Instant::ZERO;
        let full = BASE_DATAGRAM - SEAL_OVERHEAD;
        for pad_bursts in [false, true] {
            let config = ChannelConfig {
                pad_bursts,
                ..ChannelConfig::default()
            };
            let mut a = Channel::new(config.clone(), 1, t);
            let mut b = Channel::new(config, 1, t);
            for i in 0..20u8 {
                a.send(Marker::Data, &[i; 150]).unwrap();
            }
            let ds = drain(t, &mut a);
            assert!(ds.len() >= 3);
            let (last, rest) = ds.split_last().unwrap();
            assert_eq!(
                rest.iter().all(|d| d.len() == full),
                pad_bursts,
                "padded only when asked"
            );
            assert!(last.len() < full, "the last datagram is not padded");
            for d in &ds {
                deliver(t, d, &mut b);
            }
            for i in 0..20u8 {
                assert_eq!(b.recv(), Some(vec![i; 150]));
            }
        }
    }

    #[test]
    fn keepalive_pings_when_idle() {
        let t = Instant::ZERO;
        let config = ChannelConfig {
            keepalive: Some(Duration::from_secs(1)),
            ..ChannelConfig::default()
        };
        let mut a = Channel::new(config, 1, t);
        assert_eq!(a.poll_timeout(), Some(t + Duration::from_secs(1)));
        let now = t + Duration::from_secs(1);
        a.handle_timeout(now);
        let d = a.poll_transmit(now).expect("a ping");
        let frames: Vec<_> = Datagram::decode(&d).unwrap().frames().collect();
        assert_eq!(frames, vec![Frame::Ping]);
        assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(1)));
    }
}
