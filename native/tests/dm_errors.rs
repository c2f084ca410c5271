//! DM to a name with no account, or to a registered user who is not online,
//! is refused with a clear message, and the client carries on.

mod common;

use common::*;

/// A server where carol is registered but offline, and alice is online.
fn alice_and_offline_carol() -> (Server, Proc) {
    let server = Server::start();
    let mut carol = login(server.addr, "carol", "c");
    exit_cleanly(&mut carol);
    let alice = login(server.addr, "alice", "a");
    (server, alice)
}

#[test]
fn dm_to_unknown_and_offline_users_is_refused() {
    let (_server, mut alice) = alice_and_offline_carol();

    alice.send("DM");
    let online = alice.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice"]));
    alice.send("zed");
    alice.send("are you there?");
    alice.expect_line("! there is no user named zed", TIMEOUT);

    alice.send("DM");
    alice.expect_prefix("online: ", TIMEOUT);
    alice.send("carol");
    alice.send("are you there?");
    alice.expect_line("! carol is not online", TIMEOUT);

    alice.send("/msg zed hello");
    alice.expect_line("! there is no user named zed", TIMEOUT);
    alice.send("/msg carol hello");
    alice.expect_line("! carol is not online", TIMEOUT);

    // Still at the menu, still logged in.
    alice.send("/who");
    alice.expect_line("online: alice", TIMEOUT);
    exit_cleanly(&mut alice);
    assert!(
        !alice.out.seen().iter().any(|l| l.starts_with("ok: direct")),
        "no DM was confirmed: {:?}",
        alice.out.seen()
    );
}

#[test]
fn dm_to_an_invalid_name_is_refused_locally() {
    let (_server, mut alice) = alice_and_offline_carol();
    alice.send("DM");
    alice.expect_prefix("online: ", TIMEOUT);
    alice.send("no such name");
    alice.expect_line(
        "! username has the character ' '; use letters, digits, '_', '-' and '.'",
        TIMEOUT,
    );
    alice.send("/who");
    alice.expect_line("online: alice", TIMEOUT);
    exit_cleanly(&mut alice);
}

/// A script piped in one go: the refusal of the first DM arrives while the
/// console waits for the server to accept the next PM.
#[test]
fn piped_script_continues_after_a_refused_dm() {
    let server = Server::start();
    let mut carol = login(server.addr, "carol", "c");
    exit_cleanly(&mut carol);
    let mut bob = login(server.addr, "bob", "b");

    let mut alice = spawn_client(server.addr, "alice", Password::Stdin("a"));
    for line in ["/msg carol are you there?", "PM", "after the refusal", "EX"] {
        alice.send(line);
    }
    alice.expect_line("! carol is not online", TIMEOUT);
    alice.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    bob.expect_line("[alice] after the refusal", TIMEOUT);
    alice.expect_line("bye", TIMEOUT);
    alice.expect_exit(0, TIMEOUT);
    exit_cleanly(&mut bob);
}
