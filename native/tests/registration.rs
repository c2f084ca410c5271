//! A new username is registered on first login, stored as an argon2id hash,
//! and the next login with it is a plain login.

mod common;

use common::*;

#[test]
fn first_login_registers_and_next_login_logs_in() {
    let server = Server::start();

    let mut alice = spawn_client(server.addr, "alice", Password::Stdin("tulips in spring"));
    alice.expect_line("Connecting as alice...", TIMEOUT);
    alice.expect_line(
        "alice is a new user: choose a password to register.",
        TIMEOUT,
    );
    alice.expect_line("registered and logged in as alice; online: alice", TIMEOUT);
    exit_cleanly(&mut alice);

    let stored = std::fs::read_to_string(&server.users).expect("the user store exists");
    assert!(stored.contains("\"alice\""), "alice is stored: {stored}");
    assert!(
        stored.contains("$argon2id$"),
        "as an argon2id hash: {stored}"
    );
    assert!(
        !stored.contains("tulips in spring"),
        "the password itself is not stored: {stored}"
    );

    let mut again = spawn_client(server.addr, "alice", Password::Stdin("tulips in spring"));
    again.expect_line("alice is registered: enter the password.", TIMEOUT);
    again.expect_line("logged in as alice; online: alice", TIMEOUT);
    exit_cleanly(&mut again);
    assert_eq!(
        again.count("registered and logged in as alice; online: alice"),
        0,
        "not registered twice"
    );
}

#[test]
fn longest_username_registers() {
    let server = Server::start();
    let name = "a".repeat(32);
    let mut client = spawn_client(server.addr, &name, Password::Stdin("pw"));
    client.expect_line(
        &format!("registered and logged in as {name}; online: {name}"),
        TIMEOUT,
    );
    exit_cleanly(&mut client);
}

#[test]
fn registered_users_see_each_other_online() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a-pass");
    let mut bob = spawn_client(server.addr, "bob", Password::Stdin("b-pass"));
    let line = bob.expect_prefix("registered and logged in as bob; online: ", TIMEOUT);
    assert_eq!(
        online_set(&line["registered and logged in as bob; ".len()..]),
        names(&["alice", "bob"])
    );
    alice.expect_line("* bob joined", TIMEOUT);
    exit_cleanly(&mut bob);
    exit_cleanly(&mut alice);
}
