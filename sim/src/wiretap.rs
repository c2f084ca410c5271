//! Opens the sealed datagrams of a simulation.

use std::collections::BTreeMap;

use udpchat_core::crypto::{self, Initiator, Rng, StaticKey, Transport};
use udpchat_core::wire::{HEADER_LEN, Header, PacketKind};

/// Replays the key derivations of every endpoint to open every sealed
/// datagram: it knows each client's ephemeral seed (the harness chose it)
/// and follows the server's random draws (one for its cookie secret, one per
/// session it opens, in order), checking each derived handshake answer
/// against the one the server really sent.
#[derive(Debug)]
pub struct Wiretap {
    key: StaticKey,
    server_rng: Rng,
    initiators: BTreeMap<u64, Initiator>,
    /// By the connection id of the client's Initials: the server's answer.
    answers: BTreeMap<u64, Vec<u8>>,
    /// By the session's connection id (issued by the server, or the
    /// client's): the transports that open client-to-server (the
    /// responder's) and server-to-client (the initiator's) datagrams.
    sessions: BTreeMap<u64, (Transport, Transport)>,
}

impl Wiretap {
    /// A wiretap on a server with the key pair `key` started with the
    /// random bytes `server_random`.
    pub fn new(key: StaticKey, server_random: [u8; 32]) -> Self {
        let mut w = Wiretap {
            key,
            server_rng: Rng::from_seed(server_random),
            initiators: BTreeMap::new(),
            answers: BTreeMap::new(),
            sessions: BTreeMap::new(),
        };
        w.server_restarted(server_random);
        w
    }

    /// A new server started with `random`.
    pub fn server_restarted(&mut self, random: [u8; 32]) {
        self.server_rng = Rng::from_seed(random);
        // `Server::new` draws its cookie secret first.
        let _ = self.server_rng.seed();
    }

    /// A client of connection `id` whose handshake seed is `seed`.
    pub fn client_started(&mut self, id: u64, seed: [u8; 32]) {
        let i = Initiator::new(id, seed).expect("a valid initiator");
        self.initiators.insert(id, i);
    }

    /// Looks at a datagram the server sends: a new handshake answer means
    /// a new session, and one more random draw.
    pub fn server_sent(&mut self, bytes: &[u8]) {
        let Ok(h) = Header::decode(bytes) else {
            return;
        };
        if h.kind != PacketKind::Handshake {
            return;
        }
        let body = &bytes[HEADER_LEN..];
        let id = h.connection_id;
        if self.answers.get(&id).is_some_and(|a| a == body) {
            return; // A retransmitted answer.
        }
        let initiator = self
            .initiators
            .get(&id)
            .unwrap_or_else(|| panic!("wiretap: a handshake for unknown connection {id:x}"));
        let est = initiator.finish(body).expect("the wiretap finishes");
        // The server draws the handshake's seed, then the id it issues.
        let seed = self.server_rng.seed();
        if let Some(issued) = est.issued_id {
            assert_eq!(
                self.server_rng.next_u64(),
                issued,
                "wiretap: lost track of the server's random draws (connection {id:x})"
            );
        }
        let (responder, msg2) =
            crypto::respond(&self.key, id, seed, initiator.msg1(), est.issued_id)
                .expect("the wiretap's handshake");
        assert!(
            msg2 == body,
            "wiretap: lost track of the server's random draws (connection {id:x})"
        );
        self.answers.insert(id, msg2);
        self.sessions
            .insert(est.issued_id.unwrap_or(id), (responder, est.transport));
    }

    /// The plaintext of a sealed Data datagram, if its session is known.
    pub fn open(&self, from_server: bool, bytes: &[u8]) -> Option<Vec<u8>> {
        let h = Header::decode(bytes).ok()?;
        if h.kind != PacketKind::Data {
            return None;
        }
        let (responder, initiator) = self.sessions.get(&h.connection_id)?;
        let t = if from_server { initiator } else { responder };
        t.open(bytes).ok()
    }
}
