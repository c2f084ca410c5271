//! Test vectors of `PROTOCOL.md`.
//!
//! * [`noise_vectors`]: a standalone handshake and sealed datagrams from
//!   fixed keys, for implementers who bring their own Noise library.
//! * The worked example: a whole session driven through a real [`Server`]
//!   and two real [`Client`]s in memory, on a virtual clock. The server's
//!   static key and every endpoint's randomness are fixed, so every byte is
//!   deterministic. A wiretap that knows those seeds re-derives each
//!   connection's keys (through the public `crypto` API, as the endpoints
//!   do) and opens every sealed datagram, so the transcript shows what was
//!   sealed as well as what travelled.
//!
//! The most important datagrams are asserted byte for byte against the
//! constants below, and every block of text these tests print is asserted
//! to appear verbatim in `PROTOCOL.md`, so the document cannot drift from
//! the code. Print them with
//! `cargo test -p udpchat-core --test vectors -- --nocapture`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::OnceLock;

use udpchat_sim::Wiretap;

use udpchat_core::client::{Client, ClientConfig, ClientEvent};
use udpchat_core::crypto::{
    self, CookieKeys, Initiator, MSG2_LEN, Rng, StaticKey, TAG_LEN, Transport,
};
use udpchat_core::reliable::ChannelConfig;
use udpchat_core::server::{Server, ServerConfig, UserRecord};
use udpchat_core::session::{self, ErrorCode, LoginFailure, Operation, ServerMessage};
use udpchat_core::wire::{
    COOKIE_LEN, Datagram, Frame, HEADER_LEN, Header, Initial, MAX_DATAGRAM, MAX_PLAINTEXT,
    MIN_INITIAL_LEN, PacketKind, encode_simple,
};
use udpchat_core::{Duration, Instant};

use udpchat_sim::{PollDatagram, Sent};

// --- Fixed keys and randomness ------------------------------------------------

/// The server's static private key in the worked example.
const SERVER_PRIVATE: [u8; 32] = [0x11; 32];
/// The 32 random bytes the example's server is started with.
const SERVER_RANDOM: [u8; 32] = [0x22; 32];
/// The 32 random bytes alice's client is started with.
const ALICE_RANDOM: [u8; 32] = [0xa1; 32];
/// The 32 random bytes bob's client is started with.
const BOB_RANDOM: [u8; 32] = [0xb0; 32];

fn server_key() -> StaticKey {
    StaticKey::from_private(SERVER_PRIVATE)
}

fn alice_addr() -> SocketAddr {
    "198.51.100.7:50000".parse().unwrap()
}
fn bob_addr() -> SocketAddr {
    "203.0.113.9:50001".parse().unwrap()
}

/// What a [`Client`] draws from its 32 random bytes: the connection id,
/// then the seed of its handshake.
fn client_draws(random: [u8; 32]) -> (u64, [u8; 32]) {
    let mut r = Rng::from_seed(random);
    (r.next_u64(), r.seed())
}

/// The ephemeral private key a handshake seed gives: the first 32 bytes of
/// ChaCha20 keyed with the seed.
fn ephemeral_private(seed: [u8; 32]) -> [u8; 32] {
    Rng::from_seed(seed).seed()
}

// --- Hex helpers ----------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn from_hex(hex: &str) -> Vec<u8> {
    let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Width of the hex column: 16 bytes.
const HEX_WIDTH: usize = 16 * 3 - 1;

fn row(out: &mut String, bytes: &[u8], note: &str) {
    let line = format!("{:<HEX_WIDTH$}  {note}", hex_spaced(bytes));
    let _ = writeln!(out, "{}", line.trim_end());
}

/// Rows of 16 bytes; `note` on the first row only.
fn rows(out: &mut String, bytes: &[u8], note: &str) {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        row(out, chunk, if i == 0 { note } else { "" });
    }
}

/// `PROTOCOL.md`, read once.
fn protocol_md() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    })
}

/// Asserts that `block` appears verbatim in `PROTOCOL.md`.
fn assert_documented(block: &str, what: &str) {
    assert!(
        protocol_md().contains(block),
        "{what} is not in PROTOCOL.md as the code now produces it; expected:\n\n{block}"
    );
}

/// The server of the raw sessions below: the defaults, but any password
/// length for new accounts (the scripts register with short ones; the
/// minimum is tested on its own).
fn raw_config() -> ServerConfig {
    ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    }
}

// --- Standalone handshake and sealing vectors ----------------------------------

const VEC_CONN: u64 = 0x0123_4567_89ab_cdef;
/// Seed of the client's ephemeral key.
const VEC_CLIENT_SEED: [u8; 32] = [0xc1; 32];
/// Seed of the server's ephemeral key.
const VEC_SERVER_SEED: [u8; 32] = [0x5e; 32];

const VEC_SERVER_PUBLIC: &str = "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13";
const VEC_CLIENT_E_PRIVATE: &str =
    "cc72ccbb4ac231b4e70057c5e5f501bd93c0a57632ea23f662f9dce90c41a53c";
const VEC_SERVER_E_PRIVATE: &str =
    "3d237cd371514aeb3a0dfac6959bf7bb74df7986b6037e534c2e95833769029c";
const VEC_RESET_TOKEN: &str = "ba0909adc115430517b03b8c773bccda";
const VEC_MSG1: &str = "c99d04f87103839465a4f4c25006e1d9bd7c4e0e5a9d61a20a381bd71dc93875";
const VEC_MSG2: &str = concat!(
    "1d90acdbb1cca7ba942c06a59d9d7be899191295deb0f171bd0112233118d074",
    "94bef3da2c145358238bb0137bd5fdd710e080eaf3af7a722182e1860aac0bcd",
    "09b81c83dfc042106d9bd55f461e40d6f95d97828d45d1c3260ccc77399bb630",
    "563bb68c36d253f9cb0ad5c97801bf6b",
);
const VEC_SEALED_C2S: &str = concat!(
    "430102000123456789abcdef00000000c9e0ff690badecaa4e11a905b449d93b",
    "d9d170bdf0a3c60496f72f2e440a2385d03127ceb2bab8fe3ed4495e30953c37",
    "18df1fa275b401",
);
const VEC_SEALED_S2C: &str = concat!(
    "430102000123456789abcdef000000003d1547ad404c2fa3865ddfcba2ffccbf",
    "4d1e82a82583b600faa8ee714c3cef3608a3a581c5c52715058b7a2662aac5b0",
    "ceaa67a8724adb21db7eaa295eec52e540da421a408eb48c00a97578cc4e6e51",
    "eaa312375b7c1f5d84bb",
);
const VEC_SEALED_PING: &str = concat!(
    "430102000123456789abcdef00000102db16f5462885b0c330f3ad16f99c2d8a",
    "32e744c013",
);

/// A plaintext Data datagram: header, then `frames`.
fn plain_datagram(marker: u8, conn: u64, pn: u32, frames: &[u8]) -> Vec<u8> {
    let mut b = raw_header(marker, 0x02, conn, pn);
    b.extend_from_slice(frames);
    b
}

fn vector_line(out: &mut String, name: &str, bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(32).enumerate() {
        let label = if i == 0 { name } else { "" };
        let _ = writeln!(out, "{label:<24} {}", hex(chunk));
    }
}

#[test]
fn noise_vectors() {
    let key = server_key();
    let init = Initiator::new(VEC_CONN, VEC_CLIENT_SEED).unwrap();
    let token = crypto::reset_token(&key, VEC_CONN);
    let (server_t, msg2) =
        crypto::respond(&key, VEC_CONN, VEC_SERVER_SEED, init.msg1(), None).unwrap();
    let est = init.finish(&msg2).unwrap();
    assert_eq!(&est.server_key, key.public());
    assert_eq!(est.reset_token, token);
    assert_eq!(msg2.len(), MSG2_LEN);

    // The ephemeral keys are the first 32 bytes of ChaCha20 keyed with the
    // seeds; their public halves are what the handshake messages start with.
    let client_e = ephemeral_private(VEC_CLIENT_SEED);
    let server_e = ephemeral_private(VEC_SERVER_SEED);
    assert_eq!(init.msg1(), StaticKey::from_private(client_e).public());
    assert_eq!(&msg2[..32], StaticKey::from_private(server_e).public());

    let c2s = plain_datagram(
        b'C',
        VEC_CONN,
        0,
        &raw_segment(0, br#"{"t":"user","name":"alice"}"#),
    );
    let s2c = plain_datagram(
        b'C',
        VEC_CONN,
        0,
        &[
            raw_ack(1),
            raw_segment(
                0,
                br#"{"t":"password_required","name":"alice","new_user":true}"#,
            ),
        ]
        .concat(),
    );
    let ping = plain_datagram(b'C', VEC_CONN, 0x0102, &[0x03]);
    let sealed_c2s = est.transport.seal(&c2s).unwrap();
    let sealed_s2c = server_t.seal(&s2c).unwrap();
    let sealed_ping = est.transport.seal(&ping).unwrap();
    assert_eq!(server_t.open(&sealed_c2s).unwrap(), c2s);
    assert_eq!(est.transport.open(&sealed_s2c).unwrap(), s2c);
    assert_eq!(server_t.open(&sealed_ping).unwrap(), ping);
    for (plain, sealed) in [
        (&c2s, &sealed_c2s),
        (&s2c, &sealed_s2c),
        (&ping, &sealed_ping),
    ] {
        assert_eq!(sealed.len(), plain.len() + 4 + TAG_LEN);
        assert_eq!(sealed[..HEADER_LEN], plain[..HEADER_LEN]);
    }

    let mut out = String::new();
    let _ = writeln!(out, "{:<24} {}", "protocol name", crypto::NOISE_PARAMS);
    vector_line(&mut out, "connection id", &VEC_CONN.to_be_bytes());
    vector_line(
        &mut out,
        "prologue",
        &[&b"udpchat/1"[..], &VEC_CONN.to_be_bytes()].concat(),
    );
    vector_line(&mut out, "server static private", key.private());
    vector_line(&mut out, "server static public", key.public());
    vector_line(&mut out, "client ephemeral seed", &VEC_CLIENT_SEED);
    vector_line(&mut out, "client ephemeral private", &client_e);
    vector_line(&mut out, "server ephemeral seed", &VEC_SERVER_SEED);
    vector_line(&mut out, "server ephemeral private", &server_e);
    vector_line(&mut out, "reset token", &token);
    vector_line(&mut out, "msg1 (client e)", init.msg1());
    vector_line(&mut out, "msg2 (e, s, token)", &msg2);
    vector_line(&mut out, "c→s plaintext pn 0", &c2s);
    vector_line(&mut out, "c→s sealed", &sealed_c2s);
    vector_line(&mut out, "s→c plaintext pn 0", &s2c);
    vector_line(&mut out, "s→c sealed", &sealed_s2c);
    vector_line(&mut out, "c→s plaintext pn 258", &ping);
    vector_line(&mut out, "c→s sealed", &sealed_ping);
    print!("{out}");

    assert_eq!(hex(key.public()), VEC_SERVER_PUBLIC, "server public key");
    assert_eq!(hex(&client_e), VEC_CLIENT_E_PRIVATE, "client ephemeral");
    assert_eq!(hex(&server_e), VEC_SERVER_E_PRIVATE, "server ephemeral");
    assert_eq!(hex(&token), VEC_RESET_TOKEN, "reset token");
    assert_eq!(hex(init.msg1()), VEC_MSG1, "msg1");
    assert_eq!(hex(&msg2), VEC_MSG2, "msg2");
    assert_eq!(hex(&sealed_c2s), VEC_SEALED_C2S, "sealed client datagram");
    assert_eq!(hex(&sealed_s2c), VEC_SEALED_S2C, "sealed server datagram");
    assert_eq!(hex(&sealed_ping), VEC_SEALED_PING, "sealed PING, pn 258");
    assert_documented(&out, "the handshake and sealing vectors");
}

/// The connection id the server issues in §6.3.
const VEC_ISSUED: u64 = 0xfedc_ba98_7654_3210;

#[test]
fn issued_id_vectors() {
    let key = server_key();
    let init = Initiator::new(VEC_CONN, VEC_CLIENT_SEED).unwrap();
    // The first Initial, asking for an issued id: the options byte follows
    // msg1.
    let initial = Initial {
        cookie: None,
        msg1: init.msg1(),
        issue_id: true,
    }
    .encode(VEC_CONN);
    assert_eq!(initial.len(), MIN_INITIAL_LEN);
    assert_eq!(initial[51], 0x01);
    assert!(initial[52..].iter().all(|&b| b == 0));
    let (server_t, msg2) = crypto::respond(
        &key,
        VEC_CONN,
        VEC_SERVER_SEED,
        init.msg1(),
        Some(VEC_ISSUED),
    )
    .unwrap();
    assert_eq!(msg2.len(), crypto::MSG2_ISSUED_LEN);
    let est = init.finish(&msg2).unwrap();
    assert_eq!(est.issued_id, Some(VEC_ISSUED));
    let token = crypto::reset_token(&key, VEC_ISSUED);
    assert_eq!(est.reset_token, token);
    assert_ne!(token, crypto::reset_token(&key, VEC_CONN));
    let handshake = encode_simple(PacketKind::Handshake, VEC_CONN, &msg2);
    let c2s = plain_datagram(
        b'C',
        VEC_ISSUED,
        0,
        &raw_segment(0, br#"{"t":"user","name":"alice"}"#),
    );
    let sealed_c2s = est.transport.seal(&c2s).unwrap();
    assert_eq!(server_t.open(&sealed_c2s).unwrap(), c2s);
    let reset = encode_simple(PacketKind::Reset, VEC_ISSUED, &token);

    let mut out = String::new();
    vector_line(&mut out, "Initial, bytes 0-63", &initial[..64]);
    vector_line(&mut out, "issued connection id", &VEC_ISSUED.to_be_bytes());
    vector_line(&mut out, "msg2 (e, s, id, token)", &msg2);
    vector_line(&mut out, "Handshake datagram", &handshake);
    vector_line(&mut out, "reset token", &token);
    vector_line(&mut out, "c→s plaintext pn 0", &c2s);
    vector_line(&mut out, "c→s sealed", &sealed_c2s);
    vector_line(&mut out, "Reset datagram", &reset);
    print!("{out}");
    assert_documented(&out, "the issued connection id vectors");

    // The reference server issues an id when asked: its Handshake is 136
    // bytes, under the Initial's id, and the session's id is another.
    let mut raw = Raw::new(Server::new(raw_config(), [], server_key(), SERVER_RANDOM));
    let from = alice_addr();
    let retry = raw.exchange(from, &initial);
    let cookie = &retry[0][HEADER_LEN..];
    let second = Initial {
        cookie: Some(cookie),
        msg1: init.msg1(),
        issue_id: true,
    }
    .encode(VEC_CONN);
    let hs = raw.exchange(from, &second);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].len(), HEADER_LEN + crypto::MSG2_ISSUED_LEN);
    assert_eq!(Header::decode(&hs[0]).unwrap().connection_id, VEC_CONN);
    let issued = init.finish(&hs[0][HEADER_LEN..]).unwrap().issued_id;
    assert!(issued.is_some_and(|id| id != VEC_CONN && id != 0));
    // A retransmitted Initial gets the same answer.
    assert_eq!(raw.exchange(from, &second), hs);
}

// --- The worked example -----------------------------------------------------------

/// One captured datagram, with the plaintext it sealed (Data datagrams).
#[derive(Clone, Debug)]
struct Captured {
    at: Instant,
    from: &'static str,
    to: &'static str,
    bytes: Vec<u8>,
    plain: Option<Vec<u8>>,
}

/// The wiretap's view of `d`: it learns keys from a Handshake, and
/// returns the plaintext of a Data datagram (every one opens).
fn observe(wiretap: &mut Wiretap, d: &Captured) -> Option<Vec<u8>> {
    let from_server = d.from == "server";
    if from_server {
        wiretap.server_sent(&d.bytes);
    }
    let plain = wiretap.open(from_server, &d.bytes);
    assert!(
        plain.is_some() || kind_of(&d.bytes) != PacketKind::Data,
        "the wiretap opens every datagram"
    );
    plain
}

/// Two clients and a server on a lossless in-memory network where every
/// datagram takes [`HOP`] to arrive.
struct World {
    now: Instant,
    server: Server,
    alice: Option<Client>,
    bob: Option<Client>,
    wiretap: Wiretap,
    log: Vec<Captured>,
    /// Datagrams the network delivers again (duplicates).
    replay: Vec<Captured>,
}

const HOP: Duration = Duration::from_millis(5);

/// The Unix time (ms) at the worked example's start: 2026-06-01T00:00:00Z.
const WALL_CLOCK: u64 = 1_780_272_000_000;

impl World {
    fn new() -> World {
        let mut server = Server::new(ServerConfig::default(), [], server_key(), SERVER_RANDOM);
        // The worked example's wall clock: 2026-06-01T00:00:00Z.
        server.set_unix_time(Instant::ZERO, WALL_CLOCK);
        World {
            now: Instant::ZERO,
            server,
            alice: None,
            bob: None,
            wiretap: {
                let mut w = Wiretap::new(server_key(), SERVER_RANDOM);
                for random in [ALICE_RANDOM, BOB_RANDOM] {
                    let (conn, seed) = client_draws(random);
                    w.client_started(conn, seed);
                }
                w
            },
            log: Vec::new(),
            replay: Vec::new(),
        }
    }

    fn client(&mut self, who: &str) -> &mut Client {
        match who {
            "alice" => self.alice.as_mut().expect("alice"),
            _ => self.bob.as_mut().expect("bob"),
        }
    }

    /// Collects everything the endpoints want to send now.
    fn collect(&mut self) -> Vec<Captured> {
        let mut out = std::mem::take(&mut self.replay);
        let now = self.now;
        for (name, client) in [("alice", &mut self.alice), ("bob", &mut self.bob)] {
            if let Some(c) = client {
                while let Some(bytes) = c.poll_datagram(now) {
                    out.push(Captured {
                        at: now,
                        from: name,
                        to: "server",
                        bytes,
                        plain: None,
                    });
                }
            }
        }
        // The password work is answered at once, as a driver's worker pool
        // would (the hash is fake; it never travels).
        udpchat_sim::answer_all(&mut self.server, now);
        while let Some(Sent { to, bytes }) = self.server.poll_datagram(now) {
            let to = if to == alice_addr() { "alice" } else { "bob" };
            out.push(Captured {
                at: now,
                from: "server",
                to,
                bytes,
                plain: None,
            });
        }
        while self.server.poll_event().is_some() {}
        out
    }

    fn deliver(&mut self, d: &Captured) {
        let now = self.now;
        match d.to {
            "server" => {
                let from = if d.from == "alice" {
                    alice_addr()
                } else {
                    bob_addr()
                };
                self.server.handle_datagram(now, from, &d.bytes);
            }
            who => self.client(who).handle_datagram(now, &d.bytes),
        }
    }

    /// Runs the network until nothing more is sent, waiting out delayed
    /// acknowledgements as a real driver would. Fails if any other timer
    /// would have fired meanwhile: the transcript must be what a real
    /// driver produces.
    fn settle(&mut self) {
        loop {
            let batch = self.collect();
            if batch.is_empty() {
                match self.next_timer() {
                    Some(t) if t <= self.now + ChannelConfig::default().max_ack_delay => {
                        self.now = t;
                        self.fire_timers();
                        continue;
                    }
                    _ => return,
                }
            }
            self.now += HOP;
            for mut d in batch {
                d.plain = observe(&mut self.wiretap, &d);
                self.deliver(&d);
                self.log.push(d);
            }
            self.fire_due_timers();
        }
    }

    fn next_timer(&mut self) -> Option<Instant> {
        let clients = [&self.alice, &self.bob]
            .into_iter()
            .flatten()
            .filter_map(|c| c.poll_timeout());
        clients.chain(self.server.poll_timeout()).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for c in [&mut self.alice, &mut self.bob].into_iter().flatten() {
            c.handle_timeout(now);
        }
        self.server.handle_timeout(now);
    }

    /// Fires the timers due by now (delayed acknowledgements).
    fn fire_due_timers(&mut self) {
        if self.next_timer().is_some_and(|t| t <= self.now) {
            self.fire_timers();
        }
    }

    /// Lets the user think for a moment.
    fn pause(&mut self) {
        self.now += Duration::from_millis(20);
    }

    fn events(&mut self, who: &str) -> Vec<ClientEvent> {
        let c = self.client(who);
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn login(&mut self, who: &'static str, random: [u8; 32], password: &str) {
        // The worked example is a client of the first version 1 (its
        // connection id is its own): §6.3 shows a server-issued one.
        let config = ClientConfig {
            issued_connection_id: false,
            ..ClientConfig::default()
        };
        let c = Client::new(self.now, config, random, who).unwrap();
        match who {
            "alice" => self.alice = Some(c),
            _ => self.bob = Some(c),
        }
        self.settle();
        let key = *self.server.public_key();
        assert_eq!(
            self.events(who),
            [
                ClientEvent::ServerKey(key),
                ClientEvent::PasswordRequired {
                    name: who.into(),
                    new_user: true,
                    registration: None,
                }
            ]
        );
        self.pause();
        self.client(who).submit_password(password).unwrap();
        self.settle();
        assert!(self.client(who).is_logged_in());
    }
}

/// Runs the example session and returns every datagram of it from alice's
/// first, in the order sent, with times counted from that first datagram.
fn run_example() -> Vec<Captured> {
    let mut w = World::new();
    // Bob is online first, so that alice's public message has a recipient.
    w.login("bob", BOB_RANDOM, "bob's password");
    w.events("bob");
    w.pause();
    let first = w.log.len();
    let start = w.now;

    // Alice: handshake (Retry, cookie), username, password (a new account).
    w.login("alice", ALICE_RANDOM, "correct horse");
    assert!(matches!(
        w.events("alice").as_slice(),
        [ClientEvent::LoggedIn { new_user: true, online, .. }] if online == &["alice", "bob"]
    ));
    assert_eq!(w.events("bob"), [ClientEvent::Joined("alice".into())]);
    w.pause();

    // PM: op PM, op_ok, pm, relayed to bob as `public`, confirm.
    w.client("alice").request_operation(Operation::PM).unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::OperationReady(Operation::PM)]
    );
    w.pause();
    w.client("alice").send_public("hello everyone").unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::Confirmed {
            op: Operation::PM,
            to: None,
            recipients: 1,
            stored: false,
        }]
    );
    assert_eq!(
        w.events("bob"),
        [ClientEvent::Public {
            from: "alice".into(),
            text: "hello everyone".into(),
            time: Some(WALL_CLOCK + 270),
        }]
    );
    w.pause();

    // DM: op DM, the online list, dm, `direct` to bob, confirm.
    w.client("alice").request_operation(Operation::DM).unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::Online {
            users: vec!["alice".into(), "bob".into()],
            count: None,
            away: vec![],
        }]
    );
    w.pause();
    w.client("alice").send_direct("bob", "hi bob").unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::Confirmed {
            op: Operation::DM,
            to: Some("bob".into()),
            recipients: 1,
            stored: false,
        }]
    );
    assert_eq!(
        w.events("bob"),
        [ClientEvent::Direct {
            from: "alice".into(),
            text: "hi bob".into(),
            time: Some(WALL_CLOCK + 360),
            offline: false,
        }]
    );
    w.pause();

    // EX: op EX, bye; bob is told alice left.
    w.client("alice").request_operation(Operation::EX).unwrap();
    w.settle();
    assert!(w.client("alice").closed().is_some());
    assert_eq!(
        w.events("bob"),
        [ClientEvent::Left {
            user: "alice".into(),
            reason: "exit".into(),
            message: None,
        }]
    );
    assert!(!w.server.online_users().any(|u| u == "alice"));
    assert_eq!(w.server.session_count(), 1, "alice's session is gone");

    // A late duplicate of alice's last datagram reaches the server after
    // her session was removed: a Reset with the connection's token.
    w.pause();
    let last = w
        .log
        .iter()
        .rev()
        .find(|d| d.from == "alice")
        .cloned()
        .unwrap();
    w.replay.push(Captured {
        at: w.now,
        plain: None,
        ..last
    });
    w.settle();

    let mut log = w.log.split_off(first);
    for d in &mut log {
        d.at = Instant::from_micros(d.at.as_micros() - start.as_micros());
    }
    log
}

/// The datagrams whose ciphertext the transcript shows in full (the others
/// show their header and plaintext).
const SHOWN_SEALED: &[usize] = &[5, 6, 17];

fn header_note(h: &Header, bytes: &[u8]) -> String {
    format!(
        "'{}' v{} {:?} flags 0, conn {:016x}, pn {}",
        bytes[0] as char, bytes[1], h.kind, h.connection_id, h.packet_number
    )
}

fn annotate_frames(out: &mut String, plain: &[u8]) {
    let d = Datagram::decode(plain).expect("every sealed plaintext decodes");
    row(out, &plain[..4], "header bytes 0..4, copied");
    let mut at = HEADER_LEN;
    for f in d.frames() {
        let len = f.encoded_len();
        let raw = &plain[at..at + len];
        match f {
            Frame::Ack {
                next_expected,
                sack,
            } => row(
                out,
                raw,
                &format!("ACK next_expected {next_expected}, sack {sack:02x?}"),
            ),
            Frame::Segment { seq, end, data } => {
                row(
                    out,
                    &raw[..8],
                    &format!(
                        "SEGMENT seq {seq}, {}, len {}",
                        if end { "END" } else { "not END" },
                        data.len()
                    ),
                );
                for chunk in data.chunks(16) {
                    row(out, chunk, &printable(chunk));
                }
            }
            Frame::Ping => row(out, raw, "PING"),
            Frame::Close(code) => row(out, raw, &format!("CLOSE {code:?}")),
            Frame::Probe(size) => row(out, raw, &format!("PROBE {size}")),
            Frame::ProbeAck(size) => row(out, raw, &format!("PROBE_ACK {size}")),
        }
        at += len;
    }
    assert_eq!(
        at,
        plain.len(),
        "no padding in the example's Data datagrams"
    );
}

/// The annotated form of a datagram, as `PROTOCOL.md` shows it.
fn annotate(d: &Captured, show_sealed: bool) -> String {
    let bytes = &d.bytes;
    let h = Header::decode(bytes).expect("every captured datagram decodes");
    let mut out = String::new();
    row(&mut out, &bytes[..HEADER_LEN], &header_note(&h, bytes));
    let body = &bytes[HEADER_LEN..];
    match h.kind {
        PacketKind::Initial => {
            let cookie_len = body[0] as usize;
            row(
                &mut out,
                &body[..1],
                &if cookie_len == 0 {
                    "cookie length 0: no cookie".to_string()
                } else {
                    format!("cookie length {cookie_len}")
                },
            );
            let mut at = 1;
            if cookie_len > 0 {
                rows(
                    &mut out,
                    &body[1..1 + cookie_len],
                    "cookie, echoed from the Retry",
                );
                at += cookie_len;
            }
            row(&mut out, &body[at..at + 2], "msg1 length 32");
            rows(
                &mut out,
                &body[at + 2..at + 34],
                "msg1: the client's ephemeral public key",
            );
            at += 34;
            row(
                &mut out,
                &body[at..at + 1],
                &format!(
                    "zero padding: this byte and {} more, to {} bytes",
                    body.len() - at - 1,
                    bytes.len()
                ),
            );
        }
        PacketKind::Retry => rows(&mut out, body, "cookie"),
        PacketKind::Handshake => {
            rows(
                &mut out,
                &body[..32],
                "msg2: the server's ephemeral public key",
            );
            rows(
                &mut out,
                &body[32..80],
                "static key, encrypted (32) + tag (16)",
            );
            rows(
                &mut out,
                &body[80..],
                "payload: reset token, encrypted (16) + tag (16)",
            );
        }
        PacketKind::Reset => rows(&mut out, body, "reset token"),
        PacketKind::Data => {
            let plain = d.plain.as_ref().expect("opened");
            let sealed = body.len() - TAG_LEN;
            if show_sealed {
                rows(
                    &mut out,
                    &body[..sealed],
                    &format!("ciphertext ({sealed} bytes)"),
                );
                row(&mut out, &body[sealed..], "tag");
            } else {
                let _ = writeln!(
                    out,
                    "{:<HEX_WIDTH$}  ciphertext ({sealed} bytes) and tag (16 bytes), not shown",
                    "…"
                );
            }
            let _ = writeln!(out, "sealed plaintext ({} bytes):", sealed);
            annotate_frames(&mut out, plain);
        }
    }
    out
}

/// One block per datagram, as `PROTOCOL.md` shows them.
fn transcript_blocks(log: &[Captured]) -> Vec<String> {
    log.iter()
        .enumerate()
        .map(|(i, d)| {
            let n = i + 1;
            let kind = Header::decode(&d.bytes).unwrap().kind;
            let mut out = format!(
                "#{n} {} → {} at {} ms, {} bytes, {:?}\n",
                d.from,
                d.to,
                d.at.as_micros() / 1000,
                d.bytes.len(),
                kind
            );
            out.push_str(&annotate(d, SHOWN_SEALED.contains(&n)));
            out
        })
        .collect()
}

#[test]
fn print_transcript() {
    for block in transcript_blocks(&run_example()) {
        println!("{block}");
    }
}

// The datagrams that `PROTOCOL.md` quotes as the required vectors.

/// #1 alice → server: the first Initial, no cookie (first 60 of 1200 bytes).
const FIRST_INITIAL_60: &str = concat!(
    "43 01 01 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Initial flags 0, conn f2cfa88fedb62179, pn 0
    "00 ",                                              // cookie length 0: no cookie
    "00 20 ",                                           // msg1 length 32
    "ad 28 d0 f6 18 8c 99 f5 ad 87 cf ac 70 57 41 2b ", // msg1: the client's ephemeral public key
    "8b 46 6e 60 8d ca 08 e1 a1 2a 00 05 33 77 8a 79 ",
    "00 00 00 00 00 00 00 00 00 ", // zero padding, its first 9 bytes
);

/// #2 server → alice: Retry.
const RETRY: &str = concat!(
    "43 01 03 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Retry flags 0, conn f2cfa88fedb62179, pn 0
    "4c 4d 3f 97 54 39 64 1e 0d 4a 03 85 d7 39 21 ba ", // cookie
);

/// #4 server → alice: Handshake.
const HANDSHAKE: &str = concat!(
    "43 01 04 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Handshake flags 0, conn f2cfa88fedb62179, pn 0
    "8e fd 99 22 27 30 d6 40 4b c2 bc 97 09 a2 2e 7a ", // msg2: the server's ephemeral public key
    "9a d3 26 67 47 30 a4 b5 78 b7 37 0a 24 64 bb 7e ",
    "99 8e df a2 4e 4b 47 5c f9 68 82 3d f3 c5 b4 9b ", // static key, encrypted (32) + tag (16)
    "2b 8d 22 c2 92 79 6e 3f 61 d4 61 59 b7 ad b5 a1 ",
    "85 fd 34 12 a8 2e 85 84 33 1a e0 2b db d2 fe eb ",
    "5d 21 a1 ef 84 91 90 91 cf 5b 04 2c a3 64 54 51 ", // payload: reset token, encrypted (16) + tag (16)
    "48 92 49 80 19 fd 73 c2 a9 3a 7e 32 ee fe 30 37 ",
);

/// #5 alice → server: the first sealed Data datagram (`user`).
const FIRST_SEALED: &str = concat!(
    "43 01 02 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Data flags 0, conn f2cfa88fedb62179, pn 0
    "73 b0 86 34 08 1a 16 bf b9 b3 d7 b1 05 62 c3 22 ", // ciphertext (39 bytes)
    "fb 3c 5e 57 2f b8 18 d0 ed 88 90 f9 25 db 30 7e ",
    "ff 5b c7 50 b0 93 1d ",
    "08 37 c8 47 4f ae 58 ee 90 7b c7 70 97 10 60 ef ", // tag
);

/// #5 opened: its header, then the frames alice sealed.
const FIRST_SEALED_PLAIN: &str = concat!(
    "43 01 02 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Data flags 0, conn f2cfa88fedb62179, pn 0
    "02 00 00 00 00 01 00 1b ",                         // SEGMENT seq 0, END, len 27
    "7b 22 74 22 3a 22 75 73 65 72 22 2c 22 6e 61 6d ", // {"t":"user","nam
    "65 22 3a 22 61 6c 69 63 65 22 7d ",                // e":"alice"}
);

/// #17 server → bob: `public`, a sealed 'D' datagram.
const PUBLIC_SEALED: &str = concat!(
    "44 01 02 00 df d6 f1 65 26 b0 d8 96 00 00 00 03 ", // 'D' v1 Data flags 0, conn dfd6f16526b0d896, pn 3
    "03 47 71 94 14 91 8c de b1 22 ad a2 53 09 a8 ac ", // ciphertext (92 bytes)
    "49 61 62 ec 5f ff 23 49 ef 15 db 2c ef bd c0 4e ",
    "40 99 87 3f 62 89 9d 44 71 81 ac 1d 29 e4 0f fe ",
    "ec 41 1b 9f b5 de c0 17 4b 71 76 c6 45 da 64 f3 ",
    "e4 61 b9 e6 86 04 2a 82 7d 7d 00 e6 ce c9 be 09 ",
    "f7 28 54 b7 9a 72 95 0d 61 1b 93 a1 ",
    "74 36 74 c1 68 c0 4f 9a 59 00 7f 40 b7 cf 86 96 ", // tag
);

/// #36 server → alice: Reset.
const RESET: &str = concat!(
    "43 01 05 00 f2 cf a8 8f ed b6 21 79 00 00 00 00 ", // 'C' v1 Reset flags 0, conn f2cfa88fedb62179, pn 0
    "25 e4 4c b2 57 ed b0 e8 72 6b ae fd 08 2c 84 33 ", // reset token
);

#[test]
fn required_vectors() {
    let log = run_example();
    let at = |n: usize| &log[n - 1];
    let (conn, _) = client_draws(ALICE_RANDOM);
    let key = server_key();

    // The first Initial: no cookie, padded to 1200 bytes with zeros.
    assert_eq!(at(1).bytes.len(), MIN_INITIAL_LEN);
    assert_eq!(
        at(1).bytes[..60],
        from_hex(FIRST_INITIAL_60),
        "first Initial"
    );
    assert!(at(1).bytes[60..].iter().all(|&b| b == 0), "Initial padding");

    // The Retry's cookie is the server's MAC of alice's address and
    // connection id for the current 60-second window (the whole example
    // runs in the first one).
    assert_eq!(at(2).bytes, from_hex(RETRY), "Retry");
    let mut server_rng = Rng::from_seed(SERVER_RANDOM);
    let cookies = CookieKeys::new(server_rng.seed());
    let cookie = cookies.cookie(Instant::ZERO, &alice_addr(), conn);
    assert_eq!(at(2).bytes[HEADER_LEN..], cookie);
    assert_eq!(at(2).bytes.len(), HEADER_LEN + COOKIE_LEN);

    // The second Initial echoes it; the rest is unchanged.
    let second = &at(3).bytes;
    assert_eq!(second.len(), MIN_INITIAL_LEN);
    assert_eq!(second[..HEADER_LEN], at(1).bytes[..HEADER_LEN]);
    assert_eq!(second[HEADER_LEN], COOKIE_LEN as u8);
    assert_eq!(second[HEADER_LEN + 1..HEADER_LEN + 17], cookie);
    assert_eq!(
        second[HEADER_LEN + 17..HEADER_LEN + 51],
        at(1).bytes[HEADER_LEN + 1..HEADER_LEN + 35]
    );

    assert_eq!(at(4).bytes, from_hex(HANDSHAKE), "Handshake");
    assert_eq!(at(4).bytes.len(), HEADER_LEN + MSG2_LEN);

    assert_eq!(at(5).bytes, from_hex(FIRST_SEALED), "first sealed Data");
    assert_eq!(
        at(5).plain.as_deref().unwrap(),
        from_hex(FIRST_SEALED_PLAIN),
        "what alice sealed"
    );

    // A 'D' datagram: the marker stays visible, the rest is sealed.
    assert_eq!(at(17).bytes, from_hex(PUBLIC_SEALED), "sealed `public`");

    let last = log.last().unwrap();
    assert_eq!(last.bytes, from_hex(RESET), "Reset");
    assert_eq!(last.bytes[HEADER_LEN..], crypto::reset_token(&key, conn));

    // Answers to an unproven address are smaller than what provoked them:
    // Retry (#2) and Handshake (#4) to the Initials #1 and #3, Reset (#36)
    // to the stray #35.
    for (answer, provoked) in [(2, 1), (4, 3), (36, 35)] {
        assert!(at(answer).bytes.len() < at(provoked).bytes.len());
    }
}

#[test]
fn worked_example_matches_protocol_md() {
    let log = run_example();
    let blocks = transcript_blocks(&log);
    for (i, block) in blocks.iter().enumerate() {
        assert_documented(block, &format!("datagram #{}", i + 1));
    }
    // No datagram exceeds 1200 bytes, no plaintext 1180.
    assert!(log.iter().all(|d| d.bytes.len() <= MAX_DATAGRAM));
    assert!(
        log.iter()
            .filter_map(|d| d.plain.as_ref())
            .all(|p| p.len() <= MAX_PLAINTEXT)
    );
}

// --- A client written from PROTOCOL.md alone ---------------------------------------
//
// These tests build datagrams by hand, byte by byte as the document says
// (the crypto module stands in for "any Noise library"), and check the
// server's answers that the document promises.

fn raw_header(marker: u8, kind: u8, conn: u64, pn: u32) -> Vec<u8> {
    let mut b = vec![marker, 0x01, kind, 0x00];
    b.extend_from_slice(&conn.to_be_bytes());
    b.extend_from_slice(&pn.to_be_bytes());
    b
}

fn raw_ack(next_expected: u32) -> Vec<u8> {
    let mut b = vec![0x01];
    b.extend_from_slice(&next_expected.to_be_bytes());
    b.push(0); // no SACK bitmap
    b
}

fn raw_segment(seq: u32, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0x02];
    b.extend_from_slice(&seq.to_be_bytes());
    b.push(0x01); // END: the message fits one segment
    b.extend_from_slice(&(data.len() as u16).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// An Initial: header, cookie length and cookie, msg1 length and msg1,
/// zeros to `len` bytes.
fn raw_initial(conn: u64, cookie: &[u8], msg1: &[u8], len: usize) -> Vec<u8> {
    let mut b = raw_header(b'C', 0x01, conn, 0);
    b.push(cookie.len() as u8);
    b.extend_from_slice(cookie);
    b.extend_from_slice(&(msg1.len() as u16).to_be_bytes());
    b.extend_from_slice(msg1);
    b.resize(len, 0);
    b
}

const RAW_CONN: u64 = 0x0123_4567_89ab_cdef;

/// A hand-made client talking to a server.
struct Raw {
    server: Server,
    now: Instant,
    /// Time that passes before each datagram.
    step: Duration,
    addr: SocketAddr,
    conn: u64,
    transport: Option<Transport>,
    pn: u32,
    seq: u32,
    /// Segments received from the server so far (all of one segment each).
    received: u32,
}

impl Raw {
    fn new(server: Server) -> Raw {
        Raw {
            server,
            now: Instant::from_micros(3_600_000_000),
            step: Duration::from_millis(10),
            addr: alice_addr(),
            conn: RAW_CONN,
            transport: None,
            pn: 0,
            seq: 0,
            received: 0,
        }
    }

    /// Sends `bytes` from `from`, answers the server's password work (the
    /// simulation's fake password service: the hash of `pw` is `fake:pw`), and returns the datagrams the
    /// server sends back.
    fn exchange(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.now += self.step;
        self.server.handle_datagram(self.now, from, bytes);
        udpchat_sim::answer_all(&mut self.server, self.now);
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_datagram(self.now) {
            assert_eq!(t.to, from, "answers go to the sender's address");
            assert!(
                t.bytes.len() <= bytes.len() || self.transport.is_some(),
                "an answer to an unproven address is smaller than what provoked it"
            );
            out.push(t.bytes);
        }
        out
    }

    /// The handshake, by hand: Initial, Retry, Initial with the cookie,
    /// Handshake.
    fn connect(&mut self, seed: [u8; 32]) {
        let init = Initiator::new(self.conn, seed).unwrap();
        let first = raw_initial(self.conn, &[], init.msg1(), MIN_INITIAL_LEN);
        let retry = self.exchange(self.addr, &first);
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0][..HEADER_LEN], raw_header(b'C', 0x03, self.conn, 0));
        let cookie = retry[0][HEADER_LEN..].to_vec();
        let second = raw_initial(self.conn, &cookie, init.msg1(), MIN_INITIAL_LEN);
        let hs = self.exchange(self.addr, &second);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0][..HEADER_LEN], raw_header(b'C', 0x04, self.conn, 0));
        let est = init.finish(&hs[0][HEADER_LEN..]).unwrap();
        assert_eq!(&est.server_key, self.server.public_key());
        self.transport = Some(est.transport);
    }

    /// Lets the session's linger time pass, so that the server forgets it
    /// (and sends nothing more to it).
    fn finish(&mut self) {
        self.now += Duration::from_secs(10);
        self.server.handle_timeout(self.now);
        while self.server.poll_datagram(self.now).is_some() {}
    }

    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        self.transport.as_ref().unwrap().seal(plain).unwrap()
    }

    /// Sends one JSON message (in a sealed Data datagram, acknowledging
    /// what was received) and returns the server's messages in answer.
    fn say(&mut self, json: &str) -> Vec<ServerMessage> {
        let mut d = raw_header(b'C', 0x02, self.conn, self.pn);
        d.extend(raw_ack(self.received));
        d.extend(raw_segment(self.seq, json.as_bytes()));
        self.pn += 1;
        self.seq += 1;
        let sealed = self.seal(&d);
        let replies = self.exchange(self.addr, &sealed);
        self.messages(&replies)
    }

    fn messages(&mut self, replies: &[Vec<u8>]) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        for r in replies {
            let plain = self.transport.as_ref().unwrap().open(r).unwrap();
            for f in Datagram::decode(&plain).unwrap().frames() {
                if let Frame::Segment { seq, end, data } = f {
                    assert_eq!(seq, self.received);
                    assert!(end);
                    self.received += 1;
                    out.push(session::decode(data).unwrap());
                }
            }
        }
        out
    }
}

fn error_code(messages: &[ServerMessage]) -> ErrorCode {
    match messages {
        [ServerMessage::Error { code, .. }] => *code,
        other => panic!("expected one error, got {other:?}"),
    }
}

fn kind_of(bytes: &[u8]) -> PacketKind {
    Header::decode(bytes).unwrap().kind
}

#[test]
fn connection_rules() {
    let key = server_key();
    let mut raw = Raw::new(Server::new(raw_config(), [], key.clone(), SERVER_RANDOM));
    let conn = RAW_CONN;
    let init = Initiator::new(conn, [7; 32]).unwrap();
    let msg1 = init.msg1().to_vec();

    // An Initial of 1199 bytes gets no answer and makes no state.
    let short = raw_initial(conn, &[], &msg1, MIN_INITIAL_LEN - 1);
    assert!(raw.exchange(alice_addr(), &short).is_empty());

    // Malformed Initials are dropped silently: a cookie length other than 0
    // or 16, a msg1 length other than 32, non-zero padding.
    let bad_cookie_len = raw_initial(conn, &[1; 5], &msg1, MIN_INITIAL_LEN);
    let bad_msg1_len = raw_initial(conn, &[], &msg1[..31], MIN_INITIAL_LEN);
    let mut dirty = raw_initial(conn, &[], &msg1, MIN_INITIAL_LEN);
    dirty[1000] = 1;
    let mut flags = raw_initial(conn, &[], &msg1, MIN_INITIAL_LEN);
    flags[3] = 0x80;
    let mut version = raw_initial(conn, &[], &msg1, MIN_INITIAL_LEN);
    version[1] = 2;
    for bad in [bad_cookie_len, bad_msg1_len, dirty, flags, version] {
        assert!(raw.exchange(alice_addr(), &bad).is_empty());
    }
    // Kinds only a server sends are dropped silently.
    for kind in [0x03, 0x04, 0x05] {
        let mut d = raw_header(b'C', kind, conn, 0);
        d.resize(MIN_INITIAL_LEN, 0);
        assert!(raw.exchange(alice_addr(), &d).is_empty());
    }
    assert_eq!(raw.server.session_count(), 0);

    // A valid Initial without a cookie: a 32-byte Retry, and still no state.
    let first = raw_initial(conn, &[], &msg1, MIN_INITIAL_LEN);
    let retry = raw.exchange(alice_addr(), &first);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].len(), 32);
    assert_eq!(kind_of(&retry[0]), PacketKind::Retry);
    assert_eq!(raw.server.session_count(), 0);
    let cookie = retry[0][HEADER_LEN..].to_vec();

    // A forged cookie, a cookie from another address, or for another
    // connection id: a fresh Retry, no state.
    let forged = raw_initial(conn, &[0x42; 16], &msg1, MIN_INITIAL_LEN);
    let with_cookie = raw_initial(conn, &cookie, &msg1, MIN_INITIAL_LEN);
    let other_conn = raw_initial(conn ^ 1, &cookie, &msg1, MIN_INITIAL_LEN);
    for (from, d) in [
        (alice_addr(), &forged),
        (bob_addr(), &with_cookie),
        (alice_addr(), &other_conn),
    ] {
        let r = raw.exchange(from, d);
        assert_eq!(r.len(), 1);
        assert_eq!(kind_of(&r[0]), PacketKind::Retry);
    }
    assert_eq!(raw.server.session_count(), 0);

    // A cookie is valid in its 60-second window and the next one only: two
    // windows later it is answered with a Retry carrying a fresh cookie.
    raw.now += Duration::from_secs(120);
    let r = raw.exchange(alice_addr(), &with_cookie);
    assert_eq!(kind_of(&r[0]), PacketKind::Retry, "an expired cookie");
    assert_ne!(r[0][HEADER_LEN..], cookie[..]);
    let with_cookie = raw_initial(conn, &r[0][HEADER_LEN..], &msg1, MIN_INITIAL_LEN);

    // Data for an unknown connection: nothing for 32 bytes or fewer, a
    // Reset of 32 bytes carrying the connection's token above that.
    let mut small = raw_header(b'C', 0x02, conn, 7);
    small.resize(32, 0);
    assert!(raw.exchange(alice_addr(), &small).is_empty());
    let mut big = small.clone();
    big.push(0);
    let reset = raw.exchange(alice_addr(), &big);
    assert_eq!(
        reset,
        [[
            raw_header(b'C', 0x05, conn, 0),
            crypto::reset_token(&key, conn).to_vec()
        ]
        .concat()]
    );

    // The right cookie from the right address: a 128-byte Handshake, and
    // the session exists.
    let hs = raw.exchange(alice_addr(), &with_cookie);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].len(), 128);
    assert_eq!(kind_of(&hs[0]), PacketKind::Handshake);
    assert_eq!(raw.server.session_count(), 1);
    // A retransmitted Initial gets the same Handshake again, and no second
    // session; from another address, nothing.
    assert_eq!(raw.exchange(alice_addr(), &with_cookie), hs);
    assert!(raw.exchange(bob_addr(), &with_cookie).is_empty());
    assert_eq!(raw.server.session_count(), 1);
    let est = init.finish(&hs[0][HEADER_LEN..]).unwrap();
    assert_eq!(est.reset_token, crypto::reset_token(&key, conn));
    raw.transport = Some(est.transport);

    // A Data datagram that does not authenticate is dropped silently (no
    // Reset: the session exists).
    let user = br#"{"t":"user","name":"carol"}"#;
    let plain = [raw_header(b'C', 0x02, conn, 0), raw_segment(0, user)].concat();
    let sealed = raw.seal(&plain);
    for i in [0, 2, 12, 15, 16, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(raw.exchange(alice_addr(), &bad).is_empty(), "byte {i}");
    }
    // Bytes 4..12 name the connection: another id is another (unknown)
    // connection, which gets a Reset.
    let mut other = sealed.clone();
    other[11] ^= 0x01;
    let r = raw.exchange(alice_addr(), &other);
    assert_eq!(kind_of(&r[0]), PacketKind::Reset);

    // The genuine datagram is processed: `password_required`.
    let replies = raw.exchange(alice_addr(), &sealed);
    raw.pn = 1;
    raw.seq = 1;
    assert!(matches!(
        raw.messages(&replies).as_slice(),
        [ServerMessage::PasswordRequired { new_user: true, .. }]
    ));
    // A replay of it is dropped, from any address.
    assert!(raw.exchange(alice_addr(), &sealed).is_empty());
    assert!(raw.exchange(bob_addr(), &sealed).is_empty());
    // The Handshake is not sent again once a Data datagram arrived.
    assert!(raw.exchange(alice_addr(), &with_cookie).is_empty());

    // The same session from a new address (NAT rebinding): the newest
    // authenticated datagram moves the session; answers go there.
    raw.addr = bob_addr();
    assert_eq!(
        raw.say(r#"{"t":"who"}"#),
        [ServerMessage::Error {
            code: ErrorCode::NotLoggedIn,
            message: "log in first".into()
        }]
    );
}

#[test]
fn session_rules() {
    let dave = UserRecord {
        name: "Dave".into(),
        password_hash: "fake:dave's password".into(),
        suspended: None,
    };
    let mut raw = Raw::new(Server::new(
        raw_config(),
        [dave],
        server_key(),
        SERVER_RANDOM,
    ));
    raw.connect([8; 32]);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"password","password":"pw"}"#)),
        ErrorCode::NotLoggedIn,
        "password before user"
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"nuke"}"#)),
        ErrorCode::BadMessage
    );
    assert_eq!(error_code(&raw.say("not json")), ErrorCode::BadMessage);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"pm","text":"hi"}"#)),
        ErrorCode::NotLoggedIn
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"user","name":"_carol"}"#)),
        ErrorCode::InvalidUsername
    );
    // Unknown fields are ignored; names are case-insensitive and the
    // server answers with the registered spelling.
    assert_eq!(
        raw.say(r#"{"t":"user","name":"DAVE","x":[1,{"y":2}]}"#),
        [ServerMessage::PasswordRequired {
            name: "Dave".into(),
            new_user: false,
            registration: None,
        }]
    );
    assert!(matches!(
        raw.say(r#"{"t":"password","password":"guess"}"#).as_slice(),
        [ServerMessage::LoginFailed {
            reason: LoginFailure::WrongPassword,
            ..
        }]
    ));
    assert_eq!(
        raw.say(r#"{"t":"user","name":"carol"}"#),
        [ServerMessage::PasswordRequired {
            name: "carol".into(),
            new_user: true,
            registration: None,
        }]
    );
    assert!(matches!(
        raw.say(r#"{"t":"password","password":""}"#).as_slice(),
        [ServerMessage::LoginFailed {
            reason: LoginFailure::InvalidPassword,
            ..
        }]
    ));
    let answer = raw.say(r#"{"password":"pw","t":"password","device":""}"#);
    match answer.as_slice() {
        [
            ServerMessage::LoginOk {
                name,
                new_user: true,
                online,
                count: None,
                device: Some(device),
                rate: Some(rate),
                ..
            },
        ] => {
            // The session's message limit: a burst of 10, then 5 a second.
            assert_eq!((rate.burst, rate.interval_ms), (10, 200));
            assert_eq!(name, "carol");
            assert_eq!(online, &["carol"]);
            // 48 lowercase hex digits (PROTOCOL.md §5.8).
            assert_eq!(device.len(), 48);
            assert!(
                device
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error_code(&raw.say(r#"{"t":"user","name":"carol"}"#)),
        ErrorCode::AlreadyLoggedIn
    );
    // `pm` without `op PM` first: accepted (nobody else is online).
    assert_eq!(
        raw.say(r#"{"t":"pm","text":"hi"}"#),
        [ServerMessage::Confirm {
            op: Operation::PM,
            to: None,
            recipients: 0,
            stored: false,
        }]
    );
    assert_eq!(
        raw.say(r#"{"t":"who"}"#),
        [ServerMessage::Online {
            users: vec!["carol".into()],
            count: None,
            away: vec![],
        }]
    );
    assert_eq!(
        raw.say(r#"{"t":"op","op":"PM"}"#),
        [ServerMessage::OpOk { op: Operation::PM }]
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"pm","text":"bell\u0007"}"#)),
        ErrorCode::InvalidText
    );
    raw.say(r#"{"t":"op","op":"PM"}"#);
    assert_eq!(
        raw.say(r#"{"t":"pm","text":"nobody hears this"}"#),
        [ServerMessage::Confirm {
            op: Operation::PM,
            to: None,
            recipients: 0,
            stored: false,
        }]
    );
    raw.say(r#"{"t":"op","op":"DM"}"#);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"dm","to":"nobody","text":"hi"}"#)),
        ErrorCode::UnknownUser
    );
    // A DM to a registered user who is offline is stored: confirmed with
    // `stored`, delivered at the next login (§5.11).
    raw.say(r#"{"t":"op","op":"DM"}"#);
    let stored = raw.say(r#"{"t":"dm","to":"dave","text":"hi"}"#);
    assert_eq!(
        stored,
        [ServerMessage::Confirm {
            op: Operation::DM,
            to: Some("Dave".into()),
            recipients: 0,
            stored: true,
        }]
    );
    for m in &stored {
        let json = String::from_utf8(session::encode(m)).unwrap();
        assert_documented(&format!("`{json}`"), "confirm stored");
    }

    // Message rate: once the bucket is full (2 s later), a burst of 10
    // `pm` passes and the 11th and 12th are refused with `rate_limited`
    // (and not relayed); 200 ms later one more passes.
    raw.step = Duration::ZERO;
    raw.now += Duration::from_secs(2);
    let pm = |raw: &mut Raw| {
        raw.say(r#"{"t":"op","op":"PM"}"#);
        match raw.say(r#"{"t":"pm","text":"spam"}"#).as_slice() {
            [ServerMessage::Confirm { .. }] => None,
            [ServerMessage::Error { code, .. }] => Some(*code),
            other => panic!("{other:?}"),
        }
    };
    let results: Vec<_> = (0..12).map(|_| pm(&mut raw)).collect();
    let mut expected = vec![None; 10];
    expected.extend([Some(ErrorCode::RateLimited); 2]);
    assert_eq!(results, expected);
    raw.now += Duration::from_millis(200);
    assert_eq!(pm(&mut raw), None);
    raw.step = Duration::from_millis(10);

    assert_eq!(raw.say(r#"{"t":"op","op":"EX"}"#), [ServerMessage::Bye]);
    // Closing: further messages are ignored.
    assert!(raw.say(r#"{"t":"who"}"#).is_empty());
}

/// §5.8: the device token of the example server's key for `alice` with the
/// id 1, as PROTOCOL.md gives it.
#[test]
fn device_token_vector() {
    let key = server_key();
    let token = crypto::device_token(&key, "alice", 1);
    println!("device token: {token}");
    assert_documented(
        &format!("`alice`, id 1: `{token}`"),
        "the device token vector",
    );
    assert!(crypto::check_device_token(&key, "alice", &token));
}

/// §5.3, §5.4, §5.6: `away`, `whois`, the away list of `online` and
/// `away_reply`, each answer as PROTOCOL.md shows it.
#[test]
fn away_and_whois_rules() {
    let dave = UserRecord {
        name: "Dave".into(),
        password_hash: "fake:dave's password".into(),
        suspended: None,
    };
    let mut raw = Raw::new(Server::new(
        raw_config(),
        [dave],
        server_key(),
        SERVER_RANDOM,
    ));
    raw.connect([9; 32]);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"away","text":"at lunch"}"#)),
        ErrorCode::NotLoggedIn
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"whois","name":"Dave"}"#)),
        ErrorCode::NotLoggedIn
    );
    raw.say(r#"{"t":"user","name":"bob"}"#);
    assert!(matches!(
        raw.say(r#"{"t":"password","password":"pw"}"#).as_slice(),
        [ServerMessage::LoginOk { .. }]
    ));
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            assert_documented(&format!("`{json}`"), what);
        }
    };

    let away = raw.say(r#"{"t":"away","text":"at lunch"}"#);
    assert_eq!(
        away,
        [ServerMessage::AwayOk {
            text: Some("at lunch".into())
        }]
    );
    documented(&away, "away_ok");
    let who = raw.say(r#"{"t":"who"}"#);
    assert_eq!(
        who,
        [ServerMessage::Online {
            users: vec!["bob".into()],
            count: None,
            away: vec!["bob".into()],
        }]
    );
    documented(&who, "online with away");
    // A DM to a user who is away (here, to oneself) is delivered; its
    // sender then gets the away text.
    let dm = raw.say(r#"{"t":"dm","to":"BOB","text":"note to self"}"#);
    assert_eq!(
        dm,
        [
            ServerMessage::Direct {
                from: "bob".into(),
                text: "note to self".into(),
                time: Some(3_600_090),
                id: None,
                offline: false,
            },
            ServerMessage::Confirm {
                op: Operation::DM,
                to: Some("bob".into()),
                recipients: 1,
                stored: false,
            },
            ServerMessage::AwayReply {
                user: "bob".into(),
                text: "at lunch".into()
            },
        ]
    );
    documented(&dm[2..], "away_reply");

    // whois: online for how long and why away; an account offline; no
    // account.
    raw.now += Duration::from_secs(125);
    let whois = raw.say(r#"{"t":"whois","name":"Bob"}"#);
    assert_eq!(
        whois,
        [ServerMessage::Whois {
            name: "bob".into(),
            online: true,
            online_secs: Some(125),
            away: Some("at lunch".into()),
        }]
    );
    documented(&whois, "whois of a user online");
    let whois = raw.say(r#"{"t":"whois","name":"dave"}"#);
    assert_eq!(
        whois,
        [ServerMessage::Whois {
            name: "Dave".into(),
            online: false,
            online_secs: None,
            away: None,
        }]
    );
    documented(&whois, "whois of a user offline");
    assert_eq!(
        error_code(&raw.say(r#"{"t":"whois","name":"nobody"}"#)),
        ErrorCode::UnknownUser
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"whois"}"#)),
        ErrorCode::BadMessage
    );

    // The text rules, and at most 200 bytes; a refused text changes
    // nothing.
    assert_eq!(
        error_code(&raw.say(r#"{"t":"away","text":"bell\u0007"}"#)),
        ErrorCode::InvalidText
    );
    let long = format!(r#"{{"t":"away","text":"{}"}}"#, "x".repeat(201));
    assert_eq!(error_code(&raw.say(&long)), ErrorCode::InvalidText);
    let fits = format!(r#"{{"t":"away","text":"{}"}}"#, "x".repeat(200));
    assert!(matches!(
        raw.say(&fits).as_slice(),
        [ServerMessage::AwayOk { text: Some(t) }] if t.len() == 200
    ));

    // Back: without a text, or with an empty one.
    let back = raw.say(r#"{"t":"away"}"#);
    assert_eq!(back, [ServerMessage::AwayOk { text: None }]);
    documented(&back, "away_ok when back");
    raw.say(r#"{"t":"away","text":"brb"}"#);
    assert_eq!(
        raw.say(r#"{"t":"away","text":""}"#),
        [ServerMessage::AwayOk { text: None }]
    );
    assert_eq!(
        raw.say(r#"{"t":"who"}"#),
        [ServerMessage::Online {
            users: vec!["bob".into()],
            count: None,
            away: vec![],
        }]
    );
    // No away_reply once back.
    assert_eq!(raw.say(r#"{"t":"dm","to":"bob","text":"x"}"#).len(), 2);
}

/// Rooms, history, resume and offline messages (PROTOCOL.md §5.9 to
/// §5.11): every message as the reference server writes it, and the
/// examples of §5.3 and §5.4.
#[test]
fn room_history_and_offline_vectors() {
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            assert_documented(&format!("`{json}`"), what);
        }
    };
    let dave = UserRecord {
        name: "Dave".into(),
        password_hash: "fake:pw".into(),
        suspended: None,
    };
    let mut server = Server::new(raw_config(), [dave], server_key(), SERVER_RANDOM);
    server.set_unix_time(Instant::from_micros(3_600_000_000), WALL_CLOCK);
    let mut raw = Raw::new(server);
    raw.connect([9; 32]);
    raw.say(r##"{"t":"user","name":"alice"}"##);
    raw.say(r##"{"t":"password","password":"pw"}"##);
    assert_eq!(
        error_code(&raw.say(r##"{"t":"join","room":"Rust"}"##)),
        ErrorCode::InvalidRoom
    );
    let joined = raw.say(r##"{"t":"join","room":"#rust"}"##);
    let [ServerMessage::Room { epoch, .. }] = joined.as_slice() else {
        panic!("expected `room`, got {joined:?}");
    };
    let epoch = epoch.clone();
    documented(&joined, "room");
    assert_eq!(
        error_code(&raw.say(r##"{"t":"say","room":"#go","text":"hi"}"##)),
        ErrorCode::NoSuchRoom
    );
    let said = raw.say(r##"{"t":"say","room":"#rust","text":"hello room"}"##);
    assert!(matches!(
        said.as_slice(),
        [ServerMessage::Said { offset: 1, .. }]
    ));
    documented(&said, "said");
    let topic = raw.say(r##"{"t":"topic","room":"#rust","text":"Rust and UDP"}"##);
    documented(&topic, "topic");
    for _ in 0..3 {
        raw.say(r##"{"t":"say","room":"#rust","text":"more"}"##);
    }
    let names = raw.say(r##"{"t":"names","room":"#rust"}"##);
    assert!(
        matches!(names.as_slice(), [ServerMessage::Names { users, .. }] if users == &["alice"])
    );
    let rooms = raw.say(r##"{"t":"rooms"}"##);
    assert!(
        matches!(rooms.as_slice(), [ServerMessage::RoomList { rooms, .. }] if rooms.len() == 1)
    );
    // A page: the two messages below offset 4, and the end saying more
    // remain below them.
    let page = raw.say(r##"{"t":"history","room":"#rust","before":4,"limit":2}"##);
    assert_eq!(
        page.iter()
            .map(|m| match m {
                ServerMessage::RoomMsg {
                    offset,
                    history: true,
                    ..
                } => *offset,
                ServerMessage::HistoryEnd {
                    count: 2,
                    more: true,
                    offset: 4,
                    ..
                } => 0,
                other => panic!("unexpected {other:?}"),
            })
            .collect::<Vec<_>>(),
        [2, 3, 0]
    );
    // Offline: Dave is registered and offline, so the DM is stored.
    let stored = raw.say(r##"{"t":"dm","to":"dave","text":"call me"}"##);
    assert!(matches!(
        stored.as_slice(),
        [ServerMessage::Confirm { stored: true, .. }]
    ));
    raw.say(r##"{"t":"op","op":"EX"}"##);

    // Dave logs in (another connection): the stored DM follows login_ok.
    let now = raw.now;
    let mut dave = Raw::new(raw.server);
    dave.now = now + Duration::from_secs(5);
    dave.conn = RAW_CONN + 1;
    dave.addr = SocketAddr::from(([198, 51, 100, 8], 50_002));
    dave.connect([10; 32]);
    dave.say(r##"{"t":"user","name":"dave"}"##);
    let login = dave.say(r##"{"t":"password","password":"pw"}"##);
    let offline: Vec<ServerMessage> = login
        .iter()
        .filter(|m| matches!(m, ServerMessage::Direct { .. }))
        .cloned()
        .collect();
    assert!(
        matches!(offline.as_slice(), [ServerMessage::Direct { offline: true, id: Some(_), time: Some(_), from, .. }] if from == "alice"),
        "{login:?}"
    );
    // Dave joins #rust and gets the backlog; alice's resume is tried on
    // the next login of alice.
    let join = dave.say(r##"{"t":"join","room":"#rust"}"##);
    assert!(matches!(
        join.first(),
        Some(ServerMessage::Room { backlog: 4, .. })
    ));
    assert_eq!(join.len(), 5, "room and four room_msg with history");
    dave.say(r#"{"t":"op","op":"EX"}"#);
    dave.finish();

    // Alice again, resuming from offset 2 of #rust: offsets 3 and 4 come
    // back, then room_resume; from another epoch, only the gap.
    let now = dave.now;
    let mut alice = Raw::new(dave.server);
    alice.now = now + Duration::from_secs(5);
    alice.conn = RAW_CONN + 2;
    alice.connect([11; 32]);
    alice.say(r##"{"t":"user","name":"alice"}"##);
    let resume = alice.say(&format!(
        r##"{{"t":"password","password":"pw","resume":[{{"room":"#rust","epoch":"{epoch}","offset":2}}]}}"##
    ));
    let tail: Vec<&ServerMessage> = resume.iter().skip(1).collect();
    assert!(
        matches!(resume.first(), Some(ServerMessage::LoginOk { rooms, .. }) if rooms == &["#rust"])
    );
    assert!(
        matches!(
            tail.as_slice(),
            [
                ServerMessage::RoomMsg {
                    offset: 3,
                    history: true,
                    ..
                },
                ServerMessage::RoomMsg {
                    offset: 4,
                    history: true,
                    ..
                },
                ServerMessage::RoomResume {
                    recovered: true,
                    missed: 2,
                    offset: 4,
                    ..
                },
            ]
        ),
        "{resume:?}"
    );
    let parted = alice.say(r##"{"t":"part","room":"#rust","reason":"bye"}"##);
    documented(&parted, "parted");

    // The rest, as the types encode them (the examples in §5.3 and §5.4).
    let t = WALL_CLOCK + 80;
    let e = "51cd1a5221da70ec".to_string();
    documented(
        &[
            ServerMessage::Room {
                room: "#rust".into(),
                epoch: e.clone(),
                offset: 0,
                topic: String::new(),
                owner: "alice".into(),
                members: vec!["alice".into()],
                count: None,
                backlog: 0,
                ops: Vec::new(),
                muted: Vec::new(),
                topic_locked: false,
                moderated: false,
            },
            ServerMessage::MemberJoined {
                room: "#rust".into(),
                user: "bob".into(),
            },
            ServerMessage::MemberLeft {
                room: "#rust".into(),
                user: "bob".into(),
                reason: Some("bye".into()),
            },
            ServerMessage::RoomMsg {
                room: "#rust".into(),
                offset: 1,
                from: "alice".into(),
                text: "hello room".into(),
                time: t,
                history: false,
            },
            ServerMessage::Said {
                room: "#rust".into(),
                offset: 1,
                time: t,
            },
            ServerMessage::RoomList {
                rooms: vec![session::RoomInfo {
                    room: "#rust".into(),
                    members: 2,
                    topic: "Rust and UDP".into(),
                }],
                count: None,
            },
            ServerMessage::Names {
                room: "#rust".into(),
                users: vec!["alice".into(), "bob".into()],
                count: None,
                owner: String::new(),
                ops: Vec::new(),
                muted: Vec::new(),
            },
            ServerMessage::HistoryEnd {
                room: "#rust".into(),
                epoch: e.clone(),
                offset: 41,
                count: 20,
                more: true,
            },
            ServerMessage::RoomResume {
                room: "#rust".into(),
                recovered: true,
                missed: 2,
                epoch: e,
                offset: 43,
            },
            ServerMessage::Direct {
                from: "alice".into(),
                text: "call me".into(),
                time: Some(WALL_CLOCK + 360),
                id: Some(7),
                offline: true,
            },
        ],
        "room messages",
    );
    for json in [
        r##"{"t":"join","room":"#rust"}"##,
        r##"{"t":"part","room":"#rust","reason":"bye"}"##,
        r##"{"t":"say","room":"#rust","text":"hello room"}"##,
        r##"{"t":"rooms"}"##,
        r##"{"t":"names","room":"#rust"}"##,
        r##"{"t":"topic","room":"#rust","text":"Rust and UDP"}"##,
        r##"{"t":"history","room":"#rust","before":41,"limit":20}"##,
        r##"{"t":"password","password":"correct horse","resume":[{"room":"#rust","epoch":"51cd1a5221da70ec","offset":41}]}"##,
    ] {
        let m: session::ClientMessage = session::decode(json.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(session::encode(&m)).unwrap(), json);
        assert_documented(&format!("`{json}`"), "client room messages");
    }
}

/// §5.12: a server admin's notice and the audit log, and a request refused
/// to someone who is not an admin.
#[test]
fn moderation_vectors() {
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            assert_documented(&format!("`{json}`"), what);
        }
    };
    let config = ServerConfig {
        admins: ["alice".to_string()].into_iter().collect(),
        ..raw_config()
    };
    let mut server = Server::new(config, [], server_key(), SERVER_RANDOM);
    server.set_unix_time(Instant::from_micros(3_600_000_000), WALL_CLOCK);
    let mut alice = Raw::new(server);
    alice.connect([12; 32]);
    alice.say(r##"{"t":"user","name":"alice"}"##);
    alice.say(r##"{"t":"password","password":"pw"}"##);
    let notice = alice.say(r##"{"t":"notice","text":"restart at 18:00 UTC"}"##);
    assert!(
        matches!(
            notice.as_slice(),
            [ServerMessage::Notice { .. }, ServerMessage::ModOk { .. }]
        ),
        "{notice:?}"
    );
    documented(&notice, "notice and mod_ok");
    let audit = alice.say(r##"{"t":"audit","limit":20}"##);
    assert!(
        matches!(audit.as_slice(), [ServerMessage::AuditLog { entries }] if entries.len() == 1),
        "{audit:?}"
    );
    documented(&audit, "audit_log");
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();

    // Bob is no admin.
    let now = alice.now;
    let mut bob = Raw::new(alice.server);
    bob.now = now + Duration::from_secs(1);
    bob.conn = RAW_CONN + 1;
    bob.addr = SocketAddr::from(([198, 51, 100, 9], 50_003));
    bob.connect([13; 32]);
    bob.say(r##"{"t":"user","name":"bob"}"##);
    bob.say(r##"{"t":"password","password":"pw"}"##);
    let refused = bob.say(r##"{"t":"audit"}"##);
    assert_eq!(error_code(&refused), ErrorCode::NotPermitted);
    documented(&refused, "not_permitted");
}

/// §5.12: address bans — a ban with an expiry and a reason, one without,
/// the list, lifting a ban, a refused range — and §4.5: a banned source's
/// Initial gets no answer at all.
#[test]
fn address_ban_vectors() {
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            assert_documented(&format!("`{json}`"), what);
        }
    };
    let config = ServerConfig {
        admins: ["alice".to_string()].into_iter().collect(),
        ..raw_config()
    };
    let mut server = Server::new(config, [], server_key(), SERVER_RANDOM);
    server.set_unix_time(Instant::from_micros(3_600_000_000), WALL_CLOCK);
    let mut alice = Raw::new(server);
    alice.connect([14; 32]);
    alice.say(r##"{"t":"user","name":"alice"}"##);
    alice.say(r##"{"t":"password","password":"pw"}"##);
    let requests = [
        r#"{"t":"ban_address","range":"203.0.113.0/24","secs":86400,"reason":"spam"}"#,
        r#"{"t":"ban_address","range":"2001:db8:1:2::/64"}"#,
        r#"{"t":"bans"}"#,
        r#"{"t":"unban_address","range":"2001:db8:1:2::/64"}"#,
        r#"{"t":"ban_address","range":"10.0.0.0/7"}"#,
    ];
    for r in requests {
        assert_documented(&format!("`{r}`"), "address ban requests");
    }
    let banned = alice.say(requests[0]);
    assert!(
        matches!(banned.as_slice(), [ServerMessage::ModOk { target, .. }] if target == "203.0.113.0/24"),
        "{banned:?}"
    );
    documented(&banned, "mod_ok ban_address");
    alice.say(requests[1]);
    let list = alice.say(requests[2]);
    assert!(
        matches!(list.as_slice(), [ServerMessage::BanList { bans, count: None }] if bans.len() == 2),
        "{list:?}"
    );
    documented(&list, "ban_list");
    let lifted = alice.say(requests[3]);
    documented(&lifted, "mod_ok unban_address");
    let refused = alice.say(requests[4]);
    assert_eq!(error_code(&refused), ErrorCode::InvalidRange);
    documented(&refused, "invalid_range");

    // An Initial from the banned range: nothing comes back.
    let from = SocketAddr::from(([203, 0, 113, 5], 50_005));
    let init = Initiator::new(RAW_CONN + 7, [15; 32]).unwrap();
    let initial = raw_initial(RAW_CONN + 7, &[], init.msg1(), MIN_INITIAL_LEN);
    assert!(alice.exchange(from, &initial).is_empty());
    assert_eq!(alice.server.stats().dropped_banned, 1);
}

/// The next raw session on `prev`'s server: another connection from
/// another address, a second later.
fn next_session(prev: Raw, k: u8) -> Raw {
    let now = prev.now;
    let mut r = Raw::new(prev.server);
    r.now = now + Duration::from_secs(1);
    r.conn = RAW_CONN + u64::from(k);
    r.addr = SocketAddr::from(([198, 51, 100, 20 + k], 50_010));
    r.connect([0x30 + k; 32]);
    r
}

/// §5.12: suspending an account, ending a session, and closed and
/// invite-only registration, as a server admin asks for them and as the
/// users concerned see them.
#[test]
fn suspension_and_registration_vectors() {
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            assert_documented(&format!("`{json}`"), what);
        }
    };
    let config = ServerConfig {
        admins: ["alice".to_string()].into_iter().collect(),
        ..raw_config()
    };
    let mut server = Server::new(config, [], server_key(), SERVER_RANDOM);
    server.set_unix_time(Instant::from_micros(3_600_000_000), WALL_CLOCK);

    // Bob registers and leaves.
    let mut bob = Raw::new(server);
    bob.connect([0x21; 32]);
    bob.say(r#"{"t":"user","name":"bob"}"#);
    bob.say(r#"{"t":"password","password":"pw"}"#);
    bob.say(r#"{"t":"op","op":"EX"}"#);
    bob.finish();

    // Alice, an admin, suspends him for an hour, lifts it, suspends him
    // again; and asks to end his session, which is not live.
    let mut alice = next_session(bob, 1);
    alice.say(r#"{"t":"user","name":"alice"}"#);
    alice.say(r#"{"t":"password","password":"pw"}"#);
    let requests = [
        r#"{"t":"suspend","name":"bob","secs":3600,"reason":"spam"}"#,
        r#"{"t":"unsuspend","name":"bob"}"#,
        r#"{"t":"suspend","name":"bob"}"#,
    ];
    for (json, action) in requests.iter().zip(["suspend", "unsuspend", "suspend"]) {
        assert_documented(&format!("`{json}`"), "a suspension request");
        let answer = alice.say(json);
        assert!(
            matches!(answer.as_slice(), [ServerMessage::ModOk { action: a, target }]
                if a == action && target == "bob"),
            "{answer:?}"
        );
        documented(&answer, "mod_ok of a suspension");
    }
    let disconnect = r#"{"t":"disconnect","name":"bob","reason":"calm down"}"#;
    assert_documented(&format!("`{disconnect}`"), "disconnect");
    assert_eq!(error_code(&alice.say(disconnect)), ErrorCode::NotOnline);
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();

    // Bob's right password is refused while he is suspended.
    let mut bob = next_session(alice, 2);
    bob.say(r#"{"t":"user","name":"bob"}"#);
    let refused = bob.say(r#"{"t":"password","password":"pw"}"#);
    assert!(
        matches!(
            refused.as_slice(),
            [ServerMessage::LoginFailed {
                reason: LoginFailure::Suspended,
                ..
            }]
        ),
        "{refused:?}"
    );
    documented(&refused, "login_failed suspended");
    bob.finish();

    // Registration by invite.
    let mut alice = next_session(bob, 3);
    alice.say(r#"{"t":"user","name":"alice"}"#);
    alice.say(r#"{"t":"password","password":"pw"}"#);
    let mode = alice.say(r#"{"t":"registration","mode":"invite"}"#);
    documented(&mode, "mod_ok registration");
    let invite = alice.say(r#"{"t":"invite"}"#);
    let [ServerMessage::InviteCode { code, expires }] = invite.as_slice() else {
        panic!("{invite:?}");
    };
    assert_eq!(code.len(), 16);
    assert!(*expires > WALL_CLOCK + 7 * 24 * 3_600_000 - 60_000);
    let code = code.clone();
    documented(&invite, "invite_code");
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();

    let mut dave = next_session(alice, 4);
    let asked = dave.say(r#"{"t":"user","name":"dave"}"#);
    documented(&asked, "password_required by invite");
    for (json, reason) in [
        (
            r#"{"t":"password","password":"pw"}"#.to_string(),
            LoginFailure::InviteRequired,
        ),
        (
            r#"{"t":"password","password":"pw","invite":"0000000000000000"}"#.to_string(),
            LoginFailure::InvalidInvite,
        ),
    ] {
        let refused = dave.say(&json);
        assert!(
            matches!(refused.as_slice(), [ServerMessage::LoginFailed { reason: r, .. }] if *r == reason),
            "{refused:?}"
        );
        documented(&refused, "login_failed of an invite");
    }
    let with_code = format!(r#"{{"t":"password","password":"pw","invite":"{code}"}}"#);
    assert_documented(&format!("`{with_code}`"), "password with an invite");
    let welcome = dave.say(&with_code);
    assert!(
        matches!(
            welcome.first(),
            Some(ServerMessage::LoginOk { new_user: true, .. })
        ),
        "{welcome:?}"
    );
    dave.say(r#"{"t":"op","op":"EX"}"#);
    dave.finish();

    // Closed.
    let mut alice = next_session(dave, 5);
    alice.say(r#"{"t":"user","name":"alice"}"#);
    alice.say(r#"{"t":"password","password":"pw"}"#);
    documented(
        &alice.say(r#"{"t":"registration","mode":"closed"}"#),
        "mod_ok registration",
    );
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();
    let mut erin = next_session(alice, 6);
    documented(
        &erin.say(r#"{"t":"user","name":"erin"}"#),
        "password_required closed",
    );
    let refused = erin.say(r#"{"t":"password","password":"pw"}"#);
    assert!(
        matches!(
            refused.as_slice(),
            [ServerMessage::LoginFailed {
                reason: LoginFailure::RegistrationClosed,
                ..
            }]
        ),
        "{refused:?}"
    );
    documented(&refused, "login_failed registration_closed");

    // What a live session and the others see (the simulation tests drive
    // these; here, their encoding).
    documented(
        &[
            ServerMessage::Error {
                code: ErrorCode::Suspended,
                message:
                    "the account bob is suspended until 2026-06-01T01:00:00.120Z (by alice): spam"
                        .to_string(),
            },
            ServerMessage::Left {
                user: "bob".to_string(),
                reason: "suspended".to_string(),
                message: None,
            },
            ServerMessage::Error {
                code: ErrorCode::Disconnected,
                message: "a server admin (alice) ended this session: calm down".to_string(),
            },
            ServerMessage::Left {
                user: "bob".to_string(),
                reason: "disconnected".to_string(),
                message: None,
            },
        ],
        "the end of a session",
    );
}

#[test]
fn room_roles_vectors() {
    let documented = |messages: &[ServerMessage], what: &str| {
        for m in messages {
            let json = String::from_utf8(session::encode(m)).unwrap();
            println!("{what}: `{json}`");
            assert_documented(&format!("`{json}`"), what);
        }
    };
    let bob = UserRecord {
        name: "bob".into(),
        password_hash: "fake:pw".into(),
        suspended: None,
    };
    let mut server = Server::new(raw_config(), [bob], server_key(), SERVER_RANDOM);
    server.set_unix_time(Instant::from_micros(3_600_000_000), WALL_CLOCK);
    // A session of `name` on `server`, `n` seconds on.
    let session = |server: Server, now: Instant, n: u64, name: &str| {
        let mut raw = Raw::new(server);
        raw.now = now + Duration::from_secs(1);
        raw.conn = RAW_CONN + n;
        raw.addr = SocketAddr::from(([198, 51, 100, 20 + n as u8], 50_003));
        raw.connect([20 + n as u8; 32]);
        raw.say(&format!(r#"{{"t":"user","name":"{name}"}}"#));
        raw.say(r#"{"t":"password","password":"pw"}"#);
        raw
    };
    let mut alice = session(server, Instant::from_micros(3_600_000_000), 0, "alice");
    alice.say(r##"{"t":"join","room":"#rust"}"##);
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();
    let mut bob = session(alice.server, alice.now, 1, "bob");
    bob.say(r##"{"t":"join","room":"#rust"}"##);
    // Bob is no operator.
    let refused = bob.say(r##"{"t":"room_kick","room":"#rust","user":"alice"}"##);
    assert_eq!(error_code(&refused), ErrorCode::NotPermitted);
    documented(&refused, "not_permitted for a room");
    bob.say(r#"{"t":"op","op":"EX"}"#);
    bob.finish();

    let mut alice = session(bob.server, bob.now, 2, "alice");
    let op = alice.say(r##"{"t":"room_op","room":"#rust","user":"bob"}"##);
    assert!(
        matches!(
            op.as_slice(),
            [ServerMessage::RoomRole { .. }, ServerMessage::ModOk { .. }]
        ),
        "{op:?}"
    );
    documented(&op, "room_role and mod_ok");
    let deop = alice.say(r##"{"t":"room_deop","room":"#rust","user":"bob"}"##);
    documented(&deop[..1], "room_role member");
    let mute = alice.say(r##"{"t":"room_mute","room":"#rust","user":"bob"}"##);
    assert!(
        matches!(mute[0], ServerMessage::MemberMuted { .. }),
        "{mute:?}"
    );
    documented(&mute[..1], "member_muted");
    let mode = alice.say(r##"{"t":"room_mode","room":"#rust","topic_locked":true}"##);
    assert!(
        matches!(mode[0], ServerMessage::RoomMode { .. }),
        "{mode:?}"
    );
    documented(&mode, "room_mode");
    let names = alice.say(r##"{"t":"names","room":"#rust"}"##);
    documented(&names, "names with roles");
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();

    // Bob is muted, and the topic is locked.
    let mut bob = session(alice.server, alice.now, 3, "bob");
    let room = bob.say(r##"{"t":"join","room":"#rust"}"##);
    assert!(
        matches!(&room[..], [ServerMessage::Room { muted, topic_locked: true, .. }] if muted == &["bob"]),
        "{room:?}"
    );
    documented(&room, "room with roles");
    let muted = bob.say(r##"{"t":"say","room":"#rust","text":"hi"}"##);
    assert_eq!(error_code(&muted), ErrorCode::Muted);
    documented(&muted, "muted");
    let locked = bob.say(r##"{"t":"topic","room":"#rust","text":"mine"}"##);
    assert_eq!(error_code(&locked), ErrorCode::NotPermitted);
    documented(&locked, "topic locked");
    bob.say(r#"{"t":"op","op":"EX"}"#);
    bob.finish();

    let mut alice = session(bob.server, bob.now, 4, "alice");
    let unmute = alice.say(r##"{"t":"room_unmute","room":"#rust","user":"bob"}"##);
    documented(&unmute[..1], "member_unmuted");
    alice.say(r##"{"t":"room_mode","room":"#rust","moderated":true}"##);
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();
    let mut bob = session(alice.server, alice.now, 5, "bob");
    let moderated = bob.say(r##"{"t":"say","room":"#rust","text":"hi"}"##);
    assert_eq!(error_code(&moderated), ErrorCode::Moderated);
    documented(&moderated, "moderated");
    bob.say(r#"{"t":"op","op":"EX"}"#);
    bob.finish();

    let mut alice = session(bob.server, bob.now, 6, "alice");
    let kick = alice.say(r##"{"t":"room_kick","room":"#rust","user":"bob","reason":"spam"}"##);
    assert!(
        matches!(
            kick.as_slice(),
            [
                ServerMessage::MemberLeft { .. },
                ServerMessage::ModOk { .. }
            ]
        ),
        "{kick:?}"
    );
    documented(&kick, "member_left after a kick, and mod_ok");
    let ban =
        alice.say(r##"{"t":"room_ban","room":"#rust","user":"bob","secs":3600,"reason":"spam"}"##);
    documented(&ban, "mod_ok of room_ban");
    alice.say(r#"{"t":"op","op":"EX"}"#);
    alice.finish();
    let mut bob = session(alice.server, alice.now, 7, "bob");
    let banned = bob.say(r##"{"t":"join","room":"#rust"}"##);
    assert_eq!(error_code(&banned), ErrorCode::BannedFromRoom);
    documented(&banned, "banned_from_room");

    // What a kicked or banned member is told (to a session that is online
    // as it happens).
    let kicked = [
        ServerMessage::Kicked {
            room: "#rust".into(),
            by: "alice".into(),
            reason: Some("spam".into()),
            banned: false,
            until: None,
        },
        ServerMessage::Kicked {
            room: "#rust".into(),
            by: "alice".into(),
            reason: Some("spam".into()),
            banned: true,
            until: Some(1_780_275_600_000),
        },
    ];
    for k in &kicked {
        let json = session::encode(k);
        assert_eq!(&session::decode_server(&json).unwrap(), k);
    }
    documented(&kicked, "kicked");
    // The requests, as the client sends them.
    for m in [
        session::ClientMessage::RoomKick {
            room: "#rust".into(),
            user: "bob".into(),
            reason: Some("spam".into()),
        },
        session::ClientMessage::RoomBan {
            room: "#rust".into(),
            user: "bob".into(),
            secs: Some(3600),
            reason: Some("spam".into()),
        },
        session::ClientMessage::RoomUnban {
            room: "#rust".into(),
            user: "bob".into(),
        },
        session::ClientMessage::RoomMode {
            room: "#rust".into(),
            topic_locked: Some(true),
            moderated: Some(false),
        },
    ] {
        let json = String::from_utf8(session::encode(&m)).unwrap();
        println!("request: `{json}`");
        assert_documented(&format!("`{json}`"), "a room_roles request");
        assert_eq!(
            session::decode::<session::ClientMessage>(json.as_bytes()).unwrap(),
            m
        );
    }
}
