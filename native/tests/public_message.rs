//! PM reaches every other online user exactly once, and not the sender.

mod common;

use common::*;

#[test]
fn pm_reaches_every_other_online_user_once() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    let mut carol = login(server.addr, "carol", "c");
    // dave is registered but offline: a PM does not count him.
    let mut dave = login(server.addr, "dave", "d");
    exit_cleanly(&mut dave);
    for watcher in [&mut alice, &mut bob] {
        watcher.expect_line("* dave left (exit)", TIMEOUT);
    }

    alice.send("PM");
    alice.send("hello everyone, from alice");
    alice.expect_line("ok: public message delivered to 2 users", TIMEOUT);
    bob.expect_line("[alice] hello everyone, from alice", TIMEOUT);
    carol.expect_line("[alice] hello everyone, from alice", TIMEOUT);

    // A second message, from someone else, the other way round.
    carol.send("PM");
    carol.send("carol here");
    carol.expect_line("ok: public message delivered to 2 users", TIMEOUT);
    alice.expect_line("[carol] carol here", TIMEOUT);
    bob.expect_line("[carol] carol here", TIMEOUT);

    // Leaving flushes every line a duplicate could have produced.
    for client in [&mut alice, &mut bob, &mut carol] {
        exit_cleanly(client);
    }
    assert_eq!(bob.count("[alice] hello everyone, from alice"), 1);
    assert_eq!(carol.count("[alice] hello everyone, from alice"), 1);
    assert_eq!(
        alice.count("[alice] hello everyone, from alice"),
        0,
        "not echoed to the sender"
    );
    assert_eq!(alice.count("[carol] carol here"), 1);
    assert_eq!(bob.count("[carol] carol here"), 1);
    assert_eq!(
        carol.count("[carol] carol here"),
        0,
        "not echoed to the sender"
    );
    assert_eq!(dave.count("[alice] hello everyone, from alice"), 0);
}

#[test]
fn pm_with_nobody_else_online_is_delivered_to_zero_users() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    alice.send("PM");
    alice.send("anyone?");
    alice.expect_line("ok: public message delivered to 0 users", TIMEOUT);
    exit_cleanly(&mut alice);
    assert_eq!(alice.count("[alice] anyone?"), 0);
}
