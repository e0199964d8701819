//! Live progress of a backup, restore or validation, polled by the server about once a second.
//!
//! Plain atomics: the engine's threads add to them without locks, and a reader sees a value that
//! is at most a moment old. Totals come from a fast pre-scan and may arrive after work started.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one running operation.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes the operation will process in all, once known (0 before).
    pub total_bytes: AtomicU64,
    /// Entries the operation will process in all, once known (0 before).
    pub total_files: AtomicU64,
    /// Bytes processed so far: read, found unchanged, or restored.
    pub input_bytes: AtomicU64,
    /// Bytes written so far (to the destination for a backup, to the target for a restore).
    pub output_bytes: AtomicU64,
    /// Entries finished so far.
    pub finished_files: AtomicU64,
    current_file: Mutex<Option<PathBuf>>,
}

/// A consistent-enough copy of [`Progress`] for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub total_bytes: u64,
    pub total_files: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub finished_files: u64,
    pub current_file: Option<PathBuf>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            total_bytes: self.total_bytes.load(Ordering::Relaxed),
            total_files: self.total_files.load(Ordering::Relaxed),
            input_bytes: self.input_bytes.load(Ordering::Relaxed),
            output_bytes: self.output_bytes.load(Ordering::Relaxed),
            finished_files: self.finished_files.load(Ordering::Relaxed),
            current_file: self.current_file(),
        }
    }

    /// Percentage of input bytes processed (0..=100), 0 while the total is unknown.
    pub fn percent(&self) -> u8 {
        let total = self.total_bytes.load(Ordering::Relaxed);
        if total == 0 {
            return 0;
        }
        let done = self.input_bytes.load(Ordering::Relaxed).min(total);
        (done as u128 * 100 / total as u128) as u8
    }

    /// The file being worked on.
    pub fn current_file(&self) -> Option<PathBuf> {
        self.current_file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_current_file(&self, path: Option<PathBuf>) {
        *self.current_file.lock().unwrap_or_else(|p| p.into_inner()) = path;
    }

    pub(crate) fn add_input(&self, bytes: u64) {
        self.input_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_output(&self, bytes: u64) {
        self.output_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn finish_file(&self) {
        self.finished_files.fetch_add(1, Ordering::Relaxed);
    }
}
