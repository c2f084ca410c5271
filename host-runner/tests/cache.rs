//! The compiled-module cache: a hit on the second start; a corrupt, stale,
//! foreign or unwritable entry is recompiled (and replaced), never a crash.

mod common;

use std::path::{Path, PathBuf};

use common::{Proc, TIMEOUT, assert_exit, command, module};

/// Runs `probe-echo` (which exits at once on closed stdin) with `cache`,
/// and returns what host-runner logged about the module.
fn start(cache: &Path) -> String {
    let mut cmd = command(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("--module")
        .arg(module("probe-echo"))
        .arg("--cache-dir")
        .arg(cache)
        .args(["127.0.0.1", "9", "probe"])
        .env("RUST_LOG", "host_runner=debug");
    let mut probe = Proc::spawn("probe-echo", cmd);
    probe.close_stdin();
    let status = probe.wait_exit(TIMEOUT);
    assert_exit(&mut probe, status, 0);
    probe.stderr()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

fn only_entry(cache: &Path) -> PathBuf {
    let entries = entries(cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[test]
fn second_start_is_a_cache_hit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = start(dir.path());
    assert!(log.contains("Compiled"), "{log}");
    only_entry(dir.path());
    let log = start(dir.path());
    assert!(log.contains("(Cached)"), "{log}");
}

#[test]
fn damaged_entries_are_recompiled_and_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    start(dir.path());
    let entry = only_entry(dir.path());
    let good = std::fs::read(&entry).expect("entry");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let damages: [(&str, Vec<u8>); 4] = [
        ("corrupt", flipped),
        ("truncated", good[..good.len() - 100].to_vec()),
        ("no valid header", b"garbage".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&entry, bytes).expect("damage the entry");
        let log = start(dir.path());
        assert!(log.contains("recompiling"), "{what}: {log}");
        assert!(log.contains("Compiled"), "{what}: {log}");
        // Replaced by a good entry: the next start is a hit.
        let log = start(dir.path());
        assert!(log.contains("(Cached)"), "{what}: {log}");
    }
}

#[test]
fn an_entry_wasmtime_refuses_is_recompiled() {
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir().expect("temp dir");
    start(dir.path());
    let entry = only_entry(dir.path());
    let good = std::fs::read(&entry).expect("entry");
    // A well-formed entry (right key, right digest) whose artifact this
    // wasmtime cannot load, as after an upgrade: here, not even ELF.
    let artifact = b"\x7fELF from another wasmtime".to_vec();
    let mut stale = good[..48].to_vec();
    stale.extend_from_slice(&Sha256::digest(&artifact));
    stale.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    stale.extend_from_slice(&artifact);
    std::fs::write(&entry, stale).expect("write");
    let log = start(dir.path());
    assert!(log.contains("refused by this wasmtime"), "{log}");
    let log = start(dir.path());
    assert!(log.contains("(Cached)"), "{log}");
}

#[test]
fn an_unusable_cache_directory_only_costs_a_compilation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").expect("file");
    let log = start(&not_a_dir);
    assert!(log.contains("could not store"), "{log}");
}
