//! The client endpoint: one connection to one server.
//!
//! [`Client`] speaks the session protocol step by step, as the assignment
//! describes it; [`crate::ui::Console`] puts a line-mode user interface on
//! top of it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::connection::{Connection, Source};
use crate::crypto::{self, Initiator, KEY_LEN, Rng};
use crate::reliable::{Channel, ChannelConfig, ChannelError};
use crate::session::{
    self, ClientMessage, ErrorCode, MAX_AWAY, MAX_PASSWORD, MAX_QUIT_MESSAGE, Operation,
    RegistrationMode, ServerMessage, validate_room, validate_text, validate_username,
};
use crate::time::{Duration, Instant};
use crate::wire::{
    COOKIE_LEN, CloseCode, HEADER_LEN, Header, Initial, Marker, PacketKind, RESET_TOKEN_LEN,
};

mod endpoint;
mod event;
mod queue;
mod receive;
mod room_roles;
mod rooms;

pub use crate::session::{Chat, ChatKind};
pub use endpoint::{Input, Output};
pub use event::{ClientEvent, CloseReason, CommandError, StartError};
use queue::EventQueue;
pub use queue::EventRef;
use receive::take_chat;
pub use rooms::{MAX_SEEN_OFFLINE, RoomMemory};

/// How often a client sends its Initial until the handshake is done: two
/// round trips must get through, so the interval is short and fixed; the
/// handshake deadline ([`ClientConfig::handshake_timeout`], by default the
/// idle timeout, 12 s) bounds the tries (24 in 12 s).
pub const HANDSHAKE_INTERVAL: Duration = Duration::from_millis(500);

/// Timers, limits and trust of a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The channel's timers and limits; the client default keeps the
    /// connection alive with a PING after 1 s without sending. The
    /// Initial is sent every [`HANDSHAKE_INTERVAL`] (500 ms) until the
    /// handshake is done, and abandoned after
    /// [`handshake_timeout`](ClientConfig::handshake_timeout).
    pub channel: ChannelConfig,
    /// How long the client waits for the server to answer its handshake
    /// before it gives up with [`CloseReason::NoAnswer`]. `None` (the
    /// default) waits as long as the channel's `idle_timeout` (12 s); a
    /// driver that tells a person "no answer" sooner sets a shorter one.
    pub handshake_timeout: Option<Duration>,
    /// The server's public key, if known (pinned): a server that proves
    /// another key is refused with [`CloseReason::ServerKeyMismatch`]. When
    /// `None`, the key is trusted on first use and reported with
    /// [`ClientEvent::ServerKey`] for the driver to remember.
    pub server_key: Option<[u8; KEY_LEN]>,
    /// A device token from an earlier login of this account on this server
    /// ([`ClientEvent::LoggedIn`]'s `device`), presented with the password:
    /// it exempts the check from the per-account limit on failed logins.
    /// `Some("")` asks for a first one; `None` (the default) sends nothing,
    /// for a driver that cannot keep one.
    pub device_token: Option<String>,
    /// Ask the server to issue the session's connection id in its
    /// handshake answer (true, the default): the reset token is then that
    /// of an id no one saw before the session existed, so an attacker who
    /// can inject datagrams cannot learn it (`PROTOCOL.md` §4.7). False
    /// speaks like the first clients of version 1 (the worked example of
    /// `PROTOCOL.md` §6.2 does).
    pub issued_connection_id: bool,
    /// Where the user left each room, and the offline messages already
    /// seen, from an earlier session (see [`Client::memory`]): sent with
    /// the password so that the server replays what was missed.
    pub memory: RoomMemory,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            channel: ChannelConfig {
                keepalive: Some(Duration::from_secs(1)),
                ..ChannelConfig::default()
            },
            handshake_timeout: None,
            server_key: None,
            device_token: None,
            issued_connection_id: true,
            memory: RoomMemory::default(),
        }
    }
}

#[derive(Debug)]
enum Phase {
    Handshaking {
        initiator: Initiator,
        cookie: Option<[u8; COOKIE_LEN]>,
        send_at: Instant,
        interval: Duration,
        deadline: Instant,
        /// Holds what the user sends before the handshake is done; it
        /// becomes the connection's channel.
        channel: Channel,
    },
    Established {
        connection: Connection,
        reset_token: [u8; RESET_TOKEN_LEN],
    },
}

impl Phase {
    /// The channel: the handshake's, then the connection's.
    fn channel_mut(&mut self) -> &mut Channel {
        match self {
            Phase::Handshaking { channel, .. } => channel,
            Phase::Established { connection, .. } => connection.channel_mut(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    LoggingIn,
    LoggedIn,
    Exiting,
    Closed(CloseReason),
}

/// A client's state machine.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    connection_id: u64,
    phase: Phase,
    state: State,
    name: String,
    events: EventQueue,
    /// The invite code sent with the password ([`Client::set_invite`]).
    invite: Option<String>,
    /// The latest `password_required`'s `registration`.
    registration: Option<RegistrationMode>,
    /// The plaintext of a datagram being opened, kept between datagrams
    /// so that taking one in allocates nothing.
    opened: Vec<u8>,
}

impl Client {
    /// Starts a session as `username`: the first datagram (an Initial with
    /// the handshake's first message) is ready at once. `random` must be 32
    /// bytes from the OS: the connection id and the ephemeral key come from
    /// it.
    pub fn new(
        now: Instant,
        config: ClientConfig,
        random: [u8; 32],
        username: &str,
    ) -> Result<Client, StartError> {
        validate_username(username).map_err(StartError::Username)?;
        let mut rng = Rng::from_seed(random);
        let connection_id = rng.next_u64();
        // Building a Noise initiator with valid constant parameters and a
        // seeded generator does not fail; if it ever did, it says so.
        let initiator =
            Initiator::new(connection_id, rng.seed()).map_err(|_| StartError::Handshake)?;
        let mut channel = Channel::new(config.channel.clone(), connection_id, now);
        let handshake_timeout = config
            .handshake_timeout
            .unwrap_or(config.channel.idle_timeout);
        let msg = session::encode(&ClientMessage::User {
            name: username.to_string(),
        });
        // A username message is far below every limit of a new channel; it
        // waits in the channel until the handshake is done.
        let _ = channel.send(Marker::Command, &msg);
        Ok(Client {
            phase: Phase::Handshaking {
                initiator,
                cookie: None,
                send_at: now,
                interval: HANDSHAKE_INTERVAL,
                deadline: now + handshake_timeout,
                channel,
            },
            config,
            connection_id,
            state: State::Connecting,
            name: username.to_string(),
            events: EventQueue::default(),
            invite: None,
            registration: None,
            opened: Vec::new(),
        })
    }

    /// An invite code to send with the password, for registering a new
    /// account on a server whose registration is by invite (PROTOCOL.md
    /// §5.12); `None` sends none.
    pub fn set_invite(&mut self, code: Option<String>) {
        self.invite = code.filter(|c| !c.is_empty());
    }

    /// The invite code set with [`Client::set_invite`].
    pub fn invite(&self) -> Option<&str> {
        self.invite.as_deref()
    }

    /// How the server said a new account registers (the latest
    /// [`ClientEvent::PasswordRequired`]'s `registration`): `None` when
    /// registration is open or the account exists.
    pub fn registration(&self) -> Option<RegistrationMode> {
        self.registration
    }

    /// The largest datagram the client sends now, in bytes: 1200 until a
    /// probe showed the path carries more (`PROTOCOL.md` §3.9).
    pub fn path_max(&self) -> usize {
        self.channel().path_max()
    }

    /// The connection id: random, chosen at start, then (once established)
    /// the one the server issued, if the client asked for one.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// Whether the handshake is done.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established { .. })
    }

    /// The username (as the server spells it once it has answered).
    pub fn username(&self) -> &str {
        &self.name
    }

    /// Whether the login succeeded and the session is open.
    pub fn is_logged_in(&self) -> bool {
        self.state == State::LoggedIn
    }

    /// Why the session ended, if it has.
    pub fn closed(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// Whether everything sent was acknowledged by the server.
    pub fn is_flushed(&self) -> bool {
        self.channel().is_flushed()
    }

    /// The channel's smoothed round-trip time, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.channel().srtt()
    }

    fn channel(&self) -> &Channel {
        match &self.phase {
            Phase::Handshaking { channel, .. } => channel,
            Phase::Established { connection, .. } => connection.channel(),
        }
    }

    fn channel_mut(&mut self) -> &mut Channel {
        self.phase.channel_mut()
    }

    fn send(&mut self, message: &ClientMessage) -> Result<(), CommandError> {
        if matches!(self.state, State::Closed(_)) {
            return Err(CommandError::Closed);
        }
        let marker = match message {
            ClientMessage::Pm { .. } | ClientMessage::Dm { .. } | ClientMessage::Say { .. } => {
                Marker::Data
            }
            _ => Marker::Command,
        };
        self.channel_mut()
            .send(marker, &session::encode(message))
            .map_err(CommandError::Send)
    }

    /// Step 3: sends the password (after [`ClientEvent::PasswordRequired`] or
    /// [`ClientEvent::LoginFailed`]).
    pub fn submit_password(&mut self, password: &str) -> Result<(), CommandError> {
        if password.is_empty() || password.len() > MAX_PASSWORD {
            return Err(CommandError::InvalidPassword);
        }
        let resume = self
            .config
            .memory
            .positions
            .iter()
            .take(session::MAX_RESUME)
            .map(|(room, (epoch, offset))| session::RoomPosition {
                room: room.clone(),
                epoch: epoch.clone(),
                offset: *offset,
            })
            .collect();
        self.send(&ClientMessage::Password {
            password: password.to_string(),
            device: self.config.device_token.clone(),
            resume,
            invite: self.invite.clone(),
        })?;
        if self.state == State::Connecting {
            self.state = State::LoggingIn;
        }
        Ok(())
    }

    fn require_login(&self) -> Result<(), CommandError> {
        match self.state {
            State::LoggedIn => Ok(()),
            State::Closed(_) | State::Exiting => Err(CommandError::Closed),
            _ => Err(CommandError::NotLoggedIn),
        }
    }

    /// Sends an operation: PM (answered by
    /// [`ClientEvent::OperationReady`]), DM (answered by
    /// [`ClientEvent::Online`]) or EX (answered by
    /// [`ClientEvent::Closed`]).
    pub fn request_operation(&mut self, op: Operation) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Op { op, reason: None })?;
        if op == Operation::EX {
            self.state = State::Exiting;
        }
        Ok(())
    }

    /// Sends EX with what the user says when leaving, which the others see
    /// (answered by [`ClientEvent::Closed`]). The reason must follow the
    /// text rules and be at most [`MAX_QUIT_MESSAGE`] bytes.
    pub fn exit_saying(&mut self, reason: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_text(reason).map_err(CommandError::InvalidText)?;
        if reason.len() > MAX_QUIT_MESSAGE {
            return Err(CommandError::ReasonTooLong(reason.len()));
        }
        self.send(&ClientMessage::Op {
            op: Operation::EX,
            reason: Some(reason.to_string()),
        })?;
        self.state = State::Exiting;
        Ok(())
    }

    /// Sends the text of a public message (with or without
    /// `request_operation(PM)` before it).
    pub fn send_public(&mut self, text: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send(&ClientMessage::Pm {
            text: text.to_string(),
        })
    }

    /// Sends a direct message (with or without `request_operation(DM)`
    /// before it).
    pub fn send_direct(&mut self, to: &str, text: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_username(to).map_err(CommandError::InvalidUsername)?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send(&ClientMessage::Dm {
            to: to.to_string(),
            text: text.to_string(),
        })
    }

    /// Asks for the online list.
    pub fn request_online(&mut self) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Who)
    }

    /// Marks the user away with `text` (answered by [`ClientEvent::Away`]),
    /// or back with `None` or an empty text. The text must follow the text
    /// rules and be at most [`MAX_AWAY`] bytes.
    pub fn set_away(&mut self, text: Option<&str>) -> Result<(), CommandError> {
        self.require_login()?;
        let text = text.filter(|t| !t.is_empty());
        if let Some(t) = text {
            validate_text(t).map_err(CommandError::InvalidText)?;
            if t.len() > MAX_AWAY {
                return Err(CommandError::AwayTooLong(t.len()));
            }
        }
        self.send(&ClientMessage::Away {
            text: text.map(ToString::to_string),
        })
    }

    /// Asks about one user (answered by [`ClientEvent::Whois`], or by
    /// [`ClientEvent::Error`] `unknown_user`).
    pub fn request_whois(&mut self, name: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_username(name).map_err(CommandError::InvalidUsername)?;
        self.send(&ClientMessage::Whois {
            name: name.to_string(),
        })
    }

    /// Sends a notice to everyone online (server admins only).
    pub fn send_notice(&mut self, text: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send(&ClientMessage::Notice {
            text: text.to_string(),
        })
    }

    /// Asks for the latest `limit` entries of the audit log (server admins
    /// only; others get `error not_permitted`).
    pub fn request_audit(&mut self, limit: Option<u32>) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Audit { limit })
    }

    /// Bans an address range (server admins only): `range` is an address
    /// or a network (`203.0.113.0/24`), `secs` how long (absent: until
    /// lifted; the server refuses 0 with `bad_message`), `reason` why.
    /// Answered by `mod_ok` once the ban is on the server's disk.
    pub fn ban_address(
        &mut self,
        range: &str,
        secs: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        self.require_login()?;
        let net = crate::session::parse_range(range).map_err(CommandError::InvalidRange)?;
        if let Some(r) = reason {
            validate_text(r).map_err(CommandError::InvalidText)?;
            if r.len() > MAX_QUIT_MESSAGE {
                return Err(CommandError::ReasonTooLong(r.len()));
            }
        }
        self.send(&ClientMessage::BanAddress {
            range: net.to_string(),
            secs,
            reason: reason.map(str::to_string),
        })
    }

    /// Lifts the ban of exactly `range` (server admins only).
    pub fn unban_address(&mut self, range: &str) -> Result<(), CommandError> {
        self.require_login()?;
        let net = crate::session::parse_range(range).map_err(CommandError::InvalidRange)?;
        self.send(&ClientMessage::UnbanAddress {
            range: net.to_string(),
        })
    }

    /// Asks for the address bans in force (server admins only), after
    /// `after` when given (the next page).
    pub fn request_bans(&mut self, after: Option<&str>) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Bans {
            after: after.map(str::to_string),
        })
    }

    /// Suspends the account `name` for `secs` seconds, or until lifted
    /// (server admins only; answered by [`ClientEvent::ModOk`]).
    pub fn suspend(
        &mut self,
        name: &str,
        secs: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        self.require_login()?;
        validate_username(name).map_err(CommandError::InvalidUsername)?;
        let reason = check_reason(reason)?;
        self.send(&ClientMessage::Suspend {
            name: name.to_string(),
            secs,
            reason,
        })
    }

    /// Lifts the suspension of the account `name` (server admins only).
    pub fn unsuspend(&mut self, name: &str) -> Result<(), CommandError> {
        self.require_login()?;
        validate_username(name).map_err(CommandError::InvalidUsername)?;
        self.send(&ClientMessage::Unsuspend {
            name: name.to_string(),
        })
    }

    /// Ends the live session of `name` (server admins only).
    pub fn disconnect_user(
        &mut self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        self.require_login()?;
        validate_username(name).map_err(CommandError::InvalidUsername)?;
        let reason = check_reason(reason)?;
        self.send(&ClientMessage::Disconnect {
            name: name.to_string(),
            reason,
        })
    }

    /// Sets who may register new accounts (server admins only).
    pub fn set_registration(&mut self, mode: RegistrationMode) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Registration { mode })
    }

    /// Asks for a new invite code (server admins only; answered by
    /// [`ClientEvent::InviteCode`]).
    pub fn request_invite(&mut self) -> Result<(), CommandError> {
        self.require_login()?;
        self.send(&ClientMessage::Invite)
    }

    /// Handles a datagram from the server. Datagrams of other connections,
    /// malformed, unauthenticated or replayed ones are ignored.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(header) = Header::decode(bytes) else {
            return;
        };
        if header.connection_id != self.connection_id || matches!(self.state, State::Closed(_)) {
            return;
        }
        let body = &bytes[HEADER_LEN..];
        match (&mut self.phase, header.kind) {
            (
                Phase::Handshaking {
                    cookie, send_at, ..
                },
                PacketKind::Retry,
            ) => {
                if let Ok(c) = <[u8; COOKIE_LEN]>::try_from(body) {
                    *cookie = Some(c);
                    *send_at = now;
                }
            }
            (
                Phase::Handshaking {
                    initiator, channel, ..
                },
                PacketKind::Handshake,
            ) => {
                let Ok(est) = initiator.finish(body) else {
                    return;
                };
                // The answer must be the kind asked for: an id issued by the
                // server exactly when the client asked for one.
                if est.issued_id.is_some() != self.config.issued_connection_id
                    || est.issued_id == Some(0)
                {
                    return;
                }
                if let Some(expected) = self.config.server_key
                    && !crypto::ct_eq(&expected, &est.server_key)
                {
                    self.close(CloseReason::ServerKeyMismatch {
                        expected,
                        actual: est.server_key,
                    });
                    return;
                }
                self.events.push(ClientEvent::ServerKey(est.server_key));
                // The channel moves into the connection; the empty one left
                // in its place (which allocates nothing) goes with the
                // handshake's state.
                let mut channel = core::mem::replace(
                    channel,
                    Channel::new(self.config.channel.clone(), self.connection_id, now),
                );
                if let Some(id) = est.issued_id {
                    self.connection_id = id;
                    channel.set_connection_id(id);
                }
                channel.restart(now);
                self.phase = Phase::Established {
                    connection: Connection::new(est.transport, channel),
                    reset_token: est.reset_token,
                };
            }
            (Phase::Established { connection, .. }, PacketKind::Data) => {
                // The server's address is the driver's business: every
                // datagram comes from the current path. A dropped one
                // (unauthenticated, replayed, malformed) changes nothing.
                let received =
                    connection.handle_datagram_in(now, Source::Current, bytes, &mut self.opened);
                if received.is_ok() {
                    self.process();
                }
            }
            (Phase::Established { reset_token, .. }, PacketKind::Reset)
                if crypto::ct_eq(reset_token, body) =>
            {
                self.close(CloseReason::ServerClosed(CloseCode::UnknownConnection));
            }
            _ => {}
        }
    }

    /// Handles expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Handshaking { deadline, .. } => {
                if now >= *deadline {
                    self.close(CloseReason::NoAnswer);
                }
            }
            Phase::Established { connection, .. } => {
                connection.channel_mut().handle_timeout(now);
                self.process();
            }
        }
    }

    /// The next datagram for the server, written into `buf` (cleared
    /// first); returns its length. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        match &mut self.phase {
            Phase::Handshaking {
                initiator,
                cookie,
                send_at,
                interval,
                ..
            } => {
                if matches!(self.state, State::Closed(_)) || now < *send_at {
                    return None;
                }
                // A fixed interval, no backoff: the handshake needs two round
                // trips to succeed, and the deadline bounds the tries.
                *send_at = now + *interval;
                let initial = Initial {
                    cookie: cookie.as_ref().map(|c| &c[..]),
                    msg1: initiator.msg1(),
                    issue_id: self.config.issued_connection_id,
                };
                buf.clear();
                buf.extend_from_slice(&initial.encode(self.connection_id));
                Some(buf.len())
            }
            Phase::Established { connection, .. } => connection.poll_transmit(now, buf),
        }
    }

    /// The next deadline for [`Client::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Closed(_)) {
            return None;
        }
        match &self.phase {
            Phase::Handshaking {
                send_at, deadline, ..
            } => Some((*send_at).min(*deadline)),
            Phase::Established { connection, .. } => connection.channel().poll_timeout(),
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop()
    }

    /// The next event, a chat message borrowed from the client until the
    /// next call instead of copied into a [`ClientEvent`]: the same events
    /// in the same order as [`Client::poll_event`], without an allocation
    /// per message, for a driver that handles many messages (a bot, a
    /// bridge, a load generator).
    #[must_use]
    pub fn poll_event_ref(&mut self) -> Option<EventRef<'_>> {
        self.events.pop_ref()
    }

    /// Ends the session without EX (for example on a fatal local error).
    pub fn abort(&mut self) {
        self.channel_mut().close(CloseCode::Normal);
        self.close(CloseReason::Exit);
    }

    fn close(&mut self, reason: CloseReason) {
        // After EX, a server that closes or no longer knows the session (its
        // `bye` was lost) ends it as the user asked: not a failure.
        let reason = match reason {
            CloseReason::ServerClosed(CloseCode::Normal | CloseCode::UnknownConnection)
                if self.state == State::Exiting =>
            {
                CloseReason::Exit
            }
            other => other,
        };
        if !matches!(self.state, State::Closed(_)) {
            self.state = State::Closed(reason.clone());
            self.events.push(ClientEvent::Closed(reason));
        }
    }

    fn process(&mut self) {
        // Each message is read where the channel holds it: no copy.
        // The phase alone is borrowed, so that the memory and the queue can
        // take a message while its bytes are.
        while let Some(bytes) = self.phase.channel_mut().recv_slice() {
            if let Some(chat) = session::read_chat(bytes) {
                // Straight from the channel's bytes into the queue's.
                if !matches!(self.state, State::Closed(_)) {
                    take_chat(&mut self.config.memory, &mut self.events, &chat);
                }
                continue;
            }
            // Not in the reference server's chat shape (read above): serde
            // reads it, once.
            let Ok(msg) = session::decode::<ServerMessage>(bytes) else {
                // A newer server may send messages this client does not
                // know: skip them.
                continue;
            };
            self.on_message(msg);
        }
        if let Some(e) = self.channel().error() {
            let reason = match e {
                ChannelError::PeerClosed(CloseCode::ServerShutdown) => CloseReason::ServerShutdown,
                ChannelError::PeerClosed(code) => CloseReason::ServerClosed(code),
                e => CloseReason::ServerLost(e),
            };
            self.close(reason);
        }
    }
}

#[cfg(test)]
mod tests;

/// A reason for `suspend` or `disconnect`: text of at most
/// [`session::MAX_REASON`] bytes; empty is none.
fn check_reason(reason: Option<&str>) -> Result<Option<String>, CommandError> {
    let Some(r) = reason.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    validate_text(r).map_err(CommandError::InvalidText)?;
    if r.len() > session::MAX_REASON {
        return Err(CommandError::ReasonTooLong(r.len()));
    }
    Ok(Some(r.to_string()))
}
