//! Room roles over the seeded emulator (PROTOCOL.md §5.13): what the
//! owner, operators, members and server admins may do in a room, and what
//! they are refused; room bans and their expiry; muted members, moderated
//! rooms and locked topics; and that all of it outlives a restart.

use udpchat_core::client::ClientEvent;
use udpchat_core::server::ServerConfig;
use udpchat_core::session::{ErrorCode, RoomRole};
use udpchat_sim::{World, WorldConfig, load_server_config, secs};

const ALICE: usize = 0; // the owner
const BOB: usize = 1; // an operator
const CAROL: usize = 2; // a member
const DAVE: usize = 3; // a member
const ROOT: usize = 4; // a server admin, not in the room

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

fn mod_oks(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::ModOk { action, target } => Some((action.clone(), target.clone())),
        _ => None,
    })
}

fn ok(action: &str, target: &str) -> (String, String) {
    (action.to_string(), target.to_string())
}

fn clear(w: &mut World) {
    for p in &mut w.peers {
        p.events.clear();
    }
}

/// The room messages peer `i` received live: (from, text).
fn heard(w: &World, i: usize) -> Vec<(String, String)> {
    seen(w, i, |e| match e {
        ClientEvent::RoomMessage {
            from,
            text,
            history: false,
            ..
        } => Some((from.clone(), text.clone())),
        _ => None,
    })
}

/// alice, bob, carol and dave in `#r`, which alice made and where bob is
/// an operator; root is a server admin.
fn world(seed: u64) -> World {
    let server = ServerConfig {
        admins: ["root".to_string()].into_iter().collect(),
        ..load_server_config()
    };
    let mut w = World::new(WorldConfig::new(seed).with_server(server));
    for n in ["alice", "bob", "carol", "dave", "root"] {
        w.add_client(n);
    }
    w.login_all(secs(10));
    for i in [ALICE, BOB, CAROL, DAVE] {
        w.with_client(i, |c| c.join("#r")).unwrap();
        w.run_for(secs(1));
    }
    w.with_client(ALICE, |c| c.room_op("#r", "bob", true))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, ALICE), [ok("room_op", "#r bob")]);
    for i in [ALICE, BOB, CAROL, DAVE] {
        assert!(
            seen(&w, i, |e| match e {
                ClientEvent::RoomRole { user, role, by, .. } =>
                    Some((user.clone(), *role, by.clone())),
                _ => None,
            })
            .contains(&("bob".to_string(), RoomRole::Op, "alice".to_string())),
            "peer {i} hears of the new operator"
        );
    }
    clear(&mut w);
    w
}

fn kicked(w: &World, i: usize) -> Vec<(String, String, Option<String>, bool)> {
    seen(w, i, |e| match e {
        ClientEvent::Kicked {
            room,
            by,
            reason,
            banned,
            ..
        } => Some((room.clone(), by.clone(), reason.clone(), *banned)),
        _ => None,
    })
}

#[test]
fn an_operator_kicks_a_member_and_members_may_not() {
    let mut w = world(0x7001);
    // A member may not kick.
    w.with_client(CAROL, |c| c.room_kick("#r", "dave", None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL), [ErrorCode::NotPermitted]);
    assert!(kicked(&w, DAVE).is_empty());

    w.with_client(BOB, |c| c.room_kick("#r", "dave", Some("spam")))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, BOB), [ok("room_kick", "#r dave")]);
    assert_eq!(
        kicked(&w, DAVE),
        [(
            "#r".to_string(),
            "bob".to_string(),
            Some("spam".to_string()),
            false
        )]
    );
    let left = seen(&w, CAROL, |e| match e {
        ClientEvent::MemberLeft { user, reason, .. } => Some((user.clone(), reason.clone())),
        _ => None,
    });
    assert_eq!(
        left,
        [("dave".to_string(), Some("kicked by bob: spam".to_string()))]
    );
    // Dave is out: his say is refused, and he may join again (a kick is
    // no ban).
    w.with_client(DAVE, |c| c.say("#r", "still here?")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE), [ErrorCode::NotMember]);
    w.with_client(DAVE, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    assert_eq!(
        seen(&w, DAVE, |e| matches!(e, ClientEvent::RoomJoined { .. })
            .then_some(()))
        .len(),
        1
    );
    // The audit log has it, with the room and the member.
    let entry = w
        .server
        .audit_log()
        .find(|e| e.action == "room_kick")
        .unwrap();
    assert_eq!(
        (
            entry.by.as_str(),
            entry.target.as_str(),
            entry.reason.as_str()
        ),
        ("bob", "#r dave", "spam")
    );
}

#[test]
fn operators_do_not_touch_the_owner_and_only_the_owner_names_operators() {
    let mut w = world(0x7002);
    w.with_client(BOB, |c| c.room_kick("#r", "alice", None))
        .unwrap();
    w.with_client(BOB, |c| c.room_ban("#r", "alice", None, None))
        .unwrap();
    w.with_client(BOB, |c| c.room_mute("#r", "alice", true))
        .unwrap();
    // Only the owner ops and deops.
    w.with_client(BOB, |c| c.room_op("#r", "carol", true))
        .unwrap();
    w.with_client(BOB, |c| c.room_op("#r", "alice", false))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(errors(&w, BOB), [ErrorCode::NotPermitted; 5]);
    assert!(kicked(&w, ALICE).is_empty());
    assert!(mod_oks(&w, BOB).is_empty());

    // The owner deops bob: he may no longer kick.
    w.with_client(ALICE, |c| c.room_op("#r", "bob", false))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, ALICE), [ok("room_deop", "#r bob")]);
    w.with_client(BOB, |c| c.room_kick("#r", "carol", None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, BOB).len(), 6);
    assert!(kicked(&w, CAROL).is_empty());
    // Nobody acts on themselves; a name without an account is refused.
    w.with_client(ALICE, |c| c.room_kick("#r", "alice", None))
        .unwrap();
    w.with_client(ALICE, |c| c.room_kick("#r", "nobody", None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(
        errors(&w, ALICE),
        [ErrorCode::NotPermitted, ErrorCode::UnknownUser]
    );
}

#[test]
fn a_server_admin_moderates_any_room_and_may_act_on_the_owner() {
    let mut w = world(0x7003);
    // Root is not a member of #r, yet may kick its owner.
    w.with_client(ROOT, |c| c.room_kick("#r", "alice", Some("abuse")))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, ROOT), [ok("room_kick", "#r alice")]);
    assert_eq!(kicked(&w, ALICE).len(), 1);
    // The owner left: the longest-standing operator owns the room now.
    let owners = seen(&w, CAROL, |e| match e {
        ClientEvent::RoomRole {
            user,
            role: RoomRole::Owner,
            ..
        } => Some(user.clone()),
        _ => None,
    });
    assert_eq!(owners, ["bob"]);
    w.with_client(CAROL, |c| c.request_names("#r")).unwrap();
    w.run_for(secs(1));
    // No operators are left besides the owner: no roles event.
    assert!(
        seen(&w, CAROL, |e| matches!(e, ClientEvent::RoomRoles { .. })
            .then_some(()))
        .is_empty()
    );
    // Bob, the owner now, names an operator.
    w.with_client(BOB, |c| c.room_op("#r", "carol", true))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, BOB), [ok("room_op", "#r carol")]);
}

#[test]
fn an_owner_who_parts_hands_the_room_to_the_first_operator_or_to_nobody() {
    let mut w = world(0x7004);
    w.with_client(ALICE, |c| c.room_op("#r", "carol", true))
        .unwrap();
    w.run_for(secs(1));
    w.with_client(ALICE, |c| c.part("#r", None)).unwrap();
    w.run_for(secs(1));
    let owners = |w: &World| {
        seen(w, DAVE, |e| match e {
            ClientEvent::RoomRole {
                user,
                role: RoomRole::Owner,
                ..
            } => Some(user.clone()),
            _ => None,
        })
    };
    // Bob was named first.
    assert_eq!(owners(&w), ["bob"]);
    // Bob parts: carol, the only operator left, owns it.
    w.with_client(BOB, |c| c.part("#r", None)).unwrap();
    w.run_for(secs(1));
    assert_eq!(owners(&w), ["bob", "carol"]);
    // Carol parts with no operator left: nobody owns it; only an admin
    // may name an operator then, who becomes the owner.
    w.with_client(CAROL, |c| c.part("#r", None)).unwrap();
    w.run_for(secs(1));
    w.with_client(DAVE, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    let owner = seen(&w, DAVE, |e| match e {
        ClientEvent::RoomJoined { owner, .. } => Some(owner.clone()),
        _ => None,
    });
    assert_eq!(owner.last().map(String::as_str), Some(""));
    w.with_client(DAVE, |c| c.room_mode("#r", Some(true), None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE), [ErrorCode::NotPermitted]);
    w.with_client(ROOT, |c| c.room_op("#r", "dave", true))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(owners(&w), ["bob", "carol", "dave"]);
    w.with_client(DAVE, |c| c.room_mode("#r", Some(true), None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, DAVE), [ok("room_mode", "#r")]);
}

#[test]
fn a_room_ban_keeps_an_account_out_until_it_expires_or_is_lifted() {
    let mut w = world(0x7005);
    // A member may not ban.
    w.with_client(CAROL, |c| c.room_ban("#r", "dave", None, None))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL), [ErrorCode::NotPermitted]);

    // A ban of a member removes them, for 60 s.
    w.with_client(BOB, |c| c.room_ban("#r", "dave", Some(60), Some("flood")))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, BOB), [ok("room_ban", "#r dave")]);
    assert_eq!(
        kicked(&w, DAVE),
        [(
            "#r".to_string(),
            "bob".to_string(),
            Some("flood".to_string()),
            true
        )]
    );
    let until = seen(&w, DAVE, |e| match e {
        ClientEvent::Kicked { until, .. } => *until,
        _ => None,
    });
    assert_eq!(until.len(), 1);
    let entry = w
        .server
        .audit_log()
        .find(|e| e.action == "room_ban")
        .unwrap();
    assert_eq!(entry.until, Some(until[0]));
    w.with_client(DAVE, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE), [ErrorCode::BannedFromRoom]);

    // After the minute, the ban is over.
    w.run_for(secs(60));
    w.with_client(DAVE, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE).len(), 1);
    assert_eq!(
        seen(&w, DAVE, |e| matches!(e, ClientEvent::RoomJoined { .. })
            .then_some(()))
        .len(),
        1
    );

    // A ban without expiry, of someone who is not a member, lifted by the
    // owner.
    clear(&mut w);
    w.with_client(ALICE, |c| c.room_ban("#r", "root", None, None))
        .unwrap();
    w.run_for(secs(1));
    w.with_client(ROOT, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, ROOT), [ErrorCode::BannedFromRoom]);
    w.with_client(BOB, |c| c.room_unban("#r", "root")).unwrap();
    w.run_for(secs(1));
    w.with_client(ROOT, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, ROOT).len(), 1);
    assert_eq!(
        mod_oks(&w, ALICE)
            .into_iter()
            .chain(mod_oks(&w, BOB))
            .collect::<Vec<_>>(),
        [ok("room_ban", "#r root"), ok("room_unban", "#r root")]
    );
    // A ban of 0 seconds or longer than a year is refused before sending.
    assert!(
        w.with_client(BOB, |c| c.room_ban("#r", "carol", Some(0), None))
            .is_err()
    );
}

#[test]
fn muted_members_and_moderated_rooms_are_silent_but_operators_speak() {
    let mut w = world(0x7006);
    w.with_client(CAROL, |c| c.room_mute("#r", "dave", true))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL), [ErrorCode::NotPermitted]);
    w.with_client(BOB, |c| c.room_mute("#r", "dave", true))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(mod_oks(&w, BOB), [ok("room_mute", "#r dave")]);
    let muted = seen(&w, CAROL, |e| match e {
        ClientEvent::MemberMuted { user, muted, .. } => Some((user.clone(), *muted)),
        _ => None,
    });
    assert_eq!(muted, [("dave".to_string(), true)]);
    w.with_client(DAVE, |c| c.say("#r", "hello?")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE), [ErrorCode::Muted]);
    assert!(heard(&w, CAROL).is_empty());
    // A mute outlives leaving and joining again.
    w.with_client(DAVE, |c| c.part("#r", None)).unwrap();
    w.run_for(secs(1));
    w.with_client(DAVE, |c| c.join("#r")).unwrap();
    w.run_for(secs(1));
    let roles = seen(&w, DAVE, |e| match e {
        ClientEvent::RoomRoles { ops, muted, .. } => Some((ops.clone(), muted.clone())),
        _ => None,
    });
    assert_eq!(roles, [(vec!["bob".to_string()], vec!["dave".to_string()])]);
    w.with_client(DAVE, |c| c.say("#r", "hello?")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, DAVE), [ErrorCode::Muted; 2]);
    w.with_client(BOB, |c| c.room_mute("#r", "dave", false))
        .unwrap();
    w.run_for(secs(1));
    w.with_client(DAVE, |c| c.say("#r", "thanks")).unwrap();
    w.run_for(secs(1));
    assert_eq!(
        heard(&w, CAROL),
        [("dave".to_string(), "thanks".to_string())]
    );

    // Moderated: only the owner and operators speak.
    clear(&mut w);
    w.with_client(CAROL, |c| c.room_mode("#r", None, Some(true)))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL), [ErrorCode::NotPermitted]);
    w.with_client(BOB, |c| c.room_mode("#r", None, Some(true)))
        .unwrap();
    w.run_for(secs(1));
    let modes = seen(&w, CAROL, |e| match e {
        ClientEvent::RoomMode {
            by,
            topic_locked,
            moderated,
            ..
        } => Some((by.clone(), *topic_locked, *moderated)),
        _ => None,
    });
    assert_eq!(modes, [("bob".to_string(), false, true)]);
    w.with_client(CAROL, |c| c.say("#r", "may I?")).unwrap();
    w.with_client(BOB, |c| c.say("#r", "operator here"))
        .unwrap();
    w.with_client(ALICE, |c| c.say("#r", "owner here")).unwrap();
    w.run_for(secs(1));
    assert_eq!(
        errors(&w, CAROL),
        [ErrorCode::NotPermitted, ErrorCode::Moderated]
    );
    assert_eq!(
        heard(&w, DAVE),
        [
            ("bob".to_string(), "operator here".to_string()),
            ("alice".to_string(), "owner here".to_string())
        ]
    );
}

#[test]
fn a_locked_topic_is_set_by_operators_only() {
    let mut w = world(0x7007);
    w.with_client(BOB, |c| c.room_mode("#r", Some(true), None))
        .unwrap();
    w.run_for(secs(1));
    w.with_client(CAROL, |c| c.set_topic("#r", "carol's topic"))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL), [ErrorCode::NotPermitted]);
    w.with_client(BOB, |c| c.set_topic("#r", "the rules"))
        .unwrap();
    w.run_for(secs(1));
    let topics = seen(&w, CAROL, |e| match e {
        ClientEvent::Topic { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(topics, ["the rules"]);
    // Unlocked, anyone sets it again.
    w.with_client(ALICE, |c| c.room_mode("#r", Some(false), None))
        .unwrap();
    w.run_for(secs(1));
    w.with_client(CAROL, |c| c.set_topic("#r", "carol's topic"))
        .unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, CAROL).len(), 1);
    let topics = seen(&w, DAVE, |e| match e {
        ClientEvent::Topic { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(topics, ["the rules", "carol's topic"]);
}

#[test]
fn roles_bans_mutes_and_modes_outlive_a_restart() {
    let mut w = world(0x7008);
    w.with_client(ALICE, |c| c.room_op("#r", "carol", true))
        .unwrap();
    w.with_client(BOB, |c| c.room_mute("#r", "dave", true))
        .unwrap();
    w.with_client(BOB, |c| c.room_ban("#r", "root", None, Some("no")))
        .unwrap();
    w.with_client(BOB, |c| c.room_mode("#r", Some(true), Some(true)))
        .unwrap();
    w.run_for(secs(2));
    assert_eq!(mod_oks(&w, BOB).len(), 3);

    w.restart_server();
    let dave = w.add_client("dave");
    let root = w.add_client("root");
    w.login_all(secs(20));
    w.with_client(dave, |c| c.join("#r")).unwrap();
    w.with_client(root, |c| c.join("#r")).unwrap();
    w.run_for(secs(2));
    let roles = seen(&w, dave, |e| match e {
        ClientEvent::RoomRoles {
            ops,
            muted,
            topic_locked,
            moderated,
            ..
        } => Some((ops.clone(), muted.clone(), *topic_locked, *moderated)),
        _ => None,
    });
    assert_eq!(
        roles,
        [(
            vec!["bob".to_string(), "carol".to_string()],
            vec!["dave".to_string()],
            true,
            true
        )]
    );
    assert_eq!(errors(&w, root), [ErrorCode::BannedFromRoom]);
    w.with_client(dave, |c| c.say("#r", "x")).unwrap();
    w.run_for(secs(1));
    assert_eq!(errors(&w, dave), [ErrorCode::Muted]);
}
