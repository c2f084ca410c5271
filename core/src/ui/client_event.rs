//! How the console answers its client's events: the login, the chat,
//! and losing the server, then reconnecting with a backoff.

use super::*;
use crate::session::RegistrationMode;

impl Console {
    pub(super) fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            self.on_event(now, event);
        }
        self.pump();
    }

    pub(super) fn on_event(&mut self, now: Instant, event: ClientEvent) {
        match event {
            ClientEvent::ServerKey(key) => {
                // Reconnections insist on the key the first connection saw.
                if self.config.client.server_key.is_none() {
                    self.config.client.server_key = Some(key);
                }
                if !self.key_reported {
                    self.key_reported = true;
                    self.output.push_back(Output::ServerKey(key));
                }
            }
            ClientEvent::PasswordRequired {
                name,
                new_user,
                registration,
            } => {
                if let (true, Some(password)) = (self.logged_in_once, self.password.clone()) {
                    // Logging in again after a reconnection.
                    match self.client.submit_password(&password) {
                        Ok(()) => self.mode = Mode::LoggingIn,
                        Err(e) => self.finish(1, Some(error_event(e))),
                    }
                    return;
                }
                self.emit(ChatEvent::PasswordRequired {
                    user: name,
                    new_user,
                });
                match registration {
                    Some(RegistrationMode::Closed) => self.emit(ChatEvent::Info {
                        text: "this server registers no new accounts: only existing ones log in"
                            .to_string(),
                    }),
                    Some(RegistrationMode::Invite) if self.client.invite().is_none() => {
                        self.emit(ChatEvent::Info {
                            text: "this server registers new accounts by invite only: \
                                   give the code a server admin made (--invite CODE or CHAT_INVITE)"
                                .to_string(),
                        })
                    }
                    _ => {}
                }
                self.ask_password(new_user);
            }
            ClientEvent::LoginFailed { message, reason } => {
                let event = ChatEvent::Error {
                    message: alloc::format!("login failed: {message}"),
                };
                if matches!(
                    reason,
                    LoginFailure::TooManyAttempts
                        | LoginFailure::Suspended
                        | LoginFailure::RegistrationClosed
                        | LoginFailure::InviteRequired
                        | LoginFailure::InvalidInvite
                ) {
                    // Another password would not change the answer (too
                    // many attempts, the account is suspended, registering
                    // needs what the server says): said plainly, and the
                    // session ends. For too many attempts the server closes
                    // the connection: said plainly, not
                    // as a closed connection.
                    return self.finish(1, Some(event));
                }
                if self.logged_in_once {
                    // The password that worked is refused now: nothing
                    // to retry with.
                    return self.finish(1, Some(event));
                }
                if self.config.password_from_lines {
                    // Piped: the next line is chat text, never a second
                    // password guess.
                    self.emit(event);
                    return self.finish(
                        1,
                        Some(ChatEvent::Error {
                            message: "the password from the first input line was refused"
                                .to_string(),
                        }),
                    );
                }
                self.failures += 1;
                self.emit(event);
                self.ask_password(false);
            }
            ClientEvent::LoggedIn {
                name,
                new_user,
                online,
                count,
                device,
                rate,
                rooms,
            } => {
                // A new session's bucket starts full.
                self.pacer = rate.map(|r| Pacer::new(now, r));
                if let Some(token) = device
                    && self.config.client.device_token.as_ref() != Some(&token)
                {
                    self.config.client.device_token = Some(token.clone());
                    self.output.push_back(Output::DeviceToken(token));
                }
                self.logged_in_once = true;
                self.attempt = 0;
                if let Some(p) = self.submitted.take() {
                    self.password = Some(p);
                }
                self.set_online(&online);
                self.logged_in_rooms(&rooms);
                self.emit(ChatEvent::LoggedIn {
                    user: name,
                    new_user,
                    online,
                    count,
                });
                if !rooms.is_empty() {
                    let mut text = alloc::format!("your rooms: {}", rooms.join(", "));
                    if let Some(room) = &self.active {
                        text.push_str(&alloc::format!("; plain lines go to {room}"));
                    }
                    self.emit(ChatEvent::Info { text });
                }
                if let Some(text) = self.away.clone() {
                    // Away before the connection was lost: still away.
                    if let Err(e) = self.request(|c| c.set_away(Some(&text))) {
                        self.error(e);
                    }
                }
                self.enter_menu();
                self.send_paced();
            }
            ClientEvent::OperationReady(Operation::PM) => {
                if self.mode == Mode::AwaitOpOk {
                    self.mode = Mode::PmText;
                    self.prompt(PromptKind::PublicText);
                }
            }
            ClientEvent::OperationReady(_) => {}
            ClientEvent::Away(text) => {
                self.answered_request();
                self.away.clone_from(&text);
                self.emit(ChatEvent::Away { text });
            }
            ClientEvent::AwayReply { user, text } => {
                self.emit(ChatEvent::AwayReply { user, text });
            }
            ClientEvent::Whois {
                name,
                online,
                online_secs,
                away,
            } => {
                self.answered_request();
                self.emit(ChatEvent::Whois {
                    user: name,
                    online,
                    online_secs,
                    away,
                });
            }
            ClientEvent::ModOk { action, target } => {
                self.answered_request();
                self.emit(ChatEvent::ModOk { action, target });
            }
            ClientEvent::Notice { from, text } => self.emit(ChatEvent::Notice { from, text }),
            ClientEvent::InviteCode { code, expires } => {
                self.answered_request();
                self.emit(ChatEvent::InviteCode { code, expires });
            }
            ClientEvent::AuditLog(entries) => {
                self.answered_request();
                self.emit(ChatEvent::Audit { entries });
            }
            ClientEvent::BanList { bans, count } => {
                self.answered_request();
                self.emit(ChatEvent::Bans { bans, count });
            }
            ClientEvent::Online { users, count, away } => {
                self.set_online(&users);
                self.emit(ChatEvent::Online { users, count, away });
                if self.mode == Mode::AwaitOnline {
                    self.mode = Mode::DmTarget;
                    self.prompt(PromptKind::Recipient);
                }
            }
            ClientEvent::Public { from, text, .. } => {
                let (text, action) = match text.strip_prefix("/me ") {
                    Some(action) => (action.to_string(), true),
                    None => (text, false),
                };
                let mention = mentions(&text, self.client.username());
                self.emit(ChatEvent::Public {
                    from,
                    text,
                    action,
                    mention,
                });
            }
            ClientEvent::Direct {
                from,
                text,
                time,
                offline: true,
            } => self.emit(ChatEvent::OfflineDirect {
                from,
                text,
                sent: time.unwrap_or_default(),
                offline: true,
            }),
            ClientEvent::Direct { from, text, .. } => self.emit(ChatEvent::Direct { from, text }),
            ClientEvent::Joined(user) => {
                self.online_changes += 1;
                self.online.insert(user.to_ascii_lowercase(), user.clone());
                self.emit(ChatEvent::Join { user });
            }
            ClientEvent::Left {
                user,
                reason,
                message,
            } => {
                self.online_changes += 1;
                self.online.remove(&user.to_ascii_lowercase());
                self.emit(ChatEvent::Leave {
                    user,
                    reason,
                    message,
                });
            }
            ClientEvent::Confirmed {
                op,
                to,
                recipients,
                stored,
            } => {
                // Room messages are answered once stored, perhaps later.
                let at = self
                    .unanswered
                    .iter()
                    .position(|u| !matches!(u, Unanswered::Message(m) if m.is_room()));
                let sent = match at.and_then(|i| self.unanswered.remove(i)) {
                    Some(Unanswered::Message(m)) => Some(m),
                    _ => None,
                };
                let kind = match op {
                    Operation::DM if stored => Delivery::Stored,
                    Operation::DM => Delivery::Direct,
                    _ => Delivery::Public,
                };
                let to = match kind {
                    Delivery::Direct | Delivery::Stored => Some(to.unwrap_or_default()),
                    Delivery::Public => None,
                };
                let (text, action) = match sent.map(|m| m.text) {
                    Some(text) if kind == Delivery::Public => match text.strip_prefix("/me ") {
                        Some(action) => (Some(action.to_string()), true),
                        None => (Some(text), false),
                    },
                    text => (text, false),
                };
                if self.config.show_sent
                    && let Some(text) = &text
                {
                    self.emit(ChatEvent::Sent {
                        from: self.client.username().to_string(),
                        to: to.clone(),
                        text: text.clone(),
                        action,
                    });
                }
                if self.confirmations {
                    self.emit(ChatEvent::Confirmation {
                        kind,
                        to,
                        recipients,
                        text,
                        action,
                    });
                }
            }
            ClientEvent::Error { code, message } => {
                if self.room_refused(code, &message) {
                    // A room message or request refused: said.
                } else if let Some(Unanswered::Request) = self.unanswered.front() {
                    // An away or whois request refused.
                    self.unanswered.pop_front();
                    self.emit(ChatEvent::Error { message });
                } else if let Some(Unanswered::Message(refused)) = self.unanswered.pop_front() {
                    // The refusal of an earlier text, not of the operation
                    // the console is waiting for.
                    if code == ErrorCode::RateLimited {
                        // Too fast after all: it goes first when the pace
                        // allows, and the pace starts from empty.
                        let pacer = self
                            .pacer
                            .get_or_insert_with(|| Pacer::new(now, FALLBACK_RATE));
                        pacer.empty(now);
                        let at = self.requeued.min(self.paced.len());
                        self.paced.insert(at, refused);
                        self.requeued += 1;
                        self.emit(ChatEvent::Queued {
                            waiting: self.paced.len(),
                        });
                    } else {
                        self.not_sent(refused, message);
                    }
                } else {
                    self.emit(ChatEvent::Error { message });
                    if matches!(self.mode, Mode::AwaitOpOk | Mode::AwaitOnline) {
                        self.enter_menu();
                    }
                }
            }
            ClientEvent::Closed(CloseReason::Exit) => self.finish(0, Some(ChatEvent::Bye)),
            ClientEvent::Closed(CloseReason::ServerClosed(CloseCode::Normal))
                if matches!(self.mode, Mode::Exiting) =>
            {
                // EX was sent and the server ended the session normally.
                self.finish(0, Some(ChatEvent::Bye));
            }
            ClientEvent::Closed(reason) if self.may_reconnect(&reason) => {
                self.schedule_reconnect(now, &reason);
            }
            ClientEvent::Closed(reason) => self.finish(
                1,
                Some(ChatEvent::Disconnect {
                    reason: reason.to_string(),
                    reconnect_in: None,
                }),
            ),
            ClientEvent::RoomJoined { .. }
            | ClientEvent::Parted(_)
            | ClientEvent::MemberJoined { .. }
            | ClientEvent::MemberLeft { .. }
            | ClientEvent::RoomMessage { .. }
            | ClientEvent::Said { .. }
            | ClientEvent::RoomList { .. }
            | ClientEvent::Names { .. }
            | ClientEvent::Topic { .. }
            | ClientEvent::HistoryEnd { .. }
            | ClientEvent::Resumed { .. } => self.on_room_event(event),
            ClientEvent::Kicked {
                room,
                by,
                reason,
                banned,
                until,
            } => {
                // Out of the room, as after `/part`.
                self.rooms.remove(&room);
                self.online_changes += 1;
                if self.active.as_ref() == Some(&room) {
                    self.active = None;
                    self.active_changed();
                }
                self.emit(ChatEvent::Kicked {
                    room,
                    by,
                    reason,
                    banned,
                    until,
                });
            }
            ClientEvent::RoomRole {
                room,
                user,
                role,
                by,
            } => self.emit(ChatEvent::RoomRole {
                room,
                user,
                role,
                by,
            }),
            ClientEvent::MemberMuted {
                room,
                user,
                by,
                muted,
            } => self.emit(ChatEvent::MemberMuted {
                room,
                user,
                by,
                muted,
            }),
            ClientEvent::RoomMode {
                room,
                by,
                topic_locked,
                moderated,
            } => self.emit(ChatEvent::RoomMode {
                room,
                by,
                topic_locked,
                moderated,
            }),
            ClientEvent::RoomRoles {
                room,
                ops,
                muted,
                topic_locked,
                moderated,
            } => self.emit(ChatEvent::RoomRoles {
                room,
                ops,
                muted,
                topic_locked,
                moderated,
            }),
        }
    }

    pub(super) fn may_reconnect(&self, reason: &CloseReason) -> bool {
        self.config.reconnect
            && self.logged_in_once
            && !matches!(self.mode, Mode::Exiting | Mode::Done(_))
            && matches!(
                reason,
                CloseReason::ServerShutdown
                    | CloseReason::ServerLost(_)
                    | CloseReason::NoAnswer
                    | CloseReason::ServerClosed(
                        CloseCode::UnknownConnection
                            | CloseCode::IdleTimeout
                            | CloseCode::ServerShutdown
                            | CloseCode::Refused
                    )
            )
    }

    pub(super) fn schedule_reconnect(&mut self, now: Instant, reason: &CloseReason) {
        let unconfirmed = core::mem::take(&mut self.unanswered);
        self.attempt = self.attempt.saturating_add(1);
        let index = (self.attempt as usize - 1).min(RECONNECT_BACKOFF_SECS.len() - 1);
        let secs = RECONNECT_BACKOFF_SECS[index];
        self.emit(ChatEvent::Disconnect {
            reason: reason.to_string(),
            reconnect_in: Some(secs),
        });
        // Sent, but not confirmed: perhaps delivered, perhaps not. Sending
        // them again could deliver them twice, so they are shown instead.
        for message in unconfirmed.into_iter().filter_map(|u| match u {
            Unanswered::Message(m) => Some(m),
            Unanswered::Request => None,
        }) {
            self.not_sent(
                message,
                "the connection was lost before the server confirmed it; it may not have been delivered".to_string(),
            );
        }
        self.mode = Mode::Offline {
            at: now + Duration::from_secs(secs),
        };
    }
}
