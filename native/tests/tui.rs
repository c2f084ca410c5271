//! chatclient's full-screen mode on a real terminal (a pseudo-terminal,
//! read through a terminal emulator), with the real chatserver on
//! loopback: a room window and the server window; a message arriving in
//! the inactive window marks it in the status bar, switching shows it, and
//! the text being typed survives both. A pasted block is sent line by line,
//! in order, and Ctrl-D leaves with status 0. Scrolling back fetches older
//! history from the server; rooms kept from an earlier session get windows
//! with their members.

#![cfg(unix)]

mod common;
mod pty;

use std::net::SocketAddr;

use common::*;
use pty::{CommandBuilder, Term};

/// `chatclient 127.0.0.1 PORT NAME` with CHAT_PASSWORD, full screen.
fn spawn(addr: SocketAddr, name: &str, password: &str) -> Term {
    let mut cmd = CommandBuilder::new(CHATCLIENT);
    cmd.args([&addr.ip().to_string(), &addr.port().to_string(), name]);
    for var in [
        "CHAT_SERVER",
        "CHAT_PORT",
        "CHAT_USER",
        "CHAT_SERVER_KEY",
        "CHAT_THEME",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    cmd.env("CHAT_PASSWORD", password);
    cmd.env("CHAT_KNOWN_SERVERS", NULL_FILE);
    cmd.env("CHAT_CONFIG", NULL_FILE);
    cmd.env("CHAT_DEVICE_TOKENS", NULL_FILE);
    cmd.env("CHAT_HISTORY", "");
    Term::spawn(cmd)
}

/// The status bar: the row above the input line.
fn status(t: &Term) -> String {
    let rows = t.rows();
    rows[rows.len() - 2].clone()
}

#[test]
fn a_message_in_the_inactive_window_marks_it_and_typed_text_survives() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    let mut alice = spawn(server.addr, "alice", "a");
    alice.wait_for("the status bar", |t| status(t).contains("alice@127.0.0.1"));
    alice.wait_for("connected", |t| status(t).contains("connected"));
    alice.wait_editing("alice> ");
    bob.expect_line("* alice joined", TIMEOUT);

    alice.keys("/join #rust\r");
    alice.wait_for("the room's window", |t| status(t).contains("[2:#rust]"));
    alice.wait_editing("#rust> ");
    bob.send("/join #rust");
    alice.row_of("bob joined #rust");

    // Typing in the room when a public message arrives in the server
    // window: marked, not shown here.
    alice.keys("half a line");
    alice.wait_editing("#rust> half a line");
    bob.send("/go");
    bob.send("hello everyone");
    alice.wait_for("the server window marked", |t| {
        status(t).contains("1:server(1)")
    });
    assert!(
        !alice.rows().iter().any(|r| r.contains("hello everyone")),
        "{:#?}",
        alice.rows()
    );
    alice.wait_editing("#rust> half a line");

    // Alt-1 shows it; the mark is gone; the typed text is still there.
    alice.keys("\x1b1");
    alice.row_of("<bob> hello everyone");
    alice.wait_for("the mark cleared", |t| {
        status(t).contains("[1:server]") && !status(t).contains("server(1)")
    });
    alice.wait_editing("alice> half a line");

    // Back to the room (Ctrl-N) and the line goes there.
    alice.keys("\x0e");
    alice.wait_editing("#rust> half a line");
    alice.keys(" sent\r");
    bob.expect_line("[#rust] <alice> half a line sent", TIMEOUT);
    alice.row_of("<alice> half a line sent");

    // A paste of three lines: each sent, in order.
    alice.keys("\x1b[200~one\rtwo\rthree\r\x1b[201~");
    for line in ["one", "two", "three"] {
        bob.expect_line(&format!("[#rust] <alice> {line}"), TIMEOUT);
    }

    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0, "{:#?}", alice.rows());
    bob.expect_line("* alice left (exit)", TIMEOUT);
}

#[test]
fn scrolling_back_fetches_the_older_history_from_the_server() {
    let dir = temp_dir();
    let server = Server::start_with(
        &dir.path().join("chat_users.json"),
        &["--history-on-join", "2"],
    );
    let mut bob = login(server.addr, "bob", "b");
    bob.send("/join #log");
    for i in 0..8 {
        bob.send(&format!("/msg #log entry {i}"));
    }
    bob.expect_line("ok: message stored in #log (offset 8)", TIMEOUT);

    let mut alice = spawn(server.addr, "alice", "a");
    alice.wait_editing("alice> ");
    alice.keys("/join #log\r");
    alice.wait_for("the room's window", |t| status(t).contains("[2:#log]"));
    // The join brings the latest two.
    alice.row_of("entry 7");
    alice.row_of("entry 6");
    assert!(!alice.rows().iter().any(|r| r.contains("entry 5")));
    // PgUp: the start of what is loaded is in view, so the six older ones
    // are fetched and shown above a marker, with the start of the history.
    alice.keys("\x1b[5~");
    let marker = alice.row_of("history: 6 older messages above");
    let first = alice.row_of("entry 0");
    let start = alice.row_of("start of the room's history");
    assert!(start < first && first < marker, "{:#?}", alice.rows());
    // The view stayed where it was; PgDn brings the newest back, below
    // the marker.
    alice.keys("\x1b[6~");
    let six = alice.row_of("entry 6");
    let marker = alice.row_of("history: 6 older messages above");
    assert!(
        marker < six && six < alice.row_of("entry 7"),
        "{:#?}",
        alice.rows()
    );
    assert!(
        alice.rows()[six].starts_with("[#log "),
        "history shows when it was sent: {:?}",
        alice.rows()[six]
    );
    alice.keys("caught up\r");
    bob.expect_line("[#log] <alice> caught up", TIMEOUT);
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0, "{:#?}", alice.rows());
}

#[test]
fn rooms_from_an_earlier_session_get_windows_with_their_members() {
    let server = Server::start();
    let mut bob = login(server.addr, "bob", "b");
    bob.send("/join #keep");
    bob.expect_with(&|l| l.contains("you joined #keep"), "bob's join", TIMEOUT);
    let mut earlier = login(server.addr, "alice", "a");
    earlier.send("/join #keep");
    earlier.expect_with(&|l| l.contains("you joined #keep"), "the join", TIMEOUT);
    exit_cleanly(&mut earlier);

    let mut alice = spawn(server.addr, "alice", "a");
    alice.wait_editing("alice> ");
    alice.keys("\x1b2");
    alice.wait_for("the room's window", |t| status(t).contains("[2:#keep]"));
    alice.row_of("\u{2502}2 members");
    alice.row_of("\u{2502}bob");
    alice.keys("back again\r");
    bob.expect_line("[#keep] <alice> back again", TIMEOUT);
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0, "{:#?}", alice.rows());
}
