//! The datagram: a 16-byte header, then a body that depends on the kind.
//!
//! Decoding never panics: every decoder checks lengths before it reads and
//! rejects what it does not understand with a [`DecodeError`]. The layout is
//! specified in `PROTOCOL.md`; this module is its implementation.
//!
//! ```text
//!  0        1         2      3      4                12            16
//! +--------+---------+------+------+-----------------+-------------+--------
//! | marker | version | kind | flags| connection id   | packet num  | body…
//! | 'C'/'D'| 0x01    |      | 0x00 | u64 big-endian  | u32 BE      |
//! +--------+---------+------+------+-----------------+-------------+--------
//! ```
//!
//! Bodies: an [`Initial`] (cookie and first handshake message, padded), a
//! Retry (a cookie), a Handshake (the second handshake message), a Reset (a
//! reset token), or Data: frames, sealed by [`crate::crypto::Transport`].
//! Frames are parsed by [`Datagram::decode`] from the opened plaintext.

// Bytes from the network are read through checked accessors, and lengths
// are added with checked or saturating arithmetic: nothing here can panic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use alloc::vec::Vec;
use core::fmt;

/// Largest datagram an endpoint sends before it knows the path carries
/// more, in bytes: every path is assumed to carry 1200 bytes of UDP
/// payload (as QUIC assumes). Larger datagrams are sent only after a
/// probe of that size was acknowledged (`PROTOCOL.md` §3.9), so IP
/// fragmentation is never relied on.
pub const BASE_DATAGRAM: usize = 1200;
/// Largest datagram this protocol accepts, in bytes: the largest a probe
/// may test.
pub const MAX_DATAGRAM: usize = 16384;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 16;
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// A client's [`PacketKind::Initial`] datagrams are padded to at least this
/// many bytes, so a server's answer is never larger than what provoked it.
pub const MIN_INITIAL_LEN: usize = 1200;
/// Length of an authentication tag (ChaCha20-Poly1305).
pub const TAG_LEN: usize = 16;
/// The header bytes (marker, version, kind, flags) copied into the sealed
/// plaintext so that they are authenticated; see [`crate::crypto`].
pub const SEALED_HEADER_COPY: usize = 4;
/// Bytes that sealing adds to a Data datagram: the header copy and the tag.
pub const SEAL_OVERHEAD: usize = SEALED_HEADER_COPY + TAG_LEN;
/// Largest plaintext Data datagram (header and frames), so that it is at
/// most [`MAX_DATAGRAM`] once sealed.
pub const MAX_PLAINTEXT: usize = MAX_DATAGRAM - SEAL_OVERHEAD;
/// Largest plaintext Data datagram that fits [`BASE_DATAGRAM`] once sealed.
pub const BASE_PLAINTEXT: usize = BASE_DATAGRAM - SEAL_OVERHEAD;
/// Largest selective-acknowledgement bitmap, in bytes (256 segments).
pub const MAX_SACK_BYTES: usize = 32;
/// Largest payload of one segment frame.
pub const MAX_SEGMENT_DATA: usize = 1100;

/// The first byte of every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `C`: a command datagram (login, operations, acknowledgements,
    /// confirmations, keep-alives).
    Command,
    /// `D`: a data datagram, carrying at least one segment of a public or
    /// direct chat message.
    Data,
}

impl Marker {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            Marker::Command => b'C',
            Marker::Data => b'D',
        }
    }
}

/// What a datagram is for, byte 2 of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// 0x01, client to server: an optional cookie and the first handshake
    /// message, padded to [`MIN_INITIAL_LEN`]. With a valid cookie, the only
    /// datagram that makes a server create state.
    Initial,
    /// 0x02, both ways: sealed frames of an established connection.
    Data,
    /// 0x03, server to client: a cookie to echo in the next Initial.
    Retry,
    /// 0x04, server to client: the second handshake message.
    Handshake,
    /// 0x05, server to client: the server has no such connection; carries
    /// the connection's reset token.
    Reset,
}

impl PacketKind {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            PacketKind::Initial => 0x01,
            PacketKind::Data => 0x02,
            PacketKind::Retry => 0x03,
            PacketKind::Handshake => 0x04,
            PacketKind::Reset => 0x05,
        }
    }
}

/// Why a datagram was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the header, or a frame runs past the end.
    Truncated,
    /// Longer than [`MAX_DATAGRAM`].
    TooLarge,
    /// The first byte is neither `C` nor `D`.
    UnknownMarker(u8),
    /// A version this implementation does not speak.
    UnknownVersion(u8),
    /// An unknown packet kind.
    UnknownKind(u8),
    /// Reserved header flags were not zero.
    ReservedFlags(u8),
    /// An unknown frame type.
    UnknownFrame(u8),
    /// A frame's fields are inconsistent (bad flags, oversized bitmap or
    /// segment, non-zero padding, an empty datagram).
    MalformedFrame,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated datagram"),
            DecodeError::TooLarge => write!(f, "datagram larger than {MAX_DATAGRAM} bytes"),
            DecodeError::UnknownMarker(b) => write!(f, "unknown type marker 0x{b:02x}"),
            DecodeError::UnknownVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown packet kind 0x{k:02x}"),
            DecodeError::ReservedFlags(b) => write!(f, "reserved flags set (0x{b:02x})"),
            DecodeError::UnknownFrame(t) => write!(f, "unknown frame type 0x{t:02x}"),
            DecodeError::MalformedFrame => f.write_str("malformed frame"),
        }
    }
}

/// The fixed header of every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `C` or `D`.
    pub marker: Marker,
    /// What the datagram is for.
    pub kind: PacketKind,
    /// Names the session on both sides: in the handshake, the id the
    /// client chose at random; after it, the one the server issued (or the
    /// client's own, if it did not ask for one).
    pub connection_id: u64,
    /// Counts the datagrams a sender sent on this connection, from 0.
    pub packet_number: u32,
}

impl Header {
    /// Writes the 16 header bytes into `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.marker.byte());
        out.push(VERSION);
        out.push(self.kind.byte());
        out.push(0);
        out.extend_from_slice(&self.connection_id.to_be_bytes());
        out.extend_from_slice(&self.packet_number.to_be_bytes());
    }

    /// Reads and checks the header at the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(DecodeError::TooLarge);
        }
        let h = HeaderView::new(bytes).ok_or(DecodeError::Truncated)?;
        let marker = match h.marker() {
            b'C' => Marker::Command,
            b'D' => Marker::Data,
            other => return Err(DecodeError::UnknownMarker(other)),
        };
        if h.version() != VERSION {
            return Err(DecodeError::UnknownVersion(h.version()));
        }
        let kind = match h.kind() {
            0x01 => PacketKind::Initial,
            0x02 => PacketKind::Data,
            0x03 => PacketKind::Retry,
            0x04 => PacketKind::Handshake,
            0x05 => PacketKind::Reset,
            other => return Err(DecodeError::UnknownKind(other)),
        };
        if h.flags() != 0 {
            return Err(DecodeError::ReservedFlags(h.flags()));
        }
        Ok(Header {
            marker,
            kind,
            connection_id: h.connection_id(),
            packet_number: h.packet_number(),
        })
    }
}

/// The raw fields of a header, read from its 16 bytes without checking
/// them: obtaining a view checks the length, after which no accessor can
/// panic. [`Header::decode`] validates the fields; sealing and opening read
/// the packet number and the authenticated prefix through a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView<'a>(&'a [u8; HEADER_LEN]);

impl<'a> HeaderView<'a> {
    /// The view of the header at the start of `bytes`, or `None` when
    /// `bytes` is shorter than [`HEADER_LEN`].
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.first_chunk::<HEADER_LEN>().map(Self)
    }

    /// The view of exactly a header's bytes.
    #[must_use]
    pub const fn from_array(bytes: &'a [u8; HEADER_LEN]) -> Self {
        Self(bytes)
    }

    /// Byte 0: the marker.
    #[must_use]
    pub const fn marker(self) -> u8 {
        let [marker, ..] = *self.0;
        marker
    }

    /// Byte 1: the version.
    #[must_use]
    pub const fn version(self) -> u8 {
        let [_, version, ..] = *self.0;
        version
    }

    /// Byte 2: the kind.
    #[must_use]
    pub const fn kind(self) -> u8 {
        let [_, _, kind, ..] = *self.0;
        kind
    }

    /// Byte 3: the flags.
    #[must_use]
    pub const fn flags(self) -> u8 {
        let [_, _, _, flags, ..] = *self.0;
        flags
    }

    /// Bytes 0..4 (marker, version, kind, flags): the part of the header
    /// that sealing copies into the plaintext.
    #[must_use]
    pub const fn sealed_copy(self) -> [u8; SEALED_HEADER_COPY] {
        let [a, b, c, d, ..] = *self.0;
        [a, b, c, d]
    }

    /// Bytes 4..12: the connection id.
    #[must_use]
    pub const fn connection_id(self) -> u64 {
        let [_, _, _, _, a, b, c, d, e, f, g, h, ..] = *self.0;
        u64::from_be_bytes([a, b, c, d, e, f, g, h])
    }

    /// Bytes 12..16: the packet number.
    #[must_use]
    pub const fn packet_number(self) -> u32 {
        let [.., a, b, c, d] = *self.0;
        u32::from_be_bytes([a, b, c, d])
    }
}

/// Frame type bytes.
mod frame_type {
    pub const PADDING: u8 = 0x00;
    pub const ACK: u8 = 0x01;
    pub const SEGMENT: u8 = 0x02;
    pub const PING: u8 = 0x03;
    pub const CLOSE: u8 = 0x04;
    pub const PROBE: u8 = 0x05;
    pub const PROBE_ACK: u8 = 0x06;
}

/// Segment flag: this segment ends a message.
pub const SEGMENT_END: u8 = 0x01;

/// Why a connection was closed, carried by a [`Frame::Close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCode {
    /// 0x01: the session ended normally.
    Normal,
    /// 0x02: the sender heard nothing from the peer for its idle timeout.
    IdleTimeout,
    /// 0x03: the server has no session with this connection id (it may have
    /// restarted); the client should log in again.
    UnknownConnection,
    /// 0x04: the peer broke the protocol.
    ProtocolViolation,
    /// 0x05: the server is shutting down.
    ServerShutdown,
    /// 0x06: the server is at a limit (sessions, queue) and refuses.
    Refused,
    /// Any other code, kept so that newer peers can add codes.
    Other(u8),
}

impl CloseCode {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            CloseCode::Normal => 0x01,
            CloseCode::IdleTimeout => 0x02,
            CloseCode::UnknownConnection => 0x03,
            CloseCode::ProtocolViolation => 0x04,
            CloseCode::ServerShutdown => 0x05,
            CloseCode::Refused => 0x06,
            CloseCode::Other(b) => b,
        }
    }
    /// The code for a byte.
    pub fn from_byte(b: u8) -> CloseCode {
        match b {
            0x01 => CloseCode::Normal,
            0x02 => CloseCode::IdleTimeout,
            0x03 => CloseCode::UnknownConnection,
            0x04 => CloseCode::ProtocolViolation,
            0x05 => CloseCode::ServerShutdown,
            0x06 => CloseCode::Refused,
            other => CloseCode::Other(other),
        }
    }
}

/// One frame of a datagram, borrowing from the datagram's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// 0x01: every segment with a sequence number below `next_expected` was
    /// received; bit *i* of `sack` (least significant bit of byte 0 first)
    /// says segment `next_expected + 1 + i` was received too.
    Ack {
        /// Cumulative acknowledgement: the lowest sequence number not yet
        /// received.
        next_expected: u32,
        /// Selective acknowledgement bitmap, at most [`MAX_SACK_BYTES`].
        sack: &'a [u8],
    },
    /// 0x02: a piece of a reliable message.
    Segment {
        /// The segment's sequence number, from 0 per direction.
        seq: u32,
        /// Whether this segment ends a message.
        end: bool,
        /// At most [`MAX_SEGMENT_DATA`] bytes of the message.
        data: &'a [u8],
    },
    /// 0x03: asks for an acknowledgement; keeps the connection alive.
    Ping,
    /// 0x04: the sender has abandoned the connection.
    Close(CloseCode),
    /// 0x05: this datagram is a probe of the path: it is this many bytes
    /// long once sealed (padded up to it). Asks for a [`Frame::ProbeAck`]
    /// and an acknowledgement at once.
    Probe(u16),
    /// 0x06: a probe of this many bytes arrived.
    ProbeAck(u16),
}

impl Frame<'_> {
    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Frame::Ack {
                next_expected,
                sack,
            } => {
                debug_assert!(sack.len() <= MAX_SACK_BYTES);
                out.push(frame_type::ACK);
                out.extend_from_slice(&next_expected.to_be_bytes());
                out.push(sack.len() as u8);
                out.extend_from_slice(sack);
            }
            Frame::Segment { seq, end, data } => {
                debug_assert!(data.len() <= MAX_SEGMENT_DATA);
                out.push(frame_type::SEGMENT);
                out.extend_from_slice(&seq.to_be_bytes());
                out.push(if end { SEGMENT_END } else { 0 });
                out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                out.extend_from_slice(data);
            }
            Frame::Ping => out.push(frame_type::PING),
            Frame::Close(code) => {
                out.push(frame_type::CLOSE);
                out.push(code.byte());
            }
            Frame::Probe(size) => {
                out.push(frame_type::PROBE);
                out.extend_from_slice(&size.to_be_bytes());
            }
            Frame::ProbeAck(size) => {
                out.push(frame_type::PROBE_ACK);
                out.extend_from_slice(&size.to_be_bytes());
            }
        }
    }

    /// Bytes this frame takes on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            // Both are bounded (MAX_SACK_BYTES, MAX_SEGMENT_DATA) when
            // decoded; a frame built from larger slices saturates, and does
            // not fit any datagram.
            Frame::Ack { sack, .. } => sack.len().saturating_add(6),
            Frame::Segment { data, .. } => data.len().saturating_add(SEGMENT_OVERHEAD),
            Frame::Ping => 1,
            Frame::Close(_) => 2,
            Frame::Probe(_) | Frame::ProbeAck(_) => 3,
        }
    }
}

/// Bytes a segment frame adds to its data.
pub const SEGMENT_OVERHEAD: usize = 8;

/// A decoded datagram: its header and an iterator over checked frames.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// The fixed header.
    pub header: Header,
    frames: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Checks the whole datagram, header and every frame, so that iterating
    /// [`Datagram::frames`] afterwards cannot fail.
    pub fn decode(bytes: &'a [u8]) -> Result<Datagram<'a>, DecodeError> {
        let header = Header::decode(bytes)?;
        let frames = bytes.get(HEADER_LEN..).unwrap_or_default();
        let mut n = 0usize;
        let mut rest = frames;
        while !rest.is_empty() {
            let (frame, tail) = parse_frame(rest)?;
            match frame {
                // A probe states the sealed length of its own datagram.
                Some(Frame::Probe(size))
                    if Some(usize::from(size)) != bytes.len().checked_add(SEAL_OVERHEAD) =>
                {
                    return Err(DecodeError::MalformedFrame);
                }
                Some(_) => n = n.saturating_add(1),
                None => {}
            }
            rest = tail;
        }
        if n == 0 {
            return Err(DecodeError::MalformedFrame);
        }
        Ok(Datagram { header, frames })
    }

    /// The frames, in order; padding is skipped.
    pub fn frames(&self) -> Frames<'a> {
        Frames { rest: self.frames }
    }
}

/// Iterator over the frames of a checked [`Datagram`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;
    fn next(&mut self) -> Option<Frame<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            // The datagram was checked in `Datagram::decode`; an error here
            // cannot happen, and ends the iteration if it somehow did.
            let (frame, tail) = parse_frame(self.rest).ok()?;
            self.rest = tail;
            if let Some(f) = frame {
                return Some(f);
            }
        }
    }
}

fn take(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    bytes.split_at_checked(n).ok_or(DecodeError::Truncated)
}

/// The first `N` bytes as an array, and the rest.
fn take_array<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), DecodeError> {
    bytes.split_first_chunk::<N>().ok_or(DecodeError::Truncated)
}

/// Parses one frame; `None` stands for padding (which runs to the end).
fn parse_frame(bytes: &[u8]) -> Result<(Option<Frame<'_>>, &[u8]), DecodeError> {
    let (&[t], rest) = take_array::<1>(bytes)?;
    match t {
        frame_type::PADDING => {
            if rest.iter().any(|&b| b != 0) {
                return Err(DecodeError::MalformedFrame);
            }
            Ok((None, &[]))
        }
        frame_type::ACK => {
            let (&[a, b, c, d, len], rest) = take_array::<5>(rest)?;
            let len = usize::from(len);
            if len > MAX_SACK_BYTES {
                return Err(DecodeError::MalformedFrame);
            }
            let (sack, rest) = take(rest, len)?;
            Ok((
                Some(Frame::Ack {
                    next_expected: u32::from_be_bytes([a, b, c, d]),
                    sack,
                }),
                rest,
            ))
        }
        frame_type::SEGMENT => {
            let (&[a, b, c, d, flags, l0, l1], rest) = take_array::<7>(rest)?;
            if flags & !SEGMENT_END != 0 {
                return Err(DecodeError::MalformedFrame);
            }
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            if len > MAX_SEGMENT_DATA {
                return Err(DecodeError::MalformedFrame);
            }
            let (data, rest) = take(rest, len)?;
            Ok((
                Some(Frame::Segment {
                    seq: u32::from_be_bytes([a, b, c, d]),
                    end: flags & SEGMENT_END != 0,
                    data,
                }),
                rest,
            ))
        }
        frame_type::PING => Ok((Some(Frame::Ping), rest)),
        frame_type::CLOSE => {
            let (&[code], rest) = take_array::<1>(rest)?;
            Ok((Some(Frame::Close(CloseCode::from_byte(code))), rest))
        }
        frame_type::PROBE | frame_type::PROBE_ACK => {
            let (&size, rest) = take_array::<2>(rest)?;
            let size = u16::from_be_bytes(size);
            if !(BASE_DATAGRAM as u16..=MAX_DATAGRAM as u16).contains(&size) {
                return Err(DecodeError::MalformedFrame);
            }
            let frame = if t == frame_type::PROBE {
                Frame::Probe(size)
            } else {
                Frame::ProbeAck(size)
            };
            Ok((Some(frame), rest))
        }
        other => Err(DecodeError::UnknownFrame(other)),
    }
}

/// Builds a plaintext Data datagram: header, then frames, within
/// [`MAX_PLAINTEXT`] so that it fits [`MAX_DATAGRAM`] once sealed.
#[derive(Debug)]
pub struct DatagramBuilder {
    buf: Vec<u8>,
    limit: usize,
}

impl DatagramBuilder {
    /// Starts a datagram with `header` (its marker may be changed later
    /// with [`DatagramBuilder::set_marker`]).
    pub fn new(header: Header) -> Self {
        Self::with_limit(header, BASE_PLAINTEXT)
    }
    /// Like [`DatagramBuilder::new`], but at most `limit` bytes in all
    /// (never more than [`MAX_PLAINTEXT`]).
    pub fn with_limit(header: Header, limit: usize) -> Self {
        Self::in_buffer(header, limit, Vec::new())
    }
    /// Like [`DatagramBuilder::with_limit`], written into `buf` (cleared
    /// first): a buffer kept from one datagram to the next, given back by
    /// [`DatagramBuilder::finish`], allocates nothing once it is large
    /// enough.
    pub fn in_buffer(header: Header, limit: usize, mut buf: Vec<u8>) -> Self {
        let limit = limit.min(MAX_PLAINTEXT);
        buf.clear();
        buf.reserve(limit.saturating_add(SEAL_OVERHEAD));
        header.encode(&mut buf);
        DatagramBuilder { buf, limit }
    }
    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }
    /// Whether only the header was written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }
    /// Appends a frame if it fits; returns whether it did.
    pub fn push(&mut self, frame: &Frame<'_>) -> bool {
        if frame.encoded_len() > self.remaining() {
            return false;
        }
        frame.encode(&mut self.buf);
        true
    }
    /// Sets the type marker.
    pub fn set_marker(&mut self, marker: Marker) {
        if let Some(b) = self.buf.first_mut() {
            *b = marker.byte();
        }
    }
    /// Pads with a padding frame to at least `len` bytes.
    pub fn pad_to(&mut self, len: usize) {
        let len = len.min(self.limit);
        if self.buf.len() < len {
            self.buf.resize(len, frame_type::PADDING);
        }
    }
    /// The finished datagram.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

mod handshake;

pub use handshake::{
    COOKIE_LEN, INITIAL_ISSUE_ID, Initial, MSG1_LEN, RESET_TOKEN_LEN, encode_simple,
};

#[cfg(test)]
// In tests an out-of-range index is a failing test, not a crash.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests;
