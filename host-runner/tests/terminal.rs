//! The sandboxed client on a real terminal (a pseudo-terminal, read through
//! a terminal emulator), as chatclient's own terminal test drives it: the
//! host edits the line, a message that arrives while the user types is
//! printed above the line being typed, which stays intact and is then sent
//! whole; the arrows edit the line; stamps and colours as chatclient shows
//! them; Ctrl-D leaves with status 0.

#![cfg(unix)]

mod common;
#[path = "../../native/tests/pty/mod.rs"]
mod pty;

use common::*;
use pty::{CommandBuilder, Term};

/// `host-runner … 127.0.0.1 PORT NAME` with CHAT_PASSWORD, on a terminal.
fn spawn(port: u16, name: &str, password: &str, env: &[(&str, &str)]) -> Term {
    let module_path = module("wasi-client");
    warm_cache(&module_path);
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("--module");
    cmd.arg(&module_path);
    cmd.arg("--cache-dir");
    cmd.arg(shared_cache());
    cmd.args(["127.0.0.1", &port.to_string(), name]);
    for var in [
        "CHAT_SERVER",
        "CHAT_PORT",
        "CHAT_USER",
        "CHAT_SERVER_KEY",
        "NO_COLOR",
        "RUST_LOG",
        "UDPCHAT_MODULE",
        "UDPCHAT_CACHE_DIR",
        "UDPCHAT_CACHE_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    cmd.env("CHAT_PASSWORD", password);
    cmd.env("CHAT_KNOWN_SERVERS", "/dev/null");
    cmd.env("CHAT_DEVICE_TOKENS", "/dev/null");
    cmd.env("CHAT_HISTORY", "");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Term::spawn(cmd)
}

#[test]
fn a_message_arriving_while_typing_leaves_the_typed_line_intact() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bob", "b");
    bob.expect("logged in as bob");
    let mut alice = spawn(server.port, "alice", "a", &[("NO_COLOR", "1")]);
    alice.row_of("logged in as alice; online: alice, bob");
    alice.wait_editing("alice> ");
    bob.expect("* alice joined");

    alice.keys("hello wor");
    alice.wait_editing("alice> hello wor");
    bob.send_line("incoming while you type");
    let message = alice.row_of("<bob> incoming while you type");
    bob.send_line("/msg alice and a direct one");
    let direct = alice.row_of("[DM from bob] and a direct one");
    // Above the line being typed, which is still there, cursor at its end.
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
    bob.expect("[alice] hello world");

    // The arrows edit the line: left twice, then insert.
    alice.wait_editing("alice> ");
    alice.keys("helo");
    alice.keys("\x1b[D\x1b[D");
    alice.keys("l");
    alice.keys("\r");
    bob.expect("[alice] hello");
    // History: the line comes back with the up arrow.
    alice.wait_editing("alice> ");
    alice.keys("\x1b[A");
    alice.wait_editing("alice> hello");
    alice.keys("\x15");
    alice.wait_editing("alice> ");

    // Ctrl-D leaves.
    alice.keys("\x04");
    alice.row_of("bye");
    assert_eq!(alice.wait_exit(), 0);
    bob.expect("* alice left (exit)");
}

#[test]
fn colours_as_chatclient_shows_them() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bob", "b");
    bob.expect("logged in as bob");
    let mut alice = spawn(server.port, "alice", "a", &[]);
    alice.wait_editing("alice> ");
    bob.send_line("in colour");
    let row = alice.row_of("<bob> in colour");
    let col = alice.rows()[row].find("bob").expect("the nick");
    let parser = alice.screen.lock().unwrap_or_else(|e| e.into_inner());
    let cell = parser
        .screen()
        .cell(row as u16, col as u16)
        .expect("a cell")
        .fgcolor();
    assert_ne!(cell, vt100::Color::Default, "the nick is coloured");
    drop(parser);
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
}

#[test]
fn tab_completes_commands_and_online_users() {
    let server = ChatServer::start();
    let mut bob = native_client(server.port, "bobby", "b");
    bob.expect("logged in as bobby");
    let mut alice = spawn(server.port, "alice", "a", &[("NO_COLOR", "1")]);
    alice.wait_editing("alice> ");
    bob.expect("* alice joined");
    alice.keys("/conn\t");
    alice.wait_editing("alice> /connect");
    alice.keys("\x15");
    alice.wait_editing("alice> ");
    alice.keys("hi bo\t");
    alice.wait_editing("alice> hi bobby");
    alice.keys("\r");
    bob.expect("[alice] hi bobby");
    alice.keys("\x04");
    assert_eq!(alice.wait_exit(), 0);
}
