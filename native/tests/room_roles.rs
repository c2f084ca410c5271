//! Room roles with real chatclients on a real chatserver: an owner names
//! an operator, who mutes, kicks and bans a member; the roles, the mute
//! and the ban are on disk and outlive a crash of the server (SIGKILL).

mod common;

use common::*;

#[test]
fn roles_mutes_and_bans_work_and_outlive_a_crash() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let mut server = Server::start_on(&users, port, &[]);
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    let mut carol = login(server.addr, "carol", "c");
    alice.send("/join #r");
    alice.expect_line("* you joined #r; members: alice", TIMEOUT);
    bob.send("/join #r");
    alice.expect_line("* bob joined #r", TIMEOUT);
    carol.send("/join #r");
    alice.expect_line("* carol joined #r", TIMEOUT);

    alice.send("/op bob");
    alice.expect_line("done: room_op #r bob", TIMEOUT);
    carol.expect_line("-!- bob is now an operator of #r (by alice)", TIMEOUT);
    bob.send("/mute carol");
    bob.expect_line("done: room_mute #r carol", TIMEOUT);
    carol.expect_line("-!- bob muted carol in #r", TIMEOUT);
    carol.send("anyone?");
    carol.expect_line(
        "! not sent to #r: \"anyone?\" (you are muted in #r)",
        TIMEOUT,
    );
    bob.send("/lock-topic on");
    bob.expect_line("done: room_mode #r", TIMEOUT);
    bob.send("/kick carol be nice");
    carol.expect_line("-!- bob removed you from #r: be nice", TIMEOUT);
    alice.expect_line("* carol left #r (kicked by bob: be nice)", TIMEOUT);
    bob.send("/ban #r carol 1h");
    bob.expect_line("done: room_ban #r carol", TIMEOUT);

    // A crash: what was confirmed is on disk.
    server.proc.kill();
    drop(server);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.kill();
    }
    let server = Server::start_on(&users, port, &[]);
    let mut carol = login(server.addr, "carol", "c");
    carol.send("/join #r");
    carol.expect_prefix("! you are banned from #r for ", TIMEOUT);
    let mut bob = login(server.addr, "bob", "b");
    bob.send("/names #r");
    bob.expect_line("#r operators: bob; muted: carol", TIMEOUT);
    // Bob is still an operator: he lifts the ban, and carol gets in (still
    // muted, the topic still locked).
    bob.send("/unban #r carol");
    bob.expect_line("done: room_unban #r carol", TIMEOUT);
    carol.send("/join #r");
    carol.expect_prefix("* you joined #r; members: ", TIMEOUT);
    carol.expect_line("#r operators: bob; muted: carol; topic locked", TIMEOUT);
    carol.send("/topic mine");
    carol.expect_line(
        "! the topic of #r is locked: only its operators may set it",
        TIMEOUT,
    );
    for c in [&mut bob, &mut carol] {
        exit_cleanly(c);
    }
}
