//! How the world moves: the clock jumps to the next thing due, and
//! everything due then is delivered, answered and timed out, with the
//! timer and busy-loop checks.

use std::net::SocketAddr;
use udpchat_core::server::{Output, Request};

use udpchat_core::client::ClientEvent;
use udpchat_core::session::{ClientMessage, ServerMessage};
use udpchat_core::time::{Duration, Instant};
use udpchat_core::wire::Header;

use super::{Endpoint, SentDatagram, World, segments_of};
use crate::stepping::{self, Steps};
use crate::{
    MAX_STEPS_PER_INSTANT, MAX_STEPS_PER_SECOND, SERVER, fnv, password, password_of, server_key,
};

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl World {
    /// The earliest instant at which anything happens, if anything will.
    pub fn next_wakeup(&mut self) -> Option<Instant> {
        let mut next = self.net.next_delivery();
        // What the server has to do waits while it is busy.
        let busy = self.server_busy_until;
        if !self.server_vanished {
            next = earliest(next, self.server.poll_timeout().map(|t| t.max(busy)));
            if !self.server_inbox.is_empty() {
                next = earliest(next, Some(busy));
            }
        }
        for p in &self.peers {
            if !p.vanished {
                next = earliest(next, p.poll_timeout());
            }
        }
        earliest(next, self.responses.keys().next().map(|k| k.0.max(busy)))
    }

    /// Whether the server is free to handle its next input at `now`.
    fn server_free(&self) -> bool {
        !self.server_vanished && self.server_busy_until <= self.now
    }

    /// Counts the handshakes the server did in its last call, in its turn
    /// and in the time it is busy.
    fn charge_server(&mut self) {
        let done = self.server.stats().handshakes;
        let new = done.saturating_sub(self.server_handshakes);
        self.server_handshakes = done;
        if new > 0 {
            if self.handshakes_this_turn == 0 {
                self.handshake_turns += 1;
            }
            self.handshakes_this_turn += new;
            self.max_handshakes_in_a_turn =
                self.max_handshakes_in_a_turn.max(self.handshakes_this_turn);
            let cost = Duration::from_micros(self.config.handshake_cost.as_micros() * new);
            self.server_busy_until = self.server_busy_until.max(self.now) + cost;
        }
    }

    /// Hands the server the datagrams that wait for it, while it is free.
    fn serve_inbox(&mut self) -> bool {
        let mut served = false;
        while self.server_free() {
            let Some((from, bytes)) = self.server_inbox.pop_front() else {
                break;
            };
            served = true;
            let now = self.now;
            self.server_heard.insert(from, now);
            self.server.handle_datagram(now, from, &bytes);
            self.charge_server();
            self.flush();
        }
        served
    }

    /// Moves the clock to the next wakeup and handles everything due then.
    /// Returns the new time, or `None` (leaving the clock alone) when
    /// nothing is scheduled at all.
    pub fn step(&mut self) -> Option<Instant> {
        let next = self.next_wakeup()?;
        // A deadline in the past is due now.
        self.advance(next.max(self.now));
        self.process_due();
        Some(self.now)
    }

    fn advance(&mut self, to: Instant) {
        assert!(to >= self.now, "the clock never goes back");
        self.steps += 1;
        if to == self.now {
            self.steps_at_instant += 1;
            assert!(
                self.steps_at_instant <= MAX_STEPS_PER_INSTANT,
                "busy loop: {} steps at {:?} without the clock moving",
                self.steps_at_instant,
                self.now
            );
        } else {
            self.steps_at_instant = 0;
        }
        let second = to.as_micros() / 1_000_000;
        if second != self.second {
            self.second = second;
            self.steps_in_second = 0;
        }
        self.steps_in_second += 1;
        assert!(
            self.steps_in_second <= MAX_STEPS_PER_SECOND,
            "busy loop: more than {MAX_STEPS_PER_SECOND} steps in virtual second {second}"
        );
        self.now = to;
    }

    /// Runs every step due at or before `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while let Some(next) = self.next_wakeup() {
            if next > t {
                break;
            }
            self.step();
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Steps until `done` holds (checked before every step) or the clock
    /// would pass `deadline`; returns whether `done` held.
    pub fn run_until_cond(&mut self, deadline: Instant, done: impl FnMut(&World) -> bool) -> bool {
        stepping::run_until_cond(self, deadline, done)
    }

    /// Delivers, answers and times out everything due at `now`, until
    /// nothing more is.
    fn process_due(&mut self) {
        let now = self.now;
        loop {
            let mut progressed = false;
            while let Some(d) = self.net.poll_deliver(now) {
                progressed = true;
                if self.config.record_datagrams {
                    let plain = self.wiretap.open(d.from == SERVER, &d.bytes);
                    self.arrived.push(SentDatagram {
                        at: now,
                        from: d.from,
                        to: d.to,
                        bytes: d.bytes.clone(),
                        plain,
                    });
                }
                if d.to == SERVER {
                    if !self.server_vanished {
                        self.server_inbox.push_back((d.from, d.bytes));
                        self.serve_inbox();
                        continue;
                    }
                } else if let Some(p) = self
                    .peers
                    .iter_mut()
                    .find(|p| p.addr == d.to && !p.vanished)
                {
                    p.last_heard = Some(now);
                    p.handle_datagram(now, &d.bytes);
                }
                self.flush();
            }
            progressed |= self.serve_inbox();
            while self.server_vanished || self.server_free() {
                let Some(entry) = self.responses.first_entry() else {
                    break;
                };
                if entry.key().0 > now {
                    break;
                }
                let response = entry.remove();
                progressed = true;
                if !self.server_vanished {
                    self.server.handle_response(now, response);
                    self.charge_server();
                }
                self.flush();
            }
            if self.server_free() && self.server.poll_timeout().is_some_and(|t| t <= now) {
                progressed = true;
                self.timeouts += 1;
                self.server_timeouts += 1;
                self.handshakes_this_turn = 0;
                self.server.handle_timeout(now);
                self.charge_server();
                let sent = self.drain_server();
                let next = self.server.poll_timeout();
                self.check_timer("server", now, sent, next);
                self.flush();
            }
            for i in 0..self.peers.len() {
                if self.peers[i].vanished || self.peers[i].poll_timeout().is_none_or(|t| t > now) {
                    continue;
                }
                progressed = true;
                self.timeouts += 1;
                self.peers[i].handle_timeout(now);
                let sent = self.drain_peer(i);
                let next = self.peers[i].poll_timeout();
                let who = self.peers[i].name.clone();
                self.check_timer(&who, now, sent, next);
                self.flush();
            }
            if !progressed {
                break;
            }
            self.steps_at_instant += 1;
            assert!(
                self.steps_at_instant <= MAX_STEPS_PER_INSTANT,
                "busy loop: {} rounds at {now:?}",
                self.steps_at_instant
            );
        }
    }

    fn check_timer(&mut self, who: &str, now: Instant, sent: usize, next: Option<Instant>) {
        if next.is_some_and(|t| t <= now) {
            assert!(
                sent > 0,
                "{who}: after handle_timeout({now:?}) nothing was sent and the next \
                 deadline is {next:?}, not later than now: a timer that fires early \
                 or a busy loop"
            );
            self.stuck_after_output += 1;
        }
    }

    /// Sends every datagram the server has ready; returns how many.
    fn drain_server(&mut self) -> usize {
        if self.server_vanished {
            return 0;
        }
        let mut n = 0;
        let mut buf = Vec::new();
        loop {
            match self.server.poll_output(self.now, &mut buf) {
                Output::Transmit(t) => {
                    n += 1;
                    self.transmit(SERVER, t.to, buf[..t.len].to_vec());
                }
                Output::Request(r) => {
                    // The store answers at once; passwords take their time.
                    if let Some(response) = self.store.answer(&r) {
                        self.server.handle_response(self.now, response);
                        continue;
                    }
                    // So does the user store, which keeps the configured
                    // accounts (what a restarted server starts with).
                    if let Request::Account { op, .. } = &r {
                        password::apply_account(op, &mut self.config.accounts);
                        let response = password::answer(r);
                        self.server.handle_response(self.now, response);
                        continue;
                    }
                    let response = password::answer(r);
                    self.responses_queued += 1;
                    self.responses.insert(
                        (self.now + self.config.password_delay, self.responses_queued),
                        response,
                    );
                }
                Output::Event(e) => {
                    self.record(format!("server {e:?}"));
                    self.server_events.push((self.now, e));
                }
                Output::Timeout(_) => break,
            }
        }
        n
    }

    /// Sends every datagram peer `i` has ready and takes its events;
    /// returns how many datagrams. Answers password requests.
    fn drain_peer(&mut self, i: usize) -> usize {
        if self.peers[i].vanished {
            return 0;
        }
        let now = self.now;
        let addr = self.peers[i].addr;
        let mut n = 0;
        loop {
            while let Some(bytes) = self.peers[i].poll_transmit(now) {
                n += 1;
                self.transmit(addr, SERVER, bytes);
            }
            let mut acted = false;
            let name = self.peers[i].name.clone();
            match &mut self.peers[i].endpoint {
                Endpoint::Client(c) => {
                    let mut events = Vec::new();
                    while let Some(e) = c.poll_event() {
                        if let ClientEvent::ServerKey(key) = &e {
                            assert_eq!(
                                key,
                                server_key().public(),
                                "{name} was shown another server key"
                            );
                        }
                        if matches!(e, ClientEvent::PasswordRequired { .. }) {
                            c.submit_password(&password_of(&name))
                                .expect("the password is accepted");
                            acted = true;
                        }
                        events.push(e);
                    }
                    for e in events {
                        match &e {
                            ClientEvent::Public { .. } | ClientEvent::Direct { .. } => {
                                self.deliveries += 1;
                            }
                            ClientEvent::Confirmed { .. } => self.confirms += 1,
                            _ => {}
                        }
                        self.record(format!("{name} {e:?}"));
                        self.peers[i].events.push((now, e));
                    }
                }
                Endpoint::Raw(r) => {
                    // Answer a password request that arrived since the last
                    // drain; record what arrived.
                    let new: Vec<ServerMessage> = r.received[r.handled..]
                        .iter()
                        .map(|(_, m)| m.clone())
                        .collect();
                    r.handled = r.received.len();
                    for m in &new {
                        if matches!(m, ServerMessage::PasswordRequired { .. }) {
                            r.send(&ClientMessage::Password {
                                device: None,
                                password: password_of(&name),
                                resume: Vec::new(),
                                invite: None,
                            });
                            acted = true;
                        }
                    }
                    for m in new {
                        self.record(format!("{name} (raw) {m:?}"));
                    }
                }
            }
            if !acted {
                break;
            }
        }
        n
    }

    /// Sends everything every endpoint has ready.
    pub fn flush(&mut self) {
        self.drain_server();
        for i in 0..self.peers.len() {
            self.drain_peer(i);
        }
        // A password answer with no delay is handled within the same step.
    }

    fn transmit(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.datagrams_sent += 1;
        let mut h = fnv(self.digest, &self.now.as_micros().to_be_bytes());
        h = fnv(h, from.to_string().as_bytes());
        h = fnv(h, to.to_string().as_bytes());
        self.digest = fnv(h, &bytes);
        if from == SERVER {
            self.wiretap.server_sent(&bytes);
        }
        let plain = self.wiretap.open(from == SERVER, &bytes);
        if let Some(plain) = &plain {
            let id = Header::decode(plain).map_or(0, |h| h.connection_id);
            let key = (from, to, id);
            for seq in segments_of(plain) {
                self.segments_sent += 1;
                match self.highest_seq.get(&key) {
                    Some(&top) if seq <= top => self.retransmissions += 1,
                    _ => {
                        self.highest_seq.insert(key, seq);
                    }
                }
            }
        }
        let sent = SentDatagram {
            at: self.now,
            from,
            to,
            bytes,
            plain,
        };
        let dropped = self.drop_filter.as_mut().is_some_and(|f| f(&sent));
        if dropped {
            self.dropped_by_filter += 1;
            self.record(format!("dropped by the test: {from} -> {to}"));
        }
        if self.config.record_datagrams {
            self.log.push(sent.clone());
        }
        if !dropped {
            self.net.send(self.now, from, to, sent.bytes);
        }
    }
}

impl Steps for World {
    fn next_wakeup(&mut self) -> Option<Instant> {
        World::next_wakeup(self)
    }
    fn step(&mut self) {
        World::step(self);
    }
    fn run_until(&mut self, t: Instant) {
        World::run_until(self, t);
    }
}
