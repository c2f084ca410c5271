//! The plain text of moderation answers and of the audit log.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;

/// [`render_plain`] of [`ChatEvent::ModOk`] and [`ChatEvent::Audit`].
pub(super) fn plain(event: &ChatEvent) -> String {
    match event {
        ChatEvent::ModOk { action, target } => {
            format!("done: {} {}", sanitize(action), sanitize(target))
        }
        ChatEvent::Notice { from, text } => {
            format!("-!- notice from {}: {}", sanitize(from), sanitize(text))
        }
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
        _ => String::new(),
    }
}
