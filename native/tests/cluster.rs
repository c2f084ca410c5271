//! Three `chatserver` nodes sharing one chat through a Redis server of the
//! test's own: accounts, presence, public and direct messages across nodes,
//! a node killed, Redis stopped and started again.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::redis::Redis;
use common::*;

/// A node of the cluster at `redis`, named `name`, with its own directory
/// and the key file every node shares.
struct Node {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(redis: &Redis, name: &str, key: &std::path::Path) -> Node {
        Node::start_with(redis, name, key, &[])
    }

    fn start_with(redis: &Redis, name: &str, key: &std::path::Path, extra: &[&str]) -> Node {
        Node::start_at(&redis.url(), name, key, extra)
    }

    /// A node of the cluster at `url`.
    fn start_at(url: &str, name: &str, key: &std::path::Path, extra: &[&str]) -> Node {
        let dir = temp_dir();
        let users = dir.path().join("chat_users.json");
        let mut args = vec![
            "--cluster",
            url,
            "--node",
            name,
            "--key",
            key.to_str().expect("a UTF-8 path"),
        ];
        args.extend_from_slice(extra);
        let server = Server::start_with(&users, &args);
        Node { server, _dir: dir }
    }

    /// Waits until the metric `name` is `value` (metrics may be a second
    /// old).
    fn wait_metric(&mut self, name: &str, value: &str) {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let now = self.metric(name);
            if now == value {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} is {now}, expected {value}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of the metric line starting with `name ` (needs
    /// `--metrics`).
    fn metric(&mut self, name: &str) -> String {
        let text = self.metrics_text();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    /// The whole answer to `GET /metrics` (needs `--metrics`).
    fn metrics_text(&mut self) -> String {
        let at = self
            .server
            .proc
            .out
            .seen()
            .iter()
            .find_map(|l| l.strip_prefix("metrics on http://").map(str::to_string))
            .expect("started with --metrics");
        let at = at.trim_end_matches("/metrics");
        let mut stream = std::net::TcpStream::connect(at).expect("connect to the metrics");
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("ask");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read the metrics");
        text
    }
}

/// Three nodes `a`, `b`, `c` on `redis` sharing one key.
fn three_nodes(redis: &Redis, key_dir: &tempfile::TempDir) -> [Node; 3] {
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start(redis, "a", &key);
    let b = Node::start(redis, "b", &key);
    let c = Node::start(redis, "c", &key);
    [a, b, c]
}

/// Waits until `client`'s online list (asked with `/who`) is `expected`.
fn wait_online(client: &mut Proc, expected: &[&str]) {
    let want = names(expected);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        client.send("/who");
        let line = client.expect_prefix("online: ", TIMEOUT);
        if online_set(&line) == want {
            return;
        }
        if std::time::Instant::now() >= deadline {
            client.fail(&format!("online is {line:?}, expected {want:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn users_on_three_nodes_chat_as_on_one_server() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    let mut carol = login(c.server.addr, "carol", "c");
    alice.expect_line("* carol joined", TIMEOUT);
    bob.expect_line("* carol joined", TIMEOUT);
    wait_online(&mut carol, &["alice", "bob", "carol"]);
    wait_online(&mut alice, &["alice", "bob", "carol"]);

    // A public message: published once, delivered once by each node.
    alice.send("hello from node a");
    alice.expect_line("ok: public message delivered to 2 users", TIMEOUT);
    bob.expect_line("[alice] hello from node a", TIMEOUT);
    carol.expect_line("[alice] hello from node a", TIMEOUT);
    // In order per sender.
    for i in 0..20 {
        bob.send(&format!("bob says {i}"));
    }
    for i in 0..20 {
        alice.expect_line(&format!("[bob] bob says {i}"), TIMEOUT);
        carol.expect_line(&format!("[bob] bob says {i}"), TIMEOUT);
    }

    // A direct message to a user on another node.
    bob.send("/msg carol psst, carol");
    bob.expect_line("ok: direct message delivered to carol", TIMEOUT);
    carol.expect_line("[DM from bob] psst, carol", TIMEOUT);

    // bob logs in on node c: his session on node b is over.
    let mut bob2 = login(c.server.addr, "bob", "b");
    bob.expect_with(
        &|l| l.contains("logged in from another place"),
        "replaced",
        TIMEOUT,
    );
    alice.expect_line("* bob left (replaced)", TIMEOUT);
    alice.expect_line("* bob joined", TIMEOUT);
    wait_online(&mut alice, &["alice", "bob", "carol"]);
    alice.send("/msg bob where are you now");
    bob2.expect_line("[DM from alice] where are you now", TIMEOUT);

    // A user leaving is seen on every node.
    exit_cleanly(&mut carol);
    alice.expect_line("* carol left (exit)", TIMEOUT);
    wait_online(&mut bob2, &["alice", "bob"]);

    // Exactly once.
    assert_eq!(bob.count("[alice] hello from node a"), 1);
    assert_eq!(carol.count("[alice] hello from node a"), 1);
    for i in 0..20 {
        assert_eq!(alice.count(&format!("[bob] bob says {i}")), 1);
    }
    assert_eq!(alice.count("* carol joined"), 1);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob2);
}

#[test]
fn the_same_new_name_on_two_nodes_at_once_is_registered_once() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, c] = three_nodes(&redis, &key_dir);
    for round in 0..3 {
        let name = format!("zed{round}");
        let mut on_a = spawn_client(a.server.addr, &name, Password::Stdin("password-a"));
        let mut on_b = spawn_client(b.server.addr, &name, Password::Stdin("password-b"));
        let registered = format!("registered and logged in as {name}");
        let outcome = |p: &mut Proc| -> bool {
            let line = p.expect_with(
                &|l| l.starts_with(&registered) || l.starts_with("! "),
                "registration or refusal",
                TIMEOUT,
            );
            line.starts_with(&registered)
        };
        let (won_a, won_b) = (outcome(&mut on_a), outcome(&mut on_b));
        assert!(
            won_a != won_b,
            "exactly one registration wins: a {won_a}, b {won_b}\n{}\n{}",
            on_a.transcript(),
            on_b.transcript()
        );
        // The account is everywhere, with the winner's password.
        let password = if won_a { "password-a" } else { "password-b" };
        let mut elsewhere = login(c.server.addr, &name, password);
        exit_cleanly(&mut elsewhere);
    }
    assert_eq!(redis.command("HLEN udpchat:accounts"), ":3");
}

#[test]
fn an_account_registered_on_one_node_survives_a_redis_restart() {
    let mut redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start(&redis, "a", &key);
    let mut dave = login(a.server.addr, "dave", "dave-password");
    exit_cleanly(&mut dave);
    redis.restart();
    let b = Node::start(&redis, "b", &key);
    let mut dave = login(b.server.addr, "dave", "dave-password");
    exit_cleanly(&mut dave);
}

#[test]
fn the_metrics_count_the_live_nodes_and_the_brokers_lag() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let mut a = Node::start_with(&redis, "a", &key, &["--metrics", "0"]);
    let mut b = Node::start(&redis, "b", &key);
    let _c = Node::start(&redis, "c", &key);
    a.wait_metric("udpchat_cluster_nodes", "3");
    // A heartbeat came back through Redis: a lag in seconds.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let lag = loop {
        let text = a.metrics_text();
        if let Some(lag) = text
            .lines()
            .find_map(|l| l.strip_prefix("udpchat_cluster_broker_lag_seconds "))
        {
            break lag.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no broker lag in\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let lag: f64 = lag.parse().expect("a number of seconds");
    assert!(lag >= 0.0 && lag.is_finite(), "lag {lag}");
    b.server.proc.kill();
    // Its lease lasts 5 s; it is counted out at the first renewal after.
    a.wait_metric("udpchat_cluster_nodes", "2");
}

#[test]
fn away_is_seen_on_every_node_and_by_a_node_that_starts_later() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start(&redis, "a", &key);
    let b = Node::start(&redis, "b", &key);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    wait_online(&mut bob, &["alice", "bob"]);
    alice.send("/away at lunch");
    alice.expect_with(&|l| l.contains("you are away"), "away", TIMEOUT);
    let whois_away = |client: &mut Proc| {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            client.send("/whois alice");
            let line = client.expect_with(&|l| l.contains("alice is online"), "whois", TIMEOUT);
            if line.contains("at lunch") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never away: {line}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Live, on the other node: whois, the online list, a DM's reply.
    whois_away(&mut bob);
    bob.send("/who");
    bob.expect_line("online: alice (away), bob", TIMEOUT);
    bob.send("/msg alice are you there?");
    bob.expect_with(
        &|l| l.contains("alice is away: at lunch"),
        "away reply",
        TIMEOUT,
    );
    // A node that starts now reads it from Redis.
    let c = Node::start(&redis, "c", &key);
    let mut carol = login(c.server.addr, "carol", "c");
    whois_away(&mut carol);
    // Back: cleared everywhere.
    alice.send("/away");
    alice.expect_with(&|l| l.contains("you are back"), "back", TIMEOUT);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        carol.send("/who");
        let line = carol.expect_prefix("online: ", TIMEOUT);
        if line == "online: alice, bob, carol" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still away: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_takes_its_cluster_and_name_from_the_configuration_file() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start(&redis, "a", &key);
    let dir = temp_dir();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!("cluster = \"{}\"\nnode = \"b\"\n", redis.url()),
    )
    .expect("write the configuration");
    let b = Server::start_with(
        &dir.path().join("chat_users.json"),
        &[
            "--config",
            config.to_str().expect("a UTF-8 path"),
            "--key",
            key.to_str().expect("a UTF-8 path"),
        ],
    );
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    wait_online(&mut bob, &["alice", "bob"]);
}

#[test]
fn a_killed_nodes_users_leave_within_15_s() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, mut b, _c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let _bob = login(b.server.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    b.server.proc.kill();
    alice.expect_line("* bob left (timeout)", Duration::from_secs(15));
    wait_online(&mut alice, &["alice"]);
}

#[test]
fn nodes_serve_their_own_users_while_redis_is_away_and_resync_after() {
    let mut redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let mut a = Node::start_with(&redis, "a", &key, &["--metrics", "0"]);
    let b = Node::start(&redis, "b", &key);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut amy = login(a.server.addr, "amy", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);

    redis.kill();
    // Local chat goes on.
    alice.send("redis is away");
    amy.expect_line("[alice] redis is away", TIMEOUT);
    // No new accounts meanwhile.
    let mut eve = spawn_client(a.server.addr, "eve", Password::Stdin("e"));
    eve.expect_prefix("! login failed: ", TIMEOUT);
    // The degraded state shows.
    a.wait_metric("udpchat_cluster_connected", "0");

    redis.restart();
    // Once resubscribed, messages cross nodes again.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    loop {
        i += 1;
        let text = format!("back {i}");
        alice.send(&text);
        if bob
            .find_line(&format!("[alice] {text}"), Duration::from_millis(500))
            .is_some()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message crossed nodes after Redis came back\n{}",
            a.server.proc.err.text()
        );
    }
    wait_online(&mut bob, &["alice", "amy", "bob"]);
    a.wait_metric("udpchat_cluster_connected", "1");
    a.wait_metric("udpchat_cluster_remote_users", "1");
    exit_cleanly(&mut bob);
    alice.expect_line("* bob left (exit)", TIMEOUT);
}

/// Polls `redis` with `command` until it answers `expected`.
fn wait_redis(redis: &Redis, command: &str, expected: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let answer = redis.command(command);
        if answer == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{command}: {answer}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_direct_message_stored_on_one_node_is_delivered_on_another() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, c] = three_nodes(&redis, &key_dir);
    let mut carol = login(b.server.addr, "carol", "c");
    exit_cleanly(&mut carol);
    let mut alice = login(a.server.addr, "alice", "a");
    alice.send("/msg carol psst while you were away");
    alice.expect_line(
        "ok: direct message stored for carol (offline); delivered when they log in",
        TIMEOUT,
    );
    let mut carol = login(c.server.addr, "carol", "c");
    carol.expect_with(
        &|l| l.contains("psst while you were away"),
        "the stored message",
        TIMEOUT,
    );
    // Acknowledged, it is removed everywhere: not delivered again.
    wait_redis(&redis, "HLEN udpchat:offline:carol", ":0");
    exit_cleanly(&mut carol);
    let mut carol = login(b.server.addr, "carol", "c");
    carol.send("/who");
    carol.expect_prefix("online: ", TIMEOUT);
    exit_cleanly(&mut carol);
    let again = carol
        .out
        .seen()
        .iter()
        .filter(|l| l.contains("psst while you were away"))
        .count();
    assert_eq!(again, 0, "delivered again after it was acknowledged");
}

#[test]
fn a_subscriber_dropped_by_redis_subscribes_again() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, _c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    alice.send("/join #r");
    alice.expect_prefix("* you joined #r", TIMEOUT);
    bob.send("/join #r");
    bob.expect_prefix("* you joined #r", TIMEOUT);
    alice.expect_line("* bob joined #r", TIMEOUT);
    // What Redis does to a subscriber over its output buffer limit.
    let killed = redis.command("CLIENT KILL TYPE pubsub");
    assert_ne!(killed, ":0", "no subscriber to drop");
    // Said while no node listens: recovered by offset once they do.
    alice.send("/msg #r said in the gap");
    alice.expect_prefix("ok: message stored in #r", TIMEOUT);
    bob.expect_line("[#r] <alice> said in the gap", TIMEOUT);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    loop {
        i += 1;
        // Plain lines go to the room joined last.
        let text = format!("still there {i}");
        alice.send(&text);
        if bob
            .find_line(&format!("[#r] <alice> {text}"), Duration::from_millis(500))
            .is_some()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not resubscribed\n{}\n{}\n{}",
            a.server.proc.err.text(),
            b.server.proc.err.text(),
            bob.transcript()
        );
    }
    wait_online(&mut bob, &["alice", "bob"]);
    assert_eq!(bob.count("[#r] <alice> said in the gap"), 1);
}

#[test]
fn a_client_fails_over_to_another_node() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [mut a, b, c] = three_nodes(&redis, &key_dir);
    let fallback = b.server.addr.to_string();
    let mut alice = spawn_client_with(
        a.server.addr,
        "alice",
        Password::Stdin("a"),
        &["--reconnect", "--fallback", &fallback],
    );
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);
    let mut bob = login(c.server.addr, "bob", "b");
    wait_online(&mut bob, &["alice", "bob"]);

    a.server.proc.kill();
    // What the client sends next finds nothing listening (an ICMP error on
    // loopback): it gives the node up at once and tries node b.
    alice.send("/who");
    alice.expect_prefix("! disconnected: lost the server", TIMEOUT);
    alice.expect_line("Reconnecting as alice (attempt 1)...", TIMEOUT);
    alice.expect_prefix("logged in as alice; online: ", TIMEOUT);
    wait_online(&mut bob, &["alice", "bob"]);
    bob.send("/msg alice found you on node b");
    bob.expect_line("ok: direct message delivered to alice", TIMEOUT);
    alice.expect_line("[DM from bob] found you on node b", TIMEOUT);
    exit_cleanly(&mut alice);
    bob.expect_line("* alice left (exit)", TIMEOUT);
}

#[test]
fn accounts_are_imported_from_and_exported_to_the_user_store() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    // A single server's accounts...
    let dir = temp_dir();
    let users = dir.path().join("chat_users.json");
    let mut alone = Server::start_with(&users, &[]);
    let mut old = login(alone.addr, "oldtimer", "old-password");
    exit_cleanly(&mut old);
    alone.proc.kill();
    // ...join the cluster with the node started on its user store.
    let url = redis.url();
    let a = Server::start_with(
        &users,
        &[
            "--cluster",
            &url,
            "--node",
            "a",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let b = Node::start(&redis, "b", &key);
    let mut old = login(b.server.addr, "oldtimer", "old-password");
    exit_cleanly(&mut old);
    let mut new = login(a.addr, "newcomer", "new-password");
    exit_cleanly(&mut new);
    // Exported back to a user store of its own.
    let out = temp_dir();
    let exported = out.path().join("chat_users.json");
    let mut export = command(CHATSERVER);
    export
        .args(["--cluster", &url, "--export-accounts", "--users"])
        .arg(&exported);
    let mut export = Proc::spawn("export", export);
    export.expect_line(
        &format!(
            "2 accounts added to {} (2 in the cluster)",
            exported.display()
        ),
        TIMEOUT,
    );
    export.expect_exit(0, TIMEOUT);
    let alone = Server::start_with(&exported, &[]);
    let mut new = login(alone.addr, "newcomer", "new-password");
    exit_cleanly(&mut new);
}

#[test]
fn rooms_and_their_history_are_shared_by_the_nodes() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    alice.send("/join #rust");
    alice.expect_line("* you joined #rust; members: alice", TIMEOUT);
    bob.send("/join #rust");
    bob.expect_prefix("* you joined #rust; members: ", TIMEOUT);
    alice.expect_line("* bob joined #rust", TIMEOUT);
    // Both talk at once; each sees the other's lines in order, once.
    for i in 0..20 {
        alice.send(&format!("/msg #rust alice {i}"));
        bob.send(&format!("/msg #rust bob {i}"));
    }
    for i in 0..20 {
        bob.expect_line(&format!("[#rust] <alice> alice {i}"), TIMEOUT);
        alice.expect_line(&format!("[#rust] <bob> bob {i}"), TIMEOUT);
    }
    // Offsets are the room's, one sequence for both nodes.
    wait_redis(&redis, "XLEN udpchat:room:#rust:stream", ":40");
    assert_eq!(redis.command("HGET udpchat:room:#rust last_offset"), "40");
    // A member joining on a third node gets the history.
    let mut carol = login(c.server.addr, "carol", "c");
    carol.send("/join #rust");
    carol.expect_prefix("* you joined #rust; members: ", TIMEOUT);
    carol.expect_with(&|l| l.contains("<bob> bob 19"), "history", TIMEOUT);
    alice.expect_line("* carol joined #rust", TIMEOUT);
    carol.send("/msg #rust carol here");
    alice.expect_line("[#rust] <carol> carol here", TIMEOUT);
    bob.expect_line("[#rust] <carol> carol here", TIMEOUT);
    for i in 0..20 {
        assert_eq!(bob.count(&format!("[#rust] <alice> alice {i}")), 1);
        assert_eq!(alice.count(&format!("[#rust] <alice> alice {i}")), 0);
    }
    // A node started now reads the rooms from Redis, and history older
    // than it keeps in memory from the room's stream.
    let key = key_dir.path().join("chat_server.key");
    let d = Node::start_with(
        &redis,
        "d",
        &key,
        &["--history-on-join", "5", "--max-replay", "5"],
    );
    let mut dave = login(d.server.addr, "dave", "d");
    dave.send("/join #rust");
    dave.expect_prefix("* you joined #rust; members: ", TIMEOUT);
    dave.expect_with(&|l| l.contains("<carol> carol here"), "history", TIMEOUT);
    dave.send("/history #rust 50");
    dave.expect_with(&|l| l.contains("<alice> alice 0"), "older history", TIMEOUT);
    exit_cleanly(&mut dave);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
    exit_cleanly(&mut carol);
}

#[test]
fn a_room_redis_has_is_joined_not_replaced() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start(&redis, "a", &key);
    // A room this node has not heard of (made while it was cut off), made
    // whole in one script: the node's first snapshot, read by its
    // subscriber while this runs, sees all of it or none of it (a room
    // whose message it never heard of would otherwise look complete).
    let made = redis.command(concat!(
        r#"EVAL "redis.call('SADD', 'udpchat:rooms', '#old'); "#,
        r#"redis.call('HSET', 'udpchat:room:#old', 'epoch', 'e1', 'owner', 'zoe', "#,
        r#"'topic', 't', 'created', '0', 'last_offset', '1'); "#,
        r#"redis.call('HSET', 'udpchat:room:#old:members', 'zoe', 'zoe'); "#,
        r#"redis.call('XADD', 'udpchat:room:#old:stream', '1-1', 'from', 'zoe', "#,
        r#"'text', 'kept', 'time', '0'); return 1" 0"#
    ));
    assert_eq!(made, ":1");
    let mut alice = login(a.server.addr, "alice", "a");
    alice.send("/join #old");
    // The node takes the room as Redis has it: its members, its topic,
    // its history, its owner.
    alice.expect_line("* you joined #old; members: alice, zoe; topic: t", TIMEOUT);
    alice.expect_with(&|l| l.ends_with("<zoe> kept"), "its history", TIMEOUT);
    alice.send("/lock-topic on");
    alice.expect_with(
        &|l| l.contains("only its owner and operators may do that in #old"),
        "zoe owns #old",
        TIMEOUT,
    );
    // Joined in Redis; the room and its history are intact.
    wait_redis(&redis, "HEXISTS udpchat:room:#old:members alice", ":1");
    assert_eq!(redis.command("XLEN udpchat:room:#old:stream"), ":1");
    assert_eq!(redis.command("HGET udpchat:room:#old epoch"), "e1");
    exit_cleanly(&mut alice);
}

#[test]
fn room_roles_changed_on_one_node_hold_on_the_others() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, _c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    let mut carol = login(b.server.addr, "carol", "c");
    alice.send("/join #r");
    alice.expect_line("* you joined #r; members: alice", TIMEOUT);
    bob.send("/join #r");
    alice.expect_line("* bob joined #r", TIMEOUT);
    carol.send("/join #r");
    alice.expect_line("* carol joined #r", TIMEOUT);

    // Muted on node a: carol cannot speak through node b.
    alice.send("/mute carol");
    alice.expect_line("done: room_mute #r carol", TIMEOUT);
    carol.expect_line("-!- alice muted carol in #r", TIMEOUT);
    bob.expect_line("-!- alice muted carol in #r", TIMEOUT);
    carol.send("anyone?");
    carol.expect_line(
        "! not sent to #r: \"anyone?\" (you are muted in #r)",
        TIMEOUT,
    );
    assert_eq!(bob.count("[#r] <carol> anyone?"), 0);

    // Kicked on node a: carol's session on node b is out of the room.
    alice.send("/kick carol be nice");
    carol.expect_line("-!- alice removed you from #r: be nice", TIMEOUT);
    bob.expect_line("* carol left #r (kicked by alice: be nice)", TIMEOUT);
    carol.send("/msg #r still here?");
    carol.expect_with(
        &|l| l.contains("not a member of #r"),
        "not a member",
        TIMEOUT,
    );

    // Banned on node a: carol cannot join through node b. (What alice says
    // after the ban reaches node b after it: one channel, in order.)
    alice.send("/ban #r carol 1h");
    alice.expect_line("done: room_ban #r carol", TIMEOUT);
    alice.send("/msg #r after the ban");
    bob.expect_line("[#r] <alice> after the ban", TIMEOUT);
    carol.send("/join #r");
    carol.expect_prefix("! you are banned from #r for ", TIMEOUT);
    assert_eq!(alice.count("* carol joined #r"), 1);
}

#[test]
fn one_room_made_on_two_nodes_at_once_has_one_owner_everywhere() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [a, b, _c] = three_nodes(&redis, &key_dir);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut bob = login(b.server.addr, "bob", "b");
    alice.expect_line("* bob joined", TIMEOUT);
    for round in 0..4 {
        let room = format!("#same{round}");
        alice.send(&format!("/join {room}"));
        bob.send(&format!("/join {room}"));
        let joined = format!("* you joined {room}; members: ");
        alice.expect_prefix(&joined, TIMEOUT);
        bob.expect_prefix(&joined, TIMEOUT);
        // Whoever's script ran first owns it; the other node took that
        // room, epoch and owner.
        let name = redis.command(&format!("HGET udpchat:room:{room} owner"));
        let (owner, other) = if name == "alice" {
            (&mut alice, &mut bob)
        } else {
            assert_eq!(name, "bob", "{room} has an owner");
            (&mut bob, &mut alice)
        };
        other.send("/lock-topic on");
        other.expect_with(
            &|l| {
                l.contains(&format!(
                    "only its owner and operators may do that in {room}"
                ))
            },
            "refused to the other",
            TIMEOUT,
        );
        owner.send("/lock-topic on");
        owner.expect_line(&format!("done: room_mode {room}"), TIMEOUT);
        other.expect_line(
            &format!("-!- {name} set {room}: topic lock on, moderated off"),
            TIMEOUT,
        );
        // Offsets and history are the room's, the same on both nodes.
        owner.send(&format!("/msg {room} first"));
        other.expect_line(&format!("[{room}] <{name}> first"), TIMEOUT);
        other.send(&format!("/history {room} 5"));
        other.expect_line(&format!("(end of history of {room}: 1 message)"), TIMEOUT);
    }
}

#[test]
fn room_changes_a_node_missed_are_announced_when_it_subscribes_again() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    // Node b is the ACL user `nodeb`: taking its channel permission away
    // cuts its subscription (Redis closes it, and every SUBSCRIBE again is
    // refused) while its other commands work, until it is given back.
    assert_eq!(redis.command("ACL SETUSER nodeb on >pw ~* &* +@all"), "+OK");
    let a = Node::start(&redis, "a", &key);
    let b = Node::start_at(&redis.url_as("nodeb", "pw"), "b", &key, &[]);
    let mut alice = login(a.server.addr, "alice", "a");
    let mut carol = login(a.server.addr, "carol", "c");
    let mut dave = login(a.server.addr, "dave", "d");
    let mut bob = login(b.server.addr, "bob", "b");
    let mut erin = login(b.server.addr, "erin", "e");
    alice.send("/join #r");
    alice.expect_prefix("* you joined #r", TIMEOUT);
    dave.send("/join #r");
    alice.expect_line("* dave joined #r", TIMEOUT);
    bob.send("/join #r");
    alice.expect_line("* bob joined #r", TIMEOUT);
    bob.expect_prefix("* you joined #r; members: ", TIMEOUT);

    // Node b's subscription is down: what happens now it does not hear.
    assert_eq!(redis.command("ACL SETUSER nodeb resetchannels"), "+OK");
    carol.send("/join #r");
    alice.expect_line("* carol joined #r", TIMEOUT);
    dave.send("/part #r");
    alice.expect_line("* dave left #r", TIMEOUT);
    alice.send("/topic while you were away");
    alice.expect_with(&|l| l.contains("while you were away"), "the topic", TIMEOUT);
    wait_redis(&redis, "HGET udpchat:room:#r topic", "while you were away");
    let (code, out) = cluster_accounts(&redis, &["suspend", "erin"], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(bob.count("* carol joined #r"), 0);

    // Subscribed again, node b announces what changed meanwhile.
    assert_eq!(redis.command("ACL SETUSER nodeb allchannels"), "+OK");
    bob.expect_line("* dave left #r", TIMEOUT);
    bob.expect_line("* carol joined #r", TIMEOUT);
    bob.expect_with(&|l| l.contains("while you were away"), "the topic", TIMEOUT);
    // So is the suspension: erin's session on node b ends.
    erin.expect_prefix("! disconnected: the account erin is suspended", TIMEOUT);
    // And hears the room live again, each change once.
    carol.send("/part #r");
    bob.expect_line("* carol left #r", TIMEOUT);
    assert_eq!(bob.count("* carol joined #r"), 1);
    assert_eq!(bob.count("* dave left #r"), 1);
}

/// Runs `chatserver accounts ARGS… --cluster URL` with `stdin` as its
/// standard input; its exit status and standard output.
fn cluster_accounts(redis: &Redis, args: &[&str], stdin: &str) -> (i32, String) {
    let mut cmd = command(CHATSERVER);
    cmd.arg("accounts")
        .args(args)
        .args(["--cluster", &redis.url()]);
    cmd.stdin(std::process::Stdio::piped());
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start chatserver accounts");
    {
        let mut input = child.stdin.take().expect("piped stdin");
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("chatserver accounts ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

/// Logs `name` in on the node at `addr` once that node has applied an
/// account change published a moment ago (an earlier try is refused).
fn login_once_applied(addr: std::net::SocketAddr, name: &str, password: &str) -> Proc {
    let logged_in = format!("logged in as {name}; online: ");
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let mut client = spawn_client(addr, name, Password::Stdin(password));
        let line = client.expect_with(
            &|l| l.starts_with(&logged_in) || l.starts_with("! login failed"),
            "login or refusal",
            TIMEOUT,
        );
        if line.starts_with(&logged_in) {
            return client;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never logged in: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn account_changes_reach_every_running_node() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let a = Node::start_with(&redis, "a", &key, &["--admin", "root"]);
    let b = Node::start(&redis, "b", &key);
    let mut root = login(a.server.addr, "root", "root-password");
    let mut bob = login(b.server.addr, "bob", "bob-password");
    root.expect_line("* bob joined", TIMEOUT);

    // An admin on node a suspends bob, whose session is on node b.
    root.send("/suspend bob 1h spamming");
    root.expect_line("done: suspend bob", TIMEOUT);
    bob.expect_prefix(
        "! disconnected: the account bob is suspended until ",
        TIMEOUT,
    );
    root.expect_line("* bob left (suspended)", TIMEOUT);
    assert!(
        redis
            .command("HGET udpchat:accounts bob")
            .contains("spamming")
    );
    let mut again = spawn_client(b.server.addr, "bob", Password::Stdin("bob-password"));
    again.expect_prefix(
        "! login failed: the account bob is suspended until ",
        TIMEOUT,
    );

    // The accounts tool lifts it and sets a new password: both nodes
    // apply it at once.
    let (code, out) = cluster_accounts(&redis, &["unsuspend", "bob"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("bob is no longer suspended"), "{out}");
    let (code, out) = cluster_accounts(&redis, &["passwd", "bob"], "bob-new-password\n");
    assert_eq!(code, 0, "{out}");
    let mut bob = login_once_applied(b.server.addr, "bob", "bob-new-password");
    exit_cleanly(&mut bob);
    let mut bob = login_once_applied(a.server.addr, "bob", "bob-new-password");
    let mut old = spawn_client(a.server.addr, "bob", Password::Stdin("bob-password"));
    old.expect_prefix("! login failed: wrong password", TIMEOUT);

    // Suspended by the tool: bob's session on node a ends.
    let (code, out) = cluster_accounts(&redis, &["suspend", "bob", "--reason", "later"], "");
    assert_eq!(code, 0, "{out}");
    bob.expect_prefix("! disconnected: the account bob is suspended", TIMEOUT);

    // Added by the tool: every node lets the new account in.
    let (code, out) = cluster_accounts(&redis, &["add", "carol"], "carol-password\n");
    assert_eq!(code, 0, "{out}");
    let mut carol = login_once_applied(b.server.addr, "carol", "carol-password");
    let (code, out) = cluster_accounts(&redis, &["add", "Carol"], "another\n");
    assert_eq!(code, 1, "a name taken in the cluster: {out}");

    // Deleted by the tool: carol's session on node b ends; the account is
    // gone everywhere.
    let (code, out) = cluster_accounts(&redis, &["delete", "carol", "--yes"], "");
    assert_eq!(code, 0, "{out}");
    carol.expect_with(
        &|l| l.contains("the account carol was deleted"),
        "deleted",
        TIMEOUT,
    );
    assert_eq!(redis.command("HEXISTS udpchat:accounts carol"), ":0");
    let (_, listed) = cluster_accounts(&redis, &["list"], "");
    assert!(
        listed.contains("bob") && listed.contains("root"),
        "{listed}"
    );
    assert!(!listed.contains("carol"), "{listed}");
}

#[test]
fn a_rooms_stream_keeps_history_max_days_back_from_its_latest_message() {
    let redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    // Three messages of 1970 and one of an hour ago.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 3_600_000;
    for command in [
        "SADD udpchat:rooms #old".to_string(),
        "HSET udpchat:room:#old epoch e1 owner zoe topic t created 0 last_offset 4".to_string(),
        "HSET udpchat:room:#old:members zoe zoe".to_string(),
        "XADD udpchat:room:#old:stream 1-1 from zoe text one time 1000".to_string(),
        "XADD udpchat:room:#old:stream 2-1 from zoe text two time 2000".to_string(),
        "XADD udpchat:room:#old:stream 3-1 from zoe text three time 3000".to_string(),
        format!("XADD udpchat:room:#old:stream 4-1 from zoe text four time {hour_ago}"),
    ] {
        redis.command(&command);
    }
    let a = Node::start_with(&redis, "a", &key, &["--history-max-days", "1"]);
    let mut alice = login(a.server.addr, "alice", "a");
    alice.send("/join #old");
    alice.expect_prefix("* you joined #old", TIMEOUT);
    // The next message drops those more than a day older than it.
    alice.send("/msg #old now");
    alice.expect_prefix("ok: message stored in #old", TIMEOUT);
    assert_eq!(redis.command("XLEN udpchat:room:#old:stream"), ":2");
    assert_eq!(
        redis.command("XRANGE udpchat:room:#old:stream - (4-1"),
        "*0"
    );
    // A node started now has what the stream kept.
    let b = Node::start(&redis, "b", &key);
    let mut bob = login(b.server.addr, "bob", "b");
    bob.send("/join #old");
    bob.expect_prefix("* you joined #old", TIMEOUT);
    bob.send("/history #old 10");
    bob.expect_line("(end of history of #old: 2 messages)", TIMEOUT);
    assert_eq!(bob.count("[#old 00:00] <zoe> one"), 0);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
}

/// The numbers `n` of the lines `<from> TAG n` a client printed for `room`,
/// live or as history, in the order it printed them.
fn room_numbers(client: &mut Proc, room: &str, from: &str, tag: &str) -> Vec<u32> {
    let prefix = format!("[{room}");
    let marker = format!("] <{from}> {tag} ");
    client
        .out
        .seen()
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let (_, n) = l.split_once(&marker)?;
            n.parse().ok()
        })
        .collect()
}

/// The offsets of the `ok: message stored in ROOM (offset N)` lines a
/// client printed.
fn confirmed_offsets(client: &mut Proc, room: &str) -> Vec<u64> {
    let prefix = format!("ok: message stored in {room} (offset ");
    client
        .out
        .seen()
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix(')')?.parse().ok())
        .collect()
}

#[test]
fn a_client_that_fails_over_resumes_its_room_without_loss_or_repeat() {
    const MESSAGES: u32 = 150;
    const KILL_AT: u32 = 50;
    let redis = Redis::start();
    let key_dir = temp_dir();
    let [mut a, b, c] = three_nodes(&redis, &key_dir);
    let fallback = b.server.addr.to_string();
    let mut alice = spawn_client_with(
        a.server.addr,
        "alice",
        Password::Stdin("a"),
        &["--reconnect", "--fallback", &fallback],
    );
    alice.expect_prefix("registered and logged in as alice", TIMEOUT);
    alice.send("/join #r");
    alice.expect_line("* you joined #r; members: alice", TIMEOUT);
    let mut bob = login(c.server.addr, "bob", "b");
    bob.send("/join #r");
    bob.expect_prefix("* you joined #r; members: ", TIMEOUT);
    alice.expect_line("* bob joined #r", TIMEOUT);

    // bob talks steadily; node a dies in the middle of it.
    for i in 0..MESSAGES {
        bob.send(&format!("/msg #r n {i}"));
        if i == KILL_AT {
            a.server.proc.kill();
            // What alice's client sends next meets nothing listening: it
            // gives node a up and goes on to node b.
            alice.send("/who");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bob.wait_until(
        &|seen| {
            seen.iter()
                .filter(|l| l.starts_with("ok: message stored in #r"))
                .count()
                == MESSAGES as usize
        },
        "every message confirmed",
        TIMEOUT,
    );
    let offsets = confirmed_offsets(&mut bob, "#r");
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets not increasing: {offsets:?}"
    );

    alice.expect_prefix("! disconnected: lost the server", TIMEOUT);
    alice.expect_line("Reconnecting as alice (attempt 1)...", TIMEOUT);
    alice.expect_prefix("logged in as alice; online: ", TIMEOUT);
    alice.expect_prefix("resumed #r: ", TIMEOUT);
    let last = format!("<bob> n {}", MESSAGES - 1);
    alice.expect_with(&|l| l.ends_with(&last), "bob's last message", TIMEOUT);
    // Each confirmed message once, in order, across both nodes.
    let seen = room_numbers(&mut alice, "#r", "bob", "n");
    let expected: Vec<u32> = (0..MESSAGES).collect();
    if seen != expected {
        alice.fail(&format!("bob's messages as alice saw them: {seen:?}"));
    }
    // Still in the room on node b.
    bob.send("/msg #r after the failover");
    alice.expect_line("[#r] <bob> after the failover", TIMEOUT);
    exit_cleanly(&mut alice);
    exit_cleanly(&mut bob);
}

/// The JSON events a `--json` client printed so far.
fn json_events(client: &mut Proc) -> Vec<serde_json::Value> {
    client
        .out
        .seen()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The string field `field` of a JSON event.
fn field<'a>(event: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    event.get(field)?.as_str()
}

/// The JSON events of `client` whose `type` is `kind`.
fn events_of(client: &mut Proc, kind: &str) -> Vec<serde_json::Value> {
    json_events(client)
        .into_iter()
        .filter(|e| field(e, "type") == Some(kind))
        .collect()
}

/// Waits until a `--json` client's online list (asked with `/who`) is
/// `expected`.
fn wait_online_json(client: &mut Proc, expected: &[&str]) {
    let want = names(expected);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let before = events_of(client, "online").len();
        client.send("/who");
        client.wait_until(
            &|seen| {
                seen.iter()
                    .filter(|l| l.contains(r#""type":"online""#))
                    .count()
                    > before
            },
            "the online list",
            TIMEOUT,
        );
        let last = events_of(client, "online").pop().expect("waited for it");
        let users: std::collections::BTreeSet<String> = last["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect();
        if users == want {
            return;
        }
        if std::time::Instant::now() >= deadline {
            client.fail(&format!("online is {users:?}, expected {want:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `make(k)` for k = 0, 1, ... until `client` prints an event of
/// type `kind` with that text (Redis may need a moment to be used again).
/// `make` gives the line to send and the text it sends.
fn send_until_confirmed(client: &mut Proc, kind: &str, make: &dyn Fn(u32) -> (String, String)) {
    for k in 0..30 {
        let (line, text) = make(k);
        client.send(&line);
        let found = client.find_with(
            &|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                    field(&e, "type") == Some(kind) && field(&e, "text") == Some(text.as_str())
                })
            },
            Duration::from_millis(500),
        );
        if found.is_some() {
            return;
        }
    }
    client.fail(&format!(
        "nothing of type {kind} confirmed after Redis came back"
    ))
}

#[test]
fn redis_killed_and_restarted_during_traffic_loses_nothing_confirmed() {
    const ROUNDS: u32 = 180;
    const KILL_AT: u32 = 20;
    const RESTART_AT: u32 = 140;
    const USERS: [&str; 3] = ["alice", "bob", "carol"];
    let mut redis = Redis::start();
    let key_dir = temp_dir();
    let key = key_dir.path().join("chat_server.key");
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| Node::start(&redis, n, &key))
        .collect();
    let mut users: Vec<Proc> = USERS
        .iter()
        .zip(&nodes)
        .map(|(name, node)| {
            let mut p =
                spawn_client_with(node.server.addr, name, Password::Stdin(name), &["--json"]);
            p.expect_with(&|l| l.contains(r#""type":"logged_in""#), "login", TIMEOUT);
            p.send("/join #r");
            p.expect_with(&|l| l.contains(r#""type":"room_joined""#), "join", TIMEOUT);
            p
        })
        .collect();
    for u in &mut users {
        wait_online_json(u, &USERS);
    }

    // Each user says something in the room and to the next user every
    // 50 ms; Redis is killed after 1 s and started again 6 s later (past
    // the nodes' 5 s leases).
    for round in 0..ROUNDS {
        for (i, u) in users.iter_mut().enumerate() {
            let (me, next) = (USERS[i], USERS[(i + 1) % USERS.len()]);
            u.send(&format!("/msg #r {me} r {round}"));
            u.send(&format!("/msg {next} {me} d {round}"));
        }
        if round == KILL_AT {
            redis.kill();
        }
        if round == RESTART_AT {
            redis.restart();
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // No node fell over, and presence converges on every node.
    for node in &mut nodes {
        node.server.assert_running();
    }
    for u in &mut users {
        wait_online_json(u, &USERS);
    }
    // One more message of each kind from everyone, once Redis takes them:
    // everything sent before has had its answer.
    for (i, u) in users.iter_mut().enumerate() {
        let (me, next) = (USERS[i], USERS[(i + 1) % USERS.len()]);
        send_until_confirmed(u, "said", &|k| {
            let text = format!("{me} r final {k}");
            (format!("/msg #r {text}"), text)
        });
        send_until_confirmed(u, "confirmation", &|k| {
            let text = format!("{me} d final {k}");
            (format!("/msg {next} {text}"), text)
        });
    }

    // The room's history as Redis has it: offset to (from, text).
    let con = ::redis::Client::open(redis.url()).expect("a Redis URL");
    let mut con = con.get_connection().expect("connect to Redis");
    let stream: ::redis::streams::StreamRangeReply = ::redis::cmd("XRANGE")
        .arg("udpchat:room:#r:stream")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .expect("read the room's stream");
    let history: std::collections::BTreeMap<u64, (String, String)> = stream
        .ids
        .iter()
        .map(|e| {
            let offset = e.id.split('-').next().unwrap().parse().unwrap();
            let get = |f: &str| e.get::<String>(f).unwrap_or_default();
            (offset, (get("from"), get("text")))
        })
        .collect();

    let mut confirmed_dms = Vec::new();
    let mut confirmed_room = 0;
    for (i, u) in users.iter_mut().enumerate() {
        let me = USERS[i];
        // Every room message confirmed is in the room's history, under the
        // offset confirmed.
        for said in events_of(u, "said") {
            let offset = said["offset"].as_u64().expect("an offset");
            let text = field(&said, "text").expect("the text").to_string();
            let kept = history.get(&offset);
            if kept != Some(&(me.to_string(), text.clone())) {
                u.fail(&format!(
                    "{text:?} confirmed at {offset}; history has {kept:?}"
                ));
            }
            confirmed_room += 1;
        }
        for c in events_of(u, "confirmation") {
            if field(&c, "kind") == Some("direct") {
                let to = field(&c, "to").expect("a recipient").to_string();
                let text = field(&c, "text").expect("the text").to_string();
                confirmed_dms.push((me, to, text));
            }
        }
    }
    // Before Redis went and after it came back, at least.
    assert!(
        confirmed_room > 3 * KILL_AT as usize,
        "only {confirmed_room} room messages confirmed"
    );

    // Every direct message confirmed reaches its recipient.
    for (from, to, text) in &confirmed_dms {
        let i = USERS.iter().position(|u| u == to).expect("a test user");
        let want = (from.to_string(), text.clone());
        users[i].wait_until(
            &|seen| {
                seen.iter().any(|l| {
                    serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                        field(&e, "type") == Some("direct")
                            && (field(&e, "from"), field(&e, "text"))
                                == (Some(want.0.as_str()), Some(want.1.as_str()))
                    })
                })
            },
            &format!("{from}'s confirmed direct message {text:?}"),
            TIMEOUT,
        );
    }
    // Every room message confirmed reaches the room's other members too,
    // live or recovered by offset once their node subscribed again.
    let said: Vec<(&str, String)> = USERS
        .iter()
        .zip(users.iter_mut())
        .flat_map(|(me, u)| {
            events_of(u, "said")
                .into_iter()
                .map(|e| (*me, field(&e, "text").expect("the text").to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (i, u) in users.iter_mut().enumerate() {
        for (from, text) in said.iter().filter(|(from, _)| *from != USERS[i]) {
            let want = (from.to_string(), text.clone());
            u.wait_until(
                &|seen| {
                    seen.iter().any(|l| {
                        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                            field(&e, "type") == Some("room_message")
                                && (field(&e, "from"), field(&e, "text"))
                                    == (Some(want.0.as_str()), Some(want.1.as_str()))
                        })
                    })
                },
                &format!("{from}'s confirmed room message {text:?}"),
                TIMEOUT,
            );
        }
    }
    // Nothing reaches anyone twice: room messages (live or recovered) and
    // direct messages.
    for u in users.iter_mut() {
        let mut seen = std::collections::BTreeSet::new();
        for e in json_events(u) {
            let kind = field(&e, "type");
            if kind != Some("room_message") && kind != Some("direct") {
                continue;
            }
            let key = (
                kind.unwrap().to_string(),
                field(&e, "from").unwrap_or_default().to_string(),
                field(&e, "text").unwrap_or_default().to_string(),
            );
            if !seen.insert(key.clone()) {
                u.fail(&format!("{key:?} delivered twice"));
            }
        }
    }
    for node in &mut nodes {
        node.server.assert_running();
    }
}
