//! The guest's one conversation: with the server the user named, and no
//! one else; datagrams whole or not at all. Uses the `probe-echo` guest,
//! which prints every event it gets, and plain sockets as servers.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Proc, TIMEOUT, assert_exit, host_runner, module};

fn server_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    socket
}

fn port(socket: &UdpSocket) -> u16 {
    socket.local_addr().expect("local address").port()
}

/// Receives one datagram, or `None` within the socket's read timeout.
fn recv(socket: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = socket.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some((buf, from))
}

fn echo_probe(port: u16) -> Proc {
    let mut probe = Proc::spawn(
        "probe-echo",
        host_runner(&module("probe-echo"), port, "probe"),
    );
    probe.expect("ready");
    probe
}

#[test]
fn a_second_server_neither_hears_from_nor_reaches_the_guest() {
    let named = server_socket();
    let other = server_socket();
    let mut probe = echo_probe(port(&named));

    probe.send_line("send hello");
    probe.expect("sent");
    let (bytes, guest) = recv(&named).expect("the named server hears the guest");
    assert_eq!(bytes, b"hello");
    assert!(guest.ip().is_loopback());

    // The other server sends to the guest's very address, then the named
    // server does. Only the latter may arrive.
    for _ in 0..3 {
        other.send_to(b"from-other", guest).expect("send");
    }
    named.send_to(b"from-named", guest).expect("send");
    probe.expect("datagram 10 from-named");

    probe.send_line("send bye");
    probe.expect("sent");
    assert_eq!(recv(&named).map(|(b, _)| b), Some(b"bye".to_vec()));
    probe.send_line("quit");
    let status = probe.wait_exit(TIMEOUT);
    assert_exit(&mut probe, status, 0);

    let lines = probe.stdout_lines();
    assert!(
        !lines.iter().any(|l| l.contains("from-other")),
        "a datagram from another address reached the guest:\n{}",
        probe.transcript()
    );
    assert_eq!(recv(&other), None, "the other server heard from the guest");
}

#[test]
fn oversized_datagrams_are_refused_whole_both_ways() {
    let named = server_socket();
    let mut probe = echo_probe(port(&named));

    probe.send_line("limits");
    probe.expect("max-datagram-bytes: 1200");

    // Guest to server: 1201 bytes are refused, not cut to 1200.
    probe.send_line("send-bytes 1201");
    probe.expect("send-error NetError::TooLarge(1200)");
    probe.send_line("send-bytes 1200");
    probe.expect("sent");
    let (bytes, guest) = recv(&named).expect("the 1200-byte datagram");
    assert_eq!(bytes.len(), 1200, "the refused datagram was sent in part");
    assert_eq!(recv(&named), None);

    // Server to guest: up to the protocol's largest datagram (a server
    // sends more than 1200 bytes only to a client that answered a probe).
    named.send_to(&[b'y'; 16385], guest).expect("send");
    probe.expect("network-error NetError::TooLarge(16384)");
    named.send_to(&[b'z'; 16384], guest).expect("send");
    probe.expect("datagram 16384 zzz");

    probe.close_stdin();
    let status = probe.wait_exit(TIMEOUT);
    assert_exit(&mut probe, status, 0);
}
