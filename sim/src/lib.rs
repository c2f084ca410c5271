//! A deterministic simulation of one udpchat server and its clients on a
//! virtual clock, connected through the seeded network emulator.
//!
//! [`World`] owns a [`Server`] at [`SERVER`], any number of peers (real
//! [`Client`]s, or [`RawPeer`]s that do the handshake with the public crypto
//! API and then speak the session protocol over a bare reliable channel, for
//! input a `Client` refuses to send), and a [`Network`] between them.
//! Addresses are labels inside the emulator: nothing touches a real network
//! or a real clock. The server's key is fixed ([`SERVER_PRIVATE_KEY`]); its
//! random seed and every client's follow from the test seed.
//!
//! [`World::step`] jumps the clock to the earliest of the network's next
//! delivery, the server's and every peer's `poll_timeout()` and the next
//! password answer, then delivers, answers, handles the timeouts that are
//! due and drains every `poll_transmit` into the network. While doing so it
//! checks, on every step:
//!
//! * the timer property: after a peer's `handle_timeout(now)`, its next
//!   deadline is later than `now` unless it produced a datagram (no timer
//!   that fires early, no busy loop);
//! * a bound on the steps taken at one instant and in one virtual second.
//!
//! Everything observable is recorded: each peer's events with their time, a
//! textual transcript, the server's events, and a digest (optionally the
//! full log) of every datagram sent, so that two runs can be compared byte
//! for byte.
//!
//! Data datagrams are sealed, so the harness keeps a [`Wiretap`]: it knows
//! every seed (the clients' and the server's), replays the endpoints' key
//! derivations with the public crypto API, checks that it derived the very
//! handshake answer the server sent, and so opens every Data datagram of
//! every session, both ways. Segment counts, retransmission counts and the
//! per-segment timing of the tests are taken from these plaintexts.
//!
//! The crate is udpchat's in-memory driver: netem's simulation tests,
//! core's integration tests (`vectors`, `security`, `console`) and the
//! benchmarks that run a server in memory build on it.
//!
//! * [`World`], [`WorldConfig`]: the server, its peers and the network.
//! * [`RawPeer`]: a hand-driven peer for what a `Client` refuses to send.
//! * [`Wiretap`]: opens every sealed datagram of a simulation.
//! * [`password`]: the fake password service ([`fake_hash`], [`answer`]).
//! * [`Plan`]: a deterministic workload of public and direct messages.
//! * [`Consoles`]: consoles (the line interface over a `Client`) and one
//!   server in lock-step, for the console's tests.
//! * [`Cluster`]: several worlds as nodes of one chat, their cores joined
//!   by an in-memory relay of what they publish (the cores' cluster logic,
//!   not Redis).
//!
//! [`Server`]: udpchat_core::server::Server
//! [`Client`]: udpchat_core::client::Client
//! [`Network`]: udpchat_netem::Network

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use udpchat_core::crypto::StaticKey;
use udpchat_core::server::{RateLimit, ServerConfig};
use udpchat_core::time::Duration;

mod cluster;
mod console;
pub mod password;
mod plan;
mod raw;
mod stepping;
mod wiretap;
mod world;

pub mod datagrams;
pub use cluster::Cluster;
pub use console::{Consoles, User};
pub use datagrams::{PollDatagram, Sent};
pub use password::{answer, answer_all, answer_recording, fake_hash};
pub use plan::{Msg, Plan, PlanRun, harsh_link, percentile};
pub use raw::RawPeer;
pub use wiretap::Wiretap;
pub use world::{DropFilter, Endpoint, Peer, Received, SentDatagram, World, WorldConfig};

/// The server's address label.
pub const SERVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 65015));

/// The server's private key (fixed: the tests need no secrecy, and a
/// restarted server keeps its key, as a real one does from its key file).
pub const SERVER_PRIVATE_KEY: [u8; 32] = [0x5e; 32];

/// The server's key pair.
pub fn server_key() -> StaticKey {
    StaticKey::from_private(SERVER_PRIVATE_KEY)
}

/// The server configuration of load tests: the defaults, but no limit on
/// messages per session or handshakes per address (those are tested where
/// a test is about them, with `ServerConfig::default()`).
pub fn load_server_config() -> ServerConfig {
    ServerConfig {
        messages: RateLimit::UNLIMITED,
        handshakes: RateLimit::UNLIMITED,
        ..ServerConfig::default()
    }
}

/// Steps allowed at one instant before the harness calls it a busy loop.
pub const MAX_STEPS_PER_INSTANT: u64 = 1_000;
/// Steps allowed within one virtual second (each step is a distinct
/// instant or a burst at one instant).
pub const MAX_STEPS_PER_SECOND: u64 = 20_000;

/// The address label of peer `i`.
pub fn peer_addr(i: usize) -> SocketAddr {
    let i = u16::try_from(i).expect("fewer than 65,536 peers");
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8),
        40_000 + i,
    ))
}

/// Default peer names: alice, bob, carol, dave, erin, then `userN`.
pub fn peer_name(i: usize) -> String {
    const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
    NAMES
        .get(i)
        .map_or_else(|| format!("user{i}"), |n| (*n).to_string())
}

/// The password the harness uses for `name`.
pub fn password_of(name: &str) -> String {
    format!("password of {name}")
}

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// SplitMix64: the harness's own seeded generator (the clients' and the
/// server's random bytes).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator whose output follows from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// 32 bytes from `rng`, as a driver would take them from the OS.
pub fn random32(rng: &mut SplitMix) -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    out
}

/// FNV-1a, for the digest of every datagram sent.
pub(crate) fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

pub(crate) const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// The random bytes of server number `generation` of the world seeded with
/// `seed`.
pub(crate) fn server_random(seed: u64, generation: u64) -> [u8; 32] {
    random32(&mut SplitMix::new(
        seed ^ 0x5E2F_E25E_ED00_0000 ^ generation.wrapping_mul(0x9E37_79B9),
    ))
}
