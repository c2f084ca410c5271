//! `chatserver accounts`: each command on a stopped store, bad input
//! refused with a clear message; and beside a running server: a storm of
//! registrations while the tool adds accounts loses none, and the server
//! applies what the tool changed (a new account, a new password, a
//! deletion that ends the account's session).

mod common;
#[cfg(unix)]
mod pty;

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use udpchat_core::client::{Client, ClientConfig, ClientEvent};
use udpchat_core::session::ErrorCode;
use udpchat_native::clock::Clock;
use udpchat_native::passwords::verify_password;

/// What one run of `chatserver accounts …` did.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `chatserver --users USERS accounts ARGS…` with `stdin` as its
/// standard input (not a terminal).
fn accounts(users: &Path, args: &[&str], stdin: &str) -> Outcome {
    let mut cmd = command(CHATSERVER);
    cmd.arg("--users").arg(users).arg("accounts").args(args);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("start chatserver accounts");
    {
        let mut input = child.stdin.take().expect("piped stdin");
        // The tool may exit before reading (bad arguments).
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("chatserver accounts ran");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the tool and checks its exit status, and that standard error
/// contains `message` (when not empty).
#[track_caller]
fn expect(users: &Path, args: &[&str], stdin: &str, code: i32, message: &str) -> Outcome {
    let out = accounts(users, args, stdin);
    assert_eq!(
        out.code, code,
        "{args:?}: exit {}\nstdout: {}\nstderr: {}",
        out.code, out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(message),
        "{args:?}: expected {message:?} on stderr, got {:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

/// The store file's users, as JSON values.
fn stored_users(users: &Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(users).expect("the store exists")).expect("valid JSON");
    json["users"].as_array().expect("a users array").clone()
}

fn stored_user(users: &Path, name: &str) -> Option<serde_json::Value> {
    stored_users(users).into_iter().find(|u| u["name"] == name)
}

#[test]
fn each_command_on_a_stopped_store() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");

    // add
    let out = expect(&users, &["add", "alice"], "correct horse\n", 0, "");
    assert_eq!(out.stdout, "added alice\n");
    let alice = stored_user(&users, "alice").expect("alice is stored");
    let hash = alice["password_hash"].as_str().unwrap().to_string();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(verify_password("correct horse", &hash));
    expect(&users, &["add", "bob"], "battery staple", 0, "");
    // Refused: taken (any case), a look-alike, against the username rules,
    // a short or empty password; nothing is written.
    let before = fs::read(&users).unwrap();
    expect(
        &users,
        &["add", "ALICE"],
        "correct horse\n",
        1,
        "already registered",
    );
    expect(
        &users,
        &["add", "al1ce"],
        "correct horse\n",
        1,
        "looks too much like",
    );
    expect(
        &users,
        &["add", "bad name"],
        "correct horse\n",
        2,
        "username",
    );
    expect(&users, &["add", "carol"], "short\n", 2, "at least 8");
    expect(&users, &["add", "carol"], "", 2, "the password is empty");
    assert_eq!(fs::read(&users).unwrap(), before);

    // list, plain and JSON
    let out = expect(&users, &["list"], "", 0, "");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[0], "alice");
    assert!(
        fields[1].ends_with('Z') && fields[1].len() == 20,
        "{}",
        fields[1]
    );
    assert_eq!(fields[2], "-");
    let out = expect(&users, &["list", "--json"], "", 0, "");
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows[1]["name"], "bob");
    assert!(rows[1]["created"].as_u64().unwrap() > 1_700_000_000);
    assert!(rows[1]["suspended"].is_null());
    assert!(!out.stdout.contains("argon2"), "no hashes listed");

    // passwd
    let out = expect(&users, &["passwd", "ALICE"], "a new password\n", 0, "");
    assert_eq!(out.stdout, "new password set for alice\n");
    let hash = stored_user(&users, "alice").unwrap()["password_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(verify_password("a new password", &hash));
    assert!(!verify_password("correct horse", &hash));
    expect(
        &users,
        &["passwd", "nobody"],
        "whatever pw\n",
        1,
        "no account is named \"nobody\"",
    );
    expect(&users, &["passwd", "alice"], "tiny\n", 2, "at least 8");

    // suspend, unsuspend
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let out = expect(
        &users,
        &["suspend", "bob", "--for", "2h", "--reason", "spam"],
        "",
        0,
        "",
    );
    assert!(
        out.stdout.starts_with("suspended bob until 20"),
        "{}",
        out.stdout
    );
    let suspended = &stored_user(&users, "bob").unwrap()["suspended"];
    assert_eq!(suspended["by"], "accounts");
    assert_eq!(suspended["reason"], "spam");
    let until = suspended["until"].as_u64().unwrap();
    assert!(
        until >= started + 7_200_000 && until < started + 7_200_000 + 60_000,
        "{until}"
    );
    let out = expect(&users, &["list"], "", 0, "");
    assert!(
        out.stdout.contains("\tsuspended until ") && out.stdout.contains("by accounts: spam"),
        "{}",
        out.stdout
    );
    expect(&users, &["suspend", "alice"], "", 0, "");
    assert!(stored_user(&users, "alice").unwrap()["suspended"]["until"].is_null());
    expect(
        &users,
        &["suspend", "bob", "--for", "2x"],
        "",
        2,
        "unknown unit",
    );
    expect(
        &users,
        &["suspend", "bob", "--for", "0m"],
        "",
        2,
        "more than zero",
    );
    expect(&users, &["suspend", "nobody"], "", 1, "no account");
    let out = expect(&users, &["unsuspend", "bob"], "", 0, "");
    assert_eq!(out.stdout, "bob is no longer suspended\n");
    assert!(
        stored_user(&users, "bob")
            .unwrap()
            .get("suspended")
            .is_none()
    );
    let out = expect(&users, &["unsuspend", "bob"], "", 0, "");
    assert_eq!(out.stdout, "bob was not suspended\n");

    // delete
    expect(&users, &["delete", "bob"], "y\n", 2, "add --yes");
    assert!(stored_user(&users, "bob").is_some());
    let out = expect(&users, &["delete", "BOB", "--yes"], "", 0, "");
    assert_eq!(out.stdout, "deleted bob\n");
    assert!(stored_user(&users, "bob").is_none());
    expect(&users, &["delete", "bob", "--yes"], "", 1, "no account");
    assert_eq!(stored_users(&users).len(), 1);

    // A store that is not one: every command says which file and why, and
    // leaves it as it is.
    let broken = dir.path().join("broken.json");
    fs::write(&broken, b"{\"version\":1,\"users\":[").unwrap();
    for args in [
        &["list"][..],
        &["add", "dave"],
        &["passwd", "alice"],
        &["suspend", "alice"],
        &["delete", "alice", "--yes"],
    ] {
        expect(
            &broken,
            args,
            "long enough pw\n",
            1,
            "is corrupt or not a user store",
        );
    }
    assert_eq!(fs::read(&broken).unwrap(), b"{\"version\":1,\"users\":[");
    expect(
        &dir.path().join("missing/chat_users.json"),
        &["list"],
        "",
        1,
        "does not exist",
    );
    // No subcommand of accounts: usage, exit 2.
    expect(&users, &[], "", 2, "Usage");
}

/// A client of the server's core on a plain UDP socket.
struct Raw {
    sock: UdpSocket,
    client: Client,
    clock: Clock,
    buf: Vec<u8>,
    events: VecDeque<ClientEvent>,
}

/// How a login went.
#[derive(Debug, PartialEq, Eq)]
enum Login {
    /// Logged in; `new_user` when it registered.
    Ok { new_user: bool },
    /// The server asked for a password and said whether the name is new;
    /// the test chose not to send one.
    Asked { new_user: bool },
    /// Refused, with the server's message.
    Failed(String),
}

impl Raw {
    fn start(addr: SocketAddr, name: &str) -> Raw {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.connect(addr).expect("connect");
        let clock = Clock::new();
        let client = Client::new(clock.now(), ClientConfig::default(), rand::random(), name)
            .expect("a client");
        Raw {
            sock,
            client,
            clock,
            buf: vec![0; 65536],
            events: VecDeque::new(),
        }
    }

    /// Logs in as `name` with `password` (`None`: stop when asked for it).
    fn login(
        addr: SocketAddr,
        name: &str,
        password: Option<&str>,
        timeout: Duration,
    ) -> (Raw, Login) {
        let mut raw = Raw::start(addr, name);
        let login = raw.wait(timeout, |c, e| match e {
            ClientEvent::PasswordRequired { new_user, .. } => match password {
                Some(p) => {
                    c.submit_password(p).expect("password");
                    None
                }
                None => Some(Login::Asked {
                    new_user: *new_user,
                }),
            },
            ClientEvent::LoggedIn { new_user, .. } => Some(Login::Ok {
                new_user: *new_user,
            }),
            ClientEvent::LoginFailed { message, .. } => Some(Login::Failed(message.clone())),
            ClientEvent::Error { message, .. } => Some(Login::Failed(message.clone())),
            ClientEvent::Closed(r) => Some(Login::Failed(format!("closed: {r:?}"))),
            _ => None,
        });
        match login {
            Some(login) => (raw, login),
            None => panic!("{name}: no answer to the login within {timeout:?}"),
        }
    }

    fn flush(&mut self) {
        let now = self.clock.now();
        let mut out = Vec::new();
        while let Some(n) = self.client.poll_transmit(now, &mut out) {
            let _ = self.sock.send(&out[..n]);
        }
    }

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

    /// Waits until `f` returns something; `None` after `timeout`.
    fn wait<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&mut Client, &ClientEvent) -> Option<T>,
    ) -> Option<T> {
        let until = Instant::now() + timeout;
        while let Some(e) = self.next_until(until) {
            if let Some(t) = f(&mut self.client, &e) {
                return Some(t);
            }
        }
        None
    }
}

/// Registrations from clients while the tool adds accounts.
const STORM_CLIENTS: usize = 200;
const CLIENT_THREADS: usize = 20;
const TOOL_ADDS: usize = 50;
/// Bound of the whole storm.
const STORM_TIMEOUT: Duration = Duration::from_secs(240);

#[test]
fn a_registration_storm_beside_the_tool_loses_nothing() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let server = Server::start_with(
        &users,
        &[
            "--max-sessions-per-ip",
            "1000",
            "--max-handshaking-per-ip",
            "1000",
            "--handshake-burst",
            "1000",
            "--handshakes-per-sec",
            "1000",
        ],
    );
    let addr = server.addr;
    let started = Instant::now();

    // The clients: CLIENT_THREADS threads, each registering its share one
    // after the other.
    let failures = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            let failures = Arc::clone(&failures);
            thread::spawn(move || {
                let mut sessions = Vec::new();
                for i in (t..STORM_CLIENTS).step_by(CLIENT_THREADS) {
                    let name = format!("storm{i:03}");
                    let (raw, login) =
                        Raw::login(addr, &name, Some(&format!("pw {name}")), STORM_TIMEOUT);
                    if login != (Login::Ok { new_user: true }) {
                        eprintln!("{name}: {login:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    sessions.push(raw);
                }
                sessions.len()
            })
        })
        .collect();
    // The tool, at the same time.
    let tool_users = users.clone();
    let tool = thread::spawn(move || {
        let mut took = Vec::new();
        for i in 0..TOOL_ADDS {
            let name = format!("tool{i:02}");
            let begun = Instant::now();
            let out = accounts(
                &tool_users,
                &["add", &name],
                &format!("tool password {i}\n"),
            );
            assert_eq!(out.code, 0, "{name}: {}", out.stderr);
            took.push(begun.elapsed());
        }
        took
    });
    let registered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let clients_done = started.elapsed();
    let took = tool.join().unwrap();
    let storm = started.elapsed();
    assert_eq!(registered, STORM_CLIENTS);
    assert_eq!(failures.load(Ordering::Relaxed), 0, "registrations failed");

    // Every account is in the file, once.
    let stored: Vec<String> = stored_users(&users)
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), STORM_CLIENTS + TOOL_ADDS, "{stored:?}");
    assert_eq!(unique.len(), stored.len());
    for i in 0..STORM_CLIENTS {
        assert!(unique.contains(&format!("storm{i:03}")), "storm{i:03} lost");
    }
    for i in 0..TOOL_ADDS {
        assert!(unique.contains(&format!("tool{i:02}")), "tool{i:02} lost");
    }
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&users).unwrap()).unwrap();
    let generation = json["generation"].as_u64().expect("a generation");
    // One write per tool run, and at least one per registration batch.
    assert!(generation > TOOL_ADDS as u64, "{generation}");
    let mean_tool = took.iter().sum::<Duration>() / took.len().max(1) as u32;
    let max_tool = took.iter().max().copied().unwrap_or_default();
    println!(
        "storm: {STORM_CLIENTS} registrations from {CLIENT_THREADS} threads and {TOOL_ADDS} \
         `accounts add` at the same time: {:.2} s in all (registrations {:.2} s); \
         accounts add mean {:.0} ms, max {:.0} ms; {} accounts in the file, none lost, \
         written {generation} times",
        storm.as_secs_f64(),
        clients_done.as_secs_f64(),
        mean_tool.as_secs_f64() * 1000.0,
        max_tool.as_secs_f64() * 1000.0,
        stored.len()
    );

    // The server knows the tool's accounts: an existing account, the
    // password the tool set.
    let (_tool7, login) = Raw::login(addr, "tool07", Some("tool password 7"), TIMEOUT);
    assert_eq!(login, Login::Ok { new_user: false });
    let (mut live, login) = Raw::login(addr, "tool08", Some("tool password 8"), TIMEOUT);
    assert_eq!(login, Login::Ok { new_user: false });

    // A new password applies to the next login once the server has read
    // the file again. Logging in with it before then fails, and failed
    // logins from 127.0.0.1 are throttled: so wait for the server to report
    // the change, then log in once.
    let reloaded = "account added or changed in the user store user=tool07";
    let before = server.proc.err.text().matches(reloaded).count();
    expect(&users, &["passwd", "tool07"], "changed password 7\n", 0, "");
    let deadline = Instant::now() + TIMEOUT;
    while server.proc.err.text().matches(reloaded).count() == before {
        assert!(
            Instant::now() < deadline,
            "the server did not read the new password within {TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let (_raw, login) = Raw::login(addr, "tool07", Some("changed password 7"), TIMEOUT);
    assert_eq!(login, Login::Ok { new_user: false }, "the new password");

    // Deleting tool08 ends its live session, and its name is new again.
    expect(&users, &["delete", "tool08", "--yes"], "", 0, "");
    let code = live.wait(TIMEOUT, |_, e| match e {
        ClientEvent::Error { code, .. } => Some(*code),
        _ => None,
    });
    assert_eq!(code, Some(ErrorCode::AccountDeleted));
    let closed = live.wait(TIMEOUT, |_, e| match e {
        ClientEvent::Closed(r) => Some(r.clone()),
        _ => None,
    });
    assert!(closed.is_some(), "the session did not end");
    let (_raw, login) = Raw::login(addr, "tool08", None, TIMEOUT);
    assert_eq!(login, Login::Asked { new_user: true });
    assert_eq!(stored_users(&users).len(), STORM_CLIENTS + TOOL_ADDS - 1);
}

/// `chatserver --users USERS accounts ARGS…` on a terminal.
#[cfg(unix)]
fn on_terminal(users: &Path, args: &[&str]) -> pty::Term {
    let mut cmd = pty::CommandBuilder::new(CHATSERVER);
    cmd.arg("--users");
    cmd.arg(users);
    cmd.arg("accounts");
    cmd.args(args);
    for var in ["CHAT_USERS", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    cmd.env("NO_COLOR", "1");
    pty::Term::spawn(cmd)
}

#[cfg(unix)]
#[test]
fn on_a_terminal_passwords_are_asked_twice_unseen_and_delete_asks_first() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");

    let mut add = on_terminal(&users, &["add", "alice"]);
    add.wait_hidden_input("New password for alice: ");
    add.keys("secret horse\r");
    add.wait_hidden_input("Repeat it: ");
    add.keys("secret horse\r");
    add.row_of("added alice");
    assert_eq!(add.wait_exit(), 0);
    assert!(
        !add.rows().iter().any(|r| r.contains("secret")),
        "the password was echoed: {:?}",
        add.rows()
    );
    let hash = stored_user(&users, "alice").unwrap()["password_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(verify_password("secret horse", &hash));

    // Two different passwords: nothing changes.
    let mut passwd = on_terminal(&users, &["passwd", "alice"]);
    passwd.wait_hidden_input("New password for alice: ");
    passwd.keys("first password\r");
    passwd.wait_hidden_input("Repeat it: ");
    passwd.keys("second password\r");
    passwd.row_of("the two passwords differ");
    assert_eq!(passwd.wait_exit(), 2);
    assert_eq!(
        stored_user(&users, "alice").unwrap()["password_hash"],
        hash.as_str()
    );

    // delete asks; anything but yes keeps the account.
    let mut delete = on_terminal(&users, &["delete", "alice"]);
    delete.row_of("Delete the account alice?");
    delete.keys("n\r");
    delete.row_of("not deleting alice");
    assert_eq!(delete.wait_exit(), 1);
    assert!(stored_user(&users, "alice").is_some());
    let mut delete = on_terminal(&users, &["delete", "alice"]);
    delete.row_of("Delete the account alice?");
    delete.keys("y\r");
    delete.row_of("deleted alice");
    assert_eq!(delete.wait_exit(), 0);
    assert!(stored_user(&users, "alice").is_none());
}
