//! Destinations: where a repository's objects live.
//!
//! A destination is a flat namespace of immutable objects named by `/`-separated relative paths
//! (`packs/ab/ab12….pack`). The [`Backend`] trait is all the engine needs from one: atomic puts,
//! whole and ranged gets, listing, deletion and size look-ups. [`local::LocalBackend`] implements
//! it for `file:///abs/path`; an S3 backend implements the same seven calls.

pub mod aligned;
pub mod faults;
pub mod local;
pub mod page_cache;
pub mod uri;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use local::LocalBackend;

/// Prefix of the temporary names objects are written under before their atomic rename; listings
/// skip them, so an interrupted put never shows up as an object.
pub const TEMP_PREFIX: &str = ".tmp-";

/// One object found by [`Backend::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Object name relative to the destination root, `/`-separated.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// What went wrong talking to a destination.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The destination has no room left (ENOSPC, EDQUOT); nothing half-written stays visible.
    #[error("destination {destination} is full while writing {object}")]
    DestinationFull { destination: String, object: String },
    /// The destination's root is gone (unmounted, deleted, bucket removed).
    #[error("destination {destination} does not exist or is no longer reachable")]
    DestinationMissing { destination: String },
    /// The named object does not exist.
    #[error("object {object} not found in destination {destination}")]
    NotFound { destination: String, object: String },
    /// Any other I/O failure, with the operation and object it happened on.
    #[error("{operation} of {object} in destination {destination} failed: {source}")]
    Io {
        destination: String,
        operation: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },
    /// The destination URI cannot be used.
    #[error("unsupported destination {uri}: {reason}")]
    Unsupported { uri: String, reason: String },
}

/// A destination holding a repository's objects.
///
/// Every call is synchronous and may be made from several threads at once.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A printable name of the destination (its URI), used in error messages.
    fn describe(&self) -> String;
    /// Stores `data` under `name` so that readers see either the old state or all of `data`,
    /// and the object survives a crash once this returns.
    fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Reads a whole object.
    fn get(&self, name: &str) -> Result<Vec<u8>, StorageError>;
    /// Reads `length` bytes at `offset`; returns fewer bytes only when the object is shorter.
    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>, StorageError>;
    /// Reads `buf.len()` bytes at `offset` into `buf` and returns how many it read (fewer only
    /// when the object is shorter). A reader of many ranges keeps one buffer instead of taking
    /// fresh zeroed pages for each range.
    fn read_range_into(
        &self,
        name: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let bytes = self.get_range(name, offset, buf.len())?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
    /// Lists every object whose name starts with `prefix` (a folder such as `packs/`), in no
    /// particular order, without temporary objects.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, name: &str) -> Result<(), StorageError>;
    /// The object's size, or `None` when it does not exist.
    fn size(&self, name: &str) -> Result<Option<u64>, StorageError>;
    /// Whether the destination root itself exists.
    fn root_exists(&self) -> Result<bool, StorageError>;

    /// Removes the temporary objects under `prefix` that puts a killed process never finished;
    /// returns how many and their bytes. Only safe while nothing stages into that prefix (the
    /// collector calls it with the destination to itself).
    fn remove_temporaries(&self, _prefix: &str) -> Result<(u64, u64), StorageError> {
        Ok((0, 0))
    }

    /// Writes `data` for `name` without waiting for the disk: nothing is visible under `name`
    /// until [`Backend::commit`] has made it durable there. A writer stages many objects while
    /// one thread commits them in order, so writing overlaps the disk instead of waiting for
    /// it. Backends without a cheaper path store the object at once.
    fn stage(&self, name: &str, data: &[u8]) -> Result<Staged, StorageError> {
        self.put(name, data)?;
        Ok(Staged {
            name: name.to_string(),
            temp: None,
        })
    }

    /// [`Backend::stage`] of the first `len` bytes of `buf`, for a writer that will not read
    /// the object back soon: a local destination writes large objects past the page cache.
    fn stage_uncached(
        &self,
        name: &str,
        buf: &aligned::AlignedBuf,
        len: usize,
    ) -> Result<Staged, StorageError> {
        self.stage(name, &buf[..len])
    }

    /// Makes a staged object durable under its name; it survives a crash once this returns.
    fn commit(&self, staged: Staged) -> Result<(), StorageError> {
        let _ = staged;
        Ok(())
    }

    /// Forgets a staged object that will not be committed.
    fn discard(&self, staged: Staged) {
        let _ = staged;
    }

    /// Asks the destination to start writing a staged object to stable storage without waiting
    /// for it, so that the commit which follows finds the work done. Only a hint: commit alone
    /// is what makes the object durable.
    fn start_writeback(&self, staged: &Staged) {
        let _ = staged;
    }

    /// The key that seals this destination's objects, when it is encrypted and unlocked.
    fn sealer(&self) -> Option<&crate::engine::crypto::Sealer> {
        None
    }
}

/// How many staged objects may wait for [`commit_staged`]: they sit in the page cache, not in
/// our memory, and let the disk write a burst while the writers go on (for a backup, 256 MiB of
/// packs: a full backup of the benchmark's dataset took 10-15% less time than with 4); little
/// enough that what follows durability (a backup's checkpoints) stays close behind. Writers
/// hand their staged objects over a [`staging_channel`]; the committer holds the rest.
pub const STAGE_AHEAD: usize = 32;

/// The committer of a staging pipeline: commits what the writers staged, in the order it
/// arrives, until every writer has hung up. Before each commit `keep` says whether the work
/// goes on; once it does not, the rest is discarded. `committed` hears what each commit carried;
/// `failed` hears each failed commit (its temporary file is gone then).
///
/// Each object's writeback starts as soon as it arrives, up to [`STAGE_AHEAD`] of them, so the
/// disk works on all of them at once while the oldest is committed. Left to the kernel, dirty
/// pages of a large machine wait for the fsync of their own commit, and the disk would write
/// one object at a time.
pub fn commit_staged<T>(
    backend: &dyn Backend,
    staged: StagedReceiver<T>,
    keep: impl Fn() -> bool,
    mut committed: impl FnMut(T),
    mut failed: impl FnMut(StorageError),
) {
    use std::sync::mpsc::TryRecvError;
    let mut pending = std::collections::VecDeque::with_capacity(STAGE_AHEAD);
    let mut open = true;
    let arrived = |item: (Staged, T), pending: &mut std::collections::VecDeque<_>| {
        backend.start_writeback(&item.0);
        pending.push_back(item);
    };
    loop {
        if pending.is_empty() && open {
            match staged.recv() {
                Ok(item) => arrived(item, &mut pending),
                Err(_) => open = false,
            }
        }
        while open && pending.len() < STAGE_AHEAD {
            match staged.try_recv() {
                Ok(item) => arrived(item, &mut pending),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let Some((object, carried)) = pending.pop_front() else {
            break;
        };
        if !keep() {
            backend.discard(object);
            continue;
        }
        match backend.commit(object) {
            Ok(()) => committed(carried),
            Err(e) => failed(e),
        }
    }
}

/// An object written by [`Backend::stage`] and not yet committed.
#[derive(Debug)]
pub struct Staged {
    /// The name it gets once committed.
    pub name: String,
    /// Where the backend keeps it until then, if anywhere.
    pub temp: Option<TempFile>,
}

/// A staged object's temporary file, kept open so that starting its writeback and committing it
/// do not open it again.
#[derive(Debug)]
pub struct TempFile {
    pub path: PathBuf,
    pub file: std::fs::File,
}

/// The channel writers hand staged objects to [`commit_staged`] over. It holds one: the
/// committer keeps up to [`STAGE_AHEAD`] itself, each already being written back.
pub fn staging_channel<T>() -> (StagedSender<T>, StagedReceiver<T>) {
    std::sync::mpsc::sync_channel(1)
}

/// Where writers send staged objects, each with what its commit is to report.
pub type StagedSender<T> = std::sync::mpsc::SyncSender<(Staged, T)>;
/// Where [`commit_staged`] takes them from.
pub type StagedReceiver<T> = std::sync::mpsc::Receiver<(Staged, T)>;

/// Opens the destination a URI names. Only `file:///abs/path` is supported so far.
pub fn open_destination(uri: &str) -> Result<Arc<dyn Backend>, StorageError> {
    match uri::Destination::parse(uri) {
        Ok(uri::Destination::File(path)) => Ok(Arc::new(LocalBackend::new(path))),
        Err(e) => Err(StorageError::Unsupported {
            uri: uri::mask_secrets(uri),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_file_uris_are_accepted() {
        assert!(open_destination("file:///tmp/x").is_ok());
        assert!(matches!(
            open_destination("file://relative/x"),
            Err(StorageError::Unsupported { .. })
        ));
        assert!(matches!(
            open_destination("s3://bucket/x"),
            Err(StorageError::Unsupported { .. })
        ));
    }
}
