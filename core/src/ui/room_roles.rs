//! Room roles in the console (`/kick`, `/ban`, `/unban`, `/mute`,
//! `/unmute`, `/op`, `/deop`, `/lock-topic`, `/moderated`), and the users
//! this client ignores (`/ignore`, `/unignore`).

use super::room::room_name;
use super::*;
use crate::session::{username_key, validate_username};

/// Most users one client ignores: 1,000.
pub const MAX_IGNORED: usize = 1000;

impl Console {
    /// The room-role and ignore commands (see [`Command`]).
    pub(super) fn room_role_command(&mut self, command: Command<'_>) -> Result<(), CommandError> {
        let (room, usage) = match command {
            Command::Ignore(user) => return self.ignore(user),
            Command::Unignore(user) => return self.unignore(user),
            Command::Kick { room, .. } => (room, "/kick #ROOM USER"),
            Command::Ban { room, .. } => (room, "/ban #ROOM USER"),
            Command::RoomUser { room, .. } => (room, "/op #ROOM USER"),
            Command::RoomMode { room, .. } => (room, "/moderated #ROOM on|off"),
            _ => return Ok(()),
        };
        let Some(room) = self.target_room(room.map(room_name).as_deref(), usage) else {
            return Ok(());
        };
        if !self.within_rate() {
            return Ok(());
        }
        match command {
            Command::Kick { user, reason, .. } => {
                self.request(|c| c.room_kick(&room, user, reason))
            }
            Command::Ban {
                user, secs, reason, ..
            } => self.request(|c| c.room_ban(&room, user, secs, reason)),
            Command::RoomUser { action, user, .. } => self.request(|c| match action {
                RoomUserAction::Unban => c.room_unban(&room, user),
                RoomUserAction::Mute => c.room_mute(&room, user, true),
                RoomUserAction::Unmute => c.room_mute(&room, user, false),
                RoomUserAction::Op => c.room_op(&room, user, true),
                RoomUserAction::Deop => c.room_op(&room, user, false),
            }),
            Command::RoomMode {
                topic_locked,
                moderated,
                ..
            } => self.request(|c| c.room_mode(&room, topic_locked, moderated)),
            _ => Ok(()),
        }
    }

    fn ignore(&mut self, user: Option<&str>) -> Result<(), CommandError> {
        let Some(user) = user else {
            let users = self.ignored();
            self.emit(ChatEvent::Ignored { users });
            return Ok(());
        };
        validate_username(user).map_err(CommandError::InvalidUsername)?;
        let key = username_key(user);
        if key == username_key(self.client.username()) {
            self.error("you cannot ignore yourself");
            return Ok(());
        }
        if !self.ignored.contains_key(&key) && self.ignored.len() >= MAX_IGNORED {
            self.error(alloc::format!(
                "you ignore {MAX_IGNORED} users, as many as this client keeps: /unignore one first"
            ));
            return Ok(());
        }
        self.ignored.insert(key, user.to_string());
        self.emit(ChatEvent::Info {
            text: alloc::format!(
                "ignoring {}: their messages are hidden on this client (/unignore {} to see them)",
                sanitize(user),
                sanitize(user)
            ),
        });
        self.ignored_changed();
        Ok(())
    }

    fn unignore(&mut self, user: &str) -> Result<(), CommandError> {
        if self.ignored.remove(&username_key(user)).is_none() {
            self.error(alloc::format!("you do not ignore {}", sanitize(user)));
            return Ok(());
        }
        self.emit(ChatEvent::Info {
            text: alloc::format!("no longer ignoring {}", sanitize(user)),
        });
        self.ignored_changed();
        Ok(())
    }

    fn ignored_changed(&mut self) {
        let users = self.ignored();
        self.output.push_back(Output::Ignored(users));
    }

    /// The users whose messages this console hides, sorted by
    /// [`username_key`].
    pub fn ignored(&self) -> Vec<String> {
        self.ignored.values().cloned().collect()
    }

    /// Sets the users whose messages this console hides (as a driver
    /// loads them at start); names that break the username rules are
    /// left out, and at most [`MAX_IGNORED`] are kept.
    pub fn set_ignored<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, users: I) {
        self.ignored = users
            .into_iter()
            .filter(|u| validate_username(u.as_ref()).is_ok())
            .map(|u| (username_key(u.as_ref()), u.as_ref().to_string()))
            .take(MAX_IGNORED)
            .collect();
    }

    /// Whether `event` is a message from an ignored user.
    pub(super) fn hides(&self, event: &ChatEvent) -> bool {
        if self.ignored.is_empty() {
            return false;
        }
        match event {
            ChatEvent::Public { from, .. }
            | ChatEvent::Direct { from, .. }
            | ChatEvent::OfflineDirect { from, .. }
            | ChatEvent::RoomMessage { from, .. } => self.ignored.contains_key(&username_key(from)),
            _ => false,
        }
    }
}
