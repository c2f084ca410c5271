//! Moderation on a real chatserver with real chatclients (PROTOCOL.md
//! §5.12): a suspension ends a live session and refuses the next login;
//! closed and invite-only registration.

mod common;

use common::*;

#[test]
fn a_suspension_ends_a_live_session_and_refuses_the_next_login() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let server = Server::start_with(&users, &["--admin", "alice"]);
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    alice.send("/suspend bob 1h spamming");
    alice.expect_line("done: suspend bob", TIMEOUT);
    let line = bob.expect_prefix(
        "! disconnected: the account bob is suspended until ",
        TIMEOUT,
    );
    assert!(line.ends_with(" (by alice): spamming"), "{line}");
    bob.expect_exit(1, TIMEOUT);
    alice.expect_line("* bob left (suspended)", TIMEOUT);

    // On disk before it was confirmed.
    let store = std::fs::read_to_string(&users).unwrap();
    assert!(store.contains("\"suspended\""), "{store}");
    assert!(store.contains("spamming"), "{store}");

    // The right password is refused, saying why; a wrong one says only
    // that it is wrong.
    let mut again = spawn_client(server.addr, "bob", Password::Stdin("b"));
    let line = again.expect_prefix(
        "! login failed: the account bob is suspended until ",
        TIMEOUT,
    );
    assert!(line.ends_with("spamming"), "{line}");
    again.expect_exit(1, TIMEOUT);
    let mut guess = spawn_client(server.addr, "bob", Password::Stdin("x"));
    guess.expect_prefix("! login failed: wrong password", TIMEOUT);
    guess.expect_exit(1, TIMEOUT);

    // Lifted: bob is back.
    alice.send("/unsuspend bob");
    alice.expect_line("done: unsuspend bob", TIMEOUT);
    let mut bob = login(server.addr, "bob", "b");
    for client in [&mut alice, &mut bob] {
        exit_cleanly(client);
    }
}

#[test]
fn closed_and_invite_only_registration() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let server = Server::start_with(&users, &["--admin", "alice"]);
    let mut alice = login(server.addr, "alice", "a");

    alice.send("/registration closed");
    alice.expect_line("done: registration closed", TIMEOUT);
    let mut carol = spawn_client(server.addr, "carol", Password::Stdin("c"));
    carol.expect_prefix(
        "! login failed: this server registers no new accounts",
        TIMEOUT,
    );
    carol.expect_exit(1, TIMEOUT);

    alice.send("/registration invite");
    alice.expect_line("done: registration invite", TIMEOUT);
    alice.send("/invite");
    let line = alice.expect_prefix("invite code ", TIMEOUT);
    let code = line["invite code ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(code.len(), 16, "{line}");

    let mut dave = spawn_client(server.addr, "dave", Password::Stdin("d"));
    dave.expect_prefix(
        "! login failed: this server registers new accounts by invite only",
        TIMEOUT,
    );
    dave.expect_exit(1, TIMEOUT);

    // The code registers one account: erin's, given as a flag.
    let mut erin = spawn_client_with(
        server.addr,
        "erin",
        Password::Stdin("e"),
        &["--invite", &code],
    );
    erin.expect_prefix("registered and logged in as erin; online: ", TIMEOUT);
    let mut frank = spawn_client_with(
        server.addr,
        "frank",
        Password::Stdin("f"),
        &["--invite", &code],
    );
    frank.expect_prefix(
        "! login failed: that invite code is unknown, expired or already used",
        TIMEOUT,
    );
    frank.expect_exit(1, TIMEOUT);
    // Existing accounts log in as before.
    exit_cleanly(&mut erin);
    let mut erin = login(server.addr, "erin", "e");
    for client in [&mut alice, &mut erin] {
        exit_cleanly(client);
    }
}
