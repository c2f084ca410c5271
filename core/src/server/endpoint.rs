//! The endpoint's entry points: demultiplexing datagrams by connection
//! id, established sessions' datagrams, and the queues of requests and
//! events the driver drains.

use super::*;

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
        let result = s.connection.handle_datagram(now, source, bytes);
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
        self.direct.push_back(Transmit { to, bytes });
    }

    /// The next slow job for the driver.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The next event for the operator's log.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}
