//! The console's rooms, driven in memory through the simulation crate's
//! [`Consoles`]: joining and talking in a room, the active room, history,
//! offline direct messages, resuming after a server restart, and the JSON
//! form of each new kind of event.

use udpchat_core::server::ServerConfig;
use udpchat_core::ui::{ChatEvent, Output, PromptKind, render_json, render_plain, render_styled};
use udpchat_sim::Consoles;

fn test_config() -> ServerConfig {
    ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    }
}

/// Steps until user `i` showed a line for which `want` holds.
fn wait_line(net: &mut Consoles, i: usize, want: impl Fn(&str) -> bool) {
    net.run_until(|n| n.users[i].lines().iter().any(|l| want(l)), 3000);
}

fn last_prompt(net: &Consoles, i: usize) -> Option<PromptKind> {
    net.users[i].seen.iter().rev().find_map(|o| match o {
        Output::Prompt(p) => Some(p.clone()),
        _ => None,
    })
}

#[test]
fn two_users_join_a_room_and_talk_in_it() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "/join #rust");
    wait_line(&mut net, alice, |l| {
        l == "* you joined #rust; members: alice"
    });
    // The active room is in the prompt, and plain lines go there.
    let prompt = last_prompt(&net, alice).unwrap();
    assert_eq!(
        prompt,
        PromptKind::Room {
            room: "#rust".to_string()
        }
    );
    assert_eq!(prompt.terminal_text("alice"), "#rust> ");
    assert_eq!(net.users[alice].console.active_room(), Some("#rust"));
    net.line(bob, "/join rust");
    wait_line(&mut net, alice, |l| l == "* bob joined #rust");
    net.line(alice, "hi bob");
    wait_line(&mut net, bob, |l| l == "[#rust] <alice> hi bob");
    // Only /confirm shows the confirmation (piped: confirmations are on).
    assert!(
        net.users[alice]
            .lines()
            .iter()
            .any(|l| l.starts_with("ok: message stored in #rust")),
        "{:#?}",
        net.users[alice].lines()
    );
    // A mention rings the bell as in public.
    net.line(bob, "/msg #rust alice: look");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::RoomMessage { mention: true, .. }))
        },
        2000,
    );
    let mention = net.users[alice]
        .events()
        .into_iter()
        .find(|e| matches!(e, ChatEvent::RoomMessage { mention: true, .. }))
        .unwrap()
        .clone();
    assert!(udpchat_core::ui::rings_bell(&mention));
    // The menu words still work with a room active, and /go alone sends
    // plain lines to everyone online again.
    net.line(alice, "PM");
    net.line(alice, "to all");
    wait_line(&mut net, bob, |l| l == "[alice] to all");
    net.line(alice, "/go");
    net.line(alice, "public again");
    wait_line(&mut net, bob, |l| l == "[alice] public again");
    assert_eq!(last_prompt(&net, alice), Some(PromptKind::Menu));
    net.line(alice, "/go #rust");
    net.line(alice, "/me waves");
    wait_line(&mut net, bob, |l| l == "[#rust] * alice waves");
    // Names, topic, room list, part.
    net.line(bob, "/names");
    wait_line(&mut net, bob, |l| l == "members of #rust: alice, bob");
    net.line(bob, "/topic release on friday");
    wait_line(&mut net, alice, |l| {
        l == "* bob set the topic of #rust: release on friday"
    });
    net.line(alice, "/topic");
    wait_line(&mut net, alice, |l| {
        l == "topic of #rust: release on friday"
    });
    net.line(alice, "/rooms");
    wait_line(&mut net, alice, |l| {
        l == "rooms: #rust (2): release on friday"
    });
    net.line(bob, "/part #rust bye all");
    wait_line(&mut net, alice, |l| l == "* bob left #rust (bye all)");
    wait_line(&mut net, bob, |l| l == "* you left #rust");
    assert_eq!(net.users[bob].console.active_room(), None);
    // Completion offers the joined room where a room is expected.
    assert_eq!(
        net.users[alice].console.complete("/part #r", 8),
        (6, vec!["#rust".to_string()])
    );
    // /help lists the room commands.
    net.line(alice, "/help");
    wait_line(&mut net, alice, |l| l.contains("/history [#ROOM] [N]"));
}

#[test]
fn history_comes_with_a_join_and_with_history() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    net.line(alice, "/join #rust");
    for i in 1..=3 {
        net.line(alice, &format!("line {i}"));
    }
    wait_line(&mut net, alice, |l| {
        l.starts_with("ok: message stored in #rust (offset 3)")
    });
    let bob = net.join("bob", "b", false);
    net.line(bob, "/join #rust");
    // The backlog is history: marked with its time.
    wait_line(&mut net, bob, |l| {
        l.starts_with("[#rust ") && l.ends_with("] <alice> line 3")
    });
    net.line(bob, "/history #rust 2");
    wait_line(&mut net, bob, |l| {
        l == "(end of history of #rust: 2 messages; older ones exist)"
    });
    let history: Vec<_> = net.users[bob]
        .events()
        .into_iter()
        .filter(|e| matches!(e, ChatEvent::RoomMessage { history: true, .. }))
        .cloned()
        .collect();
    assert_eq!(history.len(), 5, "{history:#?}");
    // Styled, history is dim and stamped.
    let styled = render_styled(&history[0], None, false);
    assert!(styled.starts_with("[#rust "), "{styled}");
    assert!(!udpchat_core::ui::rings_bell(&history[0]));
}

#[test]
fn a_direct_message_that_waited_says_so() {
    let mut net = Consoles::new(test_config());
    let carol = net.join("carol", "c", false);
    net.line(carol, "/quit");
    net.run_until(|n| n.users[carol].console.exit_code().is_some(), 500);
    let bob = net.join("bob", "b", false);
    net.line(bob, "/msg carol call me");
    wait_line(&mut net, bob, |l| {
        l.starts_with("ok: direct message stored for carol")
    });
    let carol = net.join("carol", "c", false);
    wait_line(&mut net, carol, |l| {
        l.starts_with("[DM from bob] (") && l.ends_with(", while you were away) call me")
    });
    let event = net.users[carol]
        .events()
        .into_iter()
        .find(|e| matches!(e, ChatEvent::OfflineDirect { .. }))
        .unwrap()
        .clone();
    assert!(udpchat_core::ui::rings_bell(&event));
    let json = render_json(&event, "T");
    assert!(
        json.starts_with(r##"{"time":"T","type":"direct","from":"bob","text":"call me","sent":""##),
        "{json}"
    );
    assert!(json.ends_with(r##"Z","offline":true}"##), "{json}");
}

#[test]
fn after_a_restart_the_room_resumes_with_what_was_missed() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    let bob = net.join("bob", "b", false);
    net.line(alice, "/join #rust");
    net.line(bob, "/join #rust");
    wait_line(&mut net, alice, |l| l == "* bob joined #rust");
    net.line(bob, "/msg #rust before");
    wait_line(&mut net, alice, |l| {
        l == "[#rust] <alice> before" || l == "[#rust] <bob> before"
    });
    net.restart([7; 32], 2);
    net.run_until(
        |n| {
            n.users[alice].events().iter().any(|e| {
                matches!(
                    e,
                    ChatEvent::Disconnect {
                        reconnect_in: Some(_),
                        ..
                    }
                )
            })
        },
        500,
    );
    // bob is back first and talks while alice is away.
    let bob = net.join("bob", "b", false);
    net.line(bob, "/msg #rust while you were gone");
    wait_line(&mut net, bob, |l| {
        l.starts_with("ok: message stored in #rust")
    });
    wait_line(&mut net, alice, |l| l == "resumed #rust: 1 missed message");
    let lines = net.users[alice].lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[#rust ") && l.ends_with("] <bob> while you were gone")),
        "{lines:#?}"
    );
    // The active room stays active.
    assert_eq!(net.users[alice].console.active_room(), Some("#rust"));
    net.line(alice, "back");
    wait_line(&mut net, bob, |l| l == "[#rust] <alice> back");
}

#[test]
fn each_new_kind_of_event_is_a_json_line() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "/join #rust");
    wait_line(&mut net, alice, |l| l.starts_with("* you joined #rust"));
    net.line(bob, "/join #rust");
    net.line(bob, "hello");
    wait_line(&mut net, bob, |l| {
        l.starts_with("ok: message stored in #rust")
    });
    net.line(bob, "/names");
    net.line(bob, "/topic t");
    wait_line(&mut net, alice, |l| l.starts_with("* bob set the topic"));
    net.line(bob, "/rooms");
    net.line(bob, "/history");
    wait_line(&mut net, bob, |l| l.starts_with("(end of history"));
    net.line(bob, "/part");
    wait_line(&mut net, alice, |l| l == "* bob left #rust");
    wait_line(&mut net, bob, |l| l == "* you left #rust");
    let mut json: Vec<String> = Vec::new();
    for u in [alice, bob] {
        for e in net.users[u].events() {
            json.push(render_json(e, "T"));
            // Every event renders as text too.
            let _ = render_plain(e);
        }
    }
    for want in [
        r##""type":"room_joined","room":"#rust","members":["alice"],"backlog":0}"##,
        r##""type":"member_joined","room":"#rust","user":"bob"}"##,
        r##""type":"room_message","room":"#rust","from":"bob","text":"hello","offset":1,"sent":""##,
        r##""type":"said","room":"#rust","offset":1,"text":"hello"}"##,
        r##""type":"names","room":"#rust","users":["alice","bob"]}"##,
        r##""type":"topic","room":"#rust","by":"bob","text":"t"}"##,
        r##""type":"room_list","rooms":[{"room":"#rust","members":2,"topic":"t"}]}"##,
        r##""type":"room_message","room":"#rust","from":"bob","text":"hello","history":true"##,
        r##""type":"history_end","room":"#rust","count":1,"more":false}"##,
        r##""type":"parted","room":"#rust"}"##,
        r##""type":"member_left","room":"#rust","user":"bob"}"##,
    ] {
        assert!(json.iter().any(|j| j.contains(want)), "{want}\n{json:#?}");
    }
    let resumed = ChatEvent::Resumed {
        room: "#rust".to_string(),
        recovered: false,
        missed: 0,
    };
    assert_eq!(
        render_json(&resumed, "T"),
        r##"{"time":"T","type":"resumed","room":"#rust","recovered":false,"missed":0}"##
    );
    assert!(render_plain(&resumed).starts_with("history gap in #rust"));
    let gap = ChatEvent::Resumed {
        room: "#rust".to_string(),
        recovered: false,
        missed: 400,
    };
    assert!(render_plain(&gap).starts_with("history gap in #rust: 400 messages missed"));
}

#[test]
fn on_a_terminal_your_room_message_shows_once_stored() {
    let mut net = Consoles::new(test_config());
    let terminal = udpchat_core::ui::ConsoleConfig {
        show_sent: true,
        ..Default::default()
    };
    let alice = net.join_with("alice", "a", terminal);
    net.line(alice, "/join #rust");
    net.line(alice, "mine");
    wait_line(&mut net, alice, |l| l == "[#rust] <alice> mine");
    assert!(
        !net.users[alice]
            .lines()
            .iter()
            .any(|l| l.starts_with("ok: message stored")),
        "confirmations only with /confirm on"
    );
    net.line(alice, "/confirm on");
    net.line(alice, "again");
    wait_line(&mut net, alice, |l| {
        l == "ok: message stored in #rust (offset 2)"
    });
}

#[test]
fn a_refused_join_leaves_the_room_that_was_active() {
    let mut net = Consoles::new(ServerConfig {
        max_rooms_per_user: 1,
        ..test_config()
    });
    let alice = net.join("alice", "a", false);
    net.line(alice, "/join #one");
    net.line(alice, "/join #two");
    net.line(alice, "where does this go?");
    wait_line(&mut net, alice, |l| l.starts_with("! "));
    net.run_until(
        |n| n.users[alice].console.active_room() == Some("#one"),
        500,
    );
    assert_eq!(
        last_prompt(&net, alice),
        Some(PromptKind::Room {
            room: "#one".to_string()
        })
    );
    // Typed while #two was active: refused by the server, shown by its text.
    wait_line(&mut net, alice, |l| {
        l.starts_with("! not sent to #two: \"where does this go?\"")
    });
}
