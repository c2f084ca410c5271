//! SIGHUP stops the server as SIGTERM does: the clients online are told it
//! is going away, and it exits 0.
// Windows has no SIGHUP.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn sighup_stops_the_server_gracefully() {
    let mut server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let status = Command::new("kill")
        .args(["-HUP", &server.proc.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    alice.expect_line("! disconnected: the server is shutting down", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
    server.proc.expect_exit(0, Duration::from_secs(5));
    let log = server.proc.err.text();
    assert!(
        log.contains("shut down; user store and chat store are on disk"),
        "{log}"
    );
}
