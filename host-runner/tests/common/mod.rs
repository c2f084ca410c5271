//! Shared harness of host-runner's integration tests: starts the real
//! `host-runner` with the real `.wasm` modules, the real `chatserver` and
//! `chatclient`, all on loopback, and reads what they print line by line.
//!
//! The binaries come from the shared target directory, found from this test
//! executable's path (`target/<profile>/deps/<test>`):
//!
//! * `host-runner`: built by cargo for this test (`CARGO_BIN_EXE_host-runner`);
//! * `chatserver`, `chatclient`: `target/<profile>/`, built beforehand by
//!   `cargo build -p udpchat-native --bins`;
//! * the guests: `target/wasm32-wasip2/release/*.wasm`, built beforehand by
//!   `ci/build-wasm.sh`.
//!
//! Every wait is bounded and every child is killed when its handle drops.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};

/// How long one step may take on loopback (logins hash passwords).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// `target/<profile>`: where cargo put this test's binaries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test-hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// `target/`.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_path_buf()
}

/// A native binary of `udpchat-native`, built beforehand.
pub fn native_bin(name: &str) -> PathBuf {
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p udpchat-native --bins` first",
        path.display()
    );
    path
}

/// A guest module built by `ci/build-wasm.sh`.
pub fn module(name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run ci/build-wasm.sh first",
        path.display()
    );
    path
}

/// A compiled-module cache shared by the tests (entries are written
/// atomically, so parallel tests may share it).
pub fn shared_cache() -> PathBuf {
    target_dir().join("host-runner-test-cache")
}

/// Compiles `module_path` into the shared cache once per test process, with
/// a generous bound: a debug build of wasmtime on a busy machine can take
/// tens of seconds, which the tests' own waits are not meant to absorb.
/// (`ci/test.sh` warms the cache before the suites start.)
pub fn warm_cache(module_path: &Path) {
    static WARMED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut warmed = WARMED.lock().unwrap_or_else(|e| e.into_inner());
    if warmed.iter().any(|p| p == module_path) {
        return;
    }
    let mut child = command(env!("CARGO_BIN_EXE_host-runner"))
        .arg("--precompile")
        .arg("--module")
        .arg(module_path)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(["127.0.0.1", "9", "warmup"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start host-runner --precompile");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("compiling {} took over 300 s", module_path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    warmed.push(module_path.to_path_buf());
}

/// Environment variables the binaries read; removed so that the caller's
/// environment cannot change a test.
const ENV: &[&str] = &[
    "CHAT_PASSWORD",
    "CHAT_SERVER",
    "CHAT_PORT",
    "CHAT_USER",
    "RUST_LOG",
    "UDPCHAT_MODULE",
    "UDPCHAT_CACHE_DIR",
    "UDPCHAT_CACHE_KEY",
];

/// A command with a clean environment and all standard streams piped.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    // Every test server has a new key: pin nothing, remember nothing; keep
    // no device token and no input history.
    let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
    cmd.env("CHAT_KNOWN_SERVERS", null);
    cmd.env("CHAT_DEVICE_TOKENS", null);
    cmd.env("CHAT_HISTORY", "");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `host-runner` running `module` against `port` on loopback, with the
/// shared cache.
pub fn host_runner(module_path: &Path, port: u16, user: &str) -> Command {
    warm_cache(module_path);
    let mut cmd = command(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("--module")
        .arg(module_path)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(["127.0.0.1", &port.to_string(), user]);
    cmd
}

/// A running child with its output read by threads.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    cursor: usize,
    stderr: Arc<Mutex<String>>,
    /// Disconnected once the stderr reader has seen the end of the stream.
    stderr_done: Receiver<()>,
}

impl Proc {
    /// Starts `cmd`; `name` labels failure messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_stream = child.stderr.take().expect("piped stderr");
        let (tx, lines) = unbounded();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = unbounded::<()>();
        thread::spawn(move || {
            let _done = done_tx;
            let mut stream = stderr_stream;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            cursor: 0,
            stderr,
            stderr_done,
        }
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write {line:?}: {e}", self.name));
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next line (after the last one matched) containing
    /// `needle`, and returns it.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, TIMEOUT)
    }

    /// [`Proc::expect`] with its own timeout.
    pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[self.cursor..]
                .iter()
                .position(|l| l.contains(needle))
            {
                self.cursor += i + 1;
                return self.seen[self.cursor - 1].clone();
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(wait) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.pull_ready();
                    if self.seen[self.cursor..].iter().any(|l| l.contains(needle)) {
                        continue;
                    }
                    let transcript = self.transcript();
                    panic!(
                        "{}: no line containing {needle:?} within {timeout:?}\n{transcript}",
                        self.name
                    );
                }
            }
        }
    }

    fn pull_ready(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&mut self) -> Vec<String> {
        self.pull_ready();
        self.seen.clone()
    }

    /// What the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stdout and stderr, for failure messages.
    pub fn transcript(&mut self) -> String {
        self.pull_ready();
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.seen.join("\n"),
            self.name,
            self.stderr()
        )
    }

    /// Waits for the child to exit, for at most `timeout`; then collects the
    /// rest of its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain the pipes: stderr to its end
                // (bounded, in case something else holds the pipe open).
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(5));
                thread::sleep(Duration::from_millis(50));
                self.pull_ready();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let transcript = self.transcript();
                panic!(
                    "{}: still running after {timeout:?}\n{transcript}",
                    self.name
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the child now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `chatserver` on a free loopback port, with its own user file.
pub struct ChatServer {
    pub port: u16,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl ChatServer {
    pub fn start() -> ChatServer {
        ChatServer::start_with(&[])
    }

    /// A server with extra options (`--key FILE`, ...).
    pub fn start_with(extra: &[&str]) -> ChatServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = command(native_bin("chatserver"));
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--users")
            .arg(dir.path().join("users.json"))
            // Test users register with short passwords.
            .args(["--min-password-chars", "1"])
            .args(extra)
            .arg("0");
        let mut proc = Proc::spawn("chatserver", cmd);
        let line = proc.expect("listening on");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        ChatServer {
            port,
            proc,
            _dir: dir,
        }
    }

    /// Stops the server (as a crash would: no goodbye to clients).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Kills the server and starts a new one on the same port with the
    /// same accounts (and key, kept beside the accounts).
    pub fn restart(&mut self) {
        self.proc.kill();
        let mut cmd = command(native_bin("chatserver"));
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--users")
            .arg(self._dir.path().join("users.json"))
            .args(["--min-password-chars", "1"])
            .arg(self.port.to_string());
        self.proc = Proc::spawn("chatserver", cmd);
        self.proc.expect("listening on");
    }
}

/// A native `chatclient` logging in with `CHAT_PASSWORD`.
pub fn native_client(port: u16, user: &str, password: &str) -> Proc {
    let mut cmd = command(native_bin("chatclient"));
    cmd.args(["127.0.0.1", &port.to_string(), user])
        .env("CHAT_PASSWORD", password);
    Proc::spawn(&format!("chatclient {user}"), cmd)
}

/// The wasm client under host-runner logging in with `CHAT_PASSWORD`.
pub fn wasm_client(port: u16, user: &str, password: &str) -> Proc {
    let mut cmd = host_runner(&module("wasi-client"), port, user);
    cmd.env("CHAT_PASSWORD", password);
    Proc::spawn(&format!("host-runner {user}"), cmd)
}

/// Asserts that `proc` ended on its own with `code` and did not panic.
pub fn assert_exit(proc: &mut Proc, status: ExitStatus, code: i32) {
    let transcript = proc.transcript();
    assert_eq!(status.code(), Some(code), "{transcript}");
    assert!(!proc.stderr().contains("panicked"), "{transcript}");
}
