//! Ends of sessions through a lossy network: EX, the server shutting down,
//! and a user logging in again from a new connection while the old one is
//! silent.

mod common;

use common::{Plan, World, WorldConfig, ms, secs};
use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::session::Operation;
use udpchat_netem::LinkConfig;

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
        .any(|(_, e)| matches!(e, ClientEvent::Left { user, reason } if user == "alice" && reason == "exit")))));
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
