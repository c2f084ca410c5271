//! EX (or end of input) logs the user out: the others see them leave and
//! they are no longer in the online list.

mod common;

use common::*;

#[test]
fn ex_removes_the_user_from_the_online_list() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    let mut carol = login(server.addr, "carol", "c");
    alice.send("/who");
    let online = alice.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice", "bob", "carol"]));

    bob.send("EX");
    bob.expect_line("bye", TIMEOUT);
    bob.expect_exit(0, TIMEOUT);
    alice.expect_line("* bob left (exit)", TIMEOUT);
    carol.expect_line("* bob left (exit)", TIMEOUT);

    alice.send("/who");
    let online = alice.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice", "carol"]));

    // End of input counts as EX.
    exit_cleanly(&mut carol);
    alice.expect_line("* carol left (exit)", TIMEOUT);
    alice.send("/who");
    alice.expect_line("online: alice", TIMEOUT);

    // A PM now reaches nobody.
    alice.send("PM");
    alice.send("all alone");
    alice.expect_line("ok: public message delivered to 0 users", TIMEOUT);
    exit_cleanly(&mut alice);
    assert_eq!(bob.count("[alice] all alone"), 0);
}
