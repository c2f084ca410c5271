//! Reading the cluster's state from Redis: accounts, rooms and their
//! history, offline messages, who is online; and the rooms' roles as
//! Redis keeps them.

use super::*;

/// A connection with timeouts.
pub(super) fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// Every account in Redis; one that does not parse is logged and left out.
pub(super) fn read_accounts(con: &mut redis::Connection) -> redis::RedisResult<Vec<UserRecord>> {
    let all: HashMap<String, String> = redis::cmd("HGETALL").arg(ACCOUNTS).query(con)?;
    Ok(all
        .into_iter()
        .filter_map(
            |(key, json)| match serde_json::from_str::<UserRecord>(&json) {
                Ok(u) => Some(u),
                Err(e) => {
                    warn!(account = %key, error = %e, "unreadable account in Redis; left out");
                    None
                }
            },
        )
        .collect())
}

/// A room message from a stream entry, if it is one.
pub(super) fn stream_message(entry: &redis::streams::StreamId) -> Option<RoomMessage> {
    let offset = entry.id.split('-').next()?.parse().ok()?;
    Some(RoomMessage {
        offset,
        from: entry.get("from")?,
        text: entry.get("text")?,
        time: entry.get("time")?,
    })
}

/// Every room, with its latest `keep` messages.
pub(super) fn read_rooms(
    con: &mut redis::Connection,
    keep: usize,
) -> redis::RedisResult<Vec<RoomRecord>> {
    let names: Vec<String> = redis::cmd("SMEMBERS").arg(ROOMS).query(con)?;
    let mut rooms = Vec::new();
    for name in names {
        rooms.push(read_room(con, name, keep)?);
    }
    Ok(rooms)
}

/// The room `name`, with its latest `keep` messages.
pub(super) fn read_room(
    con: &mut redis::Connection,
    name: String,
    keep: usize,
) -> redis::RedisResult<RoomRecord> {
    {
        let meta: HashMap<String, String> =
            redis::cmd("HGETALL").arg(room_key(&name)).query(con)?;
        let members: HashMap<String, String> =
            redis::cmd("HGETALL").arg(members_key(&name)).query(con)?;
        let latest: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(stream_key(&name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(keep)
            .query(con)?;
        let mut recent: Vec<RoomMessage> = latest.ids.iter().filter_map(stream_message).collect();
        recent.reverse();
        let field = |k: &str| meta.get(k).cloned().unwrap_or_default();
        let mut members: Vec<String> = members.into_values().collect();
        members.sort_by_key(|m| username_key(m));
        Ok(RoomRecord {
            epoch: field("epoch"),
            owner: field("owner"),
            topic: field("topic"),
            created: field("created").parse().unwrap_or(0),
            last_offset: field("last_offset").parse().unwrap_or(0),
            roles: decode_roles(&field("roles")),
            members,
            recent,
            name,
        })
    }
}

/// A page of a room's history, oldest first, and whether there is more
/// in that direction.
pub(super) fn read_page(
    con: &mut redis::Connection,
    room: &str,
    page: Page,
    limit: u32,
) -> redis::RedisResult<(Vec<RoomMessage>, bool)> {
    let limit = limit as usize;
    let reply: redis::streams::StreamRangeReply = match page {
        Page::Before(b) => redis::cmd("XREVRANGE")
            .arg(stream_key(room))
            .arg(format!("({b}-1"))
            .arg("-")
            .arg("COUNT")
            .arg(limit + 1)
            .query(con)?,
        Page::After(a) => redis::cmd("XRANGE")
            .arg(stream_key(room))
            .arg(format!("({a}-1"))
            .arg("+")
            .arg("COUNT")
            .arg(limit + 1)
            .query(con)?,
    };
    let mut messages: Vec<RoomMessage> = reply.ids.iter().filter_map(stream_message).collect();
    let more = messages.len() > limit;
    messages.truncate(limit);
    if let Page::Before(_) = page {
        messages.reverse();
    }
    Ok((messages, more))
}

/// Every direct message waiting for an offline user, oldest first.
pub(super) fn read_offline(con: &mut redis::Connection) -> redis::RedisResult<Vec<OfflineMessage>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("udpchat:offline:*")
            .arg("COUNT")
            .arg(1000)
            .query(con)?;
        keys.extend(found);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut all = Vec::new();
    for key in keys {
        let values: Vec<Vec<u8>> = redis::cmd("HVALS").arg(&key).query(con)?;
        for v in values {
            match ClusterMessage::decode(&v) {
                Ok(ClusterMessage::Offline {
                    id,
                    from,
                    to,
                    text,
                    time,
                    ..
                }) => all.push(OfflineMessage {
                    id,
                    from,
                    to,
                    text,
                    time,
                }),
                _ => warn!(%key, "unreadable stored direct message in Redis; left out"),
            }
        }
    }
    all.sort_by_key(|m| m.id);
    Ok(all)
}

/// Who is online on the live nodes other than `me`: (node, name).
/// Users online on the other live nodes as (node, name), and those of
/// them who are away as (name, away text).
type Presence = (Vec<(String, String)>, Vec<(String, String)>);

pub(super) fn read_presence(con: &mut redis::Connection, me: &str) -> redis::RedisResult<Presence> {
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(NODES).query(con)?;
    let mut users = Vec::new();
    let mut away = Vec::new();
    for node in nodes.into_iter().filter(|n| n != me) {
        let alive: bool = redis::cmd("EXISTS").arg(lease_key(&node)).query(con)?;
        if !alive {
            continue;
        }
        let here: HashMap<String, String> =
            redis::cmd("HGETALL").arg(presence_key(&node)).query(con)?;
        let mut texts: HashMap<String, String> =
            redis::cmd("HGETALL").arg(away_key(&node)).query(con)?;
        for (key, name) in here {
            if let Some(text) = texts.remove(&key) {
                away.push((name.clone(), text));
            }
            users.push((node.clone(), name));
        }
    }
    Ok((users, away))
}

/// A room's roles as the `roles` field of its Redis hash keeps them (JSON).
pub(super) fn encode_roles(roles: &RoomRoles) -> String {
    serde_json::json!({
        "ops": roles.ops,
        "bans": roles
            .bans
            .iter()
            .map(|b| serde_json::json!({"user": b.user, "until": b.until}))
            .collect::<Vec<_>>(),
        "muted": roles.muted,
        "topic_locked": roles.topic_locked,
        "moderated": roles.moderated,
    })
    .to_string()
}

/// The roles [`encode_roles`] wrote; none when the field is absent or
/// does not parse (a room made before roles existed).
pub(super) fn decode_roles(text: &str) -> RoomRoles {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Ban {
        user: String,
        until: Option<u64>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Roles {
        ops: Vec<String>,
        bans: Vec<Ban>,
        muted: Vec<String>,
        topic_locked: bool,
        moderated: bool,
    }
    let r: Roles = serde_json::from_str(text).unwrap_or_default();
    RoomRoles {
        ops: r.ops,
        bans: r
            .bans
            .into_iter()
            .map(|b| RoomBan {
                user: b.user,
                until: b.until,
            })
            .collect(),
        muted: r.muted,
        topic_locked: r.topic_locked,
        moderated: r.moderated,
    }
}
