//! Relaying: public messages to everyone online, direct messages, the
//! online list, presence notices, and session messages in general.

use super::*;

/// Checks an away text: the text rules, and at most [`MAX_AWAY`] bytes.
fn validate_away(text: &str) -> Result<(), String> {
    validate_text(text).map_err(|e| format!("away text: {e}"))?;
    if text.len() > MAX_AWAY {
        return Err(format!(
            "the away text is {} bytes; at most {MAX_AWAY} are allowed",
            text.len()
        ));
    }
    Ok(())
}

/// Queues `bytes` on session `conn`, and notes it in `urgent` (data) or
/// `ready` (anything else) to be sent.
fn queue_on(
    s: &mut Session,
    conn: u64,
    marker: Marker,
    bytes: &Arc<[u8]>,
    urgent: &mut VecDeque<u64>,
    ready: &mut VecDeque<u64>,
) -> Result<(), SendError> {
    s.connection.channel_mut().send_shared(marker, bytes)?;
    if marker == Marker::Data {
        if !s.urgent {
            s.urgent = true;
            urgent.push_back(conn);
        }
    } else if !s.ready {
        s.ready = true;
        ready.push_back(conn);
    }
    Ok(())
}

impl Server {
    /// Queues `message` to one session. A session whose send queue is full
    /// is closed: it is not keeping up.
    pub(super) fn send(&mut self, conn: u64, message: &ServerMessage) {
        let marker = match message {
            ServerMessage::Public { .. } | ServerMessage::Direct { .. } => Marker::Data,
            _ => Marker::Command,
        };
        self.send_bytes(conn, marker, &encode_shared(message));
    }

    pub(super) fn send_bytes(&mut self, conn: u64, marker: Marker, bytes: &Arc<[u8]>) -> bool {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return false;
        };
        match queue_on(s, conn, marker, bytes, &mut self.urgent, &mut self.ready) {
            Ok(()) => true,
            Err(SendError::QueueFull) => {
                self.too_slow(conn);
                false
            }
            Err(_) => false,
        }
    }

    /// Logs out and closes a session whose send queue is full: it is not
    /// keeping up.
    fn too_slow(&mut self, conn: u64) {
        self.logout(conn, LeaveReason::TooSlow);
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        s.connection.channel_mut().close(CloseCode::Refused);
        if !s.ready {
            s.ready = true;
            self.ready.push_back(conn);
        }
    }

    /// Sends `message` to every online user but `except`; returns how many
    /// got it.
    pub(super) fn broadcast(&mut self, except: u64, message: &ServerMessage) -> u32 {
        let marker = match message {
            ServerMessage::Public { .. } => Marker::Data,
            _ => Marker::Command,
        };
        // Encoded once; every recipient's channel shares the bytes. The
        // sessions are walked in order rather than looked up one by one;
        // those too slow for it are logged out afterwards.
        debug_assert!(self.listed_match_online());
        let bytes = encode_shared(message);
        let mut n = 0;
        let mut slow = Vec::new();
        for (&conn, s) in self.sessions.iter_mut() {
            if !s.listed || conn == except {
                continue;
            }
            match queue_on(s, conn, marker, &bytes, &mut self.urgent, &mut self.ready) {
                Ok(()) => n += 1,
                Err(SendError::QueueFull) => slow.push(conn),
                Err(_) => {}
            }
        }
        for conn in slow {
            self.too_slow(conn);
        }
        n
    }

    /// Whether the sessions marked `listed` are those in `online` (checked
    /// by every broadcast in debug builds).
    fn listed_match_online(&self) -> bool {
        let listed = self
            .sessions
            .iter()
            .filter(|(_, s)| s.listed)
            .map(|(c, _)| *c);
        let mut online: Vec<u64> = self
            .online
            .values()
            .map(|(c, _)| *c)
            .filter(|c| self.sessions.contains_key(c))
            .collect();
        online.sort_unstable();
        listed.eq(online)
    }

    /// Tells every other online user of a login or logout: at once, or
    /// with the next round of notices (see [`PRESENCE_INTERVAL`]); a round
    /// goes out a slice of users at a time (see [`PRESENCE_SLICE`]).
    pub(super) fn announce(&mut self, about: u64, message: &ServerMessage) {
        let now = self.now;
        let at_once = self.presence.is_empty()
            && self.round.is_none()
            && self
                .last_presence
                .is_none_or(|t| now >= t + PRESENCE_INTERVAL);
        let user = match message {
            ServerMessage::Joined { user } | ServerMessage::Left { user, .. } => user,
            _ => {
                if at_once {
                    self.last_presence = Some(now);
                    self.broadcast(about, message);
                }
                return;
            }
        };
        self.presence.push(Notice {
            seq: self.logins,
            except: about,
            about: username_key(user),
            bytes: encode_shared(message),
        });
        if at_once {
            self.start_presence_round();
        }
    }

    /// Starts a round with the waiting presence notices, each for the
    /// online users who do not know of it yet, after finishing the round
    /// under way; sends its first slice.
    pub(super) fn start_presence_round(&mut self) {
        self.continue_presence_round(usize::MAX);
        if self.presence.is_empty() {
            return;
        }
        self.last_presence = Some(self.now);
        let notices = core::mem::take(&mut self.presence);
        let targets: Vec<(u64, u64)> = self
            .online
            .values()
            .filter_map(|(c, _)| self.sessions.get(c).map(|s| (*c, s.login_seq)))
            .collect();
        self.round = Some(PresenceRound {
            notices,
            targets,
            next: 0,
            at: self.now,
        });
        self.continue_presence_round(PRESENCE_SLICE);
    }

    /// Sends the round under way to up to `users` more of its targets.
    /// The round stays under way while they are sent: a notice made
    /// meanwhile (a recipient taken offline for a full queue) waits for
    /// the next round, after this one.
    pub(super) fn continue_presence_round(&mut self, users: usize) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let end = round.next.saturating_add(users).min(round.targets.len());
        let slice: Vec<(u64, u64)> = round.targets.get(round.next..end).unwrap_or(&[]).to_vec();
        let notices: Vec<(u64, u64, Arc<[u8]>)> = round
            .notices
            .iter()
            .map(|n| (n.except, n.seq, Arc::clone(&n.bytes)))
            .collect();
        round.next = end;
        for (conn, seq) in slice {
            for (except, notice_seq, bytes) in &notices {
                if conn != *except && seq <= *notice_seq {
                    self.send_bytes(conn, Marker::Command, bytes);
                }
            }
        }
        let now = self.now;
        if let Some(round) = &mut self.round {
            if round.next >= round.targets.len() {
                self.round = None;
            } else {
                round.at = now + PRESENCE_SLICE_GAP;
            }
        }
    }

    /// Sends every notice about `user` that is on its way or waiting to
    /// everyone first, so that nobody hears from a user before hearing that
    /// they arrived. Nothing to do (and nothing allocated) in the usual
    /// case of no notice on its way or waiting.
    pub(super) fn presence_before(&mut self, user: &str) {
        if self.presence.is_empty() && self.round.is_none() {
            return;
        }
        let key = username_key(user);
        if self
            .round
            .as_ref()
            .is_some_and(|r| r.notices.iter().any(|n| n.about == key))
        {
            self.continue_presence_round(usize::MAX);
        }
        if self.presence.iter().any(|n| n.about == key) {
            self.start_presence_round();
            self.continue_presence_round(usize::MAX);
        }
    }

    pub(super) fn error(&mut self, conn: u64, code: ErrorCode, message: String) {
        self.events.push_back(ServerEvent::ClientError {
            connection_id: conn,
            code,
        });
        self.send(conn, &ServerMessage::Error { code, message });
    }

    pub(super) fn handle_message(&mut self, now: Instant, conn: u64, bytes: &[u8]) {
        let msg: ClientMessage = match session::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.error(
                    conn,
                    ErrorCode::BadMessage,
                    format!("could not parse the message: {e}"),
                );
                return;
            }
        };
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let addr = s.addr;
        match (&mut s.state, msg) {
            (SessionState::Closing { .. }, _) => {}
            (
                SessionState::AwaitUser | SessionState::AwaitPassword { .. },
                ClientMessage::User { name },
            ) => self.on_user(conn, name),
            (
                SessionState::AwaitPassword {
                    name,
                    new_user,
                    failures,
                },
                ClientMessage::Password {
                    password,
                    device,
                    mut resume,
                    invite,
                },
            ) => {
                let (name, new_user, failures) = (name.clone(), *new_user, *failures);
                resume.truncate(session::MAX_RESUME);
                s.resume = resume;
                self.on_password(
                    now, conn, addr, name, new_user, failures, password, device, invite,
                );
            }
            (SessionState::AwaitUser, ClientMessage::Password { .. }) => self.error(
                conn,
                ErrorCode::NotLoggedIn,
                "send the username first".to_string(),
            ),
            (SessionState::Checking { .. }, _) => self.error(
                conn,
                ErrorCode::Busy,
                "the password is being checked; wait for the answer".to_string(),
            ),
            (SessionState::AwaitUser | SessionState::AwaitPassword { .. }, _) => {
                self.error(conn, ErrorCode::NotLoggedIn, "log in first".to_string())
            }
            (SessionState::LoggedIn { .. }, ClientMessage::User { .. })
            | (SessionState::LoggedIn { .. }, ClientMessage::Password { .. }) => self.error(
                conn,
                ErrorCode::AlreadyLoggedIn,
                "already logged in".to_string(),
            ),
            (SessionState::LoggedIn { op, .. }, ClientMessage::Op { op: new_op, reason }) => {
                *op = Some(new_op);
                match new_op {
                    Operation::PM => self.send(conn, &ServerMessage::OpOk { op: new_op }),
                    Operation::DM => self.send_online(conn),
                    Operation::EX => {
                        self.send(conn, &ServerMessage::Bye);
                        // A reason that breaks the text rules or is too
                        // long is left out; the user leaves all the same.
                        let message = reason.filter(|r| {
                            !r.is_empty() && r.len() <= MAX_QUIT_MESSAGE && validate_text(r).is_ok()
                        });
                        self.logout_saying(conn, LeaveReason::Exit, message);
                        self.set_state(
                            conn,
                            SessionState::Closing {
                                until: now + self.config.linger,
                            },
                        );
                    }
                }
            }
            (SessionState::LoggedIn { .. }, ClientMessage::Who) => self.send_online(conn),
            // `pm` and `dm` are accepted with or without the `op` before
            // them: the classic flow sends it, a client that already has
            // its text and recipient need not wait for the answer.
            (SessionState::LoggedIn { away, name, .. }, ClientMessage::Away { text }) => {
                let text = text.filter(|t| !t.is_empty());
                match text.as_deref().map(validate_away) {
                    Some(Err(message)) => self.error(conn, ErrorCode::InvalidText, message),
                    _ => {
                        away.clone_from(&text);
                        let user = name.clone();
                        let published = text.clone();
                        self.publish_with(|node| ClusterMessage::Away {
                            node,
                            user,
                            text: published,
                        });
                        self.send(conn, &ServerMessage::AwayOk { text });
                    }
                }
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::Notice { text }) => {
                let name = name.clone();
                self.on_notice(conn, &name, text);
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::Audit { limit }) => {
                let name = name.clone();
                self.on_audit(conn, &name, limit);
            }
            (
                SessionState::LoggedIn { name, .. },
                ClientMessage::BanAddress {
                    range,
                    secs,
                    reason,
                },
            ) => {
                let name = name.clone();
                self.on_ban_address(conn, &name, &range, secs, reason);
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::UnbanAddress { range }) => {
                let name = name.clone();
                self.on_unban_address(conn, &name, &range);
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::Bans { after }) => {
                let name = name.clone();
                self.on_bans(conn, &name, after.as_deref());
            }
            (
                SessionState::LoggedIn { name: by, .. },
                ClientMessage::Suspend { name, secs, reason },
            ) => {
                let by = by.clone();
                self.on_suspend(conn, &by, &name, secs, reason);
            }
            (SessionState::LoggedIn { name: by, .. }, ClientMessage::Unsuspend { name }) => {
                let by = by.clone();
                self.on_unsuspend(conn, &by, &name);
            }
            (
                SessionState::LoggedIn { name: by, .. },
                ClientMessage::Disconnect { name, reason },
            ) => {
                let by = by.clone();
                self.on_disconnect(now, conn, &by, &name, reason);
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::Registration { mode }) => {
                let name = name.clone();
                self.on_registration(conn, &name, mode);
            }
            (SessionState::LoggedIn { name, .. }, ClientMessage::Invite) => {
                let name = name.clone();
                self.on_invite(conn, &name);
            }
            (SessionState::LoggedIn { .. }, ClientMessage::Whois { name }) => {
                self.on_whois(now, conn, &name)
            }
            (SessionState::LoggedIn { op, name, .. }, ClientMessage::Pm { text }) => {
                *op = None;
                let name = name.clone();
                if !self.take_message_token(now, conn) {
                    self.rate_limited(conn);
                } else if let Err(e) = validate_text(&text) {
                    self.error(conn, ErrorCode::InvalidText, e.to_string());
                } else {
                    self.stats.public_messages += 1;
                    self.presence_before(&name);
                    let time = self.unix_time();
                    self.publish_with(|node| ClusterMessage::Public {
                        node,
                        from: name.clone(),
                        text: text.clone(),
                        time,
                    });
                    let n = self.broadcast(
                        conn,
                        &ServerMessage::Public {
                            from: name,
                            text,
                            time: Some(time),
                        },
                    );
                    self.stats.deliveries += u64::from(n);
                    // Users on other nodes get it from theirs.
                    let n = n.saturating_add(u32::try_from(self.remote.len()).unwrap_or(u32::MAX));
                    self.send(
                        conn,
                        &ServerMessage::Confirm {
                            op: Operation::PM,
                            to: None,
                            recipients: n,
                            stored: false,
                        },
                    );
                }
            }
            (
                SessionState::LoggedIn { name, .. },
                room_message @ (ClientMessage::Join { .. }
                | ClientMessage::Part { .. }
                | ClientMessage::Say { .. }
                | ClientMessage::Rooms
                | ClientMessage::Names { .. }
                | ClientMessage::Topic { .. }
                | ClientMessage::History { .. }
                | ClientMessage::RoomKick { .. }
                | ClientMessage::RoomBan { .. }
                | ClientMessage::RoomUnban { .. }
                | ClientMessage::RoomMute { .. }
                | ClientMessage::RoomUnmute { .. }
                | ClientMessage::RoomOp { .. }
                | ClientMessage::RoomDeop { .. }
                | ClientMessage::RoomMode { .. }),
            ) => {
                let name = name.clone();
                self.handle_room_message(now, conn, name, room_message);
            }
            (SessionState::LoggedIn { op, name, .. }, ClientMessage::Dm { to, text }) => {
                *op = None;
                let name = name.clone();
                if !self.take_message_token(now, conn) {
                    self.rate_limited(conn);
                } else if let Err(e) = validate_text(&text) {
                    self.error(conn, ErrorCode::InvalidText, e.to_string());
                } else {
                    self.on_direct(conn, name, to, text);
                }
            }
        }
    }

    pub(super) fn send_online(&mut self, conn: u64) {
        let (users, count) = self.online_list();
        // Those listed who are away, here or on other nodes.
        let away = users
            .iter()
            .filter(|n| {
                let key = username_key(n);
                self.online
                    .get(&key)
                    .is_some_and(|(c, _)| self.away_text(*c).is_some())
                    || self.remote_away_text(&key).is_some()
            })
            .cloned()
            .collect();
        self.send(conn, &ServerMessage::Online { users, count, away });
    }

    /// The away text of a logged-in session, if its user is away.
    pub(super) fn away_text(&self, conn: u64) -> Option<&str> {
        match &self.sessions.get(&conn)?.state {
            SessionState::LoggedIn { away, .. } => away.as_deref(),
            _ => None,
        }
    }

    /// Answers `whois`: the account's name, whether it is online, for how
    /// long, and its away text.
    fn on_whois(&mut self, now: Instant, conn: u64, name: &str) {
        let key = username_key(name);
        let Some(user) = self.users.get(&key) else {
            self.error(
                conn,
                ErrorCode::UnknownUser,
                format!("there is no user named {name}"),
            );
            return;
        };
        let name = user.name.clone();
        let session = self
            .online
            .get(&key)
            .and_then(|(c, _)| self.sessions.get(c));
        let answer = match session.map(|s| &s.state) {
            Some(SessionState::LoggedIn { away, since, .. }) => ServerMessage::Whois {
                name,
                online: true,
                online_secs: Some(now.saturating_since(*since).as_millis() / 1000),
                away: away.clone(),
            },
            _ if self.remote.contains_key(&key) => ServerMessage::Whois {
                name,
                online: true,
                online_secs: None,
                away: self.remote_away_text(&key).map(String::from),
            },
            _ => ServerMessage::Whois {
                name,
                online: false,
                online_secs: None,
                away: None,
            },
        };
        self.send(conn, &answer);
    }

    /// The first [`ServerConfig::max_listed`] online users, and how many
    /// are online when that is more.
    pub(super) fn online_list(&self) -> (Vec<String>, Option<u32>) {
        let max = self.config.max_listed;
        let users = if self.remote.is_empty() {
            self.online_users().take(max).map(String::from).collect()
        } else {
            // Here and on other nodes, in one case-insensitive order.
            let mut all: Vec<(&String, &String)> = self
                .online
                .iter()
                .map(|(k, (_, n))| (k, n))
                .chain(self.remote.iter().map(|(k, (_, n))| (k, n)))
                .collect();
            all.sort_unstable_by(|a, b| a.0.cmp(b.0));
            all.into_iter().take(max).map(|(_, n)| n.clone()).collect()
        };
        let total = self.online_count();
        let count = (total > max).then(|| u32::try_from(total).unwrap_or(u32::MAX));
        (users, count)
    }

    pub(super) fn on_direct(&mut self, conn: u64, from: String, to: String, text: String) {
        let key = username_key(&to);
        let Some(user) = self.users.get(&key) else {
            self.error(
                conn,
                ErrorCode::UnknownUser,
                format!("there is no user named {to}"),
            );
            return;
        };
        let to_name = user.name.clone();
        let Some(&(target, _)) = self.online.get(&key) else {
            if self.remote.contains_key(&key) {
                // Online on another node: stored in the cluster's store,
                // which publishes it; confirmed once stored, so that what
                // was confirmed survives the broker's failures; the
                // recipient's node delivers it and removes it once
                // acknowledged (docs/CLUSTER.md).
                self.store_offline(conn, from, to_name, text, true);
                return;
            }
            self.store_offline(conn, from, to_name, text, false);
            return;
        };
        self.presence_before(&from);
        let time = Some(self.unix_time());
        let delivered = u32::from(self.send_bytes(
            target,
            Marker::Data,
            &encode_shared(&ServerMessage::Direct {
                from,
                text,
                time,
                id: None,
                offline: false,
            }),
        ));
        self.stats.direct_messages += u64::from(delivered);
        self.stats.deliveries += u64::from(delivered);
        let away = self.away_text(target).map(String::from);
        self.send(
            conn,
            &ServerMessage::Confirm {
                op: Operation::DM,
                to: Some(to_name.clone()),
                recipients: delivered,
                stored: false,
            },
        );
        if let Some(text) = away {
            // Delivered, and its sender learns why no answer may come soon.
            self.send(
                conn,
                &ServerMessage::AwayReply {
                    user: to_name,
                    text,
                },
            );
        }
        self.process_later(target);
    }
}
