#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! udpchat core (in progress)
extern crate alloc;

pub mod client;
pub mod reliable;
pub mod server;
pub mod session;
pub mod time;
pub mod ui;
pub mod wire;

pub use time::{Duration, Instant};
