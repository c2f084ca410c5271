//! `wasmbench`: figures for the WebAssembly client, printed, never asserted:
//!
//! * the module's size, and the size of its compiled form in the cache;
//! * start-up, as the time from starting `host-runner` to its first
//!   datagram reaching a server socket: the first start (compiling the
//!   module) and a start with the module cached; native `chatclient` for
//!   comparison;
//! * DM round trip through a real `chatserver`: client A sends a DM to B (a
//!   native `chatclient`), this program answers it from B with a DM, and
//!   the time is taken when A prints the answer. A is the wasm client under
//!   `host-runner`, then the native `chatclient`.
//!
//! Build everything first, in one profile, then run from the same profile:
//!
//! ```text
//! ci/build-wasm.sh
//! cargo build --release -p host-runner -p udpchat-native --bins
//! cargo run --release -p udpchat-bench --bin wasmbench [-- --runs N --round-trips M]
//! ```
//!
//! It runs those binaries as processes (it builds no wasmtime of its own),
//! taken from the directory of its own profile
//! (`target/release/`), the module from `target/wasm32-wasip2/release/`.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Each run's server has a new key: its clients pin nothing, remember
/// nothing.
const NULL_FILE: &str = if cfg!(windows) { "NUL" } else { "/dev/null" };

fn main() {
    let mut runs = 5usize;
    let mut round_trips = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--runs", Some(n)) => runs = n,
            ("--round-trips", Some(n)) => round_trips = n,
            _ => {
                eprintln!("usage: wasmbench [--runs N] [--round-trips N]");
                std::process::exit(2);
            }
        }
    }
    let bins = Bins::locate();
    let scratch = tempfile::tempdir().expect("a temporary directory");

    println!("host-runner bench ({})", bins.profile);
    let wasm_len = std::fs::metadata(&bins.module).expect("module").len();
    println!(
        "module size:                   {:>9} bytes  {}",
        wasm_len,
        bins.module.display()
    );

    // Start-up: compile on each first start, then hit the cache.
    let mut compiled = Vec::new();
    let mut cached = Vec::new();
    let mut artifact_len = 0;
    for run in 0..runs {
        let cache = scratch.path().join(format!("cache-{run}"));
        compiled.push(time_to_first_datagram(&bins.host_runner_cmd(&cache)));
        cached.push(time_to_first_datagram(&bins.host_runner_cmd(&cache)));
        artifact_len = dir_size(&cache);
    }
    let mut native = Vec::new();
    for _ in 0..runs {
        native.push(time_to_first_datagram(&bins.chatclient_cmd()));
    }
    println!("compiled module (cache entry): {artifact_len:>9} bytes");
    println!(
        "first start, compiling:        {}   (start to first datagram, {runs} runs)",
        summary(&mut compiled)
    );
    println!("start with the cached module:  {}", summary(&mut cached));
    println!("native chatclient start:       {}", summary(&mut native));

    // DM round trips through a real server.
    let users = scratch.path().join("users.json");
    let mut server = spawn(
        Command::new(&bins.chatserver)
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--users")
            .arg(&users)
            // Round trips back to back: lift the per-session message limit.
            .args([
                "--message-burst",
                "1000000",
                "--messages-per-sec",
                "1000000",
            ])
            .arg("0"),
    );
    let listening = server.expect("listening on");
    let port: u16 = listening
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("a port");
    let warm_cache = scratch.path().join("cache-0");
    let mut peer = spawn(
        bins.chatclient_login(port, "peer")
            .env("CHAT_PASSWORD", "peer-secret")
            .env("CHAT_KNOWN_SERVERS", NULL_FILE),
    );
    peer.expect("logged in as peer");

    let mut wasm = spawn(
        bins.host_runner_cmd(&warm_cache)
            .args(["127.0.0.1", &port.to_string(), "wasm"])
            .env("CHAT_PASSWORD", "wasm-secret")
            .env("CHAT_KNOWN_SERVERS", NULL_FILE),
    );
    wasm.expect("logged in as wasm");
    let mut wasm_rtt = dm_round_trips(&mut wasm, "wasm", &mut peer, round_trips);
    wasm.send("EX");

    let mut nat = spawn(
        bins.chatclient_login(port, "native")
            .env("CHAT_PASSWORD", "native-secret")
            .env("CHAT_KNOWN_SERVERS", NULL_FILE),
    );
    nat.expect("logged in as native");
    let mut native_rtt = dm_round_trips(&mut nat, "native", &mut peer, round_trips);
    nat.send("EX");
    peer.send("EX");

    println!(
        "DM round trip, wasm client:    {}   ({round_trips} round trips via chatserver)",
        summary(&mut wasm_rtt)
    );
    println!(
        "DM round trip, native client:  {}",
        summary(&mut native_rtt)
    );
    drop(server);
}

/// Where the binaries of this profile are.
struct Bins {
    profile: String,
    host_runner: PathBuf,
    chatserver: PathBuf,
    chatclient: PathBuf,
    module: PathBuf,
}

impl Bins {
    fn locate() -> Bins {
        let exe = std::env::current_exe().expect("own path");
        // target/<profile>/wasmbench
        let profile_dir = exe.parent().expect("target/<profile>").to_path_buf();
        let target = profile_dir.parent().expect("target").to_path_buf();
        let bins = Bins {
            profile: profile_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            host_runner: profile_dir.join("host-runner"),
            chatserver: profile_dir.join("chatserver"),
            chatclient: profile_dir.join("chatclient"),
            module: target.join("wasm32-wasip2/release/wasi-client.wasm"),
        };
        for path in [
            &bins.host_runner,
            &bins.chatserver,
            &bins.chatclient,
            &bins.module,
        ] {
            if !path.is_file() {
                eprintln!(
                    "wasmbench: {} is missing; build first:\n  ci/build-wasm.sh\n  \
                     cargo build --release -p host-runner -p udpchat-native --bins",
                    path.display()
                );
                std::process::exit(2);
            }
        }
        bins
    }

    fn host_runner_cmd(&self, cache: &Path) -> Command {
        let mut cmd = Command::new(&self.host_runner);
        cmd.arg("--module")
            .arg(&self.module)
            .arg("--cache-dir")
            .arg(cache)
            .env_remove("CHAT_PASSWORD")
            .env_remove("RUST_LOG");
        cmd
    }

    fn chatclient_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.chatclient);
        cmd.env_remove("CHAT_PASSWORD").env_remove("RUST_LOG");
        cmd
    }

    fn chatclient_login(&self, port: u16, user: &str) -> Command {
        let mut cmd = self.chatclient_cmd();
        cmd.args(["127.0.0.1", &port.to_string(), user]);
        cmd
    }
}

/// Starts `cmd` as a client of a fresh server socket and returns how long
/// its first datagram took to arrive.
fn time_to_first_datagram(cmd: &Command) -> Duration {
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    server
        .set_read_timeout(Some(STEP_TIMEOUT))
        .expect("timeout");
    let port = server.local_addr().expect("addr").port().to_string();
    let mut cmd = copy_command(cmd);
    cmd.args(["127.0.0.1", &port, "bench"])
        .env("CHAT_PASSWORD", "unused")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the client");
    let mut buf = [0u8; 2048];
    let got = server.recv_from(&mut buf);
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    got.expect("a first datagram");
    elapsed
}

/// `Command` is not `Clone`; rebuild one from its parts.
fn copy_command(cmd: &Command) -> Command {
    let mut copy = Command::new(cmd.get_program());
    copy.args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => copy.env(key, value),
            None => copy.env_remove(key),
        };
    }
    copy
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// `n` DM round trips from `client` (named `name`) to `peer` and back.
fn dm_round_trips(client: &mut Proc, name: &str, peer: &mut Proc, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        client.send(&format!("DM\npeer\nping {name} {i}"));
        peer.expect(&format!("[DM from {name}] ping {name} {i}"));
        peer.send(&format!("DM\n{name}\npong {name} {i}"));
        client.expect(&format!("[DM from peer] pong {name} {i}"));
        times.push(started.elapsed());
    }
    times
}

/// "median m ms (min a, max b)".
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:>8.2} ms (min {:.2}, max {:.2})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

/// A child with its stdout lines on a channel.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

fn spawn(cmd: &mut Command) -> Proc {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a child");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = crossbeam_channel::unbounded();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Proc {
        child,
        stdin,
        lines,
    }
}

impl Proc {
    fn send(&mut self, text: &str) {
        writeln!(self.stdin, "{text}")
            .and_then(|()| self.stdin.flush())
            .expect("write to a child");
    }

    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(wait) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?}"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Give EX a moment, then make sure.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
