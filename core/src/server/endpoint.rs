//! The endpoint's entry points: one [`Input`] in ([`Server::handle_input`]),
//! one [`Output`] out ([`Server::poll_output`]); demultiplexing datagrams by
//! connection id, established sessions' datagrams, and the queues of
//! requests and events the driver drains.

use super::*;

/// Everything that happens to a server: what [`Server::handle_input`] takes.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived from `from` ([`Server::handle_datagram`]).
    Datagram {
        /// When it was read.
        now: Instant,
        /// Who sent it.
        from: SocketAddr,
        /// The datagram.
        bytes: &'a [u8],
    },
    /// The deadline of the last [`Output::Timeout`] passed
    /// ([`Server::handle_timeout`]).
    Timeout(Instant),
    /// A [`Request`] is done ([`Server::handle_response`]).
    Response(Instant, Response),
}

/// What a server asks of its driver: what [`Server::poll_output`] returns.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Send the first `len` bytes of the buffer given to
    /// [`Server::poll_output`] to `to`.
    Transmit(Transmit),
    /// Something for the operator's log.
    Event(ServerEvent),
    /// Slow work, off the datagram loop: answer with [`Input::Response`].
    Request(Request),
    /// Nothing more to do until this deadline (`None`: until the next
    /// datagram or response): then give [`Input::Timeout`].
    Timeout(Option<Instant>),
}

impl Server {
    /// Handles one received datagram.
    ///
    /// Data datagrams and Initials that cost little (a Retry, a repeated
    /// Handshake, a drop) are handled at once. An Initial with a valid
    /// cookie needs a handshake (X25519 work): it is done at once while
    /// the turn's budget lasts ([`ServerConfig::handshakes_per_turn`]) and
    /// no other Initial waits; otherwise the Initial waits for
    /// [`Server::handle_timeout`] in a bounded queue
    /// ([`ServerConfig::max_queued_initials`]; when full it is dropped,
    /// [`DropReason::InitialQueueFull`]).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.now = self.now.max(now);
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        // A banned source gets nothing, whatever it sends: no Retry, no
        // Handshake, no Reset, and a session's datagrams moving there are
        // not opened (PROTOCOL.md §4.5, §4.6, §5.12).
        if self.is_banned(from.ip()) {
            self.stats.dropped_banned += 1;
            self.drop_event(from, DropReason::Banned);
            return;
        }
        let header = match Header::decode(bytes) {
            Ok(h) => h,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::Malformed(e));
                return;
            }
        };
        match header.kind {
            PacketKind::Initial => self.on_initial(now, from, header, bytes),
            PacketKind::Data => self.on_data(now, from, header, bytes),
            PacketKind::Retry | PacketKind::Handshake | PacketKind::Reset => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::UnexpectedKind);
            }
        }
    }

    pub(super) fn on_data(&mut self, now: Instant, from: SocketAddr, header: Header, bytes: &[u8]) {
        let id = header.connection_id;
        let Some(s) = self.sessions.get_mut(&id) else {
            self.stats.dropped_unknown += 1;
            self.drop_event(from, DropReason::UnknownConnection);
            // Tell a client whose session this server lost (say, after a
            // restart) with a token only this server can make; the answer is
            // never larger than the datagram that asked.
            if bytes.len() > HEADER_LEN + RESET_TOKEN_LEN {
                let token = crypto::reset_token(&self.key, id);
                self.stats.resets_sent += 1;
                self.send_direct(from, encode_simple(PacketKind::Reset, id, &token));
            }
            return;
        };
        let source = if from == s.addr {
            Source::Current
        } else {
            // A move to an address that already has its share of sessions
            // is not followed (the session stays at its old address).
            Source::NewAddress {
                may_migrate: (self.per_ip.get(&from.ip()).copied().unwrap_or(0) as usize)
                    < self.config.max_sessions_per_ip,
            }
        };
        let result = s
            .connection
            .handle_datagram_in(now, source, bytes, &mut self.opened);
        if result.is_ok() || result.as_ref().is_err_and(DatagramError::was_authenticated) {
            // The client's first authenticated datagram shows that it has
            // the handshake's answer.
            s.handshake_reply = None;
        }
        match result {
            Ok(Received::Delivered) => {}
            Ok(Received::Migrated) => {
                let old = core::mem::replace(&mut s.addr, from);
                self.events.push_back(ServerEvent::Migrated {
                    connection_id: id,
                    from: old,
                    to: from,
                });
                self.count_ip(old.ip(), false);
                self.count_ip(from.ip(), true);
            }
            Err(e) => {
                let reason = match e {
                    DatagramError::Unauthenticated => {
                        self.stats.dropped_unauthenticated += 1;
                        DropReason::Unauthenticated
                    }
                    DatagramError::Replay => {
                        self.stats.dropped_replay += 1;
                        DropReason::Replay
                    }
                    DatagramError::MigrationRefused => {
                        self.stats.dropped_refused += 1;
                        DropReason::Refused
                    }
                    DatagramError::Malformed(_) => {
                        self.stats.dropped_malformed += 1;
                        DropReason::Malformed(DecodeError::MalformedFrame)
                    }
                };
                self.drop_event(from, reason);
                return;
            }
        }
        self.process(now, id);
    }

    pub(super) fn count_ip(&mut self, ip: IpAddr, add: bool) {
        if add {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        } else if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    pub(super) fn send_direct(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.direct.push_back((to, bytes));
    }

    /// Hands the server one input. Then drain [`Server::poll_output`] until
    /// it returns [`Output::Timeout`].
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Datagram { now, from, bytes } => self.handle_datagram(now, from, bytes),
            Input::Timeout(now) => self.handle_timeout(now),
            Input::Response(now, response) => self.handle_response(now, response),
        }
    }

    /// The next thing to do: datagrams to send first (written into `buf`,
    /// which is cleared first), then slow work, then events, and, once all
    /// are drained, the next deadline. Call until [`Output::Timeout`] after
    /// every input.
    pub fn poll_output(&mut self, now: Instant, buf: &mut Vec<u8>) -> Output {
        if let Some(t) = self.poll_transmit(now, buf) {
            return Output::Transmit(t);
        }
        if let Some(r) = self.poll_request() {
            return Output::Request(r);
        }
        if let Some(e) = self.poll_event() {
            return Output::Event(e);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// The next slow job for the driver.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The next event for the operator's log.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Initiator, StaticKey};
    use crate::wire::{Header, Initial, PacketKind};

    #[test]
    fn an_initial_in_brings_a_retry_out_then_the_timeout() {
        let now = Instant::ZERO;
        let key = StaticKey::from_private([7; 32]);
        let mut server = Server::new(ServerConfig::default(), [], key, [1; 32]);
        let from: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let init = Initiator::new(9, [4; 32]).unwrap();
        let first = Initial {
            cookie: None,
            msg1: init.msg1(),
            issue_id: false,
        }
        .encode(9);
        server.handle_input(Input::Datagram {
            now,
            from,
            bytes: &first,
        });
        let mut buf = Vec::new();
        let Output::Transmit(t) = server.poll_output(now, &mut buf) else {
            panic!("a Retry first");
        };
        assert_eq!((t.to, t.len), (from, buf.len()));
        assert_eq!(Header::decode(&buf).unwrap().kind, PacketKind::Retry);
        // A Retry keeps no state: nothing is left to do.
        assert!(matches!(
            server.poll_output(now, &mut buf),
            Output::Timeout(None)
        ));
    }
}
