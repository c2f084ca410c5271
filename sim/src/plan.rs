//! A deterministic workload of public and direct messages.

use udpchat_core::client::ClientEvent;
use udpchat_core::session::Operation;
use udpchat_core::time::{Duration, Instant};

use crate::{World, ms, peer_name};

/// One message of a [`Plan`].
#[derive(Debug, Clone)]
pub struct Msg {
    /// Index of the sending client.
    pub sender: usize,
    /// The sender's count of its messages, from 0.
    pub seq: u32,
    /// For a direct message, the recipient's index.
    pub to: Option<usize>,
    /// The text: `"sender:seq"`, maybe followed by a space and filler.
    pub text: String,
}

/// A deterministic workload: who sends what to whom, in which order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Number of clients (indices `0..clients`).
    pub clients: usize,
    /// The messages in sending order.
    pub msgs: Vec<Msg>,
}

/// What running a [`Plan`] took.
#[derive(Debug, Clone, Copy)]
pub struct PlanRun {
    /// When the first message was handed to a client.
    pub first_send: Instant,
    /// When the last message was handed to a client.
    pub last_send: Instant,
    /// When the last delivery or confirmation arrived.
    pub done: Instant,
}

impl Plan {
    /// `messages` messages from `clients` clients in turn; about one in
    /// three is a direct message to another client, the rest are public.
    /// Some carry filler so that lengths vary.
    pub fn mixed(clients: usize, messages: usize) -> Plan {
        assert!(clients >= 2);
        let mut seqs = vec![0u32; clients];
        let msgs = (0..messages)
            .map(|k| {
                let sender = k % clients;
                let seq = seqs[sender];
                seqs[sender] += 1;
                let round = k / clients;
                let to =
                    (round % 3 == 1).then(|| (sender + 1 + (round / 3) % (clients - 1)) % clients);
                let mut text = format!("{}:{seq}", peer_name(sender));
                if k % 4 == 0 {
                    text.push(' ');
                    text.extend((0..(k * 7) % 120).map(|j| (b'a' + (j % 26) as u8) as char));
                }
                Msg {
                    sender,
                    seq,
                    to,
                    text,
                }
            })
            .collect();
        Plan { clients, msgs }
    }

    /// How many public and direct messages the recipients should get.
    pub fn expected_deliveries(&self) -> u64 {
        self.msgs
            .iter()
            .map(|m| {
                if m.to.is_some() {
                    1
                } else {
                    self.clients as u64 - 1
                }
            })
            .sum()
    }

    /// Sends the plan's messages one every `interval` from now, then runs
    /// until every delivery and confirmation arrived; panics if that takes
    /// longer than `timeout` after the first send.
    pub fn run(&self, w: &mut World, interval: Duration, timeout: Duration) -> PlanRun {
        self.run_with(w, interval, timeout, |_, _| {})
    }

    /// [`Plan::run`], calling `before(w, k)` before message `k` is sent.
    pub fn run_with(
        &self,
        w: &mut World,
        interval: Duration,
        timeout: Duration,
        mut before: impl FnMut(&mut World, usize),
    ) -> PlanRun {
        let base_deliveries = w.deliveries;
        let base_confirms = w.confirms;
        let first_send = w.now;
        let mut last_send = first_send;
        for (k, m) in self.msgs.iter().enumerate() {
            w.run_until(first_send + interval.saturating_mul(k as u64));
            before(w, k);
            last_send = w.now;
            let result = match m.to {
                Some(to) => {
                    let to = w.peers[to].name.clone();
                    w.send_dm(m.sender, &to, &m.text)
                }
                None => w.send_pm(m.sender, &m.text),
            };
            result.unwrap_or_else(|e| panic!("sending {}: {e}", m.text));
        }
        let want_deliveries = base_deliveries + self.expected_deliveries();
        let want_confirms = base_confirms + self.msgs.len() as u64;
        let deadline = first_send + timeout;
        let done = w.run_until_cond(deadline, |w| {
            w.deliveries >= want_deliveries && w.confirms >= want_confirms
        });
        assert!(
            done,
            "by {deadline:?}: {} of {} deliveries, {} of {} confirmations",
            w.deliveries - base_deliveries,
            self.expected_deliveries(),
            w.confirms - base_confirms,
            self.msgs.len()
        );
        PlanRun {
            first_send,
            last_send,
            done: w.now,
        }
    }

    /// Checks that every recipient got each message meant for it exactly
    /// once, in each sender's order, as the right kind; that nobody got
    /// anything else; and that each sender got one confirmation per message,
    /// in order, with the right recipients.
    pub fn check(&self, w: &World) {
        for r in 0..self.clients {
            let got = w.messages_of(r);
            for s in 0..self.clients {
                let sender = &w.peers[s].name;
                let expected: Vec<(bool, &str)> = self
                    .msgs
                    .iter()
                    .filter(|m| m.sender == s && m.sender != r && m.to.is_none_or(|t| t == r))
                    .map(|m| (m.to.is_some(), m.text.as_str()))
                    .collect();
                let actual: Vec<(bool, &str)> = got
                    .iter()
                    .filter(|(_, m)| &m.from == sender)
                    .map(|(_, m)| (m.direct, m.text.as_str()))
                    .collect();
                if expected != actual {
                    let first = expected
                        .iter()
                        .zip(&actual)
                        .position(|(a, b)| a != b)
                        .unwrap_or(expected.len().min(actual.len()));
                    panic!(
                        "{} got {} messages from {sender}, expected {}; first difference \
                         at #{first}: got {:?}, expected {:?}",
                        w.peers[r].name,
                        actual.len(),
                        expected.len(),
                        actual.get(first),
                        expected.get(first)
                    );
                }
            }
            let strangers = got
                .iter()
                .filter(|(_, m)| !(0..self.clients).any(|s| w.peers[s].name == m.from))
                .count();
            assert_eq!(
                strangers, 0,
                "{} got messages from unknown senders",
                w.peers[r].name
            );

            let confirms: Vec<(Operation, Option<String>, u32)> = w.peers[r]
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    ClientEvent::Confirmed {
                        op, to, recipients, ..
                    } => Some((*op, to.clone(), *recipients)),
                    _ => None,
                })
                .collect();
            let expected: Vec<(Operation, Option<String>, u32)> = self
                .msgs
                .iter()
                .filter(|m| m.sender == r)
                .map(|m| match m.to {
                    Some(t) => (Operation::DM, Some(w.peers[t].name.clone()), 1),
                    None => (Operation::PM, None, self.clients as u32 - 1),
                })
                .collect();
            assert_eq!(
                confirms, expected,
                "{}'s confirmations differ from its messages",
                w.peers[r].name
            );
        }
    }
}

/// Percentile `p` (0..=100) of sorted `values` (nearest rank).
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The acceptance link: 30 % loss, 10 % duplication, 10 ms delay with
/// 0–200 ms jitter, and 5 % of datagrams held back up to 100 ms more.
pub fn harsh_link() -> udpchat_netem::LinkConfig {
    udpchat_netem::LinkConfig::lossy(0.3)
        .with_duplicate(0.1)
        .with_delay(ms(10))
        .with_jitter(ms(200))
        .with_reorder(0.05, ms(100))
}
