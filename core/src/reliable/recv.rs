//! The receiving half of a channel: segments taken in, reordered,
//! reassembled into messages and delivered exactly once and in order, and
//! what is owed to the peer as acknowledgement (cumulative, plus a
//! selective bitmap of what arrived beyond a gap).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::time::{Duration, Instant};
use crate::wire::{Frame, MAX_SACK_BYTES};

/// Segments received and not yet acknowledged after which an
/// acknowledgement goes out without waiting: 16, so that a window of 64
/// segments in a few large datagrams is acknowledged several times per
/// round trip (TCP acknowledges every two full-sized segments, in bytes).
pub const ACK_EVERY_SEGMENTS: u32 = 16;

/// What became of a segment taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The next one expected, with nothing buffered ahead: its
    /// acknowledgement may be delayed.
    InOrder,
    /// Buffered ahead of a gap, or filling one.
    Reordered,
    /// Received before.
    Duplicate,
    /// Beyond the window: dropped.
    BeyondWindow,
    /// The message it belongs to grew over the limit.
    TooLarge,
    /// It was the last sequence number (`u32::MAX`), taken in order: the
    /// next expected one cannot be represented, so the connection ends.
    SequenceExhausted,
}

/// Reordering buffer, reassembly, messages ready, and the acknowledgement
/// state of one channel.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// The lowest sequence number not yet received.
    next: u32,
    /// Segments received ahead of a gap: whether each ends a message, and
    /// its bytes.
    buf: BTreeMap<u32, (bool, Vec<u8>)>,
    /// The message being reassembled.
    reassembly: Vec<u8>,
    /// Messages received in order and not yet taken.
    inbox: Inbox,
    /// Something received is not yet acknowledged.
    ack_pending: bool,
    /// An ACK-only datagram is due: something arrived out of order, a PING,
    /// [`ChannelConfig::ack_every`](super::ChannelConfig::ack_every)
    /// datagrams to acknowledge, or the delay ran out.
    ack_now: bool,
    /// Datagrams with segments received since the last ACK was sent.
    unacked_datagrams: u32,
    /// Segments received since the last ACK was sent.
    unacked_segments: u32,
    /// When the oldest unacknowledged datagram arrived.
    ack_since: Instant,
    /// Whether any segment arrived: from then on, data sent carries an ACK.
    received_any_segment: bool,
}

impl Receiver {
    /// Nothing received; segment 0 is expected first.
    pub(crate) fn new(now: Instant) -> Self {
        Receiver {
            next: 0,
            buf: BTreeMap::new(),
            reassembly: Vec::new(),
            inbox: Inbox::default(),
            ack_pending: false,
            ack_now: false,
            unacked_datagrams: 0,
            unacked_segments: 0,
            ack_since: now,
            received_any_segment: false,
        }
    }

    /// The next message received in order, if any, in a new buffer.
    pub(crate) fn recv(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.recv_into(&mut out).then_some(out)
    }

    /// Replaces the contents of `out` with the next message received in
    /// order; false (and `out` untouched) when there is none.
    pub(crate) fn recv_into(&mut self, out: &mut Vec<u8>) -> bool {
        self.inbox.pop_into(out)
    }

    /// The next message received in order, borrowed until the next call.
    pub(crate) fn recv_slice(&mut self) -> Option<&[u8]> {
        self.inbox.pop()
    }

    /// Returns the memory of an emptied inbox and reassembly buffer.
    pub(crate) fn shrink(&mut self) {
        self.inbox.shrink();
        if self.reassembly.is_empty() {
            self.reassembly.shrink_to_fit();
        }
    }

    /// Takes in a segment, accepting at most `window` segments ahead of
    /// the next expected one and messages of at most `max_message` bytes.
    /// Only a segment [`Arrival::InOrder`] may wait for a delayed
    /// acknowledgement; anything else is acknowledged at once, so that the
    /// sender learns of it quickly.
    pub(crate) fn on_segment(
        &mut self,
        seq: u32,
        end: bool,
        data: &[u8],
        window: u32,
        max_message: usize,
    ) -> Arrival {
        self.unacked_segments = self.unacked_segments.saturating_add(1);
        self.received_any_segment = true;
        let Some(ahead) = seq.checked_sub(self.next) else {
            return Arrival::Duplicate;
        };
        if ahead >= window {
            return Arrival::BeyondWindow;
        }
        if self.buf.contains_key(&seq) {
            return Arrival::Duplicate;
        }
        let in_order = seq == self.next && self.buf.is_empty();
        if in_order {
            // The common case: nothing buffered ahead, so no detour
            // through the reordering buffer.
            if !self.advance() {
                return Arrival::SequenceExhausted;
            }
            return self.reassemble(end, data, max_message);
        }
        self.buf.insert(seq, (end, data.to_vec()));
        while let Some((end, data)) = self.buf.remove(&self.next) {
            if !self.advance() {
                return Arrival::SequenceExhausted;
            }
            if self.reassemble(end, &data, max_message) == Arrival::TooLarge {
                return Arrival::TooLarge;
            }
        }
        Arrival::Reordered
    }

    /// Moves the next expected sequence number past one taken in order;
    /// false when it was the last one.
    fn advance(&mut self) -> bool {
        match self.next.checked_add(1) {
            Some(next) => {
                self.next = next;
                true
            }
            None => false,
        }
    }

    /// Appends the next in-order segment to the message being reassembled.
    fn reassemble(&mut self, end: bool, data: &[u8], max_message: usize) -> Arrival {
        if self.reassembly.len().saturating_add(data.len()) > max_message {
            return Arrival::TooLarge;
        }
        if self.reassembly.is_empty() && end {
            self.inbox.push(data);
        } else {
            self.reassembly.extend_from_slice(data);
            if end {
                self.inbox.push(&self.reassembly);
                self.reassembly.clear();
            }
        }
        Arrival::InOrder
    }

    /// Asks for an ACK-only datagram at once.
    pub(crate) fn ack_at_once(&mut self) {
        self.ack_now = true;
    }

    /// A datagram that asks for acknowledgement (segments, PING, PROBE)
    /// was taken in at `now`: the acknowledgement is due at once after
    /// `ack_every` such datagrams, [`ACK_EVERY_SEGMENTS`] segments, or
    /// always when `max_ack_delay` is zero; else within `max_ack_delay`.
    pub(crate) fn on_eliciting(&mut self, now: Instant, ack_every: u32, max_ack_delay: Duration) {
        if !self.ack_pending {
            self.ack_pending = true;
            self.ack_since = now;
        }
        self.unacked_datagrams = self.unacked_datagrams.saturating_add(1);
        if self.unacked_datagrams >= ack_every
            || self.unacked_segments >= ACK_EVERY_SEGMENTS
            || max_ack_delay == Duration::ZERO
        {
            self.ack_now = true;
        }
    }

    /// Makes the delayed acknowledgement due once `max_ack_delay` passed.
    pub(crate) fn on_timeout(&mut self, now: Instant, max_ack_delay: Duration) {
        if self.ack_pending && now >= self.ack_since + max_ack_delay {
            self.ack_now = true;
        }
    }

    /// When a delayed acknowledgement falls due, if one waits.
    pub(crate) fn next_timeout(&self, max_ack_delay: Duration) -> Option<Instant> {
        (self.ack_pending && !self.ack_now).then(|| self.ack_since + max_ack_delay)
    }

    /// Whether an ACK-only datagram is due.
    pub(crate) fn ack_now(&self) -> bool {
        self.ack_now
    }

    /// Whether something received is not yet acknowledged.
    pub(crate) fn ack_pending(&self) -> bool {
        self.ack_pending
    }

    /// Whether any segment was ever received.
    pub(crate) fn received_any_segment(&self) -> bool {
        self.received_any_segment
    }

    /// The ACK frame acknowledging what was received, its bitmap written
    /// into `sack` (cut at [`MAX_SACK_BYTES`]).
    pub(crate) fn ack_frame<'a>(&self, sack: &'a mut [u8; MAX_SACK_BYTES]) -> Frame<'a> {
        let mut len = 0;
        for &seq in self.buf.keys() {
            // Buffered segments lie beyond the next expected one, which is
            // missing: bit 0 stands for the one after it.
            let Some(bit) = seq
                .checked_sub(self.next)
                .and_then(|d| d.checked_sub(1))
                .and_then(|b| usize::try_from(b).ok())
            else {
                continue;
            };
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            let Some(b) = sack.get_mut(byte) else {
                break;
            };
            *b |= mask;
            len = byte + 1;
        }
        let (sack, _) = sack.split_at(len.min(MAX_SACK_BYTES));
        Frame::Ack {
            next_expected: self.next,
            sack,
        }
    }

    /// An ACK frame went out: nothing received is waiting for one.
    pub(crate) fn ack_sent(&mut self) {
        self.ack_pending = false;
        self.ack_now = false;
        self.unacked_datagrams = 0;
        self.unacked_segments = 0;
    }
}

/// Whole messages waiting to be taken, one after the other in one buffer
/// (not an allocation per message), oldest first.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    /// Where each message ends in `bytes`.
    ends: VecDeque<usize>,
    /// Where the oldest message starts in `bytes`.
    start: usize,
}

impl Inbox {
    /// Appends a message. The bytes already taken are dropped from the
    /// front once they are the larger part of the buffer, so that an inbox
    /// never read to its end does not grow.
    fn push(&mut self, message: &[u8]) {
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            let taken = self.start;
            self.bytes.drain(..taken);
            for end in &mut self.ends {
                *end -= taken;
            }
            self.start = 0;
        }
        self.bytes.extend_from_slice(message);
        self.ends.push_back(self.bytes.len());
    }

    /// Replaces the contents of `out` with the oldest message; false (and
    /// `out` untouched) when there is none.
    fn pop_into(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(message) = self.pop() else {
            return false;
        };
        out.clear();
        out.extend_from_slice(message);
        true
    }

    /// The oldest message, borrowed where it lies: no copy. Its bytes are
    /// let go by the next call or the next [`Inbox::push`].
    fn pop(&mut self) -> Option<&[u8]> {
        let Some(end) = self.ends.pop_front() else {
            self.start_over();
            return None;
        };
        let start = core::mem::replace(&mut self.start, end);
        self.bytes.get(start..end)
    }

    /// Everything was taken: the buffer starts over from its front.
    fn start_over(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// Returns the memory of an empty inbox.
    fn shrink(&mut self) {
        if self.ends.is_empty() {
            self.start_over();
            self.bytes.shrink_to_fit();
            self.ends.shrink_to_fit();
        }
    }
}

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::super::testing::{deliver, drain, pair};
    use super::super::{Channel, ChannelConfig};
    use crate::time::{Duration, Instant};
    use crate::wire::Marker;
    use alloc::vec::Vec;

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
    fn the_last_sequence_number_taken_in_order_ends_the_connection() {
        use super::{Arrival, Receiver};
        let t = Instant::ZERO;
        let mut r = Receiver::new(t);
        r.next = u32::MAX - 1;
        assert_eq!(
            r.on_segment(u32::MAX - 1, true, b"a", 64, 100),
            Arrival::InOrder
        );
        assert_eq!(r.recv(), Some(b"a".to_vec()));
        assert_eq!(
            r.on_segment(u32::MAX, true, b"b", 64, 100),
            Arrival::SequenceExhausted
        );
        // The same through the reordering buffer.
        let mut r = Receiver::new(t);
        r.next = u32::MAX - 1;
        assert_eq!(
            r.on_segment(u32::MAX, true, b"b", 64, 100),
            Arrival::Reordered
        );
        let mut sack = [0; crate::wire::MAX_SACK_BYTES];
        assert_eq!(
            r.ack_frame(&mut sack),
            crate::wire::Frame::Ack {
                next_expected: u32::MAX - 1,
                sack: &[0x01],
            }
        );
        assert_eq!(
            r.on_segment(u32::MAX - 1, true, b"a", 64, 100),
            Arrival::SequenceExhausted
        );
        assert_eq!(r.recv(), Some(b"a".to_vec()));
    }

    #[test]
    fn an_inbox_read_one_behind_keeps_every_message_and_does_not_grow() {
        use super::{Arrival, Receiver};
        let mut r = Receiver::new(Instant::ZERO);
        let message = |i: u32| alloc::format!("message {i:05}").into_bytes();
        let mut out = Vec::new();
        // Two messages in, one out, then one in and one out for a long
        // while: the inbox is never read to its end.
        for i in 0..2 {
            assert_eq!(
                r.on_segment(i, true, &message(i), 64, 100),
                Arrival::InOrder
            );
        }
        for i in 2..10_000u32 {
            assert!(r.recv_into(&mut out));
            assert_eq!(out, message(i - 2));
            assert_eq!(
                r.on_segment(i, true, &message(i), 64, 100),
                Arrival::InOrder
            );
            let held = r.inbox.bytes.len();
            assert!(held <= 4 * message(i).len(), "{held}");
        }
        // A message in pieces, between whole ones, and the rest read out.
        assert_eq!(
            r.on_segment(10_000, false, b"in ", 64, 100),
            Arrival::InOrder
        );
        assert_eq!(
            r.on_segment(10_001, true, b"pieces", 64, 100),
            Arrival::InOrder
        );
        assert_eq!(
            r.on_segment(10_002, true, b"whole", 64, 100),
            Arrival::InOrder
        );
        for expected in [message(9_998), message(9_999)] {
            assert!(r.recv_into(&mut out));
            assert_eq!(out, expected);
        }
        assert!(r.recv_into(&mut out));
        assert_eq!(out, b"in pieces");
        assert_eq!(r.recv(), Some(b"whole".to_vec()));
        // None left: `out` keeps what it held.
        assert!(!r.recv_into(&mut out));
        assert_eq!(out, b"in pieces");
        assert!(r.inbox.bytes.is_empty() && r.inbox.start == 0);
    }

    #[test]
    fn messages_lent_in_place_come_in_order_and_the_buffer_starts_over() {
        use super::{Arrival, Receiver};
        let mut r = Receiver::new(Instant::ZERO);
        let message = |i: u32| alloc::format!("message {i}").into_bytes();
        for i in 0..3 {
            assert_eq!(
                r.on_segment(i, true, &message(i), 64, 100),
                Arrival::InOrder
            );
        }
        assert_eq!(r.recv_slice(), Some(&message(0)[..]));
        assert_eq!(r.recv_slice(), Some(&message(1)[..]));
        // One arrives while one is still waiting: both come, in order.
        assert_eq!(r.on_segment(3, false, b"in ", 64, 100), Arrival::InOrder);
        assert_eq!(r.on_segment(4, true, b"pieces", 64, 100), Arrival::InOrder);
        assert_eq!(r.recv_slice(), Some(&message(2)[..]));
        assert_eq!(r.recv_slice(), Some(&b"in pieces"[..]));
        assert_eq!(r.recv_slice(), None);
        assert!(r.inbox.bytes.is_empty() && r.inbox.start == 0);
        // Taken in place or copied out, the same messages.
        for i in 5..2_000u32 {
            assert_eq!(
                r.on_segment(i, true, &message(i), 64, 100),
                Arrival::InOrder
            );
            let got = if i % 2 == 0 {
                r.recv_slice().map(<[u8]>::to_vec)
            } else {
                r.recv()
            };
            assert_eq!(got, Some(message(i)));
            let held = r.inbox.bytes.len();
            assert!(held <= 2 * message(i).len(), "{held}");
        }
        assert_eq!(r.recv_slice(), None);
    }
}
