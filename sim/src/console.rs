//! Consoles: the line interface of the chat clients, driven in memory
//! against one server, in lock-step.
//!
//! [`Consoles`] is what the console's integration tests drive: each user
//! has a [`Console`] (not a bare `Client`), answers its password prompt and
//! its reconnections, and keeps every [`Output`] it showed. The server can
//! go down (every datagram dropped) and restart with the accounts
//! registered so far, with the same key or another.

use std::net::SocketAddr;

use udpchat_core::crypto::StaticKey;
use udpchat_core::server::store::MemoryStore;
use udpchat_core::server::{Server, ServerConfig, UserRecord};
use udpchat_core::time::{Duration, Instant};
use udpchat_core::ui::{ChatEvent, Console, ConsoleConfig, Output, render_plain};

use crate::password;

/// One user's console and what it showed.
pub struct User {
    /// Its address.
    pub addr: SocketAddr,
    /// Its console.
    pub console: Console,
    /// The password it gives when asked.
    pub password: String,
    /// Everything its console output, in order.
    pub seen: Vec<Output>,
    /// How many times it reconnected.
    pub reconnects: u8,
}

impl User {
    /// The chat events it was shown.
    pub fn events(&self) -> Vec<&ChatEvent> {
        self.seen
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Its chat events as plain text.
    pub fn lines(&self) -> Vec<String> {
        self.events().into_iter().map(render_plain).collect()
    }

    /// Whether it was shown `event`.
    pub fn saw(&self, event: &ChatEvent) -> bool {
        self.events().contains(&event)
    }
}

/// A server and consoles wired in memory, in lock-step on a virtual clock
/// (10 ms a step, no loss, every datagram handled within its step), with
/// the fake password service recording the accounts it registers.
pub struct Consoles {
    /// The virtual clock.
    pub now: Instant,
    /// The server's private key.
    pub key: [u8; 32],
    /// The server.
    pub server: Server,
    /// The server's configuration (kept across restarts).
    pub config: ServerConfig,
    /// The accounts: those registered so far (a restarted server knows them).
    pub accounts: Vec<UserRecord>,
    /// Rooms, history and offline messages (a restarted server has them).
    pub store: MemoryStore,
    /// The users, by index.
    pub users: Vec<User>,
    /// Drop every datagram (the server is down).
    pub down: bool,
}

impl Consoles {
    /// A server configured with `config` (key `[7; 32]`, random bytes
    /// `[1; 32]`) and no users yet.
    pub fn new(config: ServerConfig) -> Consoles {
        Consoles {
            now: Instant::ZERO,
            key: [7; 32],
            server: Server::new(
                config.clone(),
                [],
                StaticKey::from_private([7; 32]),
                [1; 32],
            ),
            config,
            accounts: Vec::new(),
            store: MemoryStore::default(),
            users: Vec::new(),
            down: false,
        }
    }

    /// A new server with the same accounts and configuration; `key` may
    /// differ, `seed` fills its random bytes.
    pub fn restart(&mut self, key: [u8; 32], seed: u8) {
        self.key = key;
        self.server = Server::new(
            self.config.clone(),
            self.accounts.clone(),
            StaticKey::from_private(key),
            [seed; 32],
        );
        self.server
            .restore(self.store.snapshot(self.config.room_memory()));
    }

    /// A new user whose console is ready; returns its index.
    pub fn join(&mut self, name: &str, password: &str, reconnect: bool) -> usize {
        let config = ConsoleConfig {
            reconnect,
            ..ConsoleConfig::default()
        };
        self.join_with(name, password, config)
    }

    /// [`Consoles::join`] with a console configuration of its own.
    pub fn join_with(&mut self, name: &str, password: &str, config: ConsoleConfig) -> usize {
        let n = self.users.len() as u8;
        let console = Console::new(self.now, config, [n + 2; 32], name).unwrap();
        self.users.push(User {
            addr: SocketAddr::new([127, 0, 0, 1].into(), 40_000 + u16::from(n)),
            console,
            password: password.to_string(),
            seen: Vec::new(),
            reconnects: 0,
        });
        let i = self.users.len() - 1;
        self.run_until(|consoles| consoles.users[i].console.is_ready(), 500);
        i
    }

    /// One step: every datagram sent is handled, password work answered,
    /// outputs taken (passwords given, reconnections made), then the clock
    /// moves 10 ms and the timers due fire.
    pub fn step(&mut self) {
        let mut buf = Vec::new();
        for u in &mut self.users {
            while let Some(len) = u.console.poll_transmit(self.now, &mut buf) {
                if !self.down {
                    self.server.handle_datagram(self.now, u.addr, &buf[..len]);
                }
            }
        }
        while let Some(r) = self.server.poll_request() {
            if let Some(response) = self.store.answer(&r) {
                self.server.handle_response(self.now, response);
                continue;
            }
            let response = password::answer_recording(r, &mut self.accounts);
            self.server.handle_response(self.now, response);
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            if self.down {
                continue;
            }
            if let Some(u) = self.users.iter_mut().find(|u| u.addr == t.to) {
                u.console.handle_datagram(self.now, &buf[..t.len]);
            }
        }
        for u in &mut self.users {
            while let Some(out) = u.console.poll() {
                match &out {
                    Output::NeedPassword { .. } => u.console.submit_password(self.now, &u.password),
                    Output::Reconnect => {
                        u.reconnects += 1;
                        u.console.reconnect(self.now, [100 + u.reconnects; 32]);
                    }
                    _ => {}
                }
                u.seen.push(out);
            }
        }
        self.now += Duration::from_millis(10);
        self.server.handle_timeout(self.now);
        for u in &mut self.users {
            if u.console.poll_timeout().is_some_and(|t| t <= self.now) {
                u.console.handle_timeout(self.now);
            }
        }
    }

    /// Steps until `done` holds; panics after `max` steps (10 ms each).
    pub fn run_until(&mut self, done: impl Fn(&Consoles) -> bool, max: u32) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        let lines: Vec<Vec<String>> = self.users.iter().map(User::lines).collect();
        panic!("not done after {max} steps: {lines:#?}");
    }

    /// User `i` types `line`.
    pub fn line(&mut self, i: usize, line: &str) {
        self.users[i].console.handle_line(self.now, line);
    }

    /// Steps until user `i` was shown `event`; panics after 2,000 steps.
    pub fn wait_for(&mut self, i: usize, event: ChatEvent) {
        self.run_until(|consoles| consoles.users[i].saw(&event), 2000);
    }
}
