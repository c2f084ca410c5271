//! DM to a name with no account is refused with a clear message naming the
//! text that was not sent, and the client carries on; at the end its exit
//! status says a line was not sent. A DM to a registered user who is not
//! online is stored for them, and the sender is told so.

mod common;

use common::*;

/// A server where carol is registered but offline, and alice is online.
fn alice_and_offline_carol() -> (Server, Proc) {
    let server = Server::start();
    let mut carol = login(server.addr, "carol", "c");
    exit_cleanly(&mut carol);
    let alice = login(server.addr, "alice", "a");
    (server, alice)
}

#[test]
fn dm_to_an_unknown_user_is_refused_and_to_an_offline_one_stored() {
    let (_server, mut alice) = alice_and_offline_carol();

    alice.send("DM");
    let online = alice.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice"]));
    alice.send("zed");
    alice.send("are you there?");
    alice.expect_line(
        "! not sent to zed: \"are you there?\" (there is no user named zed)",
        TIMEOUT,
    );

    alice.send("DM");
    alice.expect_prefix("online: ", TIMEOUT);
    alice.send("carol");
    alice.send("are you there?");
    alice.expect_line(
        "ok: direct message stored for carol (offline); delivered when they log in",
        TIMEOUT,
    );

    alice.send("/msg zed hello");
    alice.expect_line(
        "! not sent to zed: \"hello\" (there is no user named zed)",
        TIMEOUT,
    );
    alice.send("/msg carol hello");
    alice.expect_line(
        "ok: direct message stored for carol (offline); delivered when they log in",
        TIMEOUT,
    );

    // Still at the menu, still logged in.
    alice.send("/who");
    alice.expect_line("online: alice", TIMEOUT);
    // Lines were not sent: the exit status says so.
    alice.close_stdin();
    alice.expect_line("bye", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
    assert!(
        !alice
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("ok: direct message delivered")),
        "no DM was delivered: {:?}",
        alice.out.seen()
    );
    // Carol logs in and finds both, marked as sent while she was away.
    let mut carol = login(_server.addr, "carol", "c");
    carol.expect_with(
        &|l| l.contains("alice") && l.ends_with("are you there?"),
        "the first stored DM",
        TIMEOUT,
    );
    carol.expect_with(
        &|l| l.contains("alice") && l.ends_with("hello"),
        "the second stored DM",
        TIMEOUT,
    );
    exit_cleanly(&mut carol);
}

#[test]
fn dm_to_an_invalid_name_is_refused_locally() {
    let (_server, mut alice) = alice_and_offline_carol();
    alice.send("DM");
    alice.expect_prefix("online: ", TIMEOUT);
    alice.send("no such name");
    alice.expect_line(
        "! DM cancelled: username has the character ' '; use letters, digits, '_', '-' and '.'",
        TIMEOUT,
    );
    // The line meant as the DM's text is set aside, not sent publicly.
    alice.send("meant for one");
    alice.expect_prefix("! not sent: \"meant for one\"", TIMEOUT);
    alice.send("/who");
    alice.expect_line("online: alice", TIMEOUT);
    alice.close_stdin();
    alice.expect_line("bye", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
}

/// A script piped in one go: the refusal of the first DM arrives while the
/// console waits for the server to accept the next PM.
#[test]
fn piped_script_continues_after_a_refused_dm() {
    let server = Server::start();
    let mut carol = login(server.addr, "carol", "c");
    exit_cleanly(&mut carol);
    let mut bob = login(server.addr, "bob", "b");

    let mut alice = spawn_client(server.addr, "alice", Password::Stdin("a"));
    for line in ["/msg zed are you there?", "PM", "after the refusal", "EX"] {
        alice.send(line);
    }
    alice.expect_line(
        "! not sent to zed: \"are you there?\" (there is no user named zed)",
        TIMEOUT,
    );
    alice.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    bob.expect_line("[alice] after the refusal", TIMEOUT);
    alice.expect_line("bye", TIMEOUT);
    // The script ran to its end, but one line was not sent.
    alice.expect_exit(1, TIMEOUT);
    exit_cleanly(&mut bob);
}
