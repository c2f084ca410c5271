//! A flood of garbage and of copied first datagrams at a real server: a
//! real client logs in while it lasts, and no address gets back more bytes
//! than it sent (no amplification), counting every answer, late ones
//! included. How long things took and the server's memory are printed as
//! figures, never asserted: they depend on the machine and its load.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, login_within};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use udpchat_core::client::{Client, ClientConfig};

/// Datagrams in the flood, at least: it goes on until the client logging
/// in during it is in.
const FLOOD: usize = 100_000;

/// The flood's sources: one socket each, all on 127.0.0.1.
const SOURCES: usize = 8;

/// How long the flood's sockets must all stay silent, once the server has
/// answered a client that came after the flood, before their counts are
/// final.
const QUIET: Duration = Duration::from_secs(1);

/// Only against a hang: a login that takes this long fails the test. The
/// time a login takes is printed, not asserted.
const LOGIN_GUARD: Duration = Duration::from_secs(120);

/// The server's resident memory, in KiB (Linux only).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A flood source: bytes sent and received.
struct Source {
    socket: UdpSocket,
    sent: usize,
    received: usize,
    answers: usize,
}

impl Source {
    fn new() -> Source {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // A large receive buffer, so that no answer is lost on our side
        // (the OS may cap it; reading all along keeps it from filling).
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        socket.set_nonblocking(true).expect("nonblocking");
        Source {
            socket,
            sent: 0,
            received: 0,
            answers: 0,
        }
    }

    /// Counts what the socket holds now.
    fn read_all(&mut self, buf: &mut [u8]) {
        while let Ok(n) = self.socket.recv(buf) {
            self.received += n;
            self.answers += 1;
        }
    }
    /// Counts what the socket holds now; whether it held anything.
    fn read_some(&mut self, buf: &mut [u8]) -> bool {
        let before = self.answers;
        self.read_all(buf);
        self.answers > before
    }
}

/// Counts what arrives at `sources` until all have been silent for `quiet`.
fn read_until_quiet(sources: &mut [Source], buf: &mut [u8], quiet: Duration) {
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        for s in sources.iter_mut() {
            if s.read_some(buf) {
                last = Instant::now();
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Datagram `count` of the flood.
fn flood_datagram(count: usize, initials: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    match count % 4 {
        // A real client's first datagram, copied.
        0 => initials[(count / 4) % initials.len()].clone(),
        // A plausible header on garbage, of any kind.
        1 => {
            let len = rng.gen_range(16..1300);
            let mut b: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            b[..4].copy_from_slice(&[b'C', 1, rng.gen_range(1..=5), 0]);
            b
        }
        // Data for connections that do not exist.
        2 => {
            let len = rng.gen_range(16..200);
            let mut b: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            b[..4].copy_from_slice(&[b'D', 1, 2, 0]);
            b
        }
        // Pure noise.
        _ => {
            let len = rng.gen_range(0..1500);
            (0..len).map(|_| rng.r#gen()).collect()
        }
    }
}

/// Logs in `name` from another thread once told to, and reports how long it
/// took.
fn login_when_told(
    addr: SocketAddr,
    name: &'static str,
) -> (mpsc::Sender<()>, mpsc::Receiver<Duration>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        if go_rx.recv().is_err() {
            return;
        }
        let t = Instant::now();
        let mut client = login_within(addr, name, "pw", LOGIN_GUARD);
        let _ = done_tx.send(t.elapsed());
        common::exit_cleanly(&mut client);
    });
    (go_tx, done_rx)
}

#[test]
fn a_client_logs_in_during_a_flood_and_no_address_gets_more_than_it_sent() {
    let mut server = Server::start();
    let pid = server.proc.pid();
    let rss_before = rss_kb(pid);
    let now = udpchat_core::Instant::ZERO;
    let initials: Vec<Vec<u8>> = (0..SOURCES as u8)
        .map(|k| {
            let mut c = Client::new(now, ClientConfig::default(), [k; 32], "x").unwrap();
            let mut d = Vec::new();
            c.poll_transmit(now, &mut d).unwrap();
            d
        })
        .collect();
    let mut sources: Vec<Source> = (0..SOURCES).map(|_| Source::new()).collect();
    let mut rng = StdRng::seed_from_u64(0xf100d);
    let mut buf = [0u8; 2048];

    let (start_login, alice_in) = login_when_told(server.addr, "alice");
    let mut alice_took = None;
    let started = Instant::now();
    let mut count = 0;
    while count < FLOOD || alice_took.is_none() {
        if count == FLOOD / 2 {
            start_login.send(()).expect("the login thread is waiting");
        }
        if count > FLOOD / 2 && alice_took.is_none() {
            match alice_in.try_recv() {
                Ok(took) => alice_took = Some(took),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("alice did not log in during the flood (see the thread's panic)")
                }
            }
        }
        if count % 10_000 == 0 {
            server.assert_running();
        }
        let k = count % SOURCES;
        let bytes = flood_datagram(count, &initials, &mut rng);
        match sources[k].socket.send_to(&bytes, server.addr) {
            Ok(_) => {
                sources[k].sent += bytes.len();
                count += 1;
            }
            // The socket buffer is full: let the server catch up.
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
        sources[k].read_all(&mut buf);
        if count % 2000 == 0 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    let flood_took = started.elapsed();
    let alice_took = alice_took.expect("alice is in");

    // The flood sources now send nothing more. The server reads its socket
    // in order and answers first datagrams in the order they came, so once
    // it has answered a client that started after the flood, every answer
    // to the flood has been sent; what is still on its way is read until
    // each socket has been silent for a while.
    let t = Instant::now();
    let mut bob = login_within(server.addr, "bob", "pw", LOGIN_GUARD);
    let bob_took = t.elapsed();
    read_until_quiet(&mut sources, &mut buf, QUIET);
    server.assert_running();

    let sent: usize = sources.iter().map(|s| s.sent).sum();
    let received: usize = sources.iter().map(|s| s.received).sum();
    let answers: usize = sources.iter().map(|s| s.answers).sum();
    eprintln!(
        "flood: {count} datagrams, {sent} bytes from {SOURCES} addresses in {:.2} s; \
         answered with {answers} datagrams, {received} bytes ({:.4} of the bytes sent)",
        flood_took.as_secs_f64(),
        received as f64 / sent.max(1) as f64
    );
    eprintln!(
        "login during the flood took {:.3} s; login after it {:.3} s",
        alice_took.as_secs_f64(),
        bob_took.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (rss_before, rss_kb(pid)) {
        eprintln!("server RSS: {before} KiB before the flood, {after} KiB after");
    }
    for (k, s) in sources.iter().enumerate() {
        assert!(
            s.received <= s.sent,
            "address {k}: the server sent {} bytes to an address that sent {}",
            s.received,
            s.sent
        );
    }
    common::exit_cleanly(&mut bob);
}
