//! DM reaches its one recipient, exactly once, and is confirmed to the sender.

mod common;

use common::*;

#[test]
fn dm_reaches_only_its_recipient() {
    let server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    let mut carol = login(server.addr, "carol", "c");

    // The menu flow: DM shows who is online, asks for the recipient, then
    // the text.
    alice.send("DM");
    let online = alice.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice", "bob", "carol"]));
    alice.send("bob");
    alice.send("psst, bob");
    alice.expect_line("ok: direct message delivered to bob", TIMEOUT);
    bob.expect_line("[DM from alice] psst, bob", TIMEOUT);

    // The one-line form.
    carol.send("/msg alice hi alice, carol here");
    carol.expect_line("ok: direct message delivered to alice", TIMEOUT);
    alice.expect_line("[DM from carol] hi alice, carol here", TIMEOUT);

    for client in [&mut alice, &mut bob, &mut carol] {
        exit_cleanly(client);
    }
    assert_eq!(bob.count("[DM from alice] psst, bob"), 1);
    assert_eq!(alice.count("[DM from carol] hi alice, carol here"), 1);
    let leaks = |client: &mut Proc, texts: &[&str]| -> Vec<String> {
        client
            .out
            .seen()
            .iter()
            .filter(|l| texts.iter().any(|t| l.contains(t)))
            .cloned()
            .collect()
    };
    let bobs = "psst, bob";
    let alices = "hi alice, carol here";
    assert_eq!(
        leaks(&mut alice, &[bobs]),
        Vec::<String>::new(),
        "alice saw bob's DM"
    );
    assert_eq!(
        leaks(&mut bob, &[alices]),
        Vec::<String>::new(),
        "bob saw alice's DM"
    );
    assert_eq!(
        leaks(&mut carol, &[bobs, alices]),
        Vec::<String>::new(),
        "carol saw a DM"
    );
}
