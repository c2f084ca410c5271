//! Acceptance: a peer that stops answering. Retransmissions back off up to
//! the cap, and the peer is declared lost no later than the idle timeout
//! (12 s, `ChannelConfig::default`) after the last datagram heard from it,
//! on both sides: a vanished client is removed from the online list and the
//! others see it leave; a client whose server vanished is told
//! `ClientEvent::Closed(CloseReason::ServerLost(..))`.

use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::reliable::{ChannelConfig, ChannelError};
use udpchat_core::server::{LeaveReason, ServerEvent};
use udpchat_core::time::{Duration, Instant};
use udpchat_netem::LinkConfig;
use udpchat_sim::{SERVER, SentDatagram, World, WorldConfig, ms, secs};

fn idle_timeout() -> Duration {
    ChannelConfig::default().idle_timeout
}

fn wan() -> LinkConfig {
    LinkConfig::default().with_delay(ms(20)).with_jitter(ms(5))
}

/// The instants at which datagrams carrying segment `seq` were sent.
fn sends_of(datagrams: &[&SentDatagram], seq: u32) -> Vec<Instant> {
    datagrams
        .iter()
        .filter(|d| d.segments().contains(&seq))
        .map(|d| d.at)
        .collect()
}

/// Checks exponential backoff: gaps never shrink, never pass the cap, start
/// at or above the minimum RTO and reach the cap.
fn assert_backs_off(who: &str, sends: &[Instant]) -> Vec<u64> {
    let config = ChannelConfig::default();
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert!(gaps.len() >= 4, "{who}: too few retransmissions: {gaps:?}");
    assert!(
        gaps.windows(2).all(|g| g[0] <= g[1]),
        "{who}: retransmission gaps shrink: {gaps:?}"
    );
    assert!(gaps[0] >= config.min_rto.as_millis(), "{who}: {gaps:?}");
    assert!(
        gaps.iter().all(|&g| g <= config.max_rto.as_millis()),
        "{who}: a gap above the cap: {gaps:?}"
    );
    assert!(
        gaps.iter()
            .filter(|&&g| g == config.max_rto.as_millis())
            .count()
            >= 2,
        "{who}: the backoff never reached the cap: {gaps:?}"
    );
    gaps
}

fn left_events(w: &World, i: usize, user: &str) -> Vec<(Instant, String)> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            ClientEvent::Left {
                user: u, reason, ..
            } if u == user => Some((*t, reason.clone())),
            _ => None,
        })
        .collect()
}

fn closed_at(w: &World, i: usize) -> Option<(Instant, CloseReason)> {
    w.peers[i].events.iter().find_map(|(t, e)| match e {
        ClientEvent::Closed(r) => Some((*t, r.clone())),
        _ => None,
    })
}

fn logged_out_at(w: &World, user: &str) -> Option<(Instant, LeaveReason)> {
    w.server_events.iter().find_map(|(t, e)| match e {
        ServerEvent::LoggedOut { user: u, reason } if u == user => Some((*t, *reason)),
        _ => None,
    })
}

#[test]
fn blackholed_client_both_ends_back_off_and_give_up_in_time() {
    let mut w = World::with_clients(WorldConfig::new(0xB1AC).with_link(wan()).recording(), 3);
    w.login_all(secs(5));
    w.run_for(secs(3));
    let (alice, bob, carol) = (0, 1, 2);
    let alice_addr = w.peers[alice].addr;

    let cut = w.now;
    w.blackhole_peer(alice);
    // Both ends now have a message in flight that can never be acknowledged:
    // the server relays bob's to alice, alice sends her own.
    w.send_pm(bob, "bob:0").unwrap();
    w.send_pm(alice, "alice:0").unwrap();
    // Run until both sides gave up and the others were told (the assertions
    // below say how soon).
    let done = w.run_until_cond(cut + secs(20), |w| {
        logged_out_at(w, "alice").is_some()
            && w.client(alice).closed().is_some()
            && [bob, carol]
                .iter()
                .all(|&i| !left_events(w, i, "alice").is_empty())
    });
    assert!(
        done,
        "alice was not declared lost on both sides within 20 s"
    );

    // The server's retransmissions to alice back off up to the cap.
    let to_alice: Vec<&SentDatagram> = w
        .sent_between(SERVER, alice_addr)
        .into_iter()
        .filter(|d| d.at >= cut && !d.segments().is_empty())
        .collect();
    let seq = to_alice[0].segments()[0];
    assert!(
        to_alice.iter().all(|d| d.segments() == [seq]),
        "only the relayed message is in flight to alice"
    );
    let gaps = assert_backs_off("server", &sends_of(&to_alice, seq));
    eprintln!("server -> alice retransmission gaps (ms): {gaps:?}");

    // So do alice's, under her keep-alive pings.
    let from_alice: Vec<&SentDatagram> = w
        .sent_between(alice_addr, SERVER)
        .into_iter()
        .filter(|d| d.at >= cut && !d.segments().is_empty())
        .collect();
    let seq = from_alice[0].segments()[0];
    let gaps = assert_backs_off("alice", &sends_of(&from_alice, seq));
    eprintln!("alice -> server retransmission gaps (ms): {gaps:?}");

    // The server declared alice lost exactly at the idle timeout after it
    // last heard from her: not later, and not earlier either.
    let heard = w.server_heard[&alice_addr];
    let (lost_at, reason) = logged_out_at(&w, "alice").unwrap();
    assert_eq!(reason, LeaveReason::Timeout);
    assert_eq!(
        lost_at - heard,
        idle_timeout(),
        "server: heard {heard:?}, lost {lost_at:?}"
    );
    assert!(w.server.online_users().all(|u| u != "alice"));
    for i in [bob, carol] {
        let left = left_events(&w, i, "alice");
        assert_eq!(left.len(), 1, "{} sees alice leave once", w.peers[i].name);
        assert_eq!(left[0].1, "timeout");
        assert!(
            left[0].0 - lost_at < secs(1),
            "{} told late",
            w.peers[i].name
        );
    }
    // Carol got bob's message; alice never did.
    assert!(w.messages_of(carol).iter().any(|(_, m)| m.text == "bob:0"));
    assert!(w.messages_of(alice).is_empty());

    // Alice, still running, declared the server lost on the same terms.
    let heard = w.peers[alice].last_heard.unwrap();
    let (closed, reason) = closed_at(&w, alice).unwrap();
    assert_eq!(reason, CloseReason::ServerLost(ChannelError::IdleTimeout));
    assert_eq!(
        closed - heard,
        idle_timeout(),
        "alice: heard {heard:?}, lost {closed:?}"
    );
    assert_eq!(w.client(alice).poll_timeout(), None);
}

#[test]
fn vanished_client_leaves_the_online_list_within_the_idle_timeout() {
    let link = wan().with_loss(0.1);
    let mut w = World::with_clients(WorldConfig::new(0x0FF).with_link(link), 3);
    w.login_all(secs(10));
    w.run_for(secs(2));
    let (alice, bob, carol) = (0, 1, 2);
    let alice_addr = w.peers[alice].addr;
    w.vanish_peer(alice);
    let gone = w.now;
    let done = w.run_until_cond(gone + secs(20), |w| {
        left_events(w, bob, "alice").len() == 1 && left_events(w, carol, "alice").len() == 1
    });
    assert!(done, "bob and carol were not told that alice left");

    let heard = w.server_heard[&alice_addr];
    assert!(heard <= gone + ms(100));
    let (lost_at, reason) = logged_out_at(&w, "alice").unwrap();
    assert_eq!(reason, LeaveReason::Timeout);
    assert!(
        lost_at - heard <= idle_timeout(),
        "removed {:?} after the last datagram",
        lost_at - heard
    );
    assert!(
        lost_at - heard >= idle_timeout(),
        "removed before the idle timeout"
    );
    assert!(w.server.online_users().all(|u| u != "alice"));
    assert_eq!(w.server.online_users().count(), 2);
    assert!(w.server_events.iter().any(|(_, e)| matches!(
        e,
        ServerEvent::SessionClosed {
            error: Some(ChannelError::IdleTimeout),
            ..
        }
    )));

    // The others see it leave, and the online list they ask for agrees.
    w.with_client(bob, |c| c.request_online()).unwrap();
    let asked = w.now;
    let ok = w.run_until_cond(asked + secs(10), |w| {
        w.peers[bob]
            .events
            .iter()
            .any(|(t, e)| *t >= asked && matches!(e, ClientEvent::Online { .. }))
    });
    assert!(ok);
    let online = w.peers[bob]
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            ClientEvent::Online { users, .. } => Some(users.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(online, ["bob", "carol"]);
    for i in [bob, carol] {
        let (t, reason) = &left_events(&w, i, "alice")[0];
        assert_eq!(reason, "timeout");
        assert!(
            *t <= heard + idle_timeout() + secs(5),
            "{} told at {t:?}",
            w.peers[i].name
        );
        assert!(w.client(i).is_logged_in());
    }
}

#[test]
fn vanished_server_is_reported_within_the_idle_timeout() {
    let link = wan().with_loss(0.1);
    let mut w = World::with_clients(WorldConfig::new(0x5E7).with_link(link), 3);
    w.login_all(secs(10));
    w.run_for(secs(2));
    w.vanish_server();
    let gone = w.now;
    // One client has a message in flight, the others only keep-alives.
    w.send_pm(0, "alice:0").unwrap();
    let done = w.run_until_cond(gone + secs(20), |w| {
        (0..3).all(|i| w.client(i).closed().is_some())
    });
    assert!(done, "not every client noticed that the server vanished");
    for i in 0..3 {
        let heard = w.peers[i].last_heard.unwrap();
        assert!(heard <= gone + ms(100));
        let (closed, reason) = closed_at(&w, i).unwrap();
        assert!(
            matches!(reason, CloseReason::ServerLost(_)),
            "{}: {reason:?}",
            w.peers[i].name
        );
        assert!(
            closed - heard <= idle_timeout(),
            "{} told {:?} after the last datagram",
            w.peers[i].name,
            closed - heard
        );
        assert_eq!(w.client(i).poll_timeout(), None, "a closed client sleeps");
    }
    // Once everybody has given up, nothing is left to do: no timer, no
    // datagram.
    let sent = w.datagrams_sent;
    w.run_for(secs(60));
    assert_eq!(w.next_wakeup(), None);
    assert_eq!(w.datagrams_sent, sent);
}

/// Retransmission gaps of every segment alice sent after `cut`, by
/// sequence number.
fn gaps_by_segment(w: &World, from: std::net::SocketAddr, cut: Instant) -> Vec<(u32, Vec<u64>)> {
    let sent: Vec<&SentDatagram> = w
        .sent_between(from, SERVER)
        .into_iter()
        .filter(|d| d.at >= cut)
        .collect();
    let mut seqs: Vec<u32> = sent.iter().flat_map(|d| d.segments()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs.into_iter()
        .map(|seq| {
            let times = sends_of(&sent, seq);
            let gaps = times
                .windows(2)
                .map(|p| (p[1] - p[0]).as_millis())
                .collect();
            (seq, gaps)
        })
        .collect()
}

/// RFC 6298 (5.5) doubles the timeout once per expiry of *the* timer. With
/// several messages in flight when the path goes dark, each segment's own
/// retransmissions must still back off by doubling: not jump from 200 ms
/// to 3 s because the other segments' timers expired in between, and not
/// hold a segment's first retransmission for many RTOs.
///
/// This failed while the channel kept one channel-wide backoff counter,
/// raised every time any segment's RTO expired (k segments lost together
/// raised it by k per round: gaps of the first segment 200 ms, then 3 s);
/// the backoff is per segment now.
#[test]
fn backoff_doubles_per_round_with_several_messages_in_flight() {
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::with_clients(WorldConfig::new(3).with_link(link).recording(), 2);
    w.login_all(secs(5));
    w.run_for(secs(3));
    let cut = w.now;
    w.blackhole_peer(0);
    // Four messages, 30 ms apart: four datagrams of two segments each.
    for k in 0..4u64 {
        w.run_until(cut + ms(30 * k));
        w.send_pm(0, &format!("alice:{k}")).unwrap();
    }
    w.run_for(secs(11));
    let gaps = gaps_by_segment(&w, w.peers[0].addr, cut);
    assert_eq!(gaps.len(), 8);
    let report = format!("retransmission gaps (ms) by segment: {gaps:?}");
    let first_rto = gaps[0].1[0];
    for (seq, g) in &gaps {
        assert!(g.len() >= 3, "segment {seq}: {report}");
        assert!(
            g[0] <= 2 * first_rto,
            "segment {seq} waited {} ms for its first retransmission, more than twice the \
             RTO of {first_rto} ms; {report}",
            g[0]
        );
        for p in g.windows(2) {
            assert!(
                p[1] <= 2 * p[0] + 1,
                "segment {seq}: a gap of {} ms after one of {} ms is more than a doubling; \
                 {report}",
                p[1],
                p[0]
            );
        }
    }
}
