//! The wasm client talks to a real `chatserver` together with native
//! clients: PM and DM in both directions, then EX.

mod common;

use common::{
    ChatServer, Proc, TIMEOUT, assert_exit, host_runner, module, native_client, wasm_client,
};

#[test]
fn wasm_and_native_clients_exchange_public_and_direct_messages() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bob", "bob-secret");
    bob.expect("logged in as bob");
    let mut alice = wasm_client(server.port, "alice", "alice-secret");
    alice.expect("registered and logged in as alice");
    bob.expect("* alice joined");

    // PM, wasm to native.
    alice.send_line("PM");
    alice.send_line("hello from the sandbox");
    bob.expect("[alice] hello from the sandbox");
    alice.expect("ok: public message delivered to 1 user");

    // PM, native to wasm.
    bob.send_line("PM");
    bob.send_line("hello from outside");
    alice.expect("[bob] hello from outside");

    // DM, wasm to native.
    alice.send_line("DM");
    alice.expect("online:");
    alice.send_line("bob");
    alice.send_line("psst, bob");
    bob.expect("[DM from alice] psst, bob");
    alice.expect("ok: direct message delivered to bob");

    // DM, native to wasm.
    bob.send_line("DM");
    bob.send_line("alice");
    bob.send_line("psst, alice");
    alice.expect("[DM from bob] psst, alice");
    bob.expect("ok: direct message delivered to alice");

    // EX from the wasm client: it says goodbye and exits 0; bob sees it go.
    alice.send_line("EX");
    alice.expect("bye");
    let status = alice.wait_exit(TIMEOUT);
    assert_exit(&mut alice, status, 0);
    bob.expect("* alice left");

    bob.send_line("EX");
    let status = bob.wait_exit(TIMEOUT);
    assert_exit(&mut bob, status, 0);
}

#[test]
fn piped_password_and_end_of_input_work_as_in_chatclient() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bob", "bob-secret");
    bob.expect("logged in as bob");

    // No CHAT_PASSWORD and a pipe on stdin: the first line is the password,
    // and every line may be written at once.
    let mut carol = Proc::spawn(
        "host-runner carol",
        host_runner(&module("wasi-client"), server.port, "carol"),
    );
    for line in [
        "carol-secret",
        "PM",
        "all at once",
        "DM",
        "bob",
        "and direct",
    ] {
        carol.send_line(line);
    }
    carol.close_stdin();
    bob.expect("[carol] all at once");
    bob.expect("[DM from carol] and direct");
    // End of input behaves like EX.
    carol.expect("bye");
    let status = carol.wait_exit(TIMEOUT);
    assert_exit(&mut carol, status, 0);

    // A wrong password from the environment is not retried: exit 1.
    let mut mallory = wasm_client(server.port, "carol", "not-carols");
    mallory.expect("! login refused with CHAT_PASSWORD");
    let status = mallory.wait_exit(TIMEOUT);
    assert_exit(&mut mallory, status, 1);
}

/// With `--json`, as chatclient: one JSON object per event, and after the
/// server went away a reconnection and a new login over the same
/// conversation, with the same password.
#[test]
fn json_events_and_a_reconnection_as_in_chatclient() {
    let mut server = ChatServer::start();
    let mut cmd = host_runner(&module("wasi-client"), server.port, "alice");
    cmd.env("CHAT_PASSWORD", "alice-secret").arg("--json");
    let mut alice = Proc::spawn("host-runner alice", cmd);
    let logged_in = alice.expect(r#""type":"logged_in""#);
    assert!(
        logged_in.starts_with(r#"{"time":""#) && logged_in.contains(r#""user":"alice""#),
        "{logged_in}"
    );
    server.restart();
    alice.expect(r#""type":"disconnect""#);
    let again = alice.expect_within(r#""type":"logged_in""#, TIMEOUT * 2);
    assert!(again.contains(r#""new_user":false"#), "{again}");
    let mut bob = native_client(server.port, "bob", "bob-secret");
    bob.expect("logged in as bob");
    bob.send_line("after the restart");
    alice.expect(r#""text":"after the restart""#);
    alice.close_stdin();
    alice.expect(r#""type":"bye""#);
    let status = alice.wait_exit(TIMEOUT);
    assert_exit(&mut alice, status, 0);
}
