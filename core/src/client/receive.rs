//! What the client does with each message from the server: its state
//! (logged in, the online list, its rooms' places) and the
//! [`ClientEvent`] the driver gets.

use super::*;

impl Client {
    /// Takes in one decoded message from the server.
    pub(super) fn on_message(&mut self, msg: ServerMessage) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        let event = match msg {
            ServerMessage::PasswordRequired {
                name,
                new_user,
                registration,
            } => {
                self.name = name.clone();
                self.state = State::LoggingIn;
                self.registration = registration;
                ClientEvent::PasswordRequired {
                    name,
                    new_user,
                    registration,
                }
            }
            ServerMessage::LoginOk {
                name,
                new_user,
                online,
                count,
                device,
                rate,
                rooms,
            } => {
                self.name = name.clone();
                self.state = State::LoggedIn;
                // Rooms the account left elsewhere are forgotten.
                self.config
                    .memory
                    .positions
                    .retain(|r, _| rooms.contains(r));
                if device.is_some() {
                    self.config.device_token.clone_from(&device);
                }
                ClientEvent::LoggedIn {
                    name,
                    new_user,
                    online,
                    count,
                    device,
                    rate,
                    rooms,
                }
            }
            ServerMessage::LoginFailed { reason, message } => {
                ClientEvent::LoginFailed { reason, message }
            }
            ServerMessage::OpOk { op } => ClientEvent::OperationReady(op),
            ServerMessage::Online { users, count, away } => {
                ClientEvent::Online { users, count, away }
            }
            ServerMessage::AwayOk { text } => ClientEvent::Away(text),
            ServerMessage::AwayReply { user, text } => ClientEvent::AwayReply { user, text },
            ServerMessage::Whois {
                name,
                online,
                online_secs,
                away,
            } => ClientEvent::Whois {
                name,
                online,
                online_secs,
                away,
            },
            chat @ (ServerMessage::Public { .. }
            | ServerMessage::Direct {
                id: None,
                offline: false,
                ..
            }) => {
                if let Some(chat) = chat.as_chat() {
                    take_chat(&mut self.config.memory, &mut self.events, &chat);
                }
                return;
            }
            ServerMessage::Direct {
                from,
                text,
                time,
                id,
                offline,
            } => {
                if let Some(id) = id
                    && !self.config.memory.first_sight(id)
                {
                    // Delivered again after the server lost the fact that
                    // it was acknowledged: already shown.
                    return;
                }
                ClientEvent::Direct {
                    from,
                    text,
                    time,
                    offline,
                }
            }
            ServerMessage::Joined { user } => ClientEvent::Joined(user),
            ServerMessage::Left {
                user,
                reason,
                message,
            } => ClientEvent::Left {
                user,
                reason,
                message,
            },
            ServerMessage::Confirm {
                op,
                to,
                recipients,
                stored,
            } => ClientEvent::Confirmed {
                op,
                to,
                recipients,
                stored,
            },
            room @ (ServerMessage::Room { .. }
            | ServerMessage::Parted { .. }
            | ServerMessage::MemberJoined { .. }
            | ServerMessage::MemberLeft { .. }
            | ServerMessage::RoomMsg { .. }
            | ServerMessage::Said { .. }
            | ServerMessage::RoomList { .. }
            | ServerMessage::Names { .. }
            | ServerMessage::Topic { .. }
            | ServerMessage::HistoryEnd { .. }
            | ServerMessage::RoomResume { .. }) => match self.on_room_message(room) {
                Some(event) => event,
                None => return,
            },
            ServerMessage::Error {
                code: ErrorCode::Replaced,
                ..
            } => {
                self.close(CloseReason::Replaced);
                return;
            }
            ServerMessage::Error {
                code: code @ (ErrorCode::Suspended | ErrorCode::Disconnected),
                message,
            } => {
                self.close(CloseReason::Ended { code, message });
                return;
            }
            ServerMessage::Error { code, message } => ClientEvent::Error { code, message },
            ServerMessage::InviteCode { code, expires } => {
                ClientEvent::InviteCode { code, expires }
            }
            ServerMessage::ModOk { action, target } => ClientEvent::ModOk { action, target },
            ServerMessage::AuditLog { entries } => ClientEvent::AuditLog(entries),
            ServerMessage::BanList { bans, count } => ClientEvent::BanList { bans, count },
            ServerMessage::Notice { from, text } => ClientEvent::Notice { from, text },
            roles @ (ServerMessage::Kicked { .. }
            | ServerMessage::RoomRole { .. }
            | ServerMessage::MemberMuted { .. }
            | ServerMessage::MemberUnmuted { .. }
            | ServerMessage::RoomMode { .. }) => match self.on_roles_message(roles) {
                Some(event) => event,
                None => return,
            },
            ServerMessage::Bye => {
                self.close(CloseReason::Exit);
                return;
            }
            ServerMessage::Shutdown => {
                self.close(CloseReason::ServerShutdown);
                return;
            }
        };
        self.events.push(event);
    }
}

/// Takes in a chat message (public, live direct, room), however it was
/// decoded: a live room message is checked against the room's place, then
/// queued. A function of the two fields it needs, so that a message read
/// where the channel holds it goes in while the channel is borrowed.
pub(super) fn take_chat(memory: &mut RoomMemory, events: &mut EventQueue, chat: &Chat<'_>) {
    if let ChatKind::Room {
        room,
        offset,
        history: false,
    } = chat.kind
        && !memory.take_live(room, offset)
    {
        return;
    }
    events.push_chat(chat);
}
