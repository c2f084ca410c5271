//! The console's unit tests: what needs its private state. The tests that
//! use only the public API drive it through the simulation crate, in
//! `core/tests/console.rs`; the one below that sets the console's pacer
//! keeps a copy of that driver ([`Net`]), because a unit test inside this
//! crate cannot use the simulation crate (it links a second copy of
//! `udpchat-core`, whose `Console` is another type).

use super::*;
use crate::crypto::StaticKey;
use crate::server::{Request, Response, Server, ServerConfig};
use alloc::format;
use core::net::SocketAddr;

#[test]
fn sanitize_replaces_controls() {
    assert_eq!(sanitize("a\u{1b}[2Jb\u{9b}"), "a\u{fffd}[2Jb\u{fffd}");
    assert_eq!(sanitize("plain ünïcode"), "plain ünïcode");
}

#[test]
fn sanitize_shows_what_would_reorder_hide_or_split_text() {
    // Right-to-left override: "evil" would read backwards to the end of
    // the line.
    assert_eq!(sanitize("a\u{202e}live"), "a<U+202E>live");
    // Isolates and marks.
    assert_eq!(
        sanitize("\u{2066}x\u{2069}\u{200f}"),
        "<U+2066>x<U+2069><U+200F>"
    );
    // Invisible characters.
    assert_eq!(sanitize("al\u{200b}ice"), "al<U+200B>ice");
    assert_eq!(sanitize("\u{feff}hi"), "<U+FEFF>hi");
    assert_eq!(sanitize("a\u{200c}b"), "a<U+200C>b");
    assert_eq!(sanitize("a\u{200d}b"), "a<U+200D>b");
    // Line and paragraph separators would start a new line in a pipe.
    assert_eq!(sanitize("one\u{2028}two\u{2029}"), "one<U+2028>two<U+2029>");
    // Emoji sequences stay whole.
    for emoji in [
        "👩\u{200d}💻",
        "👨\u{200d}👩\u{200d}👧",
        "❤\u{fe0f}\u{200d}🔥",
    ] {
        assert_eq!(sanitize(emoji), emoji);
    }
    let england = "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
    assert_eq!(sanitize(england), england);
    assert_eq!(sanitize("x\u{e0067}"), "x<U+E0067>");
}

#[test]
fn lines_wait_until_login() {
    let mut c = Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
    c.handle_line(Instant::ZERO, "PM");
    c.handle_line(Instant::ZERO, "hello");
    c.handle_eof(Instant::ZERO);
    assert_eq!(c.exit_code(), None, "waits for the server, does not exit");
    assert_eq!(c.lines.len(), 2);
    assert!(c.poll_transmit(Instant::ZERO, &mut Vec::new()).is_some());
}

#[test]
fn bad_username_is_refused() {
    assert!(Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "a b").is_err());
}

/// The server of these tests: the defaults, but any password length
/// (the users register with one-letter passwords).
fn test_config() -> ServerConfig {
    ServerConfig {
        min_password_chars: 1,
        ..ServerConfig::default()
    }
}

/// One user's console and what it showed.
struct User {
    addr: SocketAddr,
    console: Console,
    password: String,
    seen: Vec<Output>,
}

impl User {
    fn events(&self) -> Vec<&ChatEvent> {
        self.seen
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn lines(&self) -> Vec<String> {
        self.events().into_iter().map(render_plain).collect()
    }
}

/// A server and consoles wired in memory, in lock-step on a virtual clock:
/// the part of the simulation crate's `Consoles` that the test above
/// needs (no restarts, no reconnections, no outage).
struct Net {
    now: Instant,
    server: Server,
    users: Vec<User>,
}

impl Net {
    fn new() -> Net {
        Net {
            now: Instant::ZERO,
            server: Server::new(test_config(), [], StaticKey::from_private([7; 32]), [1; 32]),
            users: Vec::new(),
        }
    }

    fn join(&mut self, name: &str, password: &str) -> usize {
        let n = self.users.len() as u8;
        let console = Console::new(self.now, ConsoleConfig::default(), [n + 2; 32], name).unwrap();
        self.users.push(User {
            addr: SocketAddr::new([127, 0, 0, 1].into(), 40_000 + u16::from(n)),
            console,
            password: password.to_string(),
            seen: Vec::new(),
        });
        let i = self.users.len() - 1;
        self.run_until(|net| net.users[i].console.is_ready(), 500);
        i
    }

    /// One step of 10 ms; passwords are checked against the fake hash
    /// `fake:` and the password.
    fn step(&mut self) {
        let mut buf = Vec::new();
        for u in &mut self.users {
            while let Some(len) = u.console.poll_transmit(self.now, &mut buf) {
                self.server.handle_datagram(self.now, u.addr, &buf[..len]);
            }
        }
        while let Some(r) = self.server.poll_request() {
            let response = match r {
                Request::Store { id, .. } => Response::Stored { id, result: Ok(()) },
                Request::History { id, .. } => Response::History {
                    id,
                    result: Ok((Vec::new(), false)),
                },
                Request::Register { id, password, .. } => Response::Registered {
                    id,
                    result: Ok(format!("fake:{password}")),
                },
                Request::Verify {
                    id,
                    password,
                    password_hash,
                    ..
                } => Response::Verified {
                    id,
                    ok: password_hash == format!("fake:{password}"),
                },
            };
            self.server.handle_response(self.now, response);
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            if let Some(u) = self.users.iter_mut().find(|u| u.addr == t.to) {
                u.console.handle_datagram(self.now, &buf[..t.len]);
            }
        }
        for u in &mut self.users {
            while let Some(out) = u.console.poll() {
                if let Output::NeedPassword { .. } = &out {
                    u.console.submit_password(self.now, &u.password);
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
    fn run_until(&mut self, done: impl Fn(&Net) -> bool, max: u32) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        let lines: Vec<Vec<String>> = self.users.iter().map(User::lines).collect();
        panic!("not done after {max} steps: {lines:#?}");
    }

    fn line(&mut self, i: usize, line: &str) {
        self.users[i].console.handle_line(self.now, line);
    }
}

fn public(from: &str, text: &str, action: bool) -> ChatEvent {
    ChatEvent::Public {
        from: from.to_string(),
        text: text.to_string(),
        action,
        mention: false,
    }
}

/// The public texts `who` saw, in order.
fn texts_from(net: &Net, who: usize, from: &str) -> Vec<String> {
    net.users[who]
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Public { from: f, text, .. } if f == from => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_line_refused_as_too_fast_is_sent_again() {
    let mut net = Net::new();
    let alice = net.join("alice", "a");
    let bob = net.join("bob", "b");
    // A client that believes the limit is far higher than it is.
    net.users[alice].console.pacer = Some(Pacer::new(
        net.now,
        MessageRate {
            burst: 1000,
            interval_ms: 1,
        },
    ));
    let sent: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
    for l in &sent {
        net.line(alice, l);
    }
    net.run_until(|n| texts_from(n, bob, "alice").len() == 20, 2000);
    assert!(net.server.stats().messages_rate_limited > 0);
    let mut got = texts_from(&net, bob, "alice");
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "every line arrives once");
    assert!(
        !net.users[alice]
            .events()
            .iter()
            .any(|e| matches!(e, ChatEvent::NotSent { .. }))
    );
}

#[test]
fn the_text_form_is_the_assignments() {
    let mut c = Console::new(Instant::ZERO, ConsoleConfig::default(), [1; 32], "alice").unwrap();
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Line("Connecting as alice...".to_string()))
    );
    c.output.push_back(Output::Prompt(PromptKind::Menu));
    c.output.push_back(Output::Reconnect);
    c.output
        .push_back(Output::Event(public("bob", "hi", false)));
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Prompt(MENU_PROMPT.to_string()))
    );
    assert_eq!(
        c.poll_output(),
        Some(ConsoleOutput::Line("[bob] hi".to_string()))
    );
    assert_eq!(c.poll_output(), None);
}
