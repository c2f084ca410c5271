//! Account changes another node (or `chatserver accounts`) published, as
//! one node applies them, driven in memory through the simulation crate's
//! [`Consoles`]: a suspension or a deletion ends the account's session
//! here, a new password holds from the next login.

use udpchat_core::server::{ClusterMessage, ServerConfig, Suspension, UserRecord};
use udpchat_sim::{Consoles, fake_hash};

fn node(name: &str) -> Consoles {
    let mut net = Consoles::new(ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    });
    net.server.set_node(name.to_string());
    net
}

/// What another node published, through its JSON form.
fn remote(net: &mut Consoles, m: ClusterMessage) {
    let m = ClusterMessage::decode(&m.encode()).expect("reads back");
    let now = net.now;
    net.server.handle_remote(now, m);
}

fn saw(net: &Consoles, i: usize, want: impl Fn(&str) -> bool) -> bool {
    net.users[i].lines().iter().any(|l| want(l))
}

#[test]
fn account_changes_published_elsewhere_apply_to_this_nodes_sessions() {
    let mut b = node("b");
    let bob = b.join("bob", "b", false);
    let carol = b.join("carol", "c", false);

    // Suspended elsewhere: bob's session here ends.
    remote(
        &mut b,
        ClusterMessage::AccountChanged {
            node: "a".to_string(),
            name: "bob".to_string(),
            password_hash: fake_hash("b"),
            suspended: Some(Suspension {
                until: None,
                reason: "spam".to_string(),
                by: "root".to_string(),
            }),
        },
    );
    b.run_until(|n| saw(n, carol, |l| l == "* bob left (suspended)"), 300);
    assert!(saw(&b, bob, |l| l.contains("suspended") && l.contains("spam")));

    // Lifted, with a new password: the old one is refused, the new one
    // logs in.
    remote(
        &mut b,
        ClusterMessage::AccountChanged {
            node: "a".to_string(),
            name: "bob".to_string(),
            password_hash: fake_hash("new"),
            suspended: None,
        },
    );
    let new = b.join("bob", "new", false);
    b.run_until(|n| saw(n, new, |l| l.starts_with("logged in as bob")), 300);

    // Deleted elsewhere: carol's session here ends.
    remote(
        &mut b,
        ClusterMessage::AccountDeleted {
            node: "a".to_string(),
            name: "carol".to_string(),
        },
    );
    b.run_until(
        |n| saw(n, carol, |l| l.contains("the account carol was deleted")),
        300,
    );
    assert!(!b.server.has_user("carol"));
}

#[test]
fn accounts_changed_while_a_node_was_cut_off_apply_when_it_resynchronises() {
    let mut b = node("b");
    let bob = b.join("bob", "b", false);
    let carol = b.join("carol", "c", false);
    let suspended = Suspension {
        until: None,
        reason: "spam".to_string(),
        by: "root".to_string(),
    };
    let store = |suspended: Option<Suspension>| {
        vec![
            UserRecord {
                name: "bob".to_string(),
                password_hash: fake_hash("b"),
                suspended,
            },
            UserRecord {
                name: "carol".to_string(),
                password_hash: fake_hash("c"),
                suspended: None,
            },
            UserRecord {
                name: "dave".to_string(),
                password_hash: fake_hash("d"),
                suspended: None,
            },
        ]
    };
    let now = b.now;
    b.server.sync_accounts(now, store(Some(suspended.clone())));
    b.run_until(|n| saw(n, carol, |l| l == "* bob left (suspended)"), 300);
    assert!(saw(&b, bob, |l| l.contains("spam")));
    assert!(b.server.has_user("dave"), "a new account is added");
    // The same again changes nothing: announced once.
    let now = b.now;
    b.server.sync_accounts(now, store(Some(suspended)));
    b.run_until(|_| true, 10);
    let left = b.users[carol]
        .lines()
        .iter()
        .filter(|l| *l == "* bob left (suspended)")
        .count();
    assert_eq!(left, 1);
}
