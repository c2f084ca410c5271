//! A peer that speaks the session protocol over a bare reliable channel.

use udpchat_core::crypto::{self, Initiator, ReplayWindow, Transport};
use udpchat_core::reliable::{Channel, ChannelConfig};
use udpchat_core::session::{self, ClientMessage, ServerMessage};
use udpchat_core::time::{Duration, Instant};
use udpchat_core::wire::{COOKIE_LEN, Datagram, HEADER_LEN, Header, Initial, Marker, PacketKind};

use crate::server_key;

/// A peer speaking the session protocol over a bare reliable channel: it
/// sends whatever the test queues, valid or not, and keeps what the server
/// sends. It does its own handshake with the public crypto API (Initial,
/// Retry, Initial with the cookie, Handshake), retransmitting the Initial
/// like a client does, then seals and opens its channel's datagrams.
#[derive(Debug)]
pub struct RawPeer {
    /// The channel to the server.
    pub channel: Channel,
    /// Whether the handshake is done.
    pub established: bool,
    /// The server's messages, with when they arrived.
    pub received: Vec<(Instant, ServerMessage)>,
    /// Valid resets received (the server did not know the connection).
    pub resets: u32,
    /// How many of `received` the harness has looked at.
    pub(crate) handled: usize,
    initiator: Initiator,
    cookie: Option<[u8; COOKIE_LEN]>,
    send_at: Instant,
    interval: Duration,
    max_interval: Duration,
    /// The handshake is abandoned at this instant (the idle timeout).
    deadline: Instant,
    transport: Option<Transport>,
    replay: ReplayWindow,
    reset_token: [u8; crypto::RESET_TOKEN_LEN],
}

impl RawPeer {
    /// A raw peer for connection `connection_id` whose ephemeral key comes
    /// from `seed`, starting its handshake at `now`.
    pub fn new(config: ChannelConfig, connection_id: u64, seed: [u8; 32], now: Instant) -> Self {
        RawPeer {
            initiator: Initiator::new(connection_id, seed).expect("a valid initiator"),
            cookie: None,
            send_at: now,
            interval: config.initial_rto,
            max_interval: config.max_rto,
            deadline: now + config.idle_timeout,
            transport: None,
            replay: ReplayWindow::default(),
            reset_token: [0; crypto::RESET_TOKEN_LEN],
            channel: Channel::new(config, connection_id, now),
            established: false,
            received: Vec::new(),
            resets: 0,
            handled: 0,
        }
    }

    /// Queues a session message.
    pub fn send(&mut self, message: &ClientMessage) {
        let marker = match message {
            ClientMessage::Pm { .. } | ClientMessage::Dm { .. } => Marker::Data,
            _ => Marker::Command,
        };
        self.channel
            .send(marker, &session::encode(message))
            .expect("the raw channel accepts the message");
    }

    /// The connection id.
    pub fn connection_id(&self) -> u64 {
        self.channel.connection_id()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.established {
            self.channel.poll_timeout()
        } else if self.send_at < self.deadline {
            Some(self.send_at)
        } else {
            None
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.established {
            self.channel.handle_timeout(now);
        }
    }

    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match &self.transport {
            Some(t) => {
                let plain = self.channel.poll_transmit(now)?;
                Some(t.seal(&plain).expect("a plaintext datagram seals"))
            }
            None => {
                if now < self.send_at || self.send_at >= self.deadline {
                    return None;
                }
                self.send_at = now + self.interval;
                self.interval = (self.interval + self.interval).min(self.max_interval);
                let initial = Initial {
                    cookie: self.cookie.as_ref().map(|c| &c[..]),
                    msg1: self.initiator.msg1(),
                    issue_id: true,
                };
                Some(initial.encode(self.connection_id()))
            }
        }
    }

    pub(crate) fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(header) = Header::decode(bytes) else {
            return;
        };
        if header.connection_id != self.connection_id() {
            return;
        }
        let body = &bytes[HEADER_LEN..];
        match (header.kind, &self.transport) {
            (PacketKind::Retry, None) => {
                if let Ok(c) = <[u8; COOKIE_LEN]>::try_from(body) {
                    self.cookie = Some(c);
                    self.send_at = now;
                }
            }
            (PacketKind::Handshake, None) => {
                let Ok(est) = self.initiator.finish(body) else {
                    return;
                };
                assert_eq!(&est.server_key, server_key().public());
                let id = est.issued_id.expect("the server issues the connection id");
                self.channel.set_connection_id(id);
                self.transport = Some(est.transport);
                self.reset_token = est.reset_token;
                self.established = true;
                self.channel.restart(now);
            }
            (PacketKind::Data, Some(t)) => {
                let Ok(plain) = t.open(bytes) else {
                    return;
                };
                if !self.replay.is_fresh(header.packet_number) {
                    return;
                }
                self.replay.record(header.packet_number);
                let Ok(d) = Datagram::decode(&plain) else {
                    return;
                };
                self.channel.handle_frames(now, d.frames());
                while let Some(m) = self.channel.recv() {
                    let m: ServerMessage =
                        session::decode(&m).expect("the server sends valid JSON");
                    self.received.push((now, m));
                }
            }
            (PacketKind::Reset, Some(_)) if crypto::ct_eq(&self.reset_token, body) => {
                self.resets += 1;
            }
            _ => {}
        }
    }
}
