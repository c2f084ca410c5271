//! Room history: pages of it (`history`), and resuming where a client
//! left each room after it logs in again (PROTOCOL.md §5.10).

use super::rooms::room_msg;
use super::*;
use crate::session::MAX_HISTORY_PAGE;

impl Server {
    pub(super) fn on_history(
        &mut self,
        conn: u64,
        name: &str,
        room: String,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
    ) {
        if !self.member_of(conn, name, &room) {
            return;
        }
        let limit = limit.unwrap_or(MAX_HISTORY_PAGE).min(MAX_HISTORY_PAGE);
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                self.error(
                    conn,
                    ErrorCode::BadMessage,
                    "history takes before or after, not both".to_string(),
                );
                return;
            }
            (_, Some(a)) => Page::After(a),
            (Some(b), None) => Page::Before(b),
            (None, None) => Page::Before(r.last_offset.saturating_add(1)),
        };
        let first_in_memory = r.recent.front().map_or(r.next_offset, |m| m.offset);
        let limit_n = limit as usize;
        // From memory when it holds the whole page, or everything there is
        // in that direction; otherwise the store reads it.
        let answer: Option<(Vec<Arc<RoomMessage>>, bool)> = match page {
            Page::Before(b) => {
                let below: Vec<&Arc<RoomMessage>> =
                    r.recent.iter().take_while(|m| m.offset < b).collect();
                if below.len() >= limit_n || r.complete {
                    let skip = below.len().saturating_sub(limit_n);
                    let more = skip > 0 || !r.complete;
                    Some((below[skip..].iter().map(|m| (*m).clone()).collect(), more))
                } else {
                    None
                }
            }
            Page::After(a) => (r.complete || a.saturating_add(1) >= first_in_memory).then(|| {
                let page: Vec<Arc<RoomMessage>> = r
                    .recent
                    .iter()
                    .filter(|m| m.offset > a)
                    .take(limit_n)
                    .cloned()
                    .collect();
                let more = page.last().is_some_and(|m| m.offset < r.last_offset);
                (page, more)
            }),
        };
        match answer {
            Some((messages, more)) => {
                let messages: Vec<RoomMessage> = messages.iter().map(|m| (**m).clone()).collect();
                self.send_history(conn, &room, &messages, more);
            }
            None => {
                let id = self.next_request;
                self.next_request += 1;
                self.reads.insert(id, (conn, room.clone()));
                self.requests.push_back(Request::History {
                    id,
                    room,
                    page,
                    limit,
                });
            }
        }
    }

    /// Sends a page of history and its `history_end`.
    pub(super) fn send_history(
        &mut self,
        conn: u64,
        room: &str,
        messages: &[RoomMessage],
        more: bool,
    ) {
        for m in messages {
            self.send(conn, &room_msg(room, m, true));
        }
        let (epoch, offset) = self
            .rooms
            .get(room)
            .map(|r| (r.epoch.clone(), r.last_offset))
            .unwrap_or_default();
        self.send(
            conn,
            &ServerMessage::HistoryEnd {
                room: room.to_string(),
                epoch,
                offset,
                count: u32::try_from(messages.len()).unwrap_or(u32::MAX),
                more,
            },
        );
    }

    /// After `login_ok`: answers the client's resume positions, then
    /// sends the direct messages that waited.
    pub(super) fn after_login(&mut self, conn: u64, name: &str) {
        let positions = self
            .sessions
            .get_mut(&conn)
            .map(|s| core::mem::take(&mut s.resume))
            .unwrap_or_default();
        let key = username_key(name);
        for p in positions {
            let Some(r) = self.rooms.get(&p.room) else {
                continue;
            };
            if !r.members.contains_key(&key) {
                continue;
            }
            let (epoch, last) = (r.epoch.clone(), r.last_offset);
            let first_in_memory = r.recent.front().map_or(r.next_offset, |m| m.offset);
            let (recovered, missed, replay) = if p.epoch != epoch {
                (false, 0, Vec::new())
            } else if p.offset >= last {
                (true, 0, Vec::new())
            } else {
                let missed = last - p.offset;
                if missed as usize <= self.config.max_replay && p.offset + 1 >= first_in_memory {
                    let replay: Vec<Arc<RoomMessage>> = r
                        .recent
                        .iter()
                        .filter(|m| m.offset > p.offset)
                        .cloned()
                        .collect();
                    (true, replay.len() as u64, replay)
                } else {
                    (false, missed, Vec::new())
                }
            };
            for m in replay {
                self.send(conn, &room_msg(&p.room, &m, true));
            }
            self.send(
                conn,
                &ServerMessage::RoomResume {
                    room: p.room,
                    recovered,
                    missed,
                    epoch,
                    offset: last,
                },
            );
        }
        self.deliver_offline(conn, &key, true);
    }
}
