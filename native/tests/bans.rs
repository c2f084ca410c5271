//! Address bans on real sockets: a real `chatserver` on loopback, its
//! admin named in a configuration file, bans a client bound to 127.0.0.2;
//! afterwards nothing from 127.0.0.2 is answered, not even a Retry, while
//! 127.0.0.1 still logs in (PROTOCOL.md §4.5, §5.12).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use udpchat_core::crypto::Initiator;
use udpchat_core::wire::{Header, Initial, PacketKind};

/// Sends one Initial without a cookie from a socket bound to `local`, and
/// returns the kind of the first datagram back within `wait`, if any.
fn answer_to_initial(local: &str, server: SocketAddr, wait: Duration) -> Option<PacketKind> {
    let socket = UdpSocket::bind((local, 0)).expect("bind a loopback address");
    socket.set_read_timeout(Some(wait)).unwrap();
    let init = Initiator::new(0x0B4D_0B4D, [7; 32]).unwrap();
    let bytes = Initial {
        cookie: None,
        msg1: init.msg1(),
        issue_id: false,
    }
    .encode(0x0B4D_0B4D);
    socket.send_to(&bytes, server).unwrap();
    let mut buf = [0u8; 2048];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(Header::decode(&buf[..n]).expect("a valid header").kind),
        Err(_) => None,
    }
}

#[test]
fn a_banned_loopback_address_gets_no_answer_and_the_others_still_log_in() {
    let dir = temp_dir();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "admins = [\"alice\"]\n").unwrap();
    let users = dir.path().join("chat_users.json");
    let config_arg = config.to_str().unwrap();
    let server = Server::start_with(&users, &["--config", config_arg]);

    let mut alice = login(server.addr, "alice", "a");
    let mut bob = spawn_client_with(
        server.addr,
        "bob",
        Password::Stdin("b"),
        &["--bind", "127.0.0.2"],
    );
    bob.expect_prefix("registered and logged in as bob", TIMEOUT);
    alice.expect_line("* bob joined", TIMEOUT);
    // Before the ban, 127.0.0.2 gets its Retry.
    assert_eq!(
        answer_to_initial("127.0.0.2", server.addr, Duration::from_secs(2)),
        Some(PacketKind::Retry)
    );

    // Bob is no admin.
    bob.send("/banip 127.0.0.1");
    bob.expect_prefix("! only server admins may ban addresses", TIMEOUT);

    alice.send("/banip 127.0.0.2 1h flooding");
    alice.expect_line("done: ban_address 127.0.0.2/32", TIMEOUT);
    bob.expect_with(&|l| l.contains("banned"), "the ban", TIMEOUT);
    alice.expect_prefix("* bob left (banned", TIMEOUT);
    alice.send("/bans");
    alice.expect_prefix("127.0.0.2/32 by alice at ", TIMEOUT);

    // Nothing at all comes back to 127.0.0.2; 127.0.0.1 still gets a Retry.
    assert_eq!(
        answer_to_initial("127.0.0.2", server.addr, Duration::from_secs(2)),
        None
    );
    assert_eq!(
        answer_to_initial("127.0.0.1", server.addr, Duration::from_secs(2)),
        Some(PacketKind::Retry)
    );
    let mut carol = login(server.addr, "carol", "c");
    alice.expect_line("* carol joined", TIMEOUT);
    for client in [&mut alice, &mut carol] {
        exit_cleanly(client);
    }
    bob.kill();
}

#[test]
fn a_configuration_file_with_an_unknown_key_is_refused_by_name() {
    let dir = temp_dir();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "admins = [\"alice\"]\nadmin = \"bob\"\n").unwrap();
    let users = dir.path().join("chat_users.json");
    let mut server = Server::spawn(&users, &["--config", config.to_str().unwrap()]);
    server.expect_exit(1, TIMEOUT);
    let text = server.transcript();
    assert!(
        text.contains("server.toml") && text.contains("admin"),
        "{text}"
    );
}
