//! What `chatserver` does with its files: `--print-key` only reads the
//! server's key, and says where it looked when there is none; a server that
//! cannot bind its port creates nothing and says why.

mod common;

use std::fs;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;

use common::*;

/// `chatserver ARGS...` run in `dir`, without `--users`.
fn in_dir(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command(CHATSERVER);
    cmd.current_dir(dir).args(args).env("RUST_LOG", "info");
    cmd
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Waits for `proc` to fail without having listened; returns its stderr.
fn fails_to_start(proc: &mut Proc) -> String {
    let status = proc.wait_exit(TIMEOUT);
    if status.success() {
        proc.fail("exited 0");
    }
    if proc
        .out
        .seen()
        .iter()
        .any(|l| l.starts_with("listening on"))
    {
        proc.fail("listened");
    }
    proc.err.text()
}

/// The file name of `dir`, the part of its path that no symbolic link or
/// prefix changes.
fn last_part(dir: &Path) -> String {
    dir.file_name()
        .expect("a named directory")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn print_key_without_a_key_says_where_it_looked_and_creates_nothing() {
    let dir = temp_dir();
    let mut proc = Proc::spawn(
        "chatserver --print-key",
        in_dir(dir.path(), &["--print-key"]),
    );
    proc.expect_exit(1, TIMEOUT);
    let err = proc.err.text();
    let default_key = Path::new("chat_server.key");
    for part in [
        last_part(dir.path()),
        default_key.display().to_string(),
        "start chatserver once".into(),
    ] {
        assert!(err.contains(&part), "{part:?} in {err:?}");
    }
    assert!(proc.out.seen().is_empty(), "{:?}", proc.out.seen());
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // A key named with --key is looked for there.
    let key = dir.path().join("elsewhere.key");
    let mut cmd = in_dir(dir.path(), &["--print-key", "--key"]);
    cmd.arg(&key);
    let mut proc = Proc::spawn("chatserver --print-key --key", cmd);
    proc.expect_exit(1, TIMEOUT);
    let err = proc.err.text();
    assert!(err.contains(&key.display().to_string()), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn a_server_that_cannot_bind_creates_no_file() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = taken.local_addr().expect("its address").port();
    let address = format!("127.0.0.1:{port}");

    // The default files, in the current directory.
    let dir = temp_dir();
    let mut server = Proc::spawn(
        "chatserver",
        in_dir(dir.path(), &["--bind", "127.0.0.1", &port.to_string()]),
    );
    let err = fails_to_start(&mut server);
    assert!(
        err.contains(&format!("cannot listen on UDP {address}")),
        "{err}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // A store named with --users.
    let users = dir.path().join("chat_users.json");
    let mut server = Server::spawn_on(&users, port, &[]);
    let err = fails_to_start(&mut server);
    assert!(err.contains(&address), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    drop(taken);
}
