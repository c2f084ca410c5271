//! Acceptance: the same seed gives the same transcript twice, down to the
//! bytes of every datagram; another seed gives another run.

use udpchat_netem::{GilbertElliott, LinkConfig};
use udpchat_sim::{Plan, World, WorldConfig, ms, secs};

/// A run with every impairment: loss, bursts, duplication, jitter,
/// reordering, a client that vanishes and one that joins late.
fn run(seed: u64) -> World {
    let link = LinkConfig::lossy(0.2)
        .with_burst(GilbertElliott::new(0.02, 0.3, 0.8))
        .with_duplicate(0.1)
        .with_delay(ms(15))
        .with_jitter(ms(60))
        .with_reorder(0.1, ms(80));
    let mut w = World::with_clients(WorldConfig::new(seed).with_link(link).recording(), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 150);
    plan.run(&mut w, ms(20), secs(60));
    plan.check(&w);
    w.vanish_peer(2);
    w.add_client("dave");
    w.run_for(secs(20));
    w
}

/// Index and values of the first difference, for a readable failure.
fn first_difference<T: PartialEq + std::fmt::Debug>(a: &[T], b: &[T]) -> Option<String> {
    let i = a.iter().zip(b).position(|(x, y)| x != y);
    match i {
        Some(i) => Some(format!("#{i}: {:?} vs {:?}", a[i], b[i])),
        None if a.len() != b.len() => Some(format!("lengths {} vs {}", a.len(), b.len())),
        None => None,
    }
}

#[test]
fn same_seed_same_transcript_and_bytes() {
    let a = run(7);
    let b = run(7);
    assert!(
        a.deliveries >= 200 && a.log.len() > 500,
        "a run with substance: {} deliveries, {} datagrams",
        a.deliveries,
        a.log.len()
    );
    assert!(a.transcript.iter().any(|l| l.contains("Left")));
    assert_eq!(first_difference(&a.transcript, &b.transcript), None);
    assert_eq!(first_difference(&a.log, &b.log), None);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.now, b.now);
    assert_eq!(a.net.total(), b.net.total());
    for i in 0..a.peers.len() {
        assert_eq!(a.peers[i].events, b.peers[i].events);
    }
    assert_eq!(a.server_events, b.server_events);
}

#[test]
fn another_seed_gives_another_run() {
    let a = run(7);
    let c = run(8);
    assert_ne!(a.digest, c.digest);
    assert_ne!(a.log, c.log);
    assert_ne!(a.transcript, c.transcript);
    // Not only the connection ids: the network's choices differ too.
    assert_ne!(a.net.total(), c.net.total());
}
