//! The sans-IO core of udpchat: everything a chat client and server do,
//! except touching the world.
//!
//! No sockets, no clock, no threads, no randomness, no files: this crate is
//! `#![no_std]` (with `alloc`) and builds for `wasm32-unknown-unknown`. A
//! driver (the native `chatserver` and `chatclient`, the WebAssembly client,
//! a test) feeds each endpoint one input enum and performs what its output
//! enum says, in the manner of str0m:
//!
//! * [`server::Server::handle_input`] takes a [`server::Input`]: a datagram,
//!   a timeout, or a finished slow job (a password checked, an account
//!   stored); [`client::Client::handle_input`] takes a [`client::Input`]: a
//!   datagram or a timeout. What the user does are the client's other
//!   methods ([`client::Client::send_public`], …), or lines typed into a
//!   [`ui::Console`].
//! * [`server::Server::poll_output`] and [`client::Client::poll_output`]
//!   return the next thing to do: a datagram to send (written into the
//!   caller's buffer), an event for the log or the screen, slow work for the
//!   server's driver (password hashing), and, once nothing else is left, a
//!   timeout: the deadline of the next input. Drain the outputs until that
//!   timeout after every input, then wait for a datagram or the deadline.
//!
//! The `poll_*` and `handle_*` methods the enums are made of stay public
//! for drivers that need them one at a time (the native server sends in
//! batches and within a budget per turn). Every time-dependent call takes
//! `now`; the same inputs give the same outputs, byte for byte.
//!
//! # Layers
//!
//! * [`wire`]: the datagram (16-byte header, frames), at most 1200 bytes.
//! * [`crypto`]: the Noise handshake, sealed datagrams, replay window,
//!   address cookies.
//! * [`reliable`]: per-peer reliable, ordered, exactly-once messages.
//! * [`connection`]: one live connection (keys, replay window, channel,
//!   path), which both endpoints use after the handshake.
//! * [`session`]: the JSON messages of login, PM, DM, EX and presence.
//! * [`server`], [`client`]: the two endpoints; [`ui`]: the line console.
//!
//! # The driving loop
//!
//! A server and a client connected in memory by a perfect network, with a
//! fake password hasher: alice registers, says hello, and the server
//! confirms it. Each endpoint's outputs are drained until its timeout; when
//! nothing is in flight, the clock jumps to the earlier deadline.
//!
//! ```
//! use udpchat_core::client::{self, Client, ClientConfig, ClientEvent};
//! use udpchat_core::crypto::StaticKey;
//! use udpchat_core::server::{self, Request, Response, Server, ServerConfig};
//! use udpchat_core::Instant;
//!
//! use core::net::SocketAddr;
//!
//! let alice_addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
//! let mut now = Instant::ZERO;
//! // Keys and randomness come from the driver (here: fixed bytes).
//! let key = StaticKey::from_private([7; 32]);
//! let mut server = Server::new(ServerConfig::default(), [], key, [1; 32]);
//! let mut alice = Client::new(now, ClientConfig::default(), [2; 32], "alice").unwrap();
//! // One buffer for every datagram, and the datagrams on their way.
//! let mut buf = Vec::new();
//! let (mut to_server, mut to_alice) = (Vec::new(), Vec::new());
//! let mut confirmed = false;
//!
//! while !confirmed {
//!     let alice_deadline = loop {
//!         match alice.poll_output(now, &mut buf) {
//!             client::Output::Transmit { len } => to_server.push(buf[..len].to_vec()),
//!             client::Output::Event(ClientEvent::PasswordRequired { .. }) => {
//!                 alice.submit_password("a long secret").unwrap();
//!             }
//!             client::Output::Event(ClientEvent::LoggedIn { .. }) => {
//!                 alice.send_public("hello").unwrap();
//!             }
//!             client::Output::Event(ClientEvent::Confirmed { .. }) => confirmed = true,
//!             client::Output::Event(_) => {}
//!             client::Output::Timeout(deadline) => break deadline,
//!         }
//!     };
//!     for bytes in to_server.drain(..) {
//!         server.handle_input(server::Input::Datagram { now, from: alice_addr, bytes: &bytes });
//!     }
//!     let server_deadline = loop {
//!         match server.poll_output(now, &mut buf) {
//!             server::Output::Transmit(t) => to_alice.push(buf[..t.len].to_vec()),
//!             // Slow work: a real driver hands it to a worker thread and
//!             // gives the answer back as an input when it is done.
//!             server::Output::Request(Request::Register { id, password, .. }) => {
//!                 let result = Ok(format!("fake:{password}"));
//!                 server.handle_input(server::Input::Response(now, Response::Registered { id, result }));
//!             }
//!             server::Output::Request(r) => panic!("unexpected {r:?}"),
//!             server::Output::Event(_event) => {} // for the log
//!             server::Output::Timeout(deadline) => break deadline,
//!         }
//!     };
//!     if to_alice.is_empty() {
//!         // Nothing in flight: wait for the earlier deadline.
//!         let next = [alice_deadline, server_deadline].into_iter().flatten().min();
//!         now = next.expect("someone waits for something").max(now);
//!         alice.handle_input(client::Input::Timeout(now));
//!         server.handle_input(server::Input::Timeout(now));
//!     }
//!     for bytes in to_alice.drain(..) {
//!         alice.handle_input(client::Input::Datagram { now, bytes: &bytes });
//!     }
//! }
//! assert!(alice.is_logged_in());
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod client;
pub mod connection;
pub mod crypto;
pub mod reliable;
pub mod server;
pub mod session;
pub mod time;
pub mod ui;
pub mod wire;

pub use time::{Duration, Instant};
