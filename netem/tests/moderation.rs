//! Server admins and the audit log over the seeded emulator: who may send
//! notices and read the log, and that the log outlives a restart;
//! suspensions, ending sessions, and closed and invite-only registration
//! (PROTOCOL.md §5.12).

use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::server::{ServerConfig, UserRecord};
use udpchat_core::session::{ErrorCode, LoginFailure, RegistrationMode, validate_username};
use udpchat_sim::{World, WorldConfig, fake_hash, load_server_config, password_of, secs};

/// What peer `i`'s events say, through `pick`.
fn seen<T>(w: &World, i: usize, pick: impl Fn(&ClientEvent) -> Option<T>) -> Vec<T> {
    w.peers[i]
        .events
        .iter()
        .filter_map(|(_, e)| pick(e))
        .collect()
}

fn errors(w: &World, i: usize) -> Vec<ErrorCode> {
    seen(w, i, |e| match e {
        ClientEvent::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn notices(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::Notice { from, text } => Some((from.clone(), text.clone())),
        _ => None,
    })
}

fn mod_oks(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::ModOk { action, target } => Some((action.clone(), target.clone())),
        _ => None,
    })
}

/// A world whose server has `admins`, with `names` logged in.
fn world(seed: u64, admins: &[&str], names: &[&str]) -> World {
    let server = ServerConfig {
        admins: admins
            .iter()
            .inspect(|a| validate_username(a).unwrap())
            .map(|a| a.to_ascii_lowercase())
            .collect(),
        ..load_server_config()
    };
    let mut w = World::new(WorldConfig::new(seed).with_server(server));
    for n in names {
        w.add_client(n);
    }
    w.login_all(secs(10));
    w
}

#[test]
fn an_admin_sends_a_notice_to_everyone_and_others_may_not() {
    // The admin is named in another case than registered: names fold.
    let mut w = world(0x6001, &["ALICE"], &["alice", "bob", "carol"]);
    w.with_client(0, |c| c.send_notice("restart at six"))
        .unwrap();
    w.run_for(secs(2));
    for i in 0..3 {
        assert_eq!(
            notices(&w, i),
            [("alice".to_string(), "restart at six".to_string())],
            "peer {i}"
        );
    }
    assert_eq!(mod_oks(&w, 0), [("notice".to_string(), "*".to_string())]);

    // Bob is no admin: refused, and nobody hears it.
    w.with_client(1, |c| c.send_notice("free coins")).unwrap();
    w.run_for(secs(2));
    assert_eq!(errors(&w, 1), [ErrorCode::NotPermitted]);
    assert_eq!(notices(&w, 2).len(), 1);
    assert!(mod_oks(&w, 1).is_empty());
    // An invalid text is refused before anything is sent or logged.
    w.with_client(0, |c| c.send_notice("bad\u{7}")).ok();
    w.run_for(secs(1));
    assert_eq!(w.server.audit_log().count(), 1);
}

#[test]
fn the_audit_log_is_for_admins_and_outlives_a_restart() {
    let mut w = world(0x6002, &["alice"], &["alice", "bob"]);
    for k in 0..3 {
        w.with_client(0, |c| c.send_notice(&format!("notice {k}")))
            .unwrap();
    }
    w.run_for(secs(2));
    w.with_client(1, |c| c.request_audit(None)).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, 1), [ErrorCode::NotPermitted]);

    // The server restarts from its store: the entries are still there.
    w.restart_server();
    let alice = w.add_client("alice");
    w.login_all(secs(20));
    w.with_client(alice, |c| c.request_audit(Some(2))).unwrap();
    w.run_for(secs(2));
    let logs = seen(&w, alice, |e| match e {
        ClientEvent::AuditLog(entries) => Some(entries.clone()),
        _ => None,
    });
    assert_eq!(logs.len(), 1);
    let got: Vec<(u64, &str, &str, &str)> = logs[0]
        .iter()
        .map(|e| (e.id, e.by.as_str(), e.action.as_str(), e.reason.as_str()))
        .collect();
    // The latest two, oldest first.
    assert_eq!(
        got,
        [
            (2, "alice", "notice", "notice 1"),
            (3, "alice", "notice", "notice 2")
        ]
    );
    assert!(logs[0].iter().all(|e| e.time > 0));
}

/// A world whose server has `admins` and the accounts `accounts` in its
/// user store (so that they outlive a restart), with `names` logged in.
fn world_with_accounts(seed: u64, admins: &[&str], accounts: &[&str], names: &[&str]) -> World {
    let server = ServerConfig {
        admins: admins.iter().map(|a| a.to_ascii_lowercase()).collect(),
        ..load_server_config()
    };
    let mut config = WorldConfig::new(seed).with_server(server);
    config.accounts = accounts
        .iter()
        .map(|n| UserRecord {
            name: n.to_string(),
            password_hash: fake_hash(&password_of(n)),
            suspended: None,
        })
        .collect();
    let mut w = World::new(config);
    for n in names {
        w.add_client(n);
    }
    w.login_all(secs(10));
    w
}

fn login_failures(w: &World, i: usize) -> Vec<(LoginFailure, String)> {
    seen(w, i, |e| match e {
        ClientEvent::LoginFailed { reason, message } => Some((*reason, message.clone())),
        _ => None,
    })
}

fn lefts(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::Left { user, reason, .. } => Some((user.clone(), reason.clone())),
        _ => None,
    })
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

/// A new client `name` that sends `invite` with its password; returns its
/// index after `wait` of virtual time.
fn try_login(w: &mut World, name: &str, invite: Option<&str>, wait: u64) -> usize {
    let i = w.add_client(name);
    w.with_client(i, |c| c.set_invite(invite.map(str::to_string)));
    w.run_for(secs(wait));
    i
}

#[test]
fn a_suspension_ends_the_session_and_refuses_logins_until_it_ends() {
    let mut w = world_with_accounts(
        0x6101,
        &["alice"],
        &["alice", "bob", "carol"],
        &["alice", "bob", "carol"],
    );
    w.with_client(0, |c| c.suspend("BOB", Some(60), Some("spam")))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, 0), [pair("suspend", "bob")]);
    // Bob's session is over, and he is told until when and why.
    match w.client(1).closed() {
        Some(CloseReason::Ended { code, message }) => {
            assert_eq!(*code, ErrorCode::Suspended);
            assert!(message.contains("suspended until"), "{message}");
            assert!(message.ends_with("(by alice): spam"), "{message}");
        }
        other => panic!("bob's session: {other:?}"),
    }
    assert!(lefts(&w, 2).contains(&pair("bob", "suspended")));
    let entry = w.server.audit_log().last().unwrap().clone();
    assert_eq!(
        (
            entry.action.as_str(),
            entry.target.as_str(),
            entry.reason.as_str()
        ),
        ("suspend", "bob", "spam")
    );
    assert_eq!(entry.until, Some(entry.time + 60_000));
    // The user store keeps it.
    assert!(w.config().accounts[1].suspended.is_some());

    // A new login with the right password is refused, saying why.
    let again = try_login(&mut w, "bob", None, 3);
    let failures = login_failures(&w, again);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, LoginFailure::Suspended);
    assert!(failures[0].1.contains("spam"), "{}", failures[0].1);
    assert!(!w.client(again).is_logged_in());

    // Once the minute has passed, bob is back.
    w.vanish_peer(1);
    w.vanish_peer(again);
    w.run_for(secs(60));
    let back = w.add_client("bob");
    w.login_all(secs(10));
    assert!(w.client(back).is_logged_in());
}

#[test]
fn only_admins_suspend_and_nobody_suspends_an_admin() {
    let mut w = world_with_accounts(
        0x6102,
        &["alice", "dave"],
        &["alice", "bob", "carol", "dave"],
        &["alice", "bob"],
    );
    // Bob is no admin.
    w.with_client(1, |c| c.suspend("carol", None, None))
        .unwrap();
    w.with_client(1, |c| c.unsuspend("carol")).unwrap();
    w.with_client(1, |c| c.disconnect_user("alice", None))
        .unwrap();
    w.with_client(1, |c| c.set_registration(RegistrationMode::Closed))
        .unwrap();
    w.with_client(1, |c| c.request_invite()).unwrap();
    w.run_for(secs(2));
    assert_eq!(errors(&w, 1), [ErrorCode::NotPermitted; 5]);
    assert!(w.client(0).is_logged_in());
    assert_eq!(w.server.registration(), RegistrationMode::Open);
    // An admin may not suspend an admin (nor itself); nor an unknown name.
    w.with_client(0, |c| c.suspend("dave", None, None)).unwrap();
    w.with_client(0, |c| c.suspend("alice", None, None))
        .unwrap();
    w.with_client(0, |c| c.suspend("nobody", None, None))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(
        errors(&w, 0),
        [
            ErrorCode::NotPermitted,
            ErrorCode::NotPermitted,
            ErrorCode::UnknownUser
        ]
    );
    assert!(w.config().accounts.iter().all(|a| a.suspended.is_none()));
    assert_eq!(w.server.audit_log().count(), 0);
}

#[test]
fn a_suspension_outlives_a_restart_until_it_is_lifted() {
    let mut w = world_with_accounts(0x6103, &["alice"], &["alice", "bob"], &["alice", "bob"]);
    w.with_client(0, |c| c.suspend("bob", None, None)).unwrap();
    w.run_for(secs(2));
    assert!(matches!(
        w.client(1).closed(),
        Some(CloseReason::Ended {
            code: ErrorCode::Suspended,
            ..
        })
    ));

    w.restart_server();
    w.vanish_peer(0);
    w.vanish_peer(1);
    let alice = w.add_client("alice");
    w.login_all(secs(20));
    let bob = try_login(&mut w, "bob", None, 3);
    assert_eq!(login_failures(&w, bob)[0].0, LoginFailure::Suspended);
    assert!(
        login_failures(&w, bob)[0]
            .1
            .contains("until a server admin lifts it")
    );

    w.with_client(alice, |c| c.unsuspend("bob")).unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, alice), [pair("unsuspend", "bob")]);
    assert!(w.config().accounts[1].suspended.is_none());
    w.vanish_peer(bob);
    let back = w.add_client("bob");
    w.login_all(secs(10));
    assert!(w.client(back).is_logged_in());
    let actions: Vec<String> = w.server.audit_log().map(|e| e.action.clone()).collect();
    assert_eq!(actions, ["suspend", "unsuspend"]);
}

#[test]
fn an_admin_ends_a_session_and_the_user_may_come_back() {
    let mut w = world_with_accounts(
        0x6104,
        &["alice"],
        &["alice", "bob", "carol", "dave"],
        &["alice", "bob", "carol"],
    );
    w.with_client(0, |c| c.disconnect_user("bob", Some("calm down")))
        .unwrap();
    w.with_client(0, |c| c.disconnect_user("dave", None))
        .unwrap();
    w.with_client(0, |c| c.disconnect_user("nobody", None))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, 0), [pair("disconnect", "bob")]);
    assert_eq!(
        errors(&w, 0),
        [ErrorCode::NotOnline, ErrorCode::UnknownUser]
    );
    match w.client(1).closed() {
        Some(CloseReason::Ended { code, message }) => {
            assert_eq!(*code, ErrorCode::Disconnected);
            assert!(message.ends_with(": calm down"), "{message}");
        }
        other => panic!("bob's session: {other:?}"),
    }
    assert!(lefts(&w, 2).contains(&pair("bob", "disconnected")));
    w.vanish_peer(1);
    let back = w.add_client("bob");
    w.login_all(secs(10));
    assert!(w.client(back).is_logged_in());
}

#[test]
fn closed_registration_refuses_new_accounts_only_and_outlives_a_restart() {
    let mut w = world_with_accounts(0x6105, &["alice"], &["alice", "bob"], &["alice"]);
    w.with_client(0, |c| c.set_registration(RegistrationMode::Closed))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, 0), [pair("registration", "closed")]);
    let dave = try_login(&mut w, "dave", None, 3);
    assert!(
        seen(&w, dave, |e| match e {
            ClientEvent::PasswordRequired { registration, .. } => Some(*registration),
            _ => None,
        })
        .contains(&Some(RegistrationMode::Closed))
    );
    assert_eq!(
        login_failures(&w, dave)
            .iter()
            .map(|f| f.0)
            .collect::<Vec<_>>(),
        [LoginFailure::RegistrationClosed]
    );
    // Existing accounts log in as before.
    let bob = w.add_client("bob");
    w.run_for(secs(3));
    assert!(w.client(bob).is_logged_in());

    w.restart_server();
    assert_eq!(w.server.registration(), RegistrationMode::Closed);
    let erin = try_login(&mut w, "erin", None, 20);
    assert_eq!(
        login_failures(&w, erin)[0].0,
        LoginFailure::RegistrationClosed
    );
}

#[test]
fn an_invite_registers_one_account_and_outlives_a_restart() {
    let mut w = world_with_accounts(0x6106, &["alice"], &["alice"], &["alice"]);
    w.with_client(0, |c| c.set_registration(RegistrationMode::Invite))
        .unwrap();
    w.with_client(0, |c| c.request_invite()).unwrap();
    w.with_client(0, |c| c.request_invite()).unwrap();
    w.run_for(secs(2));
    let codes: Vec<(String, u64)> = seen(&w, 0, |e| match e {
        ClientEvent::InviteCode { code, expires } => Some((code.clone(), *expires)),
        _ => None,
    });
    assert_eq!(codes.len(), 2);
    for (code, expires) in &codes {
        assert_eq!(code.len(), 16);
        assert!(
            code.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(*expires >= 7 * 24 * 3600 * 1000);
    }
    assert_ne!(codes[0].0, codes[1].0);
    assert_eq!(w.server.unused_invites(), 2);

    // No code, a wrong one: refused, each saying so.
    let dave = try_login(&mut w, "dave", None, 3);
    assert_eq!(login_failures(&w, dave)[0].0, LoginFailure::InviteRequired);
    assert!(
        seen(&w, dave, |e| match e {
            ClientEvent::PasswordRequired { registration, .. } => Some(*registration),
            _ => None,
        })
        .contains(&Some(RegistrationMode::Invite))
    );
    let erin = try_login(&mut w, "erin", Some("0123456789abcdef"), 3);
    assert_eq!(login_failures(&w, erin)[0].0, LoginFailure::InvalidInvite);

    // The first code registers frank, once.
    let frank = try_login(&mut w, "frank", Some(&codes[0].0), 3);
    assert!(w.client(frank).is_logged_in());
    assert_eq!(w.server.unused_invites(), 1);
    let gina = try_login(&mut w, "gina", Some(&codes[0].0), 3);
    assert_eq!(login_failures(&w, gina)[0].0, LoginFailure::InvalidInvite);

    // The second survives a restart; the first stays used.
    w.restart_server();
    assert_eq!(w.server.registration(), RegistrationMode::Invite);
    assert_eq!(w.server.unused_invites(), 1);
    let hank = try_login(&mut w, "hank", Some(&codes[0].0), 20);
    assert_eq!(login_failures(&w, hank)[0].0, LoginFailure::InvalidInvite);
    let ivy = try_login(&mut w, "ivy", Some(&codes[1].0), 5);
    assert!(w.client(ivy).is_logged_in());
    assert_eq!(w.server.unused_invites(), 0);
    let actions: Vec<(String, String)> = w
        .server
        .audit_log()
        .map(|e| (e.action.clone(), e.target.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            pair("registration", "invite"),
            pair("invite", &codes[0].0),
            pair("invite", &codes[1].0)
        ]
    );
}
