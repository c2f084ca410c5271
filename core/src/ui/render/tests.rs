use super::*;
use alloc::boxed::Box;
use alloc::vec;

fn s(x: &str) -> String {
    x.to_string()
}

/// Every kind of event, with its plain line.
fn samples() -> Vec<(ChatEvent, &'static str)> {
    vec![
        (
            ChatEvent::Connecting {
                user: s("alice"),
                attempt: 0,
            },
            "Connecting as alice...",
        ),
        (
            ChatEvent::Connecting {
                user: s("alice"),
                attempt: 2,
            },
            "Reconnecting as alice (attempt 2)...",
        ),
        (
            ChatEvent::PasswordRequired {
                user: s("alice"),
                new_user: true,
            },
            "alice is a new user: choose a password to register.",
        ),
        (
            ChatEvent::PasswordRequired {
                user: s("alice"),
                new_user: false,
            },
            "alice is registered: enter the password.",
        ),
        (
            ChatEvent::LoggedIn {
                user: s("alice"),
                new_user: true,
                online: vec![s("alice"), s("bob")],
                count: None,
            },
            "registered and logged in as alice; online: alice, bob",
        ),
        (
            ChatEvent::LoggedIn {
                user: s("alice"),
                new_user: false,
                online: vec![s("alice"), s("bob")],
                count: Some(5_000),
            },
            "logged in as alice; online: alice, bob and 4998 more",
        ),
        (
            ChatEvent::Online {
                users: vec![],
                count: None,
                away: vec![],
            },
            "online: nobody",
        ),
        (
            ChatEvent::Online {
                users: vec![s("a"), s("b")],
                count: Some(3),
                away: vec![],
            },
            "online: a, b and 1 more",
        ),
        (
            ChatEvent::Online {
                users: vec![s("a"), s("b"), s("c")],
                count: None,
                away: vec![s("b")],
            },
            "online: a, b (away), c",
        ),
        (
            ChatEvent::Away {
                text: Some(s("lunch")),
            },
            "you are away: lunch (/away alone to come back)",
        ),
        (ChatEvent::Away { text: None }, "you are back"),
        (
            ChatEvent::AwayReply {
                user: s("bob"),
                text: s("lunch"),
            },
            "bob is away: lunch",
        ),
        (
            ChatEvent::Whois {
                user: s("bob"),
                online: true,
                online_secs: Some(3725),
                away: Some(s("lunch")),
            },
            "bob is online (for 1 h 2 min); away: lunch",
        ),
        (
            ChatEvent::Whois {
                user: s("bob"),
                online: true,
                online_secs: Some(42),
                away: None,
            },
            "bob is online (for 42 s)",
        ),
        (
            ChatEvent::Whois {
                user: s("carol"),
                online: false,
                online_secs: None,
                away: None,
            },
            "carol is not online",
        ),
        (
            ChatEvent::Public {
                from: s("bob"),
                text: s("hi"),
                action: false,
                mention: false,
            },
            "[bob] hi",
        ),
        (
            ChatEvent::Public {
                from: s("bob"),
                text: s("waves"),
                action: true,
                mention: false,
            },
            "* bob waves",
        ),
        (
            ChatEvent::Direct {
                from: s("bob"),
                text: s("psst"),
            },
            "[DM from bob] psst",
        ),
        (ChatEvent::Join { user: s("bob") }, "* bob joined"),
        (
            ChatEvent::Leave {
                user: s("bob"),
                reason: s("exit"),
                message: None,
            },
            "* bob left (exit)",
        ),
        (
            ChatEvent::Leave {
                user: s("bob"),
                reason: s("exit"),
                message: Some(s("gone \u{202e}fishing")),
            },
            "* bob left (exit: gone <U+202E>fishing)",
        ),
        (
            ChatEvent::Queued { waiting: 3 },
            "(queued: 3 messages wait for the server's rate limit)",
        ),
        (
            ChatEvent::NotSent {
                to: Some(s("bob")),
                text: s("psst"),
                reason: s("bob is not online"),
            },
            "! not sent to bob: \"psst\" (bob is not online)",
        ),
        (
            ChatEvent::Confirmation {
                kind: Delivery::Public,
                to: None,
                recipients: 1,
                text: None,
                action: false,
            },
            "ok: public message delivered to 1 user",
        ),
        (
            ChatEvent::Confirmation {
                kind: Delivery::Public,
                to: None,
                recipients: 0,
                text: None,
                action: false,
            },
            "ok: public message delivered to 0 users",
        ),
        (
            ChatEvent::Confirmation {
                kind: Delivery::Direct,
                to: Some(s("bob")),
                recipients: 1,
                text: None,
                action: false,
            },
            "ok: direct message delivered to bob",
        ),
        (
            ChatEvent::Sent {
                from: s("alice"),
                to: None,
                text: s("hello"),
                action: false,
            },
            "[alice] hello",
        ),
        (
            ChatEvent::Sent {
                from: s("alice"),
                to: None,
                text: s("waves"),
                action: true,
            },
            "* alice waves",
        ),
        (
            ChatEvent::Sent {
                from: s("alice"),
                to: Some(s("bob")),
                text: s("psst"),
                action: false,
            },
            "-> bob: psst",
        ),
        (
            ChatEvent::Error {
                message: s("carol is not online"),
            },
            "! carol is not online",
        ),
        (
            ChatEvent::Disconnect {
                reason: s("the server is shutting down"),
                reconnect_in: None,
            },
            "! disconnected: the server is shutting down",
        ),
        (
            ChatEvent::Disconnect {
                reason: s("lost"),
                reconnect_in: Some(4),
            },
            "! disconnected: lost; reconnecting in 4 s (/connect: now, /quit: give up)",
        ),
        (ChatEvent::Bye, "bye"),
        (ChatEvent::Info { text: s("hint") }, "hint"),
    ]
}

#[test]
fn plain_lines_are_the_assignments() {
    for (event, line) in samples() {
        assert_eq!(render_plain(&event), line, "{event:?}");
    }
}

#[test]
fn styled_without_colour_has_no_escapes_and_the_time() {
    let t = ClockTime { hour: 9, minute: 5 };
    for (event, plain) in samples() {
        let line = render_styled(&event, Some(t), false);
        if matches!(event, ChatEvent::Info { .. }) {
            assert_eq!(line, plain);
        } else {
            assert!(line.starts_with("[09:05] "), "{line}");
        }
        assert!(!line.contains('\x1b'), "{line}");
    }
    let public = ChatEvent::Public {
        from: s("bob"),
        text: s("hi"),
        action: false,
        mention: false,
    };
    assert_eq!(render_styled(&public, Some(t), false), "[09:05] <bob> hi");
    assert_eq!(render_styled(&public, None, false), "<bob> hi");
    let join = ChatEvent::Join { user: s("bob") };
    assert_eq!(render_styled(&join, None, false), "--> bob joined");
    // Your own messages, once confirmed, read as chat.
    let sent = |to: Option<&str>, text: &str, action| ChatEvent::Sent {
        from: s("alice"),
        to: to.map(s),
        text: s(text),
        action,
    };
    assert_eq!(
        render_styled(&sent(None, "hello", false), None, false),
        "<alice> hello"
    );
    assert_eq!(
        render_styled(&sent(None, "waves", true), None, false),
        " * alice waves"
    );
    assert_eq!(
        render_styled(&sent(Some("bob"), "psst", false), None, false),
        "-> bob: psst"
    );
}

#[test]
fn styled_with_colour_styles_each_kind_apart() {
    let public = ChatEvent::Public {
        from: s("bob"),
        text: s("hi"),
        action: false,
        mention: false,
    };
    let line = render_styled(&public, None, true);
    assert_eq!(line, format!("<\x1b[{}mbob\x1b[0m> hi", user_color("bob")));
    let direct = render_styled(
        &ChatEvent::Direct {
            from: s("bob"),
            text: s("psst"),
        },
        None,
        true,
    );
    assert!(direct.starts_with("\x1b[1;35m[DM from "), "{direct:?}");
    let error = render_styled(&ChatEvent::Error { message: s("no") }, None, true);
    assert_eq!(error, "\x1b[1;31m! no\x1b[0m");
    let ok = render_styled(
        &ChatEvent::Confirmation {
            kind: Delivery::Public,
            to: None,
            recipients: 2,
            text: None,
            action: false,
        },
        None,
        true,
    );
    assert!(ok.starts_with("\x1b[2;32mok: "), "{ok:?}");
    let join = render_styled(&ChatEvent::Join { user: s("bob") }, None, true);
    let leave = render_styled(
        &ChatEvent::Leave {
            user: s("bob"),
            reason: s("exit"),
            message: None,
        },
        None,
        true,
    );
    assert!(join.starts_with("\x1b[32m-->"), "{join:?}");
    assert!(leave.starts_with("\x1b[33m<--"), "{leave:?}");
}

#[test]
fn a_mention_is_highlighted_and_rings_the_bell() {
    let named = ChatEvent::Public {
        from: s("bob"),
        text: s("hi alice"),
        action: false,
        mention: true,
    };
    assert_eq!(
        render_styled(&named, None, true),
        format!(
            "<\x1b[{}mbob\x1b[0m> \x1b[1;93mhi alice\x1b[0m",
            user_color("bob")
        )
    );
    assert_eq!(render_styled(&named, None, false), "<bob> hi alice");
    assert_eq!(render_plain(&named), "[bob] hi alice");
    assert!(rings_bell(&named));
    let direct = ChatEvent::Direct {
        from: s("bob"),
        text: s("psst"),
    };
    assert!(rings_bell(&direct));
    let plain = ChatEvent::Public {
        from: s("bob"),
        text: s("hi all"),
        action: false,
        mention: false,
    };
    assert!(!rings_bell(&plain));
    assert_eq!(
        serde_json::to_string(&named).unwrap(),
        r#"{"type":"public","from":"bob","text":"hi alice","mention":true}"#
    );
}

#[test]
fn a_long_message_is_shown_cut_and_more_shows_it_whole() {
    let text = format!("{}{}", "é".repeat(SHOWN_CHARS), "x".repeat(58_000));
    let long = ChatEvent::Public {
        from: s("bob"),
        text: text.clone(),
        action: false,
        mention: false,
    };
    let marker = " \u{2026} (58,000 more characters: /more to read all)";
    // Piped output is never cut: scripts read it.
    assert_eq!(render_plain(&long), format!("[bob] {text}"));
    let line = render_styled(&long, None, false);
    assert_eq!(line, format!("<bob> {}{marker}", "é".repeat(SHOWN_CHARS)));
    let more = ChatEvent::More {
        message: Box::new(long.clone()),
    };
    assert_eq!(render_plain(&more), format!("[bob] {text}"));
    assert_eq!(render_styled(&more, None, false), format!("<bob> {text}"));
    let direct = ChatEvent::Direct {
        from: s("bob"),
        text: "y".repeat(SHOWN_CHARS + 1),
    };
    assert!(
        render_styled(&direct, None, false)
            .ends_with(" \u{2026} (1 more character: /more to read all)")
    );
    // Exactly the limit is shown whole.
    let direct = ChatEvent::Direct {
        from: s("bob"),
        text: "y".repeat(SHOWN_CHARS),
    };
    assert_eq!(
        render_plain(&direct),
        format!("[DM from bob] {}", "y".repeat(SHOWN_CHARS))
    );
    // JSON keeps every character.
    let json = serde_json::to_string(&long).unwrap();
    assert!(json.contains(&text));
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(thousands(999), "999");
    assert_eq!(span(59), "59 s");
    assert_eq!(span(600), "10 min");
    assert_eq!(span(7200), "2 h");
    assert_eq!(span(90_000), "1 d 1 h");
}

#[test]
fn json_lines_escape_what_could_split_or_reorder_them() {
    let e = ChatEvent::Public {
        from: s("bob"),
        text: s("a\u{2028}b\u{202e}c\u{200b}d 👩\u{200d}💻"),
        action: false,
        mention: false,
    };
    let json = escape_json_invisibles(&serde_json::to_string(&e).unwrap());
    assert!(json.contains(r"a\u2028b\u202ec\u200bd"), "{json}");
    assert!(!json.contains('\u{2028}') && !json.contains('\u{202e}'));
    // The same value for a program that parses it (the joiner too).
    let back: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back["text"], "a\u{2028}b\u{202e}c\u{200b}d 👩\u{200d}💻");
}

#[test]
fn received_text_cannot_drive_the_terminal() {
    let evil = ChatEvent::Public {
        from: s("bob"),
        text: s("\x1b[2Jgotcha"),
        action: false,
        mention: false,
    };
    assert_eq!(render_plain(&evil), "[bob] \u{fffd}[2Jgotcha");
    assert!(!render_styled(&evil, None, false).contains('\x1b'));
}

#[test]
fn events_serialize_with_a_type_tag() {
    let json = |e: &ChatEvent| serde_json::to_string(e).unwrap();
    assert_eq!(
        json(&ChatEvent::Public {
            from: s("bob"),
            text: s("hi"),
            action: false,
            mention: false,
        }),
        r#"{"type":"public","from":"bob","text":"hi"}"#
    );
    assert_eq!(
        json(&ChatEvent::Public {
            from: s("bob"),
            text: s("waves"),
            action: true,
            mention: false,
        }),
        r#"{"type":"public","from":"bob","text":"waves","action":true}"#
    );
    assert_eq!(
        json(&ChatEvent::Confirmation {
            kind: Delivery::Direct,
            to: Some(s("bob")),
            recipients: 1,
            text: None,
            action: false,
        }),
        r#"{"type":"confirmation","kind":"direct","to":"bob","recipients":1}"#
    );
    assert_eq!(
        json(&ChatEvent::Confirmation {
            kind: Delivery::Public,
            to: None,
            recipients: 2,
            text: Some(s("waves")),
            action: true,
        }),
        r#"{"type":"confirmation","kind":"public","recipients":2,"text":"waves","action":true}"#
    );
    assert_eq!(
        json(&ChatEvent::Disconnect {
            reason: s("gone"),
            reconnect_in: None
        }),
        r#"{"type":"disconnect","reason":"gone","reconnect_in":null}"#
    );
    assert_eq!(json(&ChatEvent::Bye), r#"{"type":"bye"}"#);
    assert_eq!(
        render_json(
            &ChatEvent::Join { user: s("bob") },
            "2026-12-03T09:00:00.000Z"
        ),
        r#"{"time":"2026-12-03T09:00:00.000Z","type":"join","user":"bob"}"#
    );
    assert_eq!(
        json(&ChatEvent::Leave {
            user: s("bob"),
            reason: s("exit"),
            message: None,
        }),
        r#"{"type":"leave","user":"bob","reason":"exit"}"#
    );
    assert_eq!(
        json(&ChatEvent::Leave {
            user: s("bob"),
            reason: s("exit"),
            message: Some(s("lunch")),
        }),
        r#"{"type":"leave","user":"bob","reason":"exit","message":"lunch"}"#
    );
    assert_eq!(
        json(&ChatEvent::Queued { waiting: 2 }),
        r#"{"type":"queued","waiting":2}"#
    );
}

/// 2026-12-03 12:03:07.250 UTC, in ms since the Unix epoch.
const NOON_MS: u64 = 1_764_720_000_000 + 31_536_000_000 + 43_387_250;

#[test]
fn times_of_stored_messages() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339(NOON_MS), "2026-12-03T12:03:07.250Z");
    assert_eq!(utc_clock(NOON_MS), "12:03");
}

#[test]
fn room_events_as_lines() {
    let room_message = |history, action| ChatEvent::RoomMessage {
        room: s("#rust"),
        from: s("alice"),
        text: s("hi"),
        action,
        mention: false,
        history,
        offset: 7,
        sent: NOON_MS,
    };
    for (event, line) in [
        (room_message(false, false), "[#rust] <alice> hi"),
        (room_message(true, false), "[#rust 12:03] <alice> hi"),
        (room_message(false, true), "[#rust] * alice hi"),
        (
            ChatEvent::OfflineDirect {
                from: s("alice"),
                text: s("call me"),
                sent: NOON_MS,
                offline: true,
            },
            "[DM from alice] (12:03, while you were away) call me",
        ),
        (
            ChatEvent::RoomJoined {
                room: s("#rust"),
                topic: s("crabs"),
                members: vec![s("alice"), s("bob")],
                count: Some(5),
                backlog: 2,
            },
            "* you joined #rust; members: alice, bob and 3 more; topic: crabs",
        ),
        (ChatEvent::Parted { room: s("#rust") }, "* you left #rust"),
        (
            ChatEvent::MemberLeft {
                room: s("#rust"),
                user: s("bob"),
                reason: Some(s("later")),
            },
            "* bob left #rust (later)",
        ),
        (
            ChatEvent::Topic {
                room: s("#rust"),
                by: Some(s("bob")),
                text: s(""),
            },
            "* bob cleared the topic of #rust",
        ),
        (
            ChatEvent::Topic {
                room: s("#rust"),
                by: None,
                text: s(""),
            },
            "#rust has no topic",
        ),
        (
            ChatEvent::RoomList {
                rooms: vec![],
                count: None,
            },
            "rooms: none (/join #name makes one)",
        ),
        (
            ChatEvent::Resumed {
                room: s("#rust"),
                recovered: true,
                missed: 3,
            },
            "resumed #rust: 3 missed messages",
        ),
        (
            ChatEvent::Resumed {
                room: s("#rust"),
                recovered: false,
                missed: 1,
            },
            "history gap in #rust: 1 message missed (/history #rust shows the latest)",
        ),
    ] {
        assert_eq!(render_plain(&event), line, "{event:?}");
        let styled = render_styled(&event, None, false);
        assert!(!styled.contains('\x1b'), "{styled:?}");
        assert!(
            render_styled(&event, None, true).contains('\x1b'),
            "{event:?}"
        );
    }
    // On a terminal, history is dim and an offline DM says so.
    let dim = render_styled(&room_message(true, false), None, true);
    assert!(dim.starts_with("\x1b[2m[#rust 12:03]"), "{dim:?}");
    let offline = ChatEvent::OfflineDirect {
        from: s("alice"),
        text: s("call me"),
        sent: NOON_MS,
        offline: true,
    };
    assert_eq!(
        render_styled(&offline, None, false),
        "*alice* (12:03 UTC, while you were away) call me"
    );
    assert!(rings_bell(&offline));
    assert!(!rings_bell(&room_message(false, false)));
}

#[test]
fn address_bans_render_as_lines_and_json() {
    use crate::session::BanItem;
    let bans = vec![
        BanItem {
            range: s("203.0.113.0/24"),
            until: Some(1_780_358_400_000),
            reason: s("spam"),
            by: s("alice"),
            time: 1_780_272_000_000,
        },
        BanItem {
            range: s("2001:db8:1:2::/64"),
            until: None,
            reason: String::new(),
            by: s("alice"),
            time: 1_780_272_000_000,
        },
    ];
    let event = ChatEvent::Bans {
        bans: bans.clone(),
        count: Some(250),
    };
    assert_eq!(
        render_plain(&event),
        "address bans: 2\n\
         203.0.113.0/24 by alice at 2026-06-01T00:00:00.000Z, until 2026-06-02T00:00:00.000Z: spam\n\
         2001:db8:1:2::/64 by alice at 2026-06-01T00:00:00.000Z, until lifted\n\
         248 more: /bans 2001:db8:1:2::/64"
    );
    assert_eq!(
        render_plain(&ChatEvent::Bans {
            bans: Vec::new(),
            count: None
        }),
        "no address is banned"
    );
    let json = serde_json::to_string(&ChatEvent::Bans { bans, count: None }).unwrap();
    assert_eq!(
        json,
        r#"{"type":"bans","bans":[{"range":"203.0.113.0/24","until":1780358400000,"reason":"spam","by":"alice","time":1780272000000},{"range":"2001:db8:1:2::/64","by":"alice","time":1780272000000}]}"#
    );
}
