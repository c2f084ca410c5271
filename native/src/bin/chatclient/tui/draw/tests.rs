//! The full screen drawn on ratatui's TestBackend: window switching,
//! unread marks, scrolling back into fetched history, narrow and wide
//! terminals, wide characters, a terminal too small.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use udpchat_core::time::Instant as CoreInstant;
use udpchat_core::ui::{ChatEvent, ClockTime, Console, ConsoleConfig, HISTORY_PAGE, Marker};
use unicode_width::UnicodeWidthStr;

use super::super::{FullScreen, Link};
use super::*;

const DARK: Theme = Theme {
    color: true,
    light: false,
};

fn console() -> Console {
    Console::new(
        CoreInstant::ZERO,
        ConsoleConfig::default(),
        [7; 32],
        "alice",
    )
    .unwrap()
}

fn screen() -> FullScreen {
    let mut s = FullScreen::new("alice", "chat.example.org:65015".into(), DARK);
    s.status.link = Link::Connected;
    s.status.lag_ms = Some(12);
    s
}

fn at(hour: u8, minute: u8) -> Option<ClockTime> {
    Some(ClockTime { hour, minute })
}

fn public(from: &str, text: &str) -> ChatEvent {
    ChatEvent::Public {
        from: from.into(),
        text: text.into(),
        action: false,
        mention: false,
    }
}

fn room_msg(from: &str, text: &str, offset: u64, history: bool) -> ChatEvent {
    ChatEvent::RoomMessage {
        room: "#rust".into(),
        from: from.into(),
        text: text.into(),
        action: false,
        mention: text.contains("alice"),
        history,
        offset,
        sent: 1_764_000_000_000 + offset * 60_000,
    }
}

/// alice joined #rust (with bob and carol); `backlog` history messages
/// with offsets up to 99.
fn in_rust(s: &mut FullScreen, backlog: u64) {
    let c = console();
    s.typed("/join #rust".into(), &c);
    s.windows.push(
        ChatEvent::RoomJoined {
            room: "#rust".into(),
            topic: "all things Rust".into(),
            members: vec!["alice".into(), "bob".into(), "carol".into()],
            count: None,
            backlog: backlog as u32,
        },
        at(9, 0),
    );
    for o in 100 - backlog..100 {
        s.windows
            .push(room_msg("bob", &format!("message {o}"), o, true), at(9, 0));
    }
}

/// The screen as text, a row per line, trailing blanks trimmed; a wide
/// character takes its two columns.
fn text(t: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = t.backend().buffer();
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            let mut row = String::new();
            let mut skip = 0;
            for x in 0..area.width {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                skip = symbol.width().saturating_sub(1);
                row.push_str(symbol);
            }
            row.trim_end().to_string()
        })
        .collect()
}

fn draw(s: &mut FullScreen, width: u16, height: u16) -> (Vec<String>, Option<HistoryFetch>) {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    let fetch = s.draw(&mut t).unwrap();
    (text(&t), fetch)
}

fn key(s: &mut FullScreen, code: KeyCode, modifiers: KeyModifiers) -> Vec<super::super::Action> {
    s.input(Event::Key(KeyEvent::new(code, modifiers)), &console())
}

use udpchat_core::ui::HistoryFetch;

#[test]
fn switching_windows_and_unread_marks() {
    let mut s = screen();
    s.windows.push(public("bob", "before the room"), at(9, 0));
    in_rust(&mut s, 2);
    s.windows.push(public("bob", "hello everyone"), at(9, 1));
    s.windows.push(public("carol", "hi alice"), at(9, 2));
    let (rows, _) = draw(&mut s, 100, 12);
    assert!(
        rows[10].contains("alice@chat.example.org:65015"),
        "{}",
        rows[10]
    );
    // Narrower, the server is left out before the windows are.
    let (rows, _) = draw(&mut s, 80, 12);
    let status = &rows[10];
    assert!(status.contains("\u{2502} alice \u{2502}"), "{status}");
    assert!(status.contains("connected, lag 12 ms"), "{status}");
    assert!(status.contains("[2:#rust]"), "{status}");
    assert!(status.contains("act: 1:server(2)"), "{status}");
    assert_eq!(rows[11], "#rust>");
    assert!(
        rows.iter().any(|r| r.contains("<bob> message 99")),
        "{rows:#?}"
    );
    assert!(!rows.iter().any(|r| r.contains("hello everyone")));
    // The member list, beside the lines.
    assert!(rows[0].contains("\u{2502}3 members"), "{rows:#?}");
    assert!(rows.iter().any(|r| r.ends_with("\u{2502}carol")));

    key(&mut s, KeyCode::Char('1'), KeyModifiers::ALT);
    let (rows, _) = draw(&mut s, 80, 12);
    assert!(
        rows.iter()
            .any(|r| r.contains("[09:01] <bob> hello everyone"))
    );
    assert!(rows[10].contains("[1:server]") && !rows[10].contains("act:"));
    assert_eq!(rows[11], "alice>");
    // A direct message opens a conversation, marked with `!`.
    s.windows.push(
        ChatEvent::Direct {
            from: "dave".into(),
            text: "psst".into(),
        },
        at(9, 3),
    );
    let (rows, _) = draw(&mut s, 80, 12);
    assert!(rows[10].contains("3:dave(1)!"), "{}", rows[10]);
    key(&mut s, KeyCode::Right, KeyModifiers::ALT);
    key(&mut s, KeyCode::Char('n'), KeyModifiers::CONTROL);
    let (rows, _) = draw(&mut s, 80, 12);
    assert!(rows[10].contains("[3:dave]"), "{}", rows[10]);
    assert_eq!(rows[11], "@dave>");
    // No member list outside rooms.
    assert!(
        !rows
            .iter()
            .any(|r| r.contains('\u{2502}') && r.contains("members"))
    );
}

#[test]
fn typed_text_survives_switching_and_goes_to_the_active_window() {
    let mut s = screen();
    in_rust(&mut s, 0);
    for c in "hi there".chars() {
        key(&mut s, KeyCode::Char(c), KeyModifiers::NONE);
    }
    key(&mut s, KeyCode::Char('p'), KeyModifiers::CONTROL);
    let (rows, _) = draw(&mut s, 60, 8);
    assert_eq!(rows[7], "alice> hi there");
    key(&mut s, KeyCode::Char('n'), KeyModifiers::CONTROL);
    let sent = key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        sent,
        [super::super::Action::Line("/msg #rust hi there".into())]
    );
    // A paste of lines: each, in order.
    let sent = s.input(Event::Paste("one\ntwo\n".into()), &console());
    assert_eq!(
        sent,
        [
            super::super::Action::Line("/msg #rust one".into()),
            super::super::Action::Line("/msg #rust two".into())
        ]
    );
    // In the PM flow, the text goes as typed.
    key(&mut s, KeyCode::Char('P'), KeyModifiers::SHIFT);
    key(&mut s, KeyCode::Char('M'), KeyModifiers::SHIFT);
    assert_eq!(
        key(&mut s, KeyCode::Enter, KeyModifiers::NONE),
        [super::super::Action::Line("PM".into())]
    );
    key(&mut s, KeyCode::Char('x'), KeyModifiers::NONE);
    assert_eq!(
        key(&mut s, KeyCode::Enter, KeyModifiers::NONE),
        [super::super::Action::Line("x".into())]
    );
}

#[test]
fn scrolling_back_fetches_older_history_and_marks_it() {
    let mut s = screen();
    in_rust(&mut s, 30);
    let (rows, fetch) = draw(&mut s, 80, 12);
    assert_eq!(fetch, None, "the newest are in view");
    assert!(rows[9].contains("message 99"), "{rows:#?}");
    // PgUp until the start of what is loaded is in view.
    let mut fetch = None;
    for _ in 0..10 {
        key(&mut s, KeyCode::PageUp, KeyModifiers::NONE);
        let (_, f) = draw(&mut s, 80, 12);
        if f.is_some() {
            fetch = f;
            break;
        }
    }
    let fetch = fetch.expect("a fetch once the start is in view");
    assert_eq!(
        (fetch.room.as_str(), fetch.before, fetch.limit),
        ("#rust", 70, HISTORY_PAGE)
    );
    let (rows, again) = draw(&mut s, 80, 12);
    assert_eq!(again, None, "one fetch at a time");
    assert!(rows[10].contains("(loading history)"), "{}", rows[10]);
    assert!(rows[10].contains("scrolled back"), "{}", rows[10]);
    // The server answers with 60..=69 (the older ones expired).
    for o in 60..70 {
        s.windows
            .push(room_msg("bob", &format!("old {o}"), o, true), at(8, 0));
    }
    s.windows.push(
        ChatEvent::HistoryEnd {
            room: "#rust".into(),
            count: 10,
            more: true,
        },
        None,
    );
    let (rows, _) = draw(&mut s, 80, 12);
    let all = rows.join("\n");
    assert!(
        all.contains(&Marker::HistoryLoaded { count: 10 }.text()),
        "{all}"
    );
    assert!(!rows[10].contains("loading"), "{}", rows[10]);
    // Scrolled to the newest again (PgDn), the live lines are back.
    for _ in 0..20 {
        key(&mut s, KeyCode::PageDown, KeyModifiers::NONE);
    }
    let (rows, _) = draw(&mut s, 80, 12);
    assert!(rows[9].contains("message 99"), "{rows:#?}");
    assert!(!rows[10].contains("scrolled back"));
}

#[test]
fn the_mouse_wheel_scrolls_and_reaches_the_history() {
    use crossterm::event::{MouseEvent, MouseEventKind};
    let wheel = |s: &mut FullScreen, kind| {
        s.input(
            Event::Mouse(MouseEvent {
                kind,
                column: 5,
                row: 5,
                modifiers: KeyModifiers::NONE,
            }),
            &console(),
        )
    };
    let mut s = screen();
    in_rust(&mut s, 20);
    draw(&mut s, 80, 12);
    wheel(&mut s, MouseEventKind::ScrollUp);
    assert_eq!(s.windows.active().scroll(), 3);
    let (rows, fetch) = draw(&mut s, 80, 12);
    assert_eq!(fetch, None);
    assert!(rows[9].contains("message 96"), "{rows:#?}");
    wheel(&mut s, MouseEventKind::ScrollDown);
    assert_eq!(s.windows.active().scroll(), 0);
    let mut fetch = None;
    for _ in 0..10 {
        wheel(&mut s, MouseEventKind::ScrollUp);
        fetch = fetch.or(draw(&mut s, 80, 12).1);
    }
    assert_eq!(fetch.map(|f| f.before), Some(80));
}

#[test]
fn narrow_wide_and_too_small_terminals() {
    let mut s = screen();
    in_rust(&mut s, 3);
    s.windows.push(
        room_msg("bob", &"a long line that wraps ".repeat(8), 100, false),
        at(9, 5),
    );
    for (w, h) in [(60, 10), (61, 24), (200, 50), (24, 4)] {
        let (rows, _) = draw(&mut s, w, h);
        assert_eq!(rows.len(), usize::from(h));
        for r in &rows {
            assert!(r.width() <= usize::from(w), "{w}: {r:?}");
        }
        assert!(rows[usize::from(h) - 2].contains("[2:#rust]"), "{w}x{h}");
    }
    // One terminal resized, down to too small and back.
    let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
    for (w, h) in [(100, 20), (60, 10), (20, 3), (61, 12), (100, 20)] {
        t.backend_mut().resize(w, h);
        s.draw(&mut t).unwrap();
        let rows = text(&t);
        assert_eq!(rows.len(), usize::from(h));
        if w >= MIN_WIDTH {
            assert!(rows[usize::from(h) - 1].starts_with("#rust>"), "{rows:#?}");
        } else {
            assert!(rows[0].starts_with("terminal too"), "{rows:#?}");
        }
    }
    // At 60 columns the members are shown, and the long line is cut into
    // marked rows beside them.
    let (rows, _) = draw(&mut s, 60, 10);
    assert!(rows.iter().any(|r| r.contains("\u{2502}bob")), "{rows:#?}");
    assert!(
        rows.iter().any(|r| r.starts_with("  \u{21b3} ")),
        "{rows:#?}"
    );
    // F2 hides them.
    key(&mut s, KeyCode::F(2), KeyModifiers::NONE);
    let (rows, _) = draw(&mut s, 60, 10);
    assert!(!rows.iter().any(|r| r.contains("\u{2502}bob")));
    for (w, h) in [(23, 10), (80, 3), (1, 1), (0, 0)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        s.draw(&mut t).unwrap();
        if w > 10 {
            assert!(text(&t)[0].starts_with("terminal too"), "{:?}", text(&t));
        }
    }
}

#[test]
fn wide_characters_keep_columns_aligned() {
    let mut s = screen();
    in_rust(&mut s, 0);
    s.windows.push(
        room_msg(
            "bob",
            "漢字テキスト 🎉 and more 漢字 ".repeat(4).trim_end(),
            100,
            false,
        ),
        at(9, 5),
    );
    s.windows
        .push(room_msg("carol", "bidi \u{202e}evil", 101, false), at(9, 6));
    let (rows, _) = draw(&mut s, 60, 10);
    for r in &rows {
        assert!(r.width() <= 60, "{r:?} is {} columns", r.width());
    }
    // Every row of the member list starts in the same column.
    let columns: Vec<usize> = rows[..8]
        .iter()
        .filter_map(|r| r.find('\u{2502}').map(|i| r[..i].width()))
        .collect();
    assert!(columns.len() >= 4, "{rows:#?}");
    assert!(
        columns.iter().all(|&c| c == columns[0]),
        "{columns:?} {rows:#?}"
    );
    assert!(rows.iter().any(|r| r.contains("漢字テキスト")));
    // Invisible characters stay visible as code points.
    assert!(
        rows.iter().any(|r| r.contains("bidi <U+202E>evil")),
        "{rows:#?}"
    );
    // Typing wide characters keeps the cursor after them.
    for c in "你好".chars() {
        key(&mut s, KeyCode::Char(c), KeyModifiers::NONE);
    }
    let mut t = Terminal::new(TestBackend::new(60, 10)).unwrap();
    s.draw(&mut t).unwrap();
    assert_eq!(text(&t)[9], "#rust> 你好");
    t.backend_mut().assert_cursor_position((7 + 4, 9));
}

#[test]
fn styled_rows_become_spans_and_odd_sequences_are_dropped() {
    let line = styled_line("\x1b[1;35m[DM from \x1b[0m\x1b[93mbob\x1b[0m] hi", DARK);
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    assert_eq!(text, "[DM from bob] hi");
    assert!(line.spans[0].style.add_modifier.contains(Modifier::BOLD));
    assert_eq!(line.spans[0].style.fg, Some(Color::Magenta));
    assert_eq!(line.spans[1].style.fg, Some(Color::LightYellow));
    let light = styled_line(
        "\x1b[93mbob",
        Theme {
            color: true,
            light: true,
        },
    );
    assert_eq!(
        light.spans[0].style.fg,
        Some(Color::Yellow),
        "readable on white"
    );
    let plain = styled_line(
        "\x1b[93mbob",
        Theme {
            color: false,
            light: false,
        },
    );
    assert_eq!(plain.spans[0].style.fg, None, "NO_COLOR");
    for odd in ["\x1b", "\x1b[", "a\x1b[31漢", "\x1b[999;xm!"] {
        let _ = styled_line(odd, DARK);
    }
    assert_eq!(styled_line("\x1b[999;xm!", DARK).spans[0].content, "!");
}

#[test]
fn the_status_bar_follows_the_connection() {
    let mut s = screen();
    let now = std::time::Instant::now();
    s.event(
        &ChatEvent::Disconnect {
            reason: "the server went away".into(),
            reconnect_in: Some(4),
        },
        now,
    );
    s.update(&console(), now + std::time::Duration::from_secs(1));
    let (rows, _) = draw(&mut s, 80, 6);
    assert!(rows[4].contains("reconnecting in 3 s"), "{}", rows[4]);
    assert!(rows.iter().any(|r| r.contains("! disconnected")));
    s.event(
        &ChatEvent::LoggedIn {
            user: "alice".into(),
            new_user: false,
            online: vec![],
            count: None,
        },
        now,
    );
    let (rows, _) = draw(&mut s, 80, 6);
    assert!(rows[4].contains("resumed"), "{}", rows[4]);
    s.event(
        &ChatEvent::NotSent {
            to: None,
            text: "lost words".into(),
            reason: "the connection was lost".into(),
        },
        now,
    );
    assert_eq!(s.not_sent().len(), 1);
}

/// The text capture of a typical session in the README: drawn here, so
/// that it is what the client shows. `README_SCREEN=1` prints it.
#[test]
fn the_readme_shows_a_drawn_session() {
    let mut s = screen();
    let mut w = FullScreen::new("alice", "chat.example.org:65015".into(), DARK);
    std::mem::swap(&mut s.windows, &mut w.windows);
    s.windows.push(
        ChatEvent::LoggedIn {
            user: "alice".into(),
            new_user: false,
            online: vec!["alice".into(), "bob".into(), "carol".into()],
            count: None,
        },
        at(9, 0),
    );
    in_rust(&mut s, 0);
    let lines = [
        ("bob", "morning! the release is out", 100),
        ("carol", "nice, 漢字 in names works now 🎉", 101),
        ("bob", "alice: can you check the notes?", 102),
    ];
    for (from, text, o) in lines {
        s.windows.push(room_msg(from, text, o, false), at(9, 12));
    }
    s.windows.push(
        ChatEvent::MemberJoined {
            room: "#rust".into(),
            user: "dave".into(),
        },
        at(9, 13),
    );
    s.windows.push(
        ChatEvent::RoomMessage {
            room: "#rust".into(),
            from: "alice".into(),
            text: "on it".into(),
            action: false,
            mention: false,
            history: false,
            offset: 103,
            sent: 0,
        },
        at(9, 14),
    );
    s.windows.push(public("carol", "lunch at 12?"), at(9, 15));
    s.windows.push(
        ChatEvent::Direct {
            from: "bob".into(),
            text: "psst".into(),
        },
        at(9, 16),
    );
    for c in "looks good to me".chars() {
        key(&mut s, KeyCode::Char(c), KeyModifiers::NONE);
    }
    let (rows, _) = draw(&mut s, 72, 12);
    let capture = rows.join("\n");
    if std::env::var_os("README_SCREEN").is_some() {
        println!("{capture}");
    }
    let readme = include_str!("../../../../../../README.md");
    assert!(
        readme.contains(&capture),
        "README.md should show this capture (README_SCREEN=1 prints it):\n{capture}"
    );
}
