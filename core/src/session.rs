//! The session layer: the messages a client and the server exchange over a
//! reliable channel, and the rules for usernames and message text.
//!
//! Every message is one JSON object with a `"t"` field naming its type,
//! encoded as UTF-8 and sent as one reliable-channel message.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Longest username, in bytes.
pub const MAX_USERNAME: usize = 32;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;
/// Longest chat text (public or direct), in bytes of UTF-8.
pub const MAX_TEXT: usize = 60_000;
/// Most names in an online list (`login_ok`, `online`): 1,000. Beyond it
/// the list is cut and says how many are online in all, so that the
/// answer stays one modest message however crowded the server is.
pub const MAX_LISTED: usize = 1000;

/// An operation of the assignment's menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Public message to everyone online.
    PM,
    /// Direct message to one online user.
    DM,
    /// Exit.
    EX,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::PM => "PM",
            Operation::DM => "DM",
            Operation::EX => "EX",
        })
    }
}

/// A message from a client to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Step 2: the username to log in as or register.
    User {
        /// The username.
        name: String,
    },
    /// Step 3: the password for the username.
    Password {
        /// The password.
        password: String,
        /// A device token from an earlier `login_ok` of this account
        /// (optional): exempts the check from the per-account limit on
        /// failed logins (PROTOCOL.md §5.8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    /// Starts an operation (PM, DM or EX).
    Op {
        /// The operation.
        op: Operation,
        /// With EX: why the user leaves, shown to the others with `left`
        /// (optional; valid text of at most [`MAX_QUIT_MESSAGE`] bytes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The text of a public message, after `Op PM` was acknowledged.
    Pm {
        /// The text.
        text: String,
    },
    /// A direct message, after `Op DM` was answered with the online list.
    Dm {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
    },
    /// Asks for the online list at any time after login.
    Who,
    /// Marks the user away, with a text that others are shown (a DM's
    /// sender, `whois`); without `text`, or with an empty one, the user is
    /// back. Answered by [`ServerMessage::AwayOk`].
    Away {
        /// Why the user is away: text (see [`validate_text`]) of at most
        /// [`MAX_AWAY`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Asks about one user: answered by [`ServerMessage::Whois`], or by
    /// `error` `unknown_user` when no account has that name.
    Whois {
        /// The username (case-insensitive).
        name: String,
    },
}

/// Longest away text (`away`'s `text`), in bytes: 200.
pub const MAX_AWAY: usize = 200;

/// Longest reason a user may give when leaving (`op EX`'s `reason`), in
/// bytes: 200.
pub const MAX_QUIT_MESSAGE: usize = 200;

/// A limit on the public and direct messages of a session: `burst` at once,
/// then one more every `interval_ms` milliseconds (a token bucket that
/// starts full when the session logs in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRate {
    /// Messages that may be sent at once.
    pub burst: u32,
    /// Milliseconds to earn one more.
    pub interval_ms: u32,
}

/// A message from the server to a client.
///
/// Decoded through [`FlatServerMessage`] rather than serde's internally
/// tagged enums, which first copy every field into a buffer of their own:
/// a client receiving a busy room decodes one of these per message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answers `User`: whether the name is new (will be registered) or
    /// existing, and asks for the password.
    PasswordRequired {
        /// The username as the server will use it.
        name: String,
        /// True when the password will register a new account.
        new_user: bool,
    },
    /// The login succeeded.
    LoginOk {
        /// The username.
        name: String,
        /// True when the account was just created.
        new_user: bool,
        /// Who is online now, the new user included: the first
        /// [`MAX_LISTED`] names.
        online: Vec<String>,
        /// How many are online, when that is more than `online` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// A device token for this account, to keep and present with the
        /// password next time (PROTOCOL.md §5.8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// The session's limit on public and direct messages, so that a
        /// client can pace what its user types instead of having it
        /// refused (PROTOCOL.md §5.6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<MessageRate>,
    },
    /// The login failed; the client may send `Password` (or `User`) again.
    LoginFailed {
        /// Why.
        reason: LoginFailure,
        /// A sentence for the user.
        message: String,
    },
    /// Acknowledges `Op PM`: the client may send `Pm`.
    OpOk {
        /// The operation acknowledged.
        op: Operation,
    },
    /// The online users: answers `Op DM` and `Who`.
    Online {
        /// Usernames, sorted case-insensitively: the first
        /// [`MAX_LISTED`].
        users: Vec<String>,
        /// How many are online, when that is more than `users` lists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// Those of `users` who are away, in the same order (absent when
        /// none is).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<String>,
    },
    /// A public message relayed from another user.
    Public {
        /// The sender.
        from: String,
        /// The text.
        text: String,
    },
    /// A direct message from another user.
    Direct {
        /// The sender.
        from: String,
        /// The text.
        text: String,
    },
    /// A user logged in.
    Joined {
        /// Who.
        user: String,
    },
    /// A user left.
    Left {
        /// Who.
        user: String,
        /// Why: `"exit"`, `"timeout"`, `"replaced"` (logged in again
        /// elsewhere), `"too slow"` (did not keep up), `"error"` or
        /// `"shutdown"`.
        reason: String,
        /// With `exit`: what the user said when leaving, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Confirms a PM or DM.
    Confirm {
        /// The operation confirmed.
        op: Operation,
        /// For a DM, the recipient.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// How many users the message was delivered to.
        recipients: u32,
    },
    /// A request was refused.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
    /// Answers `Away`: the user's away text now (`None`: back).
    AwayOk {
        /// The away text, or `None` when the user is back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// The recipient of a direct message is away: sent to its sender after
    /// the `Confirm` (the message was delivered all the same).
    AwayReply {
        /// The recipient.
        user: String,
        /// The recipient's away text.
        text: String,
    },
    /// Answers `Whois`.
    Whois {
        /// The username, as registered.
        name: String,
        /// Whether the user is online.
        online: bool,
        /// When online: for how many seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        online_secs: Option<u64>,
        /// When online and away: the away text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// Answers `Op EX`: the session is over.
    Bye,
    /// The server is shutting down; the session is over.
    Shutdown,
}

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
    code: Option<ErrorCode>,
    device: Option<String>,
    rate: Option<MessageRate>,
    away: Option<Either<Vec<String>, String>>,
    online_secs: Option<u64>,
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
            },
            ServerTag::LoginOk => ServerMessage::LoginOk {
                name: need(f.name, "name")?,
                new_user: need(f.new_user, "new_user")?,
                online: need(Either::a(f.online), "online")?,
                count: f.count,
                device: f.device,
                rate: f.rate,
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
            },
            ServerTag::Direct => ServerMessage::Direct {
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
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
            },
            ServerTag::Error => ServerMessage::Error {
                code: need(f.code, "code")?,
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
        })
    }
}

/// Why a login failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// The password does not match the account.
    WrongPassword,
    /// The password is empty or too long.
    InvalidPassword,
    /// The server could not store the new account; try again later.
    StoreFailed,
    /// The server is too busy to check passwords; try again later.
    Busy,
    /// Too many failed logins for this account or from this address; wait.
    Throttled,
    /// The last wrong password this connection may try: the server closes
    /// it (a new connection may try again, within the limits).
    TooManyAttempts,
    /// A reason this version does not know, from a newer server: the
    /// `message` says what happened; the login failed all the same.
    #[serde(other)]
    Unknown,
}

/// What went wrong with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message could not be parsed.
    BadMessage,
    /// The username breaks the username rules.
    InvalidUsername,
    /// Someone is registering this name right now.
    UsernameBusy,
    /// The operation needs a login first.
    NotLoggedIn,
    /// Already logged in.
    AlreadyLoggedIn,
    /// `Pm`/`Dm` without the operation first. Sent by servers before
    /// `pm` and `dm` were accepted on their own; this one never sends it.
    NoOperation,
    /// The text is empty, too long or has control characters.
    InvalidText,
    /// DM to a name with no account.
    UnknownUser,
    /// DM to a user who is not online.
    NotOnline,
    /// Too many requests; slow down.
    RateLimited,
    /// The server is busy with this session (a password check is running)
    /// or at a limit.
    Busy,
    /// The user logged in again from another place: this session is over
    /// (the server closes it after this message).
    Replaced,
    /// A code this version does not know, from a newer server: the
    /// `message` says what happened.
    #[serde(other)]
    Unknown,
}

/// Why a username was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernameError {
    /// Empty.
    Empty,
    /// Longer than [`MAX_USERNAME`] bytes.
    TooLong,
    /// Has a character other than ASCII letters, digits, `_`, `-`, `.`.
    BadCharacter(char),
    /// Does not start with a letter or digit.
    BadStart,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsernameError::Empty => f.write_str("username is empty"),
            UsernameError::TooLong => write!(f, "username is longer than {MAX_USERNAME} bytes"),
            UsernameError::BadCharacter(c) => write!(
                f,
                "username has the character {c:?}; use letters, digits, '_', '-' and '.'"
            ),
            UsernameError::BadStart => f.write_str("username must start with a letter or digit"),
        }
    }
}

/// Checks the username rules: 1 to 32 bytes of ASCII letters, digits, `_`,
/// `-` and `.`, starting with a letter or digit. Names are unique without
/// regard to case.
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.len() > MAX_USERNAME {
        return Err(UsernameError::TooLong);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(UsernameError::BadCharacter(c));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(UsernameError::BadStart);
    }
    Ok(())
}

/// The form of a username used to compare names: ASCII lowercase.
pub fn username_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The confusable skeleton of a username: two names with the same
/// skeleton look alike, and a new account may not take a name whose
/// skeleton an existing account has (PROTOCOL.md §5.2). The rule:
///
/// * ASCII case is folded (`Alice` is `alice`);
/// * `i`, `l`, `1` (and `I`, `L`) are one letter; `o` and `0` are one;
///   `rn` reads as `m`, `vv` as `w`;
/// * `.`, `-` and `_` are one separator; a run of separators counts as one,
///   and separators at the start or the end are dropped (`bob.` is `bob`).
pub fn username_skeleton(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        folded.push(match c {
            'i' | '1' | '|' => 'l',
            '0' => 'o',
            '.' | '-' | '_' => '_',
            c => c,
        });
    }
    let folded = folded.replace("rn", "m").replace("vv", "w");
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Why a chat text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// Empty.
    Empty,
    /// Longer than [`MAX_TEXT`] bytes.
    TooLong(usize),
    /// Has a control character (C0, DEL or C1), which could drive the
    /// recipient's terminal.
    ControlCharacter,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Empty => f.write_str("message is empty"),
            TextError::TooLong(n) => {
                write!(f, "message of {n} bytes is longer than {MAX_TEXT} bytes")
            }
            TextError::ControlCharacter => f.write_str("message has control characters"),
        }
    }
}

/// Checks a chat text: 1 to [`MAX_TEXT`] bytes, no control characters.
pub fn validate_text(text: &str) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > MAX_TEXT {
        return Err(TextError::TooLong(text.len()));
    }
    if text.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(())
}

/// Encodes a message as JSON bytes.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing these plain enums to a Vec cannot fail: no maps with
    // non-string keys, no I/O.
    serde_json::to_vec(message).unwrap_or_default()
}

/// Why a session message could not be decoded: not JSON, not an object of
/// a known type, a missing or mistyped field. The text says what and where
/// (for the `bad_message` error sent back, and for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError(String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Error> for MessageError {
    fn from(e: serde_json::Error) -> Self {
        MessageError(alloc::string::ToString::to_string(&e))
    }
}

/// Decodes a message from JSON bytes.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, MessageError> {
    Ok(serde_json::from_slice(bytes)?)
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

fn decode_chat(bytes: &[u8]) -> Option<ServerMessage> {
    /// The bytes up to the closing quote, if none of them needs decoding.
    fn plain(b: &[u8]) -> Option<(&str, &[u8])> {
        let end = memchr::memchr(b'"', b)?;
        let s = &b[..end];
        // No early exit, so that the check runs many bytes at a time.
        if s.iter()
            .fold(false, |bad, &c| bad | (c == b'\\') | (c < 0x20))
        {
            return None;
        }
        Some((core::str::from_utf8(s).ok()?, &b[end + 1..]))
    }
    let (public, rest) = if let Some(r) = bytes.strip_prefix(br#"{"t":"public","from":""#) {
        (true, r)
    } else {
        (false, bytes.strip_prefix(br#"{"t":"direct","from":""#)?)
    };
    let (from, rest) = plain(rest)?;
    let (text, rest) = plain(rest.strip_prefix(br#","text":""#)?)?;
    if rest != b"}" {
        return None;
    }
    let (from, text) = (String::from(from), String::from(text));
    Some(if public {
        ServerMessage::Public { from, text }
    } else {
        ServerMessage::Direct { from, text }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
            },
            ServerMessage::LoginOk {
                name: s("a"),
                new_user: false,
                online: vec![s("a")],
                count: Some(5000),
                device: None,
                rate: None,
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
            },
            ServerMessage::Direct {
                from: s("b"),
                text: s("x"),
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
            },
            ServerMessage::Confirm {
                op: Operation::PM,
                to: None,
                recipients: 0,
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
            decode::<ServerMessage>(br#"{"text":"x","later":[1,{}],"from":"a","t":"public"}"#)
                .unwrap(),
            ServerMessage::Public {
                from: s("a"),
                text: s("x")
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
        // Every prefix and every one-byte change of a chat message too.
        let base = br#"{"t":"direct","from":"alice","text":"hi there"}"#;
        assert!(decode_chat(base).is_some(), "the fast path reads it");
        assert!(decode_chat(cases[1]).is_none(), "escapes go to serde");
        for n in 0..=base.len() {
            assert_eq!(
                decode_server(&base[..n]).ok(),
                decode::<ServerMessage>(&base[..n]).ok()
            );
        }
        for i in 0..base.len() {
            for b in [0u8, b'"', b'\\', b' ', b'}', 0x80, b'x'] {
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
}
