//! The console driven in memory against a server, on a virtual clock,
//! through the simulation crate's [`Consoles`]: completion, long messages,
//! away and whois, mentions, pacing, the menu flows, reconnecting.

use std::net::SocketAddr;

use udpchat_core::server::ServerConfig;
use udpchat_core::ui::{
    ChatEvent, Console, ConsoleConfig, Delivery, Output, PromptKind, render_styled,
};
use udpchat_sim::{Consoles, User};

/// The driver of these tests.
type Net = Consoles;

/// The server of these tests: the defaults, but any password length
/// (the users register with one-letter passwords).
fn test_config() -> ServerConfig {
    ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    }
}

fn public(from: &str, text: &str, action: bool) -> ChatEvent {
    ChatEvent::Public {
        from: from.to_string(),
        text: text.to_string(),
        action,
        mention: false,
    }
}

#[test]
fn completes_commands_and_the_users_known_online() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let albert = net.join("Albert", "b", false);
    net.wait_for(
        alice,
        ChatEvent::Join {
            user: "Albert".to_string(),
        },
    );
    let c = |net: &Net, line: &str| net.users[alice].console.complete(line, line.len());
    assert_eq!(
        c(&net, "hi al"),
        (3, vec!["Albert".to_string(), "alice".to_string()])
    );
    assert_eq!(
        c(&net, "/con"),
        (0, vec!["/confirm".to_string(), "/connect".to_string()])
    );
    // Albert's own list came with login_ok.
    assert_eq!(
        net.users[albert].console.complete("/msg a", 6),
        (5, vec!["Albert".to_string(), "alice".to_string()])
    );
    net.line(albert, "/quit");
    net.wait_for(
        alice,
        ChatEvent::Leave {
            user: "Albert".to_string(),
            reason: "exit".to_string(),
            message: None,
        },
    );
    assert_eq!(c(&net, "hi al"), (3, vec!["alice".to_string()]));
}

#[test]
fn a_long_message_is_cut_and_more_shows_it_whole() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "/more");
    net.step();
    assert!(
        net.users[alice]
            .lines()
            .last()
            .unwrap()
            .starts_with("no message was cut")
    );
    let long = "z".repeat(60_000);
    net.line(bob, &long);
    net.wait_for(alice, public("bob", &long, false));
    let shown = render_styled(net.users[alice].events().pop().unwrap(), None, false);
    assert!(
        shown.ends_with("(59,000 more characters: /more to read all)"),
        "{}",
        &shown[shown.len() - 80..]
    );
    assert!(shown.len() < 1100);
    net.line(alice, "short");
    net.line(alice, "/more");
    let whole = format!("<bob> {long}");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .any(|e| render_styled(e, None, false) == whole)
        },
        100,
    );
}

#[test]
fn away_whois_and_the_away_reply_to_a_dm() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(bob, "/away at lunch");
    net.wait_for(
        bob,
        ChatEvent::Away {
            text: Some("at lunch".to_string()),
        },
    );
    // A message sent meanwhile is confirmed as usual: answers are
    // matched in order.
    net.line(alice, "/msg bob are you there?");
    net.line(alice, "/whois BOB");
    net.line(alice, "/whois carol");
    net.line(alice, "/who");
    net.wait_for(
        alice,
        ChatEvent::Online {
            users: vec!["alice".to_string(), "bob".to_string()],
            count: None,
            away: vec!["bob".to_string()],
        },
    );
    let lines = net.users[alice].lines();
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "ok: direct message delivered to bob",
            "bob is away: at lunch",
            "bob is online (for 0 s); away: at lunch",
            "! there is no user named carol",
            "online: alice, bob (away)",
        ]
    );
    assert!(
        !net.users[alice]
            .events()
            .iter()
            .any(|e| matches!(e, ChatEvent::NotSent { .. })),
        "the refused whois is not taken for the message"
    );
    net.line(bob, "/away");
    net.wait_for(bob, ChatEvent::Away { text: None });
    net.line(alice, "/msg bob back?");
    net.line(alice, "/whois bob");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .filter(|e| matches!(e, ChatEvent::Whois { .. }))
                .count()
                == 2
        },
        500,
    );
    let last = net.users[alice].lines().pop().unwrap();
    assert!(last.starts_with("bob is online (for "), "{last}");
    assert!(!last.contains("away"), "{last}");
    assert_eq!(
        net.users[alice]
            .events()
            .iter()
            .filter(|e| matches!(e, ChatEvent::AwayReply { .. }))
            .count(),
        1
    );
    // Checked before sending.
    net.line(bob, &format!("/away {}", "x".repeat(201)));
    net.step();
    assert_eq!(
        net.users[bob].lines().pop().unwrap(),
        "! the away text is 201 bytes; at most 200 are allowed"
    );
}

#[test]
fn a_message_that_names_you_is_a_mention() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(bob, "hi Alice!");
    net.line(bob, "malice");
    net.line(bob, "/me pokes alice");
    net.wait_for(alice, public("bob", "malice", false));
    net.run_until(|n| texts_from(n, alice, "bob").len() == 3, 500);
    let mentioned: Vec<(&str, bool)> = net.users[alice]
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Public { text, mention, .. } => Some((text.as_str(), *mention)),
            _ => None,
        })
        .collect();
    assert_eq!(
        mentioned,
        [
            ("hi Alice!", true),
            ("malice", false),
            ("pokes alice", true)
        ]
    );
}

fn delivered(recipients: u32, text: &str) -> ChatEvent {
    ChatEvent::Confirmation {
        kind: Delivery::Public,
        to: None,
        recipients,
        text: Some(text.to_string()),
        action: false,
    }
}

#[test]
fn a_plain_line_is_a_public_message() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "hello everyone");
    net.wait_for(bob, public("alice", "hello everyone", false));
    net.wait_for(alice, delivered(1, "hello everyone"));
    // No PM prompt or flow in between: the menu again at once.
    assert_eq!(
        net.users[alice].seen.last(),
        Some(&Output::Event(delivered(1, "hello everyone")))
    );
    assert!(net.users[alice].console.is_ready());

    net.line(alice, "/me waves");
    net.wait_for(bob, public("alice", "waves", true));
    assert!(
        net.users[bob]
            .lines()
            .contains(&"* alice waves".to_string())
    );

    net.line(alice, "/say PM");
    net.wait_for(bob, public("alice", "PM", false));
    net.line(alice, "//etc");
    net.wait_for(bob, public("alice", "/etc", false));
}

fn terminal() -> ConsoleConfig {
    ConsoleConfig {
        show_sent: true,
        ..ConsoleConfig::default()
    }
}

fn sent(to: Option<&str>, text: &str, action: bool) -> ChatEvent {
    ChatEvent::Sent {
        from: "alice".to_string(),
        to: to.map(ToString::to_string),
        text: text.to_string(),
        action,
    }
}

#[test]
fn on_a_terminal_your_own_messages_show_as_chat_once_confirmed() {
    let mut net = Consoles::new(test_config());
    let alice = net.join_with("alice", "a", terminal());
    let bob = net.join("bob", "b", false);
    net.line(alice, "hello");
    net.wait_for(alice, sent(None, "hello", false));
    net.line(alice, "/me waves");
    net.wait_for(alice, sent(None, "waves", true));
    net.line(alice, "/msg bob psst");
    net.wait_for(alice, sent(Some("bob"), "psst", false));
    net.line(alice, "/msg nobody hi");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::NotSent { .. }))
        },
        500,
    );
    let a = &net.users[alice];
    assert!(
        !a.events()
            .iter()
            .any(|e| matches!(e, ChatEvent::Confirmation { .. })),
        "{:#?}",
        a.lines()
    );
    let styled: Vec<String> = a
        .events()
        .iter()
        .map(|e| render_styled(e, None, false))
        .collect();
    for line in ["<alice> hello", " * alice waves", "-> bob: psst"] {
        assert!(styled.iter().any(|l| l == line), "{line}: {styled:#?}");
    }
    assert!(
        styled.iter().any(|l| l.starts_with("! not sent to nobody")),
        "refusals stay: {styled:#?}"
    );
    // Confirmations on request, beside the message.
    net.line(alice, "/confirm on");
    net.line(alice, "again");
    net.wait_for(alice, delivered(1, "again"));
    assert!(net.users[alice].saw(&sent(None, "again", false)));
    net.line(alice, "/confirm off");
    net.line(alice, "quiet");
    net.wait_for(bob, public("alice", "quiet", false));
    net.wait_for(alice, sent(None, "quiet", false));
    assert!(!net.users[alice].saw(&delivered(1, "quiet")));
    // Piped (the default): confirmations, no echo.
    assert!(
        !net.users[bob]
            .events()
            .iter()
            .any(|e| matches!(e, ChatEvent::Sent { .. }))
    );
}

/// The public texts `who` saw, in order.
fn texts_from(net: &Net, who: usize, from: &str) -> Vec<String> {
    net.users[who]
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Public { from: f, text, .. } if f == from => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn lines_typed_faster_than_the_limit_wait_their_turn_and_all_arrive() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    let sent: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    for l in &sent {
        net.line(alice, l);
    }
    assert!(net.users[alice].console.queued() > 0, "some lines wait");
    net.run_until(|n| texts_from(n, bob, "alice").len() == 30, 2000);
    assert_eq!(texts_from(&net, bob, "alice"), sent, "all, in order");
    let a = &net.users[alice];
    assert!(
        a.events()
            .iter()
            .any(|e| matches!(e, ChatEvent::Queued { .. }))
    );
    // None refused: the pace kept under the server's limit.
    assert!(
        !a.events()
            .iter()
            .any(|e| matches!(e, ChatEvent::Error { .. } | ChatEvent::NotSent { .. })),
        "{:#?}",
        a.lines()
    );
    assert_eq!(net.server.stats().messages_rate_limited, 0);
}

#[test]
fn at_the_end_of_input_every_line_goes_before_ex() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    for i in 1..=25 {
        net.line(alice, &format!("piped {i}"));
    }
    net.users[alice].console.handle_eof(net.now);
    net.run_until(|n| n.users[alice].console.exit_code().is_some(), 3000);
    assert_eq!(net.users[alice].console.exit_code(), Some(0));
    assert_eq!(texts_from(&net, bob, "alice").len(), 25);
}

#[test]
fn a_line_that_could_not_be_sent_is_shown_and_fails_the_exit() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    net.line(alice, "/msg nobody hello?");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::NotSent { .. }))
        },
        500,
    );
    assert!(
        net.users[alice]
            .lines()
            .iter()
            .any(|l| l.starts_with("! not sent to nobody: \"hello?\"")),
        "{:#?}",
        net.users[alice].lines()
    );
    net.users[alice].console.handle_eof(net.now);
    net.run_until(|n| n.users[alice].console.exit_code().is_some(), 500);
    assert_eq!(net.users[alice].console.exit_code(), Some(1));
}

#[test]
fn only_the_exact_menu_words_start_a_flow_and_an_empty_recipient_sends_nothing() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    // "ex" in a conversation is a word, not the way out.
    net.line(alice, "ex");
    net.wait_for(bob, public("alice", "ex", false));
    assert!(net.users[alice].console.is_ready());
    // DM with no recipient: the next line is set aside, not made public.
    net.line(alice, "DM");
    // Waits for the recipient prompt: the console shows it in the very step
    // it starts waiting for the recipient.
    net.run_until(
        |n| {
            n.users[alice]
                .seen
                .contains(&Output::Prompt(PromptKind::Recipient))
        },
        500,
    );
    net.line(alice, "");
    net.line(alice, "the secret");
    net.line(alice, "after");
    net.wait_for(bob, public("alice", "after", false));
    assert!(!texts_from(&net, bob, "alice").contains(&"the secret".to_string()));
    assert!(
        net.users[alice]
            .lines()
            .iter()
            .any(|l| l.starts_with("! not sent: \"the secret\"")),
        "{:#?}",
        net.users[alice].lines()
    );
}

#[test]
fn a_session_replaced_by_a_new_login_is_told_so_plainly() {
    let mut net = Consoles::new(test_config());
    let first = net.join("alice", "a", true);
    let second = net.join("alice", "a", true);
    net.run_until(|n| n.users[first].console.exit_code().is_some(), 1000);
    assert_eq!(net.users[first].console.exit_code(), Some(1));
    assert_eq!(
        net.users[first].lines().last().map(String::as_str),
        Some("! disconnected: you logged in from another place; this session is over"),
        "no reconnection that would replace the new one in turn"
    );
    assert!(net.users[second].console.is_ready());
}

#[test]
fn the_last_wrong_password_says_too_many_attempts() {
    let mut net = Consoles::new(test_config());
    let first = net.join("alice", "right", false);
    net.users[first].console.handle_eof(net.now);
    net.run_until(|n| n.users[first].console.exit_code().is_some(), 500);
    // A console that keeps offering a wrong password.
    let console = Console::new(net.now, ConsoleConfig::default(), [77; 32], "alice").unwrap();
    net.users.push(User {
        addr: SocketAddr::new([127, 0, 0, 1].into(), 41_000),
        console,
        password: "wrong".to_string(),
        seen: Vec::new(),
        reconnects: 0,
    });
    let i = net.users.len() - 1;
    net.run_until(|n| n.users[i].console.exit_code().is_some(), 5000);
    assert_eq!(net.users[i].console.exit_code(), Some(1));
    let lines = net.users[i].lines();
    let last = lines.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.starts_with("! login failed: ") && last.contains("too many attempts (5)"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("(Normal)")),
        "not a bare closed connection: {lines:#?}"
    );
}

#[test]
fn quit_with_a_reason_tells_the_others() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "/quit gone fishing");
    net.wait_for(
        bob,
        ChatEvent::Leave {
            user: "alice".to_string(),
            reason: "exit".to_string(),
            message: Some("gone fishing".to_string()),
        },
    );
    assert!(
        net.users[bob]
            .lines()
            .contains(&"* alice left (exit: gone fishing)".to_string())
    );
    assert_eq!(net.users[alice].console.exit_code(), Some(0));
}

#[test]
fn the_menu_flows_still_work() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    net.line(alice, "PM");
    net.run_until(
        |n| {
            n.users[alice]
                .seen
                .contains(&Output::Prompt(PromptKind::PublicText))
        },
        100,
    );
    // In the flow, the line is the text, even "EX".
    net.line(alice, "EX");
    net.wait_for(bob, public("alice", "EX", false));
    net.line(alice, "DM");
    net.wait_for(
        alice,
        ChatEvent::Online {
            users: vec!["alice".to_string(), "bob".to_string()],
            count: None,
            away: vec![],
        },
    );
    net.line(alice, "bob");
    net.line(alice, "psst");
    net.wait_for(
        bob,
        ChatEvent::Direct {
            from: "alice".to_string(),
            text: "psst".to_string(),
        },
    );
    net.line(alice, "/msg bob again");
    net.wait_for(
        bob,
        ChatEvent::Direct {
            from: "alice".to_string(),
            text: "again".to_string(),
        },
    );
    net.line(alice, "/who");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .filter(|e| matches!(e, ChatEvent::Online { .. }))
                .count()
                == 2
        },
        100,
    );
    let prompts: Vec<&Output> = net.users[alice]
        .seen
        .iter()
        .filter(|o| matches!(o, Output::Prompt(_)))
        .collect();
    assert!(prompts.contains(&&Output::Prompt(PromptKind::Recipient)));
    assert!(prompts.contains(&&Output::Prompt(PromptKind::DirectText {
        to: "bob".to_string()
    })));
    net.line(alice, "EX");
    net.run_until(|n| n.users[alice].console.exit_code() == Some(0), 200);
    assert!(net.users[alice].saw(&ChatEvent::Bye));
}

#[test]
fn bad_lines_are_refused_at_the_menu() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    for line in ["/nope", "/msg bob", "/msg no*name hi", "/connect"] {
        net.line(alice, line);
    }
    net.line(alice, "/help me");
    net.step();
    let lines = net.users[alice].lines();
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "! unknown command /nope: /help lists the commands; //nope sends it as a message",
            "! usage: /msg USER TEXT",
            "! username has the character '*'; use letters, digits, '_', '-' and '.'",
            "! already connected",
            "/me ACTION  Send a public action: others see \"* alice ACTION\".",
            "  example: /me waves",
        ]
    );
    assert!(net.users[alice].console.is_ready());
}

/// The server restarts (same key, same accounts): the console says so,
/// waits, reconnects, logs in again by itself, and then works.
#[test]
fn a_line_unconfirmed_when_the_server_went_away_is_shown_by_its_text() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    // The server is gone (nothing gets through) as alice sends.
    net.down = true;
    net.line(alice, "did this arrive?");
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .any(|e| matches!(e, ChatEvent::Disconnect { .. }))
        },
        3000,
    );
    let lines = net.users[alice].lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("! not sent: \"did this arrive?\" (the connection was lost")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("may not have been delivered\"")),
        "by its text, not a count: {lines:#?}"
    );
}

#[test]
fn reconnects_and_logs_in_again_after_a_restart() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    net.line(alice, "before");
    net.wait_for(alice, delivered(0, "before"));
    net.restart([7; 32], 2);
    // The next keepalive meets a server that does not know the session.
    net.run_until(
        |n| {
            n.users[alice].events().iter().any(|e| {
                matches!(
                    e,
                    ChatEvent::Disconnect {
                        reconnect_in: Some(1),
                        ..
                    }
                )
            })
        },
        500,
    );
    assert_eq!(net.users[alice].console.exit_code(), None);
    // Typed while away: sent once logged in again.
    net.line(alice, "while away");
    let bob = net.join("bob", "b", false);
    net.wait_for(bob, public("alice", "while away", false));
    assert_eq!(net.users[alice].reconnects, 1);
    let lines = net.users[alice].lines();
    assert!(
        lines.contains(&"Reconnecting as alice (attempt 1)...".to_string()),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("logged in as alice"))
            .count(),
        1,
        "{lines:#?}"
    );
    // The password was asked for once only (registration).
    let asked = net.users[alice]
        .seen
        .iter()
        .filter(|o| matches!(o, Output::NeedPassword { .. }))
        .count();
    assert_eq!(asked, 1);
    net.line(bob, "welcome back");
    net.wait_for(alice, public("bob", "welcome back", false));
}

#[test]
fn backs_off_while_the_server_is_down_and_connect_retries_now() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    net.down = true;
    // Silence: lost after the idle timeout, then attempts 1, 2, ...
    net.run_until(|n| n.users[alice].reconnects >= 3, 10_000);
    let delays: Vec<u64> = net.users[alice]
        .events()
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Disconnect { reconnect_in, .. } => *reconnect_in,
            _ => None,
        })
        .collect();
    assert_eq!(delays, [1, 2, 4]);
    // Waiting 4 s before attempt 3's successor... /connect skips it.
    let before = net.users[alice].reconnects;
    net.run_until(
        |n| {
            n.users[alice]
                .events()
                .iter()
                .filter(|e| matches!(e, ChatEvent::Disconnect { .. }))
                .count()
                == 4
        },
        10_000,
    );
    net.line(alice, "/connect");
    net.step();
    assert_eq!(net.users[alice].reconnects, before + 1);
    net.down = false;
    net.run_until(|n| n.users[alice].console.is_ready(), 2000);
    net.line(alice, "/quit");
    net.run_until(|n| n.users[alice].console.exit_code() == Some(0), 200);
}

#[test]
fn quitting_while_away_ends_at_once() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    net.restart([7; 32], 3);
    net.run_until(|n| !n.users[alice].console.is_ready(), 500);
    net.down = true;
    net.line(alice, "/quit");
    assert_eq!(net.users[alice].console.exit_code(), Some(0));
    net.step();
    assert_eq!(
        net.users[alice].seen.last(),
        Some(&Output::Event(ChatEvent::Bye))
    );
}

#[test]
fn without_reconnect_a_lost_server_ends_the_session() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    net.restart([7; 32], 2);
    net.run_until(|n| n.users[alice].console.exit_code().is_some(), 500);
    assert_eq!(net.users[alice].console.exit_code(), Some(1));
    let last = net.users[alice].lines().pop().unwrap();
    assert!(
        last.starts_with("! disconnected: the server does not know"),
        "{last}"
    );
}

#[test]
fn a_refused_password_after_reconnecting_ends_with_1() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    for account in &mut net.accounts {
        account.password_hash = "fake:changed".to_string();
    }
    net.restart([7; 32], 2);
    net.run_until(|n| n.users[alice].console.exit_code().is_some(), 1000);
    assert_eq!(net.users[alice].console.exit_code(), Some(1));
    let last = net.users[alice].lines().pop().unwrap();
    assert!(last.starts_with("! login failed: "), "{last}");
}

#[test]
fn a_changed_server_key_is_never_reconnected_to() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", true);
    net.restart([8; 32], 2);
    // The new server's reset is not the old key's: silence, then the
    // idle timeout, then a handshake that shows the other key.
    net.run_until(|n| n.users[alice].console.exit_code().is_some(), 3000);
    assert_eq!(net.users[alice].console.exit_code(), Some(1));
    let lines = net.users[alice].lines();
    assert!(
        lines
            .last()
            .unwrap()
            .contains("THE SERVER'S KEY HAS CHANGED"),
        "{lines:#?}"
    );
    assert_eq!(net.users[alice].reconnects, 1);
}

#[test]
fn a_line_refused_as_too_fast_is_sent_again() {
    let mut net = Consoles::new(test_config());
    let alice = net.join("alice", "a", false);
    let bob = net.join("bob", "b", false);
    // The path goes dark: alice's lines leave at her pace and are lost;
    // when it comes back they arrive together, faster than the server's
    // limit, and the ones it refuses are sent again.
    net.down = true;
    let sent: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
    for l in &sent {
        net.line(alice, l);
        for _ in 0..25 {
            net.step();
        }
    }
    net.down = false;
    net.run_until(|n| texts_from(n, bob, "alice").len() == 20, 3000);
    assert!(net.server.stats().messages_rate_limited > 0);
    let mut got = texts_from(&net, bob, "alice");
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "every line arrives once");
    assert!(
        !net.users[alice]
            .events()
            .iter()
            .any(|e| matches!(e, ChatEvent::NotSent { .. }))
    );
}
