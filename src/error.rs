//! Errors a user can act on: every variant names the file and, where there is
//! one, the row and column, because "invalid input" alone leaves people guessing.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while opening or scanning a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem with one cell of a table (manifest row/column, or a matrix cell).
    #[error("{file}: row {row}, column '{column}': {message}")]
    Cell {
        /// The file.
        file: PathBuf,
        /// 1-based data row (the header is not counted).
        row: usize,
        /// Column name.
        column: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A problem with a whole file (wrong format, missing column, length mismatch).
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: PathBuf,
        /// What is wrong, in words.
        message: String,
    },
    /// An I/O failure, with the path it happened on.
    #[error("{file}: {source}")]
    Io {
        /// The path the I/O was on.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The user cancelled the work.
    #[error("cancelled")]
    Cancelled,
    /// Anything that is not tied to one file (e.g. bad command-line values).
    #[error("{0}")]
    Other(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Error about one cell; `row` is 1-based over data rows (the header is not counted).
    pub fn cell(file: &Path, row: usize, column: &str, message: impl Into<String>) -> Self {
        Error::Cell {
            file: file.to_path_buf(),
            row,
            column: column.to_string(),
            message: message.into(),
        }
    }

    /// Error about a file as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Error::File {
            file: file.to_path_buf(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(file: &Path, source: std::io::Error) -> Self {
        Error::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}
