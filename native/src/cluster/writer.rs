//! The writer thread: what this node publishes, pipelined, and the
//! scripted writes (registrations, account changes, rooms, room
//! messages).

use super::*;

pub(super) struct Writer<W> {
    pub(super) client: redis::Client,
    /// Messages kept per room's stream (about: `MAXLEN ~`).
    pub(super) max_messages: u64,
    /// The age of a room's oldest message kept, in ms.
    pub(super) max_age_ms: u64,
    /// Each room's latest messages the server keeps in memory.
    pub(super) room_memory: usize,
    pub(super) con: Option<redis::Connection>,
    pub(super) node: String,
    pub(super) events: Sender<Event>,
    pub(super) wake: W,
    pub(super) connected: Arc<AtomicBool>,
}

impl<W: Fn()> Writer<W> {
    pub(super) fn run(mut self, jobs: &Receiver<Job>) {
        let register = redis::Script::new(REGISTER);
        let append = redis::Script::new(APPEND);
        let create_room = redis::Script::new(CREATE_ROOM);
        let change_account = redis::Script::new(CHANGE_ACCOUNT);
        let mut batch = Vec::with_capacity(PIPELINE);
        while let Ok(first) = jobs.recv() {
            batch.push(first);
            while batch.len() < PIPELINE {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // Writes and publications go in one pipeline; a job that needs
            // its own answer (a script, a read) sends what came before it
            // first, so that Redis sees every job in order.
            let mut pipe = redis::pipe();
            let mut stores = Vec::new();
            for job in batch.drain(..) {
                let answer = match job {
                    Job::Store {
                        id,
                        op: StoreOp::Append { room, message },
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self.append(&append, &room, &message);
                        Event::Appended { id, result }
                    }
                    Job::Store {
                        id,
                        op:
                            StoreOp::CreateRoom {
                                room,
                                epoch,
                                owner,
                                time,
                            },
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        match self.create_room(&create_room, &room, &epoch, &owner, time) {
                            Ok(None) => Event::Stored { id, result: Ok(()) },
                            Ok(Some(room)) => Event::RoomFound { id, room },
                            Err(e) => Event::Stored { id, result: Err(e) },
                        }
                    }
                    Job::Store { id, op } => {
                        self.stage(&mut pipe, op);
                        stores.push(id);
                        continue;
                    }
                    Job::Publish(m) => {
                        self.stage_publish(&mut pipe, &m);
                        continue;
                    }
                    Job::Register { id, name, hash } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self.register(&register, &name, &hash);
                        Event::Registered { id, result }
                    }
                    Job::Account { id, op } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let node = self.node.clone();
                        let result = self
                            .with_connection(|con| {
                                change_suspension(con, &change_account, &node, &op)
                            })
                            .map_err(|e| {
                                warn!(error = %e, "could not change an account in Redis");
                                e.to_string()
                            })
                            .and_then(|changed| {
                                if changed {
                                    Ok(())
                                } else {
                                    Err("no such account in the cluster".to_string())
                                }
                            });
                        Event::Stored { id, result }
                    }
                    Job::History {
                        id,
                        room,
                        page,
                        limit,
                    } => {
                        if !self.send(&mut pipe, &mut stores) {
                            return;
                        }
                        let result = self
                            .with_connection(|con| read_page(con, &room, page, limit))
                            .map_err(|e| e.to_string());
                        Event::History { id, result }
                    }
                };
                if self.events.send(answer).is_err() {
                    return;
                }
                (self.wake)();
            }
            if !self.send(&mut pipe, &mut stores) {
                return;
            }
        }
    }

    /// Sends what `pipe` holds and answers the store requests in it; false
    /// once the event loop is gone.
    fn send(&mut self, pipe: &mut redis::Pipeline, stores: &mut Vec<u64>) -> bool {
        if pipe.is_empty() {
            return true;
        }
        let sent = self.with_connection(|con| pipe.query::<()>(con));
        pipe.clear();
        if let Err(e) = &sent {
            warn!(error = %e, "could not write to the cluster");
        }
        for id in stores.drain(..) {
            let result = sent.as_ref().copied().map_err(ToString::to_string);
            if self.events.send(Event::Stored { id, result }).is_err() {
                return false;
            }
            (self.wake)();
        }
        true
    }

    /// Adds a publication (and this node's presence with it) to `pipe`.
    fn stage_publish(&self, pipe: &mut redis::Pipeline, m: &ClusterMessage) {
        match m {
            ClusterMessage::Login { user, .. } => {
                pipe.cmd("HSET")
                    .arg(presence_key(&self.node))
                    .arg(username_key(user))
                    .arg(user)
                    .ignore();
            }
            ClusterMessage::Logout { user, .. } => {
                pipe.cmd("HDEL")
                    .arg(presence_key(&self.node))
                    .arg(username_key(user))
                    .ignore()
                    .cmd("HDEL")
                    .arg(away_key(&self.node))
                    .arg(username_key(user))
                    .ignore();
            }
            ClusterMessage::Away { user, text, .. } => {
                match text {
                    Some(text) => pipe
                        .cmd("HSET")
                        .arg(away_key(&self.node))
                        .arg(username_key(user))
                        .arg(text)
                        .ignore()
                        .cmd("PEXPIRE")
                        .arg(away_key(&self.node))
                        .arg(LEASE.as_millis() as u64)
                        .ignore(),
                    None => pipe
                        .cmd("HDEL")
                        .arg(away_key(&self.node))
                        .arg(username_key(user))
                        .ignore(),
                };
            }
            _ => {}
        }
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(m.encode()).ignore();
    }

    /// Adds a change to `pipe` (with the publication other nodes need).
    fn stage(&self, pipe: &mut redis::Pipeline, op: StoreOp) {
        match op {
            StoreOp::PutOffline(m) => {
                let message = ClusterMessage::offline(&self.node, &m).encode();
                pipe.cmd("HSET")
                    .arg(offline_key(&m.to))
                    .arg(m.id)
                    .arg(&message)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(&message)
                    .ignore();
            }
            StoreOp::RemoveOffline { to, id } => {
                let message = ClusterMessage::OfflineRemoved {
                    node: self.node.clone(),
                    to: to.clone(),
                    id,
                }
                .encode();
                pipe.cmd("HDEL")
                    .arg(offline_key(&to))
                    .arg(id)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(message)
                    .ignore();
            }
            StoreOp::Join { room, user } => {
                pipe.cmd("HSET")
                    .arg(members_key(&room))
                    .arg(username_key(&user))
                    .arg(&user)
                    .ignore();
            }
            StoreOp::Part { room, user } => {
                pipe.cmd("HDEL")
                    .arg(members_key(&room))
                    .arg(username_key(&user))
                    .ignore();
            }
            StoreOp::DeleteRoom { room } => {
                pipe.cmd("SREM")
                    .arg(ROOMS)
                    .arg(&room)
                    .ignore()
                    .cmd("DEL")
                    .arg(room_key(&room))
                    .arg(members_key(&room))
                    .arg(stream_key(&room))
                    .ignore();
            }
            StoreOp::SetTopic { room, topic } => {
                pipe.cmd("HSET")
                    .arg(room_key(&room))
                    .arg("topic")
                    .arg(topic)
                    .ignore();
            }
            StoreOp::SetRoles { room, owner, roles } => {
                pipe.cmd("HSET")
                    .arg(room_key(&room))
                    .arg("owner")
                    .arg(owner)
                    .arg("roles")
                    .arg(encode_roles(&roles))
                    .ignore();
            }
            // Sent on their own, answered (see Writer::run); the others
            // are kept by the node's own chat store (see Cluster::keeps).
            StoreOp::Append { .. }
            | StoreOp::CreateRoom { .. }
            | StoreOp::Audit(_)
            | StoreOp::BanAddress(_)
            | StoreOp::UnbanAddress { .. }
            | StoreOp::Registration(_)
            | StoreOp::AddInvite(_)
            | StoreOp::RemoveInvite { .. } => {}
        }
    }

    /// Appends a room message: Redis gives it the room's next offset,
    /// keeps it in the room's stream and publishes it, in one script.
    fn append(
        &mut self,
        script: &redis::Script,
        room: &str,
        message: &RoomMessage,
    ) -> Result<u64, String> {
        let max = self.max_messages;
        let max_age = self.max_age_ms;
        let node = self.node.clone();
        self.with_connection(|con| {
            script
                .key(room_key(room))
                .key(stream_key(room))
                .key(CHANNEL)
                .arg(max)
                .arg(&message.from)
                .arg(&message.text)
                .arg(message.time)
                .arg(&node)
                .arg(room)
                .arg(max_age)
                .arg(TRIM_PER_APPEND)
                .invoke::<u64>(con)
        })
        .map_err(|e| {
            warn!(error = %e, %room, "could not append a room message in Redis");
            e.to_string()
        })
    }

    /// Makes a room, or joins `owner` to the room another node made
    /// meanwhile, which it then reads (`Some`): a room is never replaced,
    /// its history stays.
    fn create_room(
        &mut self,
        script: &redis::Script,
        room: &str,
        epoch: &str,
        owner: &str,
        time: u64,
    ) -> Result<Option<RoomRecord>, String> {
        let keep = self.room_memory;
        self.with_connection(|con| {
            let made: i64 = script
                .key(room_key(room))
                .key(members_key(room))
                .key(ROOMS)
                .arg(room)
                .arg(epoch)
                .arg(owner)
                .arg(time)
                .arg(username_key(owner))
                .invoke(con)?;
            if made == 1 {
                return Ok(None);
            }
            info!(%room, "the room was in Redis already; this node takes it as it is there");
            read_room(con, room.to_string(), keep).map(Some)
        })
        .map_err(|e| {
            warn!(error = %e, %room, "could not make a room in Redis");
            e.to_string()
        })
    }

    fn register(
        &mut self,
        script: &redis::Script,
        name: &str,
        hash: &str,
    ) -> Result<String, String> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = UserRecord {
            name: name.to_string(),
            password_hash: hash.to_string(),
            created,
            suspended: None,
        };
        let json = serde_json::to_string(&record).map_err(|e| e.to_string())?;
        let message = ClusterMessage::Account {
            node: self.node.clone(),
            name: name.to_string(),
            password_hash: hash.to_string(),
        }
        .encode();
        let key = username_key(name);
        let added = self.with_connection(|con| {
            script
                .key(ACCOUNTS)
                .key(CHANNEL)
                .arg(&key)
                .arg(&json)
                .arg(&message)
                .invoke::<i64>(con)
        });
        match added {
            Ok(1) => Ok(hash.to_string()),
            Ok(_) => Err(format!("{name} was just registered on another node")),
            Err(e) => {
                warn!(error = %e, user = name, "could not store a new account in Redis");
                Err(format!("the account store is unreachable: {e}"))
            }
        }
    }

    /// Runs `f` on the connection, connecting first if there is none; a
    /// failed connection is dropped (the next call connects again).
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        if self.con.is_none() {
            match connect(&self.client) {
                Ok(con) => self.con = Some(con),
                Err(e) => {
                    set_connected(&self.connected, false, Some(&e));
                    return Err(e);
                }
            }
        }
        let Some(con) = self.con.as_mut() else {
            unreachable!("connected above")
        };
        let result = f(con);
        if let Err(e) = &result
            && (e.is_io_error() || e.is_connection_dropped() || e.is_timeout())
        {
            self.con = None;
            set_connected(&self.connected, false, Some(e));
        }
        result
    }
}
