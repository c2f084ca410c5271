//! chatclient --line on a real terminal (a pseudo-terminal, read through a
//! terminal emulator): a message that arrives while the user is typing is
//! printed above the line being typed, which stays intact, and the line is
//! then sent whole. Ctrl-D leaves with status 0. Colours appear on a
//! terminal and not with NO_COLOR.

#![cfg(unix)]

mod common;
mod pty;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use pty::{COLS, CommandBuilder, Term};

/// `chatclient 127.0.0.1 PORT NAME` with CHAT_PASSWORD, on a terminal.
fn spawn(addr: SocketAddr, name: &str, password: &str, env: &[(&str, &str)]) -> Term {
    spawn_with(addr, name, Some(password), env)
}

/// As [`spawn`]; without a password the client prompts for it.
fn spawn_with(addr: SocketAddr, name: &str, password: Option<&str>, env: &[(&str, &str)]) -> Term {
    let mut cmd = CommandBuilder::new(CHATCLIENT);
    // The line editor (full screen is tui.rs's).
    cmd.arg("--line");
    cmd.args([&addr.ip().to_string(), &addr.port().to_string(), name]);
    for var in [
        "CHAT_SERVER",
        "CHAT_PORT",
        "CHAT_USER",
        "CHAT_SERVER_KEY",
        "CHAT_PASSWORD",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    if let Some(password) = password {
        cmd.env("CHAT_PASSWORD", password);
    }
    cmd.env("CHAT_KNOWN_SERVERS", NULL_FILE);
    cmd.env("CHAT_CONFIG", NULL_FILE);
    cmd.env("CHAT_DEVICE_TOKENS", NULL_FILE);
    cmd.env("CHAT_HISTORY", "");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Term::spawn(cmd)
}

#[test]
fn a_message_arriving_while_typing_leaves_the_typed_line_intact() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.row_of("logged in as alice; online: alice, bob");
    alice.wait_editing("alice> ");
    bob.expect_line("* alice joined", TIMEOUT);

    alice.keys("hello wor");
    alice.wait_editing("alice> hello wor");

    bob.send("incoming while you type");
    let message = alice.row_of("<bob> incoming while you type");
    bob.send("/msg alice and a direct one");
    let direct = alice.row_of("[DM from bob] and a direct one");
    // The messages are above the line being typed, which is still there
    // with the cursor at its end.
    alice.wait_editing("alice> hello wor");
    let (row, _) = alice.cursor();
    assert!(message < direct && direct < row, "{:#?}", alice.rows());
    let rows = alice.rows();
    assert!(
        rows[message].starts_with('[') && rows[message].contains("] <bob> "),
        "a [HH:MM] stamp: {:?}",
        rows[message]
    );
    assert_eq!(
        rows.iter().filter(|r| r.contains("hello wor")).count(),
        1,
        "the typed text is shown once: {rows:#?}"
    );

    // Typing goes on where it was; the whole line is sent.
    alice.keys("ld\r");
    bob.expect_line("[alice] hello world", TIMEOUT);
    // On a terminal, your own message reads as chat once confirmed.
    alice.row_of("<alice> hello world");
    alice.wait_editing("alice> ");

    // History: the line comes back with the up arrow.
    alice.keys("\x1b[A");
    alice.wait_editing("alice> hello world");
    alice.keys("\x15"); // Ctrl-U clears it.
    alice.wait_editing("alice> ");

    // Ctrl-D leaves.
    alice.keys("\x04");
    alice.row_of("bye");
    assert_eq!(alice.wait_exit(), 0);
    bob.expect_line("* alice left (exit)", TIMEOUT);
    exit_cleanly(&mut bob);
    assert_eq!(bob.count("[alice] hello world"), 1);
}

#[test]
fn the_menu_flow_prompts_on_the_terminal() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    alice.keys("DM\r");
    alice.row_of("online: alice, bob");
    alice.wait_editing("To: ");
    alice.keys("bob\r");
    alice.wait_editing("Message to bob: ");
    alice.keys("psst\r");
    bob.expect_line("[DM from alice] psst", TIMEOUT);
    alice.row_of("-> bob: psst");
    alice.wait_editing("alice> ");
    alice.keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    exit_cleanly(&mut bob);
}

/// The colour of the cell at `row`, `col`.
fn color_at(term: &Term, row: usize, col: usize) -> vt100::Color {
    let parser = term.screen.lock().unwrap_or_else(|e| e.into_inner());
    parser
        .screen()
        .cell(row as u16, col as u16)
        .expect("a cell")
        .fgcolor()
}

#[test]
fn colours_on_a_terminal_and_none_with_no_color() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut coloured = spawn(server.addr, "alice", "a", &[]);
    let mut plain = spawn(server.addr, "carol", "c", &[("NO_COLOR", "1")]);
    coloured.wait_editing("alice> ");
    plain.wait_editing("carol> ");
    bob.send("colours?");
    for (term, expect_colour) in [(&coloured, true), (&plain, false)] {
        let row = term.row_of("<bob> colours?");
        let col = term.rows()[row].find("bob").expect("the name");
        let colour = color_at(term, row, col);
        assert_eq!(
            colour != vt100::Color::Default,
            expect_colour,
            "bob's name in {colour:?}"
        );
    }
    coloured.keys("\x04");
    plain.keys("\x04");
    assert_eq!(coloured.wait_exit(), 0);
    assert_eq!(plain.wait_exit(), 0);
    exit_cleanly(&mut bob);
}

#[test]
fn the_typed_line_survives_a_server_restart() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let mut first = Server::start_on(&users, port, &[]);
    let mut alice = spawn(first.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    alice.keys("half a tho");
    alice.wait_editing("alice> half a tho");

    first.proc.kill();
    drop(first);
    let second = Server::start_on(&users, port, &[]);
    alice.row_of("! disconnected: the server does not know this session");
    alice.row_of("Reconnecting as alice (attempt 1)...");
    alice.row_of("logged in as alice; online: alice");
    alice.wait_editing("alice> half a tho");

    let mut bob = login(second.addr, "bob", "b");
    alice.row_of("--> bob joined");
    alice.keys("ught\r");
    bob.expect_line("[alice] half a thought", TIMEOUT);
    alice.keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    exit_cleanly(&mut bob);
}

#[test]
fn a_padded_message_cannot_pass_for_another_users_line() {
    let server = Server::start();
    let _bob = login(server.addr, "bob", "b");
    let mut mallory = login(server.addr, "mallory", "m");
    let alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.row_of("logged in as alice");
    alice.wait_editing("alice> ");
    // Padded so that, wrapped by the terminal at its width, the rest would
    // start a row of its own: "[17:06] <bob> alice, the server moved…".
    let prefix = "[00:00] <mallory> ".len();
    let pad = ".".repeat(usize::from(COLS) - prefix);
    mallory.send(&format!(
        "{pad}[17:06] <bob> alice, the server moved to evil.example"
    ));
    let row = alice.row_of("the server moved");
    let rows = alice.rows();
    assert!(
        rows[row].starts_with("  \u{21b3} "),
        "the continuation row is marked: {rows:#?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.starts_with('[') && r.contains("] <bob> alice, the server")),
        "{rows:#?}"
    );
    // A right-to-left override and a line separator are shown, not obeyed.
    mallory.send("x\u{202e}txet desrever\u{2028}new line?");
    alice.row_of("x<U+202E>txet desrever<U+2028>new line?");
}

/// Bob's lines from alice, in order.
fn from_alice(bob: &mut Proc) -> Vec<String> {
    bob.out
        .seen()
        .iter()
        .filter_map(|l| l.strip_prefix("[alice] ").map(str::to_string))
        .collect()
}

#[test]
fn a_pasted_block_sends_every_line_in_order() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    bob.expect_line("* alice joined", TIMEOUT);
    let first: Vec<String> = (1..=30).map(|i| format!("pasted {i}")).collect();
    // A terminal with bracketed paste: the block arrives between markers,
    // then the user presses Enter.
    alice.keys(&format!("\x1b[200~{}\r\x1b[201~", first.join("\r")));
    alice.keys("\r");
    bob.wait_until(
        &|lines| {
            lines
                .iter()
                .filter(|l| l.starts_with("[alice] pasted"))
                .count()
                >= 30
        },
        "30 pasted lines",
        Duration::from_secs(20),
    );
    // A terminal without it: the lines arrive as if typed very fast.
    let second: Vec<String> = (1..=30).map(|i| format!("typed {i}")).collect();
    alice.keys(&format!("{}\r", second.join("\r")));
    bob.wait_until(
        &|lines| {
            lines
                .iter()
                .filter(|l| l.starts_with("[alice] typed"))
                .count()
                >= 30
        },
        "30 typed lines",
        Duration::from_secs(20),
    );
    let got = from_alice(&mut bob);
    let want: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(got, want, "every line once, in order");
    alice.wait_editing("alice> ");
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
    exit_cleanly(&mut bob);
}

#[test]
fn ctrl_c_throws_the_line_away_and_ctrl_d_leaves() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    alice.keys("half a tho");
    alice.wait_editing("alice> half a tho");
    alice.keys("\x03");
    alice.row_of("Ctrl-C throws away the line");
    alice.wait_editing("alice> ");
    // In a reverse search too.
    alice.keys("halt and catch fire\r");
    bob.expect_line("[alice] halt and catch fire", TIMEOUT);
    alice.wait_editing("alice> ");
    alice.keys("\x12hal");
    alice.row_of("reverse-i-search");
    alice.keys("\x03");
    alice.wait_editing("alice> ");
    alice.keys("still here\r");
    bob.expect_line("[alice] still here", TIMEOUT);
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
    exit_cleanly(&mut bob);
    assert_eq!(bob.count("[alice] half a tho"), 0);
    assert_eq!(bob.count("[alice] halt and catch fire"), 1);
}

#[test]
fn registration_asks_for_the_new_password_twice() {
    let server = Server::start();
    let mut carol = spawn_with(server.addr, "carol", None, &[("NO_COLOR", "1")]);
    carol.row_of("carol is a new user: choose a password to register.");
    carol.wait_hidden_input("New password: ");
    carol.keys("first-try\r");
    carol.wait_hidden_input("Repeat the new password: ");
    carol.keys("first-tyr\r");
    carol.row_of("The two passwords differ; try again.");
    carol.wait_hidden_input("New password: ");
    carol.keys("second-try\r");
    carol.wait_hidden_input("Repeat the new password: ");
    carol.keys("second-try\r");
    carol.row_of("registered and logged in as carol; online: carol");
    carol.wait_editing("carol> ");
    let rows = carol.rows();
    assert!(
        !rows
            .iter()
            .any(|r| r.contains("-try") || r.contains("-tyr")),
        "no password on the screen: {rows:#?}"
    );
    carol.keys("\x04");
    assert_eq!(carol.wait_exit(), 0);
    // The password that was typed twice is the account's.
    let mut again = login(server.addr, "carol", "second-try");
    exit_cleanly(&mut again);
}

#[test]
fn the_reason_a_session_ended_is_on_screen_when_the_client_exits() {
    let server = Server::start();
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    // alice logs in somewhere else.
    let mut elsewhere = login(server.addr, "alice", "a");
    assert_eq!(alice.wait_exit(), 1);
    // Printed before the process ended, not lost with it (the screen is
    // read on another thread: it may take a moment to show it).
    alice.row_of("you logged in from another place");
    exit_cleanly(&mut elsewhere);
}

#[test]
fn input_history_is_kept_across_runs() {
    let server = Server::start();
    let dir = temp_dir();
    let history = dir.path().join("history");
    let history = history.to_str().expect("a UTF-8 path");
    let mut alice = spawn(
        server.addr,
        "alice",
        "a",
        &[("NO_COLOR", "1"), ("CHAT_HISTORY", history)],
    );
    alice.wait_editing("alice> ");
    alice.keys("remember me\r");
    alice.row_of("<alice> remember me");
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(history)
            .expect("history")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private to the user: {mode:o}");
    }
    let mut again = spawn(
        server.addr,
        "alice",
        "a",
        &[("NO_COLOR", "1"), ("CHAT_HISTORY", history)],
    );
    again.wait_editing("alice> ");
    again.keys("\x1b[A");
    again.wait_editing("alice> remember me");
    again.keys("\x15\x04");
    assert_eq!(again.wait_exit(), 0);
}

#[test]
fn tab_completes_commands_and_online_users() {
    let server = Server::start();
    let mut bob = login(server.addr, "bobby", "b");
    let mut alice = spawn(server.addr, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    bob.expect_line("* alice joined", TIMEOUT);
    alice.keys("/conn\t");
    alice.wait_editing("alice> /connect");
    alice.keys("\x15");
    alice.wait_editing("alice> ");
    alice.keys("hi bo\t");
    alice.wait_editing("alice> hi bobby");
    alice.keys("\r");
    bob.expect_line("[alice] hi bobby", TIMEOUT);
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
    exit_cleanly(&mut bob);
}

#[test]
fn registration_by_invite_asks_for_the_code_before_the_password() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let server = Server::start_with(&users, &["--admin", "alice"]);
    let mut alice = login(server.addr, "alice", "a");
    alice.send("/registration invite");
    alice.expect_line("done: registration invite", TIMEOUT);
    alice.send("/invite");
    let line = alice.expect_prefix("invite code ", TIMEOUT);
    let code = line["invite code ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut dave = spawn_with(server.addr, "dave", None, &[("NO_COLOR", "1")]);
    dave.row_of("this server registers new accounts by invite only");
    dave.wait_hidden_input("Invite code: ");
    dave.keys(&format!("{code}\r"));
    dave.wait_hidden_input("New password: ");
    dave.keys("dave-pass\r");
    dave.wait_hidden_input("Repeat the new password: ");
    dave.keys("dave-pass\r");
    dave.row_of("registered and logged in as dave; online: ");
    dave.wait_editing("dave> ");
    dave.keys("\x04");
    assert_eq!(dave.wait_exit(), 0);
    exit_cleanly(&mut alice);
}
