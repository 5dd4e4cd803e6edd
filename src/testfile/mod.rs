//! Test files: schema, relationships and assertions in one file, run as a suite.
//!
//! STUB: this is only the interface the CLI's `test` command is wired to; the real runner is
//! being written on its own branch and replaces this file when merged.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// How to run test files.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {}

/// The outcome of running test files.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
}

/// One assertion that did not hold.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub file: PathBuf,
    pub assertion: String,
    pub message: String,
}

/// A test file that could not be read or understood.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TestFileError {
    pub file: PathBuf,
    pub message: String,
}

/// Runs every test file in `paths` (directories are searched).
pub fn run_paths<P: AsRef<Path>>(paths: &[P], _opts: &RunOptions) -> Result<Report, TestFileError> {
    let file = paths.first().map(|p| p.as_ref().to_path_buf()).unwrap_or_default();
    Err(TestFileError { file, message: "the test-file runner is not part of this build yet".into() })
}
