//! The sending half of a channel: messages cut into segments, the send
//! queue, segments in flight, their acknowledgement, loss detection and
//! retransmission, and the window.
//!
//! A segment is lost when its retransmission timeout passes (the RTO of
//! [`RttEstimator`], doubled after each timeout in a row), or early, in the
//! style of RACK (RFC 8985), when a segment sent after it was acknowledged
//! and a quarter of an RTT more has passed.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use super::ChannelStats;
use super::rtt::RttEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{DatagramBuilder, Frame, MAX_SEGMENT_DATA, Marker, SEGMENT_OVERHEAD};

/// The bytes of one segment: a range of a message that other channels may
/// share (a broadcast is encoded once and queued to every recipient). The
/// range is kept in 32 bits (a message is far shorter): a fan-out queues
/// one segment per recipient, so its size is what a broadcast writes to
/// memory.
#[derive(Debug)]
struct Piece {
    message: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl Piece {
    /// Bytes `start..end` of `message`, clamped to it.
    fn new(message: &Arc<[u8]>, start: usize, end: usize) -> Piece {
        let end = end.min(message.len());
        let clamp = |i: usize| u32::try_from(i.min(end)).unwrap_or(u32::MAX);
        Piece {
            message: message.clone(),
            start: clamp(start),
            end: clamp(end),
        }
    }
    fn bytes(&self) -> &[u8] {
        self.message
            .get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

/// One segment, from the moment it is queued until it is acknowledged.
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

/// Segments not yet sent and segments in flight, in sequence order.
#[derive(Debug)]
pub(crate) struct SendQueue {
    /// The sequence number of the next segment queued.
    next_seq: u32,
    /// The segments in flight (the first [`SendQueue::sent`]: from the
    /// oldest unacknowledged one on), then those queued and never sent.
    /// Their sequence numbers are consecutive (they are queued and sent in
    /// order, and leave from the front), so a sequence number's place is
    /// its distance from the front's; sending one moves nothing.
    segments: VecDeque<Outgoing>,
    /// How many of `segments` are in flight.
    sent: usize,
    /// How many segments in flight are marked lost and not acknowledged:
    /// while none is, nothing in flight waits to be sent again.
    lost: usize,
    /// Whether a segment in flight has a backed-off timeout (see
    /// [`Outgoing::backoff`]).
    backed_off: bool,
    /// Bytes of the messages queued and not yet acknowledged.
    queued_bytes: usize,
    /// When, and as which sequence number, the most recently sent of the
    /// acknowledged segments was sent: segments sent before it and still
    /// unacknowledged are probably lost.
    latest_acked: Option<(Instant, u32)>,
}

/// Segments a message of `len` bytes takes (an empty message takes one).
pub(crate) fn segments_for(len: usize) -> usize {
    len.div_ceil(MAX_SEGMENT_DATA).max(1)
}

impl SendQueue {
    /// An empty queue; the first segment is number 0.
    pub(crate) fn new() -> Self {
        SendQueue {
            next_seq: 0,
            segments: VecDeque::new(),
            sent: 0,
            lost: 0,
            backed_off: false,
            queued_bytes: 0,
            latest_acked: None,
        }
    }

    /// Whether `len` more bytes stay within `max_queued_bytes`.
    pub(crate) fn has_room(&self, len: usize, max_queued_bytes: usize) -> bool {
        self.queued_bytes + len <= max_queued_bytes
    }

    /// Whether `pieces` more segments can be numbered.
    pub(crate) fn can_number(&self, pieces: usize) -> bool {
        (self.next_seq as u64) + (pieces as u64) < u32::MAX as u64
    }

    /// Cuts a checked message into `pieces` segments and queues them.
    pub(crate) fn queue(&mut self, marker: Marker, message: &Arc<[u8]>, pieces: usize) {
        for i in 0..pieces {
            let start = i * MAX_SEGMENT_DATA;
            let data = Piece::new(message, start, start + MAX_SEGMENT_DATA);
            self.segments.push_back(Outgoing {
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

    /// The sequence number the next queued segment gets.
    pub(crate) fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The lowest sequence number not yet acknowledged (every segment
    /// below it was).
    pub(crate) fn first_unacknowledged(&self) -> u32 {
        self.segments
            .iter()
            .find(|o| !o.acked)
            .map_or(self.next_seq, |o| o.seq)
    }

    /// Whether every queued segment was sent and acknowledged.
    pub(crate) fn is_flushed(&self) -> bool {
        self.segments.is_empty()
    }

    /// Returns the memory of the emptied queue, which keeps the capacity
    /// of its largest burst.
    pub(crate) fn shrink_if_flushed(&mut self) {
        if self.is_flushed() {
            self.segments.shrink_to_fit();
        }
    }

    /// The capacity of the queue.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.segments.capacity()
    }

    /// The segments in flight.
    fn in_flight(&self) -> impl Iterator<Item = &Outgoing> {
        self.segments.range(..self.sent)
    }

    /// When the most recently sent of the acknowledged segments was sent.
    pub(crate) fn latest_acked_sent(&self) -> Option<Instant> {
        self.latest_acked.map(|(t, _)| t)
    }

    /// Takes in an ACK frame; feeds `rtt` with the samples it gives (of
    /// segments sent once: Karn's rule). Returns whether it acknowledged
    /// anything new. A frame acknowledging what was never sent is ignored.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        next_expected: u32,
        sack: &[u8],
        rtt: &mut RttEstimator,
    ) -> bool {
        let Some(base) = self.segments.front().map(|o| o.seq) else {
            return false;
        };
        // Nothing in flight, or an acknowledgement of what was never sent.
        if self.sent == 0 || next_expected > base + self.sent as u32 {
            return false;
        }
        let mut newly_acked = false;
        // Everything below `next_expected`, then each sequence number
        // whose bit is set: found by its distance from the front.
        let below = next_expected.saturating_sub(base) as usize;
        for i in 0..below.min(self.sent) {
            newly_acked |= self.ack_at(i, now, rtt);
        }
        for (byte, bits) in sack.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let seq = u64::from(next_expected) + 1 + (byte as u64) * 8 + u64::from(bit);
                if let Some(i) = seq.checked_sub(u64::from(base))
                    && let Ok(i) = usize::try_from(i)
                    && i < self.sent
                {
                    newly_acked |= self.ack_at(i, now, rtt);
                }
            }
        }
        if !newly_acked {
            return false;
        }
        // The path works: timeouts start over from the plain RTO.
        if self.backed_off {
            for o in self.segments.range_mut(..self.sent) {
                o.backoff = 0;
            }
            self.backed_off = false;
        }
        while self.sent > 0 && self.segments.front().is_some_and(|o| o.acked) {
            if let Some(o) = self.segments.pop_front() {
                self.sent -= 1;
                self.queued_bytes = self.queued_bytes.saturating_sub(o.data.len());
            }
        }
        self.detect_reordering_losses(now, rtt);
        true
    }

    /// Marks the segment at `i` in flight acknowledged, if it was not;
    /// feeds `rtt` with its sample (if sent once: Karn's rule). Returns
    /// whether it was newly acknowledged.
    fn ack_at(&mut self, i: usize, now: Instant, rtt: &mut RttEstimator) -> bool {
        if i >= self.sent {
            return false;
        }
        let Some(o) = self.segments.get_mut(i) else {
            return false;
        };
        if o.acked {
            return false;
        }
        o.acked = true;
        if o.lost {
            o.lost = false;
            self.lost -= 1;
        }
        if o.transmissions == 1 {
            rtt.update(now.saturating_since(o.last_sent));
        }
        let sent = (o.last_sent, o.seq);
        if self.latest_acked.is_none_or(|l| sent > l) {
            self.latest_acked = Some(sent);
        }
        true
    }

    /// How long after a later segment was acknowledged an earlier one
    /// counts as lost: 5/4 of the smoothed RTT (the RTO before a sample).
    fn reorder_threshold(rtt: &RttEstimator) -> Duration {
        let base = rtt.srtt_or_rto();
        base + Duration::from_micros(base.as_micros() / 4)
    }

    /// When an unacknowledged, not yet lost segment is due for
    /// retransmission: a reordering deadline once a later segment was
    /// acknowledged, else its own backed-off timeout.
    fn retransmit_deadline(
        latest_acked: Option<(Instant, u32)>,
        o: &Outgoing,
        rtt: &RttEstimator,
    ) -> Instant {
        match latest_acked {
            Some(l) if (o.last_sent, o.seq) < l => o.last_sent + Self::reorder_threshold(rtt),
            _ => o.last_sent + rtt.backed_off(o.backoff),
        }
    }

    fn detect_reordering_losses(&mut self, now: Instant, rtt: &RttEstimator) {
        let Some(latest) = self.latest_acked else {
            return;
        };
        let threshold = Self::reorder_threshold(rtt);
        for o in self.segments.range_mut(..self.sent) {
            if !o.acked
                && !o.lost
                && (o.last_sent, o.seq) < latest
                && now >= o.last_sent + threshold
            {
                o.lost = true;
                self.lost += 1;
            }
        }
    }

    /// Marks the segments whose retransmission deadline passed as lost.
    /// Returns whether one of them has now timed out twice in a row, or
    /// [`Unacknowledged`] when a segment is still unacknowledged `ack_deadline`
    /// after its first transmission (then nothing is marked further).
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        rtt: &RttEstimator,
        ack_deadline: Duration,
    ) -> Result<bool, Unacknowledged> {
        let mut timed_out_twice = false;
        let latest_acked = self.latest_acked;
        for o in self.segments.range_mut(..self.sent) {
            if o.acked {
                continue;
            }
            if now >= o.first_sent + ack_deadline {
                return Err(Unacknowledged);
            }
            if o.lost {
                continue;
            }
            let by_timeout = latest_acked.is_none_or(|l| (o.last_sent, o.seq) >= l);
            if now >= Self::retransmit_deadline(latest_acked, o, rtt) {
                o.lost = true;
                self.lost += 1;
                if by_timeout {
                    o.backoff += 1;
                    self.backed_off = true;
                    timed_out_twice |= o.backoff >= 2;
                }
            }
        }
        Ok(timed_out_twice)
    }

    /// The earliest acknowledgement deadline or retransmission deadline of
    /// the segments in flight, if any.
    pub(crate) fn next_timeout(
        &self,
        rtt: &RttEstimator,
        ack_deadline: Duration,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for o in self.in_flight() {
            if o.acked {
                continue;
            }
            let mut due = o.first_sent + ack_deadline;
            if !o.lost {
                due = due.min(Self::retransmit_deadline(self.latest_acked, o, rtt));
            }
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Whether a segment is ready to go: one lost, or one unsent within
    /// the window of `window` segments.
    pub(crate) fn has_data(&self, window: u32) -> bool {
        self.lost > 0
            || self
                .segments
                .get(self.sent)
                .is_some_and(|o| self.in_window(o.seq, window))
    }

    fn in_window(&self, seq: u32, window: u32) -> bool {
        let base = self.segments.front().map_or(seq, |o| o.seq);
        seq - base < window
    }

    /// Writes into `b` the lost segments that fit, then new ones within
    /// the window, in order. Returns the datagram's marker if any segment
    /// was written: [`Marker::Data`] if one of them is data.
    pub(crate) fn write_segments(
        &mut self,
        b: &mut DatagramBuilder,
        now: Instant,
        window: u32,
        stats: &mut ChannelStats,
    ) -> Option<Marker> {
        let mut marker = Marker::Command;
        let mut wrote = false;
        for o in self.segments.range_mut(..self.sent) {
            if self.lost == 0 {
                break;
            }
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
            self.lost -= 1;
            o.last_sent = now;
            o.transmissions += 1;
            stats.retransmissions += 1;
            stats.segments_sent += 1;
            wrote = true;
            if o.marker == Marker::Data {
                marker = Marker::Data;
            }
        }
        let base = self.segments.front().map_or(0, |o| o.seq);
        while let Some(o) = self.segments.get_mut(self.sent) {
            if o.seq - base >= window || SEGMENT_OVERHEAD + o.data.len() > b.remaining() {
                break;
            }
            b.push(&Frame::Segment {
                seq: o.seq,
                end: o.end,
                data: o.data.bytes(),
            });
            o.first_sent = now;
            o.last_sent = now;
            o.transmissions = 1;
            stats.segments_sent += 1;
            wrote = true;
            if o.marker == Marker::Data {
                marker = Marker::Data;
            }
            self.sent += 1;
        }
        wrote.then_some(marker)
    }
}

/// A segment stayed unacknowledged past the acknowledgement deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unacknowledged;

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::super::testing::{deliver, drain, exchange, pair};
    use super::super::{Channel, ChannelConfig, ChannelError, SendError};
    use super::*;
    use crate::wire::{Header, PacketKind};
    use alloc::vec;
    use alloc::vec::Vec;

    /// The counts kept beside the segments in flight agree with them.
    fn assert_counts(q: &SendQueue) {
        let lost = q.in_flight().filter(|o| o.lost && !o.acked).count();
        assert_eq!(q.lost, lost, "lost segments counted");
        if q.in_flight().any(|o| o.backoff > 0) {
            assert!(q.backed_off, "a backed-off segment is noted");
        }
        for (i, o) in q.in_flight().enumerate() {
            assert_eq!(o.seq, q.segments[0].seq + i as u32, "consecutive");
        }
    }

    #[test]
    fn the_counts_of_lost_segments_follow_loss_acks_and_timeouts() {
        // Both directions lose a fifth of the datagrams and delay each by
        // 0 to 40 ms (so they also reorder: segments are taken for lost
        // and then acknowledged), messages stop for a while (tail losses
        // time out and back off), and every message still arrives once,
        // in order.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now = Instant::ZERO;
        let (mut a, mut b) = pair(now);
        let mut to_a: Vec<(Instant, Vec<u8>)> = Vec::new();
        let mut to_b: Vec<(Instant, Vec<u8>)> = Vec::new();
        let mut sent = 0u32;
        let mut got = Vec::new();
        let (mut acked_while_lost, mut backed_off) = (false, false);
        for step in 0..20_000 {
            if step % 4000 < 2000
                && step % 3 == 0
                && a.send(Marker::Data, &sent.to_le_bytes()).is_ok()
            {
                sent += 1;
            }
            a.handle_timeout(now);
            b.handle_timeout(now);
            assert_counts(&a.sent);
            let lost_before: Vec<u32> = a
                .sent
                .in_flight()
                .filter(|o| o.lost)
                .map(|o| o.seq)
                .collect();
            for (queue, to) in [(&mut to_a, &mut a), (&mut to_b, &mut b)] {
                let (due, later) = queue.drain(..).partition(|(t, _)| *t <= now);
                *queue = later;
                for (_, d) in due {
                    deliver(now, &d, to);
                }
            }
            assert_counts(&a.sent);
            acked_while_lost |= lost_before.iter().any(|seq| {
                a.sent
                    .in_flight()
                    .find(|o| o.seq == *seq)
                    .is_none_or(|o| o.acked)
            });
            backed_off |= a.sent.in_flight().any(|o| o.backoff > 0);
            for (from, queue) in [(&mut a, &mut to_b), (&mut b, &mut to_a)] {
                for d in drain(now, from) {
                    if next() % 100 >= 20 {
                        let delay = Duration::from_millis(next() % 41);
                        queue.push((now + delay, d));
                    }
                }
            }
            assert_counts(&a.sent);
            while let Some(m) = b.recv() {
                got.push(u32::from_le_bytes(m.try_into().unwrap()));
            }
            now += Duration::from_millis(1);
        }
        assert!(sent > 3000, "{sent}");
        assert_eq!(got, (0..sent).collect::<Vec<_>>());
        assert!(acked_while_lost && backed_off, "{:?}", a.stats);
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
        assert!(a.sent.capacity() >= 40);
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
        assert_eq!(a.sent.capacity(), 0);
        assert_eq!(b.recv(), Some(burst));
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

    fn rtt() -> RttEstimator {
        let c = ChannelConfig::default();
        RttEstimator::new(c.initial_rto, c.min_rto, c.max_rto)
    }

    /// Sends what `q` has ready into one datagram; returns its marker.
    fn transmit(q: &mut SendQueue, now: Instant) -> Option<Marker> {
        let header = Header {
            marker: Marker::Command,
            kind: PacketKind::Data,
            connection_id: 7,
            packet_number: 0,
        };
        let mut b = DatagramBuilder::new(header);
        q.write_segments(&mut b, now, 64, &mut ChannelStats::default())
    }

    fn queue(q: &mut SendQueue, marker: Marker, message: &[u8]) {
        let message: Arc<[u8]> = Arc::from(message);
        q.queue(marker, &message, segments_for(message.len()));
    }

    #[test]
    fn a_datagram_with_any_data_segment_is_marked_data() {
        let t = Instant::ZERO;
        let mut q = SendQueue::new();
        assert_eq!(transmit(&mut q, t), None);
        queue(&mut q, Marker::Command, b"c");
        assert_eq!(transmit(&mut q, t), Some(Marker::Command));
        queue(&mut q, Marker::Command, b"c");
        queue(&mut q, Marker::Data, b"d");
        assert_eq!(transmit(&mut q, t), Some(Marker::Data));
        assert!(!q.has_data(64));
        assert!(!q.is_flushed());
    }

    #[test]
    fn an_acknowledgement_restarts_timeouts_from_the_plain_rto() {
        let t = Instant::ZERO;
        let rtt = rtt();
        let deadline = Duration::from_secs(30);
        let mut q = SendQueue::new();
        queue(&mut q, Marker::Data, b"0");
        queue(&mut q, Marker::Data, b"1");
        transmit(&mut q, t);
        assert_eq!(
            q.next_timeout(&rtt, deadline),
            Some(t + Duration::from_secs(1))
        );
        // Two timeouts in a row: 1 s, then 2 s.
        let t1 = t + Duration::from_secs(1);
        assert_eq!(q.on_timeout(t1, &rtt, deadline), Ok(false));
        assert!(q.has_data(64));
        transmit(&mut q, t1);
        assert_eq!(
            q.next_timeout(&rtt, deadline),
            Some(t1 + Duration::from_secs(2))
        );
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(
            q.on_timeout(t2, &rtt, deadline),
            Ok(true),
            "timed out twice"
        );
        transmit(&mut q, t2);
        assert_eq!(
            q.next_timeout(&rtt, deadline),
            Some(t2 + Duration::from_secs(3))
        );
        // Segment 0 is acknowledged: no RTT sample (it was sent three
        // times), but segment 1's timeout starts over from the RTO.
        let mut rtt = rtt;
        let t3 = t2 + Duration::from_millis(100);
        assert!(q.on_ack(t3, 1, &[], &mut rtt));
        assert_eq!(rtt.srtt(), None, "Karn's rule");
        assert_eq!(
            q.next_timeout(&rtt, deadline),
            Some(t2 + Duration::from_secs(1))
        );
        // An acknowledgement of what was never sent is ignored.
        assert!(!q.on_ack(t3, 5, &[], &mut rtt));
        // Nothing acknowledges segment 1 for 30 s.
        assert_eq!(
            q.on_timeout(t + deadline, &rtt, deadline),
            Err(Unacknowledged)
        );
    }

    #[test]
    fn a_segment_passed_by_a_later_one_is_lost_after_five_quarters_of_an_rtt() {
        let t = Instant::ZERO;
        let mut rtt = rtt();
        let deadline = Duration::from_secs(30);
        let mut q = SendQueue::new();
        queue(&mut q, Marker::Data, b"0");
        transmit(&mut q, t);
        queue(&mut q, Marker::Data, b"1");
        transmit(&mut q, t + Duration::from_millis(10));
        // Segment 1 is acknowledged selectively 90 ms after it was sent.
        let now = t + Duration::from_millis(100);
        assert!(q.on_ack(now, 0, &[0b1], &mut rtt));
        assert_eq!(rtt.srtt(), Some(Duration::from_millis(90)));
        assert_eq!(q.latest_acked_sent(), Some(t + Duration::from_millis(10)));
        assert!(!q.has_data(64), "not lost yet");
        // 5/4 × 90 ms after segment 0 was sent, it is lost, without backoff.
        let lost = t + Duration::from_micros(112_500);
        assert_eq!(q.next_timeout(&rtt, deadline), Some(lost));
        assert_eq!(q.on_timeout(lost, &rtt, deadline), Ok(false));
        assert!(q.has_data(64));
        transmit(&mut q, lost);
        assert!(q.on_ack(lost, 2, &[], &mut rtt));
        assert!(q.is_flushed());
    }

    /// A fan-out writes one of these per recipient per message: keep it
    /// small (the range in 32 bits, no padding to spare).
    #[test]
    fn a_queued_segment_takes_at_most_56_bytes() {
        let size = core::mem::size_of::<Outgoing>();
        assert!(size <= 56, "{size}");
    }

    #[test]
    fn a_message_in_pieces_is_sent_whole() {
        let message: Arc<[u8]> = (0..3 * MAX_SEGMENT_DATA + 7).map(|i| i as u8).collect();
        let pieces = segments_for(message.len());
        assert_eq!(pieces, 4);
        let mut q = SendQueue::new();
        q.queue(Marker::Data, &message, pieces);
        let joined: Vec<u8> = q
            .segments
            .iter()
            .flat_map(|o| o.data.bytes().to_vec())
            .collect();
        assert_eq!(&joined[..], &message[..]);
        assert_eq!(
            q.segments.back().map(|o| (o.end, o.data.len())),
            Some((true, 7))
        );
    }
}
