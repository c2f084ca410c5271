//! A wrong password ends a piped client (the next input line is chat, not
//! a second guess), as it does with CHAT_PASSWORD.

mod common;

use common::*;

/// A server where alice is registered with the password "right".
fn server_with_alice() -> Server {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "right");
    exit_cleanly(&mut alice);
    server
}

#[test]
fn wrong_password_from_stdin_ends_the_client() {
    let server = server_with_alice();
    let mut alice = spawn_client(server.addr, "alice", Password::Stdin("wrong"));
    // The next line is chat text: it is never tried as a password.
    alice.send("right");
    alice.expect_line("alice is registered: enter the password.", TIMEOUT);
    alice.expect_prefix("! login failed: ", TIMEOUT);
    alice.expect_line(
        "! the password from the first input line was refused",
        TIMEOUT,
    );
    alice.expect_exit(1, TIMEOUT);
    assert!(
        !alice
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("logged in as")),
        "never logged in: {:?}",
        alice.out.seen()
    );
}

#[test]
fn wrong_password_then_end_of_input_fails() {
    let server = server_with_alice();
    let mut alice = spawn_client(server.addr, "alice", Password::Stdin("wrong"));
    alice.close_stdin();
    alice.expect_prefix("! login failed: ", TIMEOUT);
    alice.expect_line(
        "! the password from the first input line was refused",
        TIMEOUT,
    );
    alice.expect_exit(1, TIMEOUT);
}

#[test]
fn wrong_chat_password_is_not_retried() {
    let server = server_with_alice();
    let mut alice = spawn_client(server.addr, "alice", Password::Env("wrong"));
    // With CHAT_PASSWORD, input lines are commands, never passwords.
    alice.send("right");
    alice.expect_prefix("! login failed: ", TIMEOUT);
    alice.expect_line("! login refused with CHAT_PASSWORD", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
    assert!(
        !alice
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("logged in as")),
        "never logged in: {:?}",
        alice.out.seen()
    );
}

#[test]
fn right_chat_password_logs_in_and_input_is_commands() {
    let server = server_with_alice();
    let mut alice = spawn_client(server.addr, "alice", Password::Env("right"));
    alice.send("/who");
    alice.expect_line("logged in as alice; online: alice", TIMEOUT);
    alice.expect_line("online: alice", TIMEOUT);
    exit_cleanly(&mut alice);
}
