//! The real binaries through real packet loss: chatserver and three
//! chatclients talk through `udprelay`, which loses 20%, duplicates 5%,
//! reorders 25% and delays by 20 ms every datagram in both directions. Every
//! public and direct message must arrive exactly once, in each sender's
//! order, and every sender must get every confirmation.
//!
//! `ci/lossy-e2e.sh` runs this test. The relay's seed is fixed so a failure
//! can be replayed; set `UDPCHAT_LOSSY_SEED` to try another.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

const USERS: [&str; 3] = ["alice", "bob", "carol"];
/// Public messages per user; as many direct ones, alternating between the
/// two others. Thirty of each in all.
const PER_USER: usize = 10;
const DEFAULT_SEED: u64 = 20_240_917;
/// Generous: loss, backoff and argon2 in a debug build.
const LOSSY_TIMEOUT: Duration = Duration::from_secs(40);

fn relay(upstream: SocketAddr, seed: u64) -> (Proc, SocketAddr) {
    let mut cmd = command(UDPRELAY);
    cmd.args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.to_string())
        .args(["--loss", "0.2", "--duplicate", "0.05", "--reorder", "0.25"])
        .args(["--delay-ms", "20", "--max-seconds", "120"])
        .args(["--seed", &seed.to_string()]);
    let mut relay = Proc::spawn("udprelay", cmd);
    let line = relay.expect_prefix("relaying on ", TIMEOUT);
    let addr = line["relaying on ".len()..]
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
    (relay, addr)
}

/// One message a user sends, and the line each recipient should see.
struct Sent {
    from: usize,
    /// The line typed, after `PM` for a public message.
    input: String,
    /// Who should see it, and the line they should see.
    seen_by: Vec<(usize, String)>,
    /// The sender's confirmation.
    confirmation: String,
}

/// The script: user `u` sends PER_USER public and PER_USER direct messages,
/// alternately, numbered in order; one public message each is 4 KB long.
/// Texts are unique across the run.
fn script() -> Vec<Sent> {
    let mut sent = Vec::new();
    for (u, from) in USERS.iter().enumerate() {
        let others: Vec<usize> = (0..USERS.len()).filter(|&o| o != u).collect();
        for i in 0..PER_USER {
            let n = 2 * i;
            let mut text = format!("public #{n:02} from {from}");
            if i == PER_USER / 2 {
                // One long message each, split into several segments.
                text.push(' ');
                text.push_str("long text ".repeat(400).trim_end());
            }
            sent.push(Sent {
                from: u,
                input: text.clone(),
                seen_by: others
                    .iter()
                    .map(|&o| (o, format!("[{from}] {text}")))
                    .collect(),
                confirmation: format!("ok: public message delivered to {} users", others.len()),
            });
            let to = others[i % others.len()];
            let text = format!("direct #{:02} from {from} to {}", n + 1, USERS[to]);
            sent.push(Sent {
                from: u,
                input: format!("/msg {} {text}", USERS[to]),
                seen_by: vec![(to, format!("[DM from {from}] {text}"))],
                confirmation: format!("ok: direct message delivered to {}", USERS[to]),
            });
        }
    }
    sent
}

/// The sequence number in a chat line from the test script.
fn number(line: &str) -> u32 {
    let hash = line.find('#').expect("a numbered line");
    line[hash + 1..hash + 3].parse().expect("a number")
}

#[test]
fn every_message_arrives_exactly_once_through_loss() {
    let seed = std::env::var("UDPCHAT_LOSSY_SEED")
        .ok()
        .map(|s| s.parse().expect("UDPCHAT_LOSSY_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
    eprintln!("lossy: relay seed {seed} (set UDPCHAT_LOSSY_SEED to change it)");
    let started = Instant::now();

    let server = Server::start();
    let (mut relay, via) = relay(server.addr, seed);

    // All three log in through the relay before anyone speaks, so every
    // public message has the same recipients.
    let mut clients: Vec<Proc> = USERS
        .iter()
        .map(|name| spawn_client(via, name, Password::Stdin(&format!("{name}'s password"))))
        .collect();
    for (client, name) in clients.iter_mut().zip(USERS) {
        client.expect_prefix(
            &format!("registered and logged in as {name}; "),
            LOSSY_TIMEOUT,
        );
    }
    eprintln!("lossy: logged in after {:?}", started.elapsed());

    let sent = script();
    for s in &sent {
        let client = &mut clients[s.from];
        if s.input.starts_with("/msg ") {
            client.send(&s.input);
        } else {
            client.send("PM");
            client.send(&s.input);
        }
    }

    // Wait until each user has every line meant for them.
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); USERS.len()];
    for s in &sent {
        for (to, line) in &s.seen_by {
            expected[*to].push(line.clone());
        }
        expected[s.from].push(s.confirmation.clone());
    }
    for (client, lines) in clients.iter_mut().zip(&expected) {
        let want = lines.clone();
        client.wait_until(
            &|seen| want.iter().all(|l| seen.contains(l)),
            "given every message and confirmation",
            LOSSY_TIMEOUT,
        );
    }
    eprintln!("lossy: all delivered after {:?}", started.elapsed());

    for client in clients.iter_mut() {
        client.close_stdin();
    }
    for client in clients.iter_mut() {
        client.expect_line("bye", LOSSY_TIMEOUT);
        client.expect_exit(0, LOSSY_TIMEOUT);
    }
    relay.close_stdin();
    relay.expect_exit(0, TIMEOUT);
    let summary = relay
        .err
        .text()
        .lines()
        .find(|l| l.starts_with("udprelay: seed "))
        .unwrap_or_else(|| relay.fail("no summary"))
        .to_string();
    eprintln!("lossy: {summary}");
    // The relay really did impair the traffic.
    for what in ["lost", "duplicated", "reordered"] {
        let n: u64 = summary
            .split(", ")
            .find_map(|part| part.strip_suffix(&format!(" {what}")))
            .and_then(|n| n.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what} count in {summary:?}"));
        assert!(n > 0, "nothing {what}: {summary}");
    }
    eprintln!("lossy: done after {:?}", started.elapsed());

    // Now that every client has exited, its output is complete: count.
    for (u, client) in clients.iter_mut().enumerate() {
        let seen = client.out.seen().to_vec();
        let mut problems = Vec::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for line in &seen {
            *counts.entry(line.as_str()).or_default() += 1;
        }
        for s in &sent {
            let line = &s.seen_by[0].1;
            let n = counts.get(line.as_str()).copied().unwrap_or(0);
            if s.seen_by.iter().any(|(to, _)| *to == u) {
                if n != 1 {
                    problems.push(format!("{line:?} seen {n} times, expected once"));
                }
            } else if n != 0 {
                problems.push(format!("{line:?} seen {n} times, meant for someone else"));
            }
        }
        // Confirmations: one per message sent, of the right kind.
        let mut want_confirmations: BTreeMap<&str, usize> = BTreeMap::new();
        for s in sent.iter().filter(|s| s.from == u) {
            *want_confirmations.entry(&s.confirmation).or_default() += 1;
        }
        let got_confirmations: BTreeMap<&str, usize> = counts
            .iter()
            .filter(|(l, _)| l.starts_with("ok: "))
            .map(|(l, n)| (*l, *n))
            .collect();
        if got_confirmations != want_confirmations {
            problems.push(format!(
                "confirmations {got_confirmations:?}, expected {want_confirmations:?}"
            ));
        }
        // Chat lines nobody sent (corrupted, or from elsewhere).
        for line in seen.iter().filter(|l| l.starts_with('[')) {
            if !sent
                .iter()
                .any(|s| s.seen_by.iter().any(|(_, l)| l == line))
            {
                problems.push(format!("unexpected chat line {line:?}"));
            }
        }
        // Each sender's messages in the order they were sent.
        for (f, from) in USERS.iter().enumerate() {
            if f == u {
                continue;
            }
            let numbers: Vec<u32> = seen
                .iter()
                .filter(|l| {
                    l.starts_with(&format!("[{from}] "))
                        || l.starts_with(&format!("[DM from {from}] "))
                })
                .map(|l| number(l))
                .collect();
            if !numbers.windows(2).all(|w| w[0] < w[1]) {
                problems.push(format!("messages from {from} out of order: {numbers:?}"));
            }
        }
        for line in seen.iter().filter(|l| l.starts_with('!')) {
            problems.push(format!("error line {line:?}"));
        }
        if !problems.is_empty() {
            client.fail(&format!(
                "{} problems:\n  {}",
                USERS[u],
                problems.join("\n  ")
            ));
        }
    }
}
