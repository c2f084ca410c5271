//! Server down: the guest reports it and exits 1; the host does not panic.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{ChatServer, assert_exit, wasm_client};

/// How long the client may take to give up on a silent server.
const GIVE_UP: Duration = Duration::from_secs(40);

#[test]
fn no_server_at_all() {
    // A port that was free a moment ago: nothing listens there.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let mut alice = wasm_client(port, "alice", "secret");
    alice.expect("Connecting as alice");
    alice.expect_within("! disconnected", GIVE_UP);
    let status = alice.wait_exit(Duration::from_secs(5));
    assert_exit(&mut alice, status, 1);
    // The ICMP port-unreachable hints reached the guest, which said so once.
    assert!(
        alice.stderr().contains("unreachable"),
        "{}",
        alice.transcript()
    );
}

#[test]
fn server_dies_during_the_session() {
    let mut server = ChatServer::start();
    let mut alice = wasm_client(server.port, "alice", "secret");
    alice.expect("logged in as alice");
    server.kill();
    alice.expect_within("! disconnected", GIVE_UP);
    let status = alice.wait_exit(Duration::from_secs(5));
    assert_exit(&mut alice, status, 1);
}
