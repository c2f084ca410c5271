//! Accounts changed outside the server while it runs: the driver reports
//! what another process (the `chatserver accounts` tool) changed in the
//! user store.

use super::*;

impl Server {
    /// Adds the account `record`, or replaces the account of the same name
    /// (case-insensitive): the users and the look-alike names both learn it.
    /// A replaced password hash applies from the next login on; a session
    /// already logged in stays. A suspension in force in `record` ends the
    /// account's live session at once (as an admin's `suspend` does), and
    /// a suspension set or lifted is written to the audit log, by whoever
    /// the record names (`accounts` for the tool).
    pub fn put_account(&mut self, now: Instant, record: UserRecord) {
        self.now = self.now.max(now);
        let key = username_key(&record.name);
        let before = self.users.get(&key).map(|old| old.suspended.clone());
        if let Some(old) = self.users.get(&key) {
            self.forget_skeleton(&old.name.clone());
        }
        self.skeletons.insert(
            session::username_skeleton(&record.name),
            record.name.clone(),
        );
        let name = record.name.clone();
        let after = record.suspended.clone();
        self.users.insert(key, record);
        if before.flatten() != after {
            match &after {
                Some(s) => self.audit(
                    audit::Action {
                        by: &s.by,
                        action: "suspend",
                        target: &name,
                        reason: &s.reason,
                        until: s.until,
                    },
                    None,
                ),
                None => self.audit(
                    audit::Action {
                        by: "accounts",
                        action: "unsuspend",
                        target: &name,
                        reason: "",
                        until: None,
                    },
                    None,
                ),
            }
        }
        self.enforce_suspension(now, &name);
    }

    /// Forgets the account `name` (case-insensitive); nothing happens if
    /// there is none.
    ///
    /// A session logged in as that account gets `error` `account_deleted`,
    /// is taken offline (the others get `left` `deleted`) and closes like
    /// one that said EX. A session between `user` and the end of its
    /// password check for that account gets the same `error` and is back
    /// in AwaitUser; a check in flight for it is forgotten.
    pub fn remove_account(&mut self, now: Instant, name: &str) {
        self.now = self.now.max(now);
        let key = username_key(name);
        let Some(record) = self.users.remove(&key) else {
            return;
        };
        self.forget_skeleton(&record.name);
        self.audit(
            audit::Action {
                by: "accounts",
                action: "delete",
                target: &record.name,
                reason: "",
                until: None,
            },
            None,
        );
        let message = format!("the account {} was deleted", record.name);
        let mut logged_in = Vec::new();
        let mut logging_in = Vec::new();
        for (&conn, s) in &self.sessions {
            match &s.state {
                SessionState::LoggedIn { name, .. } if username_key(name) == key => {
                    logged_in.push(conn);
                }
                SessionState::AwaitPassword {
                    name,
                    new_user: false,
                    ..
                } if username_key(name) == key => logging_in.push(conn),
                SessionState::Checking {
                    new_user: false,
                    request,
                    ..
                } if self
                    .pending
                    .get(request)
                    .is_some_and(|p| username_key(&p.name) == key) =>
                {
                    logging_in.push(conn);
                }
                _ => {}
            }
        }
        for conn in logged_in {
            self.end_session(
                now,
                conn,
                ErrorCode::AccountDeleted,
                format!("{message}; this session is over"),
                LeaveReason::Deleted,
            );
        }
        for conn in logging_in {
            if let Some(SessionState::Checking { request, .. }) =
                self.sessions.get(&conn).map(|s| &s.state)
            {
                let request = *request;
                if let Some(pending) = self.pending.remove(&request)
                    && let Some(r) = pending.reserved
                {
                    if r.account {
                        self.checking.remove(&key);
                    }
                    self.refund_login_check(now, &key, r);
                }
            }
            self.set_state(conn, SessionState::AwaitUser);
            self.error(
                conn,
                ErrorCode::AccountDeleted,
                format!("{message}; choose a name again"),
            );
            self.process(now, conn);
        }
    }

    /// Removes the look-alike entry of the account `name`, if it is the one
    /// that entry names.
    fn forget_skeleton(&mut self, name: &str) {
        let skeleton = session::username_skeleton(name);
        if self.skeletons.get(&skeleton).is_some_and(|n| n == name) {
            self.skeletons.remove(&skeleton);
        }
    }
}
