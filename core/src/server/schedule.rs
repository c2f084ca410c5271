//! Scheduling: which sessions have work, their timers, and the order in
//! which datagrams leave.

use super::*;

impl Server {
    /// Delivers received messages, reaps a failed channel, reschedules.
    pub(super) fn process(&mut self, now: Instant, conn: u64) {
        let mut msg = core::mem::take(&mut self.message);
        while let Some(s) = self.sessions.get_mut(&conn)
            && s.connection.channel_mut().recv_into(&mut msg)
        {
            self.handle_message(now, conn, &msg);
        }
        self.message = msg;
        if !self.sessions.contains_key(&conn) {
            return;
        }
        self.check_offline_acks(conn);
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        if let Some(error) = s.connection.channel().error() {
            self.logout(conn, LeaveReason::from_channel_error(&error));
            self.remove(now, conn, Some(error));
            return;
        }
        if !s.logged_in_once
            && now >= s.login_deadline
            && !matches!(s.state, SessionState::Closing { .. })
        {
            // Logging in takes seconds; a session that idles before login
            // only holds a slot.
            self.stats.login_timeouts += 1;
            s.connection.channel_mut().close(CloseCode::Normal);
            self.remove(now, conn, None);
            return;
        }
        if let SessionState::Closing { until } = s.state
            && (s.connection.channel().is_flushed() || now >= until)
        {
            // Tell the client, in case it did not end the session itself.
            s.connection.channel_mut().close(CloseCode::Normal);
            self.remove(now, conn, None);
            return;
        }
        if !s.ready && s.connection.channel().wants_transmit() {
            s.ready = true;
            self.ready.push_back(conn);
        }
        self.reschedule(conn);
    }

    /// Removes a session, sending its channel's last datagrams first.
    pub(super) fn remove(&mut self, now: Instant, conn: u64, error: Option<ChannelError>) {
        if let Some(mut s) = self.sessions.remove(&conn) {
            while let Some(bytes) = s.connection.poll_transmit_final(now) {
                self.direct.push_back((s.addr, bytes));
            }
            self.retransmissions_ended += s.connection.channel().stats().retransmissions;
            if !s.logged_in_once {
                self.forget_unauthenticated(conn, s.created);
            }
            if let Some(initial_id) = s.initial_id {
                self.issued.remove(&initial_id);
            }
            self.count_ip(s.addr.ip(), false);
            self.events.push_back(ServerEvent::SessionClosed {
                connection_id: conn,
                error: match error {
                    Some(ChannelError::LocallyClosed) => None,
                    e => e,
                },
            });
        }
    }

    pub(super) fn reschedule(&mut self, conn: u64) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let mut next = s.connection.channel().poll_timeout();
        if let SessionState::Closing { until } = s.state {
            next = Some(next.map_or(until, |n| n.min(until)));
        } else if !s.logged_in_once {
            let until = s.login_deadline;
            next = Some(next.map_or(until, |n| n.min(until)));
        }
        if next != s.scheduled {
            s.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, conn)));
            }
        }
        if self.timers.len() > 64 + 4 * self.sessions.len() {
            self.timers = self
                .sessions
                .iter()
                .filter_map(|(c, s)| s.scheduled.map(|t| Reverse((t, *c))))
                .collect();
        }
    }

    /// Marks a session touched by another session's message so that its
    /// timers are recomputed.
    pub(super) fn process_later(&mut self, conn: u64) {
        self.reschedule(conn);
    }

    /// Handles expired timers, then ends the turn: renews the handshake
    /// budget ([`ServerConfig::handshakes_per_turn`]) and spends it on the
    /// Initials that wait, oldest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.round.as_ref().is_some_and(|r| now >= r.at) {
            self.continue_presence_round(PRESENCE_SLICE);
        }
        if self.round.is_none()
            && !self.presence.is_empty()
            && self
                .last_presence
                .is_some_and(|t| now >= t + PRESENCE_INTERVAL)
        {
            self.start_presence_round();
        }
        while let Some(&Reverse((t, conn))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if s.scheduled != Some(t) {
                continue;
            }
            s.scheduled = None;
            s.connection.channel_mut().handle_timeout(now);
            self.process(now, conn);
        }
        // Established sessions' timers first, then the handshakes that
        // wait: this ends the turn and starts the next one.
        self.admit_queued(now);
    }

    /// The next instant [`Server::handle_timeout`] has work, if any: the
    /// latest `now` given while Initials wait for their handshake.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut soonest = match (&self.round, self.last_presence) {
            (Some(round), _) => Some(round.at),
            (None, Some(t)) if !self.presence.is_empty() => Some(t + PRESENCE_INTERVAL),
            _ => None,
        };
        if !self.initials.is_empty() {
            soonest = Some(soonest.map_or(self.now, |p| p.min(self.now)));
        }
        while let Some(&Reverse((t, conn))) = self.timers.peek() {
            match self.sessions.get(&conn) {
                Some(s) if s.scheduled == Some(t) => {
                    return Some(soonest.map_or(t, |p| p.min(t)));
                }
                _ => {
                    self.timers.pop();
                }
            }
        }
        soonest
    }

    /// The next datagram to send, written into `buf` (cleared first). Call
    /// until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            if let Some((to, bytes)) = self.direct.pop_front() {
                self.stats.datagrams_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                buf.clear();
                buf.extend_from_slice(&bytes);
                return Some(Transmit {
                    to,
                    len: bytes.len(),
                });
            }
            let (conn, urgent) = match self.urgent.pop_front() {
                Some(conn) => (conn, true),
                None => (self.ready.pop_front()?, false),
            };
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if let Some(len) = s.connection.poll_transmit(now, buf) {
                if urgent {
                    self.urgent.push_front(conn);
                } else {
                    self.ready.push_front(conn);
                }
                self.stats.datagrams_sent += 1;
                self.stats.bytes_sent += len as u64;
                return Some(Transmit { to: s.addr, len });
            }
            if urgent {
                s.urgent = false;
            } else {
                s.ready = false;
            }
            // A channel closed for a full queue ends here, after its CLOSE.
            if s.connection.channel().error().is_some() {
                self.process(now, conn);
            } else {
                self.reschedule(conn);
            }
        }
    }
}
