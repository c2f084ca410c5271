//! Server admins and the audit log over the seeded emulator: who may send
//! notices and read the log, and that the log outlives a restart
//! (PROTOCOL.md §5.12).

use udpchat_core::client::ClientEvent;
use udpchat_core::server::ServerConfig;
use udpchat_core::session::{ErrorCode, validate_username};
use udpchat_sim::{World, WorldConfig, load_server_config, secs};

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
