//! A `redis-server` of the test's own: a free loopback port, a temporary
//! directory, the persistence settings under which an acknowledged write
//! survives a restart (AOF, fsync on every write), killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a redis-server on a free loopback port and waits until it
    /// answers PING. Panics, saying how to install it, when there is none.
    pub fn start() -> Redis {
        let dir = super::temp_dir();
        for _ in 0..10 {
            let port = free_tcp_port();
            if let Some(child) = spawn(port, dir.path()) {
                return Redis {
                    child: Some(child),
                    port,
                    dir,
                };
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }

    /// The URL nodes are given with `--cluster`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The URL of a node that connects as the ACL user `user` (made by
    /// the caller with `ACL SETUSER`) with `password`.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): what it acknowledged is in its AOF.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (the AOF is read back).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + super::TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = spawn(self.port, self.dir.path()) {
                self.child = Some(child);
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not start again on port {}", self.port);
    }

    /// Sends one command (inline form) and returns the first line of the
    /// answer (of a bulk string: the string).
    pub fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(super::TIMEOUT))
            .expect("a read timeout");
        write!(stream, "{line}\r\n").expect("write to redis");
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("read from redis");
        if answer.starts_with('$') && !answer.starts_with("$-1") {
            answer.clear();
            reader.read_line(&mut answer).expect("read from redis");
        }
        answer.trim_end().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
        .port()
}

/// Starts redis-server on `port` with its files in `dir`; None if it exited
/// (the port was taken meanwhile) or did not answer PING in time.
fn spawn(port: u16, dir: &Path) -> Option<Child> {
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot start redis-server ({e}): install Redis 7 (bash ci/setup.sh does, with apt)"
        ),
    };
    let deadline = Instant::now() + super::TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if ping(port) {
            return Some(child);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether a Redis server on `port` answers PING.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).is_ok() && answer.starts_with("+PONG")
}
