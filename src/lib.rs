//! poisonlens: find and remove poisoned samples from training data.
//!
//! The library is the single source of truth shared by the headless CLI and the
//! desktop workbench: datasets are opened by [`dataset`], scored by [`detect`],
//! and reported by [`report`]; decisions go through [`review`] into a durable
//! store, and [`manifest`] exports, signs and verifies the cleaned dataset.
//! Nothing here depends on the GUI, so pipelines can link it with
//! `--no-default-features`.
#![warn(missing_docs)]

pub mod build_id;
pub mod dataset;
pub mod detect;
pub mod error;
pub mod eval;
pub mod jobs;
pub mod knn;
pub mod linalg;
pub mod manifest;
pub mod packed;
pub mod project2d;
pub mod report;
pub mod review;
pub mod stats;
#[cfg(feature = "gui")]
pub mod ui;

pub use dataset::Dataset;
pub use error::{Error, Result};
