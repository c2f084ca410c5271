//! The plain text of room events and of direct messages that waited, and
//! the times of stored messages.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::*;

/// Milliseconds since the Unix epoch as RFC 3339 UTC text.
pub(super) fn as_rfc3339<S: serde::Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// [`as_rfc3339`] of a time that may be absent (skipped then).
pub(super) fn as_rfc3339_opt<S: serde::Serializer>(
    ms: &Option<u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// Days since 1970-01-01 as (year, month, day) of the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the Unix epoch as `2026-12-03T12:03:07.250Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil(i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2));
    let rest = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms % 1000
    )
}

/// The UTC time of day of a message sent at `ms` (since the Unix epoch),
/// as `12:03`.
pub fn utc_clock(ms: u64) -> String {
    let rest = ms / 1000 % 86_400;
    format!("{:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

/// [`render_plain`] of the events of rooms and of
/// [`ChatEvent::OfflineDirect`].
pub(super) fn plain(event: &ChatEvent) -> String {
    match event {
        ChatEvent::OfflineDirect {
            from, text, sent, ..
        } => format!(
            "[DM from {}] ({}, while you were away) {}",
            sanitize(from),
            utc_clock(*sent),
            sanitize(text)
        ),
        ChatEvent::RoomMessage {
            room,
            from,
            text,
            action,
            history,
            sent,
            ..
        } => {
            let stamp = if *history {
                format!(" {}", utc_clock(*sent))
            } else {
                String::new()
            };
            if *action {
                format!(
                    "[{}{stamp}] * {} {}",
                    sanitize(room),
                    sanitize(from),
                    sanitize(text)
                )
            } else {
                format!(
                    "[{}{stamp}] <{}> {}",
                    sanitize(room),
                    sanitize(from),
                    sanitize(text)
                )
            }
        }
        ChatEvent::RoomJoined {
            room,
            topic,
            members,
            count,
            ..
        } => format!(
            "* you joined {}; members: {}{}{}",
            sanitize(room),
            list(members),
            more(members.len(), *count),
            if topic.is_empty() {
                String::new()
            } else {
                format!("; topic: {}", sanitize(topic))
            }
        ),
        ChatEvent::Parted { room } => format!("* you left {}", sanitize(room)),
        ChatEvent::MemberJoined { room, user } => {
            format!("* {} joined {}", sanitize(user), sanitize(room))
        }
        ChatEvent::MemberLeft { room, user, reason } => match reason {
            Some(r) => format!(
                "* {} left {} ({})",
                sanitize(user),
                sanitize(room),
                sanitize(r)
            ),
            None => format!("* {} left {}", sanitize(user), sanitize(room)),
        },
        ChatEvent::Said { room, offset, .. } => {
            format!("ok: message stored in {} (offset {offset})", sanitize(room))
        }
        ChatEvent::RoomList { rooms, count } => {
            if rooms.is_empty() {
                return "rooms: none (/join #name makes one)".to_string();
            }
            let v: Vec<String> = rooms
                .iter()
                .map(|r| {
                    let topic = if r.topic.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", sanitize(&r.topic))
                    };
                    format!("{} ({}){topic}", sanitize(&r.room), r.members)
                })
                .collect();
            format!("rooms: {}{}", v.join(", "), more(rooms.len(), *count))
        }
        ChatEvent::Names { room, users, count } => format!(
            "members of {}: {}{}",
            sanitize(room),
            list(users),
            more(users.len(), *count)
        ),
        ChatEvent::Topic {
            room,
            by: Some(by),
            text,
        } if text.is_empty() => {
            format!("* {} cleared the topic of {}", sanitize(by), sanitize(room))
        }
        ChatEvent::Topic {
            room,
            by: Some(by),
            text,
        } => format!(
            "* {} set the topic of {}: {}",
            sanitize(by),
            sanitize(room),
            sanitize(text)
        ),
        ChatEvent::Topic { room, text, .. } if text.is_empty() => {
            format!("{} has no topic", sanitize(room))
        }
        ChatEvent::Topic { room, text, .. } => {
            format!("topic of {}: {}", sanitize(room), sanitize(text))
        }
        ChatEvent::HistoryEnd { room, count, more } => format!(
            "(end of history of {}: {count} message{}{})",
            sanitize(room),
            plural(*count),
            if *more { "; older ones exist" } else { "" }
        ),
        ChatEvent::Resumed {
            room,
            recovered: true,
            missed,
        } => format!(
            "resumed {}: {missed} missed message{}",
            sanitize(room),
            if *missed == 1 { "" } else { "s" }
        ),
        ChatEvent::Resumed {
            room, missed: 0, ..
        } => format!(
            "history gap in {} (its history was reset; /history {} shows what it has)",
            sanitize(room),
            sanitize(room)
        ),
        ChatEvent::Resumed { room, missed, .. } => format!(
            "history gap in {}: {missed} message{} missed (/history {} shows the latest)",
            sanitize(room),
            if *missed == 1 { "" } else { "s" },
            sanitize(room)
        ),
        _ => String::new(),
    }
}
