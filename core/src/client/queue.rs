//! The events waiting for the driver. A chat message waits as its bytes,
//! copied once into one buffer that starts over whenever the queue is
//! emptied: a driver that reads it borrowed ([`Client::poll_event_ref`])
//! makes no allocation per message, and one that takes it owned
//! ([`Client::poll_event`]) gets the same [`ClientEvent`] as ever.
//!
//! [`Client::poll_event_ref`]: super::Client::poll_event_ref
//! [`Client::poll_event`]: super::Client::poll_event

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;

use super::ClientEvent;
use crate::session::{Chat, ChatKind};

/// Bytes of held chat text kept when the queue starts over: what a busy
/// room leaves between two reads, not what a driver that stopped reading
/// for a while made it grow to.
const KEEP_BYTES: usize = 64 * 1024;

/// An event, as [`Client::poll_event_ref`](super::Client::poll_event_ref)
/// gives it: a chat message borrowed from the client until its next call,
/// any other event owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// A public message, a direct message delivered live, or a room
    /// message: what [`ClientEvent::Public`], [`ClientEvent::Direct`]
    /// (`offline: false`) and [`ClientEvent::RoomMessage`] carry.
    Chat(Chat<'a>),
    /// Any other event.
    Event(ClientEvent),
}

impl EventRef<'_> {
    /// The owned event, as [`Client::poll_event`](super::Client::poll_event)
    /// gives it.
    #[must_use]
    pub fn into_event(self) -> ClientEvent {
        match self {
            EventRef::Event(e) => e,
            EventRef::Chat(c) => {
                let (from, text) = (String::from(c.from), String::from(c.text));
                match c.kind {
                    ChatKind::Public => ClientEvent::Public {
                        from,
                        text,
                        time: c.time,
                    },
                    ChatKind::Direct => ClientEvent::Direct {
                        from,
                        text,
                        time: c.time,
                        offline: false,
                    },
                    ChatKind::Room {
                        room,
                        offset,
                        history,
                    } => ClientEvent::RoomMessage {
                        room: String::from(room),
                        offset,
                        from,
                        text,
                        time: c.time.unwrap_or(0),
                        history,
                    },
                }
            }
        }
    }
}

#[derive(Debug)]
enum Queued {
    Chat(Held),
    /// Boxed: the rarer, larger events do not make every slot large.
    Event(Box<ClientEvent>),
}

/// A chat message in the queue: its strings lie in [`EventQueue::text`]
/// from `at` on, the room's (empty for public and direct), the sender's
/// and the text's in turn.
#[derive(Debug)]
struct Held {
    kind: HeldKind,
    at: usize,
    room: usize,
    from: usize,
    text: usize,
    time: Option<u64>,
}

#[derive(Debug)]
enum HeldKind {
    Public,
    Direct,
    Room { offset: u64, history: bool },
}

/// The events waiting for the driver, in the order they came.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    queue: VecDeque<Queued>,
    /// The strings of the chat messages in the queue.
    text: String,
}

impl EventQueue {
    /// Queues an event.
    pub(super) fn push(&mut self, event: ClientEvent) {
        self.queue.push_back(Queued::Event(Box::new(event)));
    }

    /// Queues a chat message, copying its strings.
    pub(super) fn push_chat(&mut self, chat: &Chat<'_>) {
        if self.queue.is_empty() {
            // Nothing borrowed from the text outlives the call that took
            // the last event: it starts over.
            self.text.clear();
            self.text.shrink_to(KEEP_BYTES);
        }
        let (kind, room) = match chat.kind {
            ChatKind::Public => (HeldKind::Public, ""),
            ChatKind::Direct => (HeldKind::Direct, ""),
            ChatKind::Room {
                room,
                offset,
                history,
            } => (HeldKind::Room { offset, history }, room),
        };
        let at = self.text.len();
        self.text.push_str(room);
        self.text.push_str(chat.from);
        self.text.push_str(chat.text);
        self.queue.push_back(Queued::Chat(Held {
            kind,
            at,
            room: room.len(),
            from: chat.from.len(),
            text: chat.text.len(),
            time: chat.time,
        }));
    }

    /// The next event, owned.
    pub(super) fn pop(&mut self) -> Option<ClientEvent> {
        self.pop_ref().map(EventRef::into_event)
    }

    /// The next event, a chat message borrowed.
    pub(super) fn pop_ref(&mut self) -> Option<EventRef<'_>> {
        Some(match self.queue.pop_front()? {
            Queued::Event(e) => EventRef::Event(*e),
            Queued::Chat(h) => {
                // The strings were pushed whole at these places, so each
                // range is on character boundaries: `get` finds them.
                let piece =
                    |from: usize, len: usize| self.text.get(from..from + len).unwrap_or_default();
                let from = h.at + h.room;
                let text = from + h.from;
                EventRef::Chat(Chat {
                    kind: match h.kind {
                        HeldKind::Public => ChatKind::Public,
                        HeldKind::Direct => ChatKind::Direct,
                        HeldKind::Room { offset, history } => ChatKind::Room {
                            room: piece(h.at, h.room),
                            offset,
                            history,
                        },
                    },
                    from: piece(from, h.from),
                    text: piece(text, h.text),
                    time: h.time,
                })
            }
        })
    }

    /// Bytes of chat text held (for tests of the starting over).
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::CloseReason;

    fn chats() -> [Chat<'static>; 4] {
        [
            Chat {
                kind: ChatKind::Public,
                from: "alice",
                text: "hello all",
                time: Some(1_780_272_000_000),
            },
            Chat {
                kind: ChatKind::Direct,
                from: "bob",
                text: "h\u{e9}llo \u{1f600}",
                time: None,
            },
            Chat {
                kind: ChatKind::Room {
                    room: "#rust",
                    offset: 41,
                    history: false,
                },
                from: "carol",
                text: "",
                time: Some(7),
            },
            Chat {
                kind: ChatKind::Room {
                    room: "#r\u{e9}seau",
                    offset: 3,
                    history: true,
                },
                from: "d",
                text: "old news",
                time: Some(1),
            },
        ]
    }

    fn fill(q: &mut EventQueue) {
        let [a, b, c, d] = chats();
        q.push(ClientEvent::ServerKey([7; 32]));
        q.push_chat(&a);
        q.push_chat(&b);
        q.push(ClientEvent::Closed(CloseReason::Exit));
        q.push_chat(&c);
        q.push_chat(&d);
    }

    #[test]
    fn borrowed_and_owned_give_the_same_events_in_the_same_order() {
        let [a, b, c, d] = chats();
        let mut borrowed = EventQueue::default();
        fill(&mut borrowed);
        let mut seen = alloc::vec::Vec::new();
        while let Some(e) = borrowed.pop_ref() {
            seen.push(e.into_event());
        }
        let mut owned = EventQueue::default();
        fill(&mut owned);
        let mut taken = alloc::vec::Vec::new();
        while let Some(e) = owned.pop() {
            taken.push(e);
        }
        assert_eq!(seen, taken);
        let want = [
            ClientEvent::ServerKey([7; 32]),
            EventRef::Chat(a).into_event(),
            EventRef::Chat(b).into_event(),
            ClientEvent::Closed(CloseReason::Exit),
            EventRef::Chat(c).into_event(),
            EventRef::Chat(d).into_event(),
        ];
        assert_eq!(taken, want);
        assert_eq!(
            want[2],
            ClientEvent::Direct {
                from: "bob".into(),
                text: "h\u{e9}llo \u{1f600}".into(),
                time: None,
                offline: false,
            }
        );
        assert_eq!(
            want[5],
            ClientEvent::RoomMessage {
                room: "#r\u{e9}seau".into(),
                offset: 3,
                from: "d".into(),
                text: "old news".into(),
                time: 1,
                history: true,
            }
        );
    }

    #[test]
    fn a_chat_message_comes_back_as_it_went_in() {
        let mut q = EventQueue::default();
        for chat in chats() {
            q.push_chat(&chat);
            q.push(ClientEvent::Away(None));
        }
        for chat in chats() {
            assert_eq!(q.pop_ref(), Some(EventRef::Chat(chat)));
            assert_eq!(q.pop_ref(), Some(EventRef::Event(ClientEvent::Away(None))));
        }
        assert_eq!(q.pop_ref(), None);
    }

    #[test]
    fn the_held_text_starts_over_once_the_queue_is_emptied() {
        let [a, ..] = chats();
        let one = a.from.len() + a.text.len();
        let mut q = EventQueue::default();
        for round in 0..1000 {
            // Emptied every other round, one left over otherwise: the text
            // held is at most that of the four messages pushed since.
            q.push_chat(&a);
            q.push_chat(&a);
            assert!(
                q.held_bytes() <= 4 * one,
                "round {round}: {}",
                q.held_bytes()
            );
            let reads = if round % 2 == 0 { 1 } else { 3 };
            for _ in 0..reads {
                assert!(q.pop_ref().is_some());
            }
        }
        assert_eq!(q.pop_ref(), None);
        q.push_chat(&a);
        assert_eq!(q.held_bytes(), one, "emptied, it started over");
    }
}
