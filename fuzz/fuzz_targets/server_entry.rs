//! The server's datagram entry point: a sequence of datagrams from a few
//! addresses, some sent raw and some sealed inside a genuine session, with
//! time moving between them. No panic, no answer larger than its cause to an
//! unproven address.
#![no_main]

use core::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use udpchat_core::crypto::{Initiator, StaticKey};
use udpchat_core::server::{Input, Output, Server, ServerConfig};
use udpchat_core::wire::{HEADER_LEN, Header, Initial, PacketKind};
use udpchat_core::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let key = StaticKey::from_private([0x42; 32]);
    let mut server = Server::new(ServerConfig::default(), [], key, [3; 32]);
    let mut now = Instant::from_micros(10_000_000);
    let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();

    // A genuine handshake, so that fuzzed frames can be sealed in-session.
    let init = Initiator::new(99, [4; 32]).unwrap();
    let first = Initial { cookie: None, msg1: init.msg1(), issue_id: true }.encode(99);
    let mut buf = Vec::new();
    server.handle_datagram(now, client, &first);
    let retry = server.poll_transmit(now, &mut buf).unwrap();
    let cookie = buf[HEADER_LEN..retry.len].to_vec();
    let second = Initial { cookie: Some(&cookie[..]), msg1: init.msg1(), issue_id: true }.encode(99);
    server.handle_datagram(now, client, &second);
    let hs = server.poll_transmit(now, &mut buf).unwrap();
    let est = init.finish(&buf[HEADER_LEN..hs.len]).unwrap();
    // The session's id, issued by the server.
    let conn = est.issued_id.expect("an issued connection id");
    let mut pn = 0u32;

    let mut rest = data;
    while rest.len() >= 3 {
        let (ctl, tail) = rest.split_at(3);
        let len = usize::from(u16::from_le_bytes([ctl[1], ctl[2]])) % 1400;
        let len = len.min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        now += Duration::from_millis(u64::from(ctl[0] & 0x3f) * 50);
        let from: SocketAddr = match ctl[0] >> 6 {
            0 => client,
            1 => "192.0.2.2:6000".parse().unwrap(),
            _ => "[2001:db8::1]:7000".parse().unwrap(),
        };
        if ctl[0] & 0x80 != 0 && ctl[0] & 0x40 == 0 {
            // Frames sealed in the genuine session.
            let mut plain = Vec::new();
            Header {
                marker: udpchat_core::wire::Marker::Command,
                kind: PacketKind::Data,
                connection_id: conn,
                packet_number: pn,
            }
            .encode(&mut plain);
            pn += 1;
            plain.extend_from_slice(chunk);
            if let Ok(sealed) = est.transport.seal(&plain) {
                server.handle_input(Input::Datagram { now, from: client, bytes: &sealed });
            }
        } else {
            server.handle_input(Input::Datagram { now, from, bytes: chunk });
        }
        server.handle_input(Input::Timeout(now));
        loop {
            match server.poll_output(now, &mut buf) {
                Output::Transmit(t) => {
                    if t.to != client {
                        // Never more to an unproven address than it sent.
                        assert!(t.len <= chunk.len());
                    }
                }
                Output::Request(r) => {
                    server.handle_input(Input::Response(now, udpchat_sim::answer(r)));
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
    }
});
