//! `--fallback`: the sandboxed client goes on with another server of the
//! same chat when its server dies, as `chatclient --fallback` does. The two
//! servers share one key file (the client's pin holds on both) and the
//! user has an account on each.

mod common;

use common::{ChatServer, TIMEOUT, assert_exit, module, native_client};

#[test]
fn the_client_continues_on_the_fallback_when_its_server_dies() {
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keys.path().join("chat_server.key");
    let key = key.to_str().expect("a UTF-8 path");
    let mut first = ChatServer::start_with(&["--key", key]);
    let second = ChatServer::start_with(&["--key", key]);
    // alice's account on the second server, with the same password.
    let mut earlier = native_client(second.port, "alice", "alice-secret");
    earlier.expect("registered and logged in as alice");
    earlier.close_stdin();
    let status = earlier.wait_exit(TIMEOUT);
    assert_exit(&mut earlier, status, 0);
    let mut bob = native_client(second.port, "bob", "bob-secret");
    bob.expect("logged in as bob");

    let mut cmd = common::host_runner(&module("wasi-client"), first.port, "alice");
    cmd.args([
        "--reconnect",
        "--fallback",
        &format!("127.0.0.1:{}", second.port),
    ])
    .env("CHAT_PASSWORD", "alice-secret");
    let mut alice = common::Proc::spawn("host-runner alice", cmd);
    alice.expect("registered and logged in as alice; online: alice");

    first.kill();
    // What the client sends next meets nothing listening: it gives the
    // server up at once and turns to the fallback.
    alice.send_line("/who");
    alice.expect("! disconnected");
    alice.expect("Reconnecting as alice (attempt 1)");
    alice.expect("logged in as alice; online: alice, bob");
    bob.expect("* alice joined");
    bob.send_line("/msg alice found you on the second server");
    alice.expect("[DM from bob] found you on the second server");
    alice.send_line("/msg bob hello from the sandbox");
    bob.expect("[DM from alice] hello from the sandbox");

    alice.close_stdin();
    alice.expect("bye");
    let status = alice.wait_exit(TIMEOUT);
    assert_exit(&mut alice, status, 0);
    bob.expect("* alice left");
}
