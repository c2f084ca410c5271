//! The lossy relay used by `lossy.rs` does what it says: relays both ways
//! through one upstream socket per client, loses and duplicates on request,
//! refuses non-loopback addresses and stops on its own.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// An upstream that echoes every datagram and reports who sent it.
fn echo_server() -> (SocketAddr, mpsc::Receiver<SocketAddr>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("address");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if tx.send(from).is_err() {
                return;
            }
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    (addr, rx)
}

fn start_relay(upstream: SocketAddr, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = command(UDPRELAY);
    cmd.args(["--upstream", &upstream.to_string(), "--seed", "1"])
        .args(extra);
    let mut relay = Proc::spawn("udprelay", cmd);
    let line = relay.expect_prefix("relaying on ", TIMEOUT);
    let addr = line["relaying on ".len()..].parse().expect("an address");
    (relay, addr)
}

fn client(relay: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(relay).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set timeout");
    socket
}

/// `n` datagrams, waiting up to [`TIMEOUT`], then whatever else arrives
/// until `socket` is quiet for its read timeout.
fn receive(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < n && Instant::now() < deadline {
        if let Ok(len) = socket.recv(&mut buf) {
            got.push(buf[..len].to_vec());
        }
    }
    got.extend(drain(socket));
    got
}

/// Everything `socket` receives until it is quiet for the read timeout.
fn drain(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = socket.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

#[test]
fn relays_both_ways_with_one_upstream_socket_per_client() {
    let (upstream, seen_by_upstream) = echo_server();
    let (mut relay, via) = start_relay(upstream, &[]);
    let a = client(via);
    let b = client(via);
    let sent_a: Vec<Vec<u8>> = (0..50).map(|i| format!("a{i}").into_bytes()).collect();
    let sent_b: Vec<Vec<u8>> = (0..50).map(|i| format!("b{i}").into_bytes()).collect();
    for (x, y) in sent_a.iter().zip(&sent_b) {
        a.send(x).expect("send");
        b.send(y).expect("send");
    }
    assert_eq!(receive(&a, 50), sent_a, "a gets its own echoes, in order");
    assert_eq!(receive(&b, 50), sent_b, "b gets its own echoes, in order");

    let sources: std::collections::BTreeSet<SocketAddr> = seen_by_upstream.try_iter().collect();
    assert_eq!(
        sources.len(),
        2,
        "one upstream address per client: {sources:?}"
    );
    for s in &sources {
        assert!(s.ip().is_loopback());
        assert_ne!(*s, a.local_addr().expect("address"));
        assert_ne!(*s, b.local_addr().expect("address"));
    }
    relay.close_stdin();
    relay.expect_exit(0, TIMEOUT);
    assert!(
        relay.err.text().contains(
            " 200 received, 0 lost, 0 duplicated, 0 reordered, 0 dropped on a full queue, 200 sent"
        ),
        "{}",
        relay.err.text()
    );
}

#[test]
fn total_loss_delivers_nothing() {
    let (upstream, seen_by_upstream) = echo_server();
    let (_relay, via) = start_relay(upstream, &["--loss", "1"]);
    let a = client(via);
    for i in 0..20 {
        a.send(format!("{i}").as_bytes()).expect("send");
    }
    assert!(drain(&a).is_empty());
    assert_eq!(seen_by_upstream.try_iter().count(), 0);
}

#[test]
fn certain_duplication_delivers_everything_twice_each_way() {
    let (upstream, seen_by_upstream) = echo_server();
    let (_relay, via) = start_relay(upstream, &["--duplicate", "1", "--delay-ms", "5"]);
    let a = client(via);
    for i in 0..10 {
        a.send(format!("{i}").as_bytes()).expect("send");
    }
    let got = receive(&a, 40);
    assert_eq!(seen_by_upstream.try_iter().count(), 20);
    assert_eq!(got.len(), 40, "twice to the upstream, each echo twice back");
    for i in 0..10 {
        let n = got
            .iter()
            .filter(|d| **d == format!("{i}").into_bytes())
            .count();
        assert_eq!(n, 4, "datagram {i}");
    }
}

#[test]
fn refuses_addresses_that_are_not_loopback() {
    for args in [
        &["--upstream", "192.0.2.1:9"][..],
        &["--upstream", "127.0.0.1:9", "--listen", "0.0.0.0:0"][..],
        &["--upstream", "127.0.0.1:9", "--loss", "1.5"][..],
    ] {
        let mut cmd = command(UDPRELAY);
        cmd.args(args);
        let mut relay = Proc::spawn("udprelay", cmd);
        relay.expect_exit(2, TIMEOUT);
        assert!(relay.out.seen().is_empty(), "{args:?}: did not start");
    }
}

#[test]
fn stops_after_max_seconds_even_with_input_open() {
    let (upstream, _) = echo_server();
    let (mut relay, _) = start_relay(upstream, &["--max-seconds", "1"]);
    relay.expect_exit(0, Duration::from_secs(5));
    assert!(
        relay.err.text().contains("time limit"),
        "{}",
        relay.err.text()
    );
}
