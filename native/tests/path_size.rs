//! Datagrams larger than 1200 bytes on a real loopback path (PROTOCOL.md
//! §3.9): the server probes each client and then sends a long message in
//! large datagrams; a client probes the server likewise. With
//! `--max-datagram 1200` the server never goes above 1200 bytes.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::Server;
use udpchat_core::client::{Client, ClientConfig, ClientEvent};
use udpchat_core::wire::{BASE_DATAGRAM, MAX_DATAGRAM};
use udpchat_native::udp;

struct Peer {
    socket: UdpSocket,
    client: Client,
    logged_in: bool,
    received: Vec<String>,
    largest_in: usize,
}

impl Peer {
    fn new(name: &str, start: Instant) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let mut config = ClientConfig::default();
        config.channel.max_datagram = udp::max_datagram(&socket);
        let client = Client::new(now(start), config, rand::random(), name).expect("username");
        Peer {
            socket,
            client,
            logged_in: false,
            received: Vec::new(),
            largest_in: 0,
        }
    }
}

fn now(start: Instant) -> udpchat_core::Instant {
    udpchat_core::Instant::from_micros(start.elapsed().as_micros() as u64)
}

/// Runs both clients against the server until `done` or the timeout.
fn drive(
    peers: &mut [Peer],
    server: std::net::SocketAddr,
    start: Instant,
    timeout: Duration,
    done: impl Fn(&[Peer]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; udp::SLOT];
    while !done(peers) {
        assert!(Instant::now() < deadline, "timed out");
        for p in peers.iter_mut() {
            let t = now(start);
            while let Ok((n, _)) = p.socket.recv_from(&mut buf) {
                p.largest_in = p.largest_in.max(n);
                p.client.handle_datagram(t, &buf[..n]);
            }
            if p.client.poll_timeout().is_some_and(|d| d <= t) {
                p.client.handle_timeout(t);
            }
            while let Some(e) = p.client.poll_event() {
                match e {
                    ClientEvent::PasswordRequired { .. } => {
                        p.client.submit_password("path size").expect("password");
                    }
                    ClientEvent::LoggedIn { .. } => p.logged_in = true,
                    ClientEvent::Public { text, .. } => p.received.push(text),
                    ClientEvent::Closed(reason) => panic!("session closed: {reason:?}"),
                    _ => {}
                }
            }
            let mut d = Vec::new();
            while p.client.poll_transmit(t, &mut d).is_some() {
                let _ = p.socket.send_to(&d, server);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn long_message() -> String {
    (0..40_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect()
}

/// Logs in two users, waits for probing to settle, and has one send a long
/// public message to the other. Returns the receiving peer.
fn run(server: &Server) -> (Peer, Peer) {
    let start = Instant::now();
    let mut peers = [Peer::new("sender", start), Peer::new("receiver", start)];
    drive(
        &mut peers,
        server.addr,
        start,
        Duration::from_secs(30),
        |p| p.iter().all(|p| p.logged_in),
    );
    // Probing runs after the first acknowledgements; a second is ample on
    // loopback (each probe is answered within a millisecond or two).
    let settle = Instant::now() + Duration::from_secs(1);
    drive(
        &mut peers,
        server.addr,
        start,
        Duration::from_secs(5),
        |_| Instant::now() >= settle,
    );
    let text = long_message();
    peers[0].client.send_public(&text).expect("send");
    drive(
        &mut peers,
        server.addr,
        start,
        Duration::from_secs(10),
        |p| !p[1].received.is_empty(),
    );
    assert_eq!(peers[1].received, vec![text], "delivered once, intact");
    let [a, b] = peers;
    (a, b)
}

#[test]
fn a_probed_loopback_path_carries_large_datagrams() {
    if udp::max_datagram(&UdpSocket::bind("127.0.0.1:0").expect("bind")) == BASE_DATAGRAM {
        eprintln!("this OS cannot forbid fragmentation: no probing to test");
        return;
    }
    let server = Server::start();
    let (sender, receiver) = run(&server);
    // Loopback carries 16,384 bytes: both clients learnt it from the server,
    // and the server from them.
    assert_eq!(sender.client.path_max(), MAX_DATAGRAM);
    assert_eq!(receiver.client.path_max(), MAX_DATAGRAM);
    assert!(
        receiver.largest_in > 8952,
        "the long message came in large datagrams: largest {}",
        receiver.largest_in
    );
    assert!(receiver.largest_in <= MAX_DATAGRAM);
}

#[test]
fn a_server_held_to_1200_bytes_never_sends_more() {
    let dir = common::temp_dir();
    let server = Server::start_with(&dir.path().join("users.json"), &["--max-datagram", "1200"]);
    let (sender, receiver) = run(&server);
    // The server answers the clients' probes (it receives large datagrams)
    // but sends nothing above 1200 bytes itself.
    assert!(
        receiver.largest_in <= BASE_DATAGRAM,
        "{}",
        receiver.largest_in
    );
    assert!(sender.largest_in <= BASE_DATAGRAM, "{}", sender.largest_in);
    if udp::max_datagram(&UdpSocket::bind("127.0.0.1:0").expect("bind")) > BASE_DATAGRAM {
        assert_eq!(sender.client.path_max(), MAX_DATAGRAM);
    }
}
