//! Datagrams that are not the protocol, sent from a raw socket: the server
//! ignores them (no answer, no crash), and clients log in and chat as before.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A 16-byte header: marker, version, kind, flags, connection id, packet
/// number.
fn header(marker: u8, version: u8, kind: u8, flags: u8, conn: u64, pn: u32) -> Vec<u8> {
    let mut h = vec![marker, version, kind, flags];
    h.extend_from_slice(&conn.to_be_bytes());
    h.extend_from_slice(&pn.to_be_bytes());
    h
}

/// `bytes` followed by `fill` up to `len` bytes.
fn padded(mut bytes: Vec<u8>, len: usize, fill: u8) -> Vec<u8> {
    bytes.resize(len, fill);
    bytes
}

fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let initial = header(b'C', 1, 0x01, 0, 0x1234_5678_9abc_def0, 0);
    let mut cases = vec![
        ("text", b"hello, server, let me in".to_vec()),
        ("empty", Vec::new()),
        ("one byte", b"C".to_vec()),
        ("truncated header", initial[..6].to_vec()),
        ("header minus one byte", initial[..15].to_vec()),
        ("bare header", initial.clone()),
        ("version 0", padded(header(b'C', 0, 0x01, 0, 1, 0), 1200, 0)),
        ("version 2", padded(header(b'C', 2, 0x01, 0, 1, 0), 1200, 0)),
        (
            "version 255",
            padded(header(b'D', 255, 0x02, 0, 1, 0), 1200, 0),
        ),
        (
            "unknown marker",
            padded(header(b'X', 1, 0x01, 0, 1, 0), 1200, 0),
        ),
        (
            "unknown kind",
            padded(header(b'C', 1, 0x07, 0, 1, 0), 1200, 0),
        ),
        (
            "reserved flags",
            padded(header(b'C', 1, 0x01, 0x80, 1, 0), 1200, 0),
        ),
        ("garbage frames", padded(initial.clone(), 1200, 0xee)),
        ("unpadded initial", padded(initial.clone(), 40, 0xee)),
        (
            "data for an unknown connection",
            padded(header(b'D', 1, 0x02, 0, 0xdead_beef, 7), 300, 0x01),
        ),
        ("oversized 1500", padded(initial.clone(), 1500, 0)),
        ("oversized 9000", padded(initial.clone(), 9000, 0xee)),
        ("maximal UDP payload", padded(initial.clone(), 65_507, 0)),
    ];
    // Seeded noise: random lengths, half of it behind a plausible header.
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for i in 0..300 {
        let len = rng.gen_range(0..1400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        if i % 2 == 0 && len >= 4 {
            bytes[..4].copy_from_slice(&[b"CD"[i % 4 / 2], 1, 1 + (i % 3 == 0) as u8, 0]);
        }
        cases.push(("random", bytes));
    }
    cases
}

#[test]
fn malformed_datagrams_are_ignored() {
    let mut server = Server::start();
    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");

    let raw = UdpSocket::bind("127.0.0.1:0").expect("bind");
    raw.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set timeout");
    let mut sent_bytes = 0;
    for (what, bytes) in malformed() {
        raw.send_to(&bytes, server.addr)
            .unwrap_or_else(|e| panic!("send {what}: {e}"));
        sent_bytes += bytes.len().min(1200);
    }
    // Twice more, interleaved with a real session's traffic.
    alice.send("PM");
    for (what, bytes) in malformed().into_iter().take(20) {
        raw.send_to(&bytes, server.addr)
            .unwrap_or_else(|e| panic!("send {what}: {e}"));
        sent_bytes += bytes.len().min(1200);
    }
    alice.send("still here");
    alice.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    bob.expect_line("[alice] still here", TIMEOUT);

    // The only answers are Resets (kind 0x05, 32 bytes) to Data datagrams
    // for unknown connections, each smaller than what provoked it: nothing
    // to amplify.
    let mut buf = [0u8; 65_536];
    let mut answered = 0;
    while let Ok((n, _)) = raw.recv_from(&mut buf) {
        assert_eq!(
            (n, buf[2]),
            (32, 0x05),
            "the server answered a malformed datagram with {n} bytes: {:02x?}",
            &buf[..n.min(32)]
        );
        answered += n;
    }
    assert!(
        answered <= sent_bytes / 4,
        "answered {answered} bytes to {sent_bytes}"
    );
    server.assert_running();

    // A newcomer logs in and chats.
    let mut carol = login(server.addr, "carol", "c");
    carol.send("/msg bob hello after the noise");
    carol.expect_line("ok: direct message delivered to bob", TIMEOUT);
    bob.expect_line("[DM from carol] hello after the noise", TIMEOUT);
    for client in [&mut alice, &mut bob, &mut carol] {
        exit_cleanly(client);
    }
    server.assert_running();
}
