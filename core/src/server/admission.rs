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
        if bytes.len() < MIN_INITIAL_LEN {
            self.stats.dropped_refused += 1;
            self.drop_event(from, DropReason::InitialTooSmall);
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
        if let Some(s) = self.sessions.get(&id) {
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
        if self.shutting_down
            || self.sessions.len() >= self.config.max_sessions
            || per_ip as usize >= self.config.max_sessions_per_ip
            || self.handshaking >= self.config.max_handshaking
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
        let token = crypto::reset_token(&self.key, id);
        let seed = self.rng.seed();
        let (transport, msg2) = match crypto::respond(&self.key, id, seed, initial.msg1, &token) {
            Ok(r) => r,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                self.drop_event(from, DropReason::HandshakeFailed);
                return;
            }
        };
        let reply = encode_simple(PacketKind::Handshake, id, &msg2);
        self.sessions.insert(
            id,
            Session {
                addr: from,
                channel: Channel::new(self.config.channel.clone(), id, now),
                transport,
                replay: ReplayWindow::default(),
                handshake_reply: Some(reply.clone()),
                messages: TokenBucket::full(now, self.config.messages),
                logged_in_once: false,
                login_deadline: now + self.config.login_timeout,
                unvalidated: None,
                state: SessionState::AwaitUser,
                scheduled: None,
                ready: false,
                urgent: false,
                login_seq: 0,
                wants_device_token: false,
            },
        );
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.handshaking += 1;
        self.events.push_back(ServerEvent::SessionOpened {
            connection_id: id,
            addr: from,
        });
        self.send_direct(from, reply);
        self.reschedule(id);
    }
}
