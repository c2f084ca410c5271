//! Ends of sessions through a lossy network: EX, the server shutting down,
//! a user logging in again from a new connection while the old one is
//! silent, a server restarting (its old clients are reset), and a client's
//! address changing under it (the session follows).

use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::ServerEvent;
use udpchat_core::session::Operation;
use udpchat_core::wire::CloseCode;
use udpchat_netem::LinkConfig;
use udpchat_sim::{Plan, World, WorldConfig, ms, secs};

fn lossy() -> LinkConfig {
    LinkConfig::lossy(0.3)
        .with_duplicate(0.1)
        .with_delay(ms(10))
        .with_jitter(ms(100))
}

#[test]
fn everyone_exits_through_loss() {
    let mut w = World::with_clients(WorldConfig::new(0xE7).with_link(lossy()), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 60);
    plan.run(&mut w, ms(10), secs(60));
    w.with_client(0, |c| c.request_operation(Operation::EX))
        .unwrap();
    let t = w.now;
    assert!(w.run_until_cond(t + secs(15), |w| w.client(0).closed().is_some()));
    assert_eq!(w.client(0).closed(), Some(&CloseReason::Exit));
    assert!(w.run_until_cond(t + secs(15), |w| (1..3).all(|i| w.peers[i]
        .events
        .iter()
        .any(|(_, e)| matches!(e, ClientEvent::Left { user, reason, .. } if user == "alice" && reason == "exit")))));
    for i in 1..3 {
        w.with_client(i, |c| c.request_operation(Operation::EX))
            .unwrap();
    }
    assert!(w.run_until_cond(
        t + secs(30),
        |w| (0..3).all(|i| w.client(i).closed().is_some()) && w.server.session_count() == 0
    ));
    for i in 0..3 {
        assert_eq!(w.client(i).closed(), Some(&CloseReason::Exit));
    }
    assert_eq!(w.server.online_users().count(), 0);
    w.run_for(secs(30));
    assert_eq!(
        w.next_wakeup(),
        None,
        "nothing left to do once everyone left"
    );
}

#[test]
fn server_shutdown_reaches_every_client_through_loss() {
    let mut w = World::with_clients(WorldConfig::new(0x5D).with_link(lossy()), 3);
    w.login_all(secs(30));
    let t = w.now;
    w.server.shutdown(t);
    w.flush();
    assert!(w.run_until_cond(t + secs(15), |w| {
        (0..3).all(|i| w.client(i).closed().is_some())
    }));
    for i in 0..3 {
        assert_eq!(w.client(i).closed(), Some(&CloseReason::ServerShutdown));
    }
    assert!(w.run_until_cond(t + secs(15), |w| w.server.is_shut_down()));
}

#[test]
fn logging_in_again_replaces_a_silent_session() {
    let mut w = World::with_clients(WorldConfig::new(0x2E).with_link(lossy()), 3);
    w.login_all(secs(30));
    w.vanish_peer(0);
    w.run_for(secs(2));
    // alice comes back from a new address before the server noticed; her
    // account exists now, so the password is verified this time.
    let again = w.add_client("alice");
    w.login_all(secs(30));
    let ev = &w.peers[again].events;
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ClientEvent::PasswordRequired {
            new_user: false,
            ..
        }
    )));
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ClientEvent::LoggedIn {
            new_user: false,
            ..
        }
    )));
    assert_eq!(
        w.server.online_users().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    let t = w.now;
    assert!(w.run_until_cond(t + secs(15), |w| w.server.session_count() == 3));
    // The new alice works.
    w.send_pm(1, "bob:0").unwrap();
    assert!(w.run_until_cond(w.now + secs(10), |w| !w.messages_of(again).is_empty()));
    w.run_for(secs(20));
    assert!(w.client(again).is_logged_in());
    assert_eq!(w.server.online_users().count(), 3);
}

#[test]
fn a_restarted_server_resets_its_old_clients() {
    // The server crashes and a new process starts at once with the same
    // key but no sessions. The clients' next datagrams (keep-alives, at
    // least one a second) get a Reset carrying the token only this key
    // makes, and each client ends its session at once instead of waiting
    // out the idle timeout.
    let mut w = World::with_clients(WorldConfig::new(0x2E5E7).with_link(lossy()), 3);
    w.login_all(secs(30));
    w.run_for(secs(2));
    w.restart_server();
    let t = w.now;
    assert!(w.run_until_cond(t + secs(15), |w| {
        (0..3).all(|i| w.client(i).closed().is_some())
    }));
    for i in 0..3 {
        let (at, reason) = w.peers[i]
            .events
            .iter()
            .find_map(|(at, e)| match e {
                ClientEvent::Closed(r) => Some((*at, r.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            reason,
            CloseReason::ServerClosed(CloseCode::UnknownConnection),
            "{}",
            w.peers[i].name
        );
        assert!(
            at - t < ChannelConfig::default().idle_timeout,
            "{} learned of the restart only after {:?}",
            w.peers[i].name,
            at - t
        );
    }
    assert!(w.server.stats().resets_sent >= 3);
    assert_eq!(w.server.session_count(), 0, "resets create no state");
    // The users log in again (the new process lost the accounts registered
    // in the old one's memory: they register anew) and chat. The network
    // heals first: logins through 30 % loss are the subject of
    // `handshake::every_login_survives_thirty_percent_loss`.
    w.net
        .set_default_link(LinkConfig::default().with_delay(ms(10)).with_jitter(ms(10)));
    for i in 0..3 {
        w.vanish_peer(i);
    }
    let again: Vec<usize> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| w.add_client(n))
        .collect();
    w.login_all(secs(30));
    w.send_pm(again[0], "alice:again").unwrap();
    assert!(w.run_until_cond(w.now + secs(10), |w| {
        again[1..].iter().all(|&i| {
            w.messages_of(i)
                .iter()
                .any(|(_, m)| m.text == "alice:again")
        })
    }));
}

#[test]
fn a_client_whose_address_changes_keeps_its_session() {
    // Halfway through a stream of messages, alice's NAT gives her a new
    // port: what the server sends to the old one is lost until her next
    // datagram (sealed, so it cannot be forged) moves the session to the
    // new one. Nothing is lost or doubled on the way.
    let mut w = World::with_clients(WorldConfig::new(0x0BE).with_link(lossy()), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 120);
    let old = w.peers[0].addr;
    let new = std::net::SocketAddr::new(old.ip(), old.port() + 1000);
    plan.run_with(&mut w, ms(10), secs(60), |w, k| {
        if k == 60 {
            w.rebind_peer(0, new);
        }
    });
    plan.check(&w);
    let migrated: Vec<_> = w
        .server_events
        .iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::Migrated { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(migrated, [(old, new)]);
    assert!((0..3).all(|i| w.client(i).is_logged_in()));
}

/// A user who typed EX is told "session ended", whatever else is lost on
/// the way. Here everything from the server to alice is lost for 4 s after
/// her EX: the server got the EX, answered `Bye`, lingered its 3 s without
/// an acknowledgement, sent CLOSE and forgot the session; her next
/// keep-alive then gets a Reset.
#[test]
fn an_exit_whose_bye_is_lost_still_ends_as_an_exit() {
    let mut w = World::with_clients(
        WorldConfig::new(0xB7E).with_link(LinkConfig::default().with_delay(ms(20))),
        2,
    );
    w.login_all(secs(5));
    w.run_for(secs(1));
    let alice = w.peers[0].addr;
    w.with_client(0, |c| c.request_operation(Operation::EX))
        .unwrap();
    w.net
        .set_link(udpchat_sim::SERVER, alice, LinkConfig::blackholed());
    let t = w.now;
    w.run_until(t + secs(4));
    assert_eq!(
        w.server.session_count(),
        1,
        "only bob's session is left: the server forgot alice"
    );
    w.net.clear_link(&udpchat_sim::SERVER, &alice);
    assert!(w.run_until_cond(t + secs(20), |w| w.client(0).closed().is_some()));
    assert_eq!(w.client(0).closed(), Some(&CloseReason::Exit));
}
