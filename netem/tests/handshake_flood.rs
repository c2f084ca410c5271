//! A flood of handshakes during a chat: hundreds of clients at once, each
//! with a valid cookie (they receive at their addresses), while two users
//! chat. Each handshake costs the server X25519 work, modelled as 80 µs of
//! virtual time during which it handles nothing else; the server does at
//! most `handshakes_per_turn` (8) per turn, so the chat's datagrams wait
//! for at most one turn's handshakes, never for the whole flood.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use udpchat_core::server::{RateLimit, ServerConfig};
use udpchat_core::time::{Duration, Instant};
use udpchat_netem::LinkConfig;
use udpchat_sim::{World, WorldConfig, ms, percentile};

/// One way through the network.
const DELAY: Duration = ms(5);
/// The server's time per handshake (three X25519 operations).
const HANDSHAKE_COST: Duration = Duration::from_micros(80);
/// Addresses of the flood, and new sessions from each (the per-address
/// limit of sessions not logged in is 16).
const FLOOD_ADDRESSES: u8 = 50;
const FLOOD_PER_ADDRESS: u16 = 16;

fn flooder(a: u8, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, a), port))
}

struct Flood {
    /// Each chat message's time from send to delivery, in µs, sorted.
    latencies: Vec<u64>,
    /// Flood sessions whose handshake completed.
    established: usize,
    /// When the flood started and when the server did its last handshake.
    started: Instant,
    last_handshake: Instant,
    world: World,
}

/// Alice and bob chat (a message every 10 ms, each way in turn) for 1 s;
/// 200 ms in, `FLOOD_ADDRESSES × FLOOD_PER_ADDRESS` clients start their
/// handshakes at the same instant.
fn chat_through_a_flood(handshakes_per_turn: usize) -> Flood {
    let server = ServerConfig {
        handshakes_per_turn,
        // The chat is not what is limited here.
        messages: RateLimit::UNLIMITED,
        ..ServerConfig::default()
    };
    let config = WorldConfig::new(0xF100D)
        .with_link(LinkConfig::default().with_delay(DELAY))
        .with_server(server)
        .with_handshake_cost(HANDSHAKE_COST);
    let mut w = World::new(config);
    let alice = w.add_client("alice");
    let bob = w.add_client("bob");
    w.login_all(ms(2000));
    let chat_start = w.now;
    let mut started = None;
    let mut flood = Vec::new();
    let mut handshakes_seen = w.server.stats().handshakes;
    let mut last_handshake = w.now;
    for i in 0..100u32 {
        if i == 20 {
            started = Some(w.now);
            for a in 1..=FLOOD_ADDRESSES {
                for p in 0..FLOOD_PER_ADDRESS {
                    flood.push(w.add_silent_peer_at(&format!("f{a}_{p}"), flooder(a, 20_000 + p)));
                }
            }
        }
        let (from, text) = if i % 2 == 0 {
            (bob, format!("b{i}"))
        } else {
            (alice, format!("a{i}"))
        };
        w.send_pm(from, &text).expect("a public message");
        let until = chat_start + ms(10 * (u64::from(i) + 1));
        while w.next_wakeup().is_some_and(|t| t <= until) {
            w.step();
            let done = w.server.stats().handshakes;
            if done != handshakes_seen {
                handshakes_seen = done;
                last_handshake = w.now;
            }
        }
        w.now = w.now.max(until);
    }
    w.run_for(ms(500));
    let mut latencies = Vec::new();
    for (who, prefix) in [(alice, 'b'), (bob, 'a')] {
        for (at, m) in w.messages_of(who) {
            assert!(m.text.starts_with(prefix), "{m:?}");
            latencies.push(at.as_micros() - w.sent_at[&m.text].as_micros());
        }
    }
    latencies.sort_unstable();
    let established = flood
        .iter()
        .filter(|&&i| w.peers[i].raw().established)
        .count();
    Flood {
        latencies,
        established,
        started: started.expect("the flood started"),
        last_handshake,
        world: w,
    }
}

#[test]
fn a_handshake_flood_does_not_hold_up_the_chat() {
    let f = chat_through_a_flood(ServerConfig::default().handshakes_per_turn);
    let w = &f.world;
    let flood = usize::from(FLOOD_ADDRESSES) * usize::from(FLOOD_PER_ADDRESS);
    let p99 = percentile(&f.latencies, 99);
    let max = *f.latencies.last().expect("messages delivered");
    let took = f.last_handshake.as_micros() - f.started.as_micros();
    eprintln!(
        "{} messages, latency p50 {} µs, p99 {p99} µs, max {max} µs; {} of {flood} flood \
         handshakes in {took} µs, {} turns, at most {} a turn",
        f.latencies.len(),
        percentile(&f.latencies, 50),
        f.established,
        w.handshake_turns,
        w.max_handshakes_in_a_turn,
    );
    // Every message arrives, each one way through the server (two hops of
    // 5 ms) plus at most a few turns of handshakes (8 × 80 µs each): under
    // 12 ms, where the whole flood would take 64 ms.
    assert_eq!(f.latencies.len(), 100);
    assert!(max < 12_000, "max latency {max} µs");
    // Every handshake of the flood is answered, at the budget's rate: at
    // most 8 per turn, so at least 100 turns for 800.
    assert_eq!(f.established, flood);
    assert!(
        w.max_handshakes_in_a_turn <= 8,
        "{}",
        w.max_handshakes_in_a_turn
    );
    assert!(w.handshake_turns >= (flood as u64).div_ceil(8));
    assert_eq!(w.server.stats().dropped_queue_full, 0);
    // The flood's cookies come back after three hops (15 ms); its
    // handshakes then take about 800 × 80 µs = 64 ms, in 100 turns.
    assert!((70_000..100_000).contains(&took), "{took} µs");
}

#[test]
fn without_the_budget_the_same_flood_holds_up_the_chat() {
    // The control: a server that does every handshake as it arrives makes
    // the chat wait for the whole flood (about 64 ms), which shows the
    // budgeted test above measures what it claims.
    let f = chat_through_a_flood(usize::MAX);
    let max = *f.latencies.last().expect("messages delivered");
    eprintln!("without a budget: max latency {max} µs");
    assert_eq!(f.latencies.len(), 100);
    assert!(max >= 50_000, "max latency {max} µs");
}
