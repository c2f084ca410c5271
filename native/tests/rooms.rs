//! Two real chatclients join a room on a real chatserver and talk in it.

mod common;

use common::*;

#[test]
fn two_clients_join_a_room_and_exchange_a_line() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    alice.send("/join #rust");
    alice.expect_line("* you joined #rust; members: alice", TIMEOUT);
    bob.send("/join #rust");
    bob.expect_prefix("* you joined #rust; members: ", TIMEOUT);
    alice.expect_line("* bob joined #rust", TIMEOUT);
    // Plain lines go to the room just joined.
    alice.send("hello room");
    bob.expect_line("[#rust] <alice> hello room", TIMEOUT);
    alice.expect_prefix("ok: message stored in #rust", TIMEOUT);
    bob.send("/msg #rust hi alice");
    alice.expect_line("[#rust] <bob> hi alice", TIMEOUT);
    for client in [&mut alice, &mut bob] {
        exit_cleanly(client);
    }
    assert_eq!(bob.count("[#rust] <alice> hello room"), 1);
    assert_eq!(alice.count("[#rust] <alice> hello room"), 0, "not echoed");
}
