//! The server under test: the bench's own `chatserver` (started from the
//! same build, with benchmarking limits), or any running one; its CPU time
//! and memory from `/proc` when it runs on this machine.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use udpchat_native::keys::load_or_create_server_key;
use udpchat_native::store::UserRecord;

/// Linux reports process times in USER_HZ ticks, 100 per second on every
/// architecture it supports (`sysconf(_SC_CLK_TCK)`).
const CLK_TCK: f64 = 100.0;

/// CPU time and memory of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// User plus system CPU time, seconds.
    pub cpu_sec: f64,
    /// Resident set size now, KiB.
    pub rss_kb: u64,
    /// Peak resident set size, KiB.
    pub hwm_kb: u64,
}

/// Reads `/proc/<pid>` (`"self"` for this process); `None` off Linux or when
/// the process is gone.
pub fn sample(pid: &str) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_sec: ticks as f64 / CLK_TCK,
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
    })
}

/// CPU time of the whole machine since boot, in seconds: (busy, total),
/// from the first line of `/proc/stat`; busy excludes idle and iowait.
pub fn machine_cpu() -> Option<(f64, f64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already in user and nice).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some(((total - idle) as f64 / CLK_TCK, total as f64 / CLK_TCK))
}

/// Datagrams the kernel dropped at UDP sockets (full receive buffer), from
/// the `drops` column of `/proc/net/udp{,6}`: at the sockets bound to
/// `server_port`, and at those bound to any of `bench_ports`. `None` off
/// Linux.
pub fn udp_drops(server_port: u16, bench_ports: &HashSet<u16>) -> Option<(u64, u64)> {
    let mut found = false;
    let (mut server, mut bench) = (0, 0);
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        found = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f
                .get(1)
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let drops = f.get(12).and_then(|d| d.parse::<u64>().ok());
            let (Some(port), Some(drops)) = (port, drops) else {
                continue;
            };
            if port == server_port {
                server += drops;
            } else if bench_ports.contains(&port) {
                bench += drops;
            }
        }
    }
    found.then_some((server, bench))
}

/// The process on this machine that owns a UDP socket bound to `port`, from
/// `/proc/net/udp{,6}` and `/proc/<pid>/fd`; `None` if it cannot be told.
pub fn find_udp_owner(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = f.get(1) else { continue };
            let Some((_, p)) = local.rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() == Some(port)
                && let Some(inode) = f.get(9)
                && *inode != "0"
            {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path())
                && inodes.iter().any(|i| link.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Parses a 32-byte key written as 64 hex digits.
pub fn parse_key(hex: &str) -> Result<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        bail!("a server key is 64 hex digits, got {hex:?}");
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .with_context(|| format!("not a hex key: {hex:?}"))?;
    }
    Ok(key)
}

/// The user store's file, version 1 (see `udpchat_native::store`).
#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u64,
    users: Vec<UserRecord>,
}

/// Makes sure the user store at `path` has an account for each name, all
/// with `password`: one argon2id hash is computed and shared, and the file
/// is written once, so that thousands of accounts cost one hash rather than
/// thousands of registrations.
pub fn seed_accounts(path: &Path, names: &[String], password: &str) -> Result<usize> {
    let mut file = match fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<StoreFile>(&bytes)
            .with_context(|| format!("cannot read the user store {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile {
            version: 1,
            users: Vec::new(),
        },
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let known: std::collections::HashSet<String> = file
        .users
        .iter()
        .map(|u| u.name.to_ascii_lowercase())
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !known.contains(&n.to_ascii_lowercase()))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let hash = udpchat_native::passwords::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the bench password: {e}"))?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for name in &missing {
        file.users.push(UserRecord {
            name: (*name).clone(),
            password_hash: hash.clone(),
            created,
            suspended: None,
        });
    }
    let tmp = path.with_extension("json.tmp");
    let mut bytes = serde_json::to_vec_pretty(&file)?;
    bytes.push(b'\n');
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(missing.len())
}

/// How to start the bench's own server.
pub struct OwnServerOptions {
    /// Where the users file, the key and the log go.
    pub dir: PathBuf,
    /// Whether `dir` is the bench's to delete at the end.
    pub temporary: bool,
    /// Accounts to create beforehand.
    pub accounts: Vec<String>,
    pub password: String,
    pub hash_workers: Option<usize>,
    /// The server's `RUST_LOG`.
    pub log_level: String,
    /// The address it binds.
    pub bind: String,
    /// The network namespace it runs in (`ip netns exec`), if any.
    pub netns: Option<String>,
    /// Its `--max-datagram`, if set.
    pub max_datagram: Option<u16>,
}

/// A `chatserver` started by the bench; stopped (and its temporary
/// directory removed) when dropped.
pub struct OwnServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its public key.
    pub key: [u8; 32],
    /// Its process id.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    dir: PathBuf,
    temporary: bool,
}

/// The `chatserver` next to this executable.
pub fn chatserver_exe() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find chatbench's own path")?;
    let exe = me
        .parent()
        .context("chatbench has no directory")?
        .join(format!("chatserver{}", std::env::consts::EXE_SUFFIX));
    if !exe.exists() {
        bail!(
            "no chatserver next to chatbench ({}): build it (cargo build --release -p udpchat-native) or pass --server",
            exe.display()
        );
    }
    Ok(exe)
}

impl OwnServer {
    /// Seeds the accounts, reads (or creates) the key, starts the server on
    /// a free loopback port and waits for its `listening on` line.
    pub fn start(o: &OwnServerOptions) -> Result<OwnServer> {
        let exe = chatserver_exe()?;
        fs::create_dir_all(&o.dir).with_context(|| format!("cannot create {}", o.dir.display()))?;
        let users = o.dir.join("users.json");
        let key_path = o.dir.join("server.key");
        let created = seed_accounts(&users, &o.accounts, &o.password)?;
        if created > 0 {
            eprintln!(
                "chatbench: {created} accounts written to {}",
                users.display()
            );
        }
        // The key the server will load; created here on a first run, as the
        // server would.
        let key = *load_or_create_server_key(&key_path)
            .map_err(anyhow::Error::msg)?
            .public();
        let log = o.dir.join("server.log");
        // `ip netns exec` execs the server: the child's pid is the server's.
        let mut cmd = match &o.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        if let Some(m) = o.max_datagram {
            cmd.args(["--max-datagram", &m.to_string()]);
        }
        cmd.arg("--bind")
            .arg(&o.bind)
            .arg("--users")
            .arg(&users)
            .arg("--key")
            .arg(&key_path)
            .args(["--status-interval", "0"])
            .args(["--max-sessions", "20000"])
            .args(["--max-sessions-per-ip", "20000"])
            .args(["--max-handshaking", "20000"])
            .args(["--max-handshaking-per-ip", "20000"])
            // Every simulated user logs in from one address: the failed-login
            // budget per address is charged while checks are in flight.
            .args(["--login-failures-per-min", "1000000"])
            .args(["--handshake-burst", "100000"])
            .args(["--handshakes-per-sec", "100000"])
            .args(["--message-burst", "1000000"])
            .args(["--messages-per-sec", "1000000"])
            .args(["--max-queued-bytes", "8388608"])
            // Simulated users have short passwords.
            .args(["--min-password-chars", "1"]);
        if let Some(n) = o.hash_workers {
            cmd.args(["--hash-workers", &n.to_string()]);
        }
        cmd.arg("0")
            .env("RUST_LOG", &o.log_level)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                fs::File::create(&log)
                    .with_context(|| format!("cannot create {}", log.display()))?,
            );
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if !sent && let Some(a) = line.strip_prefix("listening on ") {
                        let _ = tx.send(a.trim().to_string());
                        sent = true;
                    }
                }
            })?;
        let mut server = OwnServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            key,
            pid,
            log,
            dir: o.dir.clone(),
            temporary: o.temporary,
        };
        let line = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            anyhow::anyhow!(
                "chatserver did not say where it listens; its log: {}",
                server.log.display()
            )
        })?;
        server.addr = line
            .parse()
            .with_context(|| format!("chatserver printed an odd address: {line:?}"))?;
        Ok(server)
    }

    /// Asks the server to stop (SIGTERM), then kills it after 5 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use nix::sys::signal::{Signal, kill};
            use nix::unistd::Pid;
            if let Ok(pid) = i32::try_from(self.pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the server still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
        if self.temporary {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh temporary directory for the bench's own server.
pub fn temp_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("chatbench-{}-{nanos}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        let k = parse_key(&"0a".repeat(32)).unwrap();
        assert_eq!(k, [10; 32]);
        assert!(parse_key("zz").is_err());
        assert!(parse_key(&"g0".repeat(32)).is_err());
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        if cfg!(target_os = "linux") {
            let s = sample("self").unwrap();
            assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb);
            assert!(udp_drops(1, &HashSet::new()).is_some());
            let (busy, total) = machine_cpu().unwrap();
            assert!(busy > 0.0 && total >= busy);
        }
    }
}
