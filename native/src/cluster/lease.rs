//! The lease thread: renews this node's lease and finds the nodes whose
//! lease expired.

use super::*;

/// The lease thread: renews this node's lease and presence, and looks for
/// nodes whose lease expired. The node that removes one from [`NODES`]
/// (`SREM` answers 1 to one node only) announces it to all. Each renewal
/// also counts the live nodes and sends a heartbeat to this node's own
/// subscriber (the microseconds since `epoch`).
pub(super) fn lease(
    client: &redis::Client,
    node: &str,
    events: &Sender<Event>,
    wake: &impl Fn(),
    health: &Health,
    epoch: std::time::Instant,
) {
    let mut con = None;
    let heartbeats = heartbeat_channel(node);
    let node_down = redis::Script::new(NODE_DOWN);
    loop {
        thread::sleep(LEASE_RENEW);
        if con.is_none() {
            con = connect(client).ok();
        }
        let Some(c) = con.as_mut() else { continue };
        let sent = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        let beat = redis::cmd("PUBLISH")
            .arg(&heartbeats)
            .arg(sent)
            .query::<()>(c);
        match beat.and_then(|()| renew(c, node, &node_down)) {
            Ok((live, gone, lapsed)) => {
                health.nodes.store(live, Ordering::Relaxed);
                if lapsed {
                    info!("this node's lease had lapsed; publishing its users again");
                    if events.send(Event::Lapsed).is_err() {
                        return;
                    }
                    wake();
                }
                for down in gone {
                    info!(node = %down, "a node stopped renewing its lease; its users are offline");
                    if events.send(Event::NodeGone(down)).is_err() {
                        return;
                    }
                    wake();
                }
            }
            Err(_) => con = None,
        }
    }
}

/// Takes a node for gone, in one atomic step: only if its lease (KEYS[1])
/// is still missing and this call removes it from the nodes (KEYS[2]), its
/// presence (KEYS[3]) and away texts (KEYS[5]) are deleted and `node_down`
/// (ARGV[2]) published on the channel (KEYS[4]). A node that renews its
/// lease finds itself removed either before (and publishes its users again
/// after the `node_down`) or not at all.
pub(super) const NODE_DOWN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[3], KEYS[5])
redis.call('PUBLISH', KEYS[4], ARGV[2])
return 1";

/// Renews `node`'s lease and presence; returns how many nodes are live
/// (this one included), the nodes found gone, and whether this node's
/// lease had lapsed or another node had taken it for gone (its users must
/// then be published again: a node that read the presence meanwhile, or
/// applied the `node_down`, left them out).
pub(super) fn renew(
    con: &mut redis::Connection,
    node: &str,
    node_down: &redis::Script,
) -> redis::RedisResult<(u64, Vec<String>, bool)> {
    let ms = LEASE.as_millis() as u64;
    let (previous, added): (Option<String>, i64) = redis::pipe()
        .cmd("SET")
        .arg(lease_key(node))
        .arg(1)
        .arg("PX")
        .arg(ms)
        .arg("GET")
        .cmd("PEXPIRE")
        .arg(presence_key(node))
        .arg(ms)
        .ignore()
        .cmd("PEXPIRE")
        .arg(away_key(node))
        .arg(ms)
        .ignore()
        .cmd("SADD")
        .arg(NODES)
        .arg(node)
        .query(con)?;
    let lapsed = previous.is_none() || added == 1;
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(NODES).query(con)?;
    let mut gone = Vec::new();
    let mut live = 1;
    for other in nodes.into_iter().filter(|n| n != node) {
        let alive: bool = redis::cmd("EXISTS").arg(lease_key(&other)).query(con)?;
        if alive {
            live += 1;
            continue;
        }
        let down = ClusterMessage::NodeDown {
            node: node.to_string(),
            down: other.clone(),
        }
        .encode();
        let removed: i64 = node_down
            .key(lease_key(&other))
            .key(NODES)
            .key(presence_key(&other))
            .key(CHANNEL)
            .key(away_key(&other))
            .arg(&other)
            .arg(down)
            .invoke(con)?;
        if removed == 1 {
            gone.push(other);
        }
    }
    Ok((live, gone, lapsed))
}
