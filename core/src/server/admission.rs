//! Admission: Initials, stateless address cookies and Retry, the queue of
//! Initials and its handshake budget, the per-address and handshake
//! limits, and the Noise responder.
//!
//! An Initial costs the server little until its cookie is valid: size and
//! decoding checks, a BLAKE2s MAC, at most a 32-byte Retry. Those are
//! answered at once. What costs is the handshake that follows a valid
//! cookie (three X25519 operations), so those Initials are budgeted: at
//! most [`ServerConfig::handshakes_per_turn`] per turn (a turn ends with
//! each [`Server::handle_timeout`]). One that arrives while the budget
//! lasts and none waits is answered at once, within
//! [`Server::handle_datagram`]; any other waits, in order of arrival, in a
//! queue of at most [`ServerConfig::max_queued_initials`], for the next
//! turn, after the datagrams the driver reads meanwhile. An Initial that a
//! limit refuses (per address, sessions, rate) spends nothing of the
//! budget: the limits are checked when its turn comes, just before the
//! handshake.

use super::*;

/// An Initial whose cookie proved its address, waiting for its handshake.
#[derive(Debug)]
pub(super) struct QueuedInitial {
    pub(super) from: SocketAddr,
    /// The Initial's connection id.
    id: u64,
    msg1: [u8; MSG1_LEN],
    issue_id: bool,
}

impl Server {
    pub(super) fn on_initial(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: Header,
        bytes: &[u8],
    ) {
        // Exactly 1200 bytes (PROTOCOL.md §2.2): shorter would let a Retry
        // amplify, longer is not a client of this protocol.
        if bytes.len() != MIN_INITIAL_LEN {
            self.stats.dropped_refused += 1;
            self.drop_event(from, DropReason::InitialWrongSize);
            return;
        }
        let initial = match Initial::decode(&bytes[HEADER_LEN..]) {
            Ok(i) => i,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::Malformed(e));
                return;
            }
        };
        let id = header.connection_id;
        if self.answer_existing(from, id, initial.issue_id) {
            return;
        }
        let cookie_ok = initial
            .cookie
            .is_some_and(|c| self.cookies.verify(now, &from, id, c));
        if !cookie_ok {
            // Stateless: prove the address first. The Retry is far smaller
            // than the padded Initial that asked for it.
            let cookie = self.cookies.cookie(now, &from, id);
            self.stats.retries_sent += 1;
            self.send_direct(from, encode_simple(PacketKind::Retry, id, &cookie));
            return;
        }
        let Ok(msg1) = <[u8; MSG1_LEN]>::try_from(initial.msg1) else {
            self.stats.dropped_malformed += 1;
            self.drop_event(from, DropReason::Malformed(DecodeError::MalformedFrame));
            return;
        };
        let queued = QueuedInitial {
            from,
            id,
            msg1,
            issue_id: initial.issue_id,
        };
        if self.initials.is_empty() && self.handshake_budget > 0 {
            self.admit(now, queued);
        } else if self.initials.len() < self.config.max_queued_initials {
            self.initials.push_back(queued);
        } else {
            // As a full socket buffer would: the client sends its Initial
            // again.
            self.stats.dropped_queue_full += 1;
            self.drop_event(from, DropReason::InitialQueueFull);
        }
    }

    /// Starts a turn: renews the handshake budget and spends it on the
    /// Initials that wait, oldest first.
    pub(super) fn admit_queued(&mut self, now: Instant) {
        self.handshake_budget = self.config.handshakes_per_turn.max(1);
        while self.handshake_budget > 0 {
            let Some(queued) = self.initials.pop_front() else {
                break;
            };
            self.admit(now, queued);
        }
    }

    /// Drops every Initial that waits: the server is shutting down.
    pub(super) fn refuse_queued_initials(&mut self) {
        for queued in core::mem::take(&mut self.initials) {
            self.stats.dropped_refused += 1;
            self.drop_event(queued.from, DropReason::Refused);
        }
    }

    /// Handles an Initial whose connection id names an existing session:
    /// a retransmission (the Handshake answer was lost) is answered again,
    /// anything else dropped. False when there is no such session.
    fn answer_existing(&mut self, from: SocketAddr, id: u64, issue_id: bool) -> bool {
        // The session this Initial's connection id already names, if any.
        let existing = if issue_id {
            self.issued.get(&id).copied()
        } else {
            Some(id)
        };
        let Some(s) = existing.and_then(|conn| self.sessions.get(&conn)) else {
            return false;
        };
        match &s.handshake_reply {
            Some(reply) if s.addr == from => {
                let reply = reply.clone();
                self.send_direct(from, reply);
            }
            _ => {
                self.stats.dropped_spoofed += 1;
                self.drop_event(from, DropReason::AddressMismatch);
            }
        }
        true
    }

    /// Creates the session of an Initial with a valid cookie, unless a
    /// limit refuses it; spends one handshake of the turn's budget when it
    /// gets as far as the X25519 work.
    fn admit(&mut self, now: Instant, queued: QueuedInitial) {
        let QueuedInitial {
            from,
            id,
            msg1,
            issue_id,
        } = queued;
        // A retransmission of an Initial that waited behind its first copy.
        if self.answer_existing(from, id, issue_id) {
            return;
        }
        // The client receives at its address: state may be kept from here.
        let ip = from.ip();
        let per_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        let prefix = address_prefix(ip);
        let per_prefix = self
            .handshaking_per_prefix
            .get(&prefix)
            .copied()
            .unwrap_or(0);
        if self.shutting_down
            || self.sessions.len() >= self.config.max_sessions
            || per_ip as usize >= self.config.max_sessions_per_ip
            || per_prefix as usize >= self.config.max_handshaking_per_ip
            || (self.handshaking >= self.config.max_handshaking
                && !self.evict_oldest_unauthenticated(now))
        {
            self.stats.dropped_refused += 1;
            self.drop_event(from, DropReason::Refused);
            return;
        }
        let limits = self.config.handshakes;
        let bucket = self
            .handshake_buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::full(now, limits));
        if !bucket.take(now, limits) {
            self.stats.dropped_rate_limited += 1;
            self.drop_event(from, DropReason::RateLimited);
            return;
        }
        if self.handshake_buckets.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.handshake_buckets, now, limits);
        }
        self.handshake_budget = self.handshake_budget.saturating_sub(1);
        self.stats.handshakes += 1;
        let seed = self.rng.seed();
        // The session's id: the client's, or (when it asks) one the server
        // draws now and tells only inside msg2, so that no one could have
        // asked for its reset token before the session existed.
        let conn = if issue_id {
            loop {
                let c = self.rng.next_u64();
                if c != 0 && !self.sessions.contains_key(&c) {
                    break c;
                }
            }
        } else {
            id
        };
        let issued_id = issue_id.then_some(conn);
        let (transport, msg2) = match crypto::respond(&self.key, id, seed, &msg1, issued_id) {
            Ok(r) => r,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::HandshakeFailed);
                return;
            }
        };
        let reply = encode_simple(PacketKind::Handshake, id, &msg2);
        if issue_id {
            self.issued.insert(id, conn);
        }
        self.sessions.insert(
            conn,
            Session {
                addr: from,
                connection: Connection::new(
                    transport,
                    Channel::new(
                        ChannelConfig {
                            max_message: self
                                .config
                                .max_message_before_login
                                .min(self.config.channel.max_message),
                            ..self.config.channel.clone()
                        },
                        conn,
                        now,
                    ),
                ),
                handshake_reply: Some(reply.clone()),
                messages: TokenBucket::full(now, self.config.messages),
                logged_in_once: false,
                login_deadline: now + self.config.user_timeout.min(self.config.login_timeout),
                created: now,
                state: SessionState::AwaitUser,
                scheduled: None,
                listed: false,
                ready: false,
                urgent: false,
                login_seq: 0,
                wants_device_token: false,
                initial_id: issue_id.then_some(id),
                resume: Vec::new(),
                delivering: Vec::new(),
            },
        );
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.handshaking += 1;
        self.unauthenticated.insert((now, conn), prefix);
        *self.handshaking_per_prefix.entry(prefix).or_insert(0) += 1;
        self.events.push_back(ServerEvent::SessionOpened {
            connection_id: conn,
            addr: from,
        });
        self.send_direct(from, reply);
        self.reschedule(conn);
    }
}

/// The address that limits count sessions by: the IPv4 address, or the
/// IPv6 address's /64 (one subscriber's network; an IPv4-mapped address
/// counts as its IPv4 address).
pub(super) fn address_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                for b in octets.iter_mut().skip(8) {
                    *b = 0;
                }
                IpAddr::V6(core::net::Ipv6Addr::from(octets))
            }
        },
    }
}

impl Server {
    /// Makes room for a new session when the table of sessions that have not
    /// logged in is full: closes the oldest of them that is not waiting for
    /// a password check. False when there is none to close.
    fn evict_oldest_unauthenticated(&mut self, now: Instant) -> bool {
        let victim = self.unauthenticated.keys().find_map(|&(_, conn)| {
            let s = self.sessions.get(&conn)?;
            (!matches!(s.state, SessionState::Checking { .. })).then_some(conn)
        });
        let Some(conn) = victim else {
            return false;
        };
        self.stats.evicted_before_login += 1;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.connection.channel_mut().close(CloseCode::Normal);
        }
        self.remove(now, conn, None);
        true
    }

    /// The session logged in or ended: it no longer counts against the
    /// limits of sessions that have not logged in.
    pub(super) fn forget_unauthenticated(&mut self, conn: u64, created: Instant) {
        if let Some(prefix) = self.unauthenticated.remove(&(created, conn)) {
            self.handshaking = self.handshaking.saturating_sub(1);
            if let Some(n) = self.handshaking_per_prefix.get_mut(&prefix) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.handshaking_per_prefix.remove(&prefix);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Initiator;
    use core::net::{Ipv4Addr, SocketAddrV4};

    const NOW: Instant = Instant::from_micros(3_600_000_000);

    fn server(max_queued_initials: usize, handshakes_per_turn: usize) -> Server {
        let config = ServerConfig {
            max_queued_initials,
            handshakes_per_turn,
            ..ServerConfig::default()
        };
        Server::new(config, [], StaticKey::from_private([7; 32]), [9; 32])
    }

    /// Client `n`'s address: one IP address each, so that no per-address
    /// limit applies.
    fn client(n: u32) -> SocketAddr {
        let ip = Ipv4Addr::from(0xC633_6400 + n);
        SocketAddr::V4(SocketAddrV4::new(ip, 40_000))
    }

    /// Client `n`'s Initial with a valid cookie (connection id `n`).
    fn initial(s: &Server, n: u32) -> Vec<u8> {
        let id = u64::from(n);
        let init = Initiator::new(id, [n as u8; 32]).unwrap();
        let cookie = s.cookies.cookie(NOW, &client(n), id);
        Initial {
            cookie: Some(&cookie),
            msg1: init.msg1(),
            issue_id: false,
        }
        .encode(id)
    }

    /// Every datagram the server has to send: (to, kind).
    fn sent(s: &mut Server) -> Vec<(SocketAddr, PacketKind)> {
        let mut buf = Vec::new();
        core::iter::from_fn(|| {
            s.poll_transmit(NOW, &mut buf)
                .map(|t| (t.to, Header::decode(&buf).unwrap().kind))
        })
        .collect()
    }

    /// Drives `s` as its driver would while Initials wait.
    fn turns_until_none_waits(s: &mut Server) {
        while s.poll_timeout().is_some_and(|t| t <= NOW) {
            s.handle_timeout(NOW);
            let _ = sent(s);
        }
    }

    fn handshakes_to(sent: &[(SocketAddr, PacketKind)]) -> Vec<SocketAddr> {
        sent.iter()
            .filter(|(_, k)| *k == PacketKind::Handshake)
            .map(|(to, _)| *to)
            .collect()
    }

    #[test]
    fn handshakes_within_the_budget_are_answered_at_once() {
        let mut s = server(1024, 3);
        for n in 1..=3 {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
            assert_eq!(
                handshakes_to(&sent(&mut s)),
                [client(n)],
                "Initial {n} is answered within handle_datagram"
            );
        }
        assert_eq!(s.queued_initials(), 0);
        assert!(s.poll_timeout().is_some_and(|t| t > NOW), "nothing waits");
        assert_eq!(s.stats().handshakes, 3);
    }

    #[test]
    fn a_turn_does_at_most_its_budget_of_handshakes_in_order_of_arrival() {
        let mut s = server(1024, 3);
        for n in 1..=10 {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        // The first three spent this turn's budget; the rest wait.
        assert_eq!(
            handshakes_to(&sent(&mut s)),
            [client(1), client(2), client(3)]
        );
        assert_eq!(s.queued_initials(), 7);
        assert_eq!(s.poll_timeout(), Some(NOW), "the driver comes back at once");
        let mut answered = Vec::new();
        let mut turns = 0;
        while s.poll_timeout().is_some_and(|t| t <= NOW) {
            s.handle_timeout(NOW);
            let this_turn = handshakes_to(&sent(&mut s));
            assert!(this_turn.len() <= 3, "{this_turn:?}");
            answered.extend(this_turn);
            turns += 1;
        }
        assert_eq!(turns, 3, "7 waiting Initials take three turns of 3");
        assert_eq!(answered, (4..=10).map(client).collect::<Vec<_>>());
        assert_eq!(s.session_count(), 10);
        assert_eq!(s.poll_timeout().filter(|&t| t <= NOW), None);
    }

    #[test]
    fn the_queue_is_bounded_and_a_full_queue_drops_with_a_reason() {
        let mut s = server(4, 1);
        for n in 1..=8 {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        // One answered at once, four wait, three dropped.
        assert_eq!(s.stats().handshakes, 1);
        assert_eq!(s.queued_initials(), 4);
        assert_eq!(s.stats().dropped_queue_full, 3);
        let dropped: Vec<SocketAddr> = core::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                ServerEvent::Dropped {
                    from,
                    reason: DropReason::InitialQueueFull,
                } => Some(from),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, [client(6), client(7), client(8)]);
        // The dropped client sends its Initial again and gets its turn.
        turns_until_none_waits(&mut s);
        let bytes = initial(&s, 7);
        s.handle_datagram(NOW, client(7), &bytes);
        turns_until_none_waits(&mut s);
        assert_eq!(s.session_count(), 6);
    }

    #[test]
    fn initials_that_cost_little_are_answered_at_once_even_while_others_wait() {
        let mut s = server(1024, 1);
        for n in 1..=3 {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        let _ = sent(&mut s);
        assert_eq!(s.queued_initials(), 2);
        // No cookie: a Retry, without waiting.
        let init = Initiator::new(99, [99; 32]).unwrap();
        let first = Initial {
            cookie: None,
            msg1: init.msg1(),
            issue_id: false,
        }
        .encode(99);
        s.handle_datagram(NOW, client(99), &first);
        // A retransmitted Initial of a session: its Handshake again.
        let again = initial(&s, 1);
        s.handle_datagram(NOW, client(1), &again);
        assert_eq!(
            sent(&mut s),
            [
                (client(99), PacketKind::Retry),
                (client(1), PacketKind::Handshake)
            ]
        );
        assert_eq!(s.queued_initials(), 2);
        assert_eq!(s.stats().handshakes, 1);
    }

    #[test]
    fn a_refused_initial_spends_nothing_of_the_budget() {
        let mut s = server(1024, 2);
        s.config.max_handshaking_per_ip = 1;
        // Two spend this turn's budget; then five from one address (one to
        // be admitted, four refused) and two from others wait.
        for n in [10, 11] {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        let same = client(1);
        for id in 1..=5u64 {
            let init = Initiator::new(id, [id as u8; 32]).unwrap();
            let cookie = s.cookies.cookie(NOW, &same, id);
            let bytes = Initial {
                cookie: Some(&cookie),
                msg1: init.msg1(),
                issue_id: false,
            }
            .encode(id);
            s.handle_datagram(NOW, same, &bytes);
        }
        for n in [20, 21] {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        assert_eq!(handshakes_to(&sent(&mut s)), [client(10), client(11)]);
        assert_eq!(s.queued_initials(), 7);
        s.handle_timeout(NOW);
        // One turn: the four refusals cost nothing of its two handshakes.
        assert_eq!(handshakes_to(&sent(&mut s)), [same, client(20)]);
        assert_eq!(s.stats().dropped_refused, 4);
        assert_eq!(s.queued_initials(), 1);
    }

    #[test]
    fn shutting_down_drops_the_initials_that_wait() {
        let mut s = server(1024, 1);
        for n in 1..=3 {
            let bytes = initial(&s, n);
            s.handle_datagram(NOW, client(n), &bytes);
        }
        s.shutdown(NOW);
        assert_eq!(s.queued_initials(), 0);
        assert_eq!(s.stats().dropped_refused, 2);
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_prefix(a), address_prefix(b));
        assert_ne!(address_prefix(a), address_prefix(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_prefix(v4), v4);
        assert_eq!(address_prefix(mapped), v4);
    }
}
