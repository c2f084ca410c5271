//! Nodes of one chat in memory: each a [`World`] (a server core, its
//! clients and its own seeded network), joined by a relay that stands in
//! for the cluster's broker. What one node's core queues with
//! `Server::poll_publish` reaches every other node's
//! `Server::handle_remote`, in the order it was published (as one Redis
//! channel delivers to each subscriber), after a seeded delay.
//!
//! This tests the cores' cluster logic — presence across nodes, public
//! messages relayed once and in order, a login replacing one on another
//! node, a node taken for gone — not Redis, nor the native driver that
//! talks to it (`native/tests/cluster.rs` does, with a real redis-server).
//! Nothing is shared through a store here: each node answers its own store
//! requests from its memory store, so what the cluster keeps in Redis
//! (registrations, rooms and their offsets, direct messages stored for
//! users on other nodes) is out of its reach. Give every node the same
//! accounts ([`WorldConfig::accounts`]).

use std::collections::VecDeque;

use udpchat_core::server::ClusterMessage;
use udpchat_core::time::{Duration, Instant};

use crate::stepping::{self, Steps};
use crate::{SplitMix, World, WorldConfig};

/// Nodes joined by the relay.
pub struct Cluster {
    /// The nodes, each with its clients and network.
    pub nodes: Vec<World>,
    /// Their names (`Server::set_node`).
    pub names: Vec<String>,
    /// What waits for each node: when it arrives, and the message.
    inbox: Vec<VecDeque<(Instant, ClusterMessage)>>,
    /// Publications take between these two delays to arrive.
    delay: (Duration, Duration),
    rng: SplitMix,
    /// Nodes that stopped: they publish and receive nothing.
    stopped: Vec<bool>,
    /// Messages handed to a node's `handle_remote`.
    pub relayed: u64,
}

impl Cluster {
    /// One node per `(name, config)`, all starting at the first config's
    /// `start`; publications arrive 1 to 5 ms after they are made (the
    /// relay's delays follow from `seed`).
    pub fn new(nodes: Vec<(&str, WorldConfig)>, seed: u64) -> Cluster {
        let start = nodes.first().map_or(Instant::ZERO, |(_, c)| c.start);
        let (names, nodes): (Vec<String>, Vec<World>) = nodes
            .into_iter()
            .map(|(name, mut config)| {
                config.start = start;
                let mut world = World::new(config);
                world.server.set_node(name.to_string());
                (name.to_string(), world)
            })
            .unzip();
        let n = nodes.len();
        Cluster {
            nodes,
            names,
            inbox: vec![VecDeque::new(); n],
            delay: (Duration::from_millis(1), Duration::from_millis(5)),
            rng: SplitMix::new(seed ^ 0xC1A5_7E12_0000_0001),
            stopped: vec![false; n],
            relayed: 0,
        }
    }

    /// The virtual time (every node's).
    pub fn now(&self) -> Instant {
        self.nodes[0].now
    }

    /// The earliest instant at which anything happens on any node or in
    /// the relay.
    pub fn next_wakeup(&mut self) -> Option<Instant> {
        let nodes = self.nodes.iter_mut().filter_map(World::next_wakeup);
        let relay = self.inbox.iter().filter_map(|q| q.front().map(|(t, _)| *t));
        nodes.chain(relay).min()
    }

    /// Moves every node's clock to the next wakeup, handles what is due,
    /// hands each node what the relay brings it, and takes what the nodes
    /// published. `None` when nothing is scheduled at all.
    pub fn step(&mut self) -> Option<Instant> {
        let t = self.next_wakeup()?.max(self.now());
        for node in &mut self.nodes {
            node.run_until(t);
        }
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let mut handed = false;
            while self.inbox[i].front().is_some_and(|(at, _)| *at <= t) {
                let Some((_, m)) = self.inbox[i].pop_front() else {
                    break;
                };
                node.server.handle_remote(t, m);
                self.relayed += 1;
                handed = true;
            }
            if handed {
                node.flush();
            }
        }
        self.collect(t);
        Some(t)
    }

    /// Takes every node's publications into the other nodes' inboxes.
    fn collect(&mut self, t: Instant) {
        for i in 0..self.nodes.len() {
            while let Some(m) = self.nodes[i].server.poll_publish() {
                if self.stopped[i] {
                    continue;
                }
                let (lo, hi) = (self.delay.0.as_micros(), self.delay.1.as_micros());
                let extra = self.rng.next_u64() % (hi - lo + 1);
                for j in (0..self.nodes.len()).filter(|&j| j != i && !self.stopped[j]) {
                    // In publication order: never before what came earlier.
                    let mut at = t + Duration::from_micros(lo + extra);
                    if let Some((last, _)) = self.inbox[j].back() {
                        at = at.max(*last);
                    }
                    self.inbox[j].push_back((at, m.clone()));
                }
            }
        }
    }

    /// Runs every step due at or before `t`.
    pub fn run_until(&mut self, t: Instant) {
        while self.next_wakeup().is_some_and(|next| next <= t) {
            self.step();
        }
        for node in &mut self.nodes {
            node.run_until(t);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now() + d);
    }

    /// Steps until `done` holds or the clock would pass `deadline`;
    /// returns whether `done` held.
    pub fn run_until_cond(
        &mut self,
        deadline: Instant,
        done: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        stepping::run_until_cond(self, deadline, done)
    }

    /// Node `i` stops like a killed process: its server is gone (its
    /// clients hear nothing more from it), and it publishes and receives
    /// nothing more. The others go on knowing its users until
    /// [`Cluster::node_gone`].
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].vanish_server();
        self.stopped[i] = true;
        self.inbox[i].clear();
    }

    /// What a node's lease thread does once node `i`'s lease expired:
    /// every other running node is told it is gone.
    pub fn node_gone(&mut self, i: usize) {
        let now = self.now();
        let name = self.names[i].clone();
        for j in (0..self.nodes.len()).filter(|&j| j != i && !self.stopped[j]) {
            self.nodes[j].server.node_gone(now, &name);
            self.nodes[j].flush();
        }
        self.collect(now);
    }
}

impl Steps for Cluster {
    fn next_wakeup(&mut self) -> Option<Instant> {
        Cluster::next_wakeup(self)
    }
    fn step(&mut self) {
        Cluster::step(self);
    }
    fn run_until(&mut self, t: Instant) {
        Cluster::run_until(self, t);
    }
}
