//! A client that vanishes without a word (killed: its UDP port closes at
//! once) does not disturb the server or the other users.
//!
//! What the server goes on sending to the closed port (relayed messages,
//! retransmissions) draws ICMP port-unreachable errors. On Windows these
//! surface on the server's one shared socket: its next `recv_from` fails
//! with WSAECONNRESET (10054), whoever the next datagram is from, and that
//! must not end the receive loop. Linux and macOS do not report them on an
//! unconnected socket, so there the test guards the same behaviour without
//! the error.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

#[test]
fn a_vanished_client_does_not_disturb_the_others() {
    let mut server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");

    alice.kill();
    // Until her session times out the server still relays to alice: every
    // datagram and retransmission to her closed port draws an ICMP error.
    for i in 0..5 {
        bob.send("PM");
        bob.send(&format!("hello {i}"));
        bob.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    }
    // A few retransmission rounds to the closed port.
    thread::sleep(Duration::from_secs(2));
    server.assert_running();

    let mut carol = login(server.addr, "carol", "c");
    carol.send("/msg bob still there?");
    carol.expect_line("ok: direct message delivered to bob", TIMEOUT);
    bob.expect_line("[DM from carol] still there?", TIMEOUT);
    bob.send("/msg carol yes");
    bob.expect_line("ok: direct message delivered to carol", TIMEOUT);
    carol.expect_line("[DM from bob] yes", TIMEOUT);
    for client in [&mut bob, &mut carol] {
        exit_cleanly(client);
    }
    server.assert_running();
}
