//! A server that cannot be reached is reported in plain words, soon: a port
//! nothing listens on at once (the ICMP port unreachable the system reports)
//! and a socket that never answers after the connect timeout, both with
//! status 1 before the first login. After a login the client keeps trying,
//! each attempt as long as the connect timeout, not the idle timeout.

mod common;

use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `chatclient 127.0.0.1:PORT alice`, the password in `CHAT_PASSWORD`
/// (a client that gives up at once may be gone before a line could be
/// written to its input).
fn client_of(port: u16) -> Proc {
    let mut cmd = command(CHATCLIENT);
    cmd.arg(format!("127.0.0.1:{port}"))
        .arg("alice")
        .env("CHAT_KNOWN_SERVERS", NULL_FILE)
        .env("CHAT_PASSWORD", "secret");
    Proc::spawn("chatclient", cmd)
}

fn never_said_disconnected(client: &mut Proc) {
    if client.out.seen().iter().any(|l| l.contains("disconnected")) {
        client.fail("a client that never connected said it was disconnected");
    }
}

#[test]
fn a_port_nothing_listens_on_is_reported_at_once() {
    let port = free_udp_port();
    let started = Instant::now();
    let mut client = client_of(port);
    client.expect_line(
        &format!(
            "! nothing is listening on 127.0.0.1:{port}: is chatserver running there, on this \
             port?"
        ),
        Duration::from_secs(3),
    );
    client.expect_exit(1, Duration::from_secs(3));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    never_said_disconnected(&mut client);
}

#[test]
fn a_server_that_never_answers_is_reported_after_the_connect_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port();
    let reader = silent.try_clone().expect("clone");
    // Reads everything, answers nothing.
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while reader.recv(&mut buf).is_ok() {}
    });
    let started = Instant::now();
    let mut client = client_of(port);
    let line = client.expect_prefix(
        &format!("! no answer from 127.0.0.1:{port} within 5 s"),
        Duration::from_secs(7),
    );
    let took = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(7)).contains(&took),
        "{took:?}: {line}"
    );
    client.expect_exit(1, TIMEOUT);
    never_said_disconnected(&mut client);
    drop(silent);
}

#[cfg(unix)]
#[test]
fn after_a_login_each_attempt_gives_up_after_the_connect_timeout_and_retries() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let first = Server::start_on(&users, port, &[]);
    let mut alice = spawn_client_with(first.addr, "alice", Password::Stdin("a"), &["--reconnect"]);
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &first.proc.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    alice.expect_prefix(
        "! disconnected: the server is shutting down; reconnecting in 1 s",
        TIMEOUT,
    );
    let gone = Instant::now();
    drop(first);
    // Nothing listens: the first attempt keeps knocking for 5 s, then the
    // next one is due.
    alice.expect_line("Reconnecting as alice (attempt 1)...", TIMEOUT);
    alice.expect_prefix(
        "! disconnected: no answer from the server; reconnecting in 2 s",
        Duration::from_secs(9),
    );
    assert!(
        gone.elapsed() < Duration::from_secs(9),
        "{:?}",
        gone.elapsed()
    );
    let _second = Server::start_on(&users, port, &[]);
    alice.expect_prefix("logged in as alice; online: ", Duration::from_secs(15));
    exit_cleanly(&mut alice);
}
