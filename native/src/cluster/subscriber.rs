//! The subscriber thread: listens on the channel and, after every
//! (re)subscription, hands the event loop a snapshot.

use super::*;

/// What the subscriber thread works with.
pub(super) struct Heard<'a, W> {
    pub(super) node: &'a str,
    /// Each room's latest messages to read into a snapshot.
    pub(super) keep: usize,
    pub(super) events: &'a Sender<Event>,
    pub(super) wake: &'a W,
    pub(super) connected: &'a AtomicBool,
    pub(super) health: &'a Health,
    /// What heartbeats count their microseconds from.
    pub(super) epoch: std::time::Instant,
}

/// The subscriber thread: subscribes, hands the loop a snapshot, forwards
/// every message; on any failure, waits a second and starts again.
pub(super) fn subscribe<W: Fn()>(client: &redis::Client, heard: &Heard<'_, W>) {
    loop {
        let result = subscribe_once(client, heard);
        heard.health.lag_micros.store(u64::MAX, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(e) => {
                set_connected(heard.connected, false, Some(&e));
                thread::sleep(LEASE_RENEW);
            }
        }
    }
}

/// One subscription, until it fails (Err) or the loop is gone (Ok).
pub(super) fn subscribe_once<W: Fn()>(
    client: &redis::Client,
    heard: &Heard<'_, W>,
) -> redis::RedisResult<()> {
    let Heard {
        node,
        keep,
        events,
        wake,
        connected,
        health,
        epoch,
    } = *heard;
    let heartbeats = heartbeat_channel(node);
    let mut con = connect(client)?;
    let mut reader = connect(client)?;
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe(CHANNEL)?;
    pubsub.subscribe(&heartbeats)?;
    // Subscribed first, then read: nothing published meanwhile is missed.
    let accounts = read_accounts(&mut reader)?;
    let (users, away) = read_presence(&mut reader, node)?;
    let snapshot = Event::Snapshot {
        accounts,
        users,
        away,
        offline: read_offline(&mut reader)?,
        rooms: read_rooms(&mut reader, keep)?,
    };
    drop(reader);
    if events.send(snapshot).is_err() {
        return Ok(());
    }
    wake();
    set_connected(connected, true, None);
    // A read timeout only lets a dead connection be noticed; the
    // subscription stays.
    pubsub.set_read_timeout(Some(LEASE_RENEW))?;
    loop {
        let msg = match pubsub.get_message() {
            Ok(msg) => msg,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        if msg.get_channel_name() == heartbeats {
            // Sent after `epoch`, by the lease thread of this process.
            if let Some(sent) = std::str::from_utf8(msg.get_payload_bytes())
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
            {
                let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
                health.lag_micros.store(
                    now.saturating_sub(sent).min(u64::MAX - 1),
                    Ordering::Relaxed,
                );
            }
            continue;
        }
        match ClusterMessage::decode(msg.get_payload_bytes()) {
            // A node's own room messages come back to it: it relays them
            // in the order of their offsets, with the others'.
            Ok(m) if m.node() == node && !matches!(m, ClusterMessage::RoomMessage { .. }) => {}
            Ok(m) => {
                if events.send(Event::Message(m)).is_err() {
                    return Ok(());
                }
                wake();
            }
            Err(e) => warn!(error = %e, "unreadable message on the cluster channel"),
        }
    }
}
