//! The compiled-module cache: compiling the client takes cranelift a
//! second or more; loading the result from disk takes milliseconds.
//!
//! A cache entry is native code that this host maps as executable, so an
//! entry is only loaded when it is provably this user's own output:
//!
//! * Each entry is authenticated with a MAC (BLAKE2s-256 in keyed mode) by
//!   a per-user secret of 32 random bytes, kept outside the cache, in
//!   `cache.key` in the user's udpchat config directory
//!   (`UDPCHAT_CACHE_KEY` overrides the path), created with mode 0600.
//!   Whoever can write the cache directory but not read that file cannot
//!   make an entry this host loads.
//! * The MAC covers the entry's key, which binds it to the module it was
//!   compiled from (the module's SHA-256) and to the engine (the wasmtime
//!   version, the target and every compilation setting), so an entry of
//!   another module, renamed, is refused too.
//! * On Unix the directory is created with mode 0700; a directory or entry
//!   not owned by this user, or writable by group or others, and a key file
//!   not owned by this user or readable by others, make the host compile
//!   the module in memory instead (with a warning) and leave the cache
//!   alone. On Windows these ownership checks are not made: the MAC is the
//!   protection, and the key file lives in the user's profile.
//!
//! An entry is one file, `<dir>/<key>.cwasm`, where `key` is the SHA-256 of
//! the module's own SHA-256 and of the engine's compatibility hash:
//!
//! ```text
//! magic  "udpchat-cwasm-2\n"      16 bytes
//! key                             32 bytes, again: the file name is not trusted
//! mac    BLAKE2s-256 keyed by the user's secret, over magic, key, length
//!        and artifact              32 bytes
//! length of the artifact          8 bytes, little endian
//! artifact                        what Engine::precompile_component produced
//! ```
//!
//! An entry that is missing, truncated, forged, for another key, or that
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
use blake2::Blake2sMac256;
use blake2::digest::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"udpchat-cwasm-2\n";
/// Bytes of the per-user secret.
const SECRET_LEN: usize = 32;
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
    let secret = match private_dir(dir).and_then(|()| user_secret()) {
        Ok(secret) => secret,
        Err(why) => {
            tracing::warn!(
                "not using the module cache in {}: {why}; compiling in memory",
                dir.display()
            );
            let component = compile(engine, wasm)?;
            return Ok((component, Provenance::Compiled { why }));
        }
    };
    let key = key(engine, wasm);
    let path = dir.join(format!("{}.cwasm", hex(&key)));
    let why = match read_entry(engine, &path, &key, &secret) {
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
    if let Err(e) = write_entry(dir, &path, &key, &secret, &artifact) {
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

/// Where the per-user secret lives: `UDPCHAT_CACHE_KEY`, else `cache.key`
/// in the udpchat config directory.
pub fn secret_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("UDPCHAT_CACHE_KEY").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    udpchat_pin::config_dir().map(|d| d.join("cache.key"))
}

/// The per-user secret, created (32 random bytes, mode 0600) if absent.
fn user_secret() -> Result<[u8; SECRET_LEN], String> {
    let path = secret_path().ok_or("there is no config directory for the cache key")?;
    match read_secret(&path) {
        Ok(secret) => return Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("the cache key {}: {e}", path.display())),
    }
    let mut secret = [0u8; SECRET_LEN];
    getrandom_bytes(&mut secret).map_err(|e| format!("no randomness for the cache key: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Written under a temporary name, then linked into place: a second
    // process that raced this one keeps the first key written, and nobody
    // reads a half-written key.
    let tmp = dir.join(format!(".cache.key.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_file(&tmp)?;
        file.write_all(&secret)?;
        file.sync_all()?;
        match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| format!("cannot write the cache key {}: {e}", path.display()))?;
    read_secret(&path).map_err(|e| format!("the cache key {}: {e}", path.display()))
}

/// Reads the secret, refusing a file that others could read or replace.
fn read_secret(path: &Path) -> std::io::Result<[u8; SECRET_LEN]> {
    let meta = fs::symlink_metadata(path)?;
    private_check(&meta, 0o077).map_err(std::io::Error::other)?;
    let bytes = fs::read(path)?;
    bytes.as_slice().try_into().map_err(|_| {
        std::io::Error::other(format!(
            "holds {} bytes, not {SECRET_LEN}: delete it to make a new one",
            bytes.len()
        ))
    })
}

fn getrandom_bytes(out: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(out).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Creates `dir` (mode 0700 on Unix) if absent, then checks that it is
/// this user's and not writable by others.
fn private_dir(dir: &Path) -> Result<(), String> {
    create_private_dir(dir).map_err(|e| format!("cannot create the directory: {e}"))?;
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("cannot read the directory: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    private_check(&meta, 0o022).map_err(|e| format!("the directory {e}"))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// On Unix: `meta` belongs to this user and has none of the `forbidden`
/// permission bits. Elsewhere: always true.
fn private_check(meta: &fs::Metadata, forbidden: u32) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!("belongs to user {}, not to {me}", meta.uid()));
        }
        let mode = meta.mode() & 0o777;
        if mode & forbidden != 0 {
            return Err(format!(
                "has mode {mode:03o}: others may change it (chmod go-w, or choose another)"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, forbidden);
    Ok(())
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
fn read_entry(
    engine: &Engine,
    path: &Path,
    key: &[u8; 32],
    secret: &[u8; SECRET_LEN],
) -> Result<Component, String> {
    let len = match fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err("is not a regular file".into());
            }
            private_check(&meta, 0o022)?;
            meta.len()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("is absent".into()),
        Err(e) => return Err(format!("is unreadable: {e}")),
    };
    if len > MAX_FILE {
        return Err(format!("is too large ({len} bytes)"));
    }
    let bytes = fs::read(path).map_err(|e| format!("is unreadable: {e}"))?;
    let artifact = check_entry(&bytes, key, secret)?;
    deserialize_verified(engine, artifact)
        .map_err(|e| format!("was refused by this wasmtime (stale?): {e}"))
}

/// The MAC of an entry: over the magic, the key, the length and the
/// artifact, keyed by the user's secret.
fn entry_mac(secret: &[u8; SECRET_LEN], key: &[u8; 32], artifact: &[u8]) -> Blake2sMac256 {
    let mut mac =
        <Blake2sMac256 as KeyInit>::new_from_slice(secret).expect("BLAKE2s takes a 32-byte key");
    mac.update(MAGIC);
    mac.update(key);
    mac.update(&(artifact.len() as u64).to_le_bytes());
    mac.update(artifact);
    mac
}

/// Checks the header of an entry and returns its artifact if the MAC
/// proves this user's host wrote it for this key.
fn check_entry<'a>(
    bytes: &'a [u8],
    key: &[u8; 32],
    secret: &[u8; SECRET_LEN],
) -> Result<&'a [u8], String> {
    if bytes.len() < HEADER || bytes.get(..16) != Some(&MAGIC[..]) {
        return Err("has no valid header".into());
    }
    if bytes.get(16..48) != Some(&key[..]) {
        return Err("is for another module or engine".into());
    }
    let tag = &bytes[48..80];
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[80..88]);
    let artifact = &bytes[HEADER..];
    if u64::from_le_bytes(len) != artifact.len() as u64 {
        return Err("is truncated".into());
    }
    // Constant-time comparison (Mac::verify_slice).
    entry_mac(secret, key, artifact)
        .verify_slice(tag)
        .map_err(|_| "is not authentic (its MAC does not match this user's cache key)")?;
    Ok(artifact)
}

/// Makes an entry's bytes.
fn entry_bytes(key: &[u8; 32], secret: &[u8; SECRET_LEN], artifact: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(&entry_mac(secret, key, artifact).finalize().into_bytes());
    bytes.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    bytes.extend_from_slice(artifact);
    bytes
}

fn write_entry(
    dir: &Path,
    path: &Path,
    key: &[u8; 32],
    secret: &[u8; SECRET_LEN],
    artifact: &[u8],
) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{}.{}.tmp", hex(key), std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = private_file(&tmp)?;
        file.write_all(&entry_bytes(key, secret, artifact))?;
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
/// MAC, keyed by this user's secret (which a writer of the cache directory
/// cannot read), proves that this user's host wrote it for this module and
/// engine. The bytes are checked in memory and deserialized from that same
/// buffer (no second read of the file a writer could race). Wasmtime itself
/// then refuses artifacts from another version or configuration.
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
        let secret = [3u8; SECRET_LEN];
        let artifact = b"not really machine code".to_vec();
        let bytes = entry_bytes(&key, &secret, &artifact);
        assert_eq!(check_entry(&bytes, &key, &secret), Ok(&artifact[..]));

        assert!(
            check_entry(&bytes, &[8u8; 32], &secret).is_err(),
            "other key"
        );
        assert!(
            check_entry(&bytes, &key, &[4u8; SECRET_LEN]).is_err(),
            "another user's secret"
        );
        assert!(
            check_entry(&bytes[..bytes.len() - 1], &key, &secret).is_err(),
            "truncated"
        );
        assert!(
            check_entry(&bytes[..HEADER - 1], &key, &secret).is_err(),
            "no header"
        );
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(check_entry(&damaged, &key, &secret).is_err(), "flip at {i}");
        }
        // Planted code with a digest recomputed, as an attacker without the
        // secret would: refused.
        let mut planted = bytes.clone();
        let n = planted.len();
        planted[n - 1] ^= 1;
        let forged = entry_bytes(&key, &[0u8; SECRET_LEN], &planted[HEADER..]);
        assert!(check_entry(&forged, &key, &secret).is_err());
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
