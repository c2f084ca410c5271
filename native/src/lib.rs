//! The native drivers of udpchat: the user store, password workers, and the
//! pieces shared by `chatserver` and `chatclient`.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod address;
pub mod chatstore;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod ignored;
pub mod keys;
pub mod manpage;
pub mod metrics;
pub mod passwords;
pub mod server_config;
pub mod state;
pub mod store;
pub mod udp;

/// The terminal, shared with host-runner.
pub use udpchat_term as terminal;
