//! The rules of names and texts: room names, usernames (and the keys and
//! look-alike skeletons they are compared by), and message texts.

use alloc::string::String;
use core::fmt;

use super::*;

/// Why a room name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomError {
    /// It does not start with `#`.
    NoHash,
    /// Nothing after the `#`, or more than 32 bytes.
    BadLength,
    /// A byte other than `a-z`, `0-9`, `_`, `-`, `.` after the `#`.
    BadCharacter,
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoomError::NoHash => "a room name starts with '#'",
            RoomError::BadLength => "a room name has 1 to 32 characters after the '#'",
            RoomError::BadCharacter => {
                "a room name has only lowercase letters, digits, '_', '-' and '.' after the '#'"
            }
        })
    }
}

/// Checks a room name: `#`, then 1 to 32 of lowercase ASCII letters,
/// digits, `_`, `-` and `.`. Names are compared as bytes (there is no
/// uppercase to fold).
pub fn validate_room(room: &str) -> Result<(), RoomError> {
    let rest = room.strip_prefix('#').ok_or(RoomError::NoHash)?;
    if rest.is_empty() || rest.len() > MAX_ROOM - 1 {
        return Err(RoomError::BadLength);
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(RoomError::BadCharacter);
    }
    Ok(())
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
