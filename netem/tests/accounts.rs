//! Accounts changed outside the server while it runs
//! (`Server::put_account`, `Server::remove_account`): a deleted account's
//! session ends and the others hear why; an added account logs in as an
//! existing one; a replaced password applies to the next login only.

use udpchat_core::client::ClientEvent;
use udpchat_core::server::UserRecord;
use udpchat_core::session::ErrorCode;
use udpchat_sim::{World, WorldConfig, fake_hash, password_of, secs};

fn record(name: &str, password: &str) -> UserRecord {
    UserRecord {
        name: name.to_string(),
        password_hash: fake_hash(password),
        suspended: None,
    }
}

#[test]
fn a_deleted_accounts_session_ends_and_the_others_hear_why() {
    let mut w = World::with_clients(WorldConfig::new(0xacc0), 3);
    w.login_all(secs(10));
    let (alice, bob, carol) = (0, 1, 2);
    let now = w.now;
    w.server.remove_account(now, "BOB");
    assert!(!w.server.has_user("bob"));
    let deadline = w.now + secs(10);
    assert!(
        w.run_until_cond(deadline, |w| w.client(bob).closed().is_some()),
        "bob's session did not end"
    );
    // Presence notices go out in rounds.
    w.run_for(secs(3));
    assert!(
        w.peers[bob].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::Error {
                code: ErrorCode::AccountDeleted,
                ..
            }
        )),
        "{:?}",
        w.peers[bob].events
    );
    for other in [alice, carol] {
        assert!(
            w.peers[other].events.iter().any(|(_, e)| matches!(
                e,
                ClientEvent::Left { user, reason, .. } if user == "bob" && reason == "deleted"
            )),
            "{:?}",
            w.peers[other].events
        );
        assert!(w.client(other).is_logged_in());
    }
    assert_eq!(
        w.server.online_users().collect::<Vec<_>>(),
        ["alice", "carol"]
    );
    // Deleting it again, or an account that never was, does nothing.
    w.server.remove_account(now, "bob");
    w.server.remove_account(now, "nobody");
}

#[test]
fn an_added_account_logs_in_and_a_new_password_applies_to_the_next_login() {
    let mut w = World::with_clients(WorldConfig::new(0xacc1), 1);
    w.login_all(secs(10));
    let now = w.now;
    w.server
        .put_account(now, record("dave", &password_of("dave")));
    assert!(w.server.has_user("DAVE"));
    let dave = w.add_client("dave");
    w.login_all(secs(10));
    assert!(
        w.peers[dave].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::LoggedIn {
                new_user: false,
                ..
            }
        )),
        "dave is an existing account: {:?}",
        w.peers[dave].events
    );
    // alice's password changes: her session stays, her next login needs
    // the new one (the World logs in with the old one, which now fails).
    w.server
        .put_account(w.now, record("alice", "another password"));
    w.run_for(secs(1));
    assert!(w.client(0).is_logged_in());
    let again = w.add_client("alice");
    let deadline = w.now + secs(10);
    w.run_until_cond(deadline, |w| {
        w.peers[again]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::LoginFailed { .. }))
    });
    assert!(!w.client(again).is_logged_in());
}

#[test]
fn a_login_being_checked_for_a_deleted_account_is_told_and_never_completes() {
    let mut config = WorldConfig::new(0xacc2);
    config.password_delay = udpchat_sim::ms(500);
    config.accounts = vec![record("alice", &password_of("alice"))];
    let mut w = World::with_clients(config, 1);
    // Until the password check is in flight.
    let deadline = w.now + secs(10);
    assert!(w.run_until_cond(deadline, |w| {
        w.peers[0].events.iter().any(|(_, e)| {
            matches!(
                e,
                ClientEvent::PasswordRequired {
                    new_user: false,
                    ..
                }
            )
        })
    }));
    w.run_for(udpchat_sim::ms(100));
    assert!(!w.client(0).is_logged_in());
    let now = w.now;
    w.server.remove_account(now, "alice");
    // The check's answer comes and goes: no login.
    w.run_for(secs(2));
    assert!(!w.client(0).is_logged_in());
    assert!(
        w.peers[0].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::Error {
                code: ErrorCode::AccountDeleted,
                ..
            }
        )),
        "{:?}",
        w.peers[0].events
    );
    assert_eq!(w.server.online_users().count(), 0);
}

#[test]
fn a_suspension_made_by_the_accounts_tool_ends_the_session_and_is_audited() {
    let mut w = World::with_clients(WorldConfig::new(0xacc5), 2);
    w.login_all(secs(10));
    let (alice, bob) = (0, 1);
    let now = w.now;
    let mut suspended = record("bob", &password_of("bob"));
    suspended.suspended = Some(udpchat_core::server::Suspension {
        until: None,
        reason: "spam".to_string(),
        by: "accounts".to_string(),
    });
    w.server.put_account(now, suspended);
    let deadline = w.now + secs(10);
    assert!(
        w.run_until_cond(deadline, |w| w.client(bob).closed().is_some()),
        "bob's session did not end"
    );
    w.run_for(secs(3));
    assert!(
        w.peers[bob].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::Closed(udpchat_core::client::CloseReason::Ended {
                code: ErrorCode::Suspended,
                ..
            })
        )),
        "{:?}",
        w.peers[bob].events
    );
    assert!(w.client(alice).is_logged_in());
    // Lifted by the tool, then the account deleted: each is audited.
    let now = w.now;
    w.server
        .put_account(now, record("bob", &password_of("bob")));
    w.server.remove_account(now, "bob");
    let log: Vec<(String, String, String)> = w
        .server
        .audit_log()
        .map(|e| (e.by.clone(), e.action.clone(), e.target.clone()))
        .collect();
    let s = |v: &str| v.to_string();
    assert_eq!(
        log,
        [
            (s("accounts"), s("suspend"), s("bob")),
            (s("accounts"), s("unsuspend"), s("bob")),
            (s("accounts"), s("delete"), s("bob")),
        ]
    );
    // Putting the same record again changes nothing and logs nothing.
    let now = w.now;
    w.server.put_account(now, record("carol", "pw"));
    w.server.put_account(now, record("carol", "pw"));
    assert_eq!(w.server.audit_log().count(), 3);
}
