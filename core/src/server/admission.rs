//! Admission: Initials, stateless address cookies and Retry, the
//! per-address and handshake limits, and the Noise responder.

use super::*;

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
        // The session this Initial's connection id already names, if any.
        let existing = if initial.issue_id {
            self.issued.get(&id).copied()
        } else {
            Some(id)
        };
        if let Some(s) = existing.and_then(|conn| self.sessions.get(&conn)) {
            // A retransmitted Initial: the Handshake answer was lost.
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
        let seed = self.rng.seed();
        // The session's id: the client's, or (when it asks) one the server
        // draws now and tells only inside msg2, so that no one could have
        // asked for its reset token before the session existed.
        let conn = if initial.issue_id {
            loop {
                let c = self.rng.next_u64();
                if c != 0 && !self.sessions.contains_key(&c) {
                    break c;
                }
            }
        } else {
            id
        };
        let issued_id = initial.issue_id.then_some(conn);
        let (transport, msg2) = match crypto::respond(&self.key, id, seed, initial.msg1, issued_id)
        {
            Ok(r) => r,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::HandshakeFailed);
                return;
            }
        };
        let reply = encode_simple(PacketKind::Handshake, id, &msg2);
        if initial.issue_id {
            self.issued.insert(id, conn);
        }
        self.sessions.insert(
            conn,
            Session {
                addr: from,
                channel: Channel::new(
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
                transport,
                replay: ReplayWindow::default(),
                handshake_reply: Some(reply.clone()),
                messages: TokenBucket::full(now, self.config.messages),
                logged_in_once: false,
                login_deadline: now + self.config.user_timeout.min(self.config.login_timeout),
                created: now,
                unvalidated: None,
                state: SessionState::AwaitUser,
                scheduled: None,
                ready: false,
                urgent: false,
                login_seq: 0,
                wants_device_token: false,
                initial_id: initial.issue_id.then_some(id),
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
            s.channel.close(CloseCode::Normal);
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
