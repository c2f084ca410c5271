//! Login and registration: session states, password work requested from
//! the driver and its results, and the end of a session.

use super::*;

impl Server {
    /// Handles the result of a [`Request`].
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        self.now = self.now.max(now);
        let id = match &response {
            Response::Stored { .. }
            | Response::History { .. }
            | Response::Appended { .. }
            | Response::RoomFound { .. } => {
                self.handle_store_response(now, response);
                return;
            }
            Response::Unavailable { id }
                if self.writes.contains_key(id) || self.reads.contains_key(id) =>
            {
                self.handle_store_response(now, response);
                return;
            }
            Response::Registered { id, .. }
            | Response::Verified { id, .. }
            | Response::Unavailable { id } => *id,
        };
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let key = username_key(&pending.name);
        let conn = pending.connection_id;
        if let Some(code) = pending.invite.clone() {
            let stored = matches!(response, Response::Registered { result: Ok(_), .. });
            self.settle_invite(code, stored);
        }
        if let Some(r) = pending.reserved {
            if r.account {
                self.checking.remove(&key);
            }
            // A wrong password keeps the tokens taken when it was submitted.
            if !matches!(response, Response::Verified { ok: false, .. }) {
                self.refund_login_check(now, &key, r);
            }
        }
        let (new_user, failures) = match self.sessions.get(&conn).map(|s| &s.state) {
            Some(SessionState::Checking {
                request,
                new_user,
                failures,
                ..
            }) if *request == id => (*new_user, *failures),
            _ => {
                // The session is gone; a stored account still counts.
                if let Response::Registered { result: Ok(h), .. } = response {
                    self.registering.remove(&key);
                    self.skeletons.insert(
                        session::username_skeleton(&pending.name),
                        pending.name.clone(),
                    );
                    self.users.insert(
                        key,
                        UserRecord {
                            name: pending.name,
                            password_hash: h,
                            suspended: None,
                        },
                    );
                } else {
                    self.registering.remove(&key);
                }
                return;
            }
        };
        let addr = self.sessions.get(&conn).map(|s| s.addr);
        match response {
            Response::Registered { result: Ok(h), .. } => {
                self.registering.remove(&key);
                self.skeletons.insert(
                    session::username_skeleton(&pending.name),
                    pending.name.clone(),
                );
                self.users.insert(
                    key,
                    UserRecord {
                        name: pending.name.clone(),
                        password_hash: h,
                        suspended: None,
                    },
                );
                self.login_success(now, conn, pending.name, true);
            }
            Response::Registered { result: Err(e), .. } => {
                self.registering.remove(&key);
                self.set_state(
                    conn,
                    SessionState::AwaitPassword {
                        name: pending.name.clone(),
                        new_user: true,
                        failures,
                    },
                );
                self.login_failed(
                    conn,
                    addr,
                    &pending.name,
                    LoginFailure::StoreFailed,
                    format!("the server could not store the new account ({e}); try again"),
                );
            }
            Response::Verified { ok: true, .. } => {
                // Only someone who knows the password learns of a
                // suspension.
                if self.refuse_suspended(conn, addr, &pending.name) {
                    self.set_state(
                        conn,
                        SessionState::AwaitPassword {
                            name: pending.name,
                            new_user,
                            failures,
                        },
                    );
                } else {
                    self.login_success(now, conn, pending.name, new_user);
                }
            }
            // Answered above, never pending here.
            Response::Stored { .. }
            | Response::History { .. }
            | Response::Appended { .. }
            | Response::RoomFound { .. } => {}
            Response::Unavailable { .. } => {
                if new_user {
                    self.registering.remove(&key);
                }
                self.set_state(
                    conn,
                    SessionState::AwaitPassword {
                        name: pending.name.clone(),
                        new_user,
                        failures,
                    },
                );
                self.login_failed(
                    conn,
                    addr,
                    &pending.name,
                    LoginFailure::Busy,
                    "the server is busy checking passwords; try again in a moment".to_string(),
                );
            }
            Response::Verified { ok: false, .. } => {
                let failures = failures + 1;
                let last = failures >= self.config.max_login_failures;
                let (reason, message) = if last {
                    (
                        LoginFailure::TooManyAttempts,
                        format!(
                            "wrong password for {}: too many attempts ({failures}) on this connection, which is now closed",
                            pending.name
                        ),
                    )
                } else {
                    (
                        LoginFailure::WrongPassword,
                        format!("wrong password for {}; try again", pending.name),
                    )
                };
                self.login_failed(conn, addr, &pending.name, reason, message);
                if last {
                    self.set_state(
                        conn,
                        SessionState::Closing {
                            until: now + self.config.linger,
                        },
                    );
                } else {
                    self.set_state(
                        conn,
                        SessionState::AwaitPassword {
                            name: pending.name,
                            new_user: false,
                            failures,
                        },
                    );
                }
            }
        }
        self.process(now, conn);
    }

    pub(super) fn set_state(&mut self, conn: u64, state: SessionState) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.state = state;
        }
    }

    pub(super) fn login_failed(
        &mut self,
        conn: u64,
        addr: Option<SocketAddr>,
        name: &str,
        reason: LoginFailure,
        message: String,
    ) {
        self.stats.failed_logins += 1;
        if let Some(addr) = addr {
            self.events.push_back(ServerEvent::LoginFailed {
                user: name.to_string(),
                addr,
                reason,
            });
        }
        self.send(conn, &ServerMessage::LoginFailed { reason, message });
    }

    pub(super) fn login_success(&mut self, now: Instant, conn: u64, name: String, new_user: bool) {
        let key = username_key(&name);
        if let Some(&(old, _)) = self.online.get(&key)
            && old != conn
        {
            // Said plainly to the old session, which then ends like one
            // that said EX: its last messages are acknowledged first.
            self.end_replaced(now, old);
        }
        if self.remote.contains_key(&key) {
            self.remote_leaves(&key, LeaveReason::Replaced.as_str().to_string(), None);
        }
        if let Some((old, _)) = self.online.insert(key.clone(), (conn, name.clone()))
            && let Some(s) = self.sessions.get_mut(&old)
        {
            s.listed = false;
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.listed = true;
        }
        self.set_present(&key, conn, true);
        self.publish_with(|node| ClusterMessage::Login {
            node,
            user: name.clone(),
        });
        self.logins += 1;
        let max_message = self.config.channel.max_message;
        let mut first = None;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.login_seq = self.logins;
            if !s.logged_in_once {
                s.logged_in_once = true;
                // Whole messages from here on (the limit before login is
                // small: nothing then needs more).
                s.connection.channel_mut().set_max_message(max_message);
                first = Some(s.created);
            }
        }
        if let Some(created) = first {
            self.forget_unauthenticated(conn, created);
        }
        self.set_state(
            conn,
            SessionState::LoggedIn {
                name: name.clone(),
                op: None,
                away: None,
                since: self.now,
            },
        );
        self.stats.logins += 1;
        if let Some(addr) = self.sessions.get(&conn).map(|s| s.addr) {
            self.events.push_back(ServerEvent::LoggedIn {
                user: name.clone(),
                addr,
                new_user,
            });
        }
        let (online, count) = self.online_list();
        // A device token only for a client that said it keeps one (it sent
        // `device`, empty or not). Its id needs uniqueness, not secrecy:
        // the MAC is what makes it valid.
        let device = self
            .sessions
            .get(&conn)
            .is_some_and(|s| s.wants_device_token)
            .then(|| {
                let id = conn.rotate_left(32) ^ self.stats.logins;
                crypto::device_token(&self.key, &username_key(&name), id)
            });
        self.send(
            conn,
            &ServerMessage::LoginOk {
                name: name.clone(),
                new_user,
                online,
                count,
                device,
                rooms: self.rooms_of(&name),
                rate: Some(MessageRate {
                    burst: self.config.messages.burst,
                    interval_ms: u32::try_from(
                        self.config.messages.interval.as_micros().div_ceil(1000),
                    )
                    .unwrap_or(u32::MAX),
                }),
            },
        );
        if self.online_count() <= self.config.max_presence {
            self.announce(conn, &ServerMessage::Joined { user: name.clone() });
        }
        self.after_login(conn, &name);
    }

    /// Takes a user offline and tells the others; the session stays.
    pub(super) fn logout(&mut self, conn: u64, reason: LeaveReason) {
        self.logout_saying(conn, reason, None);
    }

    /// [`Server::logout`], passing on what the user said when leaving.
    pub(super) fn logout_saying(
        &mut self,
        conn: u64,
        reason: LeaveReason,
        message: Option<String>,
    ) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let SessionState::LoggedIn { name, .. } = &s.state else {
            return;
        };
        let name = name.clone();
        s.state = SessionState::Closing {
            until: Instant::ZERO,
        };
        let announce = self.online_count() <= self.config.max_presence;
        let key = username_key(&name);
        if let Some((online_conn, _)) = self.online.remove(&key) {
            if let Some(s) = self.sessions.get_mut(&online_conn) {
                s.listed = false;
            }
            self.set_present(&key, online_conn, false);
            self.publish_with(|node| ClusterMessage::Logout {
                node,
                user: name.clone(),
                reason: reason.as_str().to_string(),
                message: message.clone(),
            });
        }
        self.events.push_back(ServerEvent::LoggedOut {
            user: name.clone(),
            reason,
        });
        if announce {
            self.announce(
                conn,
                &ServerMessage::Left {
                    user: name,
                    reason: reason.as_str().to_string(),
                    message,
                },
            );
        }
    }

    pub(super) fn on_user(&mut self, conn: u64, name: String) {
        if let Err(e) = validate_username(&name) {
            self.error(conn, ErrorCode::InvalidUsername, e.to_string());
            return;
        }
        let key = username_key(&name);
        if self.registering.contains(&key) {
            self.error(
                conn,
                ErrorCode::UsernameBusy,
                format!("{name} is being registered right now; try again"),
            );
            return;
        }
        let (name, new_user) = match self.users.get(&key) {
            Some(u) => (u.name.clone(), false),
            None => (name, true),
        };
        if new_user && let Some(other) = self.look_alike(&name) {
            self.error(
                conn,
                ErrorCode::UsernameBusy,
                format!("{name} looks too much like the name {other}; choose another"),
            );
            return;
        }
        // Choosing the name again keeps the count of failed passwords.
        let failures = match self.sessions.get(&conn).map(|s| &s.state) {
            Some(SessionState::AwaitPassword { failures, .. }) => *failures,
            _ => 0,
        };
        let login_timeout = self.config.login_timeout;
        if let Some(s) = self.sessions.get_mut(&conn)
            && !s.logged_in_once
        {
            // Named in time: the whole login deadline applies from here.
            s.login_deadline = s.created + login_timeout;
        }
        self.set_state(
            conn,
            SessionState::AwaitPassword {
                name: name.clone(),
                new_user,
                failures,
            },
        );
        let registration = self.registration_hint(new_user);
        self.send(
            conn,
            &ServerMessage::PasswordRequired {
                name,
                new_user,
                registration,
            },
        );
    }

    #[allow(clippy::too_many_arguments)] // one call site, each argument distinct
    pub(super) fn on_password(
        &mut self,
        now: Instant,
        conn: u64,
        addr: SocketAddr,
        name: String,
        new_user: bool,
        failures: u32,
        password: String,
        device: Option<String>,
        invite: Option<String>,
    ) {
        if password.is_empty() || password.len() > MAX_PASSWORD {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::InvalidPassword,
                format!("the password must be 1 to {MAX_PASSWORD} bytes"),
            );
            return;
        }
        if new_user && !self.may_register(conn, addr, &name, invite.as_deref()) {
            return;
        }
        // A new account's password must not be trivially short; existing
        // accounts log in with whatever they registered.
        let min = self.config.min_password_chars;
        if new_user && password.chars().count() < min {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::InvalidPassword,
                format!("a new account's password needs at least {min} characters"),
            );
            return;
        }
        if self.pending.len() >= self.config.max_pending_checks {
            self.login_failed(
                conn,
                Some(addr),
                &name,
                LoginFailure::Busy,
                "the server is busy checking passwords; try again in a moment".to_string(),
            );
            return;
        }
        let key = username_key(&name);
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.wants_device_token = device.is_some();
        }
        let mut reserved = None;
        if !new_user {
            // The holder of a device token issued to this account skips the
            // per-account limit and the one-check-at-a-time rule: an
            // attacker guessing the password cannot lock the owner out.
            // The address's limit still applies.
            let exempt = device
                .as_deref()
                .is_some_and(|t| crypto::check_device_token(&self.key, &key, t));

            if exempt {
                self.stats.device_token_logins += 1;
            }
            if !exempt && self.checking.contains(&key) {
                self.login_failed(
                    conn,
                    Some(addr),
                    &name,
                    LoginFailure::Throttled,
                    format!("a password for {name} is being checked; try again in 1 s"),
                );
                return;
            }
            match self.reserve_login_check(now, &key, addr.ip(), exempt) {
                Ok(r) => reserved = Some(r),
                Err(wait) => {
                    self.login_failed(
                        conn,
                        Some(addr),
                        &name,
                        LoginFailure::Throttled,
                        format!(
                            "too many failed logins for {name} or from your address; try again in {wait} s"
                        ),
                    );
                    return;
                }
            }
        }
        let id = self.next_request;
        self.next_request += 1;
        let request = if new_user {
            if self.users.contains_key(&key)
                || self.registering.contains(&key)
                || self.look_alike(&name).is_some()
            {
                self.set_state(conn, SessionState::AwaitUser);
                self.error(
                    conn,
                    ErrorCode::UsernameBusy,
                    format!("{name} was registered by someone else meanwhile; choose again"),
                );
                return;
            }
            self.registering.insert(key);
            Request::Register {
                id,
                username: name.clone(),
                password,
            }
        } else {
            let Some(user) = self.users.get(&key) else {
                if let Some(r) = reserved {
                    self.refund_login_check(now, &key, r);
                }
                self.set_state(conn, SessionState::AwaitUser);
                return;
            };
            if reserved.is_some_and(|r| r.account) {
                self.checking.insert(key.clone());
            }
            Request::Verify {
                id,
                username: name.clone(),
                password,
                password_hash: user.password_hash.clone(),
            }
        };
        let invite = if new_user {
            self.claim_invite(invite)
        } else {
            None
        };
        self.pending.insert(
            id,
            Pending {
                connection_id: conn,
                name: name.clone(),
                reserved,
                invite,
            },
        );
        self.requests.push_back(request);
        self.set_state(
            conn,
            SessionState::Checking {
                new_user,
                request: id,
                failures,
            },
        );
    }
}
