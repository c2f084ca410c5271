//! Rooms, history, resume and offline direct messages over the seeded
//! emulator: fan-out under loss, resuming with and without a gap, offline
//! delivery and its acknowledgement, and the limits (PROTOCOL.md §5.9 to
//! §5.11).

use udpchat_core::client::{ClientConfig, ClientEvent};
use udpchat_core::server::ServerConfig;
use udpchat_core::server::store::StoreOp;
use udpchat_core::session::ErrorCode;
use udpchat_netem::LinkConfig;
use udpchat_sim::{World, WorldConfig, load_server_config, ms, peer_name, secs};

/// What peer `i`'s events say, through `pick`.
fn seen<T>(w: &World, i: usize, pick: impl Fn(&ClientEvent) -> Option<T>) -> Vec<T> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(_, e)| pick(e))
        .collect()
}

/// The room messages peer `i` received live (not from history): (room,
/// offset, from, text).
fn live(w: &World, i: usize) -> Vec<(String, u64, String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::RoomMessage {
            room,
            offset,
            from,
            text,
            history: false,
            ..
        } => Some((room.clone(), *offset, from.clone(), text.clone())),
        _ => None,
    })
}

/// The offsets of the room messages peer `i` received from history.
fn replayed(w: &World, i: usize) -> Vec<u64> {
    seen(w, i, |e| match e {
        ClientEvent::RoomMessage {
            offset,
            history: true,
            ..
        } => Some(*offset),
        _ => None,
    })
}

fn said(w: &World, i: usize) -> Vec<u64> {
    seen(w, i, |e| match e {
        ClientEvent::Said { offset, .. } => Some(*offset),
        _ => None,
    })
}

fn resumed(w: &World, i: usize) -> Vec<(String, bool, u64)> {
    seen(w, i, |e| match e {
        ClientEvent::Resumed {
            room,
            recovered,
            missed,
        } => Some((room.clone(), *recovered, *missed)),
        _ => None,
    })
}

fn errors(w: &World, i: usize) -> Vec<ErrorCode> {
    seen(w, i, |e| match e {
        ClientEvent::Error { code, .. } => Some(*code),
        _ => None,
    })
}

/// Peers `0..n` log in and join `room`, one after the other.
fn join_all(w: &mut World, n: usize, room: &str) {
    for i in 0..n {
        w.add_client(&peer_name(i));
    }
    w.login_all(secs(10));
    for i in 0..n {
        w.with_client(i, |c| c.join(room)).unwrap();
        w.run_for(secs(1));
    }
    for i in 0..n {
        assert!(
            w.peers[i]
                .events
                .iter()
                .any(|(_, e)| matches!(e, ClientEvent::RoomJoined { room: r, .. } if r == room)),
            "{} joined {room}",
            w.peers[i].name
        );
    }
}

#[test]
fn room_messages_reach_every_member_once_in_offset_order_under_loss() {
    let config = WorldConfig::new(0x5001)
        .with_server(load_server_config())
        .with_link(LinkConfig {
            loss: 0.2,
            ..LinkConfig::default()
        });
    let mut w = World::new(config);
    const N: usize = 6;
    const EACH: usize = 10;
    join_all(&mut w, N, "#lobby");
    for k in 0..EACH {
        for i in 0..N {
            let text = format!("{}-{k}", peer_name(i));
            w.with_client(i, |c| c.say("#lobby", &text)).unwrap();
        }
        w.run_for(ms(100));
    }
    w.run_for(secs(30));
    let mut all_offsets = Vec::new();
    for i in 0..N {
        let got = live(&w, i);
        // Everyone else's messages, each once, in offset order.
        assert_eq!(got.len(), (N - 1) * EACH, "{} got {got:?}", peer_name(i));
        assert!(got.windows(2).all(|p| p[0].1 < p[1].1), "in offset order");
        assert!(got.iter().all(|m| m.2 != peer_name(i)), "not its own");
        // Its own, confirmed with their offsets.
        let mine = said(&w, i);
        assert_eq!(mine.len(), EACH);
        all_offsets.extend(mine);
    }
    all_offsets.sort_unstable();
    assert_eq!(all_offsets, (1..=(N * EACH) as u64).collect::<Vec<_>>());
    assert_eq!(w.server.stats().room_messages, (N * EACH) as u64);
}

#[test]
fn a_client_that_reconnects_gets_exactly_what_it_missed() {
    let mut w = World::new(WorldConfig::new(0x5002).with_server(load_server_config()));
    join_all(&mut w, 2, "#r");
    for k in 0..3 {
        w.with_client(0, |c| c.say("#r", &format!("before {k}")))
            .unwrap();
    }
    w.run_for(secs(2));
    assert_eq!(live(&w, 1).len(), 3);
    // Bob's process dies; alice goes on talking.
    let memory = w.client(1).memory().clone();
    assert_eq!(memory.positions["#r"].1, 3);
    w.vanish_peer(1);
    for k in 0..4 {
        w.with_client(0, |c| c.say("#r", &format!("missed {k}")))
            .unwrap();
    }
    w.run_for(secs(2));
    // Bob again, with what the last session remembered.
    let bob = w.add_client_with(
        "bob",
        ClientConfig {
            memory,
            ..ClientConfig::default()
        },
    );
    w.login_all(secs(10));
    w.run_for(secs(2));
    assert_eq!(replayed(&w, bob), [4, 5, 6, 7]);
    assert_eq!(resumed(&w, bob), [("#r".to_string(), true, 4)]);
    assert_eq!(w.client(bob).memory().positions["#r"].1, 7);
    // Nothing twice: the replay came before room_resume, then silence.
    w.with_client(0, |c| c.say("#r", "after")).unwrap();
    w.run_for(secs(2));
    assert_eq!(live(&w, bob).iter().map(|m| m.1).collect::<Vec<_>>(), [8]);
}

#[test]
fn a_client_that_missed_more_than_the_server_replays_is_told_of_the_gap() {
    let server = ServerConfig {
        max_replay: 5,
        history_on_join: 2,
        ..load_server_config()
    };
    let mut w = World::new(WorldConfig::new(0x5003).with_server(server));
    join_all(&mut w, 2, "#r");
    let memory = w.client(1).memory().clone();
    w.vanish_peer(1);
    for k in 0..8 {
        w.with_client(0, |c| c.say("#r", &format!("m{k}"))).unwrap();
    }
    w.run_for(secs(2));
    let bob = w.add_client_with(
        "bob",
        ClientConfig {
            memory,
            ..ClientConfig::default()
        },
    );
    w.login_all(secs(10));
    w.run_for(secs(2));
    // None of the eight, and the gap said plainly.
    assert_eq!(replayed(&w, bob), Vec::<u64>::new());
    assert_eq!(resumed(&w, bob), [("#r".to_string(), false, 8)]);
    // The client's place is now the room's end.
    assert_eq!(w.client(bob).memory().positions["#r"].1, 8);

    // A room made again after it emptied has another epoch: a position in
    // the old one recovers nothing and counts nothing.
    let old = w.client(bob).memory().clone();
    for i in [0, bob] {
        w.with_client(i, |c| c.part("#r", None)).unwrap();
        w.run_for(secs(1));
    }
    w.with_client(0, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    w.with_client(bob, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    w.vanish_peer(bob);
    w.with_client(0, |c| c.say("#r", "new epoch")).unwrap();
    w.run_for(secs(1));
    let again = w.add_client_with(
        "bob",
        ClientConfig {
            memory: old,
            ..ClientConfig::default()
        },
    );
    w.login_all(secs(10));
    w.run_for(secs(2));
    assert_eq!(resumed(&w, again), [("#r".to_string(), false, 0)]);
    assert_eq!(replayed(&w, again), Vec::<u64>::new());
}

#[test]
fn a_direct_message_to_an_offline_user_waits_and_is_removed_once_acknowledged() {
    let config = WorldConfig::new(0x5004)
        .with_server(load_server_config())
        .with_link(LinkConfig {
            loss: 0.2,
            ..LinkConfig::default()
        });
    let mut w = World::new(config);
    w.add_client("alice");
    let dave = w.add_client("dave");
    w.login_all(secs(10));
    w.vanish_peer(dave);
    w.run_for(secs(20)); // dave's session times out
    for k in 0..3 {
        w.send_dm(0, "dave", &format!("note {k}")).unwrap();
    }
    w.run_for(secs(5));
    let stored = w.peers[0]
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                ClientEvent::Confirmed {
                    stored: true,
                    recipients: 0,
                    ..
                }
            )
        })
        .count();
    assert_eq!(stored, 3);
    assert_eq!(w.server.offline_count(), 3);
    // The server restarts (the store keeps them), then dave logs in.
    w.restart_server();
    assert_eq!(w.server.offline_count(), 3);
    let dave = w.add_client("dave");
    w.login_all(secs(20));
    w.run_for(secs(10));
    let got: Vec<(String, bool)> = w.peers[dave]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Direct { text, offline, .. } => Some((text.clone(), *offline)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            ("note 0".to_string(), true),
            ("note 1".to_string(), true),
            ("note 2".to_string(), true)
        ]
    );
    // Acknowledged, so removed from the store.
    assert_eq!(w.server.offline_count(), 0);
    assert_eq!(w.store.snapshot(10).offline.len(), 0);
}

#[test]
fn an_offline_message_delivered_again_after_a_crash_is_shown_once() {
    let mut w = World::new(WorldConfig::new(0x5005).with_server(load_server_config()));
    w.add_client("alice");
    let dave = w.add_client("dave");
    w.login_all(secs(10));
    w.vanish_peer(dave);
    w.run_for(secs(20));
    w.send_dm(0, "dave", "once").unwrap();
    w.run_for(secs(2));
    let waiting = w.store.snapshot(10).offline;
    assert_eq!(waiting.len(), 1);
    let dave = w.add_client("dave");
    w.login_all(secs(10));
    w.run_for(secs(2));
    assert_eq!(w.server.offline_count(), 0, "acknowledged and removed");
    let memory = w.client(dave).memory().clone();
    assert_eq!(memory.seen_offline.len(), 1);
    // As if the server died after delivering it and before its removal was
    // on disk: the store holds it again, and the server restarts.
    w.vanish_peer(dave);
    w.store.apply(&StoreOp::PutOffline(waiting[0].clone()));
    w.restart_server();
    let dave = w.add_client_with(
        "dave",
        ClientConfig {
            memory,
            ..ClientConfig::default()
        },
    );
    w.login_all(secs(20));
    w.run_for(secs(5));
    // Delivered again by the server, dropped by the client by its id, and
    // removed once acknowledged.
    let shown = w.peers[dave]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Direct { .. }))
        .count();
    assert_eq!(shown, 0);
    assert_eq!(w.server.offline_count(), 0);
    assert_eq!(w.store.snapshot(10).offline.len(), 0);
}

#[test]
fn the_limits_refuse_with_a_clear_code() {
    let server = ServerConfig {
        max_rooms_per_user: 2,
        max_room_members: 2,
        max_offline_per_sender: 2,
        max_offline_per_user: 3,
        max_topic: 5,
        ..load_server_config()
    };
    let mut w = World::new(WorldConfig::new(0x5006).with_server(server));
    for i in 0..4 {
        w.add_client(&peer_name(i));
    }
    w.login_all(secs(10));
    // Rooms per user.
    for room in ["#a", "#b", "#c"] {
        w.with_client(0, |c| c.join(room)).unwrap();
        w.run_for(secs(1));
    }
    assert_eq!(errors(&w, 0), [ErrorCode::TooManyRooms]);
    // Topic length.
    w.with_client(0, |c| c.set_topic("#a", "short")).unwrap();
    w.with_client(0, |c| c.set_topic("#a", "too long")).unwrap();
    w.run_for(secs(1));
    assert_eq!(
        errors(&w, 0),
        [ErrorCode::TooManyRooms, ErrorCode::InvalidTopic]
    );
    // Members per room.
    for i in [1, 2] {
        w.with_client(i, |c| c.join("#a")).unwrap();
        w.run_for(secs(1));
    }
    assert_eq!(errors(&w, 1), Vec::<ErrorCode>::new());
    assert_eq!(errors(&w, 2), [ErrorCode::RoomFull]);
    // Not a member; no such room; a bad name.
    w.with_client(3, |c| c.say("#a", "hi")).unwrap();
    w.with_client(3, |c| c.say("#zzz", "hi")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, 3), [ErrorCode::NotMember, ErrorCode::NoSuchRoom]);
    assert!(w.with_client(3, |c| c.join("No Caps")).is_err());
    // Offline messages: per sender, then per recipient.
    w.vanish_peer(3);
    w.run_for(secs(20));
    for k in 0..3 {
        w.send_dm(1, "dave", &format!("b{k}")).unwrap();
    }
    w.run_for(secs(1));
    assert_eq!(errors(&w, 1), [ErrorCode::InboxFull]);
    for k in 0..2 {
        w.send_dm(2, "dave", &format!("c{k}")).unwrap();
    }
    w.run_for(secs(1));
    assert_eq!(errors(&w, 2), [ErrorCode::RoomFull, ErrorCode::InboxFull]);
    assert_eq!(w.server.offline_count(), 3);
}
