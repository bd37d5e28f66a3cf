//! Implementations of the headless subcommands; `main.rs` only parses.

pub mod export;
pub mod keys;
pub mod review;
pub mod secret;
