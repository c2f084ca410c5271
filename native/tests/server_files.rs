//! Where `chatserver` keeps its files, and what it leaves behind when it
//! cannot start: by default a private `data/` directory under its current
//! directory; `--print-key` only reads; a server that cannot bind its port
//! or find its store's directory creates nothing and says why.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
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
    let default_key = Path::new("data").join("chat_server.key");
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
fn by_default_the_files_go_to_a_private_data_directory() {
    let dir = temp_dir();
    let mut server = Proc::spawn(
        "chatserver",
        in_dir(
            dir.path(),
            &["--bind", "127.0.0.1", "--status-interval", "0", "0"],
        ),
    );
    let line = server.expect_prefix("listening on ", TIMEOUT);
    let addr: SocketAddr = line["listening on ".len()..]
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
    let data = dir.path().join("data");
    assert_eq!(entries(dir.path()), ["data"]);
    assert_eq!(entries(&data), ["chat_data.redb", "chat_server.key"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "data/");
        assert_eq!(mode(&data.join("chat_server.key")), 0o600, "the key");
        assert_eq!(mode(&data.join("chat_data.redb")), 0o600, "the chat store");
    }

    let mut alice = login(addr, "alice", "a good password");
    exit_cleanly(&mut alice);
    // The user store, and the lock file of its writers (mode 0600 too).
    assert_eq!(
        entries(&data),
        [
            "chat_data.redb",
            "chat_server.key",
            "chat_users.json",
            "chat_users.json.lock"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("chat_users.json.lock")), 0o600, "the lock");
    }

    // --print-key in the same directory prints the key the server uses.
    let mut print = Proc::spawn(
        "chatserver --print-key",
        in_dir(dir.path(), &["--print-key"]),
    );
    let key = print.expect_with(
        &|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()),
        "a key",
        TIMEOUT,
    );
    print.expect_exit(0, TIMEOUT);
    let log = server.err.text();
    assert!(log.contains(&key), "the server logs the key {key}: {log}");
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

#[test]
fn a_store_or_key_in_a_missing_directory_is_refused_by_name() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let expected = format!("the directory {} does not exist", missing.display());

    let mut server = Server::spawn(&missing.join("chat_users.json"), &[]);
    let err = fails_to_start(&mut server);
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("os error"), "not a raw I/O error: {err}");

    let users = dir.path().join("chat_users.json");
    let key = missing.join("chat_server.key");
    let mut server = Server::spawn(&users, &["--key", &key.display().to_string()]);
    let err = fails_to_start(&mut server);
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("os error"), "not a raw I/O error: {err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}
