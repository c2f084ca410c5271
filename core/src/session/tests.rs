use super::decode::decode_chat;
use super::*;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;

#[test]
fn messages_round_trip_as_documented() {
    let m = ClientMessage::Op {
        op: Operation::PM,
        reason: None,
    };
    assert_eq!(encode(&m), br#"{"t":"op","op":"PM"}"#.to_vec());
    assert_eq!(decode::<ClientMessage>(&encode(&m)).unwrap(), m);
    let m = ClientMessage::Dm {
        to: "bob".to_string(),
        text: "hi".to_string(),
    };
    assert_eq!(encode(&m), br#"{"t":"dm","to":"bob","text":"hi"}"#.to_vec());
    let m = ServerMessage::Confirm {
        op: Operation::PM,
        to: None,
        recipients: 2,
        stored: false,
    };
    assert_eq!(
        encode(&m),
        br#"{"t":"confirm","op":"PM","recipients":2}"#.to_vec()
    );
    assert_eq!(decode::<ServerMessage>(&encode(&m)).unwrap(), m);
    let m = ServerMessage::LoginOk {
        name: "alice".to_string(),
        new_user: true,
        online: vec!["alice".to_string()],
        count: None,
        device: None,
        rate: None,
        rooms: Vec::new(),
    };
    assert_eq!(decode::<ServerMessage>(&encode(&m)).unwrap(), m);
    assert_eq!(
        encode(&m),
        br#"{"t":"login_ok","name":"alice","new_user":true,"online":["alice"]}"#.to_vec()
    );
    let m = ServerMessage::Online {
        users: vec!["alice".to_string()],
        count: Some(1001),
        away: vec![],
    };
    assert_eq!(
        encode(&m),
        br#"{"t":"online","users":["alice"],"count":1001}"#.to_vec()
    );
    assert_eq!(decode::<ServerMessage>(&encode(&m)).unwrap(), m);
    assert_eq!(encode(&ClientMessage::Who), br#"{"t":"who"}"#.to_vec());
    for (m, json) in [
        (
            ClientMessage::Away {
                text: Some("lunch".to_string()),
            },
            &br#"{"t":"away","text":"lunch"}"#[..],
        ),
        (ClientMessage::Away { text: None }, br#"{"t":"away"}"#),
        (
            ClientMessage::Whois {
                name: "bob".to_string(),
            },
            br#"{"t":"whois","name":"bob"}"#,
        ),
    ] {
        assert_eq!(encode(&m), json.to_vec());
        assert_eq!(decode::<ClientMessage>(json).unwrap(), m);
    }
    let m = ClientMessage::Op {
        op: Operation::EX,
        reason: Some("lunch".to_string()),
    };
    assert_eq!(
        encode(&m),
        br#"{"t":"op","op":"EX","reason":"lunch"}"#.to_vec()
    );
    assert_eq!(decode::<ClientMessage>(&encode(&m)).unwrap(), m);
    // Without a reason, as version 1 clients send it.
    assert_eq!(
        decode::<ClientMessage>(br#"{"t":"op","op":"EX"}"#).unwrap(),
        ClientMessage::Op {
            op: Operation::EX,
            reason: None
        }
    );
}

#[test]
fn look_alike_names_share_a_skeleton() {
    let same = [
        ("alice", "aIice"),
        ("alice", "ALICE"),
        ("alice", "a1ice"),
        ("bob", "bob."),
        ("bob", "b0b"),
        ("bob", "bob__"),
        ("a.b", "a-b"),
        ("a_b", "a..b"),
        ("modem", "rnodem"),
        ("wendy", "vvendy"),
    ];
    for (a, b) in same {
        assert_eq!(username_skeleton(a), username_skeleton(b), "{a} ~ {b}");
    }
    let different = [
        ("alice", "alicia"),
        ("bob", "bobby"),
        ("ab", "a.b"),
        ("bob", "rob"),
    ];
    for (a, b) in different {
        assert_ne!(username_skeleton(a), username_skeleton(b), "{a} !~ {b}");
    }
}

#[test]
fn rejects_unknown_and_malformed() {
    assert!(decode::<ClientMessage>(br#"{"t":"nuke"}"#).is_err());
    assert!(decode::<ClientMessage>(br#"{"t":"op","op":"XX"}"#).is_err());
    assert!(decode::<ClientMessage>(br#"{"t":"pm"}"#).is_err());
    assert!(decode::<ClientMessage>(b"\xff\xfe").is_err());
    // A lone surrogate is not Unicode (PROTOCOL.md §5.1).
    assert!(decode::<ClientMessage>(br#"{"t":"pm","text":"\ud800"}"#).is_err());
    assert!(decode::<ClientMessage>(br#"{"t":"pm","text":"\ud83d\ude00"}"#).is_ok());
}

#[test]
fn every_server_message_decodes_as_it_encodes() {
    use alloc::string::ToString;
    let s = |v: &str| v.to_string();
    let all = [
        ServerMessage::PasswordRequired {
            name: s("a"),
            new_user: true,
            registration: None,
        },
        ServerMessage::PasswordRequired {
            name: s("a"),
            new_user: true,
            registration: Some(RegistrationMode::Invite),
        },
        ServerMessage::InviteCode {
            code: s("18d494c0ffd26e20"),
            expires: 1_780_876_833_240,
        },
        ServerMessage::Error {
            code: ErrorCode::Suspended,
            message: s("the account a is suspended"),
        },
        ServerMessage::LoginOk {
            name: s("a"),
            new_user: false,
            online: vec![s("a"), s("b")],
            count: None,
            device: Some(s("00112233445566778899aabbccddeeff0011223344556677")),
            rate: Some(MessageRate {
                burst: 10,
                interval_ms: 200,
            }),
            rooms: Vec::new(),
        },
        ServerMessage::LoginOk {
            name: s("a"),
            new_user: false,
            online: vec![s("a")],
            count: Some(5000),
            device: None,
            rate: None,
            rooms: Vec::new(),
        },
        ServerMessage::LoginFailed {
            reason: LoginFailure::Throttled,
            message: s("wait"),
        },
        ServerMessage::OpOk { op: Operation::DM },
        ServerMessage::Online {
            users: vec![],
            count: Some(3),
            away: vec![],
        },
        ServerMessage::Online {
            users: vec![s("a"), s("b")],
            count: None,
            away: vec![s("b")],
        },
        ServerMessage::AwayOk {
            text: Some(s("lunch")),
        },
        ServerMessage::AwayOk { text: None },
        ServerMessage::AwayReply {
            user: s("b"),
            text: s("lunch"),
        },
        ServerMessage::Whois {
            name: s("b"),
            online: true,
            online_secs: Some(125),
            away: Some(s("lunch")),
        },
        ServerMessage::Whois {
            name: s("c"),
            online: false,
            online_secs: None,
            away: None,
        },
        ServerMessage::Public {
            from: s("a"),
            text: s("hi \"there\" \u{e9}"),
            time: None,
        },
        ServerMessage::Direct {
            from: s("b"),
            text: s("x"),
            time: None,
            id: None,
            offline: false,
        },
        ServerMessage::Joined { user: s("c") },
        ServerMessage::Left {
            user: s("c"),
            reason: s("too slow"),
            message: None,
        },
        ServerMessage::Left {
            user: s("c"),
            reason: s("exit"),
            message: Some(s("lunch")),
        },
        ServerMessage::Confirm {
            op: Operation::DM,
            to: Some(s("b")),
            recipients: 1,
            stored: false,
        },
        ServerMessage::Confirm {
            op: Operation::PM,
            to: None,
            recipients: 0,
            stored: false,
        },
        ServerMessage::Error {
            code: ErrorCode::NotOnline,
            message: s("no"),
        },
        ServerMessage::Bye,
        ServerMessage::Shutdown,
    ];
    for m in all {
        assert_eq!(decode::<ServerMessage>(&encode(&m)).unwrap(), m);
    }
    // The tag may come anywhere; unknown fields are ignored.
    assert_eq!(
        decode::<ServerMessage>(br#"{"text":"x","later":[1,{}],"from":"a","t":"public"}"#).unwrap(),
        ServerMessage::Public {
            from: s("a"),
            text: s("x"),
            time: None,
        }
    );
    // A reason or code a newer server may add: the message still counts.
    assert_eq!(
        decode::<ServerMessage>(br#"{"t":"login_failed","reason":"bad luck","message":"m"}"#)
            .unwrap(),
        ServerMessage::LoginFailed {
            reason: LoginFailure::Unknown,
            message: s("m")
        }
    );
    assert_eq!(
        decode::<ServerMessage>(br#"{"t":"error","code":"on_fire","message":"m"}"#).unwrap(),
        ServerMessage::Error {
            code: ErrorCode::Unknown,
            message: s("m")
        }
    );
    // A missing field, a wrong type, an unknown tag: errors.
    for bad in [
        &br#"{"t":"public","from":"a"}"#[..],
        br#"{"t":"public","from":"a","text":7}"#,
        br#"{"t":"teleport"}"#,
        br#"{"from":"a","text":"x"}"#,
        br#"{"t":"left","user":"a"}"#,
        br#"{"t":"whois","name":"a","online":[]}"#,
        br#"{"t":"login_ok","name":"a","new_user":false,"online":true}"#,
        br#"{"t":"away_reply","user":"a"}"#,
    ] {
        assert!(decode::<ServerMessage>(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_chat_fast_path_agrees_with_serde() {
    let cases: &[&[u8]] = &[
        br#"{"t":"public","from":"alice","text":"hello"}"#,
        br#"{"t":"direct","from":"bob","text":"h\u00e9 \"x\""}"#,
        br#"{"t":"public","from":"a","text":""}"#,
        br#"{"t":"public","from":"","text":"x"}"#,
        br#"{"t":"public","from":"a","text":"x"} "#,
        br#"{"t":"public","from":"a","text":"x"}}"#,
        br#"{"t":"public","from":"a","text":"x","extra":1}"#,
        br#"{"t":"public","text":"x","from":"a"}"#,
        br#"{"t":"public","from":"a","text":"x"#,
        br#"{"t":"public","from":"a","text":"x\"}"#,
        br#"{"t":"public","from":"a","text":"tab	here"}"#,
        b"{\"t\":\"public\",\"from\":\"a\",\"text\":\"ctl\x01\"}",
        b"{\"t\":\"public\",\"from\":\"a\",\"text\":\"bad \xff utf8\"}",
        "{\"t\":\"direct\",\"from\":\"a\",\"text\":\"caf\u{e9} \u{1f600}\"}".as_bytes(),
        br#"{"t":"joined","user":"a"}"#,
        br#"{"t":"public","from":"a","text":"x"}"#,
    ];
    for &c in cases {
        let fast = decode_server(c).ok();
        let slow = decode::<ServerMessage>(c).ok();
        assert_eq!(fast, slow, "{:?}", core::str::from_utf8(c));
    }
    // Times at the edges of a u64: 19 digits, 20, and past the largest.
    for time in [
        "9999999999999999999",
        "10000000000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
        "100000000000000000000",
        "0",
        "00",
        "07",
    ] {
        for m in [
            format!(r#"{{"t":"public","from":"a","text":"x","time":{time}}}"#),
            format!(
                r##"{{"t":"room_msg","room":"#r","offset":{time},"from":"b","text":"x","time":{time}}}"##
            ),
        ] {
            let fast = decode_server(m.as_bytes()).ok();
            assert_eq!(fast, decode::<ServerMessage>(m.as_bytes()).ok(), "{m}");
            let fits = time.len() < 21 && time.parse::<u64>().is_ok() && !time.starts_with("0");
            assert_eq!(fast.is_some(), fits || time == "0", "{m}");
        }
    }
    for m in [
        ServerMessage::Joined { user: "a".into() },
        ServerMessage::Direct {
            from: "a".into(),
            text: "waiting".into(),
            time: Some(1),
            id: Some(9),
            offline: true,
        },
    ] {
        assert_eq!(m.as_chat(), None, "{m:?} is not read as a chat message");
    }
    // Every prefix and every one-byte change of the chat messages too.
    assert!(decode_chat(cases[1]).is_none(), "escapes go to serde");
    let bases: [&[u8]; 4] = [
        br#"{"t":"direct","from":"alice","text":"hi there"}"#,
        br#"{"t":"public","from":"alice","text":"hi","time":1780272000270}"#,
        br##"{"t":"room_msg","room":"#rust","offset":17,"from":"bob","text":"hi","time":1780272000080}"##,
        br##"{"t":"room_msg","room":"#r","offset":1,"from":"b","text":"x","time":5,"history":true}"##,
    ];
    for base in bases {
        assert!(decode_chat(base).is_some(), "the fast path reads {base:?}");
        assert_eq!(decode_chat(base), decode::<ServerMessage>(base).ok());
        // Read in place, it is the message serde gives, borrowed.
        let slow = decode::<ServerMessage>(base).ok();
        assert_eq!(
            read_chat(base),
            slow.as_ref().and_then(ServerMessage::as_chat)
        );
        assert_eq!(read_chat(base).map(Chat::into_message), slow);
        for n in 0..=base.len() {
            assert_eq!(
                decode_server(&base[..n]).ok(),
                decode::<ServerMessage>(&base[..n]).ok()
            );
        }
        for i in 0..base.len() {
            for b in [0u8, b'"', b'\\', b' ', b'}', 0x80, b'x', b'0', b'9'] {
                let mut m = base.to_vec();
                m[i] = b;
                assert_eq!(
                    decode_server(&m).ok(),
                    decode::<ServerMessage>(&m).ok(),
                    "{m:?}"
                );
            }
        }
    }
}

#[test]
fn username_rules() {
    assert!(validate_username("momodou").is_ok());
    assert!(validate_username("a.b-c_9").is_ok());
    assert_eq!(validate_username(""), Err(UsernameError::Empty));
    assert_eq!(
        validate_username(&"x".repeat(33)),
        Err(UsernameError::TooLong)
    );
    assert_eq!(
        validate_username("a b"),
        Err(UsernameError::BadCharacter(' '))
    );
    assert_eq!(
        validate_username("a\u{7}"),
        Err(UsernameError::BadCharacter('\u{7}'))
    );
    assert_eq!(validate_username("_x"), Err(UsernameError::BadStart));
    assert_eq!(username_key("AlIcE"), "alice");
}

#[test]
fn text_rules() {
    assert!(validate_text("héllo wörld").is_ok());
    assert_eq!(validate_text(""), Err(TextError::Empty));
    assert_eq!(
        validate_text("a\u{1b}[2J"),
        Err(TextError::ControlCharacter)
    );
    assert_eq!(validate_text("a\u{9b}"), Err(TextError::ControlCharacter));
    assert_eq!(
        validate_text(&"x".repeat(MAX_TEXT + 1)),
        Err(TextError::TooLong(MAX_TEXT + 1))
    );
    assert!(validate_text(&"x".repeat(MAX_TEXT)).is_ok());
}

#[test]
fn moderation_requests_decode_as_they_encode_and_unknown_modes_are_ignored() {
    for m in [
        ClientMessage::Suspend {
            name: "bob".to_string(),
            secs: Some(60),
            reason: Some("spam".to_string()),
        },
        ClientMessage::Suspend {
            name: "bob".to_string(),
            secs: None,
            reason: None,
        },
        ClientMessage::Unsuspend {
            name: "bob".to_string(),
        },
        ClientMessage::Disconnect {
            name: "bob".to_string(),
            reason: None,
        },
        ClientMessage::Registration {
            mode: RegistrationMode::Closed,
        },
        ClientMessage::Invite,
    ] {
        assert_eq!(decode::<ClientMessage>(&encode(&m)).unwrap(), m);
    }
    assert!(
        decode::<ClientMessage>(br#"{"t":"registration","mode":"sometimes"}"#).is_err(),
        "an unknown mode is a bad message"
    );
    // A newer server's mode is not understood, and the rest still is.
    let m: ServerMessage =
        decode(br#"{"t":"password_required","name":"a","new_user":true,"registration":"vote"}"#)
            .unwrap();
    assert_eq!(
        m,
        ServerMessage::PasswordRequired {
            name: "a".to_string(),
            new_user: true,
            registration: None,
        }
    );
    // A newer server's error code is still an error.
    let m: ServerMessage = decode(br#"{"t":"error","code":"frozen","message":"m"}"#).unwrap();
    assert!(matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::Unknown,
            ..
        }
    ));
}
