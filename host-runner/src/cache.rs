//! The compiled-module cache: compiling the client takes cranelift a
//! second or more; loading the result from disk takes milliseconds.
//!
//! An entry is one file, `<dir>/<key>.cwasm`, where `key` is the SHA-256 of
//! the module's own SHA-256 and of the engine's compatibility hash (the
//! wasmtime version, the target and every compilation setting). Its
//! contents:
//!
//! ```text
//! magic  "udpchat-cwasm-1\n"      16 bytes
//! key                             32 bytes, again: the file name is not trusted
//! digest SHA-256 of the artifact  32 bytes
//! length of the artifact          8 bytes, little endian
//! artifact                        what Engine::precompile_component produced
//! ```
//!
//! An entry that is missing, truncated, corrupt, for another key, or that
//! wasmtime refuses (another version or configuration) is recompiled and
//! rewritten; the cache never stops the host from starting. Entries are
//! written to a temporary file and renamed into place, so readers see whole
//! files only. At most [`MAX_ENTRIES`] are kept (oldest removed first).
//! Any entry, or the whole directory, may be deleted at any time.

use std::fs;
use std::hash::Hasher;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"udpchat-cwasm-1\n";
const HEADER: usize = 16 + 32 + 32 + 8;
/// Entries kept in the directory.
pub const MAX_ENTRIES: usize = 8;
/// Larger files are not read (a compiled client is a few MiB).
const MAX_FILE: u64 = 256 << 20;

/// Where the component came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Loaded from a cache entry.
    Cached,
    /// Compiled now; `why` says why the cache did not serve it.
    Compiled { why: String },
}

/// The cache directory the host uses when none is given:
/// `$XDG_CACHE_HOME/udpchat/host-runner`, else
/// `$HOME/.cache/udpchat/host-runner`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("udpchat").join("host-runner"))
}

/// Returns the component for `wasm`, from the cache in `dir` when it holds a
/// valid entry, else compiled (and stored, if `dir` is given).
pub fn load(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> anyhow::Result<(Component, Provenance)> {
    let Some(dir) = dir else {
        let component = compile(engine, wasm)?;
        let why = "the cache is off".to_owned();
        return Ok((component, Provenance::Compiled { why }));
    };
    let key = key(engine, wasm);
    let path = dir.join(format!("{}.cwasm", hex(&key)));
    let why = match read_entry(engine, &path, &key) {
        Ok(component) => return Ok((component, Provenance::Cached)),
        Err(why) => why,
    };
    if path.exists() {
        tracing::warn!("recompiling: cache entry {} {why}", path.display());
    } else {
        tracing::debug!("no cache entry at {}", path.display());
    }
    let artifact = engine
        .precompile_component(wasm)
        .map_err(anyhow::Error::from)
        .context("the module is not a valid component")?;
    if let Err(e) = write_entry(dir, &path, &key, &artifact) {
        tracing::warn!(
            "could not store the compiled module in {}: {e:#}",
            dir.display()
        );
    }
    let component = deserialize_verified(engine, &artifact)
        .map_err(anyhow::Error::from)
        .context("loading the module just compiled")?;
    Ok((component, Provenance::Compiled { why }))
}

fn compile(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Component> {
    Component::new(engine, wasm)
        .map_err(anyhow::Error::from)
        .context("the module is not a valid component")
}

/// The cache key of `wasm` compiled by `engine`.
fn key(engine: &Engine, wasm: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(MAGIC);
    hasher.update(Sha256::digest(wasm));
    let mut compat = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
    hasher.update(compat.0.finalize());
    hasher.finalize().into()
}

/// Feeds a [`std::hash::Hash`] into SHA-256.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        // Only the streamed bytes are used, never this.
        0
    }
}

/// Reads and checks an entry; the error says what was wrong with it.
fn read_entry(engine: &Engine, path: &Path, key: &[u8; 32]) -> Result<Component, String> {
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("is absent".into()),
        Err(e) => return Err(format!("is unreadable: {e}")),
    };
    if len > MAX_FILE {
        return Err(format!("is too large ({len} bytes)"));
    }
    let bytes = fs::read(path).map_err(|e| format!("is unreadable: {e}"))?;
    let artifact = check_entry(&bytes, key)?;
    deserialize_verified(engine, artifact)
        .map_err(|e| format!("was refused by this wasmtime (stale?): {e}"))
}

/// Checks the header of an entry and returns its artifact if the digest
/// matches.
fn check_entry<'a>(bytes: &'a [u8], key: &[u8; 32]) -> Result<&'a [u8], String> {
    if bytes.len() < HEADER || &bytes[..16] != MAGIC {
        return Err("has no valid header".into());
    }
    if &bytes[16..48] != key {
        return Err("is for another module or engine".into());
    }
    let digest = &bytes[48..80];
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[80..88]);
    let artifact = &bytes[HEADER..];
    if u64::from_le_bytes(len) != artifact.len() as u64 {
        return Err("is truncated".into());
    }
    if Sha256::digest(artifact).as_slice() != digest {
        return Err("is corrupt (digest mismatch)".into());
    }
    Ok(artifact)
}

/// Makes an entry's bytes.
fn entry_bytes(key: &[u8; 32], artifact: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(&Sha256::digest(artifact));
    bytes.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    bytes.extend_from_slice(artifact);
    bytes
}

fn write_entry(dir: &Path, path: &Path, key: &[u8; 32], artifact: &[u8]) -> anyhow::Result<()> {
    fs::create_dir_all(dir).context("cannot create the directory")?;
    let tmp = dir.join(format!(".{}.{}.tmp", hex(key), std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&entry_bytes(key, artifact))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.context("cannot write the entry")?;
    prune(dir, path);
    Ok(())
}

/// Keeps the [`MAX_ENTRIES`] most recently written entries; `keep` stays.
fn prune(dir: &Path, keep: &Path) {
    let Ok(read) = fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= MAX_ENTRIES {
        return;
    }
    entries.sort();
    let excess = entries.len() - MAX_ENTRIES;
    for (_, path) in entries.into_iter().take(excess) {
        if path != keep {
            let _ = fs::remove_file(path);
        }
    }
}

/// Loads an artifact produced by `Engine::precompile_component`.
///
/// This is the crate's one `unsafe`: `Component::deserialize` trusts its
/// input to be wasmtime's own output, because it maps it as executable
/// code. That holds for both callers: `artifact` is either what this process
/// just got from `precompile_component`, or the body of a cache entry whose
/// SHA-256 matched the digest this host wrote next to it, in a file under a
/// name and with a key derived from the module and the engine. The bytes are
/// checked in memory and deserialized from that same buffer (no second read
/// of the file a writer could race). Wasmtime itself then refuses artifacts
/// from another version or configuration with an error.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above: `artifact` is wasmtime's own output, verified.
    unsafe { Component::deserialize(engine, artifact) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_every_damage_is_caught() {
        let key = [7u8; 32];
        let artifact = b"not really machine code".to_vec();
        let bytes = entry_bytes(&key, &artifact);
        assert_eq!(check_entry(&bytes, &key), Ok(&artifact[..]));

        assert!(check_entry(&bytes, &[8u8; 32]).is_err(), "other key");
        assert!(
            check_entry(&bytes[..bytes.len() - 1], &key).is_err(),
            "truncated"
        );
        assert!(
            check_entry(&bytes[..HEADER - 1], &key).is_err(),
            "no header"
        );
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(check_entry(&damaged, &key).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn key_depends_on_module_and_engine() {
        let engine = crate::sandbox::engine().expect("engine");
        let mut other_config = wasmtime::Config::new();
        other_config.epoch_interruption(false);
        let other = Engine::new(&other_config).expect("engine");
        assert_eq!(key(&engine, b"a"), key(&engine, b"a"));
        assert_ne!(key(&engine, b"a"), key(&engine, b"b"));
        assert_ne!(key(&engine, b"a"), key(&other, b"a"));
    }
}
