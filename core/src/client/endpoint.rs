//! The client's entry points as one [`Input`] in
//! ([`Client::handle_input`]) and one [`Output`] out
//! ([`Client::poll_output`]). What the user does (log in, send, ask) are
//! [`Client`]'s other methods; each is followed by draining the outputs.

use super::*;

/// Everything that happens to a client from the outside: what
/// [`Client::handle_input`] takes.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived from the server ([`Client::handle_datagram`]).
    Datagram {
        /// When it was read.
        now: Instant,
        /// The datagram.
        bytes: &'a [u8],
    },
    /// The deadline of the last [`Output::Timeout`] passed
    /// ([`Client::handle_timeout`]).
    Timeout(Instant),
}

/// What a client asks of its driver: what [`Client::poll_output`] returns.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Send the first `len` bytes of the buffer given to
    /// [`Client::poll_output`] to the server.
    Transmit {
        /// The datagram's length in the caller's buffer.
        len: usize,
    },
    /// Something happened.
    Event(ClientEvent),
    /// Nothing more to do until this deadline (`None`: until the next
    /// datagram or user action): then give [`Input::Timeout`].
    Timeout(Option<Instant>),
}

impl Client {
    /// Hands the client one input. Then drain [`Client::poll_output`] until
    /// it returns [`Output::Timeout`].
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Datagram { now, bytes } => self.handle_datagram(now, bytes),
            Input::Timeout(now) => self.handle_timeout(now),
        }
    }

    /// The next thing to do: datagrams to send first (written into `buf`,
    /// which is cleared first), then events, and, once both are drained,
    /// the next deadline. Call until [`Output::Timeout`] after every input
    /// and user action.
    pub fn poll_output(&mut self, now: Instant, buf: &mut Vec<u8>) -> Output {
        if let Some(len) = self.poll_transmit(now, buf) {
            return Output::Transmit { len };
        }
        if let Some(e) = self.poll_event() {
            return Output::Event(e);
        }
        Output::Timeout(self.poll_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MIN_INITIAL_LEN, PacketKind};

    #[test]
    fn outputs_drain_to_a_timeout_and_a_timeout_brings_the_next_initial() {
        let mut now = Instant::ZERO;
        let mut client = Client::new(now, ClientConfig::default(), [7; 32], "alice").unwrap();
        let mut buf = Vec::new();
        let Output::Transmit { len } = client.poll_output(now, &mut buf) else {
            panic!("the Initial first");
        };
        assert_eq!((len, buf.len()), (MIN_INITIAL_LEN, MIN_INITIAL_LEN));
        assert_eq!(Header::decode(&buf).unwrap().kind, PacketKind::Initial);
        let Output::Timeout(Some(deadline)) = client.poll_output(now, &mut buf) else {
            panic!("then the deadline");
        };
        assert!(deadline > now);
        // An early wakeup does nothing; the deadline sends the Initial again.
        client.handle_input(Input::Timeout(now));
        assert!(matches!(
            client.poll_output(now, &mut buf),
            Output::Timeout(_)
        ));
        now = deadline;
        client.handle_input(Input::Timeout(now));
        assert!(matches!(
            client.poll_output(now, &mut buf),
            Output::Transmit {
                len: MIN_INITIAL_LEN
            }
        ));
    }
}
