//! Implementations of the headless subcommands; `main.rs` only parses.

pub mod export;
pub mod keys;
pub mod model;
pub mod review;
pub mod secret;
