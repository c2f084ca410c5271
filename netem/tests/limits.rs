//! The server's default per-session message limit (a burst of 10, then 5 a
//! second) through the emulated network: duplicated and retransmitted
//! datagrams never cost a token, and every message is either relayed and
//! confirmed or refused with an error, exactly once.

use udpchat_core::client::ClientEvent;
use udpchat_core::server::ServerConfig;
use udpchat_core::session::ErrorCode;
use udpchat_netem::LinkConfig;
use udpchat_sim::{World, WorldConfig, ms, secs};

fn confirmed(w: &World, i: usize) -> usize {
    w.peers[i]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Confirmed { .. }))
        .count()
}

fn refused(w: &World, i: usize) -> usize {
    w.peers[i]
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                ClientEvent::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        })
        .count()
}

fn world(link: LinkConfig, seed: u64) -> World {
    let config = WorldConfig::new(seed)
        .with_link(link)
        .with_server(ServerConfig::default());
    let mut w = World::with_clients(config, 3);
    w.login_all(secs(30));
    w
}

#[test]
fn duplicates_cost_no_tokens() {
    // Every datagram arrives twice: fifteen messages at once still make
    // exactly ten relayed and five refused, and after a second five more
    // pass again.
    let mut w = world(
        LinkConfig::default().with_delay(ms(20)).with_duplicate(1.0),
        0xD7,
    );
    for k in 0..15 {
        w.send_pm(0, &format!("alice:{k}")).unwrap();
    }
    assert!(w.run_until_cond(w.now + secs(5), |w| confirmed(w, 0) + refused(w, 0) == 15));
    w.run_for(ms(500));
    assert_eq!((confirmed(&w, 0), refused(&w, 0)), (10, 5));
    for i in 1..3 {
        let got: Vec<String> = w.messages_of(i).into_iter().map(|(_, m)| m.text).collect();
        let want: Vec<String> = (0..10).map(|k| format!("alice:{k}")).collect();
        assert_eq!(got, want, "{}", w.peers[i].name);
    }
    w.run_for(secs(1));
    for k in 15..20 {
        w.send_pm(0, &format!("alice:{k}")).unwrap();
    }
    assert!(w.run_until_cond(w.now + secs(5), |w| confirmed(w, 0) == 15));
    w.run_for(ms(500));
    assert_eq!((confirmed(&w, 0), refused(&w, 0)), (15, 5));
    assert_eq!(w.server.stats().messages_rate_limited, 5);
}

#[test]
fn every_message_is_relayed_or_refused_exactly_once_through_loss() {
    // Through loss, messages reach the server spread out by retransmissions
    // and tokens come back meanwhile, so how many are refused depends on the
    // run; but each is accounted for once, and the recipients get exactly
    // the ones confirmed, in order.
    let link = LinkConfig::lossy(0.3)
        .with_duplicate(0.1)
        .with_delay(ms(10))
        .with_jitter(ms(100));
    let mut w = world(link, 0x1057);
    let n = 40;
    for k in 0..n {
        w.run_for(ms(50));
        w.send_pm(0, &format!("alice:{k}")).unwrap();
    }
    assert!(w.run_until_cond(w.now + secs(30), |w| confirmed(w, 0) + refused(w, 0) == n));
    w.run_for(secs(5));
    let (ok, no) = (confirmed(&w, 0), refused(&w, 0));
    assert_eq!(ok + no, n);
    assert!(
        no > 0,
        "20 messages a second must hit a limit of 5 a second"
    );
    assert_eq!(w.server.stats().messages_rate_limited, no as u64);
    let recv1: Vec<String> = w.messages_of(1).into_iter().map(|(_, m)| m.text).collect();
    let recv2: Vec<String> = w.messages_of(2).into_iter().map(|(_, m)| m.text).collect();
    assert_eq!(recv1.len(), ok);
    assert_eq!(recv1, recv2);
    let mut sorted = recv1.clone();
    sorted.sort_by_key(|t| t[6..].parse::<u32>().unwrap());
    sorted.dedup();
    assert_eq!(sorted, recv1, "in order, no duplicates");
    eprintln!("{n} messages at 20/s through loss: {ok} relayed, {no} refused");
}
