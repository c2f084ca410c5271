//! Nothing typed is lost: lines piped faster than the server's message rate
//! all arrive, in order, and the client exits 0 only when every one was
//! delivered; a line that could not be sent makes the exit status 1.

mod common;

use std::time::Duration;

use common::*;

/// A server with the default message limit (the test servers lift it).
fn server_with_default_rate() -> (Server, tempfile::TempDir) {
    let dir = temp_dir();
    let server = Server::start_with(
        &dir.path().join("chat_users.json"),
        &["--message-burst", "10", "--messages-per-sec", "5"],
    );
    (server, dir)
}

#[test]
fn a_hundred_piped_lines_all_arrive_in_order() {
    let (server, _dir) = server_with_default_rate();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = login(server.addr, "alice", "a");
    bob.expect_line("* alice joined", TIMEOUT);
    // As fast as a pipe goes: far beyond 10 at once, then 5 a second.
    for i in 1..=100 {
        alice.send(&format!("line {i}"));
    }
    alice.close_stdin();
    // 10 at once, then about 4.5 a second: some 20 s.
    for i in 1..=100 {
        bob.expect_line(&format!("[alice] line {i}"), TIMEOUT);
    }
    assert!(
        alice.out.seen().iter().any(|l| l.starts_with("(queued: ")),
        "the wait is shown: {}",
        alice.transcript()
    );
    // Every line confirmed, then EX.
    alice.expect_exit(0, Duration::from_secs(30));
    assert!(
        alice.count("ok: public message delivered to 1 user") == 100,
        "{}",
        alice.transcript()
    );
    assert!(
        !alice
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("! ") && l.contains("rate")),
        "no line refused: {}",
        alice.transcript()
    );
    exit_cleanly(&mut bob);
    assert_eq!(bob.count("[alice] line 100"), 1);
}

#[test]
fn a_line_that_could_not_be_sent_makes_the_exit_status_1() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    alice.send("/msg nobody are you there?");
    alice.close_stdin();
    alice.expect_prefix("! not sent to nobody: \"are you there?\"", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
}
