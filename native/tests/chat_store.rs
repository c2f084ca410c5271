//! Rooms, history and offline direct messages are in the chat store
//! (`chat_data.redb`) before they are confirmed: they survive a graceful
//! restart and a crash (SIGKILL) at any moment, and a chat store the
//! server cannot read stops it with a message naming the file.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use udpchat_core::client::{Client, ClientConfig, ClientEvent};
use udpchat_native::chatstore::{ChatStore, RedbStore};
use udpchat_native::clock::Clock;

/// A client of the server's core on a plain UDP socket: what a test needs
/// of rooms that the line-based chatclient does not print.
struct Raw {
    sock: UdpSocket,
    client: Client,
    clock: Clock,
    buf: Vec<u8>,
    /// Events read while waiting for another.
    events: VecDeque<ClientEvent>,
}

impl Raw {
    /// Logs in as `name` (registering it if new); returns the client and
    /// `login_ok`'s rooms.
    fn login(addr: SocketAddr, name: &str, password: &str) -> (Raw, Vec<String>) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.connect(addr).expect("connect");
        let clock = Clock::new();
        let client = Client::new(clock.now(), ClientConfig::default(), rand::random(), name)
            .expect("a client");
        let mut raw = Raw {
            sock,
            client,
            clock,
            buf: vec![0; 65536],
            events: VecDeque::new(),
        };
        let rooms = raw.wait(&format!("{name} logged in"), |c, e| match e {
            ClientEvent::PasswordRequired { .. } => {
                c.submit_password(password).expect("password");
                None
            }
            ClientEvent::LoggedIn { rooms, .. } => Some(rooms.clone()),
            ClientEvent::LoginFailed { message, .. } => panic!("login failed: {message}"),
            ClientEvent::Closed(r) => panic!("closed: {r:?}"),
            _ => None,
        });
        (raw, rooms)
    }

    /// Sends what the client has to send.
    fn flush(&mut self) {
        let now = self.clock.now();
        let mut out = Vec::new();
        while let Some(n) = self.client.poll_transmit(now, &mut out) {
            let _ = self.sock.send(&out[..n]);
        }
    }

    /// The next event, or `None` at `until`.
    fn next_until(&mut self, until: Instant) -> Option<ClientEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if let Some(e) = self.client.poll_event() {
                return Some(e);
            }
            self.flush();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let timer = self
                .client
                .poll_timeout()
                .map_or(left, |t| self.clock.until(t))
                .min(left)
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(timer)).expect("timeout");
            match self.sock.recv(&mut self.buf) {
                Ok(n) => {
                    let bytes = self.buf[..n].to_vec();
                    self.client.handle_datagram(self.clock.now(), &bytes);
                }
                Err(_) => self.client.handle_timeout(self.clock.now()),
            }
        }
    }

    /// Waits until `f` returns something, passing over other events.
    fn wait<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Client, &ClientEvent) -> Option<T>,
    ) -> T {
        let until = Instant::now() + TIMEOUT;
        loop {
            match self.next_until(until) {
                Some(e) => {
                    if let Some(t) = f(&mut self.client, &e) {
                        return t;
                    }
                }
                None => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Joins `room`: its offset and backlog, and the backlog's messages.
    fn join(&mut self, room: &str) -> (u64, Vec<(u64, String)>) {
        self.client.join(room).expect("join");
        let (offset, backlog) = self.wait("room", |_, e| match e {
            ClientEvent::RoomJoined {
                offset, backlog, ..
            } => Some((*offset, *backlog)),
            _ => None,
        });
        let mut history = Vec::new();
        while history.len() < backlog as usize {
            history.push(self.wait("the backlog", |_, e| match e {
                ClientEvent::RoomMessage {
                    offset,
                    text,
                    history: true,
                    ..
                } => Some((*offset, text.clone())),
                _ => None,
            }));
        }
        (offset, history)
    }

    /// Says `text` in `room`; the offset `said` gives it.
    fn say(&mut self, room: &str, text: &str) -> u64 {
        self.client.say(room, text).expect("say");
        self.wait("said", |_, e| match e {
            ClientEvent::Said { offset, .. } => Some(*offset),
            ClientEvent::Error { message, .. } => panic!("say refused: {message}"),
            _ => None,
        })
    }

    /// Sends a direct message to an offline user; true once stored.
    fn dm_stored(&mut self, to: &str, text: &str) -> bool {
        self.client.send_direct(to, text).expect("dm");
        self.wait("confirm", |_, e| match e {
            ClientEvent::Confirmed { stored, .. } => Some(*stored),
            ClientEvent::Error { message, .. } => panic!("dm refused: {message}"),
            _ => None,
        })
    }

    /// The room's whole history, oldest first, paging back from the end.
    fn all_history(&mut self, room: &str) -> Vec<(u64, String)> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            self.client
                .request_history(room, before, 200)
                .expect("history");
            let mut page = Vec::new();
            let more = self.wait("history_end", |_, e| match e {
                ClientEvent::RoomMessage {
                    offset,
                    text,
                    history: true,
                    ..
                } => {
                    page.push((*offset, text.clone()));
                    None
                }
                ClientEvent::HistoryEnd { more, .. } => Some(*more),
                _ => None,
            });
            before = page.first().map(|m| m.0);
            page.extend(all);
            all = page;
            if !more || before.is_none() {
                return all;
            }
        }
    }

    /// Offline direct messages received within `d`: their texts.
    fn offline_within(&mut self, d: Duration) -> Vec<String> {
        let until = Instant::now() + d;
        let mut texts = Vec::new();
        while let Some(e) = self.next_until(until) {
            if let ClientEvent::Direct {
                text,
                offline: true,
                ..
            } = e
            {
                texts.push(text);
            }
        }
        texts
    }

    /// Logs out (EX) and waits for the server's answer.
    fn exit(mut self) {
        self.client.exit_saying("bye").expect("exit");
        self.wait("closed", |_, e| {
            matches!(e, ClientEvent::Closed(_)).then_some(())
        });
    }
}

/// `kill -TERM`, and a clean exit.
#[cfg(unix)]
fn terminate(server: &mut Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.proc.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    server.proc.expect_exit(0, TIMEOUT);
}

#[test]
#[cfg_attr(not(unix), ignore = "needs kill -TERM, a Unix signal")]
fn rooms_history_and_waiting_messages_survive_a_restart() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let port = free_udp_port();
    let mut server = Server::start_on(&users, port, &[]);
    let (bob, _) = Raw::login(server.addr, "bob", "b");
    bob.exit();
    let (mut alice, rooms) = Raw::login(server.addr, "alice", "a");
    assert!(rooms.is_empty());
    let (_, backlog) = alice.join("#room");
    assert!(backlog.is_empty());
    let said: Vec<(u64, String)> = ["one", "two", "three"]
        .iter()
        .map(|t| (alice.say("#room", t), t.to_string()))
        .collect();
    assert!(alice.dm_stored("bob", "while you were out"));
    #[cfg(unix)]
    terminate(&mut server);
    drop(server);
    assert!(dir.path().join("chat_data.redb").exists());

    let server = Server::start_on(&users, port, &[]);
    let (mut alice, rooms) = Raw::login(server.addr, "alice", "a");
    assert_eq!(rooms, ["#room"]);
    let (offset, backlog) = alice.join("#room");
    assert_eq!(offset, said[2].0);
    assert_eq!(backlog, said);
    let (mut bob, _) = Raw::login(server.addr, "bob", "b");
    assert_eq!(
        bob.offline_within(Duration::from_millis(500)),
        ["while you were out"]
    );
}

#[test]
fn confirmed_messages_survive_crashes_at_random_moments() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let data = dir.path().join("chat_data.redb");
    let port = free_udp_port();
    let mut rng = StdRng::seed_from_u64(20_261_203);
    // Room for every DM this test sends.
    let limits = [
        "--max-offline-per-user",
        "100000",
        "--max-offline-per-sender",
        "100000",
    ];
    let started = Instant::now();

    // The offline user exists, and is offline from the first crash on.
    let mut server = Server::start_on(&users, port, &limits);
    let _sleeper = Raw::login(server.addr, "sleeper", "s");

    // Confirmed room messages: offset to text; confirmed stored DMs.
    let mut said: BTreeMap<u64, String> = BTreeMap::new();
    let mut stored: Vec<String> = Vec::new();
    let mut n = 0u64;
    let crashes = 6;
    for round in 0..crashes {
        server.proc.kill();
        drop(server);
        server = Server::start_on(&users, port, &limits);
        let (mut talker, _) = Raw::login(server.addr, "talker", "t");
        let (offset, _) = talker.join("#room");
        assert!(offset >= said.keys().last().copied().unwrap_or(0));
        let kill_at = Instant::now() + Duration::from_millis(rng.gen_range(200..900));
        // Traffic until the crash; the last request is in flight.
        loop {
            n += 1;
            if n.is_multiple_of(4) {
                let text = format!("dm {n}");
                talker.client.send_direct("sleeper", &text).expect("dm");
                if Instant::now() >= kill_at {
                    break;
                }
                let ok = talker.wait("confirm", |_, e| match e {
                    ClientEvent::Confirmed { stored, .. } => Some(*stored),
                    ClientEvent::Error { message, .. } => panic!("dm refused: {message}"),
                    _ => None,
                });
                assert!(ok, "the DM was stored");
                stored.push(text);
            } else {
                let text = format!("msg {n}");
                talker.client.say("#room", &text).expect("say");
                if Instant::now() >= kill_at {
                    break;
                }
                let offset = talker.wait("said", |_, e| match e {
                    ClientEvent::Said { offset, .. } => Some(*offset),
                    ClientEvent::Error { message, .. } => panic!("say refused: {message}"),
                    _ => None,
                });
                assert!(said.insert(offset, text).is_none(), "offset {offset} twice");
            }
        }
        // Send what is queued, then crash a moment later.
        talker.flush();
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..3000)));
        eprintln!(
            "round {round}: {} said, {} stored, {:?}",
            said.len(),
            stored.len(),
            started.elapsed()
        );
    }
    server.proc.kill();
    drop(server);

    let mut server = Server::start_on(&users, port, &limits);
    let (mut talker, rooms) = Raw::login(server.addr, "talker", "t");
    assert_eq!(rooms, ["#room"]);
    let history = talker.all_history("#room");
    let offsets: Vec<u64> = history.iter().map(|m| m.0).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "history in offset order"
    );
    let texts: BTreeMap<&str, usize> = history.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.1.as_str()).or_default() += 1;
        m
    });
    assert!(texts.values().all(|&c| c == 1), "no message twice");
    let by_offset: BTreeMap<u64, &str> = history.iter().map(|(o, t)| (*o, t.as_str())).collect();
    for (offset, text) in &said {
        assert_eq!(
            by_offset.get(offset),
            Some(&text.as_str()),
            "offset {offset}"
        );
    }
    let (mut sleeper, _) = Raw::login(server.addr, "sleeper", "s");
    let got = sleeper.offline_within(Duration::from_millis(800));
    for text in &stored {
        assert_eq!(
            got.iter().filter(|g| *g == text).count(),
            1,
            "{text} once in {got:?}"
        );
    }
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no DM twice: {got:?}");
    // In the order they were sent.
    let numbers: Vec<u64> = got
        .iter()
        .map(|t| t["dm ".len()..].parse().expect("a number"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    server.proc.kill();
    drop(server);

    // The file opens, and holds what was confirmed.
    let store = RedbStore::open(&data, Default::default()).expect("the store opens");
    let snapshot = store.load(100_000).expect("it loads");
    assert_eq!(snapshot.rooms.len(), 1);
    assert!(snapshot.rooms[0].recent.len() >= said.len());
    eprintln!(
        "{} room messages and {} DMs confirmed over {crashes} crashes in {:?}; {} bytes",
        said.len(),
        stored.len(),
        started.elapsed(),
        fs::metadata(&data).map(|m| m.len()).unwrap_or(0)
    );
}

/// The server refuses to start on `contents` as its chat store.
fn refuses_chat_store(contents: &[u8]) {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let data = dir.path().join("rooms.redb");
    fs::write(&data, contents).expect("write");
    let mut server = Server::spawn(&users, &["--data", &data.display().to_string()]);
    let status = server.wait_exit(TIMEOUT);
    let err = server.err.text();
    assert!(!status.success(), "exit status {status}");
    assert!(
        !server
            .out
            .seen()
            .iter()
            .any(|l| l.starts_with("listening on")),
        "it did not listen"
    );
    assert!(
        err.contains(&data.display().to_string()),
        "the message names {}: {err}",
        data.display()
    );
    assert_eq!(fs::read(&data).expect("still there"), contents, "unchanged");
    assert!(
        !Path::new(&dir.path().join("chat_server.key")).exists(),
        "no key was made"
    );
}

#[test]
fn a_corrupt_chat_store_is_refused_by_name() {
    refuses_chat_store(b"this is not a redb database, only some text in its place");
    refuses_chat_store(&[0xff, 0x00, 0xfe]);
}
