//! Two server cores as nodes of one chat, joined by the simulation's
//! in-memory relay of what each publishes (`udpchat_sim::Cluster`): the
//! cores' cluster logic on a virtual clock, through lossy links between
//! each node and its clients. Redis and the native driver are not here
//! (`native/tests/cluster.rs` runs those).

use udpchat_core::client::{ClientEvent, CloseReason};
use udpchat_core::server::UserRecord;
use udpchat_sim::{Cluster, WorldConfig, fake_hash, harsh_link, ms, password_of, secs};

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// Nodes `a` (alice, bob) and `b` (carol, dave), every link as harsh as
/// `harsh_link` (30 % loss, duplication, jitter), everyone logged in.
fn two_nodes(seed: u64) -> Cluster {
    let accounts: Vec<UserRecord> = USERS
        .iter()
        .map(|n| UserRecord {
            name: n.to_string(),
            password_hash: fake_hash(&password_of(n)),
            suspended: None,
        })
        .collect();
    let config = |s: u64| {
        let mut c = WorldConfig::new(s).with_link(harsh_link());
        c.accounts = accounts.clone();
        c
    };
    let mut cluster = Cluster::new(vec![("a", config(seed)), ("b", config(seed + 1))], seed);
    for (node, names) in [(0, ["alice", "bob"]), (1, ["carol", "dave"])] {
        for name in names {
            cluster.nodes[node].add_client(name);
        }
    }
    let deadline = cluster.now() + secs(30);
    let all_in = cluster.run_until_cond(deadline, |c| {
        c.nodes.iter().all(|w| {
            (0..w.peers.len()).all(|i| w.client(i).is_logged_in())
                && w.server.online_users().count() == w.peers.len()
        }) && c.nodes.iter().all(|w| w.server.remote_count() == 2)
    });
    assert!(all_in, "not everyone logged in and known on both nodes");
    cluster
}

/// Where user `name` is: (node, peer index).
fn at(cluster: &Cluster, name: &str) -> (usize, usize) {
    for (n, w) in cluster.nodes.iter().enumerate() {
        if let Some(i) = w.peers.iter().rposition(|p| p.name == name) {
            return (n, i);
        }
    }
    panic!("no user {name}")
}

/// The public messages from `from` that `name` received, in order.
fn public_from(cluster: &Cluster, name: &str, from: &str) -> Vec<String> {
    let (n, i) = at(cluster, name);
    cluster.nodes[n]
        .messages_of(i)
        .into_iter()
        .filter(|(_, m)| !m.direct && m.from == from)
        .map(|(_, m)| m.text)
        .collect()
}

/// Everyone says `count` numbered public messages, 20 ms apart.
fn everyone_talks(cluster: &mut Cluster, count: usize) {
    for k in 0..count {
        for name in USERS {
            let (n, i) = at(cluster, name);
            cluster.nodes[n]
                .send_pm(i, &format!("{name} {k}"))
                .expect("logged in");
        }
        cluster.run_for(ms(20));
    }
}

#[test]
fn public_messages_cross_nodes_once_and_in_order_through_loss() {
    const COUNT: usize = 50;
    let mut cluster = two_nodes(0xC105);
    everyone_talks(&mut cluster, COUNT);
    let expected =
        |from: &str| -> Vec<String> { (0..COUNT).map(|k| format!("{from} {k}")).collect() };
    let deadline = cluster.now() + secs(60);
    let done = cluster.run_until_cond(deadline, |c| {
        USERS.iter().all(|to| {
            USERS
                .iter()
                .filter(|from| from != &to)
                .all(|from| public_from(c, to, from).len() >= COUNT)
        })
    });
    assert!(done, "not every message arrived");
    cluster.run_for(secs(2));
    for to in USERS {
        for from in USERS.iter().filter(|f| **f != to) {
            assert_eq!(
                public_from(&cluster, to, from),
                expected(from),
                "{to} from {from}"
            );
        }
    }
    // The links were harsh, and the relay carried each node's share.
    let lost: u64 = cluster.nodes.iter().map(|w| w.net.total().lost).sum();
    assert!(lost > 0);
    assert!(cluster.relayed >= 2 * COUNT as u64);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut cluster = two_nodes(seed);
        everyone_talks(&mut cluster, 10);
        cluster.run_for(secs(5));
        cluster
            .nodes
            .iter()
            .map(|w| (w.digest, w.datagrams_sent))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(0xD5), run(0xD5));
    assert_ne!(run(0xD5), run(0xD6));
}

#[test]
fn a_login_on_another_node_replaces_the_session() {
    let mut cluster = two_nodes(0x12E9);
    // carol logs in again, on node a.
    let carol_again = cluster.nodes[0].add_client("carol");
    let deadline = cluster.now() + secs(30);
    let replaced = cluster.run_until_cond(deadline, |c| {
        c.nodes[0].client(carol_again).is_logged_in()
            && c.nodes[1].peers[0]
                .events
                .iter()
                .any(|(_, e)| matches!(e, ClientEvent::Closed(CloseReason::Replaced)))
    });
    assert!(replaced, "the session on node b was not replaced");
    cluster.run_for(secs(5));
    // Node b no longer has her; both nodes count her once, on node a.
    assert!(!cluster.nodes[1].server.online_users().any(|u| u == "carol"));
    assert!(cluster.nodes[0].server.online_users().any(|u| u == "carol"));
    assert_eq!(cluster.nodes[1].server.remote_count(), 3);
    assert_eq!(cluster.nodes[0].server.remote_count(), 1);
    // dave, on node b, saw her leave replaced and come back.
    let dave = &cluster.nodes[1].peers[1].events;
    let seen: Vec<String> = dave
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Left { user, reason, .. } if user == "carol" => {
                Some(format!("left {reason}"))
            }
            ClientEvent::Joined(user) if user == "carol" => Some("joined".to_string()),
            _ => None,
        })
        .collect();
    // (Before, perhaps, her first arrival.)
    let after = seen
        .iter()
        .position(|s| s == "left replaced")
        .map(|p| &seen[p..]);
    assert_eq!(
        after,
        Some(&["left replaced".to_string(), "joined".to_string()][..])
    );
    // What she says now reaches both nodes once.
    cluster.nodes[0]
        .send_pm(carol_again, "from node a now")
        .expect("logged in");
    cluster.run_for(secs(10));
    for to in ["alice", "bob", "dave"] {
        assert_eq!(
            public_from(&cluster, to, "carol"),
            ["from node a now"],
            "{to}"
        );
    }
}

#[test]
fn a_gone_nodes_users_leave_the_others() {
    let mut cluster = two_nodes(0x60E);
    cluster.stop(1);
    cluster.run_for(secs(1));
    // Until the lease expires, the node's users are still listed.
    assert_eq!(cluster.nodes[0].server.remote_count(), 2);
    cluster.node_gone(1);
    cluster.run_for(secs(5));
    assert_eq!(cluster.nodes[0].server.remote_count(), 0);
    for name in ["alice", "bob"] {
        let (n, i) = at(&cluster, name);
        let mut left: Vec<(String, String)> = cluster.nodes[n].peers[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Left { user, reason, .. } => Some((user.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ("carol".to_string(), "timeout".to_string()),
                ("dave".to_string(), "timeout".to_string())
            ],
            "{name}"
        );
    }
    // Node a goes on: alice reaches bob, once.
    cluster.nodes[0]
        .send_pm(0, "still here")
        .expect("logged in");
    cluster.run_for(secs(10));
    assert_eq!(public_from(&cluster, "bob", "alice"), ["still here"]);
}
