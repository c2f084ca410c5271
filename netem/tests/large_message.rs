//! Acceptance: a 60,000-byte message crosses a lossy network intact (it is
//! fragmented into segments and reassembled); a larger text is refused with
//! a clear error, by the client before sending and by the server when a
//! peer sends one anyway.

use udpchat_core::client::{ClientEvent, CommandError};
use udpchat_core::reliable::{ChannelConfig, ChannelError};
use udpchat_core::server::ServerEvent;
use udpchat_core::session::{
    ClientMessage, ErrorCode, MAX_TEXT, Operation, ServerMessage, TextError,
};
use udpchat_core::wire::{BASE_DATAGRAM, CloseCode};
use udpchat_netem::LinkConfig;
use udpchat_sim::{World, WorldConfig, ms, secs};

/// A text of exactly `len` bytes, mixing ASCII, multi-byte characters and
/// characters JSON escapes, different at every position.
fn text_of(len: usize, salt: u32) -> String {
    let pieces = [
        "héllo",
        " wörld ",
        "\"quoted\"",
        " back\\slash ",
        "✓",
        "🦀",
        " 0123 ",
    ];
    let mut s = String::with_capacity(len);
    let mut i = salt;
    while s.len() < len {
        let p = pieces[(i % 7) as usize];
        let n = format!("{p}{i}");
        if s.len() + n.len() > len {
            break;
        }
        s.push_str(&n);
        i += 1;
    }
    while s.len() < len {
        s.push('.');
    }
    assert_eq!(s.len(), len);
    s
}

fn lossy() -> LinkConfig {
    LinkConfig::lossy(0.3)
        .with_delay(ms(20))
        .with_jitter(ms(50))
        .with_reorder(0.05, ms(100))
}

#[test]
fn sixty_thousand_bytes_cross_thirty_percent_loss_intact() {
    let mut w = World::with_clients(WorldConfig::new(0x60_000).with_link(lossy()).recording(), 3);
    w.login_all(secs(30));
    let (alice, bob, carol) = (0, 1, 2);
    let public = text_of(MAX_TEXT, 0);
    let direct = text_of(MAX_TEXT, 1_000);
    let start = w.now;
    w.send_pm(alice, &public).unwrap();
    w.send_dm(carol, "bob", &direct).unwrap();
    let done = w.run_until_cond(start + secs(30), |w| w.deliveries == 3 && w.confirms == 2);
    assert!(
        done,
        "{} deliveries, {} confirmations",
        w.deliveries, w.confirms
    );

    for (i, want) in [
        (
            bob,
            vec![("alice", false, &public), ("carol", true, &direct)],
        ),
        (carol, vec![("alice", false, &public)]),
        (alice, vec![]),
    ] {
        let mut got: Vec<_> = w.messages_of(i).into_iter().map(|(_, m)| m).collect();
        got.sort_by(|a, b| a.from.cmp(&b.from));
        assert_eq!(got.len(), want.len());
        for (m, (from, direct, text)) in got.iter().zip(want) {
            assert_eq!((m.from.as_str(), m.direct), (from, direct));
            assert!(
                m.text == *text,
                "{}'s copy from {from} differs",
                w.peers[i].name
            );
        }
    }
    assert!(w.peers[alice].events.iter().any(|(_, e)| *e
        == ClientEvent::Confirmed {
            op: Operation::PM,
            to: None,
            recipients: 2,
            stored: false,
        }));
    assert!(w.peers[carol].events.iter().any(|(_, e)| *e
        == ClientEvent::Confirmed {
            op: Operation::DM,
            to: Some("bob".into()),
            recipients: 1,
            stored: false,
        }));
    // It went as many segments, none of them in an oversized datagram, and
    // some of them had to be sent again.
    assert!(w.log.iter().all(|d| d.bytes.len() <= BASE_DATAGRAM));
    assert!(
        w.log
            .iter()
            .filter(|d| d.segments().len() == 1 && d.bytes.len() > 1_000)
            .count()
            > 4 * 55
    );
    assert!(w.retransmissions > 20);
}

#[test]
fn one_byte_over_is_refused_by_the_client_before_sending() {
    let mut w = World::with_clients(WorldConfig::new(1), 2);
    w.login_all(secs(5));
    w.run_for(secs(1));
    let sent = w.datagrams_sent;
    let too_long = text_of(MAX_TEXT + 1, 0);
    let e = w.with_client(0, |c| c.send_public(&too_long)).unwrap_err();
    assert_eq!(
        e,
        CommandError::InvalidText(TextError::TooLong(MAX_TEXT + 1))
    );
    assert_eq!(
        e.to_string(),
        "message of 60001 bytes is longer than 60000 bytes"
    );
    let e = w
        .with_client(0, |c| c.send_direct("bob", &too_long))
        .unwrap_err();
    assert_eq!(
        e,
        CommandError::InvalidText(TextError::TooLong(MAX_TEXT + 1))
    );
    // Multi-byte characters count in bytes: 20,000 three-byte characters
    // fit, one more byte does not.
    let euros = "€".repeat(MAX_TEXT / 3);
    let e = w
        .with_client(0, |c| c.send_public(&format!("{euros}!")))
        .unwrap_err();
    assert_eq!(
        e,
        CommandError::InvalidText(TextError::TooLong(MAX_TEXT + 1))
    );
    assert_eq!(w.datagrams_sent, sent, "nothing was sent");
    // The session goes on, and exactly the limit works.
    w.send_pm(0, &euros).unwrap();
    assert!(w.run_until_cond(w.now + secs(5), |w| w.deliveries == 1));
    assert_eq!(w.messages_of(1)[0].1.text, euros);
}

/// Logs in a raw peer (it answers the password request itself).
fn raw_world(channel: ChannelConfig) -> (World, usize) {
    let mut w = World::with_clients(
        WorldConfig::new(2).with_link(LinkConfig::default().with_delay(ms(10))),
        1,
    );
    let mallory = w.add_raw_peer("mallory", channel);
    w.login_all(secs(5));
    (w, mallory)
}

fn errors_of(w: &World, raw: usize) -> Vec<(ErrorCode, String)> {
    w.peers[raw]
        .raw()
        .received
        .iter()
        .filter_map(|(_, m)| match m {
            ServerMessage::Error { code, message } => Some((*code, message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn one_byte_over_is_refused_by_the_server_with_a_clear_error() {
    let (mut w, mallory) = raw_world(ChannelConfig::default());
    let too_long = text_of(MAX_TEXT + 1, 0);
    w.raw_send(
        mallory,
        &ClientMessage::Op {
            op: Operation::PM,
            reason: None,
        },
    );
    w.raw_send(
        mallory,
        &ClientMessage::Pm {
            text: too_long.clone(),
        },
    );
    w.raw_send(
        mallory,
        &ClientMessage::Op {
            op: Operation::DM,
            reason: None,
        },
    );
    w.raw_send(
        mallory,
        &ClientMessage::Dm {
            to: "alice".into(),
            text: too_long,
        },
    );
    assert!(w.run_until_cond(w.now + secs(5), |w| errors_of(w, mallory).len() == 2));
    let expected = (
        ErrorCode::InvalidText,
        "message of 60001 bytes is longer than 60000 bytes".to_string(),
    );
    assert_eq!(errors_of(&w, mallory), [expected.clone(), expected]);
    assert!(w.messages_of(0).is_empty(), "alice got nothing");
    assert_eq!(w.server.stats().deliveries, 0);
    // The session survives, and the limit itself passes.
    w.raw_send(
        mallory,
        &ClientMessage::Op {
            op: Operation::PM,
            reason: None,
        },
    );
    w.raw_send(
        mallory,
        &ClientMessage::Pm {
            text: text_of(MAX_TEXT, 0),
        },
    );
    assert!(w.run_until_cond(w.now + secs(5), |w| w.deliveries == 1));
    assert_eq!(w.messages_of(0)[0].1.text, text_of(MAX_TEXT, 0));
    assert!(
        w.peers[mallory]
            .raw()
            .received
            .iter()
            .any(|(_, m)| matches!(
                m,
                ServerMessage::Confirm {
                    op: Operation::PM,
                    recipients: 1,
                    ..
                }
            ))
    );
}

#[test]
fn a_message_over_the_channel_limit_ends_the_session() {
    // Past the reliable channel's message limit (131,072 bytes) the server
    // does not buffer on: it closes the connection as a protocol violation.
    let limit = ChannelConfig::default().max_message;
    let (mut w, mallory) = raw_world(ChannelConfig {
        max_message: 4 * limit,
        ..ChannelConfig::default()
    });
    w.raw_send(
        mallory,
        &ClientMessage::Op {
            op: Operation::PM,
            reason: None,
        },
    );
    w.raw_send(
        mallory,
        &ClientMessage::Pm {
            text: "x".repeat(2 * limit),
        },
    );
    let ok = w.run_until_cond(w.now + secs(10), |w| {
        w.peers[mallory].raw().channel.error().is_some()
    });
    assert!(ok, "the server did not close the connection");
    assert_eq!(
        w.peers[mallory].raw().channel.error(),
        Some(ChannelError::PeerClosed(CloseCode::ProtocolViolation))
    );
    assert!(w.server_events.iter().any(|(_, e)| matches!(
        e,
        ServerEvent::SessionClosed {
            error: Some(ChannelError::MessageTooLarge),
            ..
        }
    )));
    // Presence notices close together go out in rounds (100 ms apart).
    w.run_for(secs(1));
    assert!(w.peers[0].events.iter().any(|(_, e)| matches!(
        e,
        ClientEvent::Left { user, .. } if user == "mallory"
    )));
    assert!(w.messages_of(0).is_empty());
    assert_eq!(w.server.online_users().collect::<Vec<_>>(), ["alice"]);
}
