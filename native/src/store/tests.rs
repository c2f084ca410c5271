//! Tests of the user store.

use super::*;

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("chat_users.json")
}

#[test]
fn missing_file_is_empty_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = UserStore::open(&path).unwrap();
    assert!(store.is_empty());
    assert!(!path.exists());
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("Alice", HASH, 1_700_000_000).unwrap();
    store.add("bob", "$argon2id$other", 1_700_000_001).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(store.get("alice").unwrap().name, "Alice");
    assert_eq!(store.get("BOB").unwrap().password_hash, "$argon2id$other");
    assert!(store.get("carol").is_none());

    let reopened = UserStore::open(&path).unwrap();
    assert_eq!(reopened.users(), store.users());
    assert_eq!(reopened.users()[0].created, 1_700_000_000);
    assert_eq!(reopened.get("ALICE").unwrap().name, "Alice");

    // The documented layout, field for field.
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version": 1, "generation": 2, "users": [
            {"name": "Alice", "password_hash": HASH, "created": 1_700_000_000u64},
            {"name": "bob", "password_hash": "$argon2id$other", "created": 1_700_000_001u64},
        ]})
    );
}

#[test]
fn reads_compact_documented_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    fs::write(
        &path,
        format!(
            r#"{{"version":1,"users":[{{"name":"alice","password_hash":"{HASH}","created":5}}]}}"#
        ),
    )
    .unwrap();
    let store = UserStore::open(&path).unwrap();
    assert_eq!(store.users()[0].name, "alice");
    assert_eq!(store.users()[0].created, 5);
}

#[test]
fn duplicate_rejected_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    let before = fs::read(&path).unwrap();
    match store.add("ALICE", HASH, 2) {
        Err(StoreError::NameTaken { existing }) => assert_eq!(existing, "alice"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert_eq!(store.len(), 1);
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn corrupt_file_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    for bytes in [
        &b"{\"version\":1,\"users\":[{\"name\":\"al"[..],
        b"",
        b"\xff\xfe not utf-8",
        b"[]",
        b"{\"version\":1,\"users\":[{\"name\":\"a\"}]}",
        b"{\"version\":1,\"users\":[],\"extra\":true}",
    ] {
        fs::write(&path, bytes).unwrap();
        let err = UserStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Parse { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn duplicate_in_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let bytes = format!(
        r#"{{"version":1,"users":[
            {{"name":"bob","password_hash":"{HASH}","created":1}},
            {{"name":"Bob","password_hash":"{HASH}","created":2}}]}}"#
    );
    fs::write(&path, &bytes).unwrap();
    let err = UserStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateInFile { name, .. } if name == "Bob"),
        "{err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes.as_bytes());
}

#[test]
fn unknown_or_missing_version_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    for (bytes, found) in [
        (&b"{\"version\":2,\"users\":[]}"[..], Some("2")),
        (b"{\"version\":\"1\",\"users\":[]}", Some("\"1\"")),
        (b"{\"users\":[]}", None),
    ] {
        fs::write(&path, bytes).unwrap();
        let err = UserStore::open(&path).unwrap_err();
        match &err {
            StoreError::UnsupportedVersion { found: f, .. } => {
                assert_eq!(f.as_deref(), found)
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn unreadable_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    fs::create_dir(&path).unwrap();
    let err = UserStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err:?}");
}

#[test]
fn leftover_temp_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    // A crash between writing the temporary file and the rename.
    let temp = dir.path().join(".chat_users.json.tmp-99999-0");
    fs::write(&temp, b"{\"version\":1,\"users\":[{\"name\":\"half").unwrap();

    let mut reopened = UserStore::open(&path).unwrap();
    assert_eq!(reopened.users(), store.users());
    reopened.add("bob", HASH, 2).unwrap();
    assert_eq!(UserStore::open(&path).unwrap().len(), 2);
    // No temporary file of ours is left behind: the store, the
    // leftover and the lock file.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.iter().any(|n| n == "chat_users.json.lock"),
        "{names:?}"
    );
}

#[test]
fn failed_write_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    let before = fs::read(&path).unwrap();
    for replaced in [false, true] {
        store.fail_next_write = Some(replaced);
        let err = store.add("bob", HASH, 2).unwrap_err();
        assert!(matches!(err, StoreError::Write { .. }), "{err:?}");
        assert_eq!(store.len(), 1);
        assert!(store.get("bob").is_none());
        // On disk: alice alone (put back when the new file was in place).
        let on_disk = UserStore::open(&path).unwrap();
        assert_eq!(on_disk.users(), store.users());
        if !replaced {
            assert_eq!(fs::read(&path).unwrap(), before);
        }
        // No temporary file left: the store and the lock file.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
    // The same change again succeeds, and other writers see it.
    store.add("bob", HASH, 2).unwrap();
    assert_eq!(UserStore::open(&path).unwrap().len(), 2);
    // Each other change rolls back as well.
    store.fail_next_write = Some(true);
    assert!(store.set_password("bob", "$argon2id$new").is_err());
    assert_eq!(store.get("bob").unwrap().password_hash, HASH);
    store.fail_next_write = Some(false);
    assert!(store.remove("alice").is_err());
    assert!(store.get("alice").is_some());
    assert_eq!(UserStore::open(&path).unwrap().users(), store.users());
}

/// A directory where the store should be: a read error for every
/// change, and nothing changes.
#[test]
fn unreadable_store_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("chat_users.json");
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), b"x").unwrap();
    let results = store.add_many(&new_users(&["bob", "carol"]));
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(StoreError::Read { .. }))),
        "{results:?}"
    );
    assert!(matches!(
        store.remove("alice"),
        Err(StoreError::Read { .. })
    ));
    assert_eq!(store.len(), 1);
    assert_eq!(fs::read(path.join("keep")).unwrap(), b"x");
    // Once the obstacle is gone there is no file: alice is not taken
    // as deleted, and goes back to disk with bob.
    fs::remove_dir_all(&path).unwrap();
    store.add("bob", HASH, 2).unwrap();
    assert!(store.take_changes().is_empty());
    assert_eq!(UserStore::open(&path).unwrap().users(), store.users());
    assert_eq!(store.len(), 2);
}

fn new_users<'a>(names: &'a [&'a str]) -> Vec<NewUser<'a>> {
    names
        .iter()
        .map(|name| NewUser {
            name,
            password_hash: HASH,
            created: 7,
        })
        .collect()
}

#[test]
fn a_batch_lands_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    let results = store.add_many(&new_users(&["alice", "bob", "carol"]));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Exactly one file was written: the one now in place.
    assert_eq!(store.bytes_written(), fs::metadata(&path).unwrap().len());
    let reopened = UserStore::open(&path).unwrap();
    assert_eq!(reopened.users(), store.users());
    assert_eq!(reopened.len(), 3);
    // An empty batch writes nothing.
    assert!(store.add_many(&[]).is_empty());
    assert_eq!(store.bytes_written(), fs::metadata(&path).unwrap().len());
}

#[test]
fn duplicates_in_a_batch_are_refused_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    let written = store.bytes_written();
    let results = store.add_many(&new_users(&["Bob", "ALICE", "bob", "carol"]));
    assert!(results[0].is_ok());
    assert!(
        matches!(&results[1], Err(StoreError::NameTaken { existing }) if existing == "alice"),
        "{results:?}"
    );
    assert!(
        matches!(&results[2], Err(StoreError::NameTaken { existing }) if existing == "Bob"),
        "{results:?}"
    );
    assert!(results[3].is_ok());
    let names: Vec<_> = store.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "Bob", "carol"]);
    // One write for the batch.
    assert_eq!(
        store.bytes_written() - written,
        fs::metadata(&path).unwrap().len()
    );
    assert_eq!(UserStore::open(&path).unwrap().users(), store.users());

    // A batch whose every name is taken writes nothing.
    let before = fs::read(&path).unwrap();
    let written = store.bytes_written();
    let results = store.add_many(&new_users(&["BOB", "Carol"]));
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(StoreError::NameTaken { .. }))),
        "{results:?}"
    );
    assert_eq!(store.bytes_written(), written);
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn a_failed_batch_write_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    let before_users = store.users().to_vec();
    let before = fs::read(&path).unwrap();
    let written = store.bytes_written();
    store.fail_next_write = Some(false);

    let results = store.add_many(&new_users(&["bob", "Alice", "carol"]));
    assert!(
        matches!(&results[0], Err(StoreError::Write { .. })),
        "{results:?}"
    );
    assert!(
        matches!(&results[1], Err(StoreError::NameTaken { .. })),
        "{results:?}"
    );
    assert!(
        matches!(&results[2], Err(StoreError::Write { .. })),
        "{results:?}"
    );
    // Memory is as before the batch, and so is the file.
    assert_eq!(store.users(), &before_users[..]);
    assert!(store.get("bob").is_none() && store.get("carol").is_none());
    assert_eq!(store.bytes_written(), written);
    assert_eq!(fs::read(&path).unwrap(), before);

    // The names are free again.
    let results = store.add_many(&new_users(&["bob", "carol"]));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let reopened = UserStore::open(&path).unwrap();
    assert_eq!(reopened.users(), store.users());
    assert_eq!(reopened.len(), 3);
}

/// The bytes written for 10,000 registrations, one rewrite each against
/// one rewrite per batch. Run with `--nocapture` to see the figures.
///
/// Writing gigabytes with an `fsync` each would take minutes, so the total
/// is computed from the encoder's output sizes; the model is checked
/// against the bytes a real store writes for a smaller run.
#[test]
fn registration_bytes_written() {
    const N: usize = 10_000;
    let record = |i: usize| UserRecord {
        // Same-length names, so every record encodes to the same size.
        name: format!("user{i:05}"),
        password_hash: HASH.to_owned(),
        created: 1_700_000_000,
        suspended: None,
    };
    let users: Vec<UserRecord> = (0..N).map(record).collect();
    // Generation 1 to 9 have one digit.
    let len1 = encode(&users[..1], 1).len() as u64;
    let per_user = encode(&users[..2], 1).len() as u64 - len1;
    // The file's size after `n` registrations (n ≥ 1), written as
    // generation `g`.
    let digits = |g: usize| g.to_string().len() as u64;
    let file_len = |n: usize, g: usize| len1 + per_user * (n as u64 - 1) + digits(g) - 1;
    for (n, g) in [(1, 1), (2, 5), (3, 10), (17, 99), (1_000, 100), (N, 12_345)] {
        assert_eq!(
            encode(&users[..n], g as u64).len() as u64,
            file_len(n, g),
            "n = {n}"
        );
    }
    // Bytes written when the registrations arrive in batches of `batch`:
    // the k-th write is generation k.
    let model = |count: usize, batch: usize| -> u64 {
        (1..=count.div_ceil(batch))
            .map(|k| file_len((k * batch).min(count), k))
            .sum()
    };

    // The model against real stores, one registration at a time and in
    // batches.
    for (count, batch) in [(120, 1), (600, 64)] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = UserStore::open(&store_path(&dir)).unwrap();
        for chunk in users[..count].chunks(batch) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|u| NewUser {
                    name: &u.name,
                    password_hash: &u.password_hash,
                    created: u.created,
                })
                .collect();
            assert!(store.add_many(&batch).iter().all(Result::is_ok));
        }
        assert_eq!(store.bytes_written(), model(count, batch));
    }

    let before = model(N, 1);
    println!(
        "user store, {N} registrations, final file {} bytes:",
        file_len(N, N)
    );
    println!("  one write per registration: {before:>14} bytes, {N} writes");
    for batch in [16, 64, 256, 1024] {
        let after = model(N, batch);
        println!(
            "  batches of {batch:>4}:           {after:>14} bytes, {} writes ({:.1}x less)",
            N.div_ceil(batch),
            before as f64 / after as f64
        );
    }
    assert!(model(N, 64) * 60 < before);
}

#[test]
fn a_file_without_generation_loads_as_generation_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    fs::write(
        &path,
        format!(
            r#"{{"version":1,"users":[{{"name":"alice","password_hash":"{HASH}","created":5}}]}}"#
        ),
    )
    .unwrap();
    let mut store = UserStore::open(&path).unwrap();
    assert_eq!(store.generation(), 0);
    assert!(!store.refresh().unwrap(), "nothing changed");
    store.add("bob", HASH, 6).unwrap();
    assert_eq!(store.generation(), 1);
    assert_eq!(UserStore::open(&path).unwrap().generation(), 1);
}

#[test]
fn two_writers_merge_instead_of_losing_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut a = UserStore::open(&path).unwrap();
    let mut b = UserStore::open(&path).unwrap();
    a.add("alice", HASH, 1).unwrap();
    // b read the file before alice: its write keeps her.
    b.add("bob", HASH, 2).unwrap();
    assert_eq!(b.take_changes(), [AccountChange::Put(a.users()[0].clone())]);
    let on_disk = UserStore::open(&path).unwrap();
    let names: Vec<_> = on_disk.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(on_disk.generation(), 2);
    // A name the other writer took meanwhile is refused, case-insensitively.
    assert!(matches!(
        a.add("BOB", HASH, 3),
        Err(StoreError::NameTaken { existing }) if existing == "bob"
    ));
    assert!(
        a.take_changes()
            .iter()
            .any(|c| matches!(c, AccountChange::Put(u) if u.name == "bob"))
    );
}

#[test]
fn refresh_reports_what_another_process_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut tool = UserStore::open(&path).unwrap();
    tool.add("alice", HASH, 1).unwrap();
    tool.add("bob", HASH, 2).unwrap();
    let mut server = UserStore::open(&path).unwrap();
    assert!(!server.refresh().unwrap());
    assert!(server.take_changes().is_empty());

    tool.set_password("ALICE", "$argon2id$new").unwrap();
    let suspension = StoredSuspension {
        until: Some(1_800_000_000_000),
        reason: "spam".into(),
        by: "accounts".into(),
    };
    tool.set_suspension("bob", Some(suspension.clone()))
        .unwrap();
    tool.add("carol", HASH, 3).unwrap();
    tool.remove("carol").unwrap();
    tool.add("dave", HASH, 4).unwrap();
    assert!(server.refresh().unwrap());
    let changes = server.take_changes();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes.contains(&AccountChange::Put(tool.get("alice").unwrap().clone())));
    assert!(changes.iter().any(
        |c| matches!(c, AccountChange::Put(u) if u.name == "bob" && u.suspended == Some(suspension.clone()))
    ));
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, AccountChange::Put(u) if u.name == "dave"))
    );
    assert_eq!(server.users(), tool.users());

    tool.remove("Bob").unwrap();
    assert!(matches!(
        tool.remove("bob"),
        Err(StoreError::UnknownUser { name }) if name == "bob"
    ));
    assert!(matches!(
        tool.set_password("nobody", HASH),
        Err(StoreError::UnknownUser { .. })
    ));
    assert!(server.refresh().unwrap());
    assert_eq!(
        server.take_changes(),
        [AccountChange::Removed("bob".into())]
    );
    // Nothing new: no reload, no change.
    assert!(!server.refresh().unwrap());
    assert!(server.take_changes().is_empty());
}

#[test]
fn a_vanished_file_is_written_back_not_taken_as_every_account_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    fs::rename(&path, dir.path().join("moved.json")).unwrap();
    assert!(!store.refresh().unwrap());
    assert!(store.take_changes().is_empty());
    assert_eq!(store.len(), 1);
    // Looking again finds nothing new either.
    assert!(!store.refresh().unwrap());
    store.add("bob", HASH, 2).unwrap();
    let names: Vec<_> = UserStore::open(&path)
        .unwrap()
        .users()
        .iter()
        .map(|u| u.name.clone())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[test]
fn a_change_waits_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    let other = UserStore::open(&path).unwrap();
    let held = lock(other.lock_path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        store.add("alice", HASH, 1).unwrap();
        tx.send(started.elapsed()).unwrap();
        store
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "wrote while the lock was held");
    assert!(!path.exists());
    drop(held);
    let waited = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert_eq!(writer.join().unwrap().len(), 1);
    assert_eq!(UserStore::open(&path).unwrap().len(), 1);
}

#[test]
fn concurrent_writers_lose_nothing() {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = UserStore::open(&path).unwrap();
                for i in 0..EACH {
                    store.add(&format!("w{w}u{i}"), HASH, 1).unwrap();
                    if i % 5 == 0 {
                        store
                            .set_password(&format!("w{w}u{i}"), "$argon2id$x")
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = UserStore::open(&path).unwrap();
    assert_eq!(store.len(), WRITERS * EACH);
    assert_eq!(store.generation(), (WRITERS * (EACH + EACH / 5)) as u64);
    for w in 0..WRITERS {
        for i in 0..EACH {
            let user = store.get(&format!("w{w}u{i}")).unwrap();
            let expected = if i % 5 == 0 { "$argon2id$x" } else { HASH };
            assert_eq!(user.password_hash, expected);
        }
    }
}

#[cfg(unix)]
#[test]
fn file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = UserStore::open(&path).unwrap();
    store.add("alice", HASH, 1).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_store_in_a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = UserStore::open(&missing.join("chat_users.json")).unwrap_err();
    assert!(matches!(err, StoreError::NoDirectory { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists());
}

#[test]
fn bare_file_name_lives_in_current_directory() {
    assert_eq!(parent_dir(Path::new("chat_users.json")), Path::new("."));
    assert_eq!(parent_dir(Path::new("/var/x.json")), Path::new("/var"));
    assert!(write_atomically(Path::new(""), b"{}").is_err());
}
