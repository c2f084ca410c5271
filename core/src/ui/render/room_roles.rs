//! The plain text of room roles: kicks and bans, operators, mutes, modes;
//! and of the ignore list.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::session::RoomRole;

fn names(list: &[String]) -> String {
    list.iter()
        .map(|n| sanitize(n))
        .collect::<Vec<_>>()
        .join(", ")
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// [`render_plain`] of the events of room roles and of
/// [`ChatEvent::Ignored`].
pub(super) fn plain(event: &ChatEvent) -> String {
    match event {
        ChatEvent::Kicked {
            room,
            by,
            reason,
            banned,
            until,
        } => {
            let what = match (banned, until) {
                (false, _) => "removed you from",
                (true, None) => "banned you from",
                (true, Some(_)) => "banned you for a while from",
            };
            let mut line = format!("-!- {} {what} {}", sanitize(by), sanitize(room));
            if let (true, Some(until)) = (banned, until) {
                line.push_str(&format!(" (until {})", rfc3339(*until)));
            }
            if let Some(r) = reason {
                line.push_str(&format!(": {}", sanitize(r)));
            }
            line
        }
        ChatEvent::RoomRole {
            room,
            user,
            role,
            by,
        } => {
            let what = match role {
                RoomRole::Owner => "is now the owner of",
                RoomRole::Op => "is now an operator of",
                RoomRole::Member => "is no longer an operator of",
                RoomRole::Unknown => "has a new role in",
            };
            format!(
                "-!- {} {what} {} (by {})",
                sanitize(user),
                sanitize(room),
                sanitize(by)
            )
        }
        ChatEvent::MemberMuted {
            room,
            user,
            by,
            muted,
        } => {
            let what = if *muted { "muted" } else { "unmuted" };
            format!(
                "-!- {} {what} {} in {}",
                sanitize(by),
                sanitize(user),
                sanitize(room)
            )
        }
        ChatEvent::RoomMode {
            room,
            by,
            topic_locked,
            moderated,
        } => format!(
            "-!- {} set {}: topic lock {}, moderated {}",
            sanitize(by),
            sanitize(room),
            on_off(*topic_locked),
            on_off(*moderated)
        ),
        ChatEvent::RoomRoles {
            room,
            ops,
            muted,
            topic_locked,
            moderated,
        } => {
            let mut parts = Vec::new();
            if !ops.is_empty() {
                parts.push(format!("operators: {}", names(ops)));
            }
            if !muted.is_empty() {
                parts.push(format!("muted: {}", names(muted)));
            }
            if *topic_locked {
                parts.push("topic locked".into());
            }
            if *moderated {
                parts.push("moderated".into());
            }
            format!("{} {}", sanitize(room), parts.join("; "))
        }
        ChatEvent::Ignored { users } if users.is_empty() => "you ignore nobody".into(),
        ChatEvent::Ignored { users } => format!("you ignore: {}", names(users)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn each_event_is_one_line_of_plain_text() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            plain(&ChatEvent::Kicked {
                room: "#r".into(),
                by: "alice".into(),
                reason: None,
                banned: true,
                until: None,
            }),
            "-!- alice banned you from #r"
        );
        assert_eq!(
            plain(&ChatEvent::RoomRole {
                room: "#r".into(),
                user: "bob".into(),
                role: RoomRole::Member,
                by: "alice".into(),
            }),
            "-!- bob is no longer an operator of #r (by alice)"
        );
        assert_eq!(
            plain(&ChatEvent::MemberMuted {
                room: "#r".into(),
                user: "bob".into(),
                by: "alice".into(),
                muted: false,
            }),
            "-!- alice unmuted bob in #r"
        );
        assert_eq!(
            plain(&ChatEvent::RoomRoles {
                room: "#r".into(),
                ops: s(&["bob", "carol"]),
                muted: vec![],
                topic_locked: false,
                moderated: true,
            }),
            "#r operators: bob, carol; moderated"
        );
        // Names are sanitized: no control characters reach the terminal.
        assert_eq!(
            plain(&ChatEvent::Ignored {
                users: s(&["bob", "x\u{1b}[2J"]),
            }),
            "you ignore: bob, x\u{fffd}[2J"
        );
        assert_eq!(
            plain(&ChatEvent::Ignored { users: vec![] }),
            "you ignore nobody"
        );
    }
}
