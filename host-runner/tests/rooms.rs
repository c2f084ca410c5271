//! The wasm client joins a room on a real `chatserver` and talks in it
//! with a native client.

mod common;

use common::{ChatServer, TIMEOUT, assert_exit, native_client, wasm_client};

#[test]
fn wasm_client_joins_a_room_and_sees_its_messages() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bob", "bob-secret");
    bob.expect("logged in as bob");
    let mut alice = wasm_client(server.port, "alice", "alice-secret");
    alice.expect("registered and logged in as alice");

    bob.send_line("/join #rust");
    bob.expect("* you joined #rust");
    alice.send_line("/join #rust");
    alice.expect("* you joined #rust; members: ");
    bob.expect("* alice joined #rust");

    bob.send_line("hello sandbox");
    alice.expect("[#rust] <bob> hello sandbox");
    // Plain lines from the wasm client go to the room it joined.
    alice.send_line("hello outside");
    bob.expect("[#rust] <alice> hello outside");

    alice.send_line("EX");
    alice.expect("bye");
    let status = alice.wait_exit(TIMEOUT);
    assert_exit(&mut alice, status, 0);
    bob.send_line("EX");
    let status = bob.wait_exit(TIMEOUT);
    assert_exit(&mut bob, status, 0);
}
