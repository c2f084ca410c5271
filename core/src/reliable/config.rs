//! A channel's timers and limits, with their defaults.

use crate::time::Duration;
use crate::wire::BASE_DATAGRAM;

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
    /// the channel with [`ChannelError::Unacknowledged`](super::ChannelError::Unacknowledged): 30 s.
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
    /// [`MAX_DATAGRAM`](crate::wire::MAX_DATAGRAM); a probe of a size is
    /// only sent if it is at most this, and larger datagrams only after the
    /// peer acknowledged one.
    pub max_datagram: usize,
    /// Largest message, in bytes: 131,072 (at most 4 GiB − 1 whatever
    /// is set).
    pub max_message: usize,
    /// Largest amount of queued, unacknowledged message bytes: 1 MiB.
    pub max_queued_bytes: usize,
    /// Pad a datagram with segments to the path's size when more segments
    /// wait to go out right after it: false. A burst to one peer is then a
    /// run of equal datagrams but the last, which a driver may hand to the
    /// OS in one send (Linux UDP generic segmentation offload), at the cost
    /// of the padding's bytes.
    pub pad_bursts: bool,
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
            pad_bursts: false,
        }
    }
}
