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
//!   retransmissions, capped at [`ChannelConfig::max_rto`]. A segment is also retransmitted early when a
//!   segment sent after it was acknowledged and a quarter of an RTT more has
//!   passed (time-based loss detection in the style of RACK, RFC 8985).
//! * Memory is bounded: the send queue by [`ChannelConfig::max_queued_bytes`],
//!   the receive buffer by the window, reassembly by the message limit.
//!
//! The channel is sans-IO: it never reads a clock. Every call that depends on
//! time takes `now`, and [`Channel::poll_timeout`] says when it next needs
//! [`Channel::handle_timeout`].

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::time::{Duration, Instant};
use crate::wire::{
    BASE_DATAGRAM, CloseCode, DatagramBuilder, Frame, Frames, HEADER_LEN, Header, MAX_DATAGRAM,
    MAX_SACK_BYTES, MAX_SEGMENT_DATA, Marker, PacketKind, SEAL_OVERHEAD, SEGMENT_OVERHEAD,
};

/// Sealed datagram sizes a channel probes the path for, smallest first:
/// Ethernet's 1500-byte MTU (less 40 bytes of IPv6 and 8 of UDP header),
/// a 9000-byte jumbo frame likewise, and the protocol's largest datagram.
pub const PROBE_SIZES: [usize; 3] = [1452, 8952, MAX_DATAGRAM];
/// Probes of one size sent before the size is given up: 3 (as in QUIC).
pub const PROBE_TRIES: u32 = 3;
/// After a size was given up, the path is probed again this much later:
/// 600 s (QUIC's PMTU_RAISE_TIMER).
pub const PROBE_AGAIN: Duration = Duration::from_secs(600);
/// After a segment timed out twice in a row, the channel falls back to
/// [`BASE_DATAGRAM`] (the path may have stopped carrying larger datagrams)
/// and probes again this much later: 60 s.
pub const PROBE_AFTER_FALLBACK: Duration = Duration::from_secs(60);
/// The largest plaintext datagram without segments: a header, an ACK with
/// the longest bitmap, a PROBE_ACK and a PING.
const CONTROL_ONLY: usize = HEADER_LEN + 6 + MAX_SACK_BYTES + 3 + 1;

/// Segments received and not yet acknowledged after which an
/// acknowledgement goes out without waiting: 16, so that a window of 64
/// segments in a few large datagrams is acknowledged several times per
/// round trip (TCP acknowledges every two full-sized segments, in bytes).
pub const ACK_EVERY_SEGMENTS: u32 = 16;

/// Timers and limits of a channel. Defaults are stated on each field and in
/// `PROTOCOL.md`.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// Retransmission timeout before any RTT sample: 1 s (RFC 6298).
    pub initial_rto: Duration,
    /// Lower bound of the retransmission timeout: 200 ms.
    pub min_rto: Duration,
    /// Upper bound of the retransmission timeout, backoff included: 3 s.
    pub max_rto: Duration,
    /// The peer is declared lost when nothing was heard from it for this
    /// long: 12 s.
    pub idle_timeout: Duration,
    /// Send a PING when nothing was sent for this long (clients: 1 s;
    /// servers: never, they answer their clients' pings).
    pub keepalive: Option<Duration>,
    /// A segment unacknowledged this long after its first transmission ends
    /// the channel with [`ChannelError::Unacknowledged`]: 30 s.
    pub ack_deadline: Duration,
    /// Segments in flight, and accepted ahead of a gap: 64 (at most 256).
    pub window: u32,
    /// How long an acknowledgement may wait for more datagrams to
    /// acknowledge, or for data to ride on: 10 ms. Zero acknowledges every
    /// datagram at once.
    pub max_ack_delay: Duration,
    /// Datagrams with segments that one acknowledgement may cover before it
    /// goes out without waiting: 2, as in TCP and QUIC (1 acknowledges each
    /// at once). More would spare a busy server some datagrams, but under
    /// long bursts of loss fewer acknowledgements make a stalled sender
    /// wait longer for news that the path works again.
    pub ack_every: u32,
    /// Largest sealed datagram this end probes the path for and then sends,
    /// in bytes: [`BASE_DATAGRAM`] (1200), which turns probing off. An
    /// endpoint whose socket sets the don't-fragment bit may raise it up to
    /// [`MAX_DATAGRAM`]; a probe of a size is only sent if it is at most
    /// this, and larger datagrams only after the peer acknowledged one.
    pub max_datagram: usize,
    /// Largest message, in bytes: 131,072.
    pub max_message: usize,
    /// Largest amount of queued, unacknowledged message bytes: 1 MiB.
    pub max_queued_bytes: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(12),
            keepalive: None,
            ack_deadline: Duration::from_secs(30),
            window: 64,
            max_ack_delay: Duration::from_millis(10),
            ack_every: 2,
            max_datagram: BASE_DATAGRAM,
            max_message: 131_072,
            max_queued_bytes: 1 << 20,
        }
    }
}

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
    /// Falls back to [`BASE_DATAGRAM`] after repeated timeouts.
    pub path_fallbacks: u64,
}

/// The bytes of one segment: a range of a message that other channels may
/// share (a broadcast is encoded once and queued to every recipient).
#[derive(Debug)]
struct Piece {
    message: Arc<[u8]>,
    start: usize,
    end: usize,
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        self.message.get(self.start..self.end).unwrap_or(&[])
    }
    fn len(&self) -> usize {
        self.end - self.start
    }
}

#[derive(Debug)]
struct Outgoing {
    seq: u32,
    end: bool,
    marker: Marker,
    data: Piece,
    first_sent: Instant,
    last_sent: Instant,
    transmissions: u32,
    /// Timeouts in a row without news from the peer: the segment's RTO is
    /// doubled this many times. Reset when any new acknowledgement shows
    /// the path works.
    backoff: u32,
    acked: bool,
    lost: bool,
}

/// One side of a reliable connection. See the [module docs](self).
#[derive(Debug)]
pub struct Channel {
    config: ChannelConfig,
    connection_id: u64,
    next_packet: u32,
    // Sending.
    next_seq: u32,
    unsent: VecDeque<Outgoing>,
    in_flight: VecDeque<Outgoing>,
    queued_bytes: usize,
    // Receiving.
    recv_next: u32,
    recv_buf: BTreeMap<u32, (bool, Vec<u8>)>,
    reassembly: Vec<u8>,
    inbox: VecDeque<Vec<u8>>,
    /// Something received is not yet acknowledged.
    ack_pending: bool,
    /// An ACK-only datagram is due: something arrived out of order, a PING,
    /// [`ChannelConfig::ack_every`] datagrams to acknowledge, or the delay
    /// ran out.
    ack_now: bool,
    /// Datagrams with segments received since the last ACK was sent.
    unacked_datagrams: u32,
    /// Segments received since the last ACK was sent.
    unacked_segments: u32,
    /// When the oldest unacknowledged datagram arrived.
    ack_since: Instant,
    received_any_segment: bool,
    ping_pending: bool,
    close_pending: Option<CloseCode>,
    // Timing.
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    /// When, and as which sequence number, the most recently sent of the
    /// acknowledged segments was sent: segments sent before it and still
    /// unacknowledged are probably lost.
    latest_acked: Option<(Instant, u32)>,
    last_recv: Instant,
    last_send: Instant,
    error: Option<ChannelError>,
    stats: ChannelStats,
    path: Path,
}

/// What the channel knows of the path's datagram size (`PROTOCOL.md` §3.9).
#[derive(Debug)]
struct Path {
    /// Largest sealed datagram the peer is known to receive.
    max: usize,
    /// The probe in flight: its size and when it was sent.
    probe: Option<(u16, Instant)>,
    /// Probes of the current size lost so far.
    tries: u32,
    /// Earliest time for the next probe (once an RTT sample shows the path
    /// works); `None` before the first.
    not_before: Option<Instant>,
    /// A probe is to be sent with the next [`Channel::poll_transmit`].
    due: bool,
    /// A probe of this size arrived and is to be answered.
    answer: Option<u16>,
}

impl Path {
    fn new() -> Path {
        Path {
            max: BASE_DATAGRAM,
            probe: None,
            tries: 0,
            not_before: None,
            due: false,
            answer: None,
        }
    }
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
        let rto = config.initial_rto;
        Channel {
            config,
            connection_id,
            next_packet: 0,
            next_seq: 0,
            unsent: VecDeque::new(),
            in_flight: VecDeque::new(),
            queued_bytes: 0,
            recv_next: 0,
            recv_buf: BTreeMap::new(),
            reassembly: Vec::new(),
            inbox: VecDeque::new(),
            ack_pending: false,
            ack_now: false,
            unacked_datagrams: 0,
            unacked_segments: 0,
            ack_since: now,
            received_any_segment: false,
            ping_pending: false,
            close_pending: None,
            srtt: None,
            rttvar: Duration::ZERO,
            rto,
            latest_acked: None,
            last_recv: now,
            last_send: now,
            error: None,
            stats: ChannelStats::default(),
            path: Path::new(),
        }
    }

    /// Largest sealed datagram the channel sends now: [`BASE_DATAGRAM`]
    /// until a probe showed the path carries more.
    pub fn path_max(&self) -> usize {
        self.path.max
    }

    /// Forgets what was learnt about the path (the peer's address changed):
    /// back to [`BASE_DATAGRAM`], and probing starts again.
    pub fn reset_path(&mut self) {
        let answer = self.path.answer;
        self.path = Path::new();
        self.path.answer = answer;
    }

    /// Returns the memory of emptied queues, which keep the capacity of
    /// their largest burst: with thousands of quiet sessions that adds up.
    fn shrink_if_flushed(&mut self) {
        if self.is_flushed() {
            self.unsent.shrink_to_fit();
            self.in_flight.shrink_to_fit();
        }
        if self.inbox.is_empty() {
            self.inbox.shrink_to_fit();
        }
        if self.reassembly.is_empty() {
            self.reassembly.shrink_to_fit();
        }
    }

    /// The next size to probe, if any.
    fn probe_size(&self) -> Option<u16> {
        PROBE_SIZES
            .iter()
            .find(|&&s| s > self.path.max && s <= self.config.max_datagram)
            .map(|&s| s as u16)
    }

    /// Marks a probe due when its time has come.
    fn schedule_probe(&mut self, now: Instant) {
        if !self.path.due
            && self.path.probe.is_none()
            && self.srtt.is_some()
            && self.path.not_before.is_none_or(|t| now >= t)
            && self.probe_size().is_some()
        {
            self.path.due = true;
        }
    }

    fn on_probe_ack(&mut self, now: Instant, size: u16) {
        let size_bytes = size as usize;
        if size_bytes > self.path.max && size_bytes <= self.config.max_datagram {
            self.path.max = size_bytes;
        }
        if self.path.probe.is_some_and(|(s, _)| s <= size) {
            self.path.probe = None;
            self.path.tries = 0;
            self.path.not_before = Some(now);
            self.schedule_probe(now);
        }
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
        self.srtt
    }

    /// When the most recently sent of the acknowledged segments was sent:
    /// an acknowledgement of anything sent at or after a moment proves the
    /// peer received something sent then.
    pub fn latest_acked_sent(&self) -> Option<Instant> {
        self.latest_acked.map(|(t, _)| t)
    }

    /// Whether every queued message was sent and acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.unsent.is_empty() && self.in_flight.is_empty()
    }

    /// When something was last heard from the peer.
    pub fn last_received(&self) -> Instant {
        self.last_recv
    }

    /// Queues a message. `marker` says whether it is chat data (`D`) or a
    /// command (`C`); a datagram carrying any data segment is marked `D`.
    pub fn send(&mut self, marker: Marker, message: &[u8]) -> Result<(), SendError> {
        let pieces = self.admit(message.len())?;
        self.queue(marker, &Arc::from(message), pieces);
        Ok(())
    }

    /// Like [`Channel::send`], for a message whose bytes other channels
    /// may share: a broadcast encoded once costs each recipient's channel
    /// no copy of it.
    pub fn send_shared(&mut self, marker: Marker, message: &Arc<[u8]>) -> Result<(), SendError> {
        let pieces = self.admit(message.len())?;
        self.queue(marker, message, pieces);
        Ok(())
    }

    /// Checks that a message of `len` bytes may be queued; returns how many
    /// segments it takes.
    fn admit(&mut self, len: usize) -> Result<usize, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        if len > self.config.max_message {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_message,
            });
        }
        if self.queued_bytes + len > self.config.max_queued_bytes {
            return Err(SendError::QueueFull);
        }
        let pieces = len.div_ceil(MAX_SEGMENT_DATA).max(1);
        if (self.next_seq as u64) + (pieces as u64) >= u32::MAX as u64 {
            self.fail(ChannelError::SequenceExhausted);
            return Err(SendError::Closed);
        }
        Ok(pieces)
    }

    /// Cuts a checked message into `pieces` segments and queues them.
    fn queue(&mut self, marker: Marker, message: &Arc<[u8]>, pieces: usize) {
        for i in 0..pieces {
            let start = i * MAX_SEGMENT_DATA;
            let data = Piece {
                message: message.clone(),
                start,
                end: (start + MAX_SEGMENT_DATA).min(message.len()),
            };
            self.unsent.push_back(Outgoing {
                seq: self.next_seq,
                end: i + 1 == pieces,
                marker,
                data,
                first_sent: Instant::ZERO,
                last_sent: Instant::ZERO,
                transmissions: 0,
                backoff: 0,
                acked: false,
                lost: false,
            });
            self.next_seq += 1;
        }
        self.queued_bytes += message.len();
    }

    /// The next message received in order, if any.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.inbox.pop_front()
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
                } => self.on_ack(now, next_expected, sack),
                Frame::Segment { seq, end, data } => {
                    eliciting = true;
                    self.unacked_segments += 1;
                    if !self.on_segment(seq, end, data) {
                        self.ack_now = true;
                    }
                }
                Frame::Ping => {
                    eliciting = true;
                    self.ack_now = true;
                    // A keep-alive: the peer has been quiet for a second.
                    // Give back what a burst (a login's online list) grew.
                    self.shrink_if_flushed();
                }
                Frame::Probe(size) => {
                    eliciting = true;
                    self.ack_now = true;
                    self.path.answer = self.path.answer.max(Some(size));
                }
                Frame::ProbeAck(size) => self.on_probe_ack(now, size),
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
            if !self.ack_pending {
                self.ack_pending = true;
                self.ack_since = now;
            }
            self.unacked_datagrams += 1;
            if self.unacked_datagrams >= self.config.ack_every
                || self.unacked_segments >= ACK_EVERY_SEGMENTS
                || self.config.max_ack_delay == Duration::ZERO
            {
                self.ack_now = true;
            }
        }
    }

    /// Takes in a segment; returns whether it came in order (the next one
    /// expected), which may wait for a delayed acknowledgement. A gap, a
    /// duplicate or a segment beyond the window is acknowledged at once, so
    /// that the sender learns of it quickly.
    fn on_segment(&mut self, seq: u32, end: bool, data: &[u8]) -> bool {
        self.received_any_segment = true;
        if seq < self.recv_next {
            self.stats.duplicates_received += 1;
            return false;
        }
        if seq - self.recv_next >= self.config.window {
            return false;
        }
        if self.recv_buf.contains_key(&seq) {
            self.stats.duplicates_received += 1;
            return false;
        }
        let in_order = seq == self.recv_next && self.recv_buf.is_empty();
        if in_order {
            // The common case: nothing buffered ahead, so no detour
            // through the reordering buffer.
            self.recv_next += 1;
            return self.reassemble(end, data.to_vec());
        }
        self.recv_buf.insert(seq, (end, data.to_vec()));
        while let Some((end, data)) = self.recv_buf.remove(&self.recv_next) {
            self.recv_next += 1;
            if !self.reassemble(end, data) {
                return false;
            }
        }
        false
    }

    /// Appends the next in-order segment to the message being reassembled;
    /// false when the message grew too large (the channel has failed).
    fn reassemble(&mut self, end: bool, data: Vec<u8>) -> bool {
        if self.reassembly.len() + data.len() > self.config.max_message {
            self.fail(ChannelError::MessageTooLarge);
            self.close_pending = Some(CloseCode::ProtocolViolation);
            return false;
        }
        if self.reassembly.is_empty() && end {
            self.inbox.push_back(data);
        } else {
            self.reassembly.extend_from_slice(&data);
            if end {
                self.inbox.push_back(core::mem::take(&mut self.reassembly));
            }
        }
        true
    }

    fn on_ack(&mut self, now: Instant, next_expected: u32, sack: &[u8]) {
        let sent_end = self
            .in_flight
            .back()
            .map(|o| o.seq + 1)
            .unwrap_or(self.unsent.front().map(|o| o.seq).unwrap_or(self.next_seq));
        if next_expected > sent_end {
            // Acknowledges what was never sent: ignore the frame.
            return;
        }
        let mut newly_acked = false;
        for o in self.in_flight.iter_mut() {
            if o.acked {
                continue;
            }
            let acked = if o.seq < next_expected {
                true
            } else if o.seq > next_expected {
                let bit = (o.seq - next_expected - 1) as usize;
                sack.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0)
            } else {
                false
            };
            if acked {
                o.acked = true;
                o.lost = false;
                newly_acked = true;
                if o.transmissions == 1 {
                    let sample = now.saturating_since(o.last_sent);
                    update_rtt(
                        &mut self.srtt,
                        &mut self.rttvar,
                        &mut self.rto,
                        &self.config,
                        sample,
                    );
                }
                let sent = (o.last_sent, o.seq);
                if self.latest_acked.is_none_or(|l| sent > l) {
                    self.latest_acked = Some(sent);
                }
            }
        }
        if !newly_acked {
            return;
        }
        // The path works: timeouts start over from the plain RTO.
        for o in self.in_flight.iter_mut() {
            o.backoff = 0;
        }
        while self.in_flight.front().is_some_and(|o| o.acked) {
            if let Some(o) = self.in_flight.pop_front() {
                self.queued_bytes = self.queued_bytes.saturating_sub(o.data.len());
            }
        }
        self.detect_reordering_losses(now);
        // The path works: probing may start (or go on).
        self.schedule_probe(now);
    }

    fn reorder_threshold(&self) -> Duration {
        let base = self.srtt.unwrap_or(self.rto);
        base + Duration::from_micros(base.as_micros() / 4)
    }

    /// The timeout of a segment after `backoff` timeouts in a row: the RTO
    /// doubled that many times, capped.
    fn backed_off_rto(&self, backoff: u32) -> Duration {
        let shift = backoff.min(16);
        let shifted = self
            .rto
            .saturating_mul(1u64 << shift)
            .min(self.config.max_rto);
        shifted.max(self.config.min_rto)
    }

    /// When an unacknowledged, not yet lost segment is due for
    /// retransmission: a reordering deadline once a later segment was
    /// acknowledged, else its own backed-off timeout.
    fn retransmit_deadline(&self, o: &Outgoing) -> Instant {
        match self.latest_acked {
            Some(l) if (o.last_sent, o.seq) < l => o.last_sent + self.reorder_threshold(),
            _ => o.last_sent + self.backed_off_rto(o.backoff),
        }
    }

    fn detect_reordering_losses(&mut self, now: Instant) {
        let Some(latest) = self.latest_acked else {
            return;
        };
        let threshold = self.reorder_threshold();
        for o in self.in_flight.iter_mut() {
            if !o.acked
                && !o.lost
                && (o.last_sent, o.seq) < latest
                && now >= o.last_sent + threshold
            {
                o.lost = true;
            }
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
        let mut unacknowledged = false;
        let mut timed_out_twice = false;
        for i in 0..self.in_flight.len() {
            let o = &self.in_flight[i];
            if o.acked {
                continue;
            }
            if now >= o.first_sent + self.config.ack_deadline {
                unacknowledged = true;
                break;
            }
            if o.lost {
                continue;
            }
            let by_timeout = self.latest_acked.is_none_or(|l| (o.last_sent, o.seq) >= l);
            if now >= self.retransmit_deadline(o) {
                let o = &mut self.in_flight[i];
                o.lost = true;
                if by_timeout {
                    o.backoff += 1;
                    timed_out_twice |= o.backoff >= 2;
                }
            }
        }
        if unacknowledged {
            self.fail(ChannelError::Unacknowledged);
            self.close_pending = Some(CloseCode::IdleTimeout);
            return;
        }
        if timed_out_twice && self.path.max > BASE_DATAGRAM {
            // Perhaps the path no longer carries large datagrams (a route
            // changed): what is retransmitted now fits any path.
            self.reset_path();
            self.path.not_before = Some(now + PROBE_AFTER_FALLBACK);
            self.stats.path_fallbacks += 1;
        }
        if let Some((_, sent)) = self.path.probe
            && now >= sent + self.rto
        {
            // The probe was lost (or the peer does not take that size).
            self.path.probe = None;
            self.path.tries += 1;
            if self.path.tries >= PROBE_TRIES {
                self.path.tries = 0;
                self.path.not_before = Some(now + PROBE_AGAIN);
            }
        }
        self.schedule_probe(now);
        if let Some(k) = self.config.keepalive
            && now >= self.last_send + k
        {
            self.ping_pending = true;
        }
        if self.ack_pending && now >= self.ack_since + self.config.max_ack_delay {
            self.ack_now = true;
        }
    }

    /// The next instant at which [`Channel::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let mut next = self.last_recv + self.config.idle_timeout;
        for o in self.in_flight.iter() {
            if o.acked {
                continue;
            }
            next = next.min(o.first_sent + self.config.ack_deadline);
            if !o.lost {
                next = next.min(self.retransmit_deadline(o));
            }
        }
        if let Some(k) = self.config.keepalive
            && !self.ping_pending
        {
            next = next.min(self.last_send + k);
        }
        if self.ack_pending && !self.ack_now {
            next = next.min(self.ack_since + self.config.max_ack_delay);
        }
        if let Some((_, sent)) = self.path.probe {
            next = next.min(sent + self.rto);
        } else if let Some(t) = self.path.not_before
            && !self.path.due
            && self.srtt.is_some()
            && self.probe_size().is_some()
        {
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
        self.ack_now
            || self.ping_pending
            || self.path.due
            || self.path.answer.is_some()
            || self.in_flight.iter().any(|o| o.lost && !o.acked)
            || self.unsent.front().is_some_and(|o| self.in_window(o.seq))
    }

    fn in_window(&self, seq: u32) -> bool {
        let base = self.in_flight.front().map(|o| o.seq).unwrap_or(seq);
        seq - base < self.config.window
    }

    fn header(&self, marker: Marker) -> Header {
        Header {
            marker,
            kind: PacketKind::Data,
            connection_id: self.connection_id,
            packet_number: self.next_packet,
        }
    }

    fn ack_frame_bytes(&self, sack: &mut [u8; MAX_SACK_BYTES]) -> usize {
        let mut len = 0;
        for &seq in self.recv_buf.keys() {
            let bit = (seq - self.recv_next - 1) as usize;
            if bit / 8 >= MAX_SACK_BYTES {
                break;
            }
            sack[bit / 8] |= 1 << (bit % 8);
            len = bit / 8 + 1;
        }
        len
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
        if let Some(code) = self.close_pending.take() {
            let mut b = DatagramBuilder::new(self.header(Marker::Command));
            b.push(&Frame::Close(code));
            self.next_packet = self.next_packet.saturating_add(1);
            self.stats.datagrams_sent += 1;
            return Some(b.finish());
        }
        if self.error.is_some() {
            return None;
        }
        if self.next_packet == u32::MAX {
            // Packet numbers are nonces: never reuse one.
            self.fail(ChannelError::SequenceExhausted);
            return None;
        }
        if self.path.due
            && let Some(size) = self.probe_size()
            && size as usize - SEAL_OVERHEAD <= limit
        {
            return Some(self.probe(now, size));
        }
        let has_data = self.in_flight.iter().any(|o| o.lost && !o.acked)
            || self.unsent.front().is_some_and(|o| self.in_window(o.seq));
        let mut limit = limit.min(self.path.max - SEAL_OVERHEAD);
        if !has_data {
            // ACK, PROBE_ACK and PING at most: no need to reserve room for
            // a large datagram (acknowledgements are the commonest kind).
            limit = limit.min(CONTROL_ONLY);
        }
        let mut b = DatagramBuilder::with_limit(self.header(Marker::Command), limit);
        let mut sack = [0u8; MAX_SACK_BYTES];
        let sack_len = self.ack_frame_bytes(&mut sack);
        let mut acked_now = false;
        // An ACK goes out alone only when due; otherwise it rides on data.
        if self.ack_now
            || (self.ack_pending && (has_data || self.ping_pending))
            || (has_data && self.received_any_segment)
        {
            acked_now = b.push(&Frame::Ack {
                next_expected: self.recv_next,
                sack: &sack[..sack_len],
            });
        }
        if let Some(size) = self.path.answer
            && b.push(&Frame::ProbeAck(size))
        {
            self.path.answer = None;
        }
        let mut marker = Marker::Command;
        let mut eliciting = false;
        for o in self.in_flight.iter_mut() {
            if !o.lost || o.acked {
                continue;
            }
            if SEGMENT_OVERHEAD + o.data.len() > b.remaining() {
                break;
            }
            b.push(&Frame::Segment {
                seq: o.seq,
                end: o.end,
                data: o.data.bytes(),
            });
            o.lost = false;
            o.last_sent = now;
            o.transmissions += 1;
            self.stats.retransmissions += 1;
            self.stats.segments_sent += 1;
            eliciting = true;
            if o.marker == Marker::Data {
                marker = Marker::Data;
            }
        }
        while let Some(o) = self.unsent.front() {
            if !self.in_window(o.seq) || SEGMENT_OVERHEAD + o.data.len() > b.remaining() {
                break;
            }
            let Some(mut o) = self.unsent.pop_front() else {
                break;
            };
            b.push(&Frame::Segment {
                seq: o.seq,
                end: o.end,
                data: o.data.bytes(),
            });
            o.first_sent = now;
            o.last_sent = now;
            o.transmissions = 1;
            self.stats.segments_sent += 1;
            eliciting = true;
            if o.marker == Marker::Data {
                marker = Marker::Data;
            }
            self.in_flight.push_back(o);
        }
        if !eliciting && self.ping_pending && b.push(&Frame::Ping) {
            eliciting = true;
        }
        if b.is_empty() {
            return None;
        }
        if acked_now {
            self.ack_sent();
        }
        if eliciting {
            self.ping_pending = false;
            self.last_send = now;
        }
        b.set_marker(marker);
        self.next_packet += 1;
        self.stats.datagrams_sent += 1;
        Some(b.finish())
    }

    /// An ACK frame went out: nothing received is waiting for one.
    fn ack_sent(&mut self) {
        self.ack_pending = false;
        self.ack_now = false;
        self.unacked_datagrams = 0;
        self.unacked_segments = 0;
    }

    /// A probe of `size` sealed bytes: an ACK and a probe answer if owed,
    /// the PROBE frame, and padding. It carries no segment, so its loss
    /// costs nothing but the probe.
    fn probe(&mut self, now: Instant, size: u16) -> Vec<u8> {
        let plain = size as usize - SEAL_OVERHEAD;
        let mut b = DatagramBuilder::with_limit(self.header(Marker::Command), plain);
        if self.ack_pending || self.ack_now || self.received_any_segment {
            let mut sack = [0u8; MAX_SACK_BYTES];
            let sack_len = self.ack_frame_bytes(&mut sack);
            b.push(&Frame::Ack {
                next_expected: self.recv_next,
                sack: &sack[..sack_len],
            });
            self.ack_sent();
        }
        if let Some(answer) = self.path.answer.take() {
            b.push(&Frame::ProbeAck(answer));
        }
        b.push(&Frame::Probe(size));
        b.pad_to(plain);
        self.path.due = false;
        self.path.probe = Some((size, now));
        self.last_send = now;
        self.ping_pending = false;
        self.next_packet += 1;
        self.stats.datagrams_sent += 1;
        self.stats.probes_sent += 1;
        b.finish()
    }
}

fn update_rtt(
    srtt: &mut Option<Duration>,
    rttvar: &mut Duration,
    rto: &mut Duration,
    config: &ChannelConfig,
    sample: Duration,
) {
    let r = sample.as_micros();
    match *srtt {
        None => {
            *srtt = Some(sample);
            *rttvar = Duration::from_micros(r / 2);
        }
        Some(s) => {
            let s = s.as_micros();
            let diff = s.abs_diff(r);
            *rttvar = Duration::from_micros((3 * rttvar.as_micros() + diff) / 4);
            *srtt = Some(Duration::from_micros((7 * s + r) / 8));
        }
    }
    let s = srtt.unwrap_or(sample);
    let k = rttvar.saturating_mul(4).max(Duration::from_millis(1));
    *rto = (s + k).clamp(config.min_rto, config.max_rto);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Datagram;
    use alloc::vec;

    fn pair(now: Instant) -> (Channel, Channel) {
        let a = Channel::new(ChannelConfig::default(), 7, now);
        let b = Channel::new(ChannelConfig::default(), 7, now);
        (a, b)
    }

    fn deliver(now: Instant, bytes: &[u8], to: &mut Channel) {
        let d = Datagram::decode(bytes).expect("valid datagram");
        to.handle_frames(now, d.frames());
    }

    fn drain(now: Instant, from: &mut Channel) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(d) = from.poll_transmit(now) {
            out.push(d);
        }
        out
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
    fn acknowledges_every_fourth_datagram_and_gaps_at_once() {
        let t = Instant::ZERO;
        let config = ChannelConfig {
            ack_every: 4,
            ..ChannelConfig::default()
        };
        let mut a = Channel::new(config.clone(), 7, t);
        let mut b = Channel::new(config, 7, t);
        let mut sent = Vec::new();
        for m in [b"1", b"2", b"3", b"4", b"5", b"6"] {
            a.send(Marker::Data, m).unwrap();
            sent.extend(drain(t, &mut a));
        }
        assert_eq!(sent.len(), 6);
        for d in &sent[..3] {
            deliver(t, d, &mut b);
            assert!(!b.wants_transmit());
        }
        deliver(t, &sent[3], &mut b);
        assert!(b.wants_transmit(), "the fourth datagram is acknowledged");
        assert_eq!(drain(t, &mut b).len(), 1);
        // A gap (5 is missing) is acknowledged at once.
        deliver(t, &sent[5], &mut b);
        assert!(b.wants_transmit());
        assert_eq!(drain(t, &mut b).len(), 1);
        // So is the segment that fills it.
        deliver(t, &sent[4], &mut b);
        assert!(b.wants_transmit());
        let acks = drain(t, &mut b);
        for d in &acks {
            deliver(t, d, &mut a);
        }
        assert!(a.is_flushed());
        // A pending ACK rides on data sent back.
        a.send(Marker::Data, b"5").unwrap();
        let d = drain(t, &mut a).remove(0);
        deliver(t, &d, &mut b);
        b.send(Marker::Data, b"reply").unwrap();
        let back = drain(t, &mut b);
        assert_eq!(back.len(), 1);
        deliver(t, &back[0], &mut a);
        assert!(a.is_flushed(), "the reply carried the ACK");
        assert!(!b.wants_transmit());
    }

    fn probing(now: Instant) -> (Channel, Channel) {
        let config = ChannelConfig {
            max_datagram: MAX_DATAGRAM,
            ..ChannelConfig::default()
        };
        // Only `a` probes; `b` keeps the default and only answers.
        (
            Channel::new(config, 7, now),
            Channel::new(ChannelConfig::default(), 7, now),
        )
    }

    /// Moves datagrams both ways until neither side has anything to send;
    /// `pass` decides which of a's datagrams arrive.
    fn exchange(
        now: Instant,
        a: &mut Channel,
        b: &mut Channel,
        pass: impl Fn(&[u8]) -> bool,
    ) -> Vec<usize> {
        let mut sizes = Vec::new();
        for _ in 0..100 {
            let from_a = drain(now, a);
            let from_b = drain(now, b);
            if from_a.is_empty() && from_b.is_empty() {
                return sizes;
            }
            for d in &from_a {
                sizes.push(d.len() + SEAL_OVERHEAD);
                if pass(d) {
                    deliver(now, d, b);
                }
            }
            for d in &from_b {
                deliver(now, d, a);
            }
        }
        panic!("the channels never went quiet");
    }

    fn probe_of(d: &[u8]) -> Option<u16> {
        Datagram::decode(d).ok()?.frames().find_map(|f| match f {
            Frame::Probe(size) => Some(size),
            _ => None,
        })
    }

    #[test]
    fn probes_raise_the_datagram_size_step_by_step() {
        let t = Instant::ZERO;
        let (mut a, mut b) = probing(t);
        assert_eq!(a.path_max(), BASE_DATAGRAM);
        a.send(Marker::Data, b"hello").unwrap();
        let d = drain(t, &mut a);
        assert!(d.iter().all(|d| probe_of(d).is_none()), "no RTT sample yet");
        deliver(t, &d[0], &mut b);
        let now = t + Duration::from_millis(10);
        b.handle_timeout(now);
        // The first acknowledgement starts probing: each size answered
        // leads to the next.
        let sizes = exchange(now, &mut a, &mut b, |_| true);
        assert_eq!(sizes, vec![1452, 8952, MAX_DATAGRAM]);
        assert_eq!(a.path_max(), MAX_DATAGRAM);
        assert_eq!(a.stats().probes_sent, 3);
        // b only answered: it never probes (its limit is the base size).
        assert_eq!(b.path_max(), BASE_DATAGRAM);
        assert_eq!(b.stats().probes_sent, 0);
        // Now many small messages share one large datagram.
        for _ in 0..60 {
            a.send(Marker::Data, &[b'x'; 100]).unwrap();
        }
        let d = drain(now, &mut a);
        assert_eq!(d.len(), 1, "60 messages of 100 bytes in one datagram");
        assert!(d[0].len() + SEAL_OVERHEAD > 6000);
    }

    #[test]
    fn a_size_the_path_drops_is_tried_three_times_then_left_for_a_while() {
        let t = Instant::ZERO;
        let patient = ChannelConfig {
            max_datagram: MAX_DATAGRAM,
            idle_timeout: Duration::from_secs(3600),
            ..ChannelConfig::default()
        };
        let mut a = Channel::new(patient.clone(), 7, t);
        let mut b = Channel::new(patient, 7, t);
        a.send(Marker::Data, b"hello").unwrap();
        let d = drain(t, &mut a);
        deliver(t, &d[0], &mut b);
        b.handle_timeout(t + Duration::from_millis(10));
        // The path carries 1452 bytes but nothing larger.
        let small = |d: &[u8]| d.len() + SEAL_OVERHEAD <= 1452;
        let mut now = t + Duration::from_millis(10);
        let mut probes = exchange(now, &mut a, &mut b, small);
        let mut lost_at = None;
        while probes.len() < 5 {
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now);
            b.handle_timeout(now);
            if probes.len() == 4 && lost_at.is_none() {
                lost_at = Some(now);
            }
            probes.extend(exchange(now, &mut a, &mut b, small));
        }
        // Ten minutes after the third loss, the size is tried again.
        assert_eq!(probes, vec![1452, 8952, 8952, 8952, 8952]);
        assert_eq!(a.path_max(), 1452);
        assert_eq!(Some(now), lost_at.map(|l| l + PROBE_AGAIN));
        assert!(a.error().is_none());
    }

    #[test]
    fn falls_back_to_the_base_size_when_large_datagrams_stop_arriving() {
        let t = Instant::ZERO;
        let (mut a, mut b) = probing(t);
        a.send(Marker::Data, b"hello").unwrap();
        let d = drain(t, &mut a);
        deliver(t, &d[0], &mut b);
        let mut now = t + Duration::from_millis(10);
        b.handle_timeout(now);
        exchange(now, &mut a, &mut b, |_| true);
        assert_eq!(a.path_max(), MAX_DATAGRAM);
        // The route changes: only base-sized datagrams get through.
        for _ in 0..40 {
            a.send(Marker::Data, &[b'y'; 100]).unwrap();
        }
        let base = |d: &[u8]| d.len() + SEAL_OVERHEAD <= BASE_DATAGRAM;
        let mut sizes = exchange(now, &mut a, &mut b, base);
        while !a.is_flushed() {
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now);
            b.handle_timeout(now);
            sizes.extend(exchange(now, &mut a, &mut b, base));
            assert!(now < t + Duration::from_secs(5), "stalled: {sizes:?}");
        }
        assert_eq!(a.stats().path_fallbacks, 1);
        assert_eq!(a.path_max(), BASE_DATAGRAM);
        assert!(sizes[0] > BASE_DATAGRAM, "first sent in one large datagram");
        assert!(sizes.iter().rev().take(3).all(|&s| s <= BASE_DATAGRAM));
        let mut got = 0;
        while b.recv().is_some() {
            got += 1;
        }
        assert_eq!(got, 1 + 40, "everything arrived once");
        // Probing starts again a minute after the fallback.
        let again = a.path.not_before.expect("probing again");
        assert!(again > now && again <= now + PROBE_AFTER_FALLBACK);
    }

    #[test]
    fn a_quiet_channel_gives_back_the_memory_of_a_burst() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        let burst = vec![b'n'; 40 * MAX_SEGMENT_DATA];
        a.send(Marker::Command, &burst).unwrap();
        exchange(t, &mut a, &mut b, |_| true);
        let now = t + Duration::from_millis(10);
        b.handle_timeout(now);
        exchange(now, &mut a, &mut b, |_| true);
        assert!(a.is_flushed());
        assert!(a.in_flight.capacity() >= 40 && a.unsent.capacity() >= 40);
        // The peer's keep-alive shows a quiet moment.
        let mut p = Channel::new(
            ChannelConfig {
                keepalive: Some(Duration::from_secs(1)),
                ..ChannelConfig::default()
            },
            7,
            t,
        );
        let later = t + Duration::from_secs(2);
        p.handle_timeout(later);
        let ping = drain(later, &mut p);
        deliver(later, &ping[0], &mut a);
        assert_eq!(a.in_flight.capacity(), 0);
        assert_eq!(a.unsent.capacity(), 0);
        assert_eq!(b.recv(), Some(burst));
    }

    #[test]
    fn sixteen_segments_are_acknowledged_at_once() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        for n in [15, 16] {
            for _ in 0..n {
                a.send(Marker::Data, b"z").unwrap();
            }
            let d = drain(t, &mut a);
            assert_eq!(d.len(), 1);
            deliver(t, &d[0], &mut b);
            assert_eq!(b.wants_transmit(), n == 16, "{n} segments");
            b.handle_timeout(t + Duration::from_millis(10));
            for d in drain(t, &mut b) {
                deliver(t, &d, &mut a);
            }
            assert!(a.is_flushed());
        }
    }

    #[test]
    fn duplicates_are_delivered_once_and_reacked() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        a.send(Marker::Data, b"x").unwrap();
        let d = drain(t, &mut a).remove(0);
        deliver(t, &d, &mut b);
        deliver(t, &d, &mut b);
        assert_eq!(b.recv(), Some(b"x".to_vec()));
        assert_eq!(b.recv(), None);
        assert_eq!(drain(t, &mut b).len(), 1);
        deliver(t, &d, &mut b);
        assert_eq!(
            drain(t, &mut b).len(),
            1,
            "a duplicate is acknowledged again"
        );
    }

    #[test]
    fn fragments_and_reassembles_large_messages() {
        let t = Instant::ZERO;
        let (mut a, mut b) = pair(t);
        let msg: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        a.send(Marker::Data, &msg).unwrap();
        let mut now = t;
        for _ in 0..20 {
            let ds = drain(now, &mut a);
            // Deliver in reverse order to exercise the reorder buffer.
            for d in ds.iter().rev() {
                assert!(d.len() <= crate::wire::MAX_PLAINTEXT);
                deliver(now, d, &mut b);
            }
            for d in drain(now, &mut b) {
                deliver(now, &d, &mut a);
            }
            now += Duration::from_millis(10);
        }
        assert_eq!(b.recv(), Some(msg));
        assert!(a.is_flushed());
    }

    #[test]
    fn rejects_oversized_and_bounds_the_queue() {
        let t = Instant::ZERO;
        let (mut a, _) = pair(t);
        assert_eq!(
            a.send(Marker::Data, &vec![0; 131_073]),
            Err(SendError::TooLarge {
                len: 131_073,
                max: 131_072
            })
        );
        let chunk = vec![0u8; 100_000];
        let mut queued = 0;
        while a.send(Marker::Data, &chunk).is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 10);
        assert_eq!(a.send(Marker::Data, &chunk), Err(SendError::QueueFull));
    }

    #[test]
    fn retransmits_with_backoff_until_idle_timeout() {
        let t0 = Instant::ZERO;
        let (mut a, _) = pair(t0);
        a.send(Marker::Command, b"hello?").unwrap();
        assert_eq!(drain(t0, &mut a).len(), 1);
        let mut sends = vec![t0];
        let mut now = t0;
        while a.error().is_none() {
            let next = a.poll_timeout().expect("a deadline while open");
            assert!(next > now, "deadline must move forward");
            now = next;
            a.handle_timeout(now);
            if a.error().is_none() {
                let n = drain(now, &mut a).len();
                if n > 0 {
                    sends.push(now);
                }
            }
        }
        assert_eq!(a.error(), Some(ChannelError::IdleTimeout));
        assert_eq!(now, t0 + Duration::from_secs(12));
        let gaps: Vec<u64> = sends
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert_eq!(gaps, vec![1000, 2000, 3000, 3000]);
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
