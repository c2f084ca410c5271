//! The server's key pinned in known_servers: a changed key is refused with
//! the file that holds the pin and what to do; `--forget-server` forgets the
//! pin, and `--server-key` with the new key replaces it.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// What `chatserver --print-key` prints for the server of the store
/// `users`.
fn print_key(users: &Path) -> String {
    let mut cmd = command(CHATSERVER);
    cmd.arg("--users").arg(users).arg("--print-key");
    let mut p = Proc::spawn("chatserver --print-key", cmd);
    let key = p.expect_with(&|l| l.len() == 64, "a key", TIMEOUT);
    p.expect_exit(0, TIMEOUT);
    key
}

/// chatclient with `args` and the pins in `known`.
fn spawn(known: &Path, args: &[&str]) -> Proc {
    let mut cmd = command(CHATCLIENT);
    cmd.args(args).env("CHAT_KNOWN_SERVERS", known);
    Proc::spawn("chatclient", cmd)
}

/// As [`spawn`], the password on its first line.
fn client(known: &Path, args: &[&str]) -> Proc {
    let mut p = spawn(known, args);
    p.send("secret");
    p
}

/// `chatclient --forget-server SERVER`: its status and output.
fn forget(known: &Path, server: &str) -> (Option<i32>, Vec<String>) {
    let mut p = spawn(known, &["--forget-server", server]);
    let status = p.wait_exit(TIMEOUT);
    (status.code(), p.out.seen().to_vec())
}

const OTHER_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn a_changed_key_names_the_pin_and_forget_server_accepts_the_new_one() {
    let server = Server::start();
    let key = print_key(&server.users);
    let dir = temp_dir();
    let known = dir.path().join("known_servers");
    let name = format!("127.0.0.1:{}", server.port());
    fs::write(&known, format!("other:1 {key}\n{name} {OTHER_KEY}\n")).unwrap();

    let mut alice = client(&known, &[&name, "alice"]);
    let first = alice.expect_prefix("! THE SERVER'S KEY HAS CHANGED: ", TIMEOUT);
    alice.expect_exit(1, TIMEOUT);
    let said = alice.out.seen().join("\n");
    for needle in [
        format!("{name} proved key {key}"),
        format!("known_servers ({})", known.display()),
        format!("is {OTHER_KEY}"),
        "chatserver --print-key".to_string(),
        format!("chatclient --forget-server {name}"),
        format!("--server-key {key}"),
    ] {
        assert!(said.contains(&needle), "no {needle:?} in\n{said}");
    }
    assert!(
        !said.contains("disconnected"),
        "never connected, so not disconnected: {first}"
    );

    let (code, out) = forget(&known, &name);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        [format!(
            "forgot the key {OTHER_KEY} of {name} in {}; the next connection pins the key the \
             server shows",
            known.display()
        )]
    );
    assert_eq!(
        fs::read_to_string(&known).unwrap(),
        format!("other:1 {key}\n")
    );
    let (code, out) = forget(&known, &name);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        [format!(
            "no key of {name} in {}: nothing to forget",
            known.display()
        )]
    );

    // Trusted on first use again, and pinned.
    let mut alice = client(&known, &[&name, "alice"]);
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);
    exit_cleanly(&mut alice);
    assert_eq!(
        fs::read_to_string(&known).unwrap(),
        format!("other:1 {key}\n{name} {key}\n")
    );
}

#[test]
fn server_key_replaces_the_pin_once_the_server_proves_it() {
    let server = Server::start();
    let key = print_key(&server.users);
    let dir = temp_dir();
    let known = dir.path().join("known_servers");
    let port = server.port().to_string();
    let name = format!("127.0.0.1:{port}");
    fs::write(&known, format!("{name} {OTHER_KEY}\n")).unwrap();

    let mut alice = client(&known, &["--server-key", &key, "127.0.0.1", &port, "alice"]);
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);
    exit_cleanly(&mut alice);
    assert_eq!(
        fs::read_to_string(&known).unwrap(),
        format!("{name} {key}\n")
    );
    assert!(alice.err.text().contains(&format!("replaces {OTHER_KEY}")));

    // A wrong key given as a setting is refused, and named as such.
    let mut bob = client(&known, &["--server-key", OTHER_KEY, &name, "bob"]);
    bob.expect_prefix("! THE SERVER'S KEY HAS CHANGED: ", TIMEOUT);
    bob.expect_exit(1, TIMEOUT);
    let said = bob.out.seen().join("\n");
    assert!(said.contains("given by --server-key"), "{said}");
    assert_eq!(
        fs::read_to_string(&known).unwrap(),
        format!("{name} {key}\n")
    );
}

#[test]
fn forget_server_takes_the_default_port_and_refuses_nonsense() {
    let dir = temp_dir();
    let known = dir.path().join("known_servers");
    fs::write(&known, format!("localhost:65015 {OTHER_KEY}\n")).unwrap();
    let (code, out) = forget(&known, "localhost");
    assert_eq!(code, Some(0));
    assert!(out[0].starts_with("forgot the key "), "{out:?}");
    assert_eq!(fs::read_to_string(&known).unwrap(), "");
    let (code, _) = forget(&known, "localhost:x");
    assert_eq!(code, Some(2));
}
