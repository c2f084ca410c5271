//! Drivers for the channel's unit tests: two channels wired back to back
//! on a virtual clock.

use alloc::vec::Vec;

use super::{Channel, ChannelConfig};
use crate::time::Instant;
use crate::wire::{Datagram, SEAL_OVERHEAD};

/// Two channels of connection 7 with the default configuration.
pub(super) fn pair(now: Instant) -> (Channel, Channel) {
    let a = Channel::new(ChannelConfig::default(), 7, now);
    let b = Channel::new(ChannelConfig::default(), 7, now);
    (a, b)
}

/// Hands one plaintext datagram to `to`.
pub(super) fn deliver(now: Instant, bytes: &[u8], to: &mut Channel) {
    let d = Datagram::decode(bytes).expect("valid datagram");
    to.handle_frames(now, d.frames());
}

/// Every datagram `from` has to send now.
pub(super) fn drain(now: Instant, from: &mut Channel) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(d) = from.poll_transmit(now) {
        out.push(d);
    }
    out
}

/// Moves datagrams both ways until neither side has anything to send;
/// `pass` decides which of a's datagrams arrive. Returns the sealed sizes
/// of a's datagrams.
pub(super) fn exchange(
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
