//! Test vectors of `PROTOCOL.md`: a whole session driven through a real
//! [`Server`] and two real [`Client`]s in memory, on a virtual clock, with
//! fixed connection ids. Every datagram is captured; the ones `PROTOCOL.md`
//! shows are asserted byte for byte, so the document cannot drift from the
//! code.
//!
//! Print the annotated transcript (the form `PROTOCOL.md` shows) with
//! `cargo test -p udpchat-core --test vectors -- --nocapture`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use udpchat_core::client::{Client, ClientConfig, ClientEvent};
use udpchat_core::server::{Request, Response, Server, ServerConfig, Transmit, UserRecord};
use udpchat_core::session::{self, ErrorCode, Operation, ServerMessage};
use udpchat_core::wire::{Datagram, Frame, HEADER_LEN, MIN_INITIAL_LEN};
use udpchat_core::{Duration, Instant};

const ALICE_ID: u64 = 0x0123_4567_89ab_cdef;
const BOB_ID: u64 = 0xfedc_ba98_7654_3210;

fn alice_addr() -> SocketAddr {
    "198.51.100.7:50000".parse().unwrap()
}
fn bob_addr() -> SocketAddr {
    "203.0.113.9:50001".parse().unwrap()
}

/// One captured datagram.
#[derive(Clone, Debug)]
struct Captured {
    at: Instant,
    from: &'static str,
    to: &'static str,
    bytes: Vec<u8>,
}

/// Two clients and a server on a lossless in-memory network where every
/// datagram takes [`HOP`] to arrive.
struct World {
    now: Instant,
    server: Server,
    alice: Option<Client>,
    bob: Option<Client>,
    log: Vec<Captured>,
    /// Datagrams the network delivers again (duplicates).
    replay: Vec<Captured>,
}

const HOP: Duration = Duration::from_millis(5);

impl World {
    fn new() -> World {
        World {
            now: Instant::ZERO,
            server: Server::new(ServerConfig::default(), []),
            alice: None,
            bob: None,
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

    /// Answers the server's password work at once, as a driver's worker
    /// pool would (the hash is fake; it never travels).
    fn answer_requests(&mut self) {
        while let Some(r) = self.server.poll_request() {
            let response = match r {
                Request::Register { id, .. } => Response::Registered {
                    id,
                    result: Ok("$argon2id$v=19$fake".to_string()),
                },
                Request::Verify { id, .. } => Response::Verified { id, ok: true },
            };
            self.server.handle_response(self.now, response);
        }
    }

    /// Collects everything the endpoints want to send now.
    fn collect(&mut self) -> Vec<Captured> {
        let mut out = std::mem::take(&mut self.replay);
        let now = self.now;
        for (name, client) in [("alice", &mut self.alice), ("bob", &mut self.bob)] {
            if let Some(c) = client {
                while let Some(bytes) = c.poll_transmit(now) {
                    out.push(Captured {
                        at: now,
                        from: name,
                        to: "server",
                        bytes,
                    });
                }
            }
        }
        self.answer_requests();
        while let Some(Transmit { to, bytes }) = self.server.poll_transmit(now) {
            let to = if to == alice_addr() { "alice" } else { "bob" };
            out.push(Captured {
                at: now,
                from: "server",
                to,
                bytes,
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

    /// Runs the network until nothing more is sent. Fails if a timer would
    /// have fired meanwhile: the transcript must be what a real driver
    /// produces.
    fn settle(&mut self) {
        loop {
            self.check_timers();
            let batch = self.collect();
            if batch.is_empty() {
                return;
            }
            self.now += HOP;
            for d in batch {
                self.deliver(&d);
                self.log.push(d);
            }
        }
    }

    fn check_timers(&mut self) {
        let now = self.now;
        for c in [&self.alice, &self.bob].into_iter().flatten() {
            if let Some(t) = c.poll_timeout() {
                assert!(t > now, "a client timer fired during the example");
            }
        }
        if let Some(t) = self.server.poll_timeout() {
            assert!(t > now, "a server timer fired during the example");
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

    fn login(&mut self, who: &'static str, id: u64, password: &str) {
        let c = Client::new(self.now, ClientConfig::default(), id, who).unwrap();
        match who {
            "alice" => self.alice = Some(c),
            _ => self.bob = Some(c),
        }
        self.settle();
        assert!(matches!(
            self.events(who).as_slice(),
            [ClientEvent::PasswordRequired { new_user: true, .. }]
        ));
        self.pause();
        self.client(who).submit_password(password).unwrap();
        self.settle();
        assert!(self.client(who).is_logged_in());
    }
}

/// Runs the example session and returns every datagram of it, in the order
/// sent, with times counted from alice's first datagram.
fn run_example() -> Vec<Captured> {
    let mut w = World::new();
    // Bob is online first, so that alice's public message has a recipient.
    w.login("bob", BOB_ID, "bob's password");
    w.events("bob");
    w.pause();
    let first = w.log.len();
    let start = w.now;

    // Alice: username, password (a new account is registered).
    w.login("alice", ALICE_ID, "correct horse");
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
            recipients: 1
        }]
    );
    assert_eq!(
        w.events("bob"),
        [ClientEvent::Public {
            from: "alice".into(),
            text: "hello everyone".into()
        }]
    );
    w.pause();

    // DM: op DM, the online list, dm, `direct` to bob, confirm.
    w.client("alice").request_operation(Operation::DM).unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::Online(vec!["alice".into(), "bob".into()])]
    );
    w.pause();
    w.client("alice").send_direct("bob", "hi bob").unwrap();
    w.settle();
    assert_eq!(
        w.events("alice"),
        [ClientEvent::Confirmed {
            op: Operation::DM,
            to: Some("bob".into()),
            recipients: 1
        }]
    );
    assert_eq!(
        w.events("bob"),
        [ClientEvent::Direct {
            from: "alice".into(),
            text: "hi bob".into()
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
            reason: "exit".into()
        }]
    );
    assert!(!w.server.online_users().any(|u| u == "alice"));
    assert_eq!(w.server.session_count(), 1, "alice's session is gone");

    // A late duplicate of alice's last datagram (her ACK of `bye`) reaches
    // the server after her session was removed: CLOSE(unknown connection).
    w.pause();
    let last = w
        .log
        .iter()
        .rev()
        .find(|d| d.from == "alice")
        .cloned()
        .unwrap();
    w.replay.push(Captured { at: w.now, ..last });
    w.settle();

    let mut log = w.log.split_off(first);
    for d in &mut log {
        d.at = Instant::from_micros(d.at.as_micros() - start.as_micros());
    }
    log
}

// --- Printing -------------------------------------------------------------

fn hex_line(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
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
    let _ = writeln!(out, "{:<HEX_WIDTH$}  {note}", hex_line(bytes));
}

/// The annotated form of a datagram, as `PROTOCOL.md` shows it.
fn annotate(bytes: &[u8]) -> String {
    let d = Datagram::decode(bytes).expect("every captured datagram decodes");
    let h = d.header;
    let mut out = String::new();
    row(
        &mut out,
        &bytes[..HEADER_LEN],
        &format!(
            "'{}' v{} {:?} flags 0, conn {:016x}, pn {}",
            bytes[0] as char, bytes[1], h.kind, h.connection_id, h.packet_number
        ),
    );
    let mut at = HEADER_LEN;
    for f in d.frames() {
        let len = f.encoded_len();
        let raw = &bytes[at..at + len];
        match f {
            Frame::Ack {
                next_expected,
                sack,
            } => row(
                &mut out,
                raw,
                &format!("ACK next_expected {next_expected}, sack {sack:02x?}"),
            ),
            Frame::Segment { seq, end, data } => {
                row(
                    &mut out,
                    &raw[..8],
                    &format!(
                        "SEGMENT seq {seq}, {}, len {}",
                        if end { "END" } else { "not END" },
                        data.len()
                    ),
                );
                for chunk in data.chunks(16) {
                    row(&mut out, chunk, &printable(chunk));
                }
            }
            Frame::Ping => row(&mut out, raw, "PING"),
            Frame::Close(code) => row(&mut out, raw, &format!("CLOSE {code:?}")),
        }
        at += len;
    }
    if at < bytes.len() {
        row(
            &mut out,
            &bytes[at..at + 1],
            &format!(
                "PADDING (type 0x00), followed by {} zero bytes of padding, to {} bytes",
                bytes.len() - at - 1,
                bytes.len()
            ),
        );
    }
    out
}

fn transcript(log: &[Captured]) -> String {
    let mut out = String::new();
    for (i, d) in log.iter().enumerate() {
        let _ = writeln!(
            out,
            "#{} {} → {} at {} ms, {} bytes",
            i + 1,
            d.from,
            d.to,
            d.at.as_micros() / 1000,
            d.bytes.len()
        );
        out.push_str(&annotate(&d.bytes));
        out.push('\n');
    }
    out
}

fn from_hex(hex: &str) -> Vec<u8> {
    let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

// --- The vectors -----------------------------------------------------------

/// One expected datagram: its bytes in hex, then `zero_padding` zero bytes
/// (the rest of an Initial's PADDING frame).
struct Vector {
    from: &'static str,
    to: &'static str,
    hex: &'static str,
    zero_padding: usize,
}

impl Vector {
    fn bytes(&self) -> Vec<u8> {
        let mut b = from_hex(self.hex);
        b.resize(b.len() + self.zero_padding, 0);
        b
    }
}

/// #1 alice → server: user.
const FIRST_INITIAL_60: &str = concat!(
    "43 01 01 00 01 23 45 67 89 ab cd ef 00 00 00 00 ", // 'C' v1 Initial flags 0, conn 0123456789abcdef, pn 0
    "02 00 00 00 00 01 00 1b ",                         // SEGMENT seq 0, END, len 27
    "7b 22 74 22 3a 22 75 73 65 72 22 2c 22 6e 61 6d ", // {"t":"user","nam
    "65 22 3a 22 61 6c 69 63 65 22 7d ",                // e":"alice"}
    "00 00 00 00 00 00 00 00 00 ",                      // PADDING frame, its first 8 zero bytes
);

/// #2 server → alice: password_required.
const PASSWORD_REQUIRED: &str = concat!(
    "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 00 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 0
    "01 00 00 00 01 00 ",                               // ACK next_expected 1, sack []
    "02 00 00 00 00 01 00 38 ",                         // SEGMENT seq 0, END, len 56
    "7b 22 74 22 3a 22 70 61 73 73 77 6f 72 64 5f 72 ", // {"t":"password_r
    "65 71 75 69 72 65 64 22 2c 22 6e 61 6d 65 22 3a ", // equired","name":
    "22 61 6c 69 63 65 22 2c 22 6e 65 77 5f 75 73 65 ", // "alice","new_use
    "72 22 3a 74 72 75 65 7d ",                         // r":true}
);

/// #3 alice → server: ACK only.
const ACK_ONLY: &str = concat!(
    "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 01 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 1
    "01 00 00 00 01 00 ",                               // ACK next_expected 1, sack []
);

/// #13 server → bob: public.
const PUBLIC_DATA: &str = concat!(
    "44 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 03 ", // 'D' v1 Data flags 0, conn fedcba9876543210, pn 3
    "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
    "02 00 00 00 03 01 00 35 ",                         // SEGMENT seq 3, END, len 53
    "7b 22 74 22 3a 22 70 75 62 6c 69 63 22 2c 22 66 ", // {"t":"public","f
    "72 6f 6d 22 3a 22 61 6c 69 63 65 22 2c 22 74 65 ", // rom":"alice","te
    "78 74 22 3a 22 68 65 6c 6c 6f 20 65 76 65 72 79 ", // xt":"hello every
    "6f 6e 65 22 7d ",                                  // one"}
);

/// #31 server → alice: CLOSE.
const CLOSE_UNKNOWN_CONNECTION: &str = concat!(
    "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 00 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 0
    "04 03 ",                                           // CLOSE UnknownConnection
);

/// Every datagram of the worked example, in order.
const TRANSCRIPT: &[Vector] = &[
    // #1 at 0 ms: user
    Vector {
        from: "alice",
        to: "server",
        hex: FIRST_INITIAL_60,
        zero_padding: 1140,
    },
    // #2 at 5 ms: password_required
    Vector {
        from: "server",
        to: "alice",
        hex: PASSWORD_REQUIRED,
        zero_padding: 0,
    },
    // #3 at 10 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: ACK_ONLY,
        zero_padding: 0,
    },
    // #4 at 35 ms: password
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 02 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 2
            "01 00 00 00 01 00 ",                               // ACK next_expected 1, sack []
            "02 00 00 00 01 01 00 2b ",                         // SEGMENT seq 1, END, len 43
            "7b 22 74 22 3a 22 70 61 73 73 77 6f 72 64 22 2c ", // {"t":"password",
            "22 70 61 73 73 77 6f 72 64 22 3a 22 63 6f 72 72 ", // "password":"corr
            "65 63 74 20 68 6f 72 73 65 22 7d ",                // ect horse"}
        ),
        zero_padding: 0,
    },
    // #5 at 40 ms: login_ok
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 01 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 1
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
            "02 00 00 00 01 01 00 48 ",                         // SEGMENT seq 1, END, len 72
            "7b 22 74 22 3a 22 6c 6f 67 69 6e 5f 6f 6b 22 2c ", // {"t":"login_ok",
            "22 6e 61 6d 65 22 3a 22 61 6c 69 63 65 22 2c 22 ", // "name":"alice","
            "6e 65 77 5f 75 73 65 72 22 3a 74 72 75 65 2c 22 ", // new_user":true,"
            "6f 6e 6c 69 6e 65 22 3a 5b 22 61 6c 69 63 65 22 ", // online":["alice"
            "2c 22 62 6f 62 22 5d 7d ",                         // ,"bob"]}
        ),
        zero_padding: 0,
    },
    // #6 at 40 ms: joined
    Vector {
        from: "server",
        to: "bob",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 02 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 2
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
            "02 00 00 00 02 01 00 1d ",                         // SEGMENT seq 2, END, len 29
            "7b 22 74 22 3a 22 6a 6f 69 6e 65 64 22 2c 22 75 ", // {"t":"joined","u
            "73 65 72 22 3a 22 61 6c 69 63 65 22 7d ",          // ser":"alice"}
        ),
        zero_padding: 0,
    },
    // #7 at 45 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 03 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 3
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
        ),
        zero_padding: 0,
    },
    // #8 at 45 ms: ACK only
    Vector {
        from: "bob",
        to: "server",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 04 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 4
            "01 00 00 00 03 00 ",                               // ACK next_expected 3, sack []
        ),
        zero_padding: 0,
    },
    // #9 at 70 ms: op
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 04 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 4
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
            "02 00 00 00 02 01 00 14 ",                         // SEGMENT seq 2, END, len 20
            "7b 22 74 22 3a 22 6f 70 22 2c 22 6f 70 22 3a 22 ", // {"t":"op","op":"
            "50 4d 22 7d ",                                     // PM"}
        ),
        zero_padding: 0,
    },
    // #10 at 75 ms: op_ok
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 02 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 2
            "01 00 00 00 03 00 ",                               // ACK next_expected 3, sack []
            "02 00 00 00 02 01 00 17 ",                         // SEGMENT seq 2, END, len 23
            "7b 22 74 22 3a 22 6f 70 5f 6f 6b 22 2c 22 6f 70 ", // {"t":"op_ok","op
            "22 3a 22 50 4d 22 7d ",                            // ":"PM"}
        ),
        zero_padding: 0,
    },
    // #11 at 80 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 05 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 5
            "01 00 00 00 03 00 ",                               // ACK next_expected 3, sack []
        ),
        zero_padding: 0,
    },
    // #12 at 105 ms: pm
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "44 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 06 ", // 'D' v1 Data flags 0, conn 0123456789abcdef, pn 6
            "01 00 00 00 03 00 ",                               // ACK next_expected 3, sack []
            "02 00 00 00 03 01 00 22 ",                         // SEGMENT seq 3, END, len 34
            "7b 22 74 22 3a 22 70 6d 22 2c 22 74 65 78 74 22 ", // {"t":"pm","text"
            "3a 22 68 65 6c 6c 6f 20 65 76 65 72 79 6f 6e 65 ", // :"hello everyone
            "22 7d ",                                           // "}
        ),
        zero_padding: 0,
    },
    // #13 at 110 ms: public
    Vector {
        from: "server",
        to: "bob",
        hex: PUBLIC_DATA,
        zero_padding: 0,
    },
    // #14 at 110 ms: confirm
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 03 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 3
            "01 00 00 00 04 00 ",                               // ACK next_expected 4, sack []
            "02 00 00 00 03 01 00 28 ",                         // SEGMENT seq 3, END, len 40
            "7b 22 74 22 3a 22 63 6f 6e 66 69 72 6d 22 2c 22 ", // {"t":"confirm","
            "6f 70 22 3a 22 50 4d 22 2c 22 72 65 63 69 70 69 ", // op":"PM","recipi
            "65 6e 74 73 22 3a 31 7d ",                         // ents":1}
        ),
        zero_padding: 0,
    },
    // #15 at 115 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 07 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 7
            "01 00 00 00 04 00 ",                               // ACK next_expected 4, sack []
        ),
        zero_padding: 0,
    },
    // #16 at 115 ms: ACK only
    Vector {
        from: "bob",
        to: "server",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 05 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 5
            "01 00 00 00 04 00 ",                               // ACK next_expected 4, sack []
        ),
        zero_padding: 0,
    },
    // #17 at 140 ms: op
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 08 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 8
            "01 00 00 00 04 00 ",                               // ACK next_expected 4, sack []
            "02 00 00 00 04 01 00 14 ",                         // SEGMENT seq 4, END, len 20
            "7b 22 74 22 3a 22 6f 70 22 2c 22 6f 70 22 3a 22 ", // {"t":"op","op":"
            "44 4d 22 7d ",                                     // DM"}
        ),
        zero_padding: 0,
    },
    // #18 at 145 ms: online
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 04 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 4
            "01 00 00 00 05 00 ",                               // ACK next_expected 5, sack []
            "02 00 00 00 04 01 00 26 ",                         // SEGMENT seq 4, END, len 38
            "7b 22 74 22 3a 22 6f 6e 6c 69 6e 65 22 2c 22 75 ", // {"t":"online","u
            "73 65 72 73 22 3a 5b 22 61 6c 69 63 65 22 2c 22 ", // sers":["alice","
            "62 6f 62 22 5d 7d ",                               // bob"]}
        ),
        zero_padding: 0,
    },
    // #19 at 150 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 09 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 9
            "01 00 00 00 05 00 ",                               // ACK next_expected 5, sack []
        ),
        zero_padding: 0,
    },
    // #20 at 175 ms: dm
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "44 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 0a ", // 'D' v1 Data flags 0, conn 0123456789abcdef, pn 10
            "01 00 00 00 05 00 ",                               // ACK next_expected 5, sack []
            "02 00 00 00 05 01 00 25 ",                         // SEGMENT seq 5, END, len 37
            "7b 22 74 22 3a 22 64 6d 22 2c 22 74 6f 22 3a 22 ", // {"t":"dm","to":"
            "62 6f 62 22 2c 22 74 65 78 74 22 3a 22 68 69 20 ", // bob","text":"hi
            "62 6f 62 22 7d ",                                  // bob"}
        ),
        zero_padding: 0,
    },
    // #21 at 180 ms: direct
    Vector {
        from: "server",
        to: "bob",
        hex: concat!(
            "44 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 04 ", // 'D' v1 Data flags 0, conn fedcba9876543210, pn 4
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
            "02 00 00 00 04 01 00 2d ",                         // SEGMENT seq 4, END, len 45
            "7b 22 74 22 3a 22 64 69 72 65 63 74 22 2c 22 66 ", // {"t":"direct","f
            "72 6f 6d 22 3a 22 61 6c 69 63 65 22 2c 22 74 65 ", // rom":"alice","te
            "78 74 22 3a 22 68 69 20 62 6f 62 22 7d ",          // xt":"hi bob"}
        ),
        zero_padding: 0,
    },
    // #22 at 180 ms: confirm
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 05 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 5
            "01 00 00 00 06 00 ",                               // ACK next_expected 6, sack []
            "02 00 00 00 05 01 00 33 ",                         // SEGMENT seq 5, END, len 51
            "7b 22 74 22 3a 22 63 6f 6e 66 69 72 6d 22 2c 22 ", // {"t":"confirm","
            "6f 70 22 3a 22 44 4d 22 2c 22 74 6f 22 3a 22 62 ", // op":"DM","to":"b
            "6f 62 22 2c 22 72 65 63 69 70 69 65 6e 74 73 22 ", // ob","recipients"
            "3a 31 7d ",                                        // :1}
        ),
        zero_padding: 0,
    },
    // #23 at 185 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 0b ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 11
            "01 00 00 00 06 00 ",                               // ACK next_expected 6, sack []
        ),
        zero_padding: 0,
    },
    // #24 at 185 ms: ACK only
    Vector {
        from: "bob",
        to: "server",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 06 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 6
            "01 00 00 00 05 00 ",                               // ACK next_expected 5, sack []
        ),
        zero_padding: 0,
    },
    // #25 at 210 ms: op
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 0c ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 12
            "01 00 00 00 06 00 ",                               // ACK next_expected 6, sack []
            "02 00 00 00 06 01 00 14 ",                         // SEGMENT seq 6, END, len 20
            "7b 22 74 22 3a 22 6f 70 22 2c 22 6f 70 22 3a 22 ", // {"t":"op","op":"
            "45 58 22 7d ",                                     // EX"}
        ),
        zero_padding: 0,
    },
    // #26 at 215 ms: bye
    Vector {
        from: "server",
        to: "alice",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 06 ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 6
            "01 00 00 00 07 00 ",                               // ACK next_expected 7, sack []
            "02 00 00 00 06 01 00 0b ",                         // SEGMENT seq 6, END, len 11
            "7b 22 74 22 3a 22 62 79 65 22 7d ",                // {"t":"bye"}
        ),
        zero_padding: 0,
    },
    // #27 at 215 ms: left
    Vector {
        from: "server",
        to: "bob",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 05 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 5
            "01 00 00 00 02 00 ",                               // ACK next_expected 2, sack []
            "02 00 00 00 05 01 00 2b ",                         // SEGMENT seq 5, END, len 43
            "7b 22 74 22 3a 22 6c 65 66 74 22 2c 22 75 73 65 ", // {"t":"left","use
            "72 22 3a 22 61 6c 69 63 65 22 2c 22 72 65 61 73 ", // r":"alice","reas
            "6f 6e 22 3a 22 65 78 69 74 22 7d ",                // on":"exit"}
        ),
        zero_padding: 0,
    },
    // #28 at 220 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 0d ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 13
            "01 00 00 00 07 00 ",                               // ACK next_expected 7, sack []
        ),
        zero_padding: 0,
    },
    // #29 at 220 ms: ACK only
    Vector {
        from: "bob",
        to: "server",
        hex: concat!(
            "43 01 02 00 fe dc ba 98 76 54 32 10 00 00 00 07 ", // 'C' v1 Data flags 0, conn fedcba9876543210, pn 7
            "01 00 00 00 06 00 ",                               // ACK next_expected 6, sack []
        ),
        zero_padding: 0,
    },
    // #30 at 245 ms: ACK only
    Vector {
        from: "alice",
        to: "server",
        hex: concat!(
            "43 01 02 00 01 23 45 67 89 ab cd ef 00 00 00 0d ", // 'C' v1 Data flags 0, conn 0123456789abcdef, pn 13
            "01 00 00 00 07 00 ",                               // ACK next_expected 7, sack []
        ),
        zero_padding: 0,
    },
    // #31 at 250 ms: CLOSE
    Vector {
        from: "server",
        to: "alice",
        hex: CLOSE_UNKNOWN_CONNECTION,
        zero_padding: 0,
    },
];

#[test]
fn print_transcript() {
    print!("{}", transcript(&run_example()));
}

#[test]
fn required_vectors() {
    let log = run_example();
    let at = |n: usize| &log[n - 1].bytes;
    assert_eq!(at(1).len(), MIN_INITIAL_LEN);
    assert_eq!(at(1)[..60], from_hex(FIRST_INITIAL_60), "first Initial");
    assert!(at(1)[60..].iter().all(|&b| b == 0), "Initial padding");
    assert_eq!(*at(2), from_hex(PASSWORD_REQUIRED), "password_required");
    assert_eq!(*at(3), from_hex(ACK_ONLY), "ACK-only datagram");
    assert_eq!(*at(13), from_hex(PUBLIC_DATA), "'D' datagram with `public`");
    assert_eq!(
        *at(31),
        from_hex(CLOSE_UNKNOWN_CONNECTION),
        "CLOSE(unknown connection)"
    );
}

#[test]
fn worked_example_matches_protocol_md() {
    let log = run_example();
    let report = || transcript(&log);
    assert_eq!(
        log.len(),
        TRANSCRIPT.len(),
        "number of datagrams; the session now runs:\n{}",
        report()
    );
    for (i, (got, want)) in log.iter().zip(TRANSCRIPT).enumerate() {
        assert_eq!(
            (got.from, got.to),
            (want.from, want.to),
            "datagram #{}",
            i + 1
        );
        assert!(
            got.bytes == want.bytes(),
            "datagram #{} differs from PROTOCOL.md; the session now runs:\n{}",
            i + 1,
            report()
        );
    }
}

// --- A client written from PROTOCOL.md alone ---------------------------------
//
// These tests build datagrams by hand, byte by byte as the document says,
// and check the server's answers that the document promises.

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

/// A hand-made client talking to a server.
struct Raw {
    server: Server,
    now: Instant,
    addr: SocketAddr,
    conn: u64,
    pn: u32,
    seq: u32,
    /// Segments received from the server so far (all of one segment each).
    received: u32,
}

impl Raw {
    fn new(server: Server) -> Raw {
        Raw {
            server,
            now: Instant::ZERO,
            addr: alice_addr(),
            conn: ALICE_ID,
            pn: 0,
            seq: 0,
            received: 0,
        }
    }

    /// Sends `bytes` from `from`, answers the server's password work, and
    /// returns the datagrams the server sends back.
    fn exchange(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.now += Duration::from_millis(10);
        self.server.handle_datagram(self.now, from, bytes);
        while let Some(r) = self.server.poll_request() {
            let response = match r {
                Request::Register { id, .. } => Response::Registered {
                    id,
                    result: Ok("$argon2id$fake".into()),
                },
                Request::Verify { id, .. } => Response::Verified { id, ok: true },
            };
            self.server.handle_response(self.now, response);
        }
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit(self.now) {
            assert_eq!(t.to, from, "answers go to the sender's address");
            out.push(t.bytes);
        }
        out
    }

    /// Sends one JSON message (in a Data datagram, acknowledging what was
    /// received) and returns the server's messages in answer.
    fn say(&mut self, json: &str) -> Vec<ServerMessage> {
        let mut d = raw_header(b'C', 0x02, self.conn, self.pn);
        d.extend(raw_ack(self.received));
        d.extend(raw_segment(self.seq, json.as_bytes()));
        self.pn += 1;
        self.seq += 1;
        let replies = self.exchange(self.addr, &d);
        self.messages(&replies)
    }

    fn messages(&mut self, replies: &[Vec<u8>]) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        for r in replies {
            for f in Datagram::decode(r).unwrap().frames() {
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

#[test]
fn connection_rules() {
    let mut raw = Raw::new(Server::new(ServerConfig::default(), []));
    let user = br#"{"t":"user","name":"carol"}"#;

    // An Initial of 1199 bytes makes no session and gets no answer.
    let mut short = raw_header(b'C', 0x01, ALICE_ID, 0);
    short.extend(raw_segment(0, user));
    short.resize(MIN_INITIAL_LEN - 1, 0);
    assert!(raw.exchange(alice_addr(), &short).is_empty());
    assert_eq!(raw.server.session_count(), 0);

    // A Data datagram (PING) for an unknown connection: CLOSE(0x03), 18
    // bytes, packet number 0.
    let mut ping = raw_header(b'C', 0x02, ALICE_ID, 7);
    ping.push(0x03);
    assert_eq!(
        raw.exchange(alice_addr(), &ping),
        [from_hex(CLOSE_UNKNOWN_CONNECTION)]
    );
    // ... but a datagram of CLOSE frames only is never answered.
    let mut close = raw_header(b'C', 0x02, ALICE_ID, 8);
    close.extend([0x04, 0x01]);
    assert!(raw.exchange(alice_addr(), &close).is_empty());

    // Malformed datagrams are dropped silently: unknown frame type,
    // non-zero padding, reserved header flags, nothing but a header.
    for bad in [
        [raw_header(b'C', 0x01, ALICE_ID, 0), vec![0x09]].concat(),
        [raw_header(b'C', 0x01, ALICE_ID, 0), vec![0x03, 0x00, 0x01]].concat(),
        [raw_header(b'C', 0x02, ALICE_ID, 0), vec![0x03]]
            .concat()
            .iter()
            .enumerate()
            .map(|(i, &b)| if i == 3 { 0x80 } else { b })
            .collect(),
        raw_header(b'C', 0x02, ALICE_ID, 0),
    ] {
        let mut bad = bad;
        if bad[2] == 0x01 {
            bad.resize(MIN_INITIAL_LEN, 0);
        }
        assert!(raw.exchange(alice_addr(), &bad).is_empty());
    }
    assert_eq!(raw.server.session_count(), 0);

    // A 1200-byte Initial makes the session; frames are processed.
    let mut initial = raw_header(b'C', 0x01, ALICE_ID, 0);
    initial.extend(raw_segment(0, user));
    initial.resize(MIN_INITIAL_LEN, 0);
    let replies = raw.exchange(alice_addr(), &initial);
    raw.pn = 1;
    raw.seq = 1;
    assert!(matches!(
        raw.messages(&replies).as_slice(),
        [ServerMessage::PasswordRequired { new_user: true, .. }]
    ));
    assert_eq!(raw.server.session_count(), 1);

    // The same connection id from another address is dropped.
    let mut spoofed = raw_header(b'C', 0x02, ALICE_ID, 1);
    spoofed.extend(raw_segment(1, br#"{"t":"password","password":"x"}"#));
    assert!(raw.exchange(bob_addr(), &spoofed).is_empty());
    assert!(raw.server.poll_request().is_none());
}

#[test]
fn session_rules() {
    let dave = UserRecord {
        name: "Dave".into(),
        password_hash: "$argon2id$fake".into(),
    };
    let mut raw = Raw::new(Server::new(ServerConfig::default(), [dave]));
    let mut initial = raw_header(b'C', 0x01, ALICE_ID, 0);
    initial.extend(raw_segment(0, br#"{"t":"password","password":"pw"}"#));
    initial.resize(MIN_INITIAL_LEN, 0);
    let replies = raw.exchange(alice_addr(), &initial);
    raw.pn = 1;
    raw.seq = 1;
    assert_eq!(
        error_code(&raw.messages(&replies)),
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
            new_user: false
        }]
    );
    assert_eq!(
        raw.say(r#"{"t":"user","name":"carol"}"#),
        [ServerMessage::PasswordRequired {
            name: "carol".into(),
            new_user: true
        }]
    );
    assert!(matches!(
        raw.say(r#"{"t":"password","password":""}"#).as_slice(),
        [ServerMessage::LoginFailed {
            reason: session::LoginFailure::InvalidPassword,
            ..
        }]
    ));
    assert_eq!(
        raw.say(r#"{"password":"pw","t":"password"}"#),
        [ServerMessage::LoginOk {
            name: "carol".into(),
            new_user: true,
            online: vec!["carol".into()]
        }]
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"user","name":"carol"}"#)),
        ErrorCode::AlreadyLoggedIn
    );
    assert_eq!(
        error_code(&raw.say(r#"{"t":"pm","text":"hi"}"#)),
        ErrorCode::NoOperation
    );
    assert_eq!(
        raw.say(r#"{"t":"who"}"#),
        [ServerMessage::Online {
            users: vec!["carol".into()]
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
    // The operation was used up by the refused text.
    assert_eq!(
        error_code(&raw.say(r#"{"t":"pm","text":"hi"}"#)),
        ErrorCode::NoOperation
    );
    raw.say(r#"{"t":"op","op":"PM"}"#);
    assert_eq!(
        raw.say(r#"{"t":"pm","text":"nobody hears this"}"#),
        [ServerMessage::Confirm {
            op: Operation::PM,
            to: None,
            recipients: 0
        }]
    );
    raw.say(r#"{"t":"op","op":"DM"}"#);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"dm","to":"nobody","text":"hi"}"#)),
        ErrorCode::UnknownUser
    );
    raw.say(r#"{"t":"op","op":"DM"}"#);
    assert_eq!(
        error_code(&raw.say(r#"{"t":"dm","to":"dave","text":"hi"}"#)),
        ErrorCode::NotOnline
    );
    assert_eq!(raw.say(r#"{"t":"op","op":"EX"}"#), [ServerMessage::Bye]);
    // Closing: further messages are ignored.
    assert!(raw.say(r#"{"t":"who"}"#).is_empty());
}
