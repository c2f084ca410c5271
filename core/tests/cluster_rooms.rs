//! Rooms kept consistent between two nodes of a cluster, driven in memory:
//! two servers, each with its own consoles (the simulation crate's
//! [`Consoles`]), and what one node publishes handed to the other as the
//! JSON the cluster channel carries.

use udpchat_core::server::{ClusterMessage, ServerConfig};
use udpchat_sim::{Consoles, fake_hash};

fn node(name: &str) -> Consoles {
    let mut net = Consoles::new(ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    });
    net.server.set_node(name.to_string());
    net
}

/// Hands what `from` published to `to`, through its JSON form, and the
/// accounts `from` registered (the cluster's account hash does that).
fn relay(from: &mut Consoles, to: &mut Consoles) {
    let node = "other".to_string();
    for account in &from.accounts {
        if !to.server.has_user(&account.name) {
            let m = ClusterMessage::Account {
                node: node.clone(),
                name: account.name.clone(),
                password_hash: fake_hash("x"),
            };
            to.server.handle_remote(to.now, m);
        }
    }
    while let Some(m) = from.server.poll_publish() {
        let m = ClusterMessage::decode(&m.encode()).expect("reads back");
        to.server.handle_remote(to.now, m);
    }
}

/// Steps both nodes, relaying both ways, until `done` holds.
fn run_until(a: &mut Consoles, b: &mut Consoles, done: impl Fn(&Consoles, &Consoles) -> bool) {
    run(a, b, false, done);
}

/// [`run_until`], with one store for both nodes, as a cluster's Redis is:
/// in each step node a answers its requests first, then node b.
fn run_shared_until(
    a: &mut Consoles,
    b: &mut Consoles,
    done: impl Fn(&Consoles, &Consoles) -> bool,
) {
    run(a, b, true, done);
}

fn run(
    a: &mut Consoles,
    b: &mut Consoles,
    shared: bool,
    done: impl Fn(&Consoles, &Consoles) -> bool,
) {
    run_cut(a, b, shared, false, done);
}

/// [`run`]; with `cut`, what node a publishes is lost to node b (b's
/// subscription is down).
fn run_cut(
    a: &mut Consoles,
    b: &mut Consoles,
    shared: bool,
    cut: bool,
    done: impl Fn(&Consoles, &Consoles) -> bool,
) {
    for _ in 0..2000 {
        if done(a, b) {
            return;
        }
        a.step();
        if shared {
            b.store = a.store.clone();
        }
        b.step();
        if shared {
            a.store = b.store.clone();
        }
        if cut {
            while a.server.poll_publish().is_some() {}
        } else {
            relay(a, b);
        }
        relay(b, a);
    }
    panic!(
        "not done: a {:#?}, b {:#?}",
        a.users.iter().map(|u| u.lines()).collect::<Vec<_>>(),
        b.users.iter().map(|u| u.lines()).collect::<Vec<_>>()
    );
}

fn saw(net: &Consoles, i: usize, line: &str) -> bool {
    net.users[i].lines().iter().any(|l| l == line)
}

fn saw_prefix(net: &Consoles, i: usize, prefix: &str) -> bool {
    net.users[i].lines().iter().any(|l| l.starts_with(prefix))
}

#[test]
fn roles_changed_on_one_node_are_enforced_on_the_other() {
    let (mut a, mut b) = (node("a"), node("b"));
    let alice = a.join("alice", "a", false);
    let bob = b.join("bob", "b", false);
    let carol = b.join("carol", "c", false);
    a.line(alice, "/join #r");
    run_until(&mut a, &mut b, |a, _| {
        saw(a, alice, "* you joined #r; members: alice")
    });
    b.line(bob, "/join #r");
    run_until(&mut a, &mut b, |a, _| saw(a, alice, "* bob joined #r"));
    b.line(carol, "/join #r");
    run_until(&mut a, &mut b, |a, _| saw(a, alice, "* carol joined #r"));

    // A mute made on node a holds on node b.
    a.line(alice, "/mute carol");
    run_until(&mut a, &mut b, |_, b| {
        saw(b, carol, "-!- alice muted carol in #r")
    });
    assert!(saw(&b, bob, "-!- alice muted carol in #r"));
    b.line(carol, "anyone?");
    run_until(&mut a, &mut b, |_, b| {
        saw(
            b,
            carol,
            "! not sent to #r: \"anyone?\" (you are muted in #r)",
        )
    });
    // Node b knows the owner: an operator named on a may act on b.
    a.line(alice, "/op bob");
    run_until(&mut a, &mut b, |_, b| {
        saw(b, carol, "-!- bob is now an operator of #r (by alice)")
    });
    b.line(bob, "/unmute carol");
    run_until(&mut a, &mut b, |a, _| {
        saw(a, alice, "-!- bob unmuted carol in #r")
    });
    b.line(carol, "heard now");
    run_until(&mut a, &mut b, |_, b| {
        saw_prefix(b, carol, "ok: message stored in #r")
    });

    // A kick made on a removes carol's session on b from the room.
    a.line(alice, "/kick #r carol be nice");
    run_until(&mut a, &mut b, |_, b| {
        saw(b, carol, "-!- alice removed you from #r: be nice")
    });
    run_until(&mut a, &mut b, |_, b| {
        saw(b, bob, "* carol left #r (kicked by alice: be nice)")
    });
    b.line(carol, "/msg #r still here?");
    run_until(&mut a, &mut b, |_, b| {
        saw_prefix(b, carol, "! not sent to #r")
            && b.users[carol]
                .lines()
                .last()
                .is_some_and(|l| l.contains("not a member"))
    });

    // A ban made on a keeps carol out on b.
    a.line(alice, "/ban #r carol 1h");
    run_until(&mut a, &mut b, |a, _| {
        saw(a, alice, "done: room_ban #r carol")
    });
    relay(&mut a, &mut b);
    b.line(carol, "/join #r");
    run_until(&mut a, &mut b, |_, b| {
        saw_prefix(b, carol, "! you are banned from #r for ")
    });
}

#[test]
fn two_nodes_making_one_room_at_once_agree_on_its_epoch_and_owner() {
    let (mut a, mut b) = (node("a"), node("b"));
    let alice = a.join("alice", "a", false);
    let bob = b.join("bob", "b", false);
    for round in 0..3 {
        let room = format!("#same{round}");
        // Both ask in the same step: each node makes the room up.
        a.line(alice, &format!("/join {room}"));
        b.line(bob, &format!("/join {room}"));
        let joined = format!("* you joined {room}; members: ");
        run_shared_until(&mut a, &mut b, |a, b| {
            saw_prefix(a, alice, &joined) && saw_prefix(b, bob, &joined)
        });
        // Node b found node a's room in the store and took it.
        assert!(saw(
            &b,
            bob,
            &format!("* you joined {room}; members: alice, bob")
        ));
        run_shared_until(&mut a, &mut b, |a, _| {
            saw(a, alice, &format!("* bob joined {room}"))
        });
        let on_a = a
            .server
            .room_epoch_and_owner(&room)
            .map(|(e, o)| (e.to_string(), o.to_string()));
        let on_b = b
            .server
            .room_epoch_and_owner(&room)
            .map(|(e, o)| (e.to_string(), o.to_string()));
        assert_eq!(on_a, on_b);
        assert_eq!(on_a.map(|(_, o)| o), Some("alice".to_string()));
        // The owner check gives one answer on both nodes.
        b.line(bob, &format!("/lock-topic {room} on"));
        run_shared_until(&mut a, &mut b, |_, b| {
            saw(
                b,
                bob,
                &format!("! only its owner and operators may do that in {room}"),
            )
        });
    }
}

#[test]
fn what_a_node_missed_while_cut_off_is_announced_when_it_resynchronises() {
    let (mut a, mut b) = (node("a"), node("b"));
    let alice = a.join("alice", "a", false);
    let carol = a.join("carol", "c", false);
    let dave = a.join("dave", "d", false);
    let bob = b.join("bob", "b", false);
    a.line(alice, "/join #r");
    run_shared_until(&mut a, &mut b, |a, _| {
        saw_prefix(a, alice, "* you joined #r")
    });
    a.line(dave, "/join #r");
    run_shared_until(&mut a, &mut b, |a, _| saw(a, alice, "* dave joined #r"));
    b.line(bob, "/join #r");
    run_shared_until(&mut a, &mut b, |a, _| saw(a, alice, "* bob joined #r"));
    run_shared_until(&mut a, &mut b, |_, b| b.server.room_count() == 1);

    // Node b hears nothing of node a for a while.
    a.line(carol, "/join #r");
    a.line(dave, "/part #r");
    a.line(alice, "/topic #r while you were away");
    run_cut(&mut a, &mut b, true, true, |a, _| {
        saw(a, alice, "* carol joined #r")
            && saw(a, alice, "* dave left #r")
            && saw(a, alice, "* alice set the topic of #r: while you were away")
    });
    assert!(!saw(&b, bob, "* carol joined #r"));

    // Subscribed again: the snapshot tells it.
    let rooms = a.store.snapshot(a.config.room_memory()).rooms;
    let now = b.now;
    b.server.sync_rooms(now, rooms);
    run_shared_until(&mut a, &mut b, |_, b| {
        saw(b, bob, "* carol joined #r")
            && saw(b, bob, "* dave left #r")
            && saw(b, bob, "topic of #r: while you were away")
    });
    // Once only, and live again after.
    let rooms = a.store.snapshot(a.config.room_memory()).rooms;
    let now = b.now;
    b.server.sync_rooms(now, rooms);
    a.line(carol, "/part #r");
    run_shared_until(&mut a, &mut b, |_, b| saw(b, bob, "* carol left #r"));
    assert_eq!(
        b.users[bob]
            .lines()
            .iter()
            .filter(|l| *l == "* carol joined #r")
            .count(),
        1
    );
}
