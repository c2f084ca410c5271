use super::*;

fn room_msg(room: &str, from: &str, text: &str, offset: u64, history: bool) -> ChatEvent {
    ChatEvent::RoomMessage {
        room: room.into(),
        from: from.into(),
        text: text.into(),
        action: false,
        mention: mentions(text, "alice"),
        history,
        offset,
        sent: 0,
    }
}

fn joined(room: &str, members: &[&str], backlog: u32) -> ChatEvent {
    ChatEvent::RoomJoined {
        room: room.into(),
        topic: String::new(),
        members: members.iter().map(|m| m.to_string()).collect(),
        count: None,
        backlog,
    }
}

fn texts(w: &Window) -> Vec<String> {
    w.entries()
        .iter()
        .map(|e| match e {
            Entry::Event { event, .. } => render_plain(event),
            Entry::Marker(m) => m.text(),
        })
        .collect()
}

/// alice in #rust (offsets 100..=102 loaded) and the server window.
fn in_rust() -> Windows {
    let mut w = Windows::new("alice");
    assert!(w.typed("/join #rust", None) == ["/join #rust"]);
    w.push(joined("#rust", &["alice", "Bob"], 3), None);
    for o in 100..=102 {
        w.push(room_msg("#rust", "bob", &format!("m{o}"), o, true), None);
    }
    w
}

#[test]
fn events_go_to_their_window_and_mark_it() {
    let mut w = in_rust();
    assert_eq!(w.windows().len(), 2);
    assert_eq!(
        w.active().name(),
        "#rust",
        "a join typed here opens its window"
    );
    w.push(
        ChatEvent::Public {
            from: "bob".into(),
            text: "hi all".into(),
            action: false,
            mention: false,
        },
        None,
    );
    w.push(
        ChatEvent::Join {
            user: "carol".into(),
        },
        None,
    );
    let server = &w.windows()[0];
    assert_eq!(texts(server), ["[bob] hi all", "* carol joined"]);
    assert_eq!((server.unread(), server.activity()), (1, Activity::Message));
    // A direct message opens a conversation, marked as a mention.
    w.push(
        ChatEvent::Direct {
            from: "carol".into(),
            text: "psst".into(),
        },
        None,
    );
    let carol = &w.windows()[2];
    assert_eq!(carol.kind(), &WindowKind::Query("carol".into()));
    assert_eq!((carol.unread(), carol.activity()), (1, Activity::Mention));
    // The active window is not marked.
    w.push(room_msg("#rust", "bob", "live", 103, false), None);
    assert_eq!(w.active().unread(), 0);
    // Answers to commands go to the active window.
    w.push(
        ChatEvent::Error {
            message: "nope".into(),
        },
        None,
    );
    assert_eq!(texts(w.active()).last().unwrap(), "! nope");
    // Switching clears the marks.
    w.select(0);
    assert_eq!(w.active().unread(), 0);
    assert_eq!(w.active().activity(), Activity::None);
    w.push(room_msg("#rust", "bob", "hey alice", 104, false), None);
    assert_eq!(w.windows()[1].activity(), Activity::Mention);
    assert!(!w.select(9));
}

#[test]
fn next_and_previous_wrap_around() {
    let mut w = in_rust();
    w.query("bob");
    assert_eq!(w.active_index(), 2);
    w.next();
    assert_eq!(w.active_index(), 0);
    w.prev();
    assert_eq!(w.active_index(), 2);
    w.prev();
    assert_eq!(w.active().name(), "#rust");
    // The same conversation, whatever the case.
    w.query("BOB");
    assert_eq!((w.windows().len(), w.active_index()), (3, 2));
}

#[test]
fn typed_lines_go_where_the_window_says() {
    let mut w = in_rust();
    assert_eq!(w.typed("hello", Some("#rust")), ["/msg #rust hello"]);
    assert_eq!(w.typed("/me waves", None), ["/msg #rust /me waves"]);
    assert_eq!(w.typed("/say PM", None), ["/msg #rust PM"]);
    assert_eq!(w.typed("/part", None), ["/part #rust"]);
    assert_eq!(w.typed("/part bye all", None), ["/part #rust bye all"]);
    assert_eq!(w.typed("/topic new one", None), ["/topic #rust new one"]);
    assert_eq!(w.typed("/topic #go x", None), ["/topic #go x"]);
    // Room moderation acts on the window's room too.
    assert_eq!(w.typed("/kick bob spam", None), ["/kick #rust bob spam"]);
    assert_eq!(w.typed("/ban bob 2h", None), ["/ban #rust bob 2h"]);
    assert_eq!(w.typed("/moderated on", None), ["/moderated #rust on"]);
    assert_eq!(w.typed("/mute #go bob", None), ["/mute #go bob"]);
    assert_eq!(w.typed("/history 5", None), ["/history #rust 5"]);
    assert_eq!(w.typed("PM", None), ["PM"], "the menu flows stay");
    assert_eq!(w.typed("/who", None), ["/who"]);
    assert!(w.typed("/query bob", None).is_empty());
    assert_eq!(w.active().name(), "bob");
    assert_eq!(w.typed("hi", None), ["/msg bob hi"]);
    assert_eq!(
        w.typed("/query carol see you", None),
        ["/msg carol see you"]
    );
    assert_eq!(w.active().name(), "carol");
    assert!(w.typed("/window 1", None).is_empty());
    assert_eq!(w.active().kind(), &WindowKind::Server);
    assert_eq!(w.typed("hello all", None), ["hello all"]);
    // After a /join the console sends plain lines to the room: the server
    // window sends them to everyone online, and the console's answer to
    // that is not shown.
    assert_eq!(w.typed("hello all", Some("#rust")), ["/go", "hello all"]);
    w.push(
        ChatEvent::Info {
            text: "plain lines go to everyone online".into(),
        },
        None,
    );
    assert!(w.active().entries().is_empty());
    assert!(w.typed("/query -bad-", None).is_empty());
    assert!(texts(w.active())[0].starts_with("! usage: /query USER"));
    assert!(w.typed("/help /query", None).is_empty());
    assert!(texts(w.active())[1].starts_with("/query USER [TEXT]: open"));
    assert_eq!(w.typed("/help", None), ["/help"]);
    assert!(texts(w.active())[2].starts_with("windows: /window [N], /query"));
    assert_eq!(w.typed("/help msg", None), ["/help msg"]);
    assert!(w.typed("/window 42", None).is_empty());
    assert_eq!(texts(w.active())[3], "! no window 42: there are 4");
}

#[test]
fn close_keeps_the_server_window_and_joined_rooms() {
    let mut w = in_rust();
    w.typed("/close", None);
    assert_eq!(w.windows().len(), 2);
    assert!(
        texts(w.active())
            .last()
            .unwrap()
            .contains("/part #rust first")
    );
    w.push(
        ChatEvent::Parted {
            room: "#rust".into(),
        },
        None,
    );
    assert!(!w.active().joined());
    w.typed("/close", None);
    assert_eq!(w.windows().len(), 1);
    w.typed("/close", None);
    assert_eq!(w.windows().len(), 1);
}

#[test]
fn members_and_away() {
    let mut w = in_rust();
    w.push(
        ChatEvent::MemberJoined {
            room: "#rust".into(),
            user: "carol".into(),
        },
        None,
    );
    w.push(
        ChatEvent::MemberLeft {
            room: "#rust".into(),
            user: "BOB".into(),
            reason: None,
        },
        None,
    );
    assert_eq!(w.active().members().collect::<Vec<_>>(), ["alice", "carol"]);
    w.push(
        ChatEvent::Online {
            users: vec!["alice".into(), "carol".into()],
            count: None,
            away: vec!["carol".into()],
        },
        None,
    );
    assert!(w.is_away("Carol") && !w.is_away("alice"));
    assert!(w.show_members());
    w.typed("/members", None);
    assert!(!w.show_members());
    w.sync_rooms(["#rust", "#go"]);
    assert_eq!(w.windows()[2].name(), "#go");
    assert!(w.windows()[2].joined());
    // A room kept from an earlier session: its members are asked for once.
    assert_eq!(w.members_wanted(), ["#go"]);
    assert!(w.members_wanted().is_empty());
    w.push(
        ChatEvent::Names {
            room: "#go".into(),
            users: vec!["alice".into(), "gopher".into()],
            count: None,
        },
        None,
    );
    assert_eq!(
        w.windows()[2].members().collect::<Vec<_>>(),
        ["alice", "gopher"]
    );
}

#[test]
fn scrolling_to_the_start_fetches_older_history_once() {
    let mut w = in_rust();
    // Oldest loaded: 100; the room window has the join and 3 messages.
    assert_eq!(w.scroll_up(1), None);
    let fetch = w.scroll_up(10).expect("the start is in view");
    assert_eq!(
        fetch,
        HistoryFetch {
            room: "#rust".into(),
            before: 100,
            limit: HISTORY_PAGE
        }
    );
    assert!(w.active().fetching());
    assert_eq!(w.scroll_up(10), None, "one fetch at a time");
    assert_eq!(w.top_shown(), None);
    let scroll = w.active().scroll();
    // A live message meanwhile goes at the bottom; the view stays.
    w.push(room_msg("#rust", "bob", "live", 103, false), None);
    assert_eq!(w.active().scroll(), scroll + 1);
    // The page: 97..=99 (in any order), then its end.
    for o in [98, 97, 99] {
        w.push(room_msg("#rust", "bob", &format!("m{o}"), o, true), None);
    }
    w.push(
        ChatEvent::HistoryEnd {
            room: "#rust".into(),
            count: 3,
            more: true,
        },
        None,
    );
    let t = texts(w.active());
    assert!(
        t[0].contains("m97") && t[1].contains("m98") && t[2].contains("m99"),
        "{t:?}"
    );
    assert_eq!(t[3], Marker::HistoryLoaded { count: 3 }.text());
    assert!(
        t[4].contains("alice joined #rust") || t[4].contains("#rust"),
        "{t:?}"
    );
    assert!(!w.active().fetching());
    // The next fetch asks below 97.
    let fetch = w.scroll_up(100).unwrap();
    assert_eq!(fetch.before, 97);
    // A page that leaves a gap (90..=94; 95 and 96 expired) and ends the
    // history.
    for o in 90..=94 {
        w.push(room_msg("#rust", "bob", "old", o, true), None);
    }
    w.push(
        ChatEvent::HistoryEnd {
            room: "#rust".into(),
            count: 5,
            more: false,
        },
        None,
    );
    let t = texts(w.active());
    assert_eq!(t[0], Marker::StartOfHistory.text());
    assert_eq!(t[6], Marker::Gap { missing: Some(2) }.text());
    assert_eq!(t[7], Marker::HistoryLoaded { count: 5 }.text());
    assert_eq!(w.scroll_up(100), None, "nothing older exists");
    assert_eq!(w.top_shown(), None);
}

#[test]
fn an_empty_page_with_more_is_a_gap_and_a_refused_fetch_is_due_again() {
    let mut w = in_rust();
    let fetch = w.scroll_up(50).unwrap();
    w.fetch_failed(&fetch.room);
    assert!(!w.active().fetching());
    assert_eq!(w.top_shown(), Some(fetch));
    w.push(
        ChatEvent::HistoryEnd {
            room: "#rust".into(),
            count: 0,
            more: true,
        },
        None,
    );
    assert_eq!(texts(w.active())[0], Marker::Gap { missing: None }.text());
    assert_eq!(w.top_shown(), None);
    // The server window has no history to fetch.
    w.select(0);
    assert_eq!(w.scroll_up(5), None);
}

#[test]
fn history_starting_at_zero_and_empty_rooms_need_no_fetch() {
    let mut w = Windows::new("alice");
    w.typed("/join #new", None);
    w.push(joined("#new", &["alice"], 0), None);
    assert_eq!(w.scroll_up(5), None);
    let mut w = Windows::new("alice");
    w.typed("/join #a", None);
    w.push(joined("#a", &["alice"], 1), None);
    w.push(room_msg("#a", "bob", "first", 0, true), None);
    assert_eq!(w.scroll_up(5), None);
    assert_eq!(texts(w.active())[0], Marker::StartOfHistory.text());
}

#[test]
fn not_sent_shows_in_its_window_and_the_active_one() {
    let mut w = in_rust();
    w.push(
        ChatEvent::NotSent {
            to: Some("bob".into()),
            text: "lost".into(),
            reason: "offline".into(),
        },
        None,
    );
    assert!(
        texts(w.active())
            .last()
            .unwrap()
            .starts_with("! not sent to bob")
    );
    let bob = w.windows().iter().find(|x| x.name() == "bob").unwrap();
    assert_eq!(bob.activity(), Activity::Mention);
    assert_eq!(texts(bob).len(), 1);
}

#[test]
fn a_window_keeps_its_newest_entries() {
    let mut w = in_rust();
    for o in 0..(MAX_ENTRIES as u64 + 10) {
        w.push(room_msg("#rust", "bob", "x", 1000 + o, false), None);
    }
    assert_eq!(w.active().entries().len(), MAX_ENTRIES);
    // The oldest kept is where a fetch starts again.
    let fetch = w.scroll_up(MAX_ENTRIES).unwrap();
    assert_eq!(fetch.before, 1000 + 10 + 4 - 1 - 3);
}

#[test]
fn completion_adds_window_commands_and_members() {
    let mut w = in_rust();
    assert_eq!(w.complete("/q", 2, []).1, ["/query", "/quit"]);
    assert_eq!(w.complete("/wi", 3, []).1, ["/window"]);
    // A cursor inside a character or past the end does not panic.
    assert_eq!(w.complete("/wé", 3, []).1, ["/who", "/whois", "/window"]);
    assert_eq!(w.complete("/wi", 99, []).1, ["/window"]);
    assert_eq!(w.complete("hi B", 4, ["carol"]).1, ["Bob"]);
    assert_eq!(w.complete("hi ", 3, ["carol"]).1, ["alice", "Bob", "carol"]);
    w.query("dave");
    assert_eq!(w.complete("d", 1, []).1, ["dave"]);
    assert_eq!(w.prompt(), "@dave> ");
    w.select(0);
    assert_eq!(w.prompt(), "alice> ");
}

/// A small deterministic generator for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len() as u64) as usize]
    }
}

#[test]
fn any_mix_of_events_keys_and_lines_keeps_the_windows_consistent() {
    let rooms = ["#a", "#B", "#a", "#c\u{202e}"];
    let users = ["bob", "Bob", "carol", "漢字"];
    let lines = [
        "hi",
        "/me x",
        "/part",
        "/topic t",
        "/history 3",
        "/window 3",
        "/window",
        "/win x",
        "/query bob",
        "/query",
        "/query bob hi",
        "/close",
        "/members",
        "/join #a",
        "PM",
        "/help",
        "/help close",
        "//x",
        "",
        "   ",
        "/go",
        "é",
    ];
    for seed in 1..40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut w = Windows::new("alice");
        for _ in 0..400 {
            let room = rng.pick(&rooms).to_string();
            let user = rng.pick(&users).to_string();
            match rng.next(12) {
                0 => w.push(joined(&room, &[&user], rng.next(3) as u32), None),
                1 | 2 => {
                    let history = rng.next(2) == 0;
                    let event = ChatEvent::RoomMessage {
                        room,
                        from: user,
                        text: "t".into(),
                        action: false,
                        mention: rng.next(4) == 0,
                        history,
                        offset: rng.next(200),
                        sent: 0,
                    };
                    w.push(event, None);
                }
                3 => w.push(
                    ChatEvent::HistoryEnd {
                        room,
                        count: 0,
                        more: rng.next(2) == 0,
                    },
                    None,
                ),
                4 => w.push(
                    ChatEvent::Direct {
                        from: user,
                        text: "d".into(),
                    },
                    None,
                ),
                5 => w.push(ChatEvent::Parted { room }, None),
                6 => {
                    if let Some(f) = w.scroll_up(rng.next(30) as usize) {
                        assert!(f.room.starts_with('#') && f.before > 0);
                    }
                }
                7 => w.scroll_down(rng.next(30) as usize),
                8 => {
                    let _ = w.top_shown();
                }
                9 => {
                    w.select(rng.next(8) as usize);
                }
                10 => {
                    let line = rng.pick(&lines);
                    let console_room = (rng.next(2) == 0).then_some("#a");
                    for out in w.typed(line, console_room) {
                        assert!(!out.contains('\n'));
                    }
                }
                _ => {
                    let line = rng.pick(&lines);
                    let _ = w.complete(line, rng.next(20) as usize, ["bob", "#a"]);
                }
            }
            assert!(w.active_index() < w.windows().len());
            assert_eq!(w.windows()[0].kind(), &WindowKind::Server);
            for win in w.windows() {
                assert!(win.entries().len() <= MAX_ENTRIES);
                assert!(win.scroll() <= win.entries().len().max(1));
            }
            assert_eq!(
                w.active().unread(),
                0,
                "the active window has nothing unread"
            );
        }
    }
}
