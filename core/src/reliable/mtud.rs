//! Path MTU discovery (`PROTOCOL.md` §3.9, after RFC 8899 and QUIC): which
//! datagram size the path carries, what to probe next and when.
//!
//! A channel sends [`BASE_DATAGRAM`]-sized datagrams until the peer
//! acknowledged a probe of a larger size. Probes go out once an RTT sample
//! shows the path works, one size of [`PROBE_SIZES`] after the other, up to
//! [`ChannelConfig::max_datagram`](super::ChannelConfig::max_datagram). A
//! size lost [`PROBE_TRIES`] times is tried again [`PROBE_AGAIN`] later;
//! repeated timeouts of segments fall back to the base size, and probing
//! starts again [`PROBE_AFTER_FALLBACK`] later.

use super::rtt::RttEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{BASE_DATAGRAM, MAX_DATAGRAM};

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

/// What the channel knows of the path's datagram size (`PROTOCOL.md` §3.9),
/// and the probes it sends and answers.
#[derive(Debug)]
pub(crate) struct PathMtu {
    /// Largest sealed datagram this end probes for
    /// ([`ChannelConfig::max_datagram`](super::ChannelConfig::max_datagram)).
    limit: usize,
    /// Largest sealed datagram the peer is known to receive.
    max: usize,
    /// The probe in flight: its size and when it was sent.
    probe: Option<(u16, Instant)>,
    /// Probes of the current size lost so far.
    tries: u32,
    /// Earliest time for the next probe (once an RTT sample shows the path
    /// works); `None` before the first.
    not_before: Option<Instant>,
    /// A probe is to be sent with the next datagram.
    due: bool,
    /// A probe of this size arrived and is to be answered.
    answer: Option<u16>,
}

impl PathMtu {
    /// Nothing known of a path: [`BASE_DATAGRAM`], no probe yet; probes of
    /// up to `limit` sealed bytes.
    pub(crate) fn new(limit: usize) -> PathMtu {
        PathMtu {
            limit,
            max: BASE_DATAGRAM,
            probe: None,
            tries: 0,
            not_before: None,
            due: false,
            answer: None,
        }
    }

    /// Largest sealed datagram to send now.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Forgets what was learnt (the peer's address changed); a probe owed
    /// an answer is still answered.
    pub(crate) fn reset(&mut self) {
        let answer = self.answer;
        *self = PathMtu::new(self.limit);
        self.answer = answer;
    }

    /// After segments timed out twice in a row: back to [`BASE_DATAGRAM`]
    /// if larger datagrams were sent, and probing again
    /// [`PROBE_AFTER_FALLBACK`] later. Returns whether it fell back.
    pub(crate) fn fall_back(&mut self, now: Instant) -> bool {
        if self.max <= BASE_DATAGRAM {
            return false;
        }
        // Perhaps the path no longer carries large datagrams (a route
        // changed): what is retransmitted now fits any path.
        self.reset();
        self.not_before = Some(now + PROBE_AFTER_FALLBACK);
        true
    }

    /// The next size to probe, if any.
    pub(crate) fn probe_size(&self) -> Option<u16> {
        PROBE_SIZES
            .iter()
            .find(|&&s| s > self.max && s <= self.limit)
            .map(|&s| s as u16)
    }

    /// The size of the probe to send with the next datagram, if one is due.
    pub(crate) fn due_probe(&self) -> Option<u16> {
        if self.due { self.probe_size() } else { None }
    }

    /// Whether a probe or a probe's answer waits to be sent.
    pub(crate) fn wants_transmit(&self) -> bool {
        self.due || self.answer.is_some()
    }

    /// Marks a probe due when its time has come: none in flight, an RTT
    /// sample taken, the waiting time over, and a larger size to try.
    pub(crate) fn schedule(&mut self, now: Instant, rtt: &RttEstimator) {
        if !self.due
            && self.probe.is_none()
            && rtt.srtt().is_some()
            && self.not_before.is_none_or(|t| now >= t)
            && self.probe_size().is_some()
        {
            self.due = true;
        }
    }

    /// A probe of `size` sealed bytes went out at `now`.
    pub(crate) fn on_probe_sent(&mut self, now: Instant, size: u16) {
        self.due = false;
        self.probe = Some((size, now));
    }

    /// The peer sent a probe of `size` bytes: answer the largest.
    pub(crate) fn on_probe_received(&mut self, size: u16) {
        self.answer = self.answer.max(Some(size));
    }

    /// The answer owed to the peer's probe, if any.
    pub(crate) fn answer(&self) -> Option<u16> {
        self.answer
    }

    /// The answer went out.
    pub(crate) fn answered(&mut self) {
        self.answer = None;
    }

    /// The peer received a probe of `size` bytes: the path carries it.
    pub(crate) fn on_probe_ack(&mut self, now: Instant, size: u16, rtt: &RttEstimator) {
        let size_bytes = size as usize;
        if size_bytes > self.max && size_bytes <= self.limit {
            self.max = size_bytes;
        }
        if self.probe.is_some_and(|(s, _)| s <= size) {
            self.probe = None;
            self.tries = 0;
            self.not_before = Some(now);
            self.schedule(now, rtt);
        }
    }

    /// Handles an expired timer: a probe unanswered for an RTO was lost
    /// (or the peer does not take that size); after [`PROBE_TRIES`] losses
    /// the size waits [`PROBE_AGAIN`].
    pub(crate) fn on_timeout(&mut self, now: Instant, rtt: &RttEstimator) {
        if let Some((_, sent)) = self.probe
            && now >= sent + rtt.rto()
        {
            self.probe = None;
            self.tries += 1;
            if self.tries >= PROBE_TRIES {
                self.tries = 0;
                self.not_before = Some(now + PROBE_AGAIN);
            }
        }
        self.schedule(now, rtt);
    }

    /// When [`PathMtu::on_timeout`] has work next, if ever.
    pub(crate) fn next_timeout(&self, rtt: &RttEstimator) -> Option<Instant> {
        if let Some((_, sent)) = self.probe {
            Some(sent + rtt.rto())
        } else if let Some(t) = self.not_before
            && !self.due
            && rtt.srtt().is_some()
            && self.probe_size().is_some()
        {
            Some(t)
        } else {
            None
        }
    }
}

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::super::testing::{deliver, drain, exchange};
    use super::super::{Channel, ChannelConfig};
    use super::*;
    use crate::wire::{Datagram, Frame, Marker, SEAL_OVERHEAD};
    use alloc::vec;

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
    fn nothing_is_probed_before_an_rtt_sample_or_above_the_limit() {
        let t = Instant::ZERO;
        let mut rtt = RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(3),
        );
        let mut path = PathMtu::new(8952);
        path.schedule(t, &rtt);
        assert_eq!(path.due_probe(), None, "no RTT sample yet");
        assert_eq!(path.next_timeout(&rtt), None);
        rtt.update(Duration::from_millis(100));
        path.schedule(t, &rtt);
        assert_eq!(path.due_probe(), Some(1452));
        path.on_probe_sent(t, 1452);
        assert!(!path.wants_transmit());
        assert_eq!(path.next_timeout(&rtt), Some(t + rtt.rto()));
        path.on_probe_ack(t, 1452, &rtt);
        assert_eq!(path.max(), 1452);
        assert_eq!(path.due_probe(), Some(8952));
        path.on_probe_sent(t, 8952);
        path.on_probe_ack(t, 8952, &rtt);
        assert_eq!(path.max(), 8952);
        assert_eq!(path.probe_size(), None, "16,384 is over the limit");
        assert_eq!(path.due_probe(), None);
        assert_eq!(path.next_timeout(&rtt), None);
    }

    #[test]
    fn a_reset_keeps_the_answer_owed_to_the_peer() {
        let mut path = PathMtu::new(MAX_DATAGRAM);
        path.on_probe_received(1452);
        path.on_probe_received(8952);
        path.on_probe_received(1452);
        assert_eq!(path.answer(), Some(8952), "the largest is answered");
        assert!(!path.fall_back(Instant::ZERO), "already at the base size");
        path.reset();
        assert_eq!(path.answer(), Some(8952));
        assert!(path.wants_transmit());
        path.answered();
        assert!(!path.wants_transmit());
    }
}
