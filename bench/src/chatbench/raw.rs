//! The machine's raw UDP ceiling: the bench's own receivers fed by one
//! thread sending plain datagrams, as fast as it can, round-robin to all of
//! them — first with `send_to`, then (on Linux) with `sendmmsg` in batches.
//! The receivers count these datagrams (they start with
//! [`super::fleet::RAW_MAGIC`]) while their chat sessions stay
//! open.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::fleet::{RAW_MAGIC, Shared};

/// One raw run.
#[derive(Clone, Copy, Debug)]
pub struct RawRun {
    /// Datagrams the sender handed to the kernel.
    pub sent: u64,
    /// Datagrams the receivers read while the sender sent.
    pub received: u64,
    /// Datagrams the receivers read in all (the backlog drained after).
    pub received_total: u64,
    /// How long the sender sent.
    pub seconds: f64,
}

impl RawRun {
    /// Datagrams received per second while sending.
    pub fn per_sec(&self) -> f64 {
        self.received as f64 / self.seconds.max(1e-9)
    }

    /// Datagrams sent and never read.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received_total)
    }
}

fn sender_socket(first: SocketAddr) -> Result<UdpSocket> {
    let local = match first.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    UdpSocket::bind(SocketAddr::new(local, 0)).context("cannot open the raw sender's socket")
}

fn datagram(size: usize) -> Vec<u8> {
    let mut d = RAW_MAGIC.to_vec();
    d.resize(size.max(RAW_MAGIC.len()), b'x');
    d
}

/// Counts what the receivers read during and after `send`, which sends
/// until its deadline and returns how many datagrams it sent.
fn measure(shared: &Shared, seconds: Duration, send: impl FnOnce(Instant) -> u64) -> RawRun {
    let before = shared.raw_received.load(Relaxed);
    let start = Instant::now();
    let sent = send(start + seconds);
    let elapsed = start.elapsed();
    let received = shared.raw_received.load(Relaxed) - before;
    // Let the receivers drain their socket buffers, for the loss count.
    let mut last = received;
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(20));
        let now = shared.raw_received.load(Relaxed) - before;
        if now == last {
            break;
        }
        last = now;
    }
    RawRun {
        sent,
        received,
        received_total: shared.raw_received.load(Relaxed) - before,
        seconds: elapsed.as_secs_f64(),
    }
}

/// A plain `send_to` loop.
pub fn send_to_loop(
    shared: &Shared,
    targets: &[SocketAddr],
    size: usize,
    seconds: Duration,
) -> Result<RawRun> {
    let Some(&first) = targets.first() else {
        anyhow::bail!("no receivers for the raw ceiling");
    };
    let socket = sender_socket(first)?;
    let d = datagram(size);
    Ok(measure(shared, seconds, |deadline| {
        let mut sent = 0u64;
        let mut i = 0;
        while Instant::now() < deadline {
            for _ in 0..256 {
                if socket.send_to(&d, targets[i]).is_ok() {
                    sent += 1;
                }
                i = (i + 1) % targets.len();
            }
        }
        sent
    }))
}

/// `sendmmsg` in batches of 64, through `nix`'s safe wrapper (the workspace
/// forbids `unsafe`).
#[cfg(target_os = "linux")]
pub fn sendmmsg_loop(
    shared: &Shared,
    targets: &[SocketAddr],
    size: usize,
    seconds: Duration,
) -> Result<Option<RawRun>> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    const BATCH: usize = 64;
    let Some(&first) = targets.first() else {
        anyhow::bail!("no receivers for the raw ceiling");
    };
    let socket = sender_socket(first)?;
    let d = datagram(size);
    let addrs: Vec<SockaddrStorage> = targets
        .iter()
        .map(|a| match *a {
            SocketAddr::V4(v4) => SockaddrStorage::from(v4),
            SocketAddr::V6(v6) => SockaddrStorage::from(v6),
        })
        .collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = vec![[IoSlice::new(&d)]; BATCH];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut batch: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    let mut failed = None;
    let run = measure(shared, seconds, |deadline| {
        let mut sent = 0u64;
        let mut i = 0;
        while Instant::now() < deadline {
            for _ in 0..4 {
                batch.clear();
                for _ in 0..BATCH {
                    batch.push(Some(addrs[i]));
                    i = (i + 1) % addrs.len();
                }
                let cmsgs: [ControlMessage<'_>; 0] = [];
                match sendmmsg(
                    socket.as_raw_fd(),
                    &mut headers,
                    &iovs,
                    &batch,
                    cmsgs,
                    MsgFlags::empty(),
                ) {
                    Ok(results) => sent += results.count() as u64,
                    Err(e) => {
                        failed = Some(e);
                        return sent;
                    }
                }
            }
        }
        sent
    });
    match failed {
        Some(e) if run.sent == 0 => {
            eprintln!("chatbench: sendmmsg failed ({e}); no sendmmsg figure");
            Ok(None)
        }
        _ => Ok(Some(run)),
    }
}

/// `sendmmsg` is Linux's: elsewhere there is no such figure.
#[cfg(not(target_os = "linux"))]
pub fn sendmmsg_loop(
    _shared: &Shared,
    _targets: &[SocketAddr],
    _size: usize,
    _seconds: Duration,
) -> Result<Option<RawRun>> {
    Ok(None)
}
