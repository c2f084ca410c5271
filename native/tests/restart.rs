//! Registered users survive a server restart: after a crash (SIGKILL) and
//! after a graceful stop (SIGTERM), the same user store lets them log in
//! with their old password and refuses a wrong one.

mod common;

use std::process::Command;

use common::*;

/// Logs in as a registered user with the right password.
fn relogin(server: &Server, name: &str, password: &str) -> Proc {
    let mut client = spawn_client(server.addr, name, Password::Stdin(password));
    client.expect_line(
        &format!("{name} is registered: enter the password."),
        TIMEOUT,
    );
    client.expect_prefix(&format!("logged in as {name}; online: "), TIMEOUT);
    client
}

/// A wrong password for a registered user is refused.
fn refused(server: &Server, name: &str, password: &str) {
    let mut client = spawn_client(server.addr, name, Password::Env(password));
    client.expect_line(
        &format!("{name} is registered: enter the password."),
        TIMEOUT,
    );
    client.expect_prefix("! login failed: ", TIMEOUT);
    client.expect_line("! login refused with CHAT_PASSWORD", TIMEOUT);
    client.expect_exit(1, TIMEOUT);
}

#[test]
// The graceful stop is `kill -TERM`: Windows has neither the program nor the
// signal, and its nearest equivalent (a console Ctrl-Break event sent to the
// child's process group) needs Win32 calls that this test does not make.
#[cfg_attr(not(unix), ignore = "needs kill -TERM, a Unix signal")]
fn registered_users_survive_restarts() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");

    let mut first = Server::start_with(&users, &[]);
    let mut alice = login(first.addr, "alice", "old secret");
    let mut bob = login(first.addr, "bob", "bob's secret");
    // A crash: nothing is flushed on the way out. The registrations were
    // acknowledged, so they are on disk.
    first.proc.kill();
    drop(first);
    alice.kill();
    bob.kill();

    let mut second = Server::start_with(&users, &[]);
    let mut alice = relogin(&second, "alice", "old secret");
    let mut bob = relogin(&second, "bob", "bob's secret");
    exit_cleanly(&mut bob);
    let mut carol = login(second.addr, "carol", "carol's secret");
    // A graceful stop, with users online, who are told.
    let status = Command::new("kill")
        .args(["-TERM", &second.proc.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    for client in [&mut alice, &mut carol] {
        client.expect_line("! disconnected: the server is shutting down", TIMEOUT);
        client.expect_exit(1, TIMEOUT);
    }
    second.proc.expect_exit(0, TIMEOUT);
    drop(second);

    let third = Server::start_with(&users, &[]);
    refused(&third, "alice", "new secret");
    refused(&third, "carol", "old secret");
    let mut alice = relogin(&third, "alice", "old secret");
    let mut bob = relogin(&third, "bob", "bob's secret");
    let mut carol = relogin(&third, "carol", "carol's secret");
    carol.send("/who");
    let online = carol.expect_prefix("online: ", TIMEOUT);
    assert_eq!(online_set(&online), names(&["alice", "bob", "carol"]));
    for client in [&mut alice, &mut bob, &mut carol] {
        exit_cleanly(client);
    }
}
