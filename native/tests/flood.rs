//! A flood of garbage and of copied first datagrams at a real server: no
//! state for unproven addresses, no amplification, bounded memory, and a
//! real client still logs in within a second afterwards.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Server, login_within};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use udpchat_core::client::{Client, ClientConfig};

/// The server's resident memory, in KiB (Linux only).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory the server may use after the flood: the stated bound.
const RSS_BOUND_KB: u64 = 64 * 1024;

#[test]
fn a_flood_of_garbage_and_copied_initials_leaves_no_state() {
    let mut server = Server::start();
    let pid = server.proc.pid();
    let now = udpchat_core::Instant::ZERO;
    let initials: Vec<Vec<u8>> = (0..8u8)
        .map(|k| {
            let mut c = Client::new(now, ClientConfig::default(), [k; 32], "x").unwrap();
            c.poll_transmit(now).unwrap()
        })
        .collect();
    let sockets: Vec<UdpSocket> = (0..8)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let mut sent = [0usize; 8];
    let mut received = [0usize; 8];
    let mut rng = StdRng::seed_from_u64(0xf100d);
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    let mut count = 0;
    while count < 100_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the flood took too long"
        );
        let k = count % 8;
        let bytes: Vec<u8> = match count % 4 {
            // A real client's first datagram, copied.
            0 => initials[(count / 4) % 8].clone(),
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
        };
        match sockets[k].send_to(&bytes, server.addr) {
            Ok(_) => {
                sent[k] += bytes.len();
                count += 1;
            }
            // The socket buffer is full: let the server catch up.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        while let Ok(n) = sockets[k].recv(&mut buf) {
            received[k] += n;
        }
        if count % 2000 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for (k, s) in sockets.iter().enumerate() {
        while let Ok(n) = s.recv(&mut buf) {
            received[k] += n;
        }
        assert!(
            received[k] <= sent[k],
            "socket {k}: the server sent {} bytes to an address that sent {}",
            received[k],
            sent[k]
        );
    }
    server.assert_running();
    if let Some(rss) = rss_kb(pid) {
        eprintln!("server RSS after 100,000 datagrams: {rss} KiB");
        assert!(rss < RSS_BOUND_KB, "server RSS {rss} KiB");
    }
    // A real client still gets in, within a second.
    let t = Instant::now();
    let _alice = login_within(server.addr, "alice", "pw", Duration::from_secs(1));
    eprintln!("login after the flood took {:?}", t.elapsed());
}
