//! The sans-IO core of udpchat: everything a chat client and server do,
//! except touching the world.
//!
//! No sockets, no clock, no threads, no randomness, no files: this crate is
//! `#![no_std]` (with `alloc`) and builds for `wasm32-unknown-unknown`. A
//! driver (the native `chatserver` and `chatclient`, the WebAssembly client,
//! a test) feeds it inputs and performs its outputs:
//!
//! * inputs: a datagram ([`server::Server::handle_datagram`]), a timer
//!   ([`server::Server::handle_timeout`]), a finished slow job
//!   ([`server::Server::handle_response`]), a line the user typed
//!   ([`ui::Console::handle_line`]);
//! * outputs: datagrams to send (`poll_transmit`), events for the log or the
//!   screen (`poll_event`, [`ui::Console::poll_output`]), slow jobs such as
//!   password hashing ([`server::Server::poll_request`]), and the next
//!   deadline (`poll_timeout`).
//!
//! Every time-dependent call takes `now`; the same inputs give the same
//! outputs, byte for byte.
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
//! A server and a client connected in memory, with a fake password hasher:
//!
//! ```
//! use udpchat_core::crypto::StaticKey;
//! use udpchat_core::server::{Request, Response, Server, ServerConfig};
//! use udpchat_core::ui::{Console, ConsoleConfig, ConsoleOutput};
//! use udpchat_core::{Duration, Instant};
//!
//! use core::net::SocketAddr;
//!
//! let _server_addr: SocketAddr = "127.0.0.1:65015".parse().unwrap();
//! let client_addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
//! let mut now = Instant::ZERO;
//! // Keys and randomness come from the driver (here: fixed bytes).
//! let key = StaticKey::from_private([7; 32]);
//! let mut server = Server::new(ServerConfig::default(), [], key, [1; 32]);
//! let mut console = Console::new(now, ConsoleConfig::default(), [2; 32], "alice").unwrap();
//! let mut screen = Vec::new();
//!
//! for step in 0..50 {
//!     // Client to server, server to client.
//!     while let Some(d) = console.poll_transmit(now) {
//!         server.handle_datagram(now, client_addr, &d);
//!     }
//!     while let Some(r) = server.poll_request() {
//!         let response = match r {
//!             // Rooms and history (an in-memory store would answer these).
//!             Request::Store { id, .. } => Response::Stored { id, result: Ok(()) },
//!             Request::History { id, .. } => Response::History { id, result: Ok((Vec::new(), false)) },
//!             Request::Register { id, password, .. } => {
//!                 Response::Registered { id, result: Ok(format!("fake:{password}")) }
//!             }
//!             Request::Verify { id, password, password_hash, .. } => {
//!                 Response::Verified { id, ok: password_hash == format!("fake:{password}") }
//!             }
//!         };
//!         server.handle_response(now, response);
//!     }
//!     while let Some(t) = server.poll_transmit(now) {
//!         console.handle_datagram(now, &t.bytes);
//!     }
//!     while let Some(out) = console.poll_output() {
//!         match out {
//!             ConsoleOutput::NeedPassword { .. } => console.submit_password(now, "a long secret"),
//!             ConsoleOutput::Line(l) => screen.push(l),
//!             ConsoleOutput::Prompt(_) | ConsoleOutput::ServerKey(_) => {}
//!         }
//!     }
//!     if step == 10 {
//!         console.handle_line(now, "EX");
//!     }
//!     if console.exit_code().is_some() {
//!         break;
//!     }
//!     now += Duration::from_millis(10);
//!     server.handle_timeout(now);
//!     console.handle_timeout(now);
//! }
//! assert_eq!(console.exit_code(), Some(0));
//! assert!(screen.iter().any(|l| l.starts_with("registered and logged in as alice")));
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
