//! Acceptance: with every datagram duplicated, the deliveries are the same
//! as in a clean run.

use udpchat_netem::LinkConfig;
use udpchat_sim::{Plan, PlanRun, World, WorldConfig, ms, secs};

const SEED: u64 = 0xD0_0B1E;

fn run(link: LinkConfig) -> (World, PlanRun) {
    let mut w = World::with_clients(WorldConfig::new(SEED).with_link(link), 3);
    w.login_all(secs(10));
    let plan = Plan::mixed(3, 300);
    let run = plan.run(&mut w, ms(10), secs(60));
    plan.check(&w);
    (w, run)
}

#[test]
fn full_duplication_delivers_what_a_clean_run_delivers() {
    // A fixed delay: both copies of a datagram arrive at the same instant,
    // so the runs can be compared event for event, times included.
    let clean = LinkConfig::default().with_delay(ms(20));
    let (a, run_a) = run(clean);
    let (b, run_b) = run(clean.with_duplicate(1.0));

    let stats = b.net.total();
    assert_eq!(stats.duplicated, stats.sent, "every datagram was doubled");
    assert_eq!(stats.delivered + b.net.in_flight() as u64, 2 * stats.sent);
    assert_eq!(a.net.total().duplicated, 0);
    assert!(b.server.stats().datagrams_received >= 2 * a.server.stats().datagrams_received);

    for i in 0..3 {
        assert_eq!(
            a.messages_of(i),
            b.messages_of(i),
            "{} received something else under duplication",
            a.peers[i].name
        );
        // Every event, logins and confirmations included, at the same
        // instant: the duplicates changed nothing a user can see.
        assert_eq!(
            a.peers[i].events, b.peers[i].events,
            "{}'s events differ",
            a.peers[i].name
        );
    }
    assert_eq!(run_a.done, run_b.done);
    // Duplicates cost acknowledgements, never retransmissions.
    assert_eq!(a.retransmissions, 0);
    assert_eq!(b.retransmissions, 0);
}

#[test]
fn full_duplication_with_jitter_delivers_the_same_messages() {
    // With jitter the copies overtake each other and the interleaving of
    // senders may change, but each recipient's messages from each sender do
    // not: `Plan::check` pins them, exactly once and in order, in both runs.
    let jittery = LinkConfig::default().with_delay(ms(20)).with_jitter(ms(40));
    let (a, _) = run(jittery);
    let (b, _) = run(jittery.with_duplicate(1.0));
    assert_eq!(b.net.total().duplicated, b.net.total().sent);
    for i in 0..3 {
        let mut x: Vec<_> = a.messages_of(i).into_iter().map(|(_, m)| m).collect();
        let mut y: Vec<_> = b.messages_of(i).into_iter().map(|(_, m)| m).collect();
        assert_eq!(x.len(), y.len());
        x.sort_by(|p, q| (&p.from, &p.text).cmp(&(&q.from, &q.text)));
        y.sort_by(|p, q| (&p.from, &p.text).cmp(&(&q.from, &q.text)));
        assert_eq!(x, y);
    }
}
