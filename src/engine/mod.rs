//! The repository engine: moves bytes between sources, destinations and restore targets.
//!
//! A repository (see `docs/design/repository.md`) holds content-defined chunks compressed into
//! packs, index files locating them, manifests listing each set's tree, and set descriptors that
//! make sets visible. [`backup`], [`restore`] and [`validate`] are synchronous functions meant to
//! run under `tokio::task::spawn_blocking`; each spreads its work over std threads, reports
//! through a [`Progress`] and stops promptly when its `CancellationToken` is cancelled.

pub mod archive;
pub mod backup;
pub mod checkpoint;
pub mod chunker;
pub mod codec;
pub mod copy;
pub mod crypto;
pub mod error;
mod fastcdc;
pub mod format;
pub mod gc;
pub mod index;
pub mod manifest;
pub mod pack;
mod packer;
pub mod progress;
mod reader;
pub mod repair;
pub mod repository;
pub mod restore;
pub mod set;
pub mod throttle;
pub mod validate;
mod writeback;

#[cfg(test)]
mod testkit;

pub use backup::{
    BackupRequest, BackupSummary, ChangedFile, DamagedPage, FileOutcome, Seal, SkippedFile, backup,
    backup_sealed,
};
pub use checkpoint::{Checkpoint, CheckpointInfo};
pub use error::{EngineError, ErrorKind};
pub use progress::{Progress, ProgressSnapshot};
pub use repository::{Repository, TenantRef};
pub use restore::{RestoreMethod, RestoreSummary, restore};
pub use set::{BackupType, PostgresBackup, SetDescriptor};
pub use validate::{Damage, ValidateLevel, ValidateReport, validate};
