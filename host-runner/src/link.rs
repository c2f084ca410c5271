//! The one UDP conversation the guest may have: a socket bound to an
//! ephemeral port and `connect()`ed to the server, so the kernel discards
//! datagrams from any other address before anyone reads them. With
//! fallbacks (other nodes of the same chat, `--fallback`), the socket is
//! `connect()`ed to one of them at a time, in turn, never to any other.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::Sender;

use crate::bindings::NetError;

/// Largest datagram the guest may send: the 1200 bytes every path carries
/// (the host's socket does not probe the path for more).
pub const MAX_DATAGRAM: usize = 1200;
/// Largest datagram from the server handed to the guest: the protocol's
/// largest, which a server sends only once the guest acknowledged a probe of
/// that size (`PROTOCOL.md` §3.9).
pub const MAX_INCOMING: usize = udpchat_core::wire::MAX_DATAGRAM;

/// Datagrams queued between the socket thread and the guest. When the guest
/// falls this far behind, newer datagrams are dropped, as a full socket
/// buffer would.
pub const QUEUE: usize = 1024;
/// How long one `recv` waits before the thread checks whether to stop.
const RECV_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause after a receive error, so a persistent one cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// What the socket thread delivers.
#[derive(Debug)]
pub enum Incoming {
    /// A datagram from the server.
    Datagram(Vec<u8>),
    /// The socket reported an error.
    Error(NetError),
}

/// A server the user named: `HOST[:PORT]`, the port defaulting to the
/// server's, read as `chatclient --fallback` reads it
/// ([`Peer::parse_server`]).
pub use udpchat_core::ui::HostPort as Peer;

/// The connected socket.
pub struct ServerLink {
    socket: UdpSocket,
    /// The server, then the fallbacks: the only addresses the socket is
    /// ever connected to.
    servers: Vec<SocketAddr>,
    /// Which of `servers` the socket is connected to.
    current: usize,
}

impl ServerLink {
    /// Resolves `host` (its first address, as `chatclient` does), binds an
    /// ephemeral port of the same address family and connects to the
    /// server. `fallbacks` (their first address of that family each) are
    /// the servers [`ServerLink::next_server`] turns to.
    pub fn connect(host: &str, port: u16, fallbacks: &[Peer]) -> anyhow::Result<Self> {
        let server = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let mut servers = vec![server];
        for f in fallbacks {
            let addr = (f.host.as_str(), f.port.unwrap_or(port))
                .to_socket_addrs()
                .with_context(|| format!("--fallback: cannot resolve {}", f.host))?
                .find(|a| a.is_ipv4() == server.is_ipv4())
                .with_context(|| {
                    format!("--fallback {}: no address of the server's family", f.host)
                })?;
            servers.push(addr);
        }
        let local: IpAddr = match server {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind((local, 0)).context("cannot open a UDP socket")?;
        socket
            .connect(server)
            .with_context(|| format!("cannot connect a UDP socket to {server}"))?;
        Ok(ServerLink {
            socket,
            servers,
            current: 0,
        })
    }

    /// The address of the server the socket is connected to now.
    pub fn server(&self) -> SocketAddr {
        self.servers[self.current]
    }

    /// How many fallbacks there are besides the server.
    pub fn fallbacks(&self) -> usize {
        self.servers.len() - 1
    }

    /// Connects the socket to the next server, in turn (the socket the
    /// receiving thread reads is the same one). Nothing changes when there
    /// is no other.
    pub fn next_server(&mut self) -> io::Result<SocketAddr> {
        if self.servers.len() > 1 {
            let next = (self.current + 1) % self.servers.len();
            self.socket.connect(self.servers[next])?;
            self.current = next;
        }
        Ok(self.server())
    }

    /// The local address (ephemeral port) the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram to the server, whole or not at all.
    pub fn send(&self, datagram: &[u8]) -> Result<(), NetError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(too_large());
        }
        match self.socket.send(datagram) {
            Ok(_) => Ok(()),
            Err(e) => Err(net_error(&e)),
        }
    }

    /// Starts the thread that receives datagrams and sends them to `tx`.
    /// It stops when `stop` is set or `tx` is disconnected.
    pub fn spawn_receiver(
        &self,
        tx: Sender<Incoming>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<thread::JoinHandle<()>> {
        let socket = self.socket.try_clone()?;
        socket.set_read_timeout(Some(RECV_TIMEOUT))?;
        thread::Builder::new()
            .name("udp-recv".into())
            .spawn(move || receive_loop(&socket, &tx, &stop))
    }
}

fn receive_loop(socket: &UdpSocket, tx: &Sender<Incoming>, stop: &AtomicBool) {
    // Large enough for any UDP payload, so an oversized one is seen whole
    // (and dropped) rather than silently cut to MAX_INCOMING.
    let mut buf = vec![0u8; 65_536];
    let mut dropped = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let item = match socket.recv(&mut buf) {
            Ok(n) if n > MAX_INCOMING => {
                tracing::debug!("dropped a {n}-byte datagram from the server");
                Incoming::Error(NetError::TooLarge(MAX_INCOMING as u32))
            }
            Ok(n) => Incoming::Datagram(buf[..n].to_vec()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                thread::sleep(ERROR_BACKOFF);
                Incoming::Error(net_error(&e))
            }
        };
        match tx.try_send(item) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                dropped += 1;
                if dropped.is_power_of_two() {
                    tracing::warn!("the guest is not keeping up: {dropped} datagrams dropped");
                }
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
        }
    }
}

fn too_large() -> NetError {
    NetError::TooLarge(MAX_DATAGRAM as u32)
}

/// Maps a socket error to what the guest is told.
pub fn net_error(e: &io::Error) -> NetError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => NetError::Unreachable,
        _ => NetError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_sends_are_refused_not_truncated() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let port = server.local_addr().expect("addr").port();
        let link = ServerLink::connect("127.0.0.1", port, &[]).expect("connect");
        assert!(matches!(
            link.send(&[0u8; MAX_DATAGRAM + 1]),
            Err(NetError::TooLarge(1200))
        ));
        link.send(&[7u8; MAX_DATAGRAM])
            .expect("a full-size datagram");
        let mut buf = [0u8; 2048];
        let (n, from) = server.recv_from(&mut buf).expect("the full-size one");
        assert_eq!(n, MAX_DATAGRAM);
        assert_eq!(from, link.local_addr().expect("local"));
        // Nothing else arrived: the refused one was not cut and sent.
        assert!(server.recv_from(&mut buf).is_err());
    }

    #[test]
    fn resolves_names() {
        let link = ServerLink::connect("localhost", 9, &[]).expect("connect");
        assert!(link.server().ip().is_loopback());
    }

    #[test]
    fn fallbacks_are_taken_in_turn_and_only_they() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for s in [&a, &b, &other] {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
        }
        let (a_port, b_port) = (
            a.local_addr().expect("addr").port(),
            b.local_addr().expect("addr").port(),
        );
        let fallback = Peer::parse_server(&format!("127.0.0.1:{b_port}")).expect("a peer");
        let mut link = ServerLink::connect("127.0.0.1", a_port, &[fallback]).expect("connect");
        assert_eq!(link.fallbacks(), 1);
        let mut buf = [0u8; 16];
        link.send(b"to a").expect("send");
        assert_eq!(a.recv(&mut buf).expect("at a"), 4);
        assert_eq!(link.next_server().expect("next").port(), b_port);
        link.send(b"to b").expect("send");
        assert_eq!(b.recv(&mut buf).expect("at b"), 4);
        // Only the current server is heard.
        let me = link.local_addr().expect("local");
        a.send_to(b"old", me).expect("send");
        other.send_to(b"stranger", me).expect("send");
        b.send_to(b"new", me).expect("send");
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let _thread = link.spawn_receiver(tx, stop.clone()).expect("thread");
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Incoming::Datagram(d)) => assert_eq!(d, b"new"),
            other => panic!("expected b's datagram, got {other:?}"),
        }
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        // Back to the server after the last fallback.
        assert_eq!(link.next_server().expect("next").port(), a_port);
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn peers_read_as_chatclient_reads_them() {
        let p = |s: &str| Peer::parse_server(s);
        assert_eq!(
            p("node-b:7001"),
            Ok(Peer {
                host: "node-b".into(),
                port: Some(7001)
            })
        );
        assert_eq!(
            p("[::1]:7001"),
            Ok(Peer {
                host: "::1".into(),
                port: Some(7001)
            })
        );
        assert_eq!(
            p("::1"),
            Ok(Peer {
                host: "::1".into(),
                port: None
            })
        );
        assert_eq!(
            p("node-b"),
            Ok(Peer {
                host: "node-b".into(),
                port: None
            })
        );
        for bad in [
            "", ":7001", "node-b:0", "node-b:x", "[::1", "[::1]x", "1:2:zz",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
    }
}
