//! The compiled-module cache: a hit on the second start; a corrupt, stale,
//! foreign, forged or unwritable entry is recompiled (and replaced), never
//! a crash and never loaded; a directory others may write is not used.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use blake2::Blake2sMac256;
use blake2::digest::{KeyInit, Mac};
use common::{Proc, assert_exit, command, module};

/// A cache directory and, outside it, the user's cache key.
struct Setup {
    _root: tempfile::TempDir,
    cache: PathBuf,
    key: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = root.path().join("cache");
        let key = root.path().join("config").join("cache.key");
        Setup {
            cache,
            key,
            _root: root,
        }
    }

    /// Runs `probe` (which exits at once on closed stdin) with this cache,
    /// and returns what host-runner logged about the module.
    fn start_module(&self, probe: &str) -> String {
        start_at(&self.cache, &self.key, probe)
    }

    fn start(&self) -> String {
        self.start_module("probe-echo")
    }
}

/// How long a start may take when it compiles the module: wasmtime's
/// compiler in a debug build, on a machine busy with other tests, can take
/// most of a minute. A bound for a hung process, not a figure.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

fn start_at(cache: &Path, key: &Path, probe: &str) -> String {
    let mut cmd = command(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("--module")
        .arg(module(probe))
        .arg("--cache-dir")
        .arg(cache)
        .args(["127.0.0.1", "9", "probe"])
        .env("UDPCHAT_CACHE_KEY", key)
        .env("RUST_LOG", "host_runner=debug");
    let mut proc = Proc::spawn(probe, cmd);
    proc.close_stdin();
    let status = proc.wait_exit(COMPILE_TIMEOUT);
    // probe-echo ends at once on closed stdin; probe-spin is stopped by the
    // host's time limit (exit 2).
    let expected = if probe == "probe-spin" { 2 } else { 0 };
    assert_exit(&mut proc, status, expected);
    proc.stderr()
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

/// An entry with `artifact`, authenticated with `secret` as host-runner
/// does (the layout of src/cache.rs), for the key of `good`.
fn entry_with(good: &[u8], secret: &[u8], artifact: &[u8]) -> Vec<u8> {
    let key = &good[16..48];
    let mut mac = <Blake2sMac256 as KeyInit>::new_from_slice(secret).expect("key");
    mac.update(&good[..16]);
    mac.update(key);
    mac.update(&(artifact.len() as u64).to_le_bytes());
    mac.update(artifact);
    let mut bytes = good[..48].to_vec();
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    bytes.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    bytes.extend_from_slice(artifact);
    bytes
}

#[test]
fn second_start_is_a_cache_hit() {
    let t = Setup::new();
    let log = t.start();
    assert!(log.contains("Compiled"), "{log}");
    only_entry(&t.cache);
    let log = t.start();
    assert!(log.contains("(Cached)"), "{log}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&t.cache), 0o700, "the cache directory");
        assert_eq!(mode(&t.key), 0o600, "the cache key");
        assert_eq!(mode(&only_entry(&t.cache)), 0o600, "an entry");
        assert_eq!(std::fs::read(&t.key).expect("key").len(), 32);
    }
}

#[test]
fn damaged_entries_are_recompiled_and_replaced() {
    let t = Setup::new();
    t.start();
    let entry = only_entry(&t.cache);
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
        let log = t.start();
        assert!(log.contains("recompiling"), "{what}: {log}");
        assert!(log.contains("Compiled"), "{what}: {log}");
        // Replaced by a good entry: the next start is a hit.
        let log = t.start();
        assert!(log.contains("(Cached)"), "{what}: {log}");
    }
}

#[test]
fn an_entry_wasmtime_refuses_is_recompiled() {
    let t = Setup::new();
    t.start();
    let entry = only_entry(&t.cache);
    let good = std::fs::read(&entry).expect("entry");
    let secret = std::fs::read(&t.key).expect("key");
    // An authentic entry (right key, right MAC) whose artifact this
    // wasmtime cannot load, as after an upgrade: here, not even ELF.
    let stale = entry_with(&good, &secret, b"\x7fELF from another wasmtime");
    std::fs::write(&entry, stale).expect("write");
    let log = t.start();
    assert!(log.contains("refused by this wasmtime"), "{log}");
    let log = t.start();
    assert!(log.contains("(Cached)"), "{log}");
}

#[test]
fn planted_code_with_a_recomputed_digest_is_rejected_and_recompiled() {
    use sha2::{Digest, Sha256};

    let t = Setup::new();
    t.start();
    let entry = only_entry(&t.cache);
    let good = std::fs::read(&entry).expect("entry");
    // The attack on the earlier format: change the code, recompute the
    // digest, keep the rest. And the same with a MAC by a secret of the
    // attacker's own.
    let mut planted = good[88..].to_vec();
    let at = planted.len() / 2;
    planted[at] ^= 0x01;
    let mut with_digest = good[..48].to_vec();
    with_digest.extend_from_slice(&Sha256::digest(&planted));
    with_digest.extend_from_slice(&(planted.len() as u64).to_le_bytes());
    with_digest.extend_from_slice(&planted);
    let with_own_mac = entry_with(&good, &[0x42; 32], &planted);
    for (what, bytes) in [("digest", with_digest), ("own MAC", with_own_mac)] {
        std::fs::write(&entry, bytes).expect("plant");
        let log = t.start();
        assert!(log.contains("is not authentic"), "{what}: {log}");
        assert!(log.contains("Compiled"), "{what}: {log}");
        let log = t.start();
        assert!(log.contains("(Cached)"), "{what}: {log}");
    }
}

#[test]
fn an_entry_of_another_module_swapped_in_is_rejected() {
    let t = Setup::new();
    t.start_module("probe-echo");
    let echo = only_entry(&t.cache);
    std::fs::rename(&echo, t.cache.join("echo.keep")).expect("set aside");
    t.start_module("probe-spin");
    let spin = only_entry(&t.cache);
    // probe-spin's authentic entry under probe-echo's name.
    std::fs::rename(&spin, &echo).expect("swap");
    let log = t.start_module("probe-echo");
    assert!(log.contains("is for another module"), "{log}");
    assert!(log.contains("Compiled"), "{log}");
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_may_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;

    for mode in [0o777, 0o770, 0o1777] {
        let t = Setup::new();
        t.start();
        let entry = only_entry(&t.cache);
        std::fs::set_permissions(&t.cache, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let log = t.start();
        assert!(
            log.contains("not using the module cache"),
            "{mode:o}: {log}"
        );
        assert!(log.contains("others may change it"), "{mode:o}: {log}");
        assert!(log.contains("Compiled"), "{mode:o}: {log}");
        // The entry there is neither read nor replaced.
        assert!(entry.exists());
    }
    // An entry others may write is not loaded either.
    let t = Setup::new();
    t.start();
    let entry = only_entry(&t.cache);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let log = t.start();
    assert!(log.contains("recompiling"), "{log}");
    assert!(log.contains("others may change it"), "{log}");
    // A key others may read is not used.
    let t = Setup::new();
    t.start();
    std::fs::set_permissions(&t.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let log = t.start();
    assert!(log.contains("not using the module cache"), "{log}");
}

#[test]
fn an_unusable_cache_directory_only_costs_a_compilation() {
    let t = Setup::new();
    std::fs::create_dir_all(t.cache.parent().expect("parent")).expect("dir");
    std::fs::write(&t.cache, b"").expect("a file where the directory goes");
    let log = t.start();
    assert!(log.contains("not using the module cache"), "{log}");
    assert!(log.contains("Compiled"), "{log}");
}
