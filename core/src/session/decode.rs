//! Reading the server's messages: one pass over every field any message
//! has, then the checks of the fields each `t` needs; and a fast path for
//! the chat messages a busy room sends most.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use super::*;

/// The `t` of a [`ServerMessage`].
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ServerTag {
    PasswordRequired,
    LoginOk,
    LoginFailed,
    OpOk,
    Online,
    Public,
    Direct,
    Joined,
    Left,
    Confirm,
    Error,
    AwayOk,
    AwayReply,
    Whois,
    Bye,
    Shutdown,
    Room,
    Parted,
    MemberJoined,
    MemberLeft,
    RoomMsg,
    Said,
    RoomList,
    Names,
    Topic,
    HistoryEnd,
    RoomResume,
    ModOk,
    AuditLog,
    Notice,
    BanList,
    InviteCode,
    Kicked,
    RoomRole,
    MemberMuted,
    MemberUnmuted,
    RoomMode,
}

/// A field that is one type in some messages and another in others
/// (`online`: a list in `login_ok`, a bool in `whois`; `away`: a list in
/// `online`, a text in `whois`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Either<A, B> {
    A(A),
    B(B),
}

impl<A, B> Either<A, B> {
    fn a(this: Option<Self>) -> Option<A> {
        match this {
            Some(Either::A(a)) => Some(a),
            _ => None,
        }
    }

    fn b(this: Option<Self>) -> Option<B> {
        match this {
            Some(Either::B(b)) => Some(b),
            _ => None,
        }
    }
}

/// Every field any [`ServerMessage`] has, in one object: serde reads it
/// in one pass, and [`ServerMessage`]'s `Deserialize` then checks that the
/// fields its `t` needs are there. Other fields are ignored, as unknown
/// ones are.
#[derive(Deserialize)]
struct FlatServerMessage {
    t: ServerTag,
    name: Option<String>,
    new_user: Option<bool>,
    online: Option<Either<Vec<String>, bool>>,
    count: Option<u32>,
    /// `login_failed`: a [`LoginFailure`]; `left`: free text.
    reason: Option<String>,
    message: Option<String>,
    op: Option<Operation>,
    users: Option<Vec<String>>,
    from: Option<String>,
    text: Option<String>,
    user: Option<String>,
    to: Option<String>,
    recipients: Option<u32>,
    /// `error`: an [`ErrorCode`]; `invite_code`: the code.
    code: Option<String>,
    device: Option<String>,
    rate: Option<MessageRate>,
    away: Option<Either<Vec<String>, String>>,
    online_secs: Option<u64>,
    /// `login_ok`: names; `room_list`: [`RoomInfo`]s.
    rooms: Option<Either<Vec<RoomInfo>, Vec<String>>>,
    time: Option<u64>,
    id: Option<u64>,
    offline: Option<bool>,
    stored: Option<bool>,
    room: Option<String>,
    epoch: Option<String>,
    offset: Option<u64>,
    topic: Option<String>,
    owner: Option<String>,
    members: Option<Vec<String>>,
    backlog: Option<u32>,
    history: Option<bool>,
    by: Option<String>,
    more: Option<bool>,
    recovered: Option<bool>,
    missed: Option<u64>,
    action: Option<String>,
    target: Option<String>,
    entries: Option<Vec<AuditItem>>,
    bans: Option<Vec<BanItem>>,
    /// A [`RegistrationMode`]; one this version does not know is ignored.
    registration: Option<String>,
    expires: Option<u64>,
    ops: Option<Vec<String>>,
    muted: Option<Vec<String>>,
    topic_locked: Option<bool>,
    moderated: Option<bool>,
    banned: Option<bool>,
    until: Option<u64>,
    role: Option<RoomRole>,
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        fn need<T, E: serde::de::Error>(v: Option<T>, field: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(field))
        }
        let f = FlatServerMessage::deserialize(d)?;
        Ok(match f.t {
            ServerTag::PasswordRequired => ServerMessage::PasswordRequired {
                name: need(f.name, "name")?,
                new_user: need(f.new_user, "new_user")?,
                registration: f.registration.as_deref().and_then(RegistrationMode::parse),
            },
            ServerTag::LoginOk => ServerMessage::LoginOk {
                name: need(f.name, "name")?,
                new_user: need(f.new_user, "new_user")?,
                online: need(Either::a(f.online), "online")?,
                count: f.count,
                device: f.device,
                rate: f.rate,
                rooms: match f.rooms {
                    Some(Either::B(names)) => names,
                    _ => Vec::new(),
                },
            },
            ServerTag::LoginFailed => {
                let reason = need(f.reason, "reason")?;
                let reason = LoginFailure::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(&reason))
                .map_err(D::Error::custom)?;
                ServerMessage::LoginFailed {
                    reason,
                    message: need(f.message, "message")?,
                }
            }
            ServerTag::OpOk => ServerMessage::OpOk {
                op: need(f.op, "op")?,
            },
            ServerTag::Online => ServerMessage::Online {
                users: need(f.users, "users")?,
                count: f.count,
                away: Either::a(f.away).unwrap_or_default(),
            },
            ServerTag::Public => ServerMessage::Public {
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
                time: f.time,
            },
            ServerTag::Direct => ServerMessage::Direct {
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
                time: f.time,
                id: f.id,
                offline: f.offline.unwrap_or(false),
            },
            ServerTag::Joined => ServerMessage::Joined {
                user: need(f.user, "user")?,
            },
            ServerTag::Left => ServerMessage::Left {
                user: need(f.user, "user")?,
                reason: need(f.reason, "reason")?,
                message: f.message,
            },
            ServerTag::Confirm => ServerMessage::Confirm {
                op: need(f.op, "op")?,
                to: f.to,
                recipients: need(f.recipients, "recipients")?,
                stored: f.stored.unwrap_or(false),
            },
            ServerTag::Error => ServerMessage::Error {
                code: {
                    use serde::de::IntoDeserializer as _;
                    let code = need(f.code, "code")?;
                    let de: serde::de::value::StrDeserializer<'_, D::Error> =
                        code.as_str().into_deserializer();
                    ErrorCode::deserialize(de)?
                },
                message: need(f.message, "message")?,
            },
            ServerTag::AwayOk => ServerMessage::AwayOk { text: f.text },
            ServerTag::AwayReply => ServerMessage::AwayReply {
                user: need(f.user, "user")?,
                text: need(f.text, "text")?,
            },
            ServerTag::Whois => ServerMessage::Whois {
                name: need(f.name, "name")?,
                online: need(Either::b(f.online), "online")?,
                online_secs: f.online_secs,
                away: Either::b(f.away),
            },
            ServerTag::Bye => ServerMessage::Bye,
            ServerTag::Shutdown => ServerMessage::Shutdown,
            ServerTag::Room => ServerMessage::Room {
                room: need(f.room, "room")?,
                epoch: need(f.epoch, "epoch")?,
                offset: need(f.offset, "offset")?,
                topic: f.topic.unwrap_or_default(),
                owner: need(f.owner, "owner")?,
                members: need(f.members, "members")?,
                count: f.count,
                backlog: need(f.backlog, "backlog")?,
                ops: f.ops.unwrap_or_default(),
                muted: f.muted.unwrap_or_default(),
                topic_locked: f.topic_locked.unwrap_or(false),
                moderated: f.moderated.unwrap_or(false),
            },
            ServerTag::Parted => ServerMessage::Parted {
                room: need(f.room, "room")?,
            },
            ServerTag::MemberJoined => ServerMessage::MemberJoined {
                room: need(f.room, "room")?,
                user: need(f.user, "user")?,
            },
            ServerTag::MemberLeft => ServerMessage::MemberLeft {
                room: need(f.room, "room")?,
                user: need(f.user, "user")?,
                reason: f.reason,
            },
            ServerTag::RoomMsg => ServerMessage::RoomMsg {
                room: need(f.room, "room")?,
                offset: need(f.offset, "offset")?,
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
                time: need(f.time, "time")?,
                history: f.history.unwrap_or(false),
            },
            ServerTag::Said => ServerMessage::Said {
                room: need(f.room, "room")?,
                offset: need(f.offset, "offset")?,
                time: need(f.time, "time")?,
            },
            ServerTag::RoomList => ServerMessage::RoomList {
                rooms: match f.rooms {
                    Some(Either::A(rooms)) => rooms,
                    Some(Either::B(names)) if names.is_empty() => Vec::new(),
                    _ => return Err(D::Error::missing_field("rooms")),
                },
                count: f.count,
            },
            ServerTag::Names => ServerMessage::Names {
                room: need(f.room, "room")?,
                users: need(f.users, "users")?,
                count: f.count,
                owner: f.owner.unwrap_or_default(),
                ops: f.ops.unwrap_or_default(),
                muted: f.muted.unwrap_or_default(),
            },
            ServerTag::Topic => ServerMessage::Topic {
                room: need(f.room, "room")?,
                by: need(f.by, "by")?,
                text: need(f.text, "text")?,
            },
            ServerTag::HistoryEnd => ServerMessage::HistoryEnd {
                room: need(f.room, "room")?,
                epoch: need(f.epoch, "epoch")?,
                offset: need(f.offset, "offset")?,
                count: need(f.count, "count")?,
                more: need(f.more, "more")?,
            },
            ServerTag::RoomResume => ServerMessage::RoomResume {
                room: need(f.room, "room")?,
                recovered: need(f.recovered, "recovered")?,
                missed: need(f.missed, "missed")?,
                epoch: need(f.epoch, "epoch")?,
                offset: need(f.offset, "offset")?,
            },
            ServerTag::ModOk => ServerMessage::ModOk {
                action: need(f.action, "action")?,
                target: need(f.target, "target")?,
            },
            ServerTag::Notice => ServerMessage::Notice {
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
            },
            ServerTag::InviteCode => ServerMessage::InviteCode {
                code: need(f.code, "code")?,
                expires: need(f.expires, "expires")?,
            },
            ServerTag::AuditLog => ServerMessage::AuditLog {
                entries: need(f.entries, "entries")?,
            },
            ServerTag::BanList => ServerMessage::BanList {
                bans: need(f.bans, "bans")?,
                count: f.count,
            },
            ServerTag::Kicked => ServerMessage::Kicked {
                room: need(f.room, "room")?,
                by: need(f.by, "by")?,
                reason: f.reason,
                banned: f.banned.unwrap_or(false),
                until: f.until,
            },
            ServerTag::RoomRole => ServerMessage::RoomRole {
                room: need(f.room, "room")?,
                user: need(f.user, "user")?,
                role: need(f.role, "role")?,
                by: need(f.by, "by")?,
            },
            ServerTag::MemberMuted => ServerMessage::MemberMuted {
                room: need(f.room, "room")?,
                user: need(f.user, "user")?,
                by: need(f.by, "by")?,
            },
            ServerTag::MemberUnmuted => ServerMessage::MemberUnmuted {
                room: need(f.room, "room")?,
                user: need(f.user, "user")?,
                by: need(f.by, "by")?,
            },
            ServerTag::RoomMode => ServerMessage::RoomMode {
                room: need(f.room, "room")?,
                by: need(f.by, "by")?,
                topic_locked: need(f.topic_locked, "topic_locked")?,
                moderated: need(f.moderated, "moderated")?,
            },
        })
    }
}

/// Decodes a message from the server: the same result as
/// [`decode`]`::<ServerMessage>`, faster for the messages a client in a
/// busy room gets most.
///
/// The reference server writes `public` and `direct` as
/// `{"t":"public","from":"NAME","text":"TEXT"}`. When a message has exactly
/// that shape and neither string holds an escape or a control character,
/// the strings are the bytes between the quotes, so they are read directly.
/// Anything else (other messages, other field orders, whitespace, escapes,
/// invalid UTF-8) goes to serde, which decides.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMessage, MessageError> {
    match decode_chat(bytes) {
        Some(m) => Ok(m),
        None => decode(bytes),
    }
}

pub(super) fn decode_chat(bytes: &[u8]) -> Option<ServerMessage> {
    read_chat(bytes).map(Chat::into_message)
}

/// A chat message read where its bytes lie ([`read_chat`]): nothing is
/// copied or allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chat<'a> {
    /// Public, direct, or to a room.
    pub kind: ChatKind<'a>,
    /// The sender.
    pub from: &'a str,
    /// The text.
    pub text: &'a str,
    /// When the server accepted it (ms since the Unix epoch); always there
    /// for a room message, absent from a `public` or `direct` of a server
    /// that does not stamp them.
    pub time: Option<u64>,
}

/// What kind of chat message a [`Chat`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatKind<'a> {
    /// To everyone online (`public`).
    Public,
    /// To one user, delivered live (`direct` without an offline id).
    Direct,
    /// To a room (`room_msg`).
    Room {
        /// The room.
        room: &'a str,
        /// Its offset in the room.
        offset: u64,
        /// True for a message of the room's history.
        history: bool,
    },
}

impl Chat<'_> {
    /// The same message as [`decode`] gives it.
    #[must_use]
    pub fn into_message(self) -> ServerMessage {
        let (from, text) = (String::from(self.from), String::from(self.text));
        match self.kind {
            ChatKind::Public => ServerMessage::Public {
                from,
                text,
                time: self.time,
            },
            ChatKind::Direct => ServerMessage::Direct {
                from,
                text,
                time: self.time,
                id: None,
                offline: false,
            },
            ChatKind::Room {
                room,
                offset,
                history,
            } => ServerMessage::RoomMsg {
                room: String::from(room),
                offset,
                from,
                text,
                time: self.time.unwrap_or(0),
                history,
            },
        }
    }
}

impl ServerMessage {
    /// The message as a [`Chat`] borrowing its strings, if it is one: a
    /// `public`, a `direct` delivered live (no offline id) or a `room_msg`.
    #[must_use]
    pub fn as_chat(&self) -> Option<Chat<'_>> {
        let (kind, from, text, time) = match self {
            ServerMessage::Public { from, text, time } => (ChatKind::Public, from, text, *time),
            ServerMessage::Direct {
                from,
                text,
                time,
                id: None,
                offline: false,
            } => (ChatKind::Direct, from, text, *time),
            ServerMessage::RoomMsg {
                room,
                offset,
                from,
                text,
                time,
                history,
            } => (
                ChatKind::Room {
                    room,
                    offset: *offset,
                    history: *history,
                },
                from,
                text,
                Some(*time),
            ),
            _ => return None,
        };
        Some(Chat {
            kind,
            from,
            text,
            time,
        })
    }
}

/// Reads a `public`, a live `direct` or a `room_msg` where its bytes lie,
/// when it has the reference server's shape (see [`decode_server`]);
/// `None` for anything else, which [`decode_server`] reads.
#[must_use]
pub fn read_chat(bytes: &[u8]) -> Option<Chat<'_>> {
    // The whole message is checked once. In the server's shape no byte
    // outside a string is a backslash or a control character, so a message
    // with none anywhere has strings that need no decoding (an escape
    // goes to serde); and UTF-8 that is valid as a whole stays valid when
    // cut at its ASCII quotes. No early exit, so that the check runs many
    // bytes at a time.
    if bytes
        .iter()
        .fold(false, |bad, &c| bad | (c == b'\\') | (c < 0x20))
    {
        return None;
    }
    let s = core::str::from_utf8(bytes).ok()?;
    if let Some(rest) = s.strip_prefix(r#"{"t":"room_msg","room":""#) {
        return read_room_msg(rest);
    }
    let (kind, rest) = if let Some(r) = s.strip_prefix(r#"{"t":"public","from":""#) {
        (ChatKind::Public, r)
    } else {
        (
            ChatKind::Direct,
            s.strip_prefix(r#"{"t":"direct","from":""#)?,
        )
    };
    let (from, rest) = string(rest)?;
    let (text, rest) = string(rest.strip_prefix(r#","text":""#)?)?;
    let time = match rest {
        "}" => None,
        _ => Some(plain_u64(
            rest.strip_prefix(r#","time":"#)?
                .strip_suffix('}')?
                .as_bytes(),
        )?),
    };
    Some(Chat {
        kind,
        from,
        text,
        time,
    })
}

/// The rest of a `room_msg` as the reference server writes it (after
/// `{"t":"room_msg","room":"`): room, offset, from, text, time, and
/// `history` only when true.
fn read_room_msg(rest: &str) -> Option<Chat<'_>> {
    /// A JSON integer in plain digits (as [`plain_u64`]) up to the next
    /// character, which must follow: read in the one pass that finds its
    /// end.
    fn number(s: &str) -> Option<(u64, &str)> {
        let b = s.as_bytes();
        let mut n = 0u64;
        let mut end = 0;
        while let Some(&c) = b.get(end)
            && c.is_ascii_digit()
        {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            end += 1;
        }
        if end == 0 || end == b.len() || (end > 1 && b[0] == b'0') {
            return None;
        }
        Some((n, &s[end..]))
    }
    let (room, rest) = string(rest)?;
    let (offset, rest) = number(rest.strip_prefix(r#","offset":"#)?)?;
    let (from, rest) = string(rest.strip_prefix(r#","from":""#)?)?;
    let (text, rest) = string(rest.strip_prefix(r#","text":""#)?)?;
    let (time, rest) = number(rest.strip_prefix(r#","time":"#)?)?;
    let history = match rest {
        "}" => false,
        r#","history":true}"# => true,
        _ => return None,
    };
    Some(Chat {
        kind: ChatKind::Room {
            room,
            offset,
            history,
        },
        from,
        text,
        time: Some(time),
    })
}

/// A string's contents up to its closing quote, and what follows it (the
/// message was checked as a whole by [`read_chat`]: no escapes).
fn string(s: &str) -> Option<(&str, &str)> {
    let end = memchr::memchr(b'"', s.as_bytes())?;
    Some((&s[..end], &s[end + 1..]))
}

/// A JSON integer in plain digits (no sign, no leading zero but for 0
/// itself), if it fits a `u64`.
fn plain_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
