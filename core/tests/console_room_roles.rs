//! Room roles and the ignore list in the console, driven in memory
//! through the simulation crate's [`Consoles`]: the commands, what each
//! user is shown, and the JSON form of the new events.

use udpchat_core::server::ServerConfig;
use udpchat_core::ui::{ChatEvent, Output, render_json};
use udpchat_sim::Consoles;

fn test_config() -> ServerConfig {
    ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    }
}

fn wait_line(net: &mut Consoles, i: usize, want: impl Fn(&str) -> bool) {
    net.run_until(|n| n.users[i].lines().iter().any(|l| want(l)), 3000);
}

fn has_line(net: &Consoles, i: usize, want: impl Fn(&str) -> bool) -> bool {
    net.users[i].lines().iter().any(|l| want(l))
}

#[test]
fn the_owner_ops_kicks_bans_and_moderates_from_the_console() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    let carol = net.join("carol", "c", false);
    net.line(alice, "/join #rust");
    wait_line(&mut net, alice, |l| {
        l == "* you joined #rust; members: alice"
    });
    net.line(bob, "/join #rust");
    wait_line(&mut net, alice, |l| l == "* bob joined #rust");
    net.line(carol, "/join #rust");
    wait_line(&mut net, alice, |l| l == "* carol joined #rust");

    // Without #ROOM, the active room.
    net.line(alice, "/op bob");
    wait_line(&mut net, carol, |l| {
        l == "-!- bob is now an operator of #rust (by alice)"
    });
    wait_line(&mut net, alice, |l| l == "done: room_op #rust bob");
    // Carol, a member, may not kick.
    net.line(carol, "/kick bob");
    wait_line(&mut net, carol, |l| {
        l.contains("only its owner and operators")
    });

    net.line(bob, "/moderated on");
    wait_line(&mut net, carol, |l| {
        l == "-!- bob set #rust: topic lock off, moderated on"
    });
    net.line(carol, "may I?");
    wait_line(&mut net, carol, |l| l.contains("#rust is moderated"));
    net.line(bob, "/moderated #rust off");
    wait_line(&mut net, carol, |l| {
        l == "-!- bob set #rust: topic lock off, moderated off"
    });

    net.line(bob, "/kick carol too loud");
    wait_line(&mut net, carol, |l| {
        l == "-!- bob removed you from #rust: too loud"
    });
    wait_line(&mut net, alice, |l| {
        l.contains("carol") && l.contains("kicked by bob: too loud")
    });
    // Carol's plain lines no longer go to the room.
    assert_eq!(net.users[carol].console.active_room(), None);

    net.line(carol, "/join #rust");
    net.run_until(
        |n| {
            n.users[carol]
                .lines()
                .iter()
                .filter(|l| l.starts_with("* you joined #rust"))
                .count()
                == 2
        },
        3000,
    );
    net.line(alice, "/ban #rust carol 2h spam");
    wait_line(&mut net, carol, |l| {
        l.starts_with("-!- alice banned you for a while from #rust (until ")
            && l.ends_with("): spam")
    });
    wait_line(&mut net, alice, |l| l == "done: room_ban #rust carol");
    net.line(carol, "/join #rust");
    wait_line(&mut net, carol, |l| {
        l.contains("you are banned from #rust for 7200 more seconds")
    });
    // The JSON form of `kicked`.
    let kicked = net.users[carol]
        .events()
        .into_iter()
        .find(|e| matches!(e, ChatEvent::Kicked { banned: true, .. }))
        .unwrap()
        .clone();
    let json = render_json(&kicked, "T");
    assert!(
        json.starts_with(
            r##"{"time":"T","type":"kicked","room":"#rust","by":"alice","reason":"spam","banned":true,"until":""##
        ),
        "{json}"
    );
    // A duration beyond a year is refused before anything is sent.
    net.line(alice, "/ban carol 400d");
    wait_line(&mut net, alice, |l| {
        l.contains("a room ban lasts 1 to 31536000 seconds")
    });
}

#[test]
fn an_ignored_user_is_hidden_in_public_rooms_and_direct_messages() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    let carol = net.join("carol", "c", false);
    net.line(alice, "/join #rust");
    wait_line(&mut net, alice, |l| {
        l == "* you joined #rust; members: alice"
    });
    net.line(bob, "/join #rust");
    wait_line(&mut net, alice, |l| l == "* bob joined #rust");
    net.line(carol, "/join #rust");
    wait_line(&mut net, alice, |l| l == "* carol joined #rust");

    net.line(alice, "/ignore Bob");
    wait_line(&mut net, alice, |l| l.starts_with("ignoring Bob"));
    assert!(
        net.users[alice]
            .seen
            .contains(&Output::Ignored(vec!["Bob".to_string()]))
    );
    net.line(bob, "in the room");
    net.line(bob, "/go");
    net.line(bob, "to everyone");
    net.line(bob, "/msg alice just to you");
    net.line(carol, "carol in the room");
    wait_line(&mut net, alice, |l| {
        l == "[#rust] <carol> carol in the room"
    });
    wait_line(&mut net, carol, |l| l == "[bob] to everyone");
    for _ in 0..200 {
        net.step();
    }
    assert!(!has_line(&net, alice, |l| l.contains("in the room")
        && l.contains("bob")));
    assert!(!has_line(&net, alice, |l| l.contains("to everyone")));
    assert!(!has_line(&net, alice, |l| l.contains("just to you")));
    // Carol ignores nobody: she saw bob.
    assert!(has_line(&net, carol, |l| l == "[#rust] <bob> in the room"));

    net.line(alice, "/ignore");
    wait_line(&mut net, alice, |l| l == "you ignore: Bob");
    net.line(alice, "/ignore alice");
    wait_line(&mut net, alice, |l| {
        l.contains("you cannot ignore yourself")
    });
    net.line(alice, "/unignore bob");
    wait_line(&mut net, alice, |l| l == "no longer ignoring bob");
    let lists: Vec<&Output> = net.users[alice]
        .seen
        .iter()
        .filter(|o| matches!(o, Output::Ignored(_)))
        .collect();
    assert_eq!(lists.last(), Some(&&Output::Ignored(Vec::new())));
    net.line(bob, "/msg alice now you see me");
    wait_line(&mut net, alice, |l| l.contains("now you see me"));
    net.line(alice, "/unignore bob");
    wait_line(&mut net, alice, |l| {
        l == "error: you do not ignore bob" || l.contains("you do not ignore bob")
    });
    // A list loaded at start: invalid names are left out.
    net.users[alice]
        .console
        .set_ignored(["carol", "no such name!"]);
    assert_eq!(net.users[alice].console.ignored(), ["carol"]);
}
