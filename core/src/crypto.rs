//! The security layer: the Noise handshake, sealed datagrams, the replay
//! window, stateless address cookies and reset tokens.
//!
//! * Handshake: `Noise_NX_25519_ChaChaPoly_BLAKE2s`. The client sends an
//!   ephemeral key; the server answers with its own ephemeral key and its
//!   static key, encrypted and authenticated, so the client learns and checks
//!   the server's identity (pinned, as ssh pins host keys) in one round trip.
//!   The prologue binds the connection id.
//! * Transport: every Data datagram is sealed with snow's stateless
//!   transport (ChaCha20-Poly1305) using the header's packet number as the
//!   explicit nonce; the plaintext starts with a copy of the header's first
//!   four bytes (marker, version, kind, flags). The connection id selects
//!   the keys (and is bound into the handshake's prologue) and the packet
//!   number is the nonce, so no header bit can be changed undetected.
//! * [`ReplayWindow`]: a datagram whose packet number was already seen, or
//!   is more than 1024 behind the newest, is dropped.
//! * [`CookieKeys`]: a stateless cookie is a BLAKE2s MAC over the client's
//!   address and connection id, keyed by a secret derived from the server's
//!   random seed and the current 60-second window; a cookie from the current
//!   or previous window is accepted.
//! * Reset tokens: a MAC of the connection id keyed by the server's static
//!   key, sent to the client inside the handshake; a server that lost a
//!   session (after a restart) proves it with the token.
//!
//! Randomness comes from the driver as seeds; nothing here reads the OS.

// Bytes from the network are read through checked accessors, and lengths
// are added with checked or saturating arithmetic: nothing here can panic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;
use core::net::SocketAddr;

use blake2::digest::consts::U16;
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::{Builder, HandshakeState, StatelessTransportState};

use crate::time::{Duration, Instant};
use crate::wire::{HEADER_LEN, HeaderView};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_NX_25519_ChaChaPoly_BLAKE2s";
/// Length of keys (X25519).
pub const KEY_LEN: usize = 32;
pub use crate::wire::{
    COOKIE_LEN, MSG1_LEN, RESET_TOKEN_LEN, SEAL_OVERHEAD, SEALED_HEADER_COPY, TAG_LEN,
};
const _: () = assert!(
    MSG1_LEN == KEY_LEN,
    "the first handshake message is one key"
);
/// The second handshake message: ephemeral key, encrypted static key, and
/// the encrypted reset token.
pub const MSG2_LEN: usize = KEY_LEN + KEY_LEN + TAG_LEN + RESET_TOKEN_LEN + TAG_LEN;
/// The second handshake message when the client asked for a connection id
/// issued by the server: the payload is that id (8 bytes) and its reset
/// token.
pub const MSG2_ISSUED_LEN: usize = MSG2_LEN + 8;
/// How long one cookie secret is used.
pub const COOKIE_WINDOW: Duration = Duration::from_secs(60);
const COOKIE_WINDOW_MICROS: u64 = COOKIE_WINDOW.as_micros();
/// How far behind the newest packet number a datagram is still accepted.
pub const REPLAY_WINDOW: u32 = 1024;

/// Why a cryptographic operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A handshake message was malformed or did not authenticate.
    Handshake,
    /// A datagram did not decrypt or authenticate.
    Decrypt,
    /// A packet number was seen before or is too old.
    Replay,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::Handshake => "handshake failed",
            CryptoError::Decrypt => "datagram did not authenticate",
            CryptoError::Replay => "replayed datagram",
        })
    }
}

/// A server's long-term X25519 key pair.
#[derive(Clone)]
pub struct StaticKey {
    private: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("public", &Hex(&self.public))
            .finish_non_exhaustive()
    }
}

impl StaticKey {
    /// The key pair whose private half is `private` (32 random bytes).
    pub fn from_private(private: [u8; KEY_LEN]) -> StaticKey {
        let mut public = [0u8; KEY_LEN];
        if let Some(mut dh) = DefaultResolver.resolve_dh(&DHChoice::Curve25519) {
            dh.set(&private);
            if let Some(k) = dh.pubkey().first_chunk::<KEY_LEN>() {
                public = *k;
            }
        }
        StaticKey { private, public }
    }
    /// The public half, which clients pin.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }
    /// The private half.
    pub fn private(&self) -> &[u8; KEY_LEN] {
        &self.private
    }
}

/// Formats bytes as lowercase hex.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a 32-byte key written as 64 hex digits.
pub fn parse_key(s: &str) -> Option<[u8; KEY_LEN]> {
    let s = s.trim();
    if s.len() != 2 * KEY_LEN {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (b, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *b = u8::from_str_radix(core::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

struct SeededRng(ChaCha20Rng);

impl Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// snow's own primitives, with randomness from a seed given by the driver.
struct Resolver {
    seed: [u8; 32],
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        #[cfg(feature = "ring")]
        if let Some(cipher) = snow::resolvers::RingResolver.resolve_cipher(choice) {
            return Some(cipher);
        }
        DefaultResolver.resolve_cipher(choice)
    }
}

fn builder<'a>(seed: [u8; 32]) -> Builder<'a> {
    // The constant parses; `expect` would only fire on a typo caught by the
    // first test run.
    let params = NOISE_PARAMS.parse().expect("valid Noise parameters");
    Builder::with_resolver(params, Box::new(Resolver { seed }))
}

fn prologue(connection_id: u64) -> [u8; 17] {
    let mut p = [0u8; 17];
    p[..9].copy_from_slice(b"udpchat/1");
    p[9..].copy_from_slice(&connection_id.to_be_bytes());
    p
}

/// A seeded random generator for the endpoints' own draws (connection
/// ids, handshake seeds).
#[derive(Clone, Debug)]
pub struct Rng(ChaCha20Rng);

impl Rng {
    /// A generator seeded with 32 bytes from the driver's OS randomness.
    pub fn from_seed(seed: [u8; 32]) -> Rng {
        Rng(ChaCha20Rng::from_seed(seed))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Reseeds from the current state and 32 fresh bytes.
    pub fn mix(&mut self, random: [u8; 32]) {
        let current = self.seed();
        self.0 = ChaCha20Rng::from_seed(derive(&[b"udpchat reseed", &current, &random]));
    }

    /// A second generator from the same 32 bytes, for another purpose
    /// (`label`): its output tells nothing of this one's, and making it
    /// draws nothing from this one.
    pub fn derived(seed: [u8; 32], label: &[u8]) -> Rng {
        Rng::from_seed(derive(&[b"udpchat derived generator", label, &seed]))
    }

    /// The next 32 random bytes.
    pub fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.0.fill_bytes(&mut s);
        s
    }
}

/// The client's side of the handshake.
#[derive(Clone)]
pub struct Initiator {
    connection_id: u64,
    seed: [u8; 32],
    msg1: Vec<u8>,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// What the client learns from a completed handshake.
pub struct Established {
    /// Seals and opens datagrams.
    pub transport: Transport,
    /// The server's static public key, authenticated by the handshake.
    pub server_key: [u8; KEY_LEN],
    /// The token that proves a later reset came from this server.
    pub reset_token: [u8; RESET_TOKEN_LEN],
    /// The connection id the server issued, when the client asked for one
    /// (`PROTOCOL.md` §4.7): the session's Data datagrams use it, and the
    /// reset token is that of this id.
    pub issued_id: Option<u64>,
}

impl Initiator {
    fn state(&self) -> Result<HandshakeState, CryptoError> {
        let prologue = prologue(self.connection_id);
        builder(self.seed)
            .prologue(&prologue)
            .and_then(Builder::build_initiator)
            .map_err(|_| CryptoError::Handshake)
    }

    /// Starts a handshake for `connection_id`; `seed` gives the ephemeral key.
    pub fn new(connection_id: u64, seed: [u8; 32]) -> Result<Initiator, CryptoError> {
        let mut i = Initiator {
            connection_id,
            seed,
            msg1: Vec::new(),
        };
        let mut hs = i.state()?;
        let mut buf = [0u8; 256];
        let n = hs
            .write_message(&[], &mut buf)
            .map_err(|_| CryptoError::Handshake)?;
        i.msg1 = buf.get(..n).ok_or(CryptoError::Handshake)?.to_vec();
        Ok(i)
    }

    /// The first handshake message, the same on every retransmission.
    pub fn msg1(&self) -> &[u8] {
        &self.msg1
    }

    /// Completes the handshake with the server's answer. A forged or damaged
    /// answer fails and leaves this initiator usable for the genuine one.
    pub fn finish(&self, msg2: &[u8]) -> Result<Established, CryptoError> {
        // The state is rebuilt from the seed each time (same ephemeral key,
        // same first message), so a forged answer cannot poison it.
        let mut hs = self.state()?;
        let mut buf = [0u8; 256];
        hs.write_message(&[], &mut buf)
            .map_err(|_| CryptoError::Handshake)?;
        let mut payload = [0u8; 256];
        let n = hs
            .read_message(msg2, &mut payload)
            .map_err(|_| CryptoError::Handshake)?;
        let (issued_id, token) = match payload.get(..n) {
            Some(token) if n == RESET_TOKEN_LEN => (None, token),
            Some(&[a, b, c, d, e, f, g, h, ref token @ ..]) if n == ISSUED_PAYLOAD_LEN => {
                (Some(u64::from_be_bytes([a, b, c, d, e, f, g, h])), token)
            }
            _ => return Err(CryptoError::Handshake),
        };
        if !hs.is_handshake_finished() {
            return Err(CryptoError::Handshake);
        }
        let mut server_key = [0u8; KEY_LEN];
        match hs.get_remote_static() {
            Some(k) if k.len() == KEY_LEN => server_key.copy_from_slice(k),
            _ => return Err(CryptoError::Handshake),
        }
        let reset_token: [u8; RESET_TOKEN_LEN] =
            token.try_into().map_err(|_| CryptoError::Handshake)?;
        let transport = hs
            .into_stateless_transport_mode()
            .map_err(|_| CryptoError::Handshake)?;
        Ok(Established {
            transport: Transport(transport),
            server_key,
            reset_token,
            issued_id,
        })
    }
}

/// The payload of msg2 that carries an issued connection id and its token.
const ISSUED_PAYLOAD_LEN: usize = 8 + RESET_TOKEN_LEN;

/// The server's side of the handshake: reads the client's first message
/// (sent with `connection_id`) and writes the answer. Its payload is the
/// reset token of `connection_id` or, when the server issues the
/// connection id `issued_id`, that id and its reset token (`PROTOCOL.md`
/// §4.2, §4.7).
pub fn respond(
    key: &StaticKey,
    connection_id: u64,
    seed: [u8; 32],
    msg1: &[u8],
    issued_id: Option<u64>,
) -> Result<(Transport, Vec<u8>), CryptoError> {
    if msg1.len() != MSG1_LEN {
        return Err(CryptoError::Handshake);
    }
    let prologue = prologue(connection_id);
    let mut hs = builder(seed)
        .local_private_key(key.private())
        .and_then(|b| b.prologue(&prologue))
        .and_then(Builder::build_responder)
        .map_err(|_| CryptoError::Handshake)?;
    let mut payload = [0u8; 256];
    hs.read_message(msg1, &mut payload)
        .map_err(|_| CryptoError::Handshake)?;
    let mut body = [0u8; ISSUED_PAYLOAD_LEN];
    let payload = match issued_id {
        Some(id) => {
            body[..8].copy_from_slice(&id.to_be_bytes());
            body[8..].copy_from_slice(&reset_token(key, id));
            &body[..]
        }
        None => {
            body[..RESET_TOKEN_LEN].copy_from_slice(&reset_token(key, connection_id));
            &body[..RESET_TOKEN_LEN]
        }
    };
    let mut msg2 = vec![0u8; 256];
    let n = hs
        .write_message(payload, &mut msg2)
        .map_err(|_| CryptoError::Handshake)?;
    msg2.truncate(n);
    let transport = hs
        .into_stateless_transport_mode()
        .map_err(|_| CryptoError::Handshake)?;
    Ok((Transport(transport), msg2))
}

/// Seals and opens the Data datagrams of one connection.
pub struct Transport(StatelessTransportState);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// Seals a plaintext datagram (header followed by frames): header, then
    /// ChaCha20-Poly1305 of header bytes 0..4 and the frames, nonce = packet
    /// number.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        self.seal_into(plain, &mut out)?;
        Ok(out)
    }

    /// [`Transport::seal`] into `out`, which is cleared first and then
    /// holds the sealed datagram; returns its length. A buffer kept from
    /// one datagram to the next allocates nothing once it is large enough.
    pub fn seal_into(&self, plain: &[u8], out: &mut Vec<u8>) -> Result<usize, CryptoError> {
        out.clear();
        out.extend_from_slice(plain);
        self.seal_in_place(out)
    }

    /// Seals the plaintext datagram that `buf` holds, in place: `buf` then
    /// holds the sealed datagram; returns its length. On an error `buf`
    /// holds nothing to send.
    pub fn seal_in_place(&self, buf: &mut Vec<u8>) -> Result<usize, CryptoError> {
        let Some((&mut header, frames)) = buf.split_first_chunk_mut::<HEADER_LEN>() else {
            buf.clear();
            return Err(CryptoError::Decrypt);
        };
        let frames_len = frames.len();
        let view = HeaderView::from_array(&header);
        let nonce = u64::from(view.packet_number());
        let len = frames_len.saturating_add(SEAL_OVERHEAD + HEADER_LEN);
        // The text to seal (the header's copy, then the frames) is laid out
        // past the sealed datagram's room, in the same buffer, then sealed
        // into that room: no allocation once `buf` has grown, and snow gets
        // the two distinct slices it needs. Only the room's last bytes are
        // new; the rest of it is the plaintext already there.
        buf.resize(len, 0);
        buf.extend_from_slice(&view.sealed_copy());
        buf.extend_from_within(HEADER_LEN..HEADER_LEN.saturating_add(frames_len));
        let (sealed, inner) = buf.split_at_mut(len);
        let written = sealed
            .get_mut(HEADER_LEN..)
            .map(|body| self.0.write_message(nonce, inner, body));
        let Some(Ok(n)) = written else {
            buf.clear();
            return Err(CryptoError::Decrypt);
        };
        let n = n.saturating_add(HEADER_LEN);
        buf.truncate(n);
        Ok(n)
    }

    /// Opens a sealed datagram; returns the plaintext datagram (header
    /// followed by frames).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut plain = vec![0u8; sealed.len().saturating_sub(SEALED_HEADER_COPY)];
        let n = self.open_into(sealed, &mut plain)?;
        plain.truncate(n);
        Ok(plain)
    }

    /// [`Transport::open`] into `out`, which must hold at least
    /// `sealed.len() - 4` bytes (a short `out` is an error); returns the
    /// length of the plaintext datagram at the start of `out`. Nothing is
    /// allocated: a small datagram (an acknowledgement) can be opened on
    /// the stack.
    pub fn open_into(&self, sealed: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        let (header, body) = sealed
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(CryptoError::Decrypt)?;
        if body.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Decrypt);
        }
        let view = HeaderView::from_array(header);
        let nonce = u64::from(view.packet_number());
        // Decrypted in place of the result: the header's copy lands in the
        // last bytes of the header's room and the frames right after it,
        // where the plaintext datagram has them; then the header goes over
        // the copy once it has been checked. No copy of the frames.
        const COPY_AT: usize = HEADER_LEN - SEALED_HEADER_COPY;
        let target = out
            .get_mut(COPY_AT..COPY_AT.saturating_add(body.len()))
            .ok_or(CryptoError::Decrypt)?;
        let n = self
            .0
            .read_message(nonce, body, target)
            .map_err(|_| CryptoError::Decrypt)?;
        if n < SEALED_HEADER_COPY {
            return Err(CryptoError::Decrypt);
        }
        let (room, _) = out
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(CryptoError::Decrypt)?;
        if room[COPY_AT..] != view.sealed_copy() {
            return Err(CryptoError::Decrypt);
        }
        *room = *header;
        Ok(n.saturating_add(COPY_AT))
    }
}

/// Which packet numbers were already received: the newest, and a bitmap of
/// the [`REPLAY_WINDOW`] before it.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    newest: Option<u32>,
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    /// Whether `pn` is new (not seen, not too old). Check only after the
    /// datagram authenticated, then [`ReplayWindow::record`] it.
    pub fn is_fresh(&self, pn: u32) -> bool {
        match self.newest {
            None => true,
            Some(newest) if pn > newest => true,
            Some(newest) => {
                newest
                    .checked_sub(pn)
                    .is_some_and(|back| back < REPLAY_WINDOW)
                    && !self.bit(pn)
            }
        }
    }

    /// Whether `pn` is newer than every packet number so far.
    pub fn is_newest(&self, pn: u32) -> bool {
        self.newest.is_none_or(|n| pn > n)
    }

    fn bit(&self, pn: u32) -> bool {
        let (word, mask) = Self::slot(pn);
        self.seen.get(word).is_some_and(|w| w & mask != 0)
    }

    /// The word of the bitmap that holds `pn`, and its bit there.
    fn slot(pn: u32) -> (usize, u64) {
        let i = pn % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set_bit(&mut self, pn: u32, on: bool) {
        let (word, mask) = Self::slot(pn);
        if let Some(w) = self.seen.get_mut(word) {
            if on {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }

    /// Records `pn` as received.
    pub fn record(&mut self, pn: u32) {
        match self.newest {
            Some(newest) if pn <= newest => {}
            Some(newest) => {
                // Forget the slots that the window slides past.
                let steps = pn.saturating_sub(newest).min(REPLAY_WINDOW);
                for k in 1..=steps {
                    self.set_bit(newest.wrapping_add(k), false);
                }
                self.newest = Some(pn);
            }
            None => self.newest = Some(pn),
        }
        self.set_bit(pn, true);
    }
}

/// Makes and checks stateless address cookies.
#[derive(Clone)]
pub struct CookieKeys {
    seed: [u8; 32],
}

impl fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKeys")
    }
}

fn address_bytes(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn mac16(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    // Keys of 32 bytes are always valid for BLAKE2s.
    if let Ok(mut mac) = <Blake2sMac<U16> as KeyInit>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

fn derive(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl CookieKeys {
    /// Cookie secrets derived from 32 random bytes.
    pub fn new(seed: [u8; 32]) -> CookieKeys {
        CookieKeys { seed }
    }

    fn window(now: Instant) -> u64 {
        now.as_micros() / COOKIE_WINDOW_MICROS
    }

    fn cookie_in(&self, window: u64, addr: &SocketAddr, connection_id: u64) -> [u8; COOKIE_LEN] {
        let key = derive(&[b"udpchat cookie", &self.seed, &window.to_be_bytes()]);
        let mut data = Vec::with_capacity(32);
        address_bytes(addr, &mut data);
        data.extend_from_slice(&connection_id.to_be_bytes());
        mac16(&key, &data)
    }

    /// The cookie for a client at `addr` now.
    pub fn cookie(&self, now: Instant, addr: &SocketAddr, connection_id: u64) -> [u8; COOKIE_LEN] {
        self.cookie_in(Self::window(now), addr, connection_id)
    }

    /// Whether `cookie` is valid for `addr` now (current or previous window).
    pub fn verify(
        &self,
        now: Instant,
        addr: &SocketAddr,
        connection_id: u64,
        cookie: &[u8],
    ) -> bool {
        let w = Self::window(now);
        let ok = |win: u64| ct_eq(&self.cookie_in(win, addr, connection_id), cookie);
        ok(w) | w.checked_sub(1).is_some_and(ok)
    }
}

/// The reset token for `connection_id`, derived from the server's static
/// private key so it survives a restart.
pub fn reset_token(key: &StaticKey, connection_id: u64) -> [u8; RESET_TOKEN_LEN] {
    let k = derive(&[b"udpchat reset", key.private()]);
    mac16(&k, &connection_id.to_be_bytes())
}

/// Bytes of a device token: an 8-byte id chosen by the server, then a
/// 16-byte MAC of the account and the id. Sent as 48 lowercase hex digits.
pub const DEVICE_TOKEN_LEN: usize = 24;

fn device_mac(key: &StaticKey, account_key: &str, id: &[u8; 8]) -> [u8; 16] {
    let k = derive(&[b"udpchat device token", key.private()]);
    let mut data = Vec::with_capacity(account_key.len().saturating_add(8));
    data.extend_from_slice(id);
    data.extend_from_slice(account_key.as_bytes());
    mac16(&k, &data)
}

/// A device token for the account `account_key` (its case-folded name),
/// with the server-chosen `id`, as 48 lowercase hex digits. Derived from
/// the server's static key: it needs no storage and stays valid until the
/// key changes.
pub fn device_token(key: &StaticKey, account_key: &str, id: u64) -> String {
    let id = id.to_be_bytes();
    let mac = device_mac(key, account_key, &id);
    let mut out = String::with_capacity(2 * DEVICE_TOKEN_LEN);
    for b in id.iter().chain(mac.iter()) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `token` is a device token this server issued for `account_key`.
pub fn check_device_token(key: &StaticKey, account_key: &str, token: &str) -> bool {
    let text = token.as_bytes();
    if text.len() != 2 * DEVICE_TOKEN_LEN {
        return false;
    }
    let mut bytes = [0u8; DEVICE_TOKEN_LEN];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hex = |c: u8| match c {
            b'0'..=b'9' | b'a'..=b'f' => char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok()),
            _ => None,
        };
        let &[hi, lo] = pair else {
            return false;
        };
        match (hex(hi), hex(lo), bytes.get_mut(i)) {
            (Some(h), Some(l), Some(b)) => *b = (h << 4) | l,
            _ => return false,
        }
    }
    let (id, mac) = bytes.split_at(8);
    let mut id8 = [0u8; 8];
    id8.copy_from_slice(id);
    ct_eq(&device_mac(key, account_key, &id8), mac)
}

/// Compares in time independent of where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests;
