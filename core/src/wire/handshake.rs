//! Datagrams outside a session, with the `C` marker: the body of an
//! Initial (cookie and first handshake message, padded), and the fixed
//! bodies of Retry, Handshake and Reset.

use alloc::vec::Vec;

use super::*;

/// Length of a cookie in an [`Initial`] or a Retry.
pub const COOKIE_LEN: usize = 16;
/// Length of the first handshake message: the client's ephemeral key
/// (X25519, [`crate::crypto::KEY_LEN`]).
pub const MSG1_LEN: usize = 32;
/// Length of a reset token.
pub const RESET_TOKEN_LEN: usize = 16;

/// The body of an Initial datagram.
///
/// ```text
/// cookie length (u8: 0 or 16) | cookie | msg1 length (u16 BE: 32) | msg1 | options (u8) | zeros to 1200 bytes
/// ```
///
/// The options byte was padding in the first clients of version 1, so it
/// is 0 there: a server reads 0 as "no options".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial<'a> {
    /// The cookie of the server's Retry, if any.
    pub cookie: Option<&'a [u8]>,
    /// The first handshake message (the client's ephemeral key).
    pub msg1: &'a [u8],
    /// Option [`INITIAL_ISSUE_ID`]: the client asks the server to issue the
    /// connection id the session uses after the handshake (`PROTOCOL.md`
    /// §4.7), so that no one can learn the session's reset token before
    /// the session exists.
    pub issue_id: bool,
}

/// The options bit by which a client asks for a connection id issued by the
/// server.
pub const INITIAL_ISSUE_ID: u8 = 0x01;

impl<'a> Initial<'a> {
    /// The whole datagram, header included, padded to [`MIN_INITIAL_LEN`].
    pub fn encode(&self, connection_id: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(MIN_INITIAL_LEN);
        Header {
            marker: Marker::Command,
            kind: PacketKind::Initial,
            connection_id,
            packet_number: 0,
        }
        .encode(&mut out);
        match self.cookie {
            Some(c) => {
                out.push(c.len() as u8);
                out.extend_from_slice(c);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.msg1.len() as u16).to_be_bytes());
        out.extend_from_slice(self.msg1);
        out.push(if self.issue_id { INITIAL_ISSUE_ID } else { 0 });
        out.resize(MIN_INITIAL_LEN.max(out.len()), 0);
        out
    }

    /// Reads the body of an Initial (the bytes after the header).
    pub fn decode(body: &'a [u8]) -> Result<Initial<'a>, DecodeError> {
        let (&[cookie_len], rest) = take_array::<1>(body)?;
        let cookie_len = usize::from(cookie_len);
        if cookie_len != 0 && cookie_len != COOKIE_LEN {
            return Err(DecodeError::MalformedFrame);
        }
        let (cookie, rest) = take(rest, cookie_len)?;
        let (&len, rest) = take_array::<2>(rest)?;
        let msg1_len = usize::from(u16::from_be_bytes(len));
        if msg1_len != MSG1_LEN {
            return Err(DecodeError::MalformedFrame);
        }
        let (msg1, rest) = take(rest, msg1_len)?;
        let (&[options], rest) = take_array::<1>(rest)?;
        if options & !INITIAL_ISSUE_ID != 0 || rest.iter().any(|&b| b != 0) {
            return Err(DecodeError::MalformedFrame);
        }
        Ok(Initial {
            cookie: (cookie_len > 0).then_some(cookie),
            msg1,
            issue_id: options & INITIAL_ISSUE_ID != 0,
        })
    }
}

/// A server-to-client datagram with a fixed body: Retry (cookie),
/// Handshake (second message) or Reset (token).
pub fn encode_simple(kind: PacketKind, connection_id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    Header {
        marker: Marker::Command,
        kind,
        connection_id,
        packet_number: 0,
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    out
}
