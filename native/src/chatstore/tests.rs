use super::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use udpchat_core::server::store::MemoryStore;

fn msg(offset: u64, time: u64, text: &str) -> RoomMessage {
    RoomMessage {
        offset,
        from: "alice".into(),
        text: text.into(),
        time,
    }
}

fn create(room: &str, owner: &str) -> StoreOp {
    StoreOp::CreateRoom {
        room: room.into(),
        epoch: format!("{:016x}", room.len() as u64 * 77 + owner.len() as u64),
        owner: owner.into(),
        time: 1_000,
    }
}

/// A snapshot with members sorted (their order is not kept).
fn sorted(mut s: Snapshot) -> Snapshot {
    for r in &mut s.rooms {
        r.members.sort();
    }
    s
}

/// The retention of the model tests: 20 messages per room, 5 s old at most.
const MODEL_RETENTION: Retention = Retention {
    max_messages: 20,
    max_age_ms: 5_000,
};

/// A store in a new temporary directory (kept alive by the first value),
/// and the in-memory model beside it, both with [`MODEL_RETENTION`].
fn store_and_model() -> (tempfile::TempDir, RedbStore, MemoryStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbStore::open(&dir.path().join(DATA_FILE), MODEL_RETENTION).unwrap();
    (dir, db, MemoryStore::new(MODEL_RETENTION))
}

#[test]
fn it_does_what_the_memory_store_does() {
    let (dir, mut db, mut mem) = store_and_model();
    let mut rng = StdRng::seed_from_u64(7);
    let rooms = ["#a", "#b", "#c"];
    let users = ["alice", "bob", "carol", "dave"];
    let mut offsets = [0u64; 3];
    let mut time = 10_000u64;
    let mut next_id = 1;
    for _round in 0..60 {
        let mut batch = Vec::new();
        for _ in 0..rng.gen_range(1..12) {
            let r = rng.gen_range(0..rooms.len());
            let room = rooms[r].to_string();
            let user = users[rng.gen_range(0..users.len())].to_string();
            time += rng.gen_range(0..700);
            let op = match rng.gen_range(0..20) {
                0 => {
                    offsets[r] = 0;
                    create(&room, &user)
                }
                1 => StoreOp::DeleteRoom { room },
                2 => StoreOp::Join { room, user },
                3 => StoreOp::Part { room, user },
                4 => StoreOp::SetTopic {
                    room,
                    topic: format!("topic {time}"),
                },
                5 => {
                    let id = next_id;
                    next_id += 1;
                    StoreOp::PutOffline(OfflineMessage {
                        id,
                        from: user,
                        to: "bob".into(),
                        text: format!("dm {id}"),
                        time,
                    })
                }
                6 if next_id > 1 => StoreOp::RemoveOffline {
                    to: "bob".into(),
                    id: rng.gen_range(1..next_id),
                },
                7 => StoreOp::SetRoles {
                    room,
                    owner: if rng.gen_bool(0.2) {
                        String::new()
                    } else {
                        user.clone()
                    },
                    roles: RoomRoles {
                        ops: vec![user.clone()],
                        bans: vec![RoomBan {
                            user: "dave".into(),
                            until: rng.gen_bool(0.5).then_some(time),
                        }],
                        muted: if rng.gen_bool(0.5) {
                            vec![user]
                        } else {
                            Vec::new()
                        },
                        topic_locked: rng.gen_bool(0.5),
                        moderated: rng.gen_bool(0.5),
                    },
                },
                _ => {
                    offsets[r] += rng.gen_range(1..3);
                    StoreOp::Append {
                        room,
                        message: msg(offsets[r], time, &format!("m{time}")),
                    }
                }
            };
            batch.push(op);
        }
        for op in &batch {
            mem.apply(op);
        }
        db.apply(&batch).unwrap();
        for keep in [1, 7, 1000] {
            assert_eq!(
                sorted(db.load(keep).unwrap()),
                sorted(mem.snapshot(keep)),
                "keep {keep}"
            );
        }
        for room in rooms {
            for page in [
                Page::Before(u64::MAX),
                Page::Before(0),
                Page::Before(offsets[0] / 2 + 1),
                Page::After(0),
                Page::After(offsets[1] / 2),
                Page::After(u64::MAX),
            ] {
                for limit in [0, 1, 3, 200] {
                    assert_eq!(
                        db.page(room, page, limit).unwrap(),
                        mem.page(room, page, limit),
                        "{room} {page:?} {limit}"
                    );
                }
            }
        }
    }
    let before = sorted(db.load(1000).unwrap());
    drop(db);
    let db = RedbStore::open(&dir.path().join(DATA_FILE), MODEL_RETENTION).unwrap();
    assert_eq!(sorted(db.load(1000).unwrap()), before, "reopened");
}

#[test]
fn a_room_and_its_first_message_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let mut db = RedbStore::open(&path, Retention::default()).unwrap();
    db.apply(&[
        create("#a", "alice"),
        StoreOp::Append {
            room: "#a".into(),
            message: msg(1, 5, "one"),
        },
    ])
    .unwrap();
    let snap = db.load(10).unwrap();
    assert_eq!(snap.rooms.len(), 1);
    assert_eq!(snap.rooms[0].last_offset, 1);
    assert_eq!(snap.rooms[0].recent, vec![msg(1, 5, "one")]);
}

#[test]
fn garbage_and_other_versions_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    for garbage in [
        &b"not a database at all, but long enough to look like one"[..],
        &b"r"[..],
    ] {
        std::fs::write(&path, garbage).unwrap();
        let e = RedbStore::open(&path, Retention::default()).unwrap_err();
        assert!(e.0.contains(&path.display().to_string()), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage, "left as it was");
    }
    // A redb file whose header is damaged.
    std::fs::remove_file(&path).unwrap();
    drop(RedbStore::open(&path, Retention::default()).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[9..512] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = RedbStore::open(&path, Retention::default()).unwrap_err();
    assert!(e.0.contains(&path.display().to_string()), "{e}");
    // Another format version.
    std::fs::remove_file(&path).unwrap();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert("version", 9).unwrap();
        txn.commit().unwrap();
    }
    let e = RedbStore::open(&path, Retention::default()).unwrap_err();
    assert!(e.0.contains("format version 9"), "{e}");
    // A missing directory.
    let e = RedbStore::open(&dir.path().join("no/such.redb"), Retention::default()).unwrap_err();
    assert!(e.0.contains("does not exist"), "{e}");
}

#[test]
fn the_writer_answers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbStore::open(&dir.path().join(DATA_FILE), Retention::default()).unwrap();
    let mut writer = StoreWriter::spawn(db, 10_000, || {}).unwrap();
    writer
        .submit(StoreJob::Write {
            id: 1,
            op: create("#a", "alice"),
        })
        .unwrap();
    let mut id = 2;
    for offset in 1..=500 {
        writer
            .submit(StoreJob::Write {
                id,
                op: StoreOp::Append {
                    room: "#a".into(),
                    message: msg(offset, offset, "x"),
                },
            })
            .unwrap();
        id += 1;
        if offset.is_multiple_of(100) {
            writer
                .submit(StoreJob::Read {
                    id,
                    room: "#a".into(),
                    page: Page::Before(u64::MAX),
                    limit: 1,
                })
                .unwrap();
            id += 1;
        }
    }
    let mut expected = 1;
    while expected < id {
        let r = writer
            .answers()
            .recv_timeout(Duration::from_secs(10))
            .unwrap();
        match r {
            Response::Stored { id, result } => {
                assert_eq!(id, expected);
                assert_eq!(result, Ok(()));
            }
            Response::History { id, result } => {
                assert_eq!(id, expected);
                // A read sees every write made before it.
                let (page, more) = result.unwrap();
                assert_eq!(page.len(), 1);
                assert_eq!(page[0].offset % 100, 0);
                assert!(more);
            }
            other => panic!("{other:?}"),
        }
        expected += 1;
    }
    let stats = writer.finish();
    assert_eq!(stats.writes, 501);
    assert!(stats.commits <= 501);
}

/// Prints the file's size per 1,000 room messages and the time a commit
/// takes (`cargo test -p udpchat-native chatstore -- --nocapture`).
#[test]
fn size_and_commit_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let mut db = RedbStore::open(&path, Retention::default()).unwrap();
    db.apply(&[create("#room", "alice")]).unwrap();
    let empty = std::fs::metadata(&path).unwrap().len();
    let text = "a typical chat line of about sixty bytes, give or take a few";
    // One message per transaction: what a lone user's `say` costs.
    let n_single = 200u64;
    let started = Instant::now();
    for offset in 1..=n_single {
        db.apply(&[StoreOp::Append {
            room: "#room".into(),
            message: msg(offset, 1_700_000_000_000 + offset, text),
        }])
        .unwrap();
    }
    let single = started.elapsed() / n_single as u32;
    // Then in groups of 100, as under load.
    let total = 10_000u64;
    let started = Instant::now();
    let mut offset = n_single;
    while offset < total {
        let batch: Vec<StoreOp> = (offset + 1..=offset + 100)
            .map(|o| StoreOp::Append {
                room: "#room".into(),
                message: msg(o, 1_700_000_000_000 + o, text),
            })
            .collect();
        db.apply(&batch).unwrap();
        offset += 100;
    }
    let grouped = started.elapsed() / ((total - n_single) / 100) as u32;
    drop(db);
    let size = std::fs::metadata(&path).unwrap().len();
    let per_thousand = (size - empty) * 1000 / total;
    println!(
        "chat store: {total} messages of {} bytes: {size} bytes on disk \
         ({per_thousand} bytes per 1,000 messages, empty {empty}); \
         commit of 1 message {single:?}, of 100 messages {grouped:?}",
        text.len()
    );
    assert!(size > 0);
}

/// A store in memory that waits for a go-ahead before each batch, or
/// fails: what another engine plugged into the writer looks like.
struct Fake {
    mem: MemoryStore,
    /// Told when a batch starts.
    entered: Sender<usize>,
    gate: Receiver<()>,
    fail: bool,
}

impl ChatStore for Fake {
    fn load(&self, keep: usize) -> Result<Snapshot, StoreError> {
        Ok(self.mem.snapshot(keep))
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let _ = self.entered.send(ops.len());
        // Bounded, so that a failing test does not hang in the writer's drop.
        let _ = self.gate.recv_timeout(Duration::from_secs(10));
        if self.fail {
            return Err(StoreError("disk full".into()));
        }
        for op in ops {
            self.mem.apply(op);
        }
        Ok(())
    }

    fn page(
        &self,
        room: &str,
        page: Page,
        limit: u32,
    ) -> Result<(Vec<RoomMessage>, bool), StoreError> {
        Ok(self.mem.page(room, page, limit))
    }
}

fn write(id: u64) -> StoreJob {
    StoreJob::Write {
        id,
        op: StoreOp::PutOffline(OfflineMessage {
            id,
            from: "alice".into(),
            to: "bob".into(),
            text: "hi".into(),
            time: 1,
        }),
    }
}

#[test]
fn a_full_queue_refuses_at_once_and_the_rest_is_one_transaction() {
    let (go, gate) = bounded(16);
    let (entered, batches) = unbounded();
    let fake = Fake {
        mem: MemoryStore::default(),
        entered,
        gate,
        fail: false,
    };
    let mut writer = StoreWriter::spawn(fake, 3, || {}).unwrap();
    writer.submit(write(1)).unwrap();
    // The thread takes the first and waits at the gate; three more fill
    // the queue, and the next is refused without waiting.
    assert_eq!(batches.recv_timeout(Duration::from_secs(10)), Ok(1));
    for id in 2..5 {
        writer.submit(write(id)).unwrap();
    }
    let started = Instant::now();
    assert_eq!(writer.submit(write(5)), Err(5));
    assert!(started.elapsed() < Duration::from_millis(100));
    go.send(()).unwrap();
    go.send(()).unwrap();
    for expected in 1..5 {
        match writer
            .answers()
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
        {
            Response::Stored { id, result } => {
                assert_eq!((id, result), (expected, Ok(())));
            }
            other => panic!("{other:?}"),
        }
    }
    let stats = writer.finish();
    assert_eq!(
        (stats.commits, stats.writes),
        (2, 4),
        "1, then 2 to 4 together"
    );
}

#[test]
fn a_failed_commit_fails_every_change_in_it() {
    let (go, gate) = bounded(16);
    let (entered, _batches) = unbounded();
    let fake = Fake {
        mem: MemoryStore::default(),
        entered,
        gate,
        fail: true,
    };
    let writer = StoreWriter::spawn(fake, 16, || {}).unwrap();
    for id in 1..=3 {
        writer.submit(write(id)).unwrap();
    }
    go.send(()).unwrap();
    go.send(()).unwrap();
    for expected in 1..=3 {
        match writer
            .answers()
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
        {
            Response::Stored { id, result } => {
                assert_eq!((id, result), (expected, Err("disk full".to_string())));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_audit_log_is_kept_and_its_latest_entries_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let entry = |id: u64| AuditEntry {
        id,
        time: 1_000 + id,
        by: "alice".into(),
        action: "notice".into(),
        target: "*".into(),
        reason: if id.is_multiple_of(2) {
            format!("n{id}")
        } else {
            String::new()
        },
        until: id.is_multiple_of(3).then_some(9_000 + id),
    };
    let total = AUDIT_MEMORY as u64 + 5;
    {
        let mut db = RedbStore::open(&path, Retention::default()).unwrap();
        let ops: Vec<StoreOp> = (1..=total).map(|id| StoreOp::Audit(entry(id))).collect();
        db.apply(&ops).unwrap();
    }
    let db = RedbStore::open(&path, Retention::default()).unwrap();
    let loaded = db.load(10).unwrap().audit;
    // The latest AUDIT_MEMORY, oldest first, each as written.
    assert_eq!(loaded.len(), AUDIT_MEMORY);
    assert_eq!(loaded[0], entry(6));
    assert_eq!(loaded.last(), Some(&entry(total)));
    assert!(loaded.windows(2).all(|p| p[0].id + 1 == p[1].id));
}

#[test]
fn address_bans_are_kept_replaced_and_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let ban = |range: &str, until: Option<u64>, reason: &str| AddressBan {
        range: range.into(),
        until,
        reason: reason.into(),
        by: "alice".into(),
        time: 1_000,
    };
    {
        let mut db = RedbStore::open(&path, Retention::default()).unwrap();
        db.apply(&[
            StoreOp::BanAddress(ban("203.0.113.0/24", None, "")),
            StoreOp::BanAddress(ban("2001:db8:1:2::/64", Some(9_000), "spam")),
            StoreOp::BanAddress(ban("198.51.100.7/32", None, "")),
            // Replaced, then another lifted.
            StoreOp::BanAddress(ban("203.0.113.0/24", Some(5_000), "again")),
            StoreOp::UnbanAddress {
                range: "198.51.100.7/32".into(),
            },
        ])
        .unwrap();
    }
    let db = RedbStore::open(&path, Retention::default()).unwrap();
    let mut bans = db.load(10).unwrap().bans;
    bans.sort_by(|a, b| a.range.cmp(&b.range));
    assert_eq!(
        bans,
        [
            ban("2001:db8:1:2::/64", Some(9_000), "spam"),
            ban("203.0.113.0/24", Some(5_000), "again"),
        ]
    );
}

#[test]
fn the_registration_mode_and_the_unused_invites_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let invite = |code: &str| Invite {
        code: code.into(),
        expires: 1_000_000,
        by: "alice".into(),
    };
    {
        let mut db = RedbStore::open(&path, Retention::default()).unwrap();
        // A new file: open, no codes.
        let fresh = db.load(10).unwrap();
        assert_eq!(fresh.registration, RegistrationMode::Open);
        assert!(fresh.invites.is_empty());
        db.apply(&[
            StoreOp::Registration(RegistrationMode::Invite),
            StoreOp::AddInvite(invite("0123456789abcdef")),
            StoreOp::AddInvite(invite("fedcba9876543210")),
            StoreOp::RemoveInvite {
                code: "0123456789abcdef".into(),
            },
        ])
        .unwrap();
    }
    let db = RedbStore::open(&path, Retention::default()).unwrap();
    let loaded = db.load(10).unwrap();
    assert_eq!(loaded.registration, RegistrationMode::Invite);
    assert_eq!(loaded.invites, [invite("fedcba9876543210")]);
    // The same as the memory store the simulation uses.
    let mut memory = MemoryStore::default();
    memory.apply(&StoreOp::Registration(RegistrationMode::Invite));
    memory.apply(&StoreOp::AddInvite(invite("fedcba9876543210")));
    let expected = memory.snapshot(10);
    assert_eq!(
        (expected.registration, expected.invites),
        (loaded.registration, loaded.invites)
    );
}

#[test]
fn a_room_row_from_before_room_roles_loads_with_none() {
    let old = br#"{"epoch":"e","owner":"alice","topic":"","created":1,"last_offset":0,"count":0}"#;
    let row = decode_room("#r", old).unwrap();
    assert!(row.ops.is_empty() && row.bans.is_empty() && row.muted.is_empty());
    assert!(!row.topic_locked && !row.moderated);
    // And a row without roles is written as before.
    assert_eq!(encode(&row), old.to_vec());
}

#[test]
fn long_runs_of_messages_in_one_batch_keep_what_one_at_a_time_keeps() {
    // Consecutive messages to one room are written together: the same
    // messages must remain as when each is appended and trimmed in turn,
    // whether the count or the age lets the oldest go, and within a run.
    let (_dir, mut db, mut mem) = store_and_model();
    let mut rng = StdRng::seed_from_u64(11);
    let mut offsets = [0u64; 2];
    let mut time = 10_000u64;
    let mut batch = vec![create("#a", "alice"), create("#b", "bob")];
    for _round in 0..40 {
        for _ in 0..rng.gen_range(1..4) {
            let r = rng.gen_range(0..2);
            let room = ["#a", "#b"][r];
            for _ in 0..rng.gen_range(1..45) {
                offsets[r] += 1;
                // Now and then a long pause: the age limit lets several go.
                time += if rng.gen_bool(0.05) {
                    rng.gen_range(2_000..7_000)
                } else {
                    rng.gen_range(0..200)
                };
                batch.push(StoreOp::Append {
                    room: room.into(),
                    message: msg(offsets[r], time, &format!("m{time}")),
                });
            }
            if rng.gen_bool(0.3) {
                batch.push(StoreOp::SetTopic {
                    room: room.into(),
                    topic: format!("t{time}"),
                });
            }
        }
        for op in &batch {
            mem.apply(op);
        }
        db.apply(&batch).unwrap();
        batch.clear();
        assert_eq!(sorted(db.load(1000).unwrap()), sorted(mem.snapshot(1000)));
        for room in ["#a", "#b"] {
            assert_eq!(
                db.page(room, Page::Before(u64::MAX), 200).unwrap(),
                mem.page(room, Page::Before(u64::MAX), 200),
                "{room}"
            );
        }
    }
}
