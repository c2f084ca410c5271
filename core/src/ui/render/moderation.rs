//! The plain text of moderation answers, the audit log and the address
//! bans.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;

/// [`render_plain`] of [`ChatEvent::ModOk`], [`ChatEvent::Notice`],
/// [`ChatEvent::Audit`] and [`ChatEvent::Bans`].
pub(super) fn plain(event: &ChatEvent) -> String {
    match event {
        ChatEvent::ModOk { action, target } => {
            format!("done: {} {}", sanitize(action), sanitize(target))
        }
        ChatEvent::Notice { from, text } => {
            format!("-!- notice from {}: {}", sanitize(from), sanitize(text))
        }
        ChatEvent::InviteCode { code, expires } => format!(
            "invite code {} (single use, until {})",
            sanitize(code),
            rfc3339(*expires)
        ),
        ChatEvent::Audit { entries } if entries.is_empty() => "the audit log is empty".into(),
        ChatEvent::Audit { entries } => {
            let mut lines = Vec::with_capacity(entries.len() + 1);
            lines.push(format!("audit log, the latest {}:", entries.len()));
            for e in entries {
                let mut line = format!(
                    "#{} {} {} {} {}",
                    e.id,
                    rfc3339(e.time),
                    sanitize(&e.by),
                    sanitize(&e.action),
                    sanitize(&e.target)
                );
                if let Some(until) = e.until {
                    line.push_str(&format!(" until {}", rfc3339(until)));
                }
                if !e.reason.is_empty() {
                    line.push_str(&format!(": {}", sanitize(&e.reason)));
                }
                lines.push(line);
            }
            lines.join("\n")
        }
        ChatEvent::Bans { bans, .. } if bans.is_empty() => "no address is banned".into(),
        ChatEvent::Bans { bans, count } => {
            let mut lines = Vec::with_capacity(bans.len() + 2);
            lines.push(format!("address bans: {}", bans.len()));
            for b in bans {
                let mut line = format!(
                    "{} by {} at {}",
                    sanitize(&b.range),
                    sanitize(&b.by),
                    rfc3339(b.time)
                );
                match b.until {
                    Some(until) => line.push_str(&format!(", until {}", rfc3339(until))),
                    None => line.push_str(", until lifted"),
                }
                if !b.reason.is_empty() {
                    line.push_str(&format!(": {}", sanitize(&b.reason)));
                }
                lines.push(line);
            }
            if let (Some(total), Some(last)) = (count, bans.last()) {
                lines.push(format!(
                    "{} more: /bans {}",
                    (*total as usize).saturating_sub(bans.len()),
                    sanitize(&last.range)
                ));
            }
            lines.join("\n")
        }
        _ => String::new(),
    }
}
