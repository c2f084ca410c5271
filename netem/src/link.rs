//! What one direction of a path does to the datagrams sent along it.

use udpchat_core::time::Duration;

/// How one direction of a path (from one address to another) treats
/// datagrams.
///
/// Applied to each datagram in this order: `blackhole` drops it; otherwise
/// the burst model (if any) and then the independent `loss` may drop it;
/// otherwise `duplicate` may make two copies; each copy is then delayed by
/// `delay`, plus a uniform `0..=jitter`, plus, with probability `reorder`, a
/// uniform `0..=reorder_extra`. Copies with different delays overtake each
/// other, which is how reordering happens.
///
/// Probabilities are clamped to `[0, 1]`; NaN counts as 0.
///
/// [`Default`] is a perfect link: no loss, no duplication, no delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability that a datagram is lost, independently of every other.
    pub loss: f64,
    /// Burst loss, on top of `loss`: `None` for none.
    pub burst: Option<GilbertElliott>,
    /// Probability that a datagram that is not lost is delivered twice.
    /// At 1.0 every delivered datagram arrives twice.
    pub duplicate: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for each copy.
    pub jitter: Duration,
    /// Probability that a copy is held back by an additional delay drawn
    /// uniformly from `0..=reorder_extra`.
    pub reorder: f64,
    /// The largest additional hold-back of a reordered copy.
    pub reorder_extra: Duration,
    /// Drop everything sent while this is set.
    pub blackhole: bool,
    /// The largest datagram (UDP payload, in bytes) the path carries:
    /// longer ones are dropped, as a router drops a packet over its MTU
    /// with the don't-fragment bit set. `None`: any size.
    pub mtu: Option<usize>,
}

/// The Gilbert-Elliott two-state burst-loss model.
///
/// Each direction is in a good or a bad state, starting good. For every
/// datagram sent, the state first moves (good to bad with probability
/// `p_good_to_bad`, bad to good with probability `p_bad_to_good`); then, in
/// the bad state, the datagram is lost with probability `loss_in_bad`. The
/// good state loses nothing beyond [`LinkConfig::loss`].
///
/// A bad period lasts `1 / p_bad_to_good` datagrams on average; see
/// [`GilbertElliott::loss_rate`] for the long-run loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability, per datagram, of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Probability, per datagram, of moving from the bad to the good state.
    pub p_bad_to_good: f64,
    /// Probability that a datagram is lost while in the bad state.
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// A burst model with the given transition and loss probabilities.
    #[must_use]
    pub const fn new(p_good_to_bad: f64, p_bad_to_good: f64, loss_in_bad: f64) -> Self {
        GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_bad,
        }
    }

    /// The long-run fraction of datagrams this model loses on its own:
    /// the stationary probability of the bad state times `loss_in_bad`.
    #[must_use]
    pub fn loss_rate(&self) -> f64 {
        let gb = clamp01(self.p_good_to_bad);
        let bg = clamp01(self.p_bad_to_good);
        if gb + bg == 0.0 {
            return 0.0;
        }
        gb / (gb + bg) * clamp01(self.loss_in_bad)
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::perfect()
    }
}

impl LinkConfig {
    /// A perfect link: nothing lost, duplicated or delayed.
    #[must_use]
    pub const fn perfect() -> Self {
        LinkConfig {
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_extra: Duration::ZERO,
            blackhole: false,
            mtu: None,
        }
    }

    /// A link that loses each datagram independently with probability `loss`.
    #[must_use]
    pub const fn lossy(loss: f64) -> Self {
        Self::perfect().with_loss(loss)
    }

    /// A link that drops everything.
    #[must_use]
    pub const fn blackholed() -> Self {
        Self::perfect().with_blackhole(true)
    }

    /// This link with independent loss probability `loss`.
    #[must_use]
    pub const fn with_loss(self, loss: f64) -> Self {
        LinkConfig { loss, ..self }
    }

    /// This link with the given burst-loss model.
    #[must_use]
    pub const fn with_burst(self, burst: GilbertElliott) -> Self {
        LinkConfig {
            burst: Some(burst),
            ..self
        }
    }

    /// This link with duplication probability `duplicate`.
    #[must_use]
    pub const fn with_duplicate(self, duplicate: f64) -> Self {
        LinkConfig { duplicate, ..self }
    }

    /// This link with base one-way delay `delay`.
    #[must_use]
    pub const fn with_delay(self, delay: Duration) -> Self {
        LinkConfig { delay, ..self }
    }

    /// This link with uniform extra delay `0..=jitter` per datagram.
    #[must_use]
    pub const fn with_jitter(self, jitter: Duration) -> Self {
        LinkConfig { jitter, ..self }
    }

    /// This link holding back a datagram with probability `reorder` by an
    /// additional uniform `0..=extra`.
    #[must_use]
    pub const fn with_reorder(self, reorder: f64, extra: Duration) -> Self {
        LinkConfig {
            reorder,
            reorder_extra: extra,
            ..self
        }
    }

    /// This link, dropping everything if `blackhole` is set.
    #[must_use]
    pub const fn with_blackhole(self, blackhole: bool) -> Self {
        LinkConfig { blackhole, ..self }
    }

    /// This link, dropping datagrams longer than `mtu` bytes.
    #[must_use]
    pub const fn with_mtu(self, mtu: usize) -> Self {
        LinkConfig {
            mtu: Some(mtu),
            ..self
        }
    }
}

/// `p` clamped to `[0, 1]`, NaN as 0.
fn clamp01(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::{GilbertElliott, LinkConfig};
    use udpchat_core::time::Duration;

    #[test]
    fn default_is_perfect() {
        assert_eq!(LinkConfig::default(), LinkConfig::perfect());
        let c = LinkConfig::default();
        assert_eq!(c.loss, 0.0);
        assert_eq!(c.delay, Duration::ZERO);
        assert!(!c.blackhole);
        assert!(c.burst.is_none());
    }

    #[test]
    fn builders_set_fields() {
        let c = LinkConfig::lossy(0.25)
            .with_delay(Duration::from_millis(30))
            .with_jitter(Duration::from_millis(5))
            .with_duplicate(0.1)
            .with_reorder(0.2, Duration::from_millis(40))
            .with_burst(GilbertElliott::new(0.01, 0.3, 1.0));
        assert_eq!(c.loss, 0.25);
        assert_eq!(c.delay, Duration::from_millis(30));
        assert_eq!(c.jitter, Duration::from_millis(5));
        assert_eq!(c.duplicate, 0.1);
        assert_eq!(c.reorder, 0.2);
        assert_eq!(c.reorder_extra, Duration::from_millis(40));
        assert!(c.burst.is_some());
        assert!(LinkConfig::blackholed().blackhole);
    }

    #[test]
    fn burst_loss_rate() {
        let ge = GilbertElliott::new(0.1, 0.3, 0.5);
        assert!((ge.loss_rate() - 0.125).abs() < 1e-12);
        assert_eq!(GilbertElliott::new(0.0, 0.0, 1.0).loss_rate(), 0.0);
    }
}
