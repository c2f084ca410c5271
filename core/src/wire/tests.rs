use super::*;
use alloc::vec;

fn header() -> Header {
    Header {
        marker: Marker::Command,
        kind: PacketKind::Data,
        connection_id: 0x0102_0304_0506_0708,
        packet_number: 9,
    }
}

#[test]
fn a_header_view_reads_the_fields_and_needs_sixteen_bytes() {
    let mut bytes = Vec::new();
    Header {
        packet_number: 0x0A0B_0C0D,
        ..header()
    }
    .encode(&mut bytes);
    bytes.push(0xEE);
    let v = HeaderView::new(&bytes).unwrap();
    assert_eq!(v.marker(), b'C');
    assert_eq!(v.version(), VERSION);
    assert_eq!(v.kind(), PacketKind::Data.byte());
    assert_eq!(v.flags(), 0);
    assert_eq!(v.sealed_copy(), [b'C', VERSION, PacketKind::Data.byte(), 0]);
    assert_eq!(v.connection_id(), 0x0102_0304_0506_0708);
    assert_eq!(v.packet_number(), 0x0A0B_0C0D);
    for n in 0..HEADER_LEN {
        assert_eq!(HeaderView::new(&bytes[..n]), None);
    }
}

#[test]
fn header_round_trip() {
    let mut out = Vec::new();
    header().encode(&mut out);
    assert_eq!(
        out,
        [b'C', 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9].to_vec()
    );
    assert_eq!(Header::decode(&out), Ok(header()));
}

#[test]
fn frames_round_trip() {
    let mut b = DatagramBuilder::new(header());
    assert!(b.push(&Frame::Ack {
        next_expected: 7,
        sack: &[0b101]
    }));
    assert!(b.push(&Frame::Segment {
        seq: 7,
        end: true,
        data: b"hello"
    }));
    assert!(b.push(&Frame::Ping));
    assert!(b.push(&Frame::Close(CloseCode::IdleTimeout)));
    b.pad_to(100);
    let bytes = b.finish();
    assert_eq!(bytes.len(), 100);
    let d = Datagram::decode(&bytes).unwrap();
    let frames: Vec<_> = d.frames().collect();
    assert_eq!(
        frames,
        vec![
            Frame::Ack {
                next_expected: 7,
                sack: &[0b101]
            },
            Frame::Segment {
                seq: 7,
                end: true,
                data: b"hello"
            },
            Frame::Ping,
            Frame::Close(CloseCode::IdleTimeout),
        ]
    );
}

#[test]
fn probe_states_its_own_sealed_length() {
    let size = 1452u16;
    let mut b = DatagramBuilder::with_limit(header(), MAX_PLAINTEXT);
    assert!(b.push(&Frame::Probe(size)));
    assert!(b.push(&Frame::ProbeAck(8952)));
    b.pad_to(size as usize - SEAL_OVERHEAD);
    let bytes = b.finish();
    assert_eq!(bytes.len() + SEAL_OVERHEAD, size as usize);
    let d = Datagram::decode(&bytes).unwrap();
    assert_eq!(
        d.frames().collect::<Vec<_>>(),
        vec![Frame::Probe(size), Frame::ProbeAck(8952)]
    );
    // One byte short of the size it claims: malformed.
    assert_eq!(
        Datagram::decode(&bytes[..bytes.len() - 1]).unwrap_err(),
        DecodeError::MalformedFrame
    );
    // Sizes below the base or above the maximum are malformed.
    for bad in [BASE_DATAGRAM as u16 - 1, MAX_DATAGRAM as u16 + 1] {
        let mut b = DatagramBuilder::new(header());
        assert!(b.push(&Frame::ProbeAck(bad)));
        assert_eq!(
            Datagram::decode(&b.finish()).unwrap_err(),
            DecodeError::MalformedFrame
        );
    }
    // The builder never goes past the base size unless asked to.
    let mut b = DatagramBuilder::new(header());
    b.pad_to(MAX_PLAINTEXT);
    assert_eq!(b.finish().len(), BASE_PLAINTEXT);
}

#[test]
fn rejects_bad_input() {
    let mut ok = Vec::new();
    header().encode(&mut ok);
    ok.push(frame_type::PING);
    assert!(Datagram::decode(&ok).is_ok());
    assert_eq!(
        Datagram::decode(&ok[..10]).unwrap_err(),
        DecodeError::Truncated
    );
    let mut bad = ok.clone();
    bad[0] = b'X';
    assert_eq!(
        Datagram::decode(&bad).unwrap_err(),
        DecodeError::UnknownMarker(b'X')
    );
    let mut bad = ok.clone();
    bad[1] = 2;
    assert_eq!(
        Datagram::decode(&bad).unwrap_err(),
        DecodeError::UnknownVersion(2)
    );
    let mut bad = ok.clone();
    bad[3] = 1;
    assert_eq!(
        Datagram::decode(&bad).unwrap_err(),
        DecodeError::ReservedFlags(1)
    );
    let mut bad = ok.clone();
    bad[16] = 0x77;
    assert_eq!(
        Datagram::decode(&bad).unwrap_err(),
        DecodeError::UnknownFrame(0x77)
    );
    // Only a header: no frames at all.
    assert_eq!(
        Datagram::decode(&ok[..16]).unwrap_err(),
        DecodeError::MalformedFrame
    );
    // A segment claiming more bytes than are there.
    let mut bad = ok[..16].to_vec();
    bad.extend_from_slice(&[frame_type::SEGMENT, 0, 0, 0, 0, 1, 0, 10, b'a']);
    assert_eq!(Datagram::decode(&bad).unwrap_err(), DecodeError::Truncated);
    // Non-zero padding.
    let mut bad = ok[..16].to_vec();
    bad.extend_from_slice(&[frame_type::PING, 0, 0, 1]);
    assert_eq!(
        Datagram::decode(&bad).unwrap_err(),
        DecodeError::MalformedFrame
    );
    // Too large.
    let big = vec![0u8; MAX_DATAGRAM + 1];
    assert_eq!(Datagram::decode(&big).unwrap_err(), DecodeError::TooLarge);
}

#[test]
fn initial_round_trip() {
    let msg1 = [5u8; MSG1_LEN];
    let cookie = [6u8; COOKIE_LEN];
    for (c, issue_id) in [
        (None, false),
        (Some(&cookie[..]), false),
        (None, true),
        (Some(&cookie[..]), true),
    ] {
        let bytes = Initial {
            cookie: c,
            msg1: &msg1,
            issue_id,
        }
        .encode(77);
        let options_at = HEADER_LEN + 1 + c.map_or(0, <[u8]>::len) + 2 + MSG1_LEN;
        assert_eq!(bytes[options_at], u8::from(issue_id));
        assert_eq!(bytes.len(), MIN_INITIAL_LEN);
        let h = Header::decode(&bytes).unwrap();
        assert_eq!(h.kind, PacketKind::Initial);
        assert_eq!(h.connection_id, 77);
        let i = Initial::decode(&bytes[HEADER_LEN..]).unwrap();
        assert_eq!(
            i,
            Initial {
                cookie: c,
                msg1: &msg1,
                issue_id,
            }
        );
    }
    let mut bad = Initial {
        cookie: None,
        msg1: &msg1,
        issue_id: false,
    }
    .encode(1);
    bad[1000] = 1;
    assert!(Initial::decode(&bad[HEADER_LEN..]).is_err());
    // An options bit this version does not know is malformed.
    let mut unknown = Initial {
        cookie: None,
        msg1: &msg1,
        issue_id: true,
    }
    .encode(1);
    unknown[HEADER_LEN + 3 + MSG1_LEN] = 0x03;
    assert!(Initial::decode(&unknown[HEADER_LEN..]).is_err());
    for n in 0..60 {
        let _ = Initial::decode(&bad[HEADER_LEN..HEADER_LEN + n]);
    }
}

#[test]
fn decoding_any_prefix_never_panics() {
    let mut b = DatagramBuilder::new(header());
    b.push(&Frame::Ack {
        next_expected: 1,
        sack: &[1, 2, 3],
    });
    b.push(&Frame::Segment {
        seq: 1,
        end: false,
        data: &[9; 50],
    });
    let bytes = b.finish();
    for n in 0..bytes.len() {
        let _ = Datagram::decode(&bytes[..n]);
    }
}
