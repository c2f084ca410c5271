//! Address bans over the seeded emulator (PROTOCOL.md §5.12, §4.5): who may
//! ban, that a banned address gets no answer at all, that its sessions end
//! and others do not, expiry, lifting, a restart, an IPv6 /64, and a
//! session moving to a banned address.

use std::net::SocketAddr;

use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::server::{DropReason, ServerConfig, ServerEvent};
use udpchat_core::session::{BanItem, ClientMessage, ErrorCode, ServerMessage};
use udpchat_sim::{SERVER, World, WorldConfig, load_server_config, peer_addr, secs};

fn seen<T>(w: &World, i: usize, pick: impl Fn(&ClientEvent) -> Option<T>) -> Vec<T> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(_, e)| pick(e))
        .collect()
}

fn errors(w: &World, i: usize) -> Vec<ErrorCode> {
    seen(w, i, |e| match e {
        ClientEvent::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn mod_oks(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::ModOk { action, target } => Some((action.clone(), target.clone())),
        _ => None,
    })
}

fn lefts(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::Left { user, reason, .. } => Some((user.clone(), reason.clone())),
        _ => None,
    })
}

fn ban_lists(w: &World, i: usize) -> Vec<Vec<BanItem>> {
    seen(w, i, |e| match e {
        ClientEvent::BanList { bans, .. } => Some(bans.clone()),
        _ => None,
    })
}

fn ok(action: &str, target: &str) -> (String, String) {
    (action.to_string(), target.to_string())
}

/// A recording world whose server has alice as its admin.
fn config(seed: u64) -> WorldConfig {
    let server = ServerConfig {
        admins: ["alice".to_string()].into_iter().collect(),
        ..load_server_config()
    };
    WorldConfig::new(seed).with_server(server).recording()
}

/// Starts a client at `addr` and runs for `d`: whether it logged in.
fn try_login(w: &mut World, name: &str, addr: SocketAddr, d: u64) -> (usize, bool) {
    let config = w.config().client.clone();
    let i = w.add_client_at(name, addr, config);
    w.run_until_cond(w.now + secs(d), |w| w.client(i).is_logged_in());
    (i, w.client(i).is_logged_in())
}

/// Asserts that the server sent nothing to `addr` at or after `since`.
fn nothing_sent_to(w: &World, addr: SocketAddr, since: udpchat_core::time::Instant) {
    let sent: Vec<_> = w
        .sent_between(SERVER, addr)
        .into_iter()
        .filter(|d| d.at >= since)
        .map(|d| d.kind())
        .collect();
    assert!(sent.is_empty(), "the server answered {addr}: {sent:?}");
}

#[test]
fn an_admin_bans_an_address_its_session_ends_and_it_gets_no_answer() {
    let mut w = World::new(config(0xBA01));
    let (alice, bob, carol) = (
        w.add_client("alice"),
        w.add_client("bob"),
        w.add_client("carol"),
    );
    w.login_all(secs(10));
    let bob_addr = peer_addr(bob);

    // Bob is no admin: refused, nothing banned.
    w.with_client(bob, |c| c.ban_address("10.0.1.3", None, None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, bob), [ErrorCode::NotPermitted]);
    assert_eq!(w.server.address_bans().count(), 0);

    // Alice bans bob's address.
    w.with_client(alice, |c| {
        c.ban_address("10.0.1.2", Some(3600), Some("spam"))
    })
    .unwrap();
    w.run_for(secs(2));
    let banned_at = w.now;
    assert_eq!(mod_oks(&w, alice), [ok("ban_address", "10.0.1.2/32")]);
    assert_eq!(
        errors(&w, bob),
        [ErrorCode::NotPermitted, ErrorCode::Banned]
    );
    assert_eq!(
        w.client(bob).closed(),
        Some(&CloseReason::ServerClosed(
            udpchat_core::wire::CloseCode::Normal
        ))
    );
    assert_eq!(lefts(&w, carol), [ok("bob", "banned")]);
    assert_eq!(w.server.session_count(), 2);
    let audit: Vec<(String, String, String)> = w
        .server
        .audit_log()
        .map(|e| (e.action.clone(), e.target.clone(), e.reason.clone()))
        .collect();
    assert_eq!(
        audit,
        [(
            "ban_address".to_string(),
            "10.0.1.2/32".to_string(),
            "spam".to_string()
        )]
    );

    // A new client from that address, another port: not even a Retry.
    let dropped_before = w.server.stats().dropped_banned;
    let mut other_port = bob_addr;
    other_port.set_port(41_999);
    w.vanish_peer(bob);
    let (dave, logged_in) = try_login(&mut w, "dave", other_port, 15);
    assert!(!logged_in);
    assert_eq!(w.client(dave).closed(), Some(&CloseReason::NoAnswer));
    nothing_sent_to(&w, other_port, banned_at);
    nothing_sent_to(&w, bob_addr, banned_at + secs(1));
    assert!(w.server.stats().dropped_banned > dropped_before);
    assert!(w.server_events.iter().any(|(_, e)| matches!(
        e,
        ServerEvent::Dropped { from, reason: DropReason::Banned } if *from == other_port
    )));

    // Everyone else goes on.
    w.vanish_peer(dave);
    w.send_pm(carol, "still here").unwrap();
    w.run_for(secs(1));
    assert!(
        w.messages_of(alice)
            .iter()
            .any(|(_, m)| m.text == "still here")
    );
    let (_, erin_in) = try_login(&mut w, "erin", peer_addr(7), 10);
    assert!(erin_in, "an address outside the range logs in");
}

#[test]
fn bad_broad_and_self_covering_ranges_are_refused() {
    let mut w = World::new(config(0xBA02));
    let bob = w.add_client("bob");
    // Alice speaks raw JSON, past the client's own checks.
    let alice = w.add_raw_peer("alice", Default::default());
    w.login_all(secs(10));
    assert!(
        w.with_client(bob, |c| c.ban_address("10.0.0.0/7", None, None))
            .is_err()
    );
    let ranges = [
        "300.1.2.3",
        "10.0.0.0/7",
        "2000::/15",
        "10.0.1.0/24",
        "alice",
        "",
    ];
    for range in ranges {
        w.raw_send(
            alice,
            &ClientMessage::BanAddress {
                range: range.to_string(),
                secs: None,
                reason: None,
            },
        );
    }
    w.raw_send(
        alice,
        &ClientMessage::UnbanAddress {
            range: "192.0.2.1".to_string(),
        },
    );
    w.raw_send(
        alice,
        &ClientMessage::BanAddress {
            range: "192.0.2.1".to_string(),
            secs: Some(0),
            reason: None,
        },
    );
    w.run_for(secs(2));
    let codes: Vec<ErrorCode> = w.peers[alice]
        .raw()
        .received
        .iter()
        .filter_map(|(_, m)| match m {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    // "10.0.1.0/24" holds alice's own address; 192.0.2.1 is not banned; a
    // ban of 0 seconds is no ban.
    let mut want = vec![ErrorCode::InvalidRange; ranges.len() + 1];
    want.push(ErrorCode::BadMessage);
    assert_eq!(codes, want);
    assert_eq!(w.server.address_bans().count(), 0);
    assert!(w.client(bob).is_logged_in());
}

#[test]
fn a_ban_expires_and_a_lifted_ban_lets_the_address_back() {
    let mut w = World::new(config(0xBA03));
    let alice = w.add_client("alice");
    w.login_all(secs(10));
    let a: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let b: SocketAddr = "198.51.100.20:40000".parse().unwrap();
    w.with_client(alice, |c| c.ban_address("192.0.2.0/24", Some(30), None))
        .unwrap();
    w.with_client(alice, |c| {
        c.ban_address("198.51.100.0/24", None, Some("bots"))
    })
    .unwrap();
    w.run_for(secs(1));
    w.with_client(alice, |c| c.request_bans(None)).unwrap();
    w.run_for(secs(1));
    let lists = ban_lists(&w, alice);
    let listed: Vec<(&str, bool, &str)> = lists[0]
        .iter()
        .map(|b| (b.range.as_str(), b.until.is_some(), b.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("192.0.2.0/24", true, ""),
            ("198.51.100.0/24", false, "bots")
        ]
    );
    assert!(lists[0].iter().all(|b| b.by == "alice"));

    let (i, logged_in) = try_login(&mut w, "dave", a, 13);
    assert!(!logged_in, "banned for 30 s");
    w.vanish_peer(i);
    // 30 s after the ban: it has expired.
    w.run_for(secs(20));
    let mut later = a;
    later.set_port(40_001);
    let (_, logged_in) = try_login(&mut w, "erin", later, 10);
    assert!(logged_in, "the ban expired");
    w.with_client(alice, |c| c.request_bans(None)).unwrap();
    w.run_for(secs(1));
    let last = ban_lists(&w, alice).pop().unwrap();
    assert_eq!(last.len(), 1, "the expired ban is gone: {last:?}");
    assert_eq!(w.server.address_bans().count(), 1);

    // Lifting the other.
    w.with_client(alice, |c| c.unban_address("198.51.100.0/24"))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(
        mod_oks(&w, alice)[2..],
        [ok("unban_address", "198.51.100.0/24")]
    );
    let (_, logged_in) = try_login(&mut w, "frank", b, 10);
    assert!(logged_in, "the ban was lifted");
    assert_eq!(
        w.store.snapshot(10).bans.len(),
        0,
        "both gone from the store"
    );
}

#[test]
fn a_ban_outlives_a_restart() {
    let mut w = World::new(config(0xBA04));
    let alice = w.add_client("alice");
    w.login_all(secs(10));
    w.with_client(alice, |c| {
        c.ban_address("203.0.113.0/24", None, Some("abuse"))
    })
    .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, alice), [ok("ban_address", "203.0.113.0/24")]);
    w.vanish_peer(alice);
    w.restart_server();
    let restarted = w.now;
    let banned: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let (i, logged_in) = try_login(&mut w, "mallory", banned, 15);
    assert!(!logged_in);
    w.vanish_peer(i);
    nothing_sent_to(&w, banned, restarted);
    let bans: Vec<(String, String)> = w
        .server
        .address_bans()
        .map(|b| (b.range.clone(), b.reason.clone()))
        .collect();
    assert_eq!(bans, [ok("203.0.113.0/24", "abuse")]);
}

#[test]
fn an_ipv6_slash_64_ends_every_session_in_it_and_no_other() {
    let mut w = World::new(config(0xBA05));
    let alice = w.add_client("alice");
    let c = w.config().client.clone();
    let one: SocketAddr = "[2001:db8:1:2::10]:40000".parse().unwrap();
    let two: SocketAddr = "[2001:db8:1:2:ffff::20]:40001".parse().unwrap();
    let next_net: SocketAddr = "[2001:db8:1:3::1]:40000".parse().unwrap();
    let bob = w.add_client_at("bob", one, c.clone());
    let carol = w.add_client_at("carol", two, c.clone());
    let dave = w.add_client_at("dave", next_net, c);
    w.login_all(secs(10));
    w.with_client(alice, |c| c.ban_address("2001:db8:1:2::77/64", None, None))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, alice), [ok("ban_address", "2001:db8:1:2::/64")]);
    for i in [bob, carol] {
        assert_eq!(errors(&w, i), [ErrorCode::Banned], "peer {i}");
        assert!(w.client(i).closed().is_some());
    }
    assert!(w.client(dave).is_logged_in());
    let mut gone = lefts(&w, dave);
    gone.sort();
    assert_eq!(gone, [ok("bob", "banned"), ok("carol", "banned")]);
    w.vanish_peer(bob);
    w.vanish_peer(carol);
    let since = w.now;
    let third: SocketAddr = "[2001:db8:1:2::abcd]:40002".parse().unwrap();
    let (_, logged_in) = try_login(&mut w, "erin", third, 13);
    assert!(!logged_in);
    nothing_sent_to(&w, third, since);
}

#[test]
fn a_session_moving_to_a_banned_address_is_not_followed() {
    let mut w = World::new(config(0xBA06));
    let alice = w.add_client("alice");
    let bob = w.add_client("bob");
    w.login_all(secs(10));
    w.with_client(alice, |c| c.ban_address("198.51.100.0/24", None, None))
        .unwrap();
    w.run_for(secs(1));
    let old = peer_addr(bob);
    let banned: SocketAddr = "198.51.100.5:40000".parse().unwrap();
    w.rebind_peer(bob, banned);
    let moved_at = w.now;
    w.send_pm(bob, "from the banned network").unwrap();
    w.run_for(secs(3));
    nothing_sent_to(&w, banned, moved_at);
    assert!(
        !w.messages_of(alice)
            .iter()
            .any(|(_, m)| m.text == "from the banned network"),
        "its datagrams are not opened"
    );
    assert!(
        !w.server_events
            .iter()
            .any(|(_, e)| matches!(e, ServerEvent::Migrated { to, .. } if *to == banned))
    );
    // Back at its old address, the session goes on.
    w.rebind_peer(bob, old);
    w.run_for(secs(3));
    assert!(
        w.messages_of(alice)
            .iter()
            .any(|(_, m)| m.text == "from the banned network")
    );
}
