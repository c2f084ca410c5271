//! Account changes another node (or `chatserver accounts`) published, as
//! one node applies them, driven in memory through the simulation crate's
//! [`Consoles`]: a suspension or a deletion ends the account's session
//! here, a new password holds from the next login.

use udpchat_core::server::{ClusterMessage, ServerConfig, Suspension};
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
