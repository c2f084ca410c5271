//! Shared harness of the native integration tests: starts the real
//! `chatserver`, `chatclient` and `udprelay` binaries on loopback, feeds their
//! standard input and reads their standard output line by line.
//!
//! Every wait is bounded; every child is killed when its handle is dropped,
//! so a failing test never leaves processes behind. A failure message shows
//! what the process printed, and a server that outlives a panicking test
//! prints its log.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};

/// A redis-server of a test's own (the cluster tests).
pub mod redis;

/// How long a step may take on loopback, logins (argon2) included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub const CHATSERVER: &str = env!("CARGO_BIN_EXE_chatserver");
pub const CHATCLIENT: &str = env!("CARGO_BIN_EXE_chatclient");
pub const UDPRELAY: &str = env!("CARGO_BIN_EXE_udprelay");

/// Environment variables the binaries read; removed so that the caller's
/// environment cannot change a test.
const CHAT_ENV: &[&str] = &[
    "CHAT_PASSWORD",
    "CHAT_SERVER",
    "CHAT_PORT",
    "CHAT_USER",
    "CHAT_USERS",
    "CHAT_BIND",
    "CHAT_SERVER_KEY_FILE",
    "CHAT_DATA",
    "CHAT_METRICS",
    "CHAT_IGNORED",
    "RUST_LOG",
];

/// An empty file: a config file, or a known_servers file, of nothing.
pub const NULL_FILE: &str = if cfg!(windows) { "NUL" } else { "/dev/null" };

/// A UDP port on 127.0.0.1 that was free a moment ago, for a server that
/// must come back on the same port.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// A command with a clean environment and all three standard streams piped.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in CHAT_ENV {
        cmd.env_remove(var);
    }
    // Plain log lines in failure messages.
    cmd.env("NO_COLOR", "1");
    // No config file from the caller's home directory, and no device
    // tokens kept there.
    cmd.env("CHAT_CONFIG", NULL_FILE);
    cmd.env("CHAT_DEVICE_TOKENS", NULL_FILE);
    cmd.env("CHAT_IGNORED", NULL_FILE);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The lines a child printed on one stream, read by a thread of their own.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
    /// Index in `seen` after the last line an `expect` matched.
    cursor: usize,
    closed: bool,
}

impl Lines {
    fn spawn(stream: impl Read + Send + 'static, what: &str) -> Lines {
        let (tx, rx) = unbounded();
        thread::Builder::new()
            .name(format!("read-{what}"))
            .spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn a reader thread");
        Lines {
            rx,
            seen: Vec::new(),
            cursor: 0,
            closed: false,
        }
    }

    /// Takes in one more line, waiting until `deadline`. False on timeout or
    /// end of stream.
    fn pull(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(line) => {
                self.seen.push(line);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                false
            }
        }
    }

    /// Takes in what has arrived so far without waiting.
    fn pull_ready(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
    }

    /// Every line so far.
    pub fn seen(&mut self) -> &[String] {
        self.pull_ready();
        &self.seen
    }

    /// Waits for the next line, after the last one matched, that satisfies
    /// `pred`; lines skipped stay in [`Lines::seen`].
    fn find(&mut self, pred: &dyn Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[self.cursor..].iter().position(|l| pred(l)) {
                self.cursor += i + 1;
                return Some(self.seen[self.cursor - 1].clone());
            }
            if !self.pull(deadline) {
                // One last look at what arrived just before the deadline.
                self.pull_ready();
                if let Some(i) = self.seen[self.cursor..].iter().position(|l| pred(l)) {
                    self.cursor += i + 1;
                    return Some(self.seen[self.cursor - 1].clone());
                }
                return None;
            }
        }
    }

    /// Waits until `done(seen lines)` holds. False on timeout or end of
    /// stream.
    fn wait_until(&mut self, done: &dyn Fn(&[String]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.pull_ready();
            if done(&self.seen) {
                return true;
            }
            if !self.pull(deadline) {
                self.pull_ready();
                return done(&self.seen);
            }
        }
    }

    /// Reads to the end of the stream (the child exited), for at most
    /// `timeout`.
    fn read_to_end(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            if !self.pull(deadline) && !self.closed {
                return false;
            }
        }
        true
    }
}

/// The text a child wrote on stderr, collected by a thread.
#[derive(Clone, Default)]
pub struct Stderr(Arc<Mutex<(String, bool)>>);

impl Stderr {
    fn spawn(mut stream: impl Read + Send + 'static, what: &str) -> Stderr {
        let text = Stderr::default();
        let sink = text.clone();
        thread::Builder::new()
            .name(format!("stderr-{what}"))
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let mut state = sink.0.lock().unwrap_or_else(|e| e.into_inner());
                    if n == 0 {
                        state.1 = true;
                        return;
                    }
                    state.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
            .expect("spawn a reader thread");
        text
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Waits for the end of the stream, until `deadline`.
    fn wait_closed(&self, deadline: Instant) {
        while !self.0.lock().unwrap_or_else(|e| e.into_inner()).1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A running child process, killed when dropped.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub out: Lines,
    pub err: Stderr,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdin = child.stdin.take();
        let out = Lines::spawn(child.stdout.take().expect("piped stdout"), name);
        let err = Stderr::spawn(child.stderr.take().expect("piped stderr"), name);
        Proc {
            name: name.to_string(),
            child,
            stdin,
            out,
            err,
            status: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed so far, for failure messages.
    pub fn transcript(&mut self) -> String {
        let out = self.out.seen().join("\n  ");
        format!(
            "--- {} stdout:\n  {out}\n--- {} stderr:\n{}",
            self.name,
            self.name,
            self.err.text()
        )
    }

    /// Panics with `msg` and what the process printed.
    pub fn fail(&mut self, msg: &str) -> ! {
        let transcript = self.transcript();
        panic!("{}: {msg}\n{transcript}", self.name)
    }

    /// Writes `line` and a newline to the child's standard input.
    pub fn send(&mut self, line: &str) {
        let result = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => panic!("{}: standard input already closed", self.name),
        };
        if let Err(e) = result {
            self.fail(&format!("cannot write {line:?}: {e}"));
        }
    }

    /// Closes standard input (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next output line equal to `line`.
    pub fn expect_line(&mut self, line: &str, timeout: Duration) -> String {
        self.expect_with(&|l| l == line, &format!("the line {line:?}"), timeout)
    }

    /// Waits for the next output line equal to `line`; None if none came.
    pub fn find_line(&mut self, line: &str, timeout: Duration) -> Option<String> {
        self.out.find(&|l| l == line, timeout)
    }

    /// Waits for the next output line that satisfies `pred`; None if none
    /// came.
    pub fn find_with(&mut self, pred: &dyn Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.out.find(pred, timeout)
    }

    /// Waits for the next output line that starts with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str, timeout: Duration) -> String {
        self.expect_with(
            &|l| l.starts_with(prefix),
            &format!("a line starting with {prefix:?}"),
            timeout,
        )
    }

    /// Waits for the next output line that satisfies `pred`.
    pub fn expect_with(
        &mut self,
        pred: &dyn Fn(&str) -> bool,
        what: &str,
        timeout: Duration,
    ) -> String {
        match self.out.find(pred, timeout) {
            Some(l) => l,
            None => self.fail(&format!("no {what} within {timeout:?}")),
        }
    }

    /// Waits until the lines seen so far satisfy `done`.
    pub fn wait_until(&mut self, done: &dyn Fn(&[String]) -> bool, what: &str, timeout: Duration) {
        if !self.out.wait_until(done, timeout) {
            self.fail(&format!("not {what} within {timeout:?}"));
        }
    }

    /// How many output lines so far equal `line`.
    pub fn count(&mut self, line: &str) -> usize {
        self.out.seen().iter().filter(|l| *l == line).count()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.status.is_none()
            && match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            }
    }

    /// Waits for the process to exit and for its stdout to end; returns its
    /// status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                self.fail(&format!("still running after {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        // A grandchild could hold the pipes open; do not wait for ever.
        let deadline = deadline.max(Instant::now()) + TIMEOUT;
        self.out
            .read_to_end(deadline.saturating_duration_since(Instant::now()));
        self.err.wait_closed(deadline);
        self.status.expect("exited")
    }

    /// Waits for the process to exit with `code`.
    pub fn expect_exit(&mut self, code: i32, timeout: Duration) {
        let status = self.wait_exit(timeout);
        if status.code() != Some(code) {
            self.fail(&format!("exit status {status}, expected {code}"));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.status = Some(status);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// A temporary directory for a server's user store.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("udpchat-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// A `chatserver` on 127.0.0.1 with a free port.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub users: PathBuf,
    /// The directory of the user store when the server made it.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with an empty user store in a new temporary directory.
    pub fn start() -> Server {
        let dir = temp_dir();
        let users = dir.path().join("chat_users.json");
        let mut server = Server::start_with(&users, &[]);
        server._dir = Some(dir);
        server
    }

    /// A server using the user store `users` (which may not exist yet), with
    /// extra arguments.
    pub fn start_with(users: &Path, extra: &[&str]) -> Server {
        Server::start_on(users, 0, extra)
    }

    /// A server on 127.0.0.1:`port` (a fixed port, to restart it on the
    /// same address; 0 picks a free one), with the user store `users` and
    /// extra arguments.
    pub fn start_on(users: &Path, port: u16, extra: &[&str]) -> Server {
        let mut proc = Server::spawn_on(users, port, extra);
        let line = proc.expect_prefix("listening on ", TIMEOUT);
        let addr: SocketAddr = line["listening on ".len()..]
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        Server {
            proc,
            addr,
            users: users.to_path_buf(),
            _dir: None,
        }
    }

    /// Starts `chatserver --bind 127.0.0.1 --users USERS EXTRA... 0` without
    /// waiting for it to listen.
    pub fn spawn(users: &Path, extra: &[&str]) -> Proc {
        Server::spawn_on(users, 0, extra)
    }

    /// As [`Server::spawn`], on `port`.
    pub fn spawn_on(users: &Path, port: u16, extra: &[&str]) -> Proc {
        let mut cmd = command(CHATSERVER);
        cmd.args(["--bind", "127.0.0.1", "--users"])
            .arg(users)
            .args(["--status-interval", "0"]);
        // Scripted clients send faster than people type: lift the
        // per-session message limit unless the test sets its own.
        if !extra.iter().any(|a| a.starts_with("--message")) {
            cmd.args(["--message-burst", "10000", "--messages-per-sec", "10000"]);
        }
        // Test users register with one-letter passwords, unless the test is
        // about the minimum.
        if !extra.iter().any(|a| a.starts_with("--min-password")) {
            cmd.args(["--min-password-chars", "1"]);
        }
        cmd.args(extra)
            .arg(port.to_string())
            .env("RUST_LOG", "info");
        Proc::spawn("chatserver", cmd)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Asserts that the server is still running.
    pub fn assert_running(&mut self) {
        if !self.proc.is_running() {
            self.proc.fail("exited");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.proc.transcript());
        }
    }
}

/// How a test client gets its password.
#[derive(Clone, Copy, Debug)]
pub enum Password<'a> {
    /// The first line of standard input (the next one after a failure).
    Stdin(&'a str),
    /// The `CHAT_PASSWORD` environment variable (no retry).
    Env(&'a str),
}

/// Starts `chatclient 127.0.0.1 PORT NAME` with the given password; it is
/// not yet logged in.
pub fn spawn_client(addr: SocketAddr, name: &str, password: Password<'_>) -> Proc {
    spawn_client_with(addr, name, password, &[])
}

/// As [`spawn_client`], with options (`--json`, `--reconnect`, ...) before
/// the address.
pub fn spawn_client_with(
    addr: SocketAddr,
    name: &str,
    password: Password<'_>,
    options: &[&str],
) -> Proc {
    let mut cmd = command(CHATCLIENT);
    cmd.args(options)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(name);
    if let Password::Env(p) = password {
        cmd.env("CHAT_PASSWORD", p);
    }
    // Every test server has a new key: pin nothing, remember nothing.
    cmd.env("CHAT_KNOWN_SERVERS", NULL_FILE);
    let mut proc = Proc::spawn(&format!("chatclient {name}"), cmd);
    if let Password::Stdin(p) = password {
        proc.send(p);
    }
    proc
}

/// A client logged in as `name` (registered first if new), with the
/// password on its first input line.
pub fn login(addr: SocketAddr, name: &str, password: &str) -> Proc {
    login_within(addr, name, password, TIMEOUT)
}

/// As [`login`], waiting up to `timeout`.
pub fn login_within(addr: SocketAddr, name: &str, password: &str, timeout: Duration) -> Proc {
    let mut client = spawn_client(addr, name, Password::Stdin(password));
    let logged_in = format!("logged in as {name}; online: ");
    client.expect_with(
        &|l| l.starts_with(&logged_in) || l.starts_with(&format!("registered and {logged_in}")),
        "login",
        timeout,
    );
    client
}

/// The names in an `online: a, b` line.
pub fn online_set(line: &str) -> BTreeSet<String> {
    let list = line
        .strip_prefix("online: ")
        .unwrap_or_else(|| panic!("not an online line: {line:?}"));
    if list == "nobody" {
        return BTreeSet::new();
    }
    list.split(", ").map(str::to_string).collect()
}

/// A set of names, for comparisons with [`online_set`].
pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Ends a client's input and checks it says `bye` and exits with 0.
pub fn exit_cleanly(client: &mut Proc) {
    client.close_stdin();
    client.expect_line("bye", TIMEOUT);
    client.expect_exit(0, TIMEOUT);
}
