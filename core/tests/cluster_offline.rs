//! Direct messages stored for offline users, as one node of a cluster
//! keeps them in step with the store after a resynchronisation, driven in
//! memory through the simulation crate's [`Consoles`].

use udpchat_core::server::store::OfflineMessage;
use udpchat_core::server::{ClusterMessage, ServerConfig};
use udpchat_sim::Consoles;

fn message(id: u64, text: &str) -> OfflineMessage {
    OfflineMessage {
        id,
        from: "alice".to_string(),
        to: "dave".to_string(),
        text: text.to_string(),
        time: 1_764_770_000_000,
    }
}

#[test]
fn a_resync_forgets_what_the_store_removed_meanwhile_and_adds_what_is_new() {
    let mut b = Consoles::new(ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    });
    b.server.set_node("b".to_string());
    let now = b.now;
    // Stored on node a, heard here.
    let m = ClusterMessage::offline("a", &message(7, "delivered elsewhere"));
    b.server
        .handle_remote(now, ClusterMessage::decode(&m.encode()).unwrap());
    assert_eq!(b.server.offline_count(), 1);

    // Meanwhile dave logged in on node a, which delivered and removed 7;
    // its `offline_removed` was missed here. The store now has 8 only.
    b.server
        .sync_offline(now, vec![message(8, "still waiting")]);
    assert_eq!(b.server.offline_count(), 1);

    // Dave logs in here: 8 only.
    let dave = b.join("dave", "d", false);
    b.run_until(
        |n| {
            n.users[dave]
                .lines()
                .iter()
                .any(|l| l.contains("still waiting"))
        },
        300,
    );
    assert!(
        !b.users[dave]
            .lines()
            .iter()
            .any(|l| l.contains("delivered elsewhere")),
        "{:?}",
        b.users[dave].lines()
    );

    // A resync that finds nothing stored forgets everything.
    b.server.sync_offline(b.now, Vec::new());
    assert_eq!(b.server.offline_count(), 0);
}
