//! Errors of the repository engine.
//!
//! Each variant says what failed and on which object or file; [`EngineError::kind`] sorts them
//! into the few classes the server maps to SQLSTATEs and the executor's retry rules use.

use std::io;
use std::path::PathBuf;

use crate::error::SqlState;
use crate::storage::StorageError;

/// The class of an [`EngineError`], which decides its SQLSTATE and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    DestinationFull,
    DestinationMissing,
    SourceMissing,
    UnreadableFile,
    CorruptObject,
    UnknownFormatVersion,
    /// The destination is encrypted and no key that opens it was given.
    Locked,
    /// No passphrase given opens the destination's key.
    WrongPassphrase,
    /// The destination belongs to another installation, or is not a repository at all.
    WrongDestination,
    /// A set, tenant or checkpoint that was asked for does not exist.
    NotFound,
    /// The request cannot be carried out in the current state (non-empty target, set exists).
    InvalidState,
    Cancelled,
    Io,
}

impl ErrorKind {
    /// The PostgreSQL SQLSTATE the server reports for this class.
    pub fn sqlstate(self) -> SqlState {
        match self {
            ErrorKind::DestinationFull => SqlState::DiskFull,
            ErrorKind::DestinationMissing => SqlState::UndefinedFile,
            ErrorKind::SourceMissing => SqlState::UndefinedFile,
            ErrorKind::UnreadableFile => SqlState::IoError,
            ErrorKind::CorruptObject => SqlState::DataCorrupted,
            ErrorKind::UnknownFormatVersion => SqlState::FeatureNotSupported,
            ErrorKind::Locked => SqlState::ObjectNotInPrerequisiteState,
            ErrorKind::WrongPassphrase => SqlState::InvalidPassword,
            ErrorKind::WrongDestination => SqlState::ObjectNotInPrerequisiteState,
            ErrorKind::NotFound => SqlState::UndefinedObject,
            ErrorKind::InvalidState => SqlState::ObjectNotInPrerequisiteState,
            ErrorKind::Cancelled => SqlState::QueryCanceled,
            ErrorKind::Io => SqlState::IoError,
        }
    }
}

/// Everything that can make a backup, restore or validation fail.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "destination {destination} is full (while writing {object}); free space or use another destination; earlier backup sets are intact"
    )]
    DestinationFull { destination: String, object: String },

    #[error("destination {destination} is missing or unreachable; check that it is mounted")]
    DestinationMissing { destination: String },

    #[error("source {} does not exist or is not a directory", path.display())]
    SourceMissing { path: PathBuf },

    #[error("cannot read {}: {source}; fix its permissions or back up with skip_unreadable", path.display())]
    UnreadableFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("object {object} is damaged: {detail}")]
    CorruptObject { object: String, detail: String },

    #[error(
        "destination {destination} has repository format version {found}; this backstop reads versions up to {supported}"
    )]
    UnknownFormatVersion {
        destination: String,
        found: u32,
        supported: u32,
    },

    #[error(
        "destination {destination} belongs to installation {owner}, not {ours}; import it with ALTER SYSTEM IMPORT BACKUP before writing to it"
    )]
    ForeignDestination {
        destination: String,
        owner: String,
        ours: String,
    },

    #[error(
        "repository {destination} was opened read-only; open it with create_or_open to write backups"
    )]
    ReadOnly { destination: String },

    #[error(
        "destination {destination} is encrypted (key {key_id}) and this server holds no key for it; SET DECRYPTION IDENTIFIED BY its passphrase first"
    )]
    Locked { destination: String, key_id: String },

    #[error(
        "no passphrase given opens the key of destination {destination}{what}; SET DECRYPTION IDENTIFIED BY one of its passphrases"
    )]
    WrongPassphrase { destination: String, what: String },

    #[error(
        "destination {destination} holds unencrypted backups; encryption covers a whole destination: set an empty data_backup_dest for encrypted backup sets"
    )]
    PlainDestination { destination: String },

    #[error("destination {destination} is not a backstop repository (no backstop.format)")]
    NotARepository { destination: String },

    #[error("backup set {set_id} of tenant {tenant} not found in {destination}")]
    SetNotFound {
        destination: String,
        tenant: String,
        set_id: i64,
    },

    #[error("backup set {set_id} of tenant {tenant_id} already exists in {destination}")]
    SetExists {
        destination: String,
        tenant_id: i64,
        set_id: i64,
    },

    #[error("restore target {} is not empty; use method=delta to restore into it", target.display())]
    TargetNotEmpty { target: PathBuf },

    #[error("operation cancelled")]
    Cancelled,

    #[error(
        "{count} page(s) of the cluster fail their checksum: {pages}; the set is not kept: \
         repair or restore the relation, or SET BACKUP_IGNORE_CHECKSUM_FAILURES = true to keep \
         backing it up as it is"
    )]
    DamagedPages { count: usize, pages: String },

    /// The PostgreSQL cluster being backed up refused or could not be reached.
    #[error("{detail}")]
    Cluster { detail: String, retryable: bool },

    #[error(
        "WAL segment {segment}, which this set needs to be consistent, was not archived within \
         {waited_secs} s: check that archive_command calls `backstop archive-push --tenant \
         {tenant} %p` and that archive log is on (CDB_OB_ARCHIVELOG), or back up PLUS \
         ARCHIVELOG to keep the WAL beside the set"
    )]
    WalNotArchived {
        tenant: String,
        segment: String,
        waited_secs: u64,
    },

    #[error("{operation} {} failed: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{0}")]
    Destination(StorageError),
}

impl EngineError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::DestinationFull { .. } => ErrorKind::DestinationFull,
            EngineError::DestinationMissing { .. } => ErrorKind::DestinationMissing,
            EngineError::SourceMissing { .. } => ErrorKind::SourceMissing,
            EngineError::UnreadableFile { .. } => ErrorKind::UnreadableFile,
            EngineError::CorruptObject { .. } => ErrorKind::CorruptObject,
            EngineError::UnknownFormatVersion { .. } => ErrorKind::UnknownFormatVersion,
            EngineError::Locked { .. } => ErrorKind::Locked,
            EngineError::WrongPassphrase { .. } => ErrorKind::WrongPassphrase,
            EngineError::PlainDestination { .. } => ErrorKind::InvalidState,
            EngineError::ForeignDestination { .. }
            | EngineError::NotARepository { .. }
            | EngineError::ReadOnly { .. } => ErrorKind::WrongDestination,
            EngineError::SetNotFound { .. } => ErrorKind::NotFound,
            EngineError::SetExists { .. } | EngineError::TargetNotEmpty { .. } => {
                ErrorKind::InvalidState
            }
            EngineError::Cancelled => ErrorKind::Cancelled,
            EngineError::DamagedPages { .. } => ErrorKind::CorruptObject,
            EngineError::Cluster {
                retryable: true, ..
            } => ErrorKind::Io,
            EngineError::Cluster { .. } | EngineError::WalNotArchived { .. } => {
                ErrorKind::InvalidState
            }
            EngineError::Io { .. } | EngineError::Destination(_) => ErrorKind::Io,
        }
    }

    /// Whether trying the same work again later may succeed (storage or network hiccups);
    /// a full or missing destination, damage, a cancel or a bad request are not retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Io)
    }

    /// An object that is missing where the repository says it must be.
    pub(crate) fn missing_object(object: &str, needed_by: &str) -> EngineError {
        EngineError::CorruptObject {
            object: object.to_string(),
            detail: format!("missing (needed by {needed_by})"),
        }
    }

    pub(crate) fn corrupt(object: &str, detail: impl Into<String>) -> EngineError {
        EngineError::CorruptObject {
            object: object.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        EngineError::Io {
            operation,
            path: path.into(),
            source,
        }
    }
}

impl From<StorageError> for EngineError {
    fn from(err: StorageError) -> EngineError {
        match err {
            StorageError::DestinationFull {
                destination,
                object,
            } => EngineError::DestinationFull {
                destination,
                object,
            },
            StorageError::DestinationMissing { destination } => {
                EngineError::DestinationMissing { destination }
            }
            StorageError::NotFound { object, .. } => EngineError::CorruptObject {
                object,
                detail: "missing".into(),
            },
            other => EngineError::Destination(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_io_is_retryable() {
        let full = EngineError::DestinationFull {
            destination: "file:///x".into(),
            object: "packs/a".into(),
        };
        assert!(!full.is_retryable());
        assert_eq!(full.kind().sqlstate().code(), "53100");
        let io = EngineError::io("read", "/x", io::Error::other("boom"));
        assert!(io.is_retryable());
        assert!(!EngineError::Cancelled.is_retryable());
        let corrupt = EngineError::corrupt("packs/ab/ab.pack", "checksum mismatch");
        assert!(corrupt.to_string().contains("packs/ab/ab.pack"));
    }
}
