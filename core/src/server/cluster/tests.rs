//! Tests of the cluster messages.

use super::*;
use crate::server::store::RoomRoles;
use alloc::boxed::Box;
use alloc::string::ToString;

#[test]
fn messages_read_back_as_written() {
    let all = [
        ClusterMessage::Login {
            node: "a".to_string(),
            user: "Bob".to_string(),
        },
        ClusterMessage::Logout {
            node: "a".to_string(),
            user: "Bob".to_string(),
            reason: "exit".to_string(),
            message: Some("bye".to_string()),
        },
        ClusterMessage::Direct {
            node: "a".to_string(),
            from: "Bob".to_string(),
            at: "b".to_string(),
            to: "carol".to_string(),
            text: "psst".to_string(),
            time: 7,
        },
        ClusterMessage::NodeDown {
            node: "a".to_string(),
            down: "b".to_string(),
        },
        ClusterMessage::Away {
            node: "a".to_string(),
            user: "Bob".to_string(),
            text: Some("lunch".to_string()),
        },
        ClusterMessage::Away {
            node: "a".to_string(),
            user: "Bob".to_string(),
            text: None,
        },
        ClusterMessage::RoomRoles {
            node: "a".to_string(),
            room: "#r".to_string(),
            owner: "Bob".to_string(),
            roles: RoomRoles {
                ops: alloc::vec!["carol".to_string()],
                bans: alloc::vec![store::RoomBan {
                    user: "dave".to_string(),
                    until: Some(9),
                }],
                muted: alloc::vec!["erin".to_string()],
                topic_locked: true,
                moderated: false,
            },
            removed: Some("dave".to_string()),
            kicked: Some(Box::new(ServerMessage::Kicked {
                room: "#r".to_string(),
                by: "Bob".to_string(),
                reason: Some("spam".to_string()),
                banned: true,
                until: Some(9),
            })),
            events: alloc::vec![ServerMessage::MemberLeft {
                room: "#r".to_string(),
                user: "dave".to_string(),
                reason: Some("banned by Bob: spam".to_string()),
            }],
        },
    ];
    for m in all {
        assert_eq!(ClusterMessage::decode(&m.encode()).unwrap(), m);
    }
    assert_eq!(
        ClusterMessage::Login {
            node: "a".to_string(),
            user: "Bob".to_string()
        }
        .encode(),
        br#"{"kind":"login","node":"a","user":"Bob"}"#
    );
    assert_eq!(
        ClusterMessage::Away {
            node: "a".to_string(),
            user: "Bob".to_string(),
            text: None,
        }
        .encode(),
        br#"{"kind":"away","node":"a","user":"Bob"}"#
    );
    assert!(ClusterMessage::decode(b"{\"kind\":\"nope\"}").is_err());
    // The roles alone (no one removed, nothing to tell); an event that
    // is no server message is refused.
    let bare = br##"{"kind":"room_roles","node":"a","room":"#r","owner":"","roles":{}}"##;
    assert!(matches!(
        ClusterMessage::decode(bare),
        Ok(ClusterMessage::RoomRoles { removed: None, kicked: None, ref events, .. }) if events.is_empty()
    ));
    let bad = br##"{"kind":"room_roles","node":"a","room":"#r","owner":"","roles":{},"events":[{"t":7}]}"##;
    assert!(ClusterMessage::decode(bad).is_err());
}
