//! Every integration test, in one test binary. Each file here was once a
//! binary of its own, and each linked the whole crate with polars, tract
//! and (for the GUI tests) egui and wgpu: some 200 MB of linker output per
//! file and a link step each. One binary links once, which keeps the CI
//! build's disk use and time within a fresh machine's means. The modules
//! keep their names, so `cargo test scan_cache::` runs one file's tests.

mod common;
#[path = "../../fuzz/src/lib.rs"]
mod feed;

mod architecture;
mod bad_input;
mod detectors;
mod fuzz_corpus;
mod hostile_files;
mod model;
mod outputs;
mod review_forks;
mod review_store;
mod scan;
mod scan_cache;
mod screens;
mod signoff;
mod trigger;
mod verify_trust;
mod workbench;
mod zoo;
