//! `reliabilitybench`: the reliable channel on the virtual clock: goodput and delivery latency
//! of a stream of public messages from one client to another through the
//! server, at 0 %, 10 % and 30 % loss each way (20 ms one-way delay, 0–20 ms
//! jitter).
//!
//! ```text
//! cargo run --release -p udpchat-bench --bin reliabilitybench [SEED]
//! ```
//!
//! Everything runs in simulated time, so the figures are the protocol's, not
//! the machine's, and the output is the same for the same seed. Two loads:
//! *paced* offers 100 messages of 500 bytes a second (latency under a
//! steady load); *bulk* queues every message at once (what the window and
//! the retransmission logic can move).

use udpchat_core::client::ClientEvent;
use udpchat_core::time::{Duration, Instant};
use udpchat_netem::LinkConfig;
use udpchat_sim::{World, WorldConfig, ms, percentile, secs};

const PAYLOAD: usize = 500;

struct Row {
    mode: &'static str,
    loss: f64,
    messages: usize,
    delivered: usize,
    seconds: f64,
    goodput: f64,
    kbps: f64,
    p50: u64,
    p99: u64,
    max: u64,
    retransmissions: u64,
    segments: u64,
}

/// The text of message `seq`: `"alice:seq "` and filler, `PAYLOAD` bytes.
fn text(seq: usize) -> String {
    let mut t = format!("alice:{seq} ");
    while t.len() < PAYLOAD {
        t.push((b'a' + (t.len() % 26) as u8) as char);
    }
    t
}

fn run(seed: u64, loss: f64, mode: &'static str, messages: usize, interval: Duration) -> Row {
    let link = LinkConfig::lossy(loss)
        .with_delay(ms(20))
        .with_jitter(ms(20));
    let mut w = World::with_clients(WorldConfig::new(seed).with_link(link), 2);
    w.login_all(secs(30));
    w.run_for(secs(1));
    let (retx0, seg0) = (w.retransmissions, w.segments_sent);
    let start = w.now;
    for seq in 0..messages {
        w.run_until(start + interval.saturating_mul(seq as u64));
        w.send_pm(0, &text(seq))
            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
    }
    let want = messages as u64;
    let deadline = start + secs(600);
    let all = w.run_until_cond(deadline, |w| w.deliveries >= want && w.confirms >= want);
    let received: Vec<(Instant, String)> = w.peers[1]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            ClientEvent::Public { text, .. } => Some((*t, text.clone())),
            _ => None,
        })
        .collect();
    let mut latencies: Vec<u64> = received
        .iter()
        .map(|(t, text)| (*t - w.sent_at[text]).as_micros())
        .collect();
    latencies.sort_unstable();
    let last = received.last().map_or(start, |(t, _)| *t);
    let seconds = (last - start).as_micros() as f64 / 1e6;
    let bytes: usize = received.iter().map(|(_, t)| t.len()).sum();
    if !all {
        eprintln!(
            "{mode} at {loss}: only {} of {messages} delivered",
            received.len()
        );
    }
    Row {
        mode,
        loss,
        messages,
        delivered: received.len(),
        seconds,
        goodput: received.len() as f64 / seconds,
        kbps: bytes as f64 / seconds / 1000.0,
        p50: percentile(&latencies, 50) / 1000,
        p99: percentile(&latencies, 99) / 1000,
        max: latencies.last().copied().unwrap_or(0) / 1000,
        retransmissions: w.retransmissions - retx0,
        segments: w.segments_sent - seg0,
    }
}

fn main() {
    let seed = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SEED is a number"))
        .unwrap_or(1);
    let wall = std::time::Instant::now();
    println!(
        "udpchat reliability benchmark: 2 clients + server, alice -> bob public messages of \
         {PAYLOAD} bytes"
    );
    println!("links: 20 ms one way + 0-20 ms jitter, loss each way as shown; seed {seed}");
    println!();
    println!(
        "{:<6} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "load",
        "loss",
        "messages",
        "delivered",
        "virt s",
        "msg/s",
        "KB/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "retransmitted"
    );
    for (mode, messages, interval) in [("paced", 2_000, ms(10)), ("bulk", 1_000, Duration::ZERO)] {
        for loss in [0.0, 0.1, 0.3] {
            let r = run(seed, loss, mode, messages, interval);
            println!(
                "{:<6} {:>4.0}% {:>9} {:>9} {:>8.2} {:>8.1} {:>8.1} {:>8} {:>8} {:>8} {:>7} ({:>4.1}%)",
                r.mode,
                r.loss * 100.0,
                r.messages,
                r.delivered,
                r.seconds,
                r.goodput,
                r.kbps,
                r.p50,
                r.p99,
                r.max,
                r.retransmissions,
                100.0 * r.retransmissions as f64 / r.segments.max(1) as f64
            );
        }
    }
    println!();
    println!(
        "virt s: virtual time from the first send to the last delivery; latency: from the send \
         call to bob's event; retransmitted: segments sent again, both directions (share of \
         all segments sent)."
    );
    eprintln!("(wall time {:.2?})", wall.elapsed());
}
