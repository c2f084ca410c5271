//! The handshake through the emulated network: Initial (padded to 1,200
//! bytes, no cookie), Retry (the cookie), Initial with the cookie, Handshake,
//! then sealed Data datagrams only. Two round trips more than the session
//! protocol alone; no state on the server before the cookie came back; keys
//! pinned or learned; the handshake limit per source address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use udpchat_core::client::{ClientConfig, ClientEvent, CloseReason};
use udpchat_core::crypto::MSG2_ISSUED_LEN;
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::{DropReason, ServerConfig, ServerEvent};
use udpchat_core::wire::{COOKIE_LEN, HEADER_LEN, Header, MIN_INITIAL_LEN, PacketKind};
use udpchat_netem::LinkConfig;
use udpchat_sim::{SERVER, World, WorldConfig, ms, password_of, secs, server_key};

fn logged_in_at(w: &World, i: usize) -> Option<udpchat_core::time::Instant> {
    w.peers[i].events.iter().find_map(|(t, e)| match e {
        ClientEvent::LoggedIn { .. } => Some(*t),
        _ => None,
    })
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_handshake_takes_two_round_trips_and_then_everything_is_sealed() {
    // 20 ms each way, no jitter: every step of the exchange lands on a
    // known instant.
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::with_clients(WorldConfig::new(0x4A5).with_link(link).recording(), 2);
    w.login_all(secs(5));
    // Initial, Retry, Initial with cookie, Handshake (2 RTT = 80 ms), then
    // User and PasswordRequired (40 ms), Password, 5 ms of password work
    // and LoginOk (45 ms).
    for i in 0..2 {
        assert_eq!(logged_in_at(&w, i), Some(w.config().start + ms(165)));
        let key = w.peers[i].events.iter().find_map(|(t, e)| match e {
            ClientEvent::ServerKey(k) => Some((*t, *k)),
            _ => None,
        });
        assert_eq!(
            key,
            Some((w.config().start + ms(80), *server_key().public()))
        );
    }

    let alice = w.peers[0].addr;
    let up = w.sent_between(alice, SERVER);
    let down = w.sent_between(SERVER, alice);
    let kinds = |ds: &[&udpchat_sim::SentDatagram]| -> Vec<(PacketKind, usize)> {
        ds.iter()
            .take(2)
            .map(|d| (d.kind(), d.bytes.len()))
            .collect()
    };
    assert_eq!(
        kinds(&up),
        [
            (PacketKind::Initial, MIN_INITIAL_LEN),
            (PacketKind::Initial, MIN_INITIAL_LEN)
        ]
    );
    assert_eq!(
        kinds(&down),
        [
            (PacketKind::Retry, HEADER_LEN + COOKIE_LEN),
            (PacketKind::Handshake, HEADER_LEN + MSG2_ISSUED_LEN)
        ]
    );
    assert!(up[2..].iter().all(|d| d.kind() == PacketKind::Data));
    assert!(down[2..].iter().all(|d| d.kind() == PacketKind::Data));
    // The session's Data datagrams use the connection id the server issued
    // inside msg2, not the one the Initials showed.
    let id = |d: &udpchat_sim::SentDatagram| Header::decode(&d.bytes).unwrap().connection_id;
    let initial_id = id(up[0]);
    assert_eq!(id(down[1]), initial_id);
    let issued = id(up[2]);
    assert_ne!(issued, initial_id);
    assert!(up[2..].iter().chain(&down[2..]).all(|d| id(d) == issued));
    // The server kept no state for the first Initial: the session opened
    // when the cookie came back, one round trip later.
    let opened: Vec<_> = w
        .server_events
        .iter()
        .filter_map(|(t, e)| match e {
            ServerEvent::SessionOpened { addr, .. } if *addr == alice => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(opened, [w.config().start + ms(60)]);

    // Chat on, then look for secrets on the wire: neither the password nor
    // the text appears in any datagram, though the wiretap (which holds the
    // keys) finds the text in the plaintext.
    let secret = "the eagle lands at midnight";
    w.send_pm(0, secret).unwrap();
    assert!(w.run_until_cond(w.now + secs(2), |w| w.deliveries == 1));
    for d in &w.log {
        assert!(!contains(&d.bytes, password_of("alice").as_bytes()));
        assert!(!contains(&d.bytes, password_of("bob").as_bytes()));
        assert!(!contains(&d.bytes, secret.as_bytes()));
    }
    assert!(
        w.log
            .iter()
            .filter_map(|d| d.plain.as_deref())
            .any(|p| contains(p, secret.as_bytes()))
    );
    // Each sealed datagram opened, every one of both directions.
    assert!(
        w.log
            .iter()
            .all(|d| (d.kind() == PacketKind::Data) == d.plain.is_some())
    );
}

/// Logins through 30 % loss each way. Before the handshake existed, a login
/// needed two round trips, and the client sent something every second (its
/// channel retransmitted the username on its RTO and pinged on its
/// keep-alive); a login through 30 % loss each way did not fail once in
/// 2,000 seeds. The handshake adds two round trips, the Initial is
/// retransmitted at 1, 3, 6 and 9 s only (the RTO doubling up to its 3 s
/// cap) and the client gives up at its idle timeout, 12 s after it
/// started: five tries for two round trips that each get through with
/// probability 0.7² ≈ 0.49.
#[test]
fn every_login_survives_thirty_percent_loss() {
    let link = LinkConfig::lossy(0.3)
        .with_delay(ms(20))
        .with_jitter(ms(20));
    let n = 50;
    let mut w = World::with_clients(WorldConfig::new(0x30).with_link(link), n);
    w.run_until_cond(w.now + secs(30), |w| {
        (0..n).all(|i| w.client(i).is_logged_in() || w.client(i).closed().is_some())
    });
    let failed: Vec<String> = (0..n)
        .filter(|&i| !w.client(i).is_logged_in())
        .map(|i| {
            format!(
                "{} (handshake done: {}, closed: {:?})",
                w.peers[i].name,
                w.client(i).is_established(),
                w.client(i).closed()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} logins failed: {}",
        failed.len(),
        failed.join(", ")
    );
}

#[test]
fn a_client_pinning_another_key_refuses_the_server() {
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::new(WorldConfig::new(0xBAD).with_link(link).recording());
    let mut other = *server_key().public();
    other[0] ^= 1;
    let pinned_wrong = ClientConfig {
        server_key: Some(other),
        ..ClientConfig::default()
    };
    let pinned_right = ClientConfig {
        server_key: Some(*server_key().public()),
        ..ClientConfig::default()
    };
    let mallory = w.add_client_with("alice", pinned_wrong);
    let bob = w.add_client_with("bob", pinned_right);
    w.run_for(secs(15));
    assert_eq!(
        w.client(mallory).closed(),
        Some(&CloseReason::ServerKeyMismatch {
            expected: other,
            actual: *server_key().public()
        })
    );
    assert!(
        !w.peers[mallory].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::ServerKey(_) | ClientEvent::PasswordRequired { .. }
        )),
        "nothing after the mismatch"
    );
    // Nothing sealed ever left the refusing client: it never sent its
    // username to a server it does not trust.
    let from_mallory = w.sent_between(w.peers[mallory].addr, SERVER);
    assert!(from_mallory.iter().all(|d| d.kind() == PacketKind::Initial));
    assert_eq!(w.client(mallory).poll_timeout(), None);
    assert!(w.client(bob).is_logged_in());
    assert_eq!(w.server.online_users().collect::<Vec<_>>(), ["bob"]);
}

#[test]
fn clients_behind_one_address_all_log_in_under_the_handshake_limit() {
    // The default limits: 16 sessions that have not logged in per source
    // address, and 20 new sessions per source address at once, then 5 a
    // second. Thirty clients behind one NAT start together; the fourteen
    // over the first limit are dropped, retransmit their Initial, and get
    // in as the others finish logging in, well before they would give up.
    let config = WorldConfig::new(0x2A7)
        .with_link(LinkConfig::default().with_delay(ms(15)))
        .with_server(ServerConfig::default());
    let mut w = World::new(config);
    let nat = Ipv4Addr::new(198, 51, 100, 7);
    let n = 30;
    for i in 0..n {
        let addr = SocketAddr::V4(SocketAddrV4::new(nat, 50_000 + i as u16));
        w.add_client_at(&format!("nat{i}"), addr, ClientConfig::default());
    }
    w.login_all(secs(12));
    let at = |pred: &dyn Fn(&ServerEvent) -> bool| -> Vec<u64> {
        w.server_events
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(t, _)| t.as_micros() / 1000)
            .collect()
    };
    let limited = at(&|e| {
        matches!(
            e,
            ServerEvent::Dropped {
                reason: DropReason::RateLimited | DropReason::Refused,
                ..
            }
        )
    });
    let opened = at(&|e| matches!(e, ServerEvent::SessionOpened { .. }));
    // The cookies come back one and a half round trips after the start:
    // sixteen sessions open, fourteen Initials are dropped. Those come
    // again when the client retransmits its Initial and get in once the
    // first ones have logged in and tokens are back, long before the
    // clients would give up.
    assert_eq!(limited[..14], [45; 14]);
    assert_eq!(opened[..16], [45; 16]);
    let idle = ChannelConfig::default().idle_timeout.as_millis();
    assert!(opened[20..].iter().all(|&t| t > 45 && t < idle / 2));
    assert_eq!(opened.len(), n);
    assert_eq!(w.server.online_users().count(), n);
    eprintln!(
        "{n} clients behind one address logged in by {:?}; {} Initials rate-limited",
        w.now,
        limited.len()
    );
}
