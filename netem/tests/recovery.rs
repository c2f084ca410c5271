//! Loss recovery of the reliable channel in detail, with losses the test
//! chooses (the harness's drop filter) on an otherwise perfect 20 ms link.

use udpchat_netem::LinkConfig;
use udpchat_sim::{SERVER, World, WorldConfig, ms, secs};

/// A message of three segments goes out as three datagrams at one instant
/// (a driver calls `poll_transmit` in a loop with one `now`). The first is
/// lost; the server acknowledges the other two one round trip later. The
/// channel's documentation promises time-based loss detection in the style
/// of RACK (RFC 8985): a segment is retransmitted once a segment sent after
/// it was acknowledged and a quarter of an RTT more has passed, here 1.25 ×
/// 40 ms = 50 ms after it was sent, well before the 200 ms minimum RTO.
#[test]
fn a_datagram_lost_from_a_burst_is_repaired_by_the_acks_of_the_rest() {
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::with_clients(WorldConfig::new(0x2ACC).with_link(link).recording(), 2);
    w.login_all(secs(5));
    w.run_for(secs(3));
    let srtt = w.client(0).rtt().expect("an RTT sample");
    let alice = w.peers[0].addr;
    let cut = w.now;
    let mut dropped = false;
    w.drop_filter = Some(Box::new(move |d| {
        let hit = !dropped && d.from == alice && !d.segments().is_empty();
        dropped |= hit;
        hit
    }));
    w.send_pm(0, &"x".repeat(3_000)).unwrap();
    assert!(w.run_until_cond(cut + secs(5), |w| w.deliveries == 1));
    assert_eq!(w.dropped_by_filter, 1);

    let sent: Vec<_> = w
        .sent_between(alice, SERVER)
        .into_iter()
        .filter(|d| d.at >= cut && !d.segments().is_empty())
        .collect();
    let burst: Vec<_> = sent.iter().take_while(|d| d.at == cut).collect();
    assert_eq!(
        burst.len(),
        3,
        "the message left as three datagrams at once"
    );
    let lost = burst[0].segments()[0];
    let again = sent
        .iter()
        .find(|d| d.at > cut && d.segments().contains(&lost))
        .expect("retransmitted");
    let waited = again.at - cut;
    assert!(
        waited <= srtt + srtt,
        "segment {lost} was retransmitted {waited:?} after it was sent, though later \
         segments of its burst were acknowledged after one RTT ({srtt:?})"
    );
}

/// The server counts its retransmissions over every session: a delivery
/// lost once is sent again, and counted.
#[test]
fn the_server_counts_a_retransmitted_delivery() {
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::with_clients(WorldConfig::new(0x2ACD).with_link(link).recording(), 2);
    w.login_all(secs(5));
    w.run_for(secs(3));
    let bob = w.peers[1].addr;
    let before = w.server.retransmissions();
    let mut dropped = false;
    w.drop_filter = Some(Box::new(move |d| {
        let hit = !dropped && d.from == SERVER && d.to == bob && !d.segments().is_empty();
        dropped |= hit;
        hit
    }));
    w.send_pm(0, "hello bob").unwrap();
    let until = w.now + secs(5);
    assert!(w.run_until_cond(until, |w| w.deliveries == 1));
    assert_eq!(w.dropped_by_filter, 1);
    assert!(w.server.retransmissions() > before);
}
