//! Roles and the audit log: who may moderate, and the written record of
//! every moderation action (PROTOCOL.md §5.12).
//!
//! An action's entry is handed to the store before the action's own
//! change, and the store answers in order: once an action is confirmed
//! (`mod_ok`), its entry is on disk too.

use super::writes::Write;
use super::*;
use crate::session::{AuditItem, MAX_AUDIT_PAGE};
use store::AUDIT_MEMORY;

/// What an audit entry says, apart from its id and time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Action<'a> {
    /// Who acts: an account's name as registered.
    pub by: &'a str,
    /// The request's `t`.
    pub action: &'a str,
    /// To whom or what.
    pub target: &'a str,
    /// Why (may be empty).
    pub reason: &'a str,
    /// When the effect ends (ms since the Unix epoch), if it does.
    pub until: Option<u64>,
}

impl Server {
    /// Whether `name` is a server admin ([`ServerConfig::admins`]).
    pub(super) fn is_admin(&self, name: &str) -> bool {
        self.config.admins.contains(&username_key(name))
    }

    /// Whether the session `conn` is an admin's; if not, it is answered
    /// with `error not_permitted` (naming `what`).
    pub(super) fn require_admin(&mut self, conn: u64, name: &str, what: &str) -> bool {
        if self.is_admin(name) {
            return true;
        }
        self.error(
            conn,
            ErrorCode::NotPermitted,
            format!("only server admins may {what}"),
        );
        false
    }

    /// Records an action in the audit log: in memory at once, and on disk
    /// before any store change requested after it. With `answer`, that
    /// session gets `mod_ok` once the entry is on disk (or `error
    /// store_failed`).
    pub(super) fn audit(&mut self, action: Action<'_>, answer: Option<u64>) {
        let entry = AuditEntry {
            id: self.next_audit_id,
            time: self.unix_time(),
            by: action.by.to_string(),
            action: action.action.to_string(),
            target: action.target.to_string(),
            reason: action.reason.to_string(),
            until: action.until,
        };
        self.next_audit_id += 1;
        let then = answer.map(|conn| Write::Audited {
            conn,
            action: entry.action.clone(),
            target: entry.target.clone(),
        });
        self.store(StoreOp::Audit(entry.clone()), then);
        self.remember_audit(entry);
    }

    /// Keeps an entry in memory, forgetting the oldest beyond
    /// [`AUDIT_MEMORY`].
    pub(super) fn remember_audit(&mut self, entry: AuditEntry) {
        if self.audit.len() == AUDIT_MEMORY {
            self.audit.pop_front();
        }
        self.audit.push_back(entry);
    }

    /// `audit`: the latest entries, for admins.
    pub(super) fn on_audit(&mut self, conn: u64, name: &str, limit: Option<u32>) {
        if !self.require_admin(conn, name, "read the audit log") {
            return;
        }
        let limit = limit.unwrap_or(MAX_AUDIT_PAGE).clamp(1, MAX_AUDIT_PAGE) as usize;
        let skip = self.audit.len().saturating_sub(limit);
        let entries = self
            .audit
            .iter()
            .skip(skip)
            .map(|e| AuditItem {
                id: e.id,
                time: e.time,
                by: e.by.clone(),
                action: e.action.clone(),
                target: e.target.clone(),
                reason: e.reason.clone(),
                until: e.until,
            })
            .collect();
        self.send(conn, &ServerMessage::AuditLog { entries });
    }

    /// `notice`: a line from an admin to every session logged in, the
    /// admin's included.
    pub(super) fn on_notice(&mut self, conn: u64, name: &str, text: String) {
        if !self.require_admin(conn, name, "send notices") {
            return;
        }
        if let Err(e) = validate_text(&text) {
            self.error(conn, ErrorCode::InvalidText, e.to_string());
            return;
        }
        self.audit(
            Action {
                by: name,
                action: "notice",
                target: "*",
                reason: &text,
                until: None,
            },
            Some(conn),
        );
        let notice = ServerMessage::Notice {
            from: name.to_string(),
            text,
        };
        self.broadcast(u64::MAX, &notice);
    }

    /// The latest entries of the audit log in memory, oldest first.
    pub fn audit_log(&self) -> impl Iterator<Item = &AuditEntry> {
        self.audit.iter()
    }
}
