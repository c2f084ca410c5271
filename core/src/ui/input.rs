//! The lines a user typed: the assignment's menu flow (PM, DM, EX) and
//! the commands, taken in order once the console accepts input.

use super::*;

impl Console {
    pub(super) fn accepts_input(&self) -> bool {
        matches!(
            self.mode,
            Mode::Menu | Mode::PmText | Mode::DmTarget | Mode::DmText { .. } | Mode::DmCancelled
        )
    }

    pub(super) fn pump(&mut self) {
        if self.mode == Mode::Password && self.config.password_from_lines {
            match self.lines.pop_front() {
                Some(password) => self.submit_password(Instant::ZERO, &password),
                None if self.eof => {
                    self.finish(
                        1,
                        Some(ChatEvent::Error {
                            message: "no password: end of input".to_string(),
                        }),
                    );
                    return;
                }
                None => {}
            }
        }
        while self.accepts_input() {
            let Some(line) = self.lines.pop_front() else {
                // At the end of input, leave once every message went out
                // and was answered (a refusal as too fast is sent again).
                if self.eof && self.paced.is_empty() && self.unanswered.is_empty() {
                    self.exit();
                }
                return;
            };
            self.input(&line);
        }
    }

    pub(super) fn input(&mut self, line: &str) {
        match core::mem::replace(&mut self.mode, Mode::Menu) {
            Mode::Menu => self.menu(line),
            Mode::PmText => {
                if let Err(e) = validate_text(line) {
                    self.error(e);
                } else {
                    self.send_text(None, line);
                }
                self.enter_menu();
            }
            Mode::DmTarget => {
                let to = line.trim();
                match validate_username(to) {
                    Ok(()) => {
                        self.mode = Mode::DmText { to: to.to_string() };
                        self.prompt(PromptKind::DirectText { to: to.to_string() });
                    }
                    Err(e) => {
                        // The flow is cancelled, but the next line was
                        // meant as the DM's text (a script sends it
                        // anyway): it is set aside, never sent publicly.
                        self.error(alloc::format!("DM cancelled: {e}"));
                        self.mode = Mode::DmCancelled;
                        self.prompt(PromptKind::CancelledText);
                    }
                }
            }
            Mode::DmCancelled => {
                if !line.trim().is_empty() {
                    self.not_sent(
                        Outgoing {
                            to: None,
                            text: line.to_string(),
                        },
                        "the DM it was meant for had no valid recipient".to_string(),
                    );
                }
                self.enter_menu();
            }
            Mode::DmText { to } => {
                if let Err(e) = validate_text(line) {
                    self.error(e);
                } else {
                    self.send_text(Some(&to), line);
                }
                self.enter_menu();
            }
            other => self.mode = other,
        }
    }

    pub(super) fn menu(&mut self, line: &str) {
        let command = match parse_command(line) {
            Ok(c) => c,
            Err(e) => {
                self.error(e);
                return self.enter_menu();
            }
        };
        let result = match command {
            Command::Empty => Ok(()),
            Command::Menu(Operation::PM) => match self.client.request_operation(Operation::PM) {
                Ok(()) => return self.mode = Mode::AwaitOpOk,
                Err(e) => Err(e),
            },
            Command::Menu(Operation::DM) => match self.client.request_operation(Operation::DM) {
                Ok(()) => return self.mode = Mode::AwaitOnline,
                Err(e) => Err(e),
            },
            Command::Menu(Operation::EX) | Command::Quit(None) => return self.exit(),
            Command::Quit(Some(reason)) => {
                self.quit_reason = Some(reason.to_string());
                return self.exit();
            }
            Command::Say(text) => self.send_plain(text),
            Command::Me(action) => self.send_plain(&alloc::format!("/me {action}")),
            Command::Msg { to, text } if to.starts_with('#') => self.send_room(to, text),
            Command::Msg { to, text } => self.send_direct(to, text),
            Command::Who => self.client.request_online(),
            Command::Join(_)
            | Command::Part { .. }
            | Command::Go(_)
            | Command::Rooms
            | Command::Names(_)
            | Command::Topic { .. }
            | Command::History { .. } => self.room_command(command),
            Command::Help(topic) => {
                self.show_help(topic);
                Ok(())
            }
            Command::Connect => {
                self.error("already connected");
                Ok(())
            }
            Command::Confirm(on) => {
                self.set_confirmations(on);
                Ok(())
            }
            Command::More => {
                self.show_more();
                Ok(())
            }
            Command::Away(text) => self.request(|c| c.set_away(text)),
            Command::Whois(user) => self.request(|c| c.request_whois(user)),
            Command::Notice(text) => self.request(|c| c.send_notice(text)),
            Command::Audit(limit) => self.request(|c| c.request_audit(limit.or(Some(50)))),
            Command::BanIp {
                range,
                secs,
                reason,
            } => self.request(|c| c.ban_address(range, secs, reason)),
            Command::UnbanIp(range) => self.request(|c| c.unban_address(range)),
            Command::Bans(after) => self.request(|c| c.request_bans(after)),
            Command::Suspend { user, secs, reason } => {
                self.request(|c| c.suspend(user, secs, reason))
            }
            Command::Unsuspend(user) => self.request(|c| c.unsuspend(user)),
            Command::Disconnect { user, reason } => {
                self.request(|c| c.disconnect_user(user, reason))
            }
            Command::Registration(mode) => self.request(|c| c.set_registration(mode)),
            Command::Invite => self.request(|c| c.request_invite()),
            Command::Kick { .. }
            | Command::Ban { .. }
            | Command::RoomUser { .. }
            | Command::RoomMode { .. }
            | Command::Ignore(_)
            | Command::Unignore(_) => self.room_role_command(command),
        };
        if let Err(e) = result {
            self.error(e);
        }
        self.enter_menu();
    }
}
