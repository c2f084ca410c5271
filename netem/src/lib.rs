//! A sans-IO, seeded, deterministic network emulator for simulation tests.
//!
//! Tests plug a [`Network`] between the peers they simulate: every datagram a
//! peer transmits goes into [`Network::send`], and the test hands whatever
//! [`Network::poll_deliver`] returns to the receiving peer. Each direction of
//! each path has a [`LinkConfig`]: independent loss, Gilbert-Elliott burst
//! loss ([`GilbertElliott`]), duplication, delay, jitter, extra reordering and
//! a blackhole switch. Time is virtual ([`udpchat_core::time::Instant`]), and
//! all randomness comes from the seed given to [`Network::new`], so the same
//! seed and the same calls always give the same deliveries, byte for byte.
//!
//! # Example
//!
//! ```
//! use udpchat_core::time::{Duration, Instant};
//! use udpchat_netem::{LinkConfig, Network};
//!
//! let mut net = Network::new(7);
//! // 20 ms one way, up to 5 ms of jitter, 10 % loss from alice to the server.
//! let wan = LinkConfig::default()
//!     .with_delay(Duration::from_millis(20))
//!     .with_jitter(Duration::from_millis(5));
//! net.set_default_link(wan);
//! net.set_link("alice", "server", wan.with_loss(0.1));
//!
//! let mut now = Instant::ZERO;
//! for i in 0..10u8 {
//!     net.send(now, "alice", "server", vec![i]);
//! }
//! // Nothing arrives before its time.
//! assert!(net.poll_deliver(now).is_none());
//!
//! // The driving loop: jump the virtual clock to the next event, drain.
//! let mut received = Vec::new();
//! while let Some(at) = net.next_delivery() {
//!     now = at;
//!     while let Some(d) = net.poll_deliver(now) {
//!         assert!(d.at <= now && d.at >= d.sent + Duration::from_millis(20));
//!         received.push(d.bytes[0]);
//!     }
//! }
//! let stats = net.stats(&"alice", &"server");
//! assert_eq!(stats.sent, 10);
//! assert_eq!(stats.delivered + stats.lost, 10);
//! assert_eq!(received.len() as u64, stats.delivered);
//! ```
//!
//! In a simulation, the clock jumps to the earliest of
//! [`Network::next_delivery`] and the peers' own deadlines.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod link;
mod network;
mod rng;

pub use link::{GilbertElliott, LinkConfig};
pub use network::{Delivery, Network, Stats};
