//! Suspending accounts and ending sessions (PROTOCOL.md §5.12): the
//! `suspend`, `unsuspend` and `disconnect` requests of server admins, the
//! refusal of a suspended account's login, and the end of its live
//! session.
//!
//! A suspension is a change to the account in the user store
//! ([`Request::Account`]): it takes effect, and is confirmed, once it is
//! on disk. [`Server::enforce_suspension`] ends the live session of an
//! account whose record says it is suspended; whatever changes an account
//! record calls it.

use super::audit::Action;
use super::writes::Write;
use super::*;
use crate::session::{MAX_REASON, MAX_SUSPEND_SECS};

/// Whether `s` is still in force at `unix_ms` (ms since the Unix epoch):
/// one without an end is, one whose end has come is not.
pub(super) fn in_force(s: &Suspension, unix_ms: u64) -> bool {
    s.until.is_none_or(|until| until > unix_ms)
}

/// What a suspended user is told: until when, by whom and why.
pub(super) fn suspension_message(name: &str, s: &Suspension) -> String {
    let mut m = match s.until {
        Some(until) => format!(
            "the account {name} is suspended until {}",
            crate::ui::rfc3339(until)
        ),
        None => format!("the account {name} is suspended until a server admin lifts it"),
    };
    if !s.by.is_empty() {
        m.push_str(&format!(" (by {})", s.by));
    }
    if !s.reason.is_empty() {
        m.push_str(&format!(": {}", s.reason));
    }
    m
}

/// Checks an optional reason: text of at most [`MAX_REASON`] bytes (empty
/// is no reason).
fn check_reason(reason: Option<String>) -> Result<String, String> {
    let reason = reason.unwrap_or_default();
    if reason.is_empty() {
        return Ok(reason);
    }
    validate_text(&reason).map_err(|e| format!("reason: {e}"))?;
    if reason.len() > MAX_REASON {
        return Err(format!(
            "the reason is {} bytes; at most {MAX_REASON} are allowed",
            reason.len()
        ));
    }
    Ok(reason)
}

impl Server {
    /// The suspension of the account `key` (by [`username_key`]) that is in
    /// force now, if any.
    pub(super) fn suspension_in_force(&self, key: &str) -> Option<&Suspension> {
        let now = self.unix_time();
        self.users
            .get(key)
            .and_then(|u| u.suspended.as_ref())
            .filter(|s| in_force(s, now))
    }

    /// Ends the live session of `name` if its account is suspended now:
    /// the session gets `error suspended` saying until when and why, and
    /// closes like a replaced one; the others get `left` `suspended`. Call
    /// it whenever an account record changes.
    pub(super) fn enforce_suspension(&mut self, now: Instant, name: &str) {
        let key = username_key(name);
        let Some(s) = self.suspension_in_force(&key) else {
            return;
        };
        let Some(&(conn, ref online_name)) = self.online.get(&key) else {
            return;
        };
        let message = suspension_message(online_name, s);
        self.end_session(
            now,
            conn,
            ErrorCode::Suspended,
            message,
            LeaveReason::Suspended,
        );
    }

    /// Ends a logged-in session on the server's initiative: it is told
    /// why (`error code`), taken offline (the others get `left` with
    /// `reason`), and closes once its last messages are acknowledged, or
    /// after the linger time.
    pub(super) fn end_session(
        &mut self,
        now: Instant,
        conn: u64,
        code: ErrorCode,
        message: String,
        reason: LeaveReason,
    ) {
        self.error(conn, code, message);
        self.logout(conn, reason);
        self.set_state(
            conn,
            SessionState::Closing {
                until: now + self.config.linger,
            },
        );
        self.process(now, conn);
    }

    /// Ends the session `old`, whose user logged in again (here or on
    /// another node).
    pub(super) fn end_replaced(&mut self, now: Instant, old: u64) {
        self.end_session(
            now,
            old,
            ErrorCode::Replaced,
            "you logged in from another place; this session is over".to_string(),
            LeaveReason::Replaced,
        );
    }

    /// `suspend`: for admins, of an account that is not an admin's.
    pub(super) fn on_suspend(
        &mut self,
        conn: u64,
        by: &str,
        name: &str,
        secs: Option<u64>,
        reason: Option<String>,
    ) {
        if !self.require_admin(conn, by, "suspend accounts") {
            return;
        }
        let reason = match check_reason(reason) {
            Ok(r) => r,
            Err(e) => {
                self.error(conn, ErrorCode::InvalidText, e);
                return;
            }
        };
        if let Some(s) = secs
            && !(1..=MAX_SUSPEND_SECS).contains(&s)
        {
            self.error(
                conn,
                ErrorCode::BadMessage,
                format!(
                    "secs must be 1 to {MAX_SUSPEND_SECS}; leave it out to suspend until lifted"
                ),
            );
            return;
        }
        let Some(name) = self.account_name(conn, name) else {
            return;
        };
        if self.is_admin(&name) {
            self.error(
                conn,
                ErrorCode::NotPermitted,
                format!("{name} is a server admin; admins cannot be suspended"),
            );
            return;
        }
        let until = secs.map(|s| self.unix_time().saturating_add(s.saturating_mul(1000)));
        let op = AccountOp::Suspend {
            name,
            suspension: Suspension {
                until,
                reason,
                by: by.to_string(),
            },
        };
        self.change_account(conn, by, op);
    }

    /// `unsuspend`: for admins; lifting a suspension the account does not
    /// have changes nothing and is confirmed all the same.
    pub(super) fn on_unsuspend(&mut self, conn: u64, by: &str, name: &str) {
        if !self.require_admin(conn, by, "lift suspensions") {
            return;
        }
        let Some(name) = self.account_name(conn, name) else {
            return;
        };
        self.change_account(conn, by, AccountOp::Unsuspend { name });
    }

    /// `disconnect`: for admins, of a user who is online.
    pub(super) fn on_disconnect(
        &mut self,
        now: Instant,
        conn: u64,
        by: &str,
        name: &str,
        reason: Option<String>,
    ) {
        if !self.require_admin(conn, by, "end sessions") {
            return;
        }
        let reason = match check_reason(reason) {
            Ok(r) => r,
            Err(e) => {
                self.error(conn, ErrorCode::InvalidText, e);
                return;
            }
        };
        let key = username_key(name);
        let Some((target, name)) = self.online.get(&key).cloned() else {
            let (code, message) = match self.users.get(&key) {
                Some(u) => (ErrorCode::NotOnline, format!("{} is not online", u.name)),
                None => (
                    ErrorCode::UnknownUser,
                    format!("no account is named {name}"),
                ),
            };
            self.error(conn, code, message);
            return;
        };
        let mut message = format!("a server admin ({by}) ended this session");
        if !reason.is_empty() {
            message.push_str(&format!(": {reason}"));
        }
        self.audit(
            Action {
                by,
                action: "disconnect",
                target: &name,
                reason: &reason,
                until: None,
            },
            Some(conn),
        );
        self.end_session(
            now,
            target,
            ErrorCode::Disconnected,
            message,
            LeaveReason::Disconnected,
        );
    }

    /// The registered spelling of the account `name`; if there is none,
    /// `conn` is answered `error unknown_user`.
    fn account_name(&mut self, conn: u64, name: &str) -> Option<String> {
        match self.users.get(&username_key(name)) {
            Some(u) => Some(u.name.clone()),
            None => {
                self.error(
                    conn,
                    ErrorCode::UnknownUser,
                    format!("no account is named {name}"),
                );
                None
            }
        }
    }

    /// Hands a change of an account to the user store; once it is on disk,
    /// [`Server::account_stored`] applies it.
    fn change_account(&mut self, conn: u64, by: &str, op: AccountOp) {
        let id = self.next_request;
        self.next_request += 1;
        self.writes.insert(
            id,
            Write::Account {
                conn,
                by: by.to_string(),
                op: op.clone(),
            },
        );
        self.requests.push_back(Request::Account { id, op });
    }

    /// An account change is on disk: the server's record follows it, a
    /// suspended account's session ends, and the change is written to the
    /// audit log, whose entry on disk answers the admin (`mod_ok`).
    pub(super) fn account_stored(&mut self, conn: u64, by: &str, op: AccountOp) {
        let now = self.now;
        let (action, name, reason, until) = match op {
            AccountOp::Suspend { name, suspension } => {
                let (reason, until) = (suspension.reason.clone(), suspension.until);
                if let Some(u) = self.users.get_mut(&username_key(&name)) {
                    u.suspended = Some(suspension);
                }
                ("suspend", name, reason, until)
            }
            AccountOp::Unsuspend { name } => {
                if let Some(u) = self.users.get_mut(&username_key(&name)) {
                    u.suspended = None;
                }
                ("unsuspend", name, String::new(), None)
            }
        };
        self.enforce_suspension(now, &name);
        self.audit(
            Action {
                by,
                action,
                target: &name,
                reason: &reason,
                until,
            },
            Some(conn),
        );
        self.process_later(conn);
    }

    /// After a correct password: whether the account is suspended now, in
    /// which case the session is answered `login_failed suspended` (and
    /// may try again).
    pub(super) fn refuse_suspended(
        &mut self,
        conn: u64,
        addr: Option<SocketAddr>,
        name: &str,
    ) -> bool {
        let Some(s) = self.suspension_in_force(&username_key(name)) else {
            return false;
        };
        let message = suspension_message(name, s);
        self.login_failed(conn, addr, name, LoginFailure::Suspended, message);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspension_is_in_force_until_its_end() {
        let s = |until| Suspension {
            until,
            reason: String::new(),
            by: "root".into(),
        };
        assert!(in_force(&s(None), u64::MAX));
        assert!(in_force(&s(Some(1_000)), 999));
        assert!(!in_force(&s(Some(1_000)), 1_000));
    }

    #[test]
    fn the_message_says_until_when_by_whom_and_why() {
        let s = Suspension {
            until: Some(1_780_272_000_000),
            reason: "spam".into(),
            by: "root".into(),
        };
        assert_eq!(
            suspension_message("bob", &s),
            "the account bob is suspended until 2026-06-01T00:00:00.000Z (by root): spam"
        );
        let forever = Suspension {
            until: None,
            reason: String::new(),
            by: "root".into(),
        };
        assert_eq!(
            suspension_message("bob", &forever),
            "the account bob is suspended until a server admin lifts it (by root)"
        );
    }

    #[test]
    fn a_reason_follows_the_text_rules_and_the_limit() {
        assert_eq!(check_reason(None), Ok(String::new()));
        assert_eq!(check_reason(Some("spam".into())), Ok("spam".into()));
        assert!(check_reason(Some("a\u{7}".into())).is_err());
        assert!(check_reason(Some("x".repeat(MAX_REASON + 1))).is_err());
    }
}
