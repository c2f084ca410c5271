//! Presence in a crowd: `joined` and `left` are announced only while at
//! most `max_presence` users are online, and online lists stop at
//! `max_listed` names with the whole count beside them.

use udpchat_core::client::ClientEvent;
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::{PRESENCE_INTERVAL, PRESENCE_SLICE, PRESENCE_SLICE_GAP, ServerConfig};
use udpchat_core::session::{ClientMessage, MAX_LISTED, Operation, ServerMessage};
use udpchat_sim::{World, WorldConfig, load_server_config, peer_name, secs};

fn joined_seen(w: &World, i: usize) -> Vec<String> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Joined(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

fn left_seen(w: &World, i: usize) -> Vec<String> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Left { user, .. } => Some(user.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn arrivals_and_departures_are_announced_up_to_the_limit() {
    let config = WorldConfig::new(0x9E).with_server(ServerConfig {
        max_presence: 3,
        ..load_server_config()
    });
    let mut w = World::new(config);
    // One at a time, so that each login sees a known crowd.
    for i in 0..5 {
        w.add_client(&peer_name(i));
        w.login_all(secs(10));
        w.run_for(secs(1));
    }
    // alice saw bob (2 online) and carol (3) arrive, not dave (4) or erin (5).
    assert_eq!(joined_seen(&w, 0), ["bob", "carol"]);
    assert_eq!(joined_seen(&w, 3), Vec::<String>::new());

    // erin leaves 5 online, dave 4: not announced; carol leaves 3: announced.
    for i in [4, 3, 2] {
        w.with_client(i, |c| c.request_operation(Operation::EX))
            .unwrap();
        let t = w.now;
        assert!(w.run_until_cond(t + secs(10), |w| w.client(i).closed().is_some()));
        w.run_for(secs(1));
    }
    assert_eq!(left_seen(&w, 0), ["carol"]);
    assert_eq!(left_seen(&w, 1), ["carol"]);
}

#[test]
fn the_default_limits_are_a_thousand() {
    let config = ServerConfig::default();
    assert_eq!((config.max_listed, config.max_presence), (MAX_LISTED, 1000));
}

#[test]
fn online_lists_stop_at_the_limit_and_give_the_count() {
    const MAX: usize = 4;
    let config = WorldConfig::new(0x11).with_server(ServerConfig {
        max_listed: MAX,
        ..load_server_config()
    });
    let mut w = World::new(config);
    for i in 0..MAX {
        w.add_client(&format!("u{i:04}"));
    }
    w.login_all(secs(20));
    let raw = w.add_raw_peer("zed", ChannelConfig::default());
    w.login_all(secs(10));
    let login_ok = w.peers[raw]
        .raw()
        .received
        .iter()
        .find_map(|(_, m)| match m {
            ServerMessage::LoginOk { online, count, .. } => Some((online.clone(), *count)),
            _ => None,
        })
        .expect("login_ok");
    assert_eq!(login_ok.0.len(), MAX);
    assert_eq!(login_ok.0[0], "u0000", "sorted, cut at the end");
    assert!(!login_ok.0.contains(&"zed".to_string()));
    assert_eq!(login_ok.1, Some(MAX as u32 + 1));

    w.raw_send(raw, &ClientMessage::Who);
    w.run_for(secs(1));
    let online = w.peers[raw]
        .raw()
        .received
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            ServerMessage::Online { users, count, .. } => Some((users.len(), *count)),
            _ => None,
        });
    assert_eq!(online, Some((MAX, Some(MAX as u32 + 1))));

    // With exactly MAX online the list is whole and has no count.
    w.with_client(0, |c| c.request_operation(Operation::EX))
        .unwrap();
    w.run_for(secs(2));
    w.raw_send(raw, &ClientMessage::Who);
    w.run_for(secs(1));
    let last = w.peers[raw].raw().received.last().map(|(_, m)| m.clone());
    assert!(
        matches!(&last, Some(ServerMessage::Online { users, count: None, .. }) if users.len() == MAX),
        "{last:?}"
    );

    // A client passes the count on to its user.
    let late = w.add_client("zz");
    let deadline = w.now + secs(10);
    assert!(w.run_until_cond(deadline, |w| w.client(late).is_logged_in()));
    let logged_in = w.peers[late].events.iter().find_map(|(_, e)| match e {
        ClientEvent::LoggedIn { online, count, .. } => Some((online.len(), *count)),
        _ => None,
    });
    assert_eq!(logged_in, Some((MAX, Some(MAX as u32 + 1))));
}

#[test]
fn notices_in_a_burst_of_logins_come_in_rounds_once_each_and_before_messages() {
    let mut w = World::with_clients(WorldConfig::new(0x3C), 8);
    w.login_all(secs(20));
    w.run_for(secs(1));
    for i in 0..8 {
        let me = peer_name(i);
        let listed: Vec<String> = w.peers[i]
            .events
            .iter()
            .find_map(|(_, e)| match e {
                ClientEvent::LoggedIn { online, .. } => Some(online.clone()),
                _ => None,
            })
            .expect("logged in");
        let joined = joined_seen(&w, i);
        let mut everyone: Vec<String> = listed.iter().chain(&joined).cloned().collect();
        everyone.sort();
        let mut expected: Vec<String> = (0..8).map(peer_name).collect();
        expected.sort();
        assert_eq!(
            everyone, expected,
            "{me}: each other user exactly once, in the list or as joined"
        );
    }
    // The notices went out in rounds: alice saw several arrivals at one
    // instant.
    let times: Vec<_> = w.peers[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Joined(_)))
        .map(|(t, _)| *t)
        .collect();
    let mut rounds = times.clone();
    rounds.dedup();
    assert!(rounds.len() < times.len(), "{times:?}");

    // Users who speak at once are announced before being heard, even when
    // their notice was waiting for the next round.
    let late = [w.add_client("late1"), w.add_client("late2")];
    w.login_all(secs(10));
    assert!(
        w.server.poll_timeout().is_some(),
        "a notice waits for its round"
    );
    for i in late {
        w.send_pm(i, &format!("first words of {}", peer_name_of(&w, i)))
            .unwrap();
    }
    w.run_for(secs(1));
    let seen: Vec<&ClientEvent> = w.peers[0].events.iter().map(|(_, e)| e).collect();
    for i in late {
        let name = peer_name_of(&w, i);
        let joined_at = seen
            .iter()
            .position(|e| matches!(e, ClientEvent::Joined(u) if *u == name))
            .expect("announced");
        let heard_at = seen
            .iter()
            .position(|e| matches!(e, ClientEvent::Public { from, .. } if *from == name))
            .expect("heard");
        assert!(joined_at < heard_at, "{name}");
    }
}

#[test]
fn a_round_for_a_crowd_goes_out_a_slice_at_a_time_and_a_speaker_finishes_it() {
    const CROWD: usize = PRESENCE_SLICE * 2 + 10;
    let mut w = World::with_clients(WorldConfig::new(0x5D), CROWD);
    w.login_all(secs(120));
    w.run_for(secs(2));

    // A newcomer who says nothing: the crowd hears of them in slices of
    // PRESENCE_SLICE users, PRESENCE_SLICE_GAP apart, each user once.
    let quiet = w.add_client("quiet");
    w.login_all(secs(10));
    w.run_for(secs(1));
    let mut heard: Vec<_> = (0..CROWD)
        .map(|i| {
            let times: Vec<_> = w.peers[i]
                .events
                .iter()
                .filter(|(_, e)| matches!(e, ClientEvent::Joined(u) if u == "quiet"))
                .map(|(t, _)| *t)
                .collect();
            assert_eq!(
                times.len(),
                1,
                "{} heard of quiet once",
                peer_name_of(&w, i)
            );
            times[0]
        })
        .collect();
    heard.sort();
    let first = heard[0];
    let in_first_slice = heard.iter().filter(|t| **t == first).count();
    assert!(
        (1..=PRESENCE_SLICE).contains(&in_first_slice),
        "{in_first_slice} at once"
    );
    let spread = heard[CROWD - 1] - first;
    assert!(
        spread >= PRESENCE_SLICE_GAP + PRESENCE_SLICE_GAP && spread < PRESENCE_INTERVAL,
        "{spread:?}"
    );
    assert!(w.client(quiet).is_logged_in());

    // A newcomer who speaks at once: the round of their notice is finished
    // before their message goes, so nobody hears them before hearing that
    // they arrived.
    w.run_for(secs(1));
    let speaker = w.add_client("speaker");
    let deadline = w.now + secs(10);
    assert!(w.run_until_cond(deadline, |w| w.client(speaker).is_logged_in()));
    w.send_pm(speaker, "hello, crowd").unwrap();
    w.run_for(secs(1));
    for i in 0..CROWD {
        let seen: Vec<&ClientEvent> = w.peers[i].events.iter().map(|(_, e)| e).collect();
        let joined = seen
            .iter()
            .position(|e| matches!(e, ClientEvent::Joined(u) if u == "speaker"))
            .expect("announced");
        let said = seen
            .iter()
            .position(|e| matches!(e, ClientEvent::Public { from, .. } if from == "speaker"))
            .expect("heard");
        assert!(joined < said, "{}", peer_name_of(&w, i));
    }
}

fn peer_name_of(w: &World, i: usize) -> String {
    w.peers[i].name.clone()
}
