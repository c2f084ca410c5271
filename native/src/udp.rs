//! Batched UDP I/O for the server's event loop: many datagrams per system
//! call where the OS offers it (`recvmmsg` and `sendmmsg` on Linux, through
//! `nix`'s safe wrappers), one `recv_from`/`send_to` per datagram elsewhere.
//! Every path behaves the same for the loop: reads never block, and never
//! more than [`BATCH`] datagrams move per call.
//!
//! On Linux a run of datagrams to one address, all of one size but the
//! last, goes out in one `sendmsg` with a `UDP_SEGMENT` control message
//! (generic segmentation offload: the kernel cuts it into the datagrams),
//! where the kernel supports it; a kernel that refuses it at a send (`EIO`,
//! `EINVAL`) turns it off for the socket's life.
//!
//! On Unix the loop waits for the socket with mio. On Windows a thread
//! blocks in `recv_from` and hands datagrams over, waking the loop: the
//! socket is never registered with mio's AFD polling there, whose pending
//! poll has kept a killed server's port bound under Wine.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
#[cfg(windows)]
use std::sync::Arc;

/// The server's socket, as its event loop uses it.
pub struct ServerSocket {
    #[cfg(not(windows))]
    socket: mio::net::UdpSocket,
    #[cfg(windows)]
    socket: Arc<std::net::UdpSocket>,
    /// Datagrams read by the receiving thread.
    #[cfg(windows)]
    incoming: crossbeam_channel::Receiver<(SocketAddr, Vec<u8>)>,
    /// Runs of datagrams to one address go out in one send (Linux GSO).
    #[cfg(target_os = "linux")]
    gso: std::sync::atomic::AtomicBool,
}

/// Datagrams the Windows receiving thread holds for the loop, at most; more
/// are dropped, as a full socket buffer would.
#[cfg(windows)]
const INCOMING_QUEUE: usize = 8192;

impl ServerSocket {
    /// Takes a bound socket. The loop's `poll` hears of datagrams through
    /// `token` (Unix) or `waker` (Windows). With `gso`, runs of datagrams
    /// to one address go out in one send where [`gso_supported`].
    pub fn new(
        socket: std::net::UdpSocket,
        registry: &mio::Registry,
        token: mio::Token,
        waker: std::sync::Arc<mio::Waker>,
        gso: bool,
    ) -> io::Result<ServerSocket> {
        #[cfg(not(windows))]
        {
            drop(waker);
            #[cfg(target_os = "linux")]
            let gso = std::sync::atomic::AtomicBool::new(gso && gso_supported(&socket));
            #[cfg(not(target_os = "linux"))]
            let _ = gso;
            socket.set_nonblocking(true)?;
            let mut socket = mio::net::UdpSocket::from_std(socket);
            registry.register(
                &mut socket,
                token,
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )?;
            Ok(ServerSocket {
                socket,
                #[cfg(target_os = "linux")]
                gso,
            })
        }
        #[cfg(windows)]
        {
            let _ = (registry, token, gso);
            let socket = Arc::new(socket);
            let reader = socket.clone();
            let (tx, incoming) = crossbeam_channel::bounded(INCOMING_QUEUE);
            std::thread::Builder::new()
                .name("udp-recv".into())
                .spawn(move || {
                    let mut buf = vec![0u8; SLOT];
                    loop {
                        match reader.recv_from(&mut buf) {
                            Ok((n, from)) => {
                                let was_empty = tx.is_empty();
                                if let Err(crossbeam_channel::TrySendError::Disconnected(_)) =
                                    tx.try_send((from, buf[..n].to_vec()))
                                {
                                    return;
                                }
                                if was_empty {
                                    let _ = waker.wake();
                                }
                            }
                            Err(e) if transient(&e) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "receive failed");
                                std::thread::sleep(std::time::Duration::from_millis(10));
                            }
                        }
                    }
                })?;
            Ok(ServerSocket { socket, incoming })
        }
    }
}

/// Datagrams moved per call.
pub const BATCH: usize = 64;

/// Whether the kernel cuts a run of datagrams sent at once (Linux's
/// `UDP_SEGMENT`, since 4.18): the socket option reads back. Elsewhere
/// false.
pub fn gso_supported(socket: &std::net::UdpSocket) -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::UdpGsoSegment).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
}

/// Datagrams in one GSO send, at most (the kernel's `UDP_MAX_SEGMENTS`
/// is 64 before Linux 6.9).
#[cfg(target_os = "linux")]
const GSO_MAX_SEGMENTS: usize = 64;

/// Bytes in one GSO send, at most: an IPv4 datagram's payload.
#[cfg(target_os = "linux")]
const GSO_MAX_BYTES: usize = 65_507 - 8;

/// How many datagrams from the start of `batch` make one GSO send: to one
/// address, each as long as the first but the last, which may be shorter.
#[cfg(target_os = "linux")]
fn gso_run(batch: &[Outgoing<'_>]) -> usize {
    let Some(first) = batch.first() else {
        return 0;
    };
    let size = first.bytes.len();
    let mut total = size;
    let mut n = 1;
    while let Some(o) = batch.get(n) {
        let len = o.bytes.len();
        if n == GSO_MAX_SEGMENTS
            || o.to != first.to
            || len > size
            || len == 0
            || total + len > GSO_MAX_BYTES
        {
            break;
        }
        total += len;
        n += 1;
        if len < size {
            break;
        }
    }
    n
}

/// Room for one received datagram: more than the protocol's largest, so
/// that a longer (invalid) datagram is seen as such rather than cut.
pub const SLOT: usize = udpchat_core::wire::MAX_DATAGRAM + 1;

/// Sets the don't-fragment bit on the socket's datagrams, so that a datagram
/// larger than the path carries is lost rather than cut into IP fragments
/// (Linux: `IP_PMTUDISC_PROBE`, which also ignores the kernel's own path MTU
/// cache; macOS: `IP_DONTFRAG`). Returns whether it could: only then may the
/// endpoint probe the path for datagrams larger than 1200 bytes
/// (`PROTOCOL.md` §3.9). Elsewhere (Windows) it returns false and the
/// endpoint keeps to 1200 bytes.
pub fn forbid_fragmentation(socket: &std::net::UdpSocket) -> bool {
    let Ok(local) = socket.local_addr() else {
        return false;
    };
    #[cfg(target_os = "linux")]
    {
        use rustix::net::sockopt::{
            Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, set_ip_mtu_discover, set_ipv6_mtu_discover,
        };
        if local.is_ipv4() {
            set_ip_mtu_discover(socket, Ipv4PathMtuDiscovery::PROBE).is_ok()
        } else {
            // A dual-stack socket sends IPv4 too, under the IPv4 setting.
            let v6 = set_ipv6_mtu_discover(socket, Ipv6PathMtuDiscovery::PROBE).is_ok();
            let v4 = set_ip_mtu_discover(socket, Ipv4PathMtuDiscovery::PROBE).is_ok();
            v6 && (v4 || socket_is_v6_only(socket))
        }
    }
    #[cfg(target_vendor = "apple")]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        if local.is_ipv4() {
            setsockopt(socket, sockopt::IpDontFrag, &true).is_ok()
        } else {
            let v6 = setsockopt(socket, sockopt::Ipv6DontFrag, &true).is_ok();
            let v4 = setsockopt(socket, sockopt::IpDontFrag, &true).is_ok();
            v6 && (v4 || socket_is_v6_only(socket))
        }
    }
    #[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
    {
        let _ = local;
        false
    }
}

#[cfg(any(target_os = "linux", target_vendor = "apple"))]
fn socket_is_v6_only(socket: &std::net::UdpSocket) -> bool {
    socket2::SockRef::from(socket).only_v6().unwrap_or(false)
}

/// The largest datagram an endpoint on `socket` may probe the path for:
/// the protocol's largest where the socket forbids fragmentation, else the
/// 1200 bytes every path carries.
pub fn max_datagram(socket: &std::net::UdpSocket) -> usize {
    if forbid_fragmentation(socket) {
        udpchat_core::wire::MAX_DATAGRAM
    } else {
        udpchat_core::wire::BASE_DATAGRAM
    }
}

/// Whether a receive error only concerns one earlier datagram (Windows
/// reports an ICMP port unreachable for a previous send as
/// `WSAECONNRESET` on the next receive) or an interrupted call: read on.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused | ErrorKind::Interrupted
    )
}

/// Buffers for receiving up to [`BATCH`] datagrams at once.
pub struct RecvBatch {
    bufs: Vec<[u8; SLOT]>,
    /// Per datagram read: its slot, length and sender.
    got: Vec<(usize, usize, SocketAddr)>,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Empty buffers.
    pub fn new() -> Self {
        RecvBatch {
            bufs: vec![[0; SLOT]; BATCH],
            got: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Reads what is waiting, up to [`BATCH`] datagrams, without blocking.
    /// Returns how many were read: 0 when the socket has nothing more.
    pub fn recv(&mut self, socket: &ServerSocket) -> io::Result<usize> {
        self.got.clear();
        loop {
            match self.recv_some(socket) {
                Ok(()) => return Ok(self.got.len()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(self.got.len()),
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The `i`th datagram read by the last [`RecvBatch::recv`]: its sender
    /// and bytes. Longer than `SLOT` bytes shows as exactly `SLOT` bytes.
    pub fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (slot, len, from) = self.got[i];
        (from, &self.bufs[slot][..len])
    }

    #[cfg(target_os = "linux")]
    fn recv_some(&mut self, socket: &ServerSocket) -> io::Result<()> {
        use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let results = recvmmsg(
            socket.socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut read = 0;
        for (slot, r) in results.enumerate() {
            read += 1;
            let from = r.address.as_ref().and_then(|a: &SockaddrStorage| {
                if let Some(v4) = a.as_sockaddr_in() {
                    Some(SocketAddr::V4((*v4).into()))
                } else {
                    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
                }
            });
            // A datagram without an IP source address cannot be answered:
            // it is dropped here.
            if let Some(from) = from {
                self.got.push((slot, r.bytes, from));
            }
        }
        if read == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(())
    }

    #[cfg(windows)]
    fn recv_some(&mut self, socket: &ServerSocket) -> io::Result<()> {
        while self.got.len() < BATCH {
            let Ok((from, bytes)) = socket.incoming.try_recv() else {
                break;
            };
            let i = self.got.len();
            let n = bytes.len().min(SLOT);
            self.bufs[i][..n].copy_from_slice(&bytes[..n]);
            self.got.push((i, n, from));
        }
        Ok(())
    }

    #[cfg(all(not(target_os = "linux"), not(windows)))]
    fn recv_some(&mut self, socket: &ServerSocket) -> io::Result<()> {
        while self.got.len() < BATCH {
            let i = self.got.len();
            match socket.socket.recv_from(&mut self.bufs[i]) {
                Ok((n, from)) => self.got.push((i, n, from)),
                Err(e) if transient(&e) => continue,
                Err(e) if !self.got.is_empty() && e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One datagram to send.
pub struct Outgoing<'a> {
    pub to: SocketAddr,
    pub bytes: &'a [u8],
}

/// Sends the datagrams of `batch` in order, up to [`BATCH`] of them, without
/// blocking. Returns how many went out; `Err(WouldBlock)` when the socket
/// buffer is full before the first. A datagram the OS refuses for its own
/// reasons (no route, a reserved address) counts as sent, as a datagram
/// lost on the way would: the reliable channel recovers.
pub fn send_batch(socket: &ServerSocket, batch: &[Outgoing<'_>]) -> io::Result<usize> {
    let batch = &batch[..batch.len().min(BATCH)];
    let mut sent = 0;
    while sent < batch.len() {
        match send_some(socket, &batch[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return if sent == 0 { Err(e) } else { Ok(sent) };
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(to = %batch[sent].to, error = %e, "send failed");
                sent += 1;
            }
        }
    }
    Ok(sent)
}

#[cfg(target_os = "linux")]
fn send_some(socket: &ServerSocket, batch: &[Outgoing<'_>]) -> io::Result<usize> {
    use std::sync::atomic::Ordering::Relaxed;
    let gso = socket.gso.load(Relaxed);
    if gso {
        let run = gso_run(batch);
        if run >= 2 {
            match send_gso(socket, &batch[..run]) {
                Ok(()) => return Ok(run),
                Err(e)
                    if e.raw_os_error() == Some(nix::errno::Errno::EIO as i32)
                        || e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) =>
                {
                    tracing::warn!(error = %e, "the kernel refuses segmentation offload; sending datagrams one by one");
                    socket.gso.store(false, Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Up to the next run that one GSO send can take.
    let mut end = 1;
    while end < batch.len() && !(gso && gso_run(&batch[end..]) >= 2) {
        end += 1;
    }
    send_each(socket, &batch[..end])
}

/// Sends a run of datagrams to one address in one `sendmsg`, cut by the
/// kernel at the first one's length.
#[cfg(target_os = "linux")]
fn send_gso(socket: &ServerSocket, run: &[Outgoing<'_>]) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let Some(first) = run.first() else {
        return Ok(());
    };
    let segment =
        u16::try_from(first.bytes.len()).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let iovs: Vec<IoSlice<'_>> = run.iter().map(|o| IoSlice::new(o.bytes)).collect();
    let addr = match first.to {
        SocketAddr::V4(v4) => SockaddrStorage::from(v4),
        SocketAddr::V6(v6) => SockaddrStorage::from(v6),
    };
    sendmsg(
        socket.socket.as_raw_fd(),
        &iovs,
        &[ControlMessage::UdpGsoSegments(&segment)],
        MsgFlags::MSG_DONTWAIT,
        Some(&addr),
    )
    .map_err(io::Error::from)?;
    Ok(())
}

/// Sends datagrams each on its own, in one `sendmmsg`.
#[cfg(target_os = "linux")]
fn send_each(socket: &ServerSocket, batch: &[Outgoing<'_>]) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let iovs: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|o| [IoSlice::new(o.bytes)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = batch
        .iter()
        .map(|o| {
            Some(match o.to {
                SocketAddr::V4(v4) => SockaddrStorage::from(v4),
                SocketAddr::V6(v6) => SockaddrStorage::from(v6),
            })
        })
        .collect();
    let cmsgs: [ControlMessage<'_>; 0] = [];
    SEND_HEADERS.with_borrow_mut(|headers| {
        // Made once per sending thread, for a whole batch, and reused.
        let headers = headers
            .get_or_insert_with(|| MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None));
        let results = sendmmsg(
            socket.socket.as_raw_fd(),
            headers,
            &iovs,
            &addrs,
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(results.count())
    })
}

#[cfg(target_os = "linux")]
thread_local! {
    /// `sendmmsg`'s message headers, [`BATCH`] of them, for [`send_each`].
    static SEND_HEADERS: std::cell::RefCell<Option<nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(not(target_os = "linux"))]
fn send_some(socket: &ServerSocket, batch: &[Outgoing<'_>]) -> io::Result<usize> {
    socket
        .socket
        .send_to(batch[0].bytes, batch[0].to)
        .map(|_| 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run to one address of one size but the last goes out whole, with
    /// the socket's segmentation offload on or off, and arrives as the
    /// datagrams it was made of.
    #[test]
    fn runs_to_one_address_arrive_as_their_datagrams() {
        for gso in [true, false] {
            let poll = mio::Poll::new().unwrap();
            let waker =
                std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).unwrap());
            let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let socket =
                ServerSocket::new(server, poll.registry(), mio::Token(0), waker, gso).unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = peer.local_addr().unwrap();
            let payloads: Vec<Vec<u8>> = [1000, 1000, 1000, 400, 1000, 1000]
                .iter()
                .enumerate()
                .map(|(i, &n)| vec![i as u8; n])
                .collect();
            let mut batch: Vec<Outgoing<'_>> =
                payloads.iter().map(|p| Outgoing { to, bytes: p }).collect();
            // One for another address in the middle ends the run.
            batch.insert(
                5,
                Outgoing {
                    to: other.local_addr().unwrap(),
                    bytes: b"elsewhere",
                },
            );
            let mut sent = 0;
            while sent < batch.len() {
                sent += send_batch(&socket, &batch[sent..]).unwrap();
            }
            peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 2048];
            for p in &payloads {
                let n = peer.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &p[..], "gso {gso}");
            }
            other
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let n = other.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"elsewhere");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_run_is_one_address_and_one_size_but_the_last() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let big = [0u8; 1000];
        let small = [0u8; 10];
        let o = |to, bytes| Outgoing { to, bytes };
        assert_eq!(
            gso_run(&[o(a, &big[..]), o(a, &big[..]), o(a, &small[..])]),
            3
        );
        assert_eq!(
            gso_run(&[o(a, &big[..]), o(a, &small[..]), o(a, &small[..])]),
            2
        );
        assert_eq!(gso_run(&[o(a, &small[..]), o(a, &big[..])]), 1);
        assert_eq!(gso_run(&[o(a, &big[..]), o(b, &big[..])]), 1);
        let many: Vec<Outgoing<'_>> = (0..100).map(|_| o(a, &small[..])).collect();
        assert_eq!(gso_run(&many), GSO_MAX_SEGMENTS);
        let huge = vec![0u8; 16_384];
        let large: Vec<Outgoing<'_>> = (0..10).map(|_| o(a, &huge[..])).collect();
        assert_eq!(gso_run(&large), 3);
    }
}
