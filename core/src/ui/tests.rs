//! The console's unit tests: what needs its private state. The tests that
//! use only the public API drive it through the simulation crate, in
//! `core/tests/console.rs` and `core/tests/console_rooms.rs`.

use super::*;

#[test]
fn sanitize_replaces_controls() {
    assert_eq!(sanitize("a\u{1b}[2Jb\u{9b}"), "a\u{fffd}[2Jb\u{fffd}");
    assert_eq!(sanitize("plain ünïcode"), "plain ünïcode");
}

#[test]
fn sanitize_shows_what_would_reorder_hide_or_split_text() {
    // Right-to-left override: "evil" would read backwards to the end of
    // the line.
    assert_eq!(sanitize("a\u{202e}live"), "a<U+202E>live");
    // Isolates and marks.
    assert_eq!(
        sanitize("\u{2066}x\u{2069}\u{200f}"),
        "<U+2066>x<U+2069><U+200F>"
    );
    // Invisible characters.
    assert_eq!(sanitize("al\u{200b}ice"), "al<U+200B>ice");
    assert_eq!(sanitize("\u{feff}hi"), "<U+FEFF>hi");
    assert_eq!(sanitize("a\u{200c}b"), "a<U+200C>b");
    assert_eq!(sanitize("a\u{200d}b"), "a<U+200D>b");
    // Line and paragraph separators would start a new line in a pipe.
    assert_eq!(sanitize("one\u{2028}two\u{2029}"), "one<U+2028>two<U+2029>");
    // Emoji sequences stay whole.
    for emoji in [
        "👩\u{200d}💻",
        "👨\u{200d}👩\u{200d}👧",
        "❤\u{fe0f}\u{200d}🔥",
    ] {
        assert_eq!(sanitize(emoji), emoji);
    }
    let england = "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
    assert_eq!(sanitize(england), england);
    assert_eq!(sanitize("x\u{e0067}"), "x<U+E0067>");
}

#[test]
fn lines_wait_until_login() {
    let mut c = Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
    c.handle_line(Instant::ZERO, "PM");
    c.handle_line(Instant::ZERO, "hello");
    c.handle_eof(Instant::ZERO);
    assert_eq!(c.exit_code(), None, "waits for the server, does not exit");
    assert_eq!(c.lines.len(), 2);
    assert!(c.poll_transmit(Instant::ZERO, &mut Vec::new()).is_some());
}

#[test]
fn bad_username_is_refused() {
    assert!(Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "a b").is_err());
}

#[test]
fn the_text_form_is_the_assignments() {
    let mut c = Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Line("Connecting as alice...".to_string()))
    );
    c.output.push_back(Output::Prompt(PromptKind::Menu));
    c.output.push_back(Output::Reconnect);
    c.output.push_back(Output::Event(ChatEvent::Public {
        from: "bob".to_string(),
        text: "hi".to_string(),
        action: false,
        mention: false,
    }));
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Prompt(MENU_PROMPT.to_string()))
    );
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Line("[bob] hi".to_string()))
    );
    assert_eq!(c.poll_output(), None);
}
