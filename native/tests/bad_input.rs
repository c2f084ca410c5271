//! Bad command lines: the client refuses them with exit status 2 and a
//! message on stderr, before sending anything.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;

/// Runs `chatclient ARGS` with empty input against a UDP socket that counts
/// as the server, and returns (exit code, stdout lines, stderr).
fn run_client(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut cmd = command(CHATCLIENT);
    cmd.args(args);
    let mut client = Proc::spawn("chatclient", cmd);
    client.close_stdin();
    let status = client.wait_exit(TIMEOUT);
    let out = client.out.seen().to_vec();
    (status.code(), out, client.err.text())
}

/// A socket standing in for the server, to check that nothing was sent.
fn fake_server() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set timeout");
    let port = socket.local_addr().expect("address").port().to_string();
    (socket, port)
}

fn assert_nothing_sent(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    if let Ok((n, from)) = socket.recv_from(&mut buf) {
        panic!("the client sent {n} bytes from {from} despite the bad input");
    }
}

#[test]
fn username_with_a_space_is_a_usage_error() {
    let (socket, port) = fake_server();
    let (code, out, err) = run_client(&["127.0.0.1", &port, "alice smith"]);
    assert_eq!(code, Some(2), "stdout {out:?}, stderr {err}");
    assert!(
        err.contains("invalid username \"alice smith\"") && err.contains("' '"),
        "stderr names the name and the character: {err}"
    );
    assert!(out.is_empty(), "nothing on stdout: {out:?}");
    assert_nothing_sent(&socket);
}

#[test]
fn username_too_long_is_a_usage_error() {
    let (socket, port) = fake_server();
    let name = "b".repeat(33);
    let (code, out, err) = run_client(&["127.0.0.1", &port, &name]);
    assert_eq!(code, Some(2), "stdout {out:?}, stderr {err}");
    assert!(
        err.contains("invalid username") && err.contains("longer than 32"),
        "stderr says why: {err}"
    );
    assert!(out.is_empty(), "nothing on stdout: {out:?}");
    assert_nothing_sent(&socket);
}

#[test]
fn other_bad_usernames_are_usage_errors() {
    let (socket, port) = fake_server();
    for name in ["", ".hidden", "semi;colon", "émile"] {
        let (code, out, err) = run_client(&["127.0.0.1", &port, name]);
        assert_eq!(code, Some(2), "{name:?}: stdout {out:?}, stderr {err}");
        assert!(err.contains("invalid username"), "{name:?}: {err}");
    }
    assert_nothing_sent(&socket);
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["127.0.0.1"][..],
        &["127.0.0.1", "65015"][..],
        &["127.0.0.1", "not-a-port", "alice"][..],
        &["127.0.0.1", "70000", "alice"][..],
        &["127.0.0.1", "65015", "alice", "extra"][..],
        &["--password", "secret", "127.0.0.1", "65015", "alice"][..],
    ] {
        let (code, out, err) = run_client(args);
        assert_eq!(code, Some(2), "{args:?}: stdout {out:?}, stderr {err}");
        assert!(
            err.starts_with("error: "),
            "{args:?}: the error on stderr: {err}"
        );
    }
}
