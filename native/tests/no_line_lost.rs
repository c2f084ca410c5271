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

#[test]
fn with_log_every_event_is_kept_in_the_chat_log() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let logs = temp_dir();
    let mut cmd = command(CHATCLIENT);
    cmd.arg("--log")
        .args([
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
        ])
        .arg("alice")
        .env("CHAT_PASSWORD", "a")
        .env("CHAT_KNOWN_SERVERS", NULL_FILE)
        .env("CHAT_LOG_DIR", logs.path());
    let mut alice = Proc::spawn("chatclient alice", cmd);
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);
    bob.send("for the record");
    alice.expect_line("[bob] for the record", TIMEOUT);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
    let path = logs
        .path()
        .join(format!("127.0.0.1_{}-alice.log", server.addr.port()));
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = log
        .lines()
        .find(|l| l.ends_with(" [bob] for the record"))
        .unwrap_or_else(|| panic!("not logged: {log}"));
    assert!(
        line.starts_with("20") && line.contains('T'),
        "a UTC time first: {line}"
    );
    assert!(log.lines().any(|l| l.ends_with(" bye")), "{log}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("the log")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private to the user: {mode:o}");
    }
}
