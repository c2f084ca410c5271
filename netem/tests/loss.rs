//! Acceptance: 3 clients and 1,000 messages, public and direct mixed,
//! through 30 % loss each way, 10 % duplication and 0–200 ms of jitter with
//! reordering. Every recipient gets each message exactly once, in each
//! sender's order, every sender gets one confirmation per message, and it
//! all takes less than 60 virtual seconds.

use udpchat_core::time::Duration;
use udpchat_netem::LinkConfig;
use udpchat_sim::{Plan, World, WorldConfig, ms, secs};

fn harsh() -> LinkConfig {
    udpchat_sim::harsh_link()
}

#[test]
fn thousand_messages_through_thirty_percent_loss() {
    let mut w = World::with_clients(WorldConfig::new(0x1055).with_link(harsh()), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 1_000);
    let run = plan.run(&mut w, ms(10), secs(60));
    plan.check(&w);

    let took = run.done - run.first_send;
    assert!(took <= secs(60), "took {took:?}");
    // The emulator really was harsh, and the channel really recovered.
    let total = w.net.total();
    let loss = total.lost as f64 / total.sent as f64;
    assert!((0.25..0.35).contains(&loss), "loss rate {loss}");
    assert!(total.duplicated > 0);
    assert!(w.retransmissions > 0);
    // Nobody was disconnected on the way.
    assert!((0..3).all(|i| w.client(i).is_logged_in()));
    assert_eq!(w.server.online_users().count(), 3);
    eprintln!(
        "1,000 messages in {took:?} (virtual), {} datagrams, {} retransmitted segments, {} steps",
        w.datagrams_sent, w.retransmissions, w.steps
    );
}

/// `Plan::check` itself catches what it is there to catch.
#[test]
fn the_checker_catches_duplicates_gaps_and_reordering() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use udpchat_core::client::ClientEvent;
    type Events = Vec<(udpchat_core::time::Instant, ClientEvent)>;

    let mut w = World::with_clients(WorldConfig::new(5).with_link(LinkConfig::default()), 3);
    w.login_all(secs(5));
    let plan = Plan::mixed(3, 30);
    plan.run(&mut w, ms(10), secs(10));
    plan.check(&w);
    let fails = |tamper: &dyn Fn(&mut Events)| {
        let mut events = w.peers[1].events.clone();
        tamper(&mut events);
        let mut copy = World::with_clients(WorldConfig::new(5), 3);
        for i in 0..3 {
            copy.peers[i].events = w.peers[i].events.clone();
        }
        copy.peers[1].events = events;
        catch_unwind(AssertUnwindSafe(|| plan.check(&copy))).is_err()
    };
    let data =
        |e: &ClientEvent| matches!(e, ClientEvent::Public { .. } | ClientEvent::Direct { .. });
    let first_data = w.peers[1].events.iter().position(|(_, e)| data(e)).unwrap();
    let next_from_same = |events: &Events| {
        let from = |e: &ClientEvent| match e {
            ClientEvent::Public { from, .. } | ClientEvent::Direct { from, .. } => from.clone(),
            _ => String::new(),
        };
        let f = from(&events[first_data].1);
        (first_data + 1..events.len())
            .find(|&j| data(&events[j].1) && from(&events[j].1) == f)
            .unwrap()
    };
    assert!(!fails(&|_| {}), "the untouched run passes");
    assert!(fails(&|e| {
        let d = e[first_data].clone();
        e.push(d);
    }));
    assert!(fails(&|e| {
        e.remove(first_data);
    }));
    assert!(fails(&|e| {
        let j = next_from_same(e);
        e.swap(first_data, j);
    }));
    assert!(fails(&|e| {
        let c = e
            .iter()
            .position(|(_, e)| matches!(e, ClientEvent::Confirmed { .. }))
            .unwrap();
        e.remove(c);
    }));
    assert!(fails(&|e| {
        if let ClientEvent::Public { text, .. } | ClientEvent::Direct { text, .. } =
            &mut e[first_data].1
        {
            text.push('!');
        }
    }));
}

/// The acceptance run over many seeds, for soak testing:
/// `SEEDS=200 cargo test --release -p udpchat-netem --test loss -- --ignored`.
#[test]
#[ignore = "soak test; run on demand"]
fn thousand_messages_over_many_seeds() {
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut slowest = (0, Duration::ZERO);
    for seed in 0..seeds {
        let mut w = World::with_clients(WorldConfig::new(seed).with_link(harsh()), 3);
        w.login_all(secs(30));
        let plan = Plan::mixed(3, 1_000);
        let run = plan.run(&mut w, ms(10), secs(60));
        plan.check(&w);
        let took = run.done - run.first_send;
        if took > slowest.1 {
            slowest = (seed, took);
        }
    }
    eprintln!(
        "{seeds} seeds; slowest: seed {} in {:?}",
        slowest.0, slowest.1
    );
}

/// The acceptance run's completion times over many seeds, with the logins
/// done over a clean link first so that only the reliable channel is
/// measured (logins through loss: `handshake.rs`):
/// `SEEDS=100 cargo test --release -p udpchat-netem --test loss -- --ignored tail`.
/// Before the security layer, seeds 0..100 took 11.5 s at the median and
/// 22.9 s at worst.
#[test]
#[ignore = "statistics over many seeds; run on demand in release mode"]
fn thousand_messages_tail_over_many_seeds() {
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut took: Vec<(Duration, u64)> = (0..seeds)
        .map(|seed| {
            let clean = LinkConfig::default().with_delay(ms(10));
            let mut w = World::with_clients(WorldConfig::new(seed).with_link(clean), 3);
            w.login_all(secs(30));
            w.net.set_default_link(harsh());
            let plan = Plan::mixed(3, 1_000);
            let run = plan.run(&mut w, ms(10), secs(60));
            plan.check(&w);
            (run.done - run.first_send, seed)
        })
        .collect();
    took.sort();
    let at = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    let (median, p90, worst) = (at(50), at(90), took[took.len() - 1]);
    eprintln!(
        "{seeds} seeds: median {:?}, 90th percentile {:?}, worst {:?} (seed {})",
        median.0, p90.0, worst.0, worst.1
    );
    assert!(median.0 <= secs(13), "median {:?}", median.0);
    assert!(worst.0 <= secs(30), "seed {} took {:?}", worst.1, worst.0);
}
