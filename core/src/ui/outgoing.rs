//! Texts on their way: sent at the pace of the server's limit, queued
//! when they must wait, matched in order with the server's answers, and
//! reported when they were not sent.

use super::*;

/// What the server answers in order: a message (`confirm` or `error`) or
/// a request (`away`, `whois`: their answer or `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Unanswered {
    Message(Outgoing),
    Request,
}

impl Outgoing {
    /// A message to a room: answered (`said`) once stored, so perhaps
    /// after the answers to later requests.
    pub(super) fn is_room(&self) -> bool {
        self.to.as_ref().is_some_and(|to| to.starts_with('#'))
    }
}

/// A public, direct or room message on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Outgoing {
    /// The recipient of a direct message, or the room (`#rust`) of a room
    /// message.
    pub(super) to: Option<String>,
    pub(super) text: String,
}

/// The client's copy of the server's limit on its messages: the server's
/// own token bucket, a little slower and smaller than the server's, so that
/// delays on the way (a retransmission that lets two messages arrive
/// together) do not make the server refuse what the client paced.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pacer {
    limit: RateLimit,
    bucket: TokenBucket,
}

/// Messages the client keeps in hand below the server's burst.
pub(super) const PACER_MARGIN: u32 = 2;
/// When the server did not state its limit and refused a message as too
/// fast, the console assumes this one: one message a second.
pub(super) const FALLBACK_RATE: MessageRate = MessageRate {
    burst: 1,
    interval_ms: 1000,
};

impl Pacer {
    pub(super) fn new(now: Instant, rate: MessageRate) -> Pacer {
        let limit = RateLimit {
            burst: rate.burst.saturating_sub(PACER_MARGIN).max(1),
            // 10% slower than the server refills.
            interval: Duration::from_micros(u64::from(rate.interval_ms) * 1100),
        };
        Pacer {
            limit,
            bucket: TokenBucket::full(now, limit),
        }
    }

    pub(super) fn take(&mut self, now: Instant) -> bool {
        self.bucket.take(now, self.limit)
    }

    /// Forgets the tokens: the server said it had none.
    pub(super) fn empty(&mut self, now: Instant) {
        self.bucket.empty(now);
    }

    /// When the next message may go.
    pub(super) fn next_at(&self) -> Instant {
        self.bucket.next_at(self.limit)
    }
}

impl Console {
    /// Sends a request the server answers in turn with the messages.
    pub(super) fn request(
        &mut self,
        send: impl FnOnce(&mut Client) -> Result<(), CommandError>,
    ) -> Result<(), CommandError> {
        send(&mut self.client)?;
        self.unanswered.push_back(Unanswered::Request);
        Ok(())
    }

    /// The answer to the oldest request arrived.
    pub(super) fn answered_request(&mut self) {
        if let Some(Unanswered::Request) = self.unanswered.front() {
            self.unanswered.pop_front();
        }
    }

    /// A public message in one line: the text goes without `op PM`.
    pub(super) fn send_public(&mut self, text: &str) -> Result<(), CommandError> {
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send_text(None, text);
        Ok(())
    }

    /// A direct message in one line: the text goes without `op DM` (and
    /// its online list).
    pub(super) fn send_direct(&mut self, to: &str, text: &str) -> Result<(), CommandError> {
        validate_username(to).map_err(CommandError::InvalidUsername)?;
        validate_text(text).map_err(CommandError::InvalidText)?;
        self.send_text(Some(to), text);
        Ok(())
    }

    /// Sends a checked text now, or queues it when the server's limit (or
    /// messages already waiting) says it must wait.
    pub(super) fn send_text(&mut self, to: Option<&str>, text: &str) {
        let message = Outgoing {
            to: to.map(ToString::to_string),
            text: text.to_string(),
        };
        let now = self.now;
        let may_go = self.paced.is_empty() && self.pacer.as_mut().is_none_or(|p| p.take(now));
        if may_go {
            self.transmit(message);
        } else {
            self.paced.push_back(message);
            self.emit(ChatEvent::Queued {
                waiting: self.paced.len(),
            });
        }
    }

    /// Hands a text to the client; it is then answered, in order.
    pub(super) fn transmit(&mut self, message: Outgoing) {
        let sent = match &message.to {
            Some(room) if room.starts_with('#') => self.client.say(room, &message.text),
            Some(to) => self.client.send_direct(to, &message.text),
            None => self.client.send_public(&message.text),
        };
        match sent {
            Ok(()) => self.unanswered.push_back(Unanswered::Message(message)),
            Err(e) => self.not_sent(message, e.to_string()),
        }
    }

    /// Sends the queued texts the pace allows now.
    pub(super) fn send_paced(&mut self) {
        if !self.is_ready() {
            return;
        }
        let now = self.now;
        while !self.paced.is_empty() && self.pacer.as_mut().is_none_or(|p| p.take(now)) {
            if let Some(message) = self.paced.pop_front() {
                self.requeued = self.requeued.saturating_sub(1);
                self.transmit(message);
            }
        }
        // The last queued text may have been what the end of input waited
        // for.
        if self.paced.is_empty() {
            self.pump();
        }
    }

    pub(super) fn not_sent(&mut self, message: Outgoing, reason: String) {
        self.not_sent += 1;
        self.emit(ChatEvent::NotSent {
            to: message.to,
            text: message.text,
            reason,
        });
    }

    /// Ctrl-C: what waits is given up, and said so.
    pub(super) fn drop_paced(&mut self) {
        self.requeued = 0;
        while let Some(message) = self.paced.pop_front() {
            self.not_sent(message, "you quit before it was sent".to_string());
        }
    }
}
