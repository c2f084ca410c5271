//! `chatserver --metrics`: a scrape of `/metrics` counts what two clients
//! did, in text that parses; another path is a 404.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::*;

/// Sends `request` to the metrics server and returns the status line and
/// the body.
fn http(at: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(at).expect("connect to the metrics server");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {answer:?}"));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The samples of a scrape, `name{labels}` to value; panics at a line
/// that is neither a comment nor a sample.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("udpchat_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "metric name in {line:?}"
        );
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "labels in {line:?}"
            );
            for pair in labels[1..labels.len() - 1].split(',') {
                let (key, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("label in {line:?}"));
                assert!(!key.is_empty(), "label name in {line:?}");
                assert!(
                    value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
                    "label value in {line:?}"
                );
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("value in {line:?}: {e}")),
        };
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

/// One scrape of `/metrics`.
fn scrape(at: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = http(at, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    parse(&body)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[test]
fn a_scrape_counts_what_the_clients_did() {
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let mut server = Server::start_with(&users, &["--metrics", "127.0.0.1:0"]);
    let line = server
        .proc
        .out
        .seen()
        .iter()
        .find_map(|l| l.strip_prefix("metrics on http://").map(str::to_string))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", server.proc.out.seen()));
    let at: SocketAddr = line
        .strip_suffix("/metrics")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad metrics address in {line:?}"));

    let before = scrape(at);
    assert_eq!(value(&before, "udpchat_users_online"), 0.0);
    assert_eq!(value(&before, "udpchat_build_info{version=\"0.1.0\"}"), 1.0);

    let mut alice = login(server.addr, "alice", "a");
    let mut bob = login(server.addr, "bob", "b");
    alice.send("PM");
    alice.send("hello bob");
    alice.expect_line("ok: public message delivered to 1 user", TIMEOUT);
    bob.expect_line("[alice] hello bob", TIMEOUT);
    alice.send("/msg bob psst");
    alice.expect_line("ok: direct message delivered to bob", TIMEOUT);
    bob.expect_line("[DM from alice] psst", TIMEOUT);

    // The loop publishes its counters at least once a second.
    let deadline = Instant::now() + TIMEOUT;
    let samples = loop {
        let samples = scrape(at);
        let done = value(&samples, "udpchat_users_online") == 2.0
            && value(&samples, "udpchat_messages_total{kind=\"direct\"}") == 1.0;
        if done || Instant::now() > deadline {
            break samples;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    for (series, expected) in [
        ("udpchat_users_online", 2.0),
        ("udpchat_sessions", 2.0),
        ("udpchat_rooms", 0.0),
        ("udpchat_offline_messages", 0.0),
        ("udpchat_messages_total{kind=\"public\"}", 1.0),
        ("udpchat_messages_total{kind=\"direct\"}", 1.0),
        ("udpchat_messages_total{kind=\"room\"}", 0.0),
        ("udpchat_messages_total{kind=\"offline_stored\"}", 0.0),
        ("udpchat_deliveries_total", 2.0),
        ("udpchat_logins_total{result=\"ok\"}", 2.0),
        ("udpchat_logins_total{result=\"failed\"}", 0.0),
        ("udpchat_datagrams_dropped_total{reason=\"malformed\"}", 0.0),
    ] {
        assert_eq!(value(&samples, series), expected, "{series}");
    }
    for series in [
        "udpchat_datagrams_received_total",
        "udpchat_datagrams_sent_total",
        "udpchat_received_bytes_total",
        "udpchat_sent_bytes_total",
        "udpchat_loop_turn_duration_seconds_count",
    ] {
        assert!(value(&samples, series) > 0.0, "{series}");
    }
    assert!(
        value(&samples, "udpchat_received_bytes_total")
            >= 1200.0 * value(&samples, "udpchat_datagrams_received_total").min(2.0),
        "bytes received"
    );
    assert_eq!(
        value(
            &samples,
            "udpchat_loop_turn_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        value(&samples, "udpchat_loop_turn_duration_seconds_count")
    );
    for series in [
        "udpchat_retransmissions_total",
        "udpchat_store_commits_total",
        "udpchat_store_commit_duration_seconds_count",
    ] {
        assert!(samples.contains_key(series), "{series}");
    }

    let (status, _) = http(at, "GET /other HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(at, "POST /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");

    for client in [&mut alice, &mut bob] {
        exit_cleanly(client);
    }
    server.assert_running();
}
