//! `chatserver --metrics`: the server's counters in Prometheus's text
//! format, served at `GET /metrics` by a thread of its own.
//!
//! The datagram loop never waits for this thread: it keeps its counters
//! itself and now and then copies them into a [`Published`] snapshot
//! (skipping the copy when a scrape is reading it). A scrape encodes the
//! latest snapshot and the chat store writer's [`WriterStats`] with
//! `prometheus-client`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tracing::{debug, warn};
use udpchat_core::server::ServerStats;

use crate::chatstore::{LiveStats, WriterStats};
use crate::cluster::ClusterStats;

/// Upper bounds, in seconds, of the buckets of the loop's turn times and
/// of the chat store's commit times: 10 µs to 2.5 s.
pub const BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 2.5,
];

/// A histogram of durations over [`BUCKETS`], kept by one thread and
/// copied to the metrics thread.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    /// The sum of the observations, in seconds.
    sum: f64,
    /// Observations.
    count: u64,
}

impl Histogram {
    /// Counts one duration.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.partition_point(|&le| le < secs);
        self.counts[i] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// Observations so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The buckets as `prometheus-client` takes them: upper bound and
    /// the (non-cumulative) count of each.
    fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts)
            .collect()
    }
}

/// What the datagram loop publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The server's counters.
    pub stats: ServerStats,
    /// Sessions open, logged in or not.
    pub sessions: u64,
    /// Users logged in.
    pub users_online: u64,
    /// Rooms on the server.
    pub rooms: u64,
    /// Direct messages waiting for offline users.
    pub offline_messages: u64,
    /// Initials waiting for their handshake.
    pub queued_initials: u64,
    /// For a node of a cluster: what its threads know of Redis and the
    /// other nodes, and the users online on other nodes.
    pub cluster: Option<(ClusterStats, u64)>,
    /// Segments the server sent again, over every session.
    pub retransmissions: u64,
    /// Datagrams longer than the protocol allows, dropped before the
    /// server saw them.
    pub dropped_oversized: u64,
    /// The work of each turn of the loop (the wait for the socket not
    /// included).
    pub turns: Histogram,
}

/// The latest [`Snapshot`], shared between the loop and the metrics
/// thread.
#[derive(Clone, Debug, Default)]
pub struct Published(Arc<Mutex<Snapshot>>);

impl Published {
    /// Replaces the snapshot, unless a scrape is copying it right now:
    /// never waits.
    pub fn publish(&self, snapshot: &Snapshot) {
        match self.0.try_lock() {
            Ok(mut s) => *s = *snapshot,
            Err(TryLockError::Poisoned(e)) => *e.into_inner() = *snapshot,
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// A copy of the latest snapshot.
    #[must_use]
    pub fn get(&self) -> Snapshot {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The address of `--metrics`: `HOST:PORT`, or a bare port on 127.0.0.1.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is neither a port nor an address like 127.0.0.1:9100 or [::1]:9100")
    })
}

/// Every metric: the loop's snapshot and the chat store's counters, read
/// at each scrape.
#[derive(Debug)]
struct Exporter {
    published: Published,
    store: Option<LiveStats>,
}

/// A count as a gauge's value.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Encodes one counter.
fn counter(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, unit, c.metric_type())?)
}

/// Encodes one gauge: a count, or a number of seconds.
fn gauge<V: EncodeGaugeValue + Send + Sync + std::fmt::Debug>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// Encodes a counter with one label, one sample per value of it.
fn labelled(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    samples: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, v) in samples {
        let labels = [(label, value)];
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a histogram of seconds.
fn histogram(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &Histogram,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets(), None)
}

impl Collector for Exporter {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snap = self.published.get();
        let s = &snap.stats;
        let e = &mut e;
        let mut build = e.encode_descriptor(
            "udpchat_build",
            "The server's version (always 1)",
            None,
            MetricType::Info,
        )?;
        build.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        gauge(
            e,
            "udpchat_sessions",
            "Sessions open, logged in or not",
            None,
            count(snap.sessions),
        )?;
        gauge(
            e,
            "udpchat_users_online",
            "Users logged in",
            None,
            count(snap.users_online),
        )?;
        gauge(
            e,
            "udpchat_rooms",
            "Rooms on the server",
            None,
            count(snap.rooms),
        )?;
        gauge(
            e,
            "udpchat_offline_messages",
            "Direct messages waiting for offline users",
            None,
            count(snap.offline_messages),
        )?;
        gauge(
            e,
            "udpchat_queued_initials",
            "New sessions waiting for their handshake",
            None,
            count(snap.queued_initials),
        )?;
        if let Some((cluster, remote)) = snap.cluster {
            gauge(
                e,
                "udpchat_cluster_connected",
                "1 while Redis answers this node of a cluster, 0 while it is unreachable",
                None,
                i64::from(cluster.connected),
            )?;
            gauge(
                e,
                "udpchat_cluster_nodes",
                "Nodes of the cluster with a live lease, this one included",
                None,
                count(cluster.nodes),
            )?;
            if let Some(lag) = cluster.broker_lag {
                gauge(
                    e,
                    "udpchat_cluster_broker_lag",
                    "How long this node's latest heartbeat took through Redis pub/sub back to its subscriber",
                    Some(&Unit::Seconds),
                    lag.as_secs_f64(),
                )?;
            }
            gauge(
                e,
                "udpchat_cluster_remote_users",
                "Users online on the other nodes of the cluster",
                None,
                count(remote),
            )?;
        }
        labelled(
            e,
            "udpchat_messages",
            "Chat messages accepted, by kind",
            "kind",
            &[
                ("public", s.public_messages),
                ("direct", s.direct_messages),
                ("room", s.room_messages),
                ("offline_stored", s.offline_stored),
            ],
        )?;
        counter(
            e,
            "udpchat_deliveries",
            "Messages queued to recipients (a public message counts once per recipient)",
            None,
            s.deliveries,
        )?;
        counter(
            e,
            "udpchat_messages_rate_limited",
            "Public or direct messages refused by the per-session rate limit",
            None,
            s.messages_rate_limited,
        )?;
        labelled(
            e,
            "udpchat_logins",
            "Password logins and registrations, by result",
            "result",
            &[("ok", s.logins), ("failed", s.failed_logins)],
        )?;
        counter(
            e,
            "udpchat_login_timeouts",
            "Sessions closed for not logging in in time",
            None,
            s.login_timeouts,
        )?;
        counter(
            e,
            "udpchat_handshakes",
            "Handshakes done (answers to an Initial with a valid cookie)",
            None,
            s.handshakes,
        )?;
        counter(
            e,
            "udpchat_datagrams_received",
            "Datagrams received",
            None,
            s.datagrams_received,
        )?;
        counter(
            e,
            "udpchat_received",
            "Bytes of the datagrams received",
            Some(&Unit::Bytes),
            s.bytes_received,
        )?;
        counter(
            e,
            "udpchat_datagrams_sent",
            "Datagrams sent",
            None,
            s.datagrams_sent,
        )?;
        counter(
            e,
            "udpchat_sent",
            "Bytes of the datagrams sent",
            Some(&Unit::Bytes),
            s.bytes_sent,
        )?;
        counter(
            e,
            "udpchat_retransmissions",
            "Segments sent again to clients (lost or not acknowledged in time)",
            None,
            snap.retransmissions,
        )?;
        counter(
            e,
            "udpchat_retry_datagrams_sent",
            "Retry datagrams sent (cookies to addresses not yet proven)",
            None,
            s.retries_sent,
        )?;
        counter(
            e,
            "udpchat_reset_datagrams_sent",
            "Reset datagrams sent (to unknown connections)",
            None,
            s.resets_sent,
        )?;
        labelled(
            e,
            "udpchat_datagrams_dropped",
            "Datagrams dropped without effect, by reason",
            "reason",
            &[
                ("malformed", s.dropped_malformed),
                ("oversized", snap.dropped_oversized),
                ("unknown_connection", s.dropped_unknown),
                ("address_mismatch", s.dropped_spoofed),
                ("refused", s.dropped_refused),
                ("rate_limited", s.dropped_rate_limited),
                ("initial_queue_full", s.dropped_queue_full),
                ("unauthenticated", s.dropped_unauthenticated),
                ("replay", s.dropped_replay),
                ("banned", s.dropped_banned),
            ],
        )?;
        histogram(
            e,
            "udpchat_loop_turn_duration",
            "Work of one turn of the datagram loop (its wait not included)",
            &snap.turns,
        )?;
        if let Some(store) = &self.store {
            let w: WriterStats = store.get();
            counter(
                e,
                "udpchat_store_commits",
                "Chat store transactions committed",
                None,
                w.commits,
            )?;
            counter(
                e,
                "udpchat_store_writes",
                "Changes written to the chat store",
                None,
                w.writes,
            )?;
            histogram(
                e,
                "udpchat_store_commit_duration",
                "Time of one chat store commit (apply and fsync)",
                &w.commit_durations,
            )?;
            gauge(
                e,
                "udpchat_store_commit_duration_max",
                "The longest chat store commit so far",
                Some(&Unit::Seconds),
                w.max_commit.as_secs_f64(),
            )?;
        }
        Ok(())
    }
}

/// The text of a scrape: every metric, in Prometheus's text format 0.0.4.
#[must_use]
pub fn render(published: &Published, store: Option<&LiveStats>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exporter {
        published: published.clone(),
        store: store.cloned(),
    }));
    let mut text = String::new();
    // Writing into a String does not fail, and the collector never does.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

/// Longest request (line and headers) read.
const MAX_REQUEST: usize = 8 * 1024;

/// How long one client may take to send its request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// How long writing the answer may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` from a new thread, one connection
/// at a time, each closed after one answer.
pub fn spawn(
    listener: TcpListener,
    published: Published,
    store: Option<LiveStats>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = answer(stream, &published, store.as_ref()) {
                            debug!(error = %e, "metrics request failed");
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "metrics: accept failed");
                        // Out of file descriptors, say: not a busy loop.
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
}

/// Reads one request from `stream` and answers it.
fn answer(
    mut stream: TcpStream,
    published: &Published,
    store: Option<&LiveStats>,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(&buf[..len]) {
            break end;
        }
        if len == buf.len() {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", "");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return respond(&mut stream, "408 Request Timeout", "", "");
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => len += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return respond(&mut stream, "408 Request Timeout", "", "");
            }
            Err(e) => return Err(e),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(
            &mut stream,
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &render(published, store),
        ),
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        ),
    }
}

/// The length of the request's head (up to the empty line), if it is all
/// in `buf`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

/// Writes one answer and closes the connection.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if status.starts_with("405") {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_is_on_loopback() {
        assert_eq!(
            parse_addr("9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::]:9100").unwrap(),
            "[::]:9100".parse().unwrap()
        );
        assert!(parse_addr("localhost:9100").is_err());
    }

    #[test]
    fn the_histogram_puts_a_duration_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_secs(10));
        let b = h.buckets();
        assert_eq!(b[0], (0.000_01, 1));
        assert_eq!(b[1], (0.000_025, 1));
        assert_eq!(b[BUCKETS.len()], (f64::INFINITY, 1));
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn the_text_has_the_names_prometheus_expects() {
        let published = Published::default();
        let mut snap = Snapshot {
            users_online: 2,
            ..Snapshot::default()
        };
        snap.stats.public_messages = 3;
        snap.stats.bytes_sent = 1200;
        snap.stats.dropped_replay = 4;
        snap.stats.dropped_banned = 5;
        snap.turns.observe(Duration::from_micros(30));
        published.publish(&snap);
        let text = render(&published, Some(&LiveStats::default()));
        for line in [
            "udpchat_build_info{version=\"",
            "udpchat_users_online 2\n",
            "udpchat_messages_total{kind=\"public\"} 3\n",
            "udpchat_sent_bytes_total 1200\n",
            "udpchat_datagrams_dropped_total{reason=\"replay\"} 4\n",
            "udpchat_datagrams_dropped_total{reason=\"banned\"} 5\n",
            "udpchat_loop_turn_duration_seconds_bucket{le=\"5e-05\"} 1\n",
            "udpchat_loop_turn_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "udpchat_loop_turn_duration_seconds_count 1\n",
            "udpchat_store_commits_total 0\n",
            "# TYPE udpchat_store_commit_duration_seconds histogram\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }

    /// Sends `request` to a metrics thread and returns its status line.
    fn status_of(request: &[u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap();
        spawn(listener, Published::default(), None).unwrap();
        let mut stream = TcpStream::connect(at).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The server may answer (and close) before it has read it all.
        let _ = stream.write_all(request);
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn a_request_too_long_is_refused() {
        let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        request.resize(MAX_REQUEST + 100, b'a');
        assert_eq!(
            status_of(&request),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[test]
    fn a_bare_newline_ends_the_request_too() {
        assert_eq!(
            status_of(b"GET /metrics?x=1 HTTP/1.0\n\n"),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(status_of(b"GET / HTTP/1.0\n\n"), "HTTP/1.1 404 Not Found");
    }
}
