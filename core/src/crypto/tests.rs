use super::*;
use crate::wire::{Header, Marker, PacketKind};

fn server_key() -> StaticKey {
    StaticKey::from_private([7u8; 32])
}

#[test]
fn device_tokens_are_bound_to_the_account_and_the_key() {
    let key = server_key();
    let t = device_token(&key, "alice", 42);
    assert_eq!(t.len(), 48);
    assert!(check_device_token(&key, "alice", &t));
    assert!(!check_device_token(&key, "bob", &t));
    assert!(!check_device_token(
        &StaticKey::from_private([8u8; 32]),
        "alice",
        &t
    ));
    let mut forged = t.clone().into_bytes();
    forged[47] = if forged[47] == b'0' { b'1' } else { b'0' };
    assert!(!check_device_token(
        &key,
        "alice",
        core::str::from_utf8(&forged).unwrap()
    ));
    assert!(!check_device_token(&key, "alice", &t.to_uppercase()));
    assert!(!check_device_token(&key, "alice", ""));
    assert!(!check_device_token(&key, "alice", "é"));
}

#[test]
fn handshake_then_seal_and_open() {
    let key = server_key();
    let init = Initiator::new(42, [1u8; 32]).unwrap();
    assert_eq!(init.msg1().len(), MSG1_LEN);
    let token = reset_token(&key, 42);
    let (server_t, msg2) = respond(&key, 42, [2u8; 32], init.msg1(), None).unwrap();
    assert_eq!(msg2.len(), MSG2_LEN);
    let est = init.finish(&msg2).unwrap();
    assert_eq!(&est.server_key, key.public());
    assert_eq!(est.reset_token, token);
    assert_eq!(est.issued_id, None);

    // With an issued id, the token is that id's, never the client's.
    let (_, issued) = respond(&key, 42, [2u8; 32], init.msg1(), Some(7)).unwrap();
    assert_eq!(issued.len(), MSG2_ISSUED_LEN);
    let est7 = init.finish(&issued).unwrap();
    assert_eq!(est7.issued_id, Some(7));
    assert_eq!(est7.reset_token, reset_token(&key, 7));
    assert_ne!(est7.reset_token, token);

    let mut plain = Vec::new();
    Header {
        marker: Marker::Data,
        kind: PacketKind::Data,
        connection_id: 42,
        packet_number: 5,
    }
    .encode(&mut plain);
    plain.extend_from_slice(b"\x03frames");
    let sealed = est.transport.seal(&plain).unwrap();
    assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
    assert_eq!(&sealed[..HEADER_LEN], &plain[..HEADER_LEN]);
    assert_eq!(server_t.open(&sealed).unwrap(), plain);

    // Sealing into a kept buffer, or in place, gives the same bytes,
    // whatever the buffer held before (a longer datagram here).
    let mut out = vec![0xAA; 3000];
    assert_eq!(
        est.transport.seal_into(&plain, &mut out).unwrap(),
        sealed.len()
    );
    assert_eq!(out, sealed);
    let mut in_place = plain.clone();
    in_place.reserve(4000);
    assert_eq!(
        est.transport.seal_in_place(&mut in_place).unwrap(),
        sealed.len()
    );
    assert_eq!(in_place, sealed);
    // A datagram shorter than its header is refused and leaves nothing.
    let mut short = plain[..HEADER_LEN - 1].to_vec();
    assert!(est.transport.seal_in_place(&mut short).is_err());
    assert!(short.is_empty());
    // The header alone (no frames) seals and opens.
    let mut bare = plain[..HEADER_LEN].to_vec();
    est.transport.seal_in_place(&mut bare).unwrap();
    assert_eq!(server_t.open(&bare).unwrap(), &plain[..HEADER_LEN]);

    // Opening into a buffer: exactly `sealed.len() - 4` bytes suffice,
    // one fewer is refused.
    let mut room = vec![0u8; sealed.len() - SEALED_HEADER_COPY];
    let n = server_t.open_into(&sealed, &mut room).unwrap();
    assert_eq!(&room[..n], &plain[..]);
    assert!(server_t.open_into(&sealed, &mut room[..n + 3]).is_err());

    // Any flipped bit, in header or body, fails (the connection id,
    // bytes 4..12, selects the keys instead: another id, other keys).
    for i in (0..4).chain(12..sealed.len()) {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(server_t.open(&bad).is_err(), "byte {i}");
    }
    // Truncation fails.
    assert!(server_t.open(&sealed[..sealed.len() - 1]).is_err());
    // The client cannot open its own direction.
    assert!(est.transport.open(&sealed).is_err());
}

#[test]
fn forged_answer_does_not_poison_the_initiator() {
    let key = server_key();
    let init = Initiator::new(9, [3u8; 32]).unwrap();
    let (_, msg2) = respond(&key, 9, [4u8; 32], init.msg1(), None).unwrap();
    let mut forged = msg2.clone();
    forged[40] ^= 1;
    assert!(init.finish(&forged).is_err());
    assert!(init.finish(&msg2).is_ok());
    // A different connection id (prologue) fails.
    let (_, other) = respond(&key, 10, [4u8; 32], init.msg1(), None).unwrap();
    assert!(init.finish(&other).is_err());
}

#[test]
fn replay_window() {
    let mut w = ReplayWindow::default();
    assert!(w.is_fresh(0));
    w.record(0);
    assert!(!w.is_fresh(0));
    w.record(5);
    assert!(w.is_fresh(3));
    w.record(3);
    assert!(!w.is_fresh(3));
    assert!(!w.is_fresh(5));
    w.record(5000);
    assert!(!w.is_fresh(3), "too old");
    assert!(w.is_fresh(4999));
    assert!(!w.is_fresh(5000));
    w.record(4999);
    assert!(!w.is_fresh(4999));
    assert!(w.is_fresh(5000 - 1023));
    assert!(!w.is_fresh(5000 - 1024));
}

#[test]
fn cookies_bind_address_connection_and_time() {
    let k = CookieKeys::new([9u8; 32]);
    let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let b: SocketAddr = "192.0.2.1:4001".parse().unwrap();
    let t = Instant::from_micros(1_000_000_000);
    let c = k.cookie(t, &a, 1);
    assert!(k.verify(t, &a, 1, &c));
    assert!(k.verify(t + Duration::from_secs(60), &a, 1, &c));
    assert!(!k.verify(t + Duration::from_secs(121), &a, 1, &c));
    assert!(!k.verify(t, &b, 1, &c));
    assert!(!k.verify(t, &a, 2, &c));
    assert!(!k.verify(t, &a, 1, &c[..15]));
}

#[test]
fn keys_parse_and_print() {
    let key = server_key();
    let s = alloc::format!("{}", Hex(key.public()));
    assert_eq!(parse_key(&s), Some(*key.public()));
    assert_eq!(parse_key("zz"), None);
    assert_ne!(key.public(), &[0u8; 32]);
}
