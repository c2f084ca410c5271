//! A user store the server cannot read makes it refuse to start, with a
//! message naming the file, and leaves the file as it was.

mod common;

use std::fs;

use common::*;

/// Starts the server on a store holding `contents`; checks it exits non-zero
/// without listening, names the file, and changes nothing in the directory.
fn refuses_to_start(contents: &[u8]) -> String {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    fs::write(&users, contents).expect("write the store");
    let mut server = Server::spawn(&users, &[]);
    let status = server.wait_exit(TIMEOUT);
    let err = server.err.text();
    assert!(
        !status.success(),
        "exit status {status} for {:?}",
        String::from_utf8_lossy(contents)
    );
    assert!(
        !server
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("listening on")),
        "it did not listen: {:?}",
        server.out.seen()
    );
    assert!(
        err.contains(&users.display().to_string()),
        "the message names {}: {err}",
        users.display()
    );
    assert_eq!(
        fs::read(&users).expect("the store is still there"),
        contents,
        "the store is unchanged"
    );
    let entries: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, ["chat_users.json"], "no other file was left");
    err
}

#[test]
fn garbage_store_is_refused() {
    refuses_to_start(b"this is not JSON {");
}

#[test]
fn binary_store_is_refused() {
    refuses_to_start(&[0xff, 0x00, 0xfe, 0x7b, 0x22]);
}

#[test]
fn truncated_store_is_refused() {
    // A real store, cut short.
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let server = Server::start_with(&users, &[]);
    let mut alice = login(server.addr, "alice", "a");
    exit_cleanly(&mut alice);
    drop(server);
    let full = fs::read(&users).expect("the store");
    refuses_to_start(&full[..full.len() / 2]);
}

#[test]
fn store_of_another_version_is_refused() {
    refuses_to_start(br#"{"version": 99, "users": []}"#);
}

#[test]
fn store_with_the_wrong_layout_is_refused() {
    refuses_to_start(br#"{"version": 1, "users": [{"name": 7}]}"#);
    refuses_to_start(br#"[1, 2, 3]"#);
}

#[test]
fn store_with_a_duplicate_name_is_refused() {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$4+8XhjbG1FZsOgw5v6KqYA$9R2PZ+XTD+5oIDwEhTiRGd//L5tIiyeIn9M3JVAT7NQ";
    let store = format!(
        r#"{{"version": 1, "users": [
            {{"name": "alice", "password_hash": "{hash}", "created": 1}},
            {{"name": "ALICE", "password_hash": "{hash}", "created": 2}}
        ]}}"#
    );
    let err = refuses_to_start(store.as_bytes());
    assert!(
        err.to_lowercase().contains("alice"),
        "names the user: {err}"
    );
}
