//! The server goes away while a client runs: the client says so, retries
//! with backoff, logs in again by itself (with the password it was given,
//! here on its first input line), and a message sent after the restart
//! arrives. A password refused after the restart, or a server with another
//! key, ends the client with status 1.

mod common;

use std::path::Path;
#[cfg(unix)]
use std::thread;
use std::time::Duration;

use common::*;

/// A client with `--reconnect`, logged in, password on its first line.
fn reconnecting_client(server: &Server, name: &str, password: &str) -> Proc {
    let mut client = spawn_client_with(
        server.addr,
        name,
        Password::Stdin(password),
        &["--reconnect"],
    );
    client.expect_prefix(&format!("registered and logged in as {name}"), TIMEOUT);
    client
}

/// Waits for the client to log in again.
fn expect_relogin(client: &mut Proc, name: &str) {
    client.expect_line(&format!("Reconnecting as {name} (attempt 1)..."), TIMEOUT);
    client.expect_prefix(&format!("logged in as {name}; online: "), TIMEOUT);
}

#[cfg(unix)]
fn terminate(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.proc.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn killed_and_restarted_server() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let mut first = Server::start_on(&users, port, &[]);
    let mut alice = reconnecting_client(&first, "alice", "a");

    // A crash, and a new server on the same address with the same store
    // and key: it answers the old session's keepalives with a reset.
    first.proc.kill();
    drop(first);
    let second = Server::start_on(&users, port, &[]);
    alice.expect_prefix(
        "! disconnected: the server does not know this session (it may have restarted); \
         reconnecting in 1 s",
        TIMEOUT,
    );
    expect_relogin(&mut alice, "alice");

    let mut bob = login(second.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    alice.send("after the restart");
    bob.expect_line("[alice] after the restart", TIMEOUT);
    alice.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    bob.send("welcome back");
    alice.expect_line("[bob] welcome back", TIMEOUT);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
}

#[cfg(unix)]
#[test]
fn stopped_then_restarted_later() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let mut first = Server::start_on(&users, port, &[]);
    let mut alice = reconnecting_client(&first, "alice", "a");
    let mut bob = reconnecting_client(&first, "bob", "b");

    terminate(&first);
    first.proc.expect_exit(0, TIMEOUT);
    drop(first);
    for client in [&mut alice, &mut bob] {
        client.expect_line(
            "! disconnected: the server is shutting down; reconnecting in 1 s \
             (/connect: now, /quit: give up)",
            TIMEOUT,
        );
    }
    // Typed while the server is away: sent once logged in again.
    alice.send("typed while away");
    // Down for a while: the first attempt keeps knocking until it answers.
    thread::sleep(Duration::from_secs(2));
    let _second = Server::start_on(&users, port, &[]);
    expect_relogin(&mut alice, "alice");
    // Sent once logged in again (bob may not be back yet to see it).
    alice.expect_prefix("ok: public message delivered to ", TIMEOUT);
    expect_relogin(&mut bob, "bob");
    alice.send("/msg bob and a direct one");
    bob.expect_line("[DM from alice] and a direct one", TIMEOUT);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
}

/// Registers `name` with `password` in the store `users`, with the key
/// file `key`, on a server of its own.
fn register(users: &Path, key: &Path, name: &str, password: &str) {
    let key = key.to_str().expect("a UTF-8 path");
    let server = Server::start_with(users, &["--key", key]);
    let mut client = login(server.addr, name, password);
    exit_cleanly(&mut client);
}

#[test]
fn a_password_refused_after_the_restart_ends_with_1() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let key = dir.path().join("chat_server.key");
    // Another store, where alice has another password; same server key.
    let other = temp_dir();
    let other_users = other.path().join("chat_users.json");
    let port = free_udp_port();
    let mut first = Server::start_on(&users, port, &[]);
    register(&other_users, &key, "alice", "not a");
    let mut alice = reconnecting_client(&first, "alice", "a");

    first.proc.kill();
    drop(first);
    let key_arg = key.to_str().expect("a UTF-8 path");
    let _second = Server::start_on(&other_users, port, &["--key", key_arg]);
    alice.expect_line("Reconnecting as alice (attempt 1)...", TIMEOUT);
    alice.expect_prefix("! login failed: ", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
}

#[test]
fn a_server_with_another_key_is_refused() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let other_key = temp_dir();
    let other_key = other_key.path().join("chat_server.key");
    let port = free_udp_port();
    let mut first = Server::start_on(&users, port, &[]);
    let mut alice = reconnecting_client(&first, "alice", "a");

    first.proc.kill();
    drop(first);
    let key_arg = other_key.to_str().expect("a UTF-8 path");
    let _impostor = Server::start_on(&users, port, &["--key", key_arg]);
    // Its resets do not carry the old key's token: the client hears
    // nothing valid until its idle timeout, then a handshake shows the
    // other key.
    alice.expect_prefix("! disconnected: lost the server", Duration::from_secs(30));
    alice.expect_line("Reconnecting as alice (attempt 1)...", TIMEOUT);
    alice.expect_prefix(
        "! disconnected: THE SERVER'S KEY HAS CHANGED",
        Duration::from_secs(30),
    );
    alice.expect_exit(1, TIMEOUT);
}
