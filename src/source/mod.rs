//! What is backed up: sources of files and their metadata.
//!
//! A source hands the engine entries in one deterministic order with their metadata captured,
//! names as raw bytes (never assumed UTF-8), and file contents read with change detection.
//! Directory trees live in [`directory`], PostgreSQL clusters in [`postgres`], log folders in
//! [`log_folder`].

pub mod directory;
pub mod log_folder;
pub mod postgres;
pub mod uri;

pub use directory::{
    DirectoryWalk, EntryKind, FileChange, Metadata, SourceFile, TreeRules, WalkEntry, WalkError,
    WalkErrorKind, compare_paths, scan_totals,
};
