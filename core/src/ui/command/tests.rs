//! Tests of the command parser, its durations and its help.
use alloc::string::ToString;

use super::*;

#[test]
fn plain_lines_are_public_messages() {
    assert_eq!(parse_command("hello all"), Ok(Command::Say("hello all")));
    assert_eq!(parse_command("  indented"), Ok(Command::Say("  indented")));
    assert_eq!(
        parse_command("PM me later"),
        Ok(Command::Say("PM me later"))
    );
    assert_eq!(parse_command("exit"), Ok(Command::Say("exit")));
    assert_eq!(parse_command(""), Ok(Command::Empty));
    assert_eq!(parse_command(" \t "), Ok(Command::Empty));
}

#[test]
fn menu_operations_alone_enter_their_flow() {
    assert_eq!(parse_command("PM"), Ok(Command::Menu(Operation::PM)));
    assert_eq!(parse_command(" DM "), Ok(Command::Menu(Operation::DM)));
    assert_eq!(parse_command("EX"), Ok(Command::Menu(Operation::EX)));
    assert_eq!(parse_command("/say PM"), Ok(Command::Say("PM")));
    // Any other spelling is a message.
    for word in ["ex", "Ex", "eX", "pm", "Pm", "dm", "dM"] {
        assert_eq!(parse_command(word), Ok(Command::Say(word)), "{word}");
    }
}

#[test]
fn commands_and_aliases() {
    let msg = Ok(Command::Msg {
        to: "bob",
        text: "see you  at 5",
    });
    assert_eq!(parse_command("/msg bob see you  at 5"), msg);
    assert_eq!(parse_command("/DM   bob   see you  at 5"), msg);
    for who in ["/who", "/users", "/who extra"] {
        assert_eq!(parse_command(who), Ok(Command::Who), "{who}");
    }
    assert_eq!(parse_command("/NAMES"), Ok(Command::Names(None)));
    assert_eq!(parse_command("/quit"), Ok(Command::Quit(None)));
    assert_eq!(parse_command("/exit  "), Ok(Command::Quit(None)));
    assert_eq!(
        parse_command("/quit gone fishing"),
        Ok(Command::Quit(Some("gone fishing")))
    );
    assert_eq!(parse_command("/me waves"), Ok(Command::Me("waves")));
    assert_eq!(parse_command("/help"), Ok(Command::Help(None)));
    assert_eq!(parse_command("/help /msg"), Ok(Command::Help(Some("/msg"))));
    assert_eq!(parse_command("/connect"), Ok(Command::Connect));
    assert_eq!(parse_command("/confirm"), Ok(Command::Confirm(None)));
    assert_eq!(parse_command("/more"), Ok(Command::More));
    assert_eq!(parse_command("/away"), Ok(Command::Away(None)));
    assert_eq!(
        parse_command("/away at  lunch "),
        Ok(Command::Away(Some("at  lunch")))
    );
    assert_eq!(parse_command("/whois bob"), Ok(Command::Whois("bob")));
    assert_eq!(parse_command("/audit"), Ok(Command::Audit(None)));
    assert_eq!(
        parse_command("/suspend bob 2h spam  links"),
        Ok(Command::Suspend {
            user: "bob",
            secs: Some(7200),
            reason: Some("spam  links")
        })
    );
    assert_eq!(
        parse_command("/suspend bob being rude"),
        Ok(Command::Suspend {
            user: "bob",
            secs: None,
            reason: Some("being rude")
        })
    );
    assert_eq!(
        parse_command("/suspend bob"),
        Ok(Command::Suspend {
            user: "bob",
            secs: None,
            reason: None
        })
    );
    assert!(parse_command("/suspend").is_err());
    assert!(parse_command("/suspend bob 3x").is_err());
    assert!(parse_command("/suspend bob 0m").is_err());
    assert_eq!(parse_duration("30m"), Some(1800));
    assert_eq!(parse_duration("7d"), Some(604_800));
    assert_eq!(parse_duration("45"), Some(45));
    assert_eq!(parse_duration("99999999999999999999d"), None);
    assert_eq!(parse_duration("m"), None);
    assert_eq!(
        parse_command("/unsuspend bob"),
        Ok(Command::Unsuspend("bob"))
    );
    assert_eq!(
        parse_command("/kill bob go away"),
        Ok(Command::Disconnect {
            user: "bob",
            reason: Some("go away")
        })
    );
    assert_eq!(
        parse_command("/registration invite"),
        Ok(Command::Registration(
            crate::session::RegistrationMode::Invite
        ))
    );
    assert!(parse_command("/registration maybe").is_err());
    assert_eq!(parse_command("/invite"), Ok(Command::Invite));
    assert_eq!(
        parse_command("/kick #rust bob too  loud"),
        Ok(Command::Kick {
            room: Some("#rust"),
            user: "bob",
            reason: Some("too  loud")
        })
    );
    assert_eq!(
        parse_command("/kick bob"),
        Ok(Command::Kick {
            room: None,
            user: "bob",
            reason: None
        })
    );
    assert!(parse_command("/kick").is_err());
    assert!(parse_command("/kick #rust").is_err());
    assert_eq!(
        parse_command("/ban bob 2h spam"),
        Ok(Command::Ban {
            room: None,
            user: "bob",
            secs: Some(7200),
            reason: Some("spam")
        })
    );
    assert_eq!(
        parse_command("/ban #rust bob 30m"),
        Ok(Command::Ban {
            room: Some("#rust"),
            user: "bob",
            secs: Some(1800),
            reason: None
        })
    );
    // Not a duration: the reason, and no end.
    assert_eq!(
        parse_command("/ban bob 2 spammers"),
        Ok(Command::Ban {
            room: None,
            user: "bob",
            secs: None,
            reason: Some("2 spammers")
        })
    );
    assert_eq!(
        parse_command("/op #rust carol"),
        Ok(Command::RoomUser {
            action: RoomUserAction::Op,
            room: Some("#rust"),
            user: "carol"
        })
    );
    assert_eq!(
        parse_command("/unmute bob"),
        Ok(Command::RoomUser {
            action: RoomUserAction::Unmute,
            room: None,
            user: "bob"
        })
    );
    assert!(parse_command("/mute bob now").is_err());
    assert_eq!(
        parse_command("/moderated ON"),
        Ok(Command::RoomMode {
            room: None,
            topic_locked: None,
            moderated: Some(true)
        })
    );
    assert_eq!(
        parse_command("/lock-topic #rust off"),
        Ok(Command::RoomMode {
            room: Some("#rust"),
            topic_locked: Some(false),
            moderated: None
        })
    );
    assert!(parse_command("/lock-topic maybe").is_err());
    assert_eq!(parse_command("/ignore"), Ok(Command::Ignore(None)));
    assert_eq!(
        parse_command("/ignore bob"),
        Ok(Command::Ignore(Some("bob")))
    );
    assert_eq!(parse_command("/unignore bob"), Ok(Command::Unignore("bob")));
    assert!(parse_command("/unignore").is_err());
    assert_eq!(
        parse_command("/notice hi all"),
        Ok(Command::Notice("hi all"))
    );
    assert!(parse_command("/notice").is_err());
    assert_eq!(parse_command("/audit 20"), Ok(Command::Audit(Some(20))));
    assert_eq!(
        parse_command("/banip 203.0.113.0/24 7d spam  bots"),
        Ok(Command::BanIp {
            range: "203.0.113.0/24",
            secs: Some(604_800),
            reason: Some("spam  bots")
        })
    );
    assert_eq!(
        parse_command("/banip 2001:db8::/64 spam bots"),
        Ok(Command::BanIp {
            range: "2001:db8::/64",
            secs: None,
            reason: Some("spam bots")
        })
    );
    assert_eq!(
        parse_command("/banip 198.51.100.7 30m"),
        Ok(Command::BanIp {
            range: "198.51.100.7",
            secs: Some(1800),
            reason: None
        })
    );
    assert_eq!(
        parse_command("/banip 198.51.100.7"),
        Ok(Command::BanIp {
            range: "198.51.100.7",
            secs: None,
            reason: None
        })
    );
    assert!(parse_command("/banip").is_err());
    assert_eq!(
        parse_command("/unbanip 198.51.100.7"),
        Ok(Command::UnbanIp("198.51.100.7"))
    );
    assert!(parse_command("/unbanip").is_err());
    assert!(parse_command("/unbanip a b").is_err());
    assert_eq!(parse_command("/bans"), Ok(Command::Bans(None)));
    assert_eq!(
        parse_command("/bans 10.0.0.0/8"),
        Ok(Command::Bans(Some("10.0.0.0/8")))
    );
    assert!(parse_command("/audit 0").is_err());
    assert!(parse_command("/audit many").is_err());
    assert_eq!(
        parse_command("/confirm ON"),
        Ok(Command::Confirm(Some(true)))
    );
    assert_eq!(
        parse_command("/confirm off"),
        Ok(Command::Confirm(Some(false)))
    );
    assert_eq!(
        parse_command("//etc/passwd"),
        Ok(Command::Say("/etc/passwd"))
    );
}

#[test]
fn room_commands() {
    assert_eq!(parse_command("/join #rust"), Ok(Command::Join("#rust")));
    assert_eq!(
        parse_command("/part"),
        Ok(Command::Part {
            room: None,
            reason: None
        })
    );
    assert_eq!(
        parse_command("/part #rust gone  home"),
        Ok(Command::Part {
            room: Some("#rust"),
            reason: Some("gone  home")
        })
    );
    assert_eq!(
        parse_command("/part bye all"),
        Ok(Command::Part {
            room: None,
            reason: Some("bye all")
        })
    );
    assert_eq!(parse_command("/go #rust"), Ok(Command::Go(Some("#rust"))));
    assert_eq!(parse_command("/go"), Ok(Command::Go(None)));
    assert_eq!(parse_command("/go *"), Ok(Command::Go(None)));
    assert_eq!(parse_command("/rooms"), Ok(Command::Rooms));
    assert_eq!(parse_command("/names #a"), Ok(Command::Names(Some("#a"))));
    assert_eq!(
        parse_command("/topic #rust new topic"),
        Ok(Command::Topic {
            room: Some("#rust"),
            text: Some("new topic")
        })
    );
    assert_eq!(
        parse_command("/topic"),
        Ok(Command::Topic {
            room: None,
            text: None
        })
    );
    assert_eq!(
        parse_command("/history"),
        Ok(Command::History {
            room: None,
            limit: 20
        })
    );
    assert_eq!(
        parse_command("/history #rust 500"),
        Ok(Command::History {
            room: Some("#rust"),
            limit: 200
        })
    );
    assert_eq!(
        parse_command("/history 5"),
        Ok(Command::History {
            room: None,
            limit: 5
        })
    );
    for bad in [
        "/history x",
        "/history #a 0",
        "/join",
        "/join #a #b",
        "/go #a #b",
    ] {
        assert!(
            matches!(parse_command(bad), Err(ParseError::Usage(_))),
            "{bad}"
        );
    }
}

#[test]
fn missing_arguments_show_the_usage() {
    for (line, usage) in [
        ("/msg", "usage: /msg USER TEXT"),
        ("/msg bob", "usage: /msg USER TEXT"),
        ("/msg bob   ", "usage: /msg USER TEXT"),
        ("/me", "usage: /me ACTION"),
        ("/say", "usage: /say TEXT"),
        ("/confirm maybe", "usage: /confirm [on|off]"),
        ("/whois", "usage: /whois USER"),
        ("/whois bob carol", "usage: /whois USER"),
    ] {
        let e = parse_command(line).unwrap_err();
        assert_eq!(e.to_string(), usage, "{line}");
    }
}

#[test]
fn unknown_commands_are_errors() {
    let e = parse_command("/frobnicate now").unwrap_err();
    assert_eq!(e, ParseError::Unknown("frobnicate"));
    assert!(e.to_string().contains("//frobnicate sends it"), "{e}");
    assert_eq!(parse_command("/").unwrap_err(), ParseError::Unknown(""));
}

#[test]
fn help_shows_syntax_description_and_example() {
    let all = help(None);
    for c in COMMANDS {
        assert!(all.iter().any(|l| l.contains(c.usage)), "{}", c.usage);
    }
    assert!(all.iter().any(|l| l.contains("/say PM")));
    let msg = help(Some("dm"));
    assert_eq!(
        msg,
        [
            "/msg USER TEXT  Send a direct message to USER, who must be online.",
            "  aliases: /dm",
            "  example: /msg bob see you at 5",
        ]
    );
    assert_eq!(
        help(Some("/quit"))[0].split("  ").next(),
        Some("/quit [REASON]")
    );
    assert!(help(Some("PM"))[0].starts_with("PM: "));
    assert!(help(Some("DM"))[0].starts_with("DM: "));
    assert_eq!(help(Some("nope")), ["no command nope: /help lists them"]);
}
