//! The round-trip time estimate and the retransmission timeout derived from
//! it, as RFC 6298 computes them.

use crate::time::Duration;

/// Smoothed RTT, RTT variance and the retransmission timeout (RTO) of one
/// channel (RFC 6298 §2).
///
/// * Before any sample the RTO is the initial one (1 s by default).
/// * The first sample *R* sets SRTT = *R* and RTTVAR = *R*/2; each later
///   sample *R'* sets RTTVAR = 3/4 RTTVAR + 1/4 |SRTT − *R'*|, then
///   SRTT = 7/8 SRTT + 1/8 *R'* (α = 1/8, β = 1/4).
/// * RTO = SRTT + max(1 ms, 4 RTTVAR), kept within the minimum and the
///   maximum (1 ms is the clock granularity *G*).
///
/// Samples come only from segments sent once (Karn's rule): the caller
/// decides which acknowledgements give one. Backoff after timeouts is
/// counted per segment by the caller; [`RttEstimator::backed_off`] turns
/// such a count into a timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    /// The smoothed RTT, once a sample was taken.
    srtt: Option<Duration>,
    /// The RTT variance.
    rttvar: Duration,
    /// The current retransmission timeout, without backoff.
    rto: Duration,
    /// Lower bound of the timeout.
    min_rto: Duration,
    /// Upper bound of the timeout, backoff included.
    max_rto: Duration,
}

/// Timeouts in a row after which the timeout stops doubling (it is capped
/// at the maximum long before).
const MAX_BACKOFF_SHIFT: u32 = 16;

impl RttEstimator {
    /// An estimator without samples: its RTO is `initial_rto`, and every
    /// RTO it computes lies within `min_rto..=max_rto`.
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial_rto,
            min_rto,
            max_rto,
        }
    }

    /// The smoothed RTT, if any sample was taken.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The RTT variance (zero before the first sample).
    #[cfg(test)]
    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The retransmission timeout, without backoff.
    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    /// The smoothed RTT, or the RTO before the first sample: the base of
    /// time-based loss detection.
    pub(crate) fn srtt_or_rto(&self) -> Duration {
        self.srtt.unwrap_or(self.rto)
    }

    /// Takes in one RTT sample.
    pub(crate) fn update(&mut self, sample: Duration) {
        let r = sample.as_micros();
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = Duration::from_micros(r / 2);
            }
            Some(s) => {
                let s = s.as_micros();
                let diff = s.abs_diff(r);
                self.rttvar = Duration::from_micros((3 * self.rttvar.as_micros() + diff) / 4);
                self.srtt = Some(Duration::from_micros((7 * s + r) / 8));
            }
        }
        let s = self.srtt.unwrap_or(sample);
        let k = self.rttvar.saturating_mul(4).max(Duration::from_millis(1));
        self.rto = (s + k).clamp(self.min_rto, self.max_rto);
    }

    /// The timeout after `backoff` timeouts in a row: the RTO doubled that
    /// many times, capped at the maximum, and never under the minimum.
    pub(crate) fn backed_off(&self, backoff: u32) -> Duration {
        let shift = backoff.min(MAX_BACKOFF_SHIFT);
        let shifted = self.rto.saturating_mul(1u64 << shift).min(self.max_rto);
        shifted.max(self.min_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The defaults of [`super::super::ChannelConfig`]: 1 s, 200 ms, 3 s.
    fn estimator() -> RttEstimator {
        RttEstimator::new(ms(1000), ms(200), ms(3000))
    }

    #[test]
    fn before_any_sample_the_rto_is_the_initial_one() {
        let e = estimator();
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), Duration::ZERO);
        assert_eq!(e.rto(), ms(1000));
        assert_eq!(e.srtt_or_rto(), ms(1000));
    }

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_variance() {
        let mut e = estimator();
        e.update(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        // 100 + 4 × 50.
        assert_eq!(e.rto(), ms(300));
        assert_eq!(e.srtt_or_rto(), ms(100));
    }

    #[test]
    fn later_samples_are_smoothed_with_one_eighth_and_one_quarter() {
        let mut e = estimator();
        e.update(ms(100));
        e.update(ms(200));
        // RTTVAR = 3/4 × 50 + 1/4 × |100 − 200| = 62.5 ms, with the old SRTT.
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        // SRTT = 7/8 × 100 + 1/8 × 200 = 112.5 ms.
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        // 112.5 + 4 × 62.5.
        assert_eq!(e.rto(), Duration::from_micros(362_500));
        e.update(ms(100));
        // 3/4 × 62.5 + 1/4 × 12.5 and 7/8 × 112.5 + 1/8 × 100, in whole µs.
        assert_eq!(e.rttvar(), Duration::from_micros(50_000));
        assert_eq!(e.srtt(), Some(Duration::from_micros(110_937)));
    }

    #[test]
    fn the_rto_stays_within_its_bounds() {
        let mut e = estimator();
        e.update(ms(10));
        assert_eq!(e.rto(), ms(200), "10 + 4 × 5 ms is raised to the minimum");
        let mut e = estimator();
        e.update(ms(2000));
        assert_eq!(e.rto(), ms(3000), "2 + 4 × 1 s is cut to the maximum");
    }

    #[test]
    fn the_variance_term_is_at_least_the_clock_granularity() {
        let mut e = RttEstimator::new(ms(1000), Duration::ZERO, ms(3000));
        e.update(Duration::ZERO);
        assert_eq!(e.rto(), ms(1));
        for _ in 0..50 {
            e.update(ms(40));
        }
        // The variance has decayed under a quarter of a millisecond.
        assert!(e.rttvar() < Duration::from_micros(250));
        assert_eq!(e.rto(), e.srtt().unwrap() + ms(1));
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let e = estimator();
        let timeouts: [u64; 4] = [0, 1, 2, 40].map(|n| e.backed_off(n).as_millis());
        assert_eq!(timeouts, [1000, 2000, 3000, 3000]);
        let mut e = estimator();
        e.update(ms(100));
        let timeouts: [u64; 6] = [0, 1, 2, 3, 4, 5].map(|n| e.backed_off(n).as_millis());
        assert_eq!(timeouts, [300, 600, 1200, 2400, 3000, 3000]);
    }

    #[test]
    fn backoff_never_goes_under_the_minimum() {
        // An initial RTO below the minimum is only raised by the bounds.
        let e = RttEstimator::new(ms(50), ms(200), ms(3000));
        assert_eq!(e.rto(), ms(50));
        assert_eq!(e.backed_off(0), ms(200));
        assert_eq!(e.backed_off(2), ms(200));
        assert_eq!(e.backed_off(3), ms(400));
    }

    #[test]
    fn a_new_sample_changes_the_base_that_backoff_doubles() {
        let mut e = estimator();
        assert_eq!(e.backed_off(1), ms(2000));
        e.update(ms(100));
        assert_eq!(e.backed_off(1), ms(600));
    }
}
