//! `chatclient --json`: every line on stdout is one JSON object with a
//! `time` and a `type`, and every kind of event shows up: connecting,
//! password_required, logged_in, join, public (and a /me action), direct,
//! confirmation (public and direct), error, online, info, leave,
//! disconnect, bye. Commands are read from stdin as lines.

mod common;

use std::collections::BTreeSet;
#[cfg(unix)]
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Waits for the next JSON line whose fields include all of `fields`.
fn expect_json(client: &mut Proc, fields: Value) -> Value {
    expect_json_within(client, fields, TIMEOUT)
}

fn expect_json_within(client: &mut Proc, fields: Value, timeout: Duration) -> Value {
    let want = fields.as_object().expect("an object").clone();
    let line = client.expect_with(
        &|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| want.iter().all(|(k, expected)| v.get(k) == Some(expected)))
        },
        &format!("a JSON line with {fields}"),
        timeout,
    );
    serde_json::from_str(&line).expect("parsed above")
}

#[test]
fn every_event_is_a_json_line() {
    let server = Server::start();
    let mut alice = spawn_client_with(server.addr, "alice", Password::Env("a"), &["--json"]);
    expect_json(
        &mut alice,
        json!({"type": "connecting", "user": "alice", "attempt": 0}),
    );
    expect_json(
        &mut alice,
        json!({"type": "password_required", "user": "alice", "new_user": true}),
    );
    expect_json(
        &mut alice,
        json!({"type": "logged_in", "user": "alice", "new_user": true, "online": ["alice"]}),
    );

    let mut bob = login(server.addr, "bob", "b");
    expect_json(&mut alice, json!({"type": "join", "user": "bob"}));

    bob.send("hello alice");
    expect_json(
        &mut alice,
        json!({"type": "public", "from": "bob", "text": "hello alice"}),
    );
    bob.send("/me waves");
    expect_json(
        &mut alice,
        json!({"type": "public", "from": "bob", "text": "waves", "action": true}),
    );
    bob.send("/msg alice psst");
    expect_json(
        &mut alice,
        json!({"type": "direct", "from": "bob", "text": "psst"}),
    );

    alice.send("hi bob");
    expect_json(
        &mut alice,
        json!({"type": "confirmation", "kind": "public", "recipients": 1}),
    );
    bob.expect_line("[alice] hi bob", TIMEOUT);
    alice.send("/msg bob hey");
    expect_json(
        &mut alice,
        json!({"type": "confirmation", "kind": "direct", "to": "bob", "recipients": 1}),
    );
    bob.expect_line("[DM from alice] hey", TIMEOUT);
    alice.send("/msg zed hello?");
    expect_json(
        &mut alice,
        json!({"type": "not_sent", "to": "zed", "text": "hello?", "reason": "there is no user named zed"}),
    );
    alice.send("/who");
    expect_json(
        &mut alice,
        json!({"type": "online", "users": ["alice", "bob"]}),
    );
    alice.send("/help who");
    expect_json(&mut alice, json!({"type": "info"}));

    exit_cleanly(&mut bob);
    expect_json(
        &mut alice,
        json!({"type": "leave", "user": "bob", "reason": "exit"}),
    );

    // The server stops: with --json the client reconnects by default.
    #[cfg(unix)]
    {
        let mut server = server;
        let status = Command::new("kill")
            .args(["-TERM", &server.proc.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        expect_json(
            &mut alice,
            json!({"type": "disconnect", "reason": "the server is shutting down", "reconnect_in": 1}),
        );
        server.proc.expect_exit(0, TIMEOUT);
    }
    // Nothing left to wait for: the end of input leaves at once.
    alice.close_stdin();
    expect_json(&mut alice, json!({"type": "bye"}));
    // The DM to zed was not sent: status 1.
    alice.expect_exit(1, TIMEOUT);

    let lines = alice.out.seen().to_vec();
    let mut kinds = BTreeSet::new();
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        let time = v["time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time: {line}"));
        assert!(
            time.ends_with('Z') && time.len() == 24,
            "RFC 3339 UTC: {time}"
        );
        kinds.insert(v["type"].as_str().expect("a type").to_string());
    }
    let mut expected: Vec<&str> = vec![
        "connecting",
        "password_required",
        "logged_in",
        "join",
        "public",
        "direct",
        "confirmation",
        "not_sent",
        "online",
        "info",
        "leave",
        "bye",
    ];
    if cfg!(unix) {
        expected.push("disconnect");
    }
    let expected: BTreeSet<String> = expected.into_iter().map(String::from).collect();
    assert_eq!(kinds, expected, "{lines:#?}");
}

#[test]
fn without_reconnect_a_disconnect_ends_with_1() {
    let server = Server::start();
    let mut alice = spawn_client_with(
        server.addr,
        "alice",
        Password::Env("a"),
        &["--json", "--no-reconnect"],
    );
    expect_json(&mut alice, json!({"type": "logged_in"}));
    drop(server);
    // Killed: the client hears nothing more and gives up after its idle
    // timeout (12 s).
    expect_json_within(
        &mut alice,
        json!({"type": "disconnect", "reconnect_in": null}),
        Duration::from_secs(30),
    );
    alice.expect_exit(1, TIMEOUT);
}

#[test]
fn a_refused_login_is_an_error_line_and_status_1() {
    let server = Server::start();
    let mut first = login(server.addr, "alice", "right");
    exit_cleanly(&mut first);
    let mut alice = spawn_client_with(server.addr, "alice", Password::Env("wrong"), &["--json"]);
    let failed = expect_json(&mut alice, json!({"type": "error"}));
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("login failed: ")),
        "{failed}"
    );
    expect_json(
        &mut alice,
        json!({"type": "error", "message": "login refused with CHAT_PASSWORD"}),
    );
    alice.expect_exit(1, TIMEOUT);
}
