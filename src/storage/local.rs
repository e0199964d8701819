//! The local filesystem destination (`file:///abs/path`).
//!
//! A put writes a temporary file beside its final name, fsyncs it, renames it into place and
//! fsyncs the folder, so after a crash an object is either absent or whole. Folders created on
//! the way are fsynced into their parents for the same reason.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::aligned::AlignedBuf;
use super::{Backend, ObjectInfo, Staged, StorageError, TEMP_PREFIX, TempFile, page_cache};

/// A destination that is a directory on a local (or locally mounted) filesystem.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend rooted at `root`; nothing is touched until the first call.
    pub fn new(root: PathBuf) -> LocalBackend {
        LocalBackend { root }
    }

    /// The destination's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Turns an I/O error into the storage error a caller can act on: a full disk, a vanished
    /// root, a missing object, or a plain I/O failure.
    fn classify(&self, operation: &'static str, object: &str, err: io::Error) -> StorageError {
        let destination = self.describe();
        match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                return StorageError::DestinationFull {
                    destination,
                    object: object.to_string(),
                };
            }
            Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ESTALE) | Some(libc::ENODEV) => {
                if !self.root.is_dir() {
                    return StorageError::DestinationMissing { destination };
                }
                if err.raw_os_error() == Some(libc::ENOENT) {
                    return StorageError::NotFound {
                        destination,
                        object: object.to_string(),
                    };
                }
            }
            _ => {}
        }
        StorageError::Io {
            destination,
            operation,
            object: object.to_string(),
            source: err,
        }
    }

    /// Makes sure `dir` exists and that its creation is durable, without ever creating the
    /// destination root itself (a vanished root must fail, not be silently recreated).
    fn ensure_dir(&self, dir: &Path, object: &str) -> Result<(), StorageError> {
        if dir.is_dir() {
            return Ok(());
        }
        if dir == self.root || !dir.starts_with(&self.root) {
            return Err(StorageError::DestinationMissing {
                destination: self.describe(),
            });
        }
        let parent = dir.parent().unwrap_or(&self.root);
        self.ensure_dir(parent, object)?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(self.classify("create folder", object, e)),
        }
        sync_dir(parent).map_err(|e| self.classify("fsync folder", object, e))
    }

    /// Stages `data` for `name` in a temporary file beside the object's place, written by
    /// `write`.
    fn stage_with(
        &self,
        name: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<Staged, StorageError> {
        if let Some(injected) = super::faults::on_put(name) {
            return Err(self.classify("write", name, injected));
        }
        let path = self.path_of(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        self.ensure_dir(&dir, name)?;
        let temp = dir.join(temp_name());
        let written = (|| -> io::Result<File> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            // No sync_file_range here: it can block on a busy disk, which is what staging is
            // for to avoid; the committer starts the writeback (`start_writeback`).
            write(&mut file)?;
            Ok(file)
        })();
        match written {
            Ok(file) => Ok(Staged {
                name: name.to_string(),
                temp: Some(TempFile { path: temp, file }),
            }),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(self.classify("write", name, e))
            }
        }
    }
}

/// Objects at least this long bypass the page cache in [`Backend::stage_uncached`].
const DIRECT_MIN: usize = 1 << 20;

/// Writes `data`, which starts on a direct-I/O boundary, to the new, empty `file`: its whole
/// blocks go to the disk with `O_DIRECT`, not through the page cache, and only the tail is
/// buffered. A filesystem that refuses direct I/O gets a buffered write instead.
fn write_direct(file: &mut File, data: &[u8]) -> io::Result<()> {
    use super::aligned::DIRECT_ALIGN;
    let whole = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
    let mut written = 0;
    if set_direct(file, true).is_ok() {
        while written < whole {
            match file.write(&data[written..whole]) {
                Ok(0) => break,
                Ok(n) if n.is_multiple_of(DIRECT_ALIGN) => written += n,
                Ok(n) => {
                    written += n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        set_direct(file, false)?;
    }
    file.write_all(&data[written..])
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: plain fcntl calls on a descriptor `file` owns for their duration.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn temp_name() -> String {
    format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn remove_temporaries(&self, prefix: &str) -> Result<(u64, u64), StorageError> {
        let (mut count, mut bytes) = (0, 0);
        let mut pending = vec![self.path_of(prefix.trim_end_matches('/'))];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.classify("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.classify("list", prefix, e))?;
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.classify("list", prefix, e)),
                };
                let temporary = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX));
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if temporary {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => {
                            count += 1;
                            bytes += meta.len();
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(self.classify("delete", prefix, e)),
                    }
                }
            }
        }
        Ok((count, bytes))
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let staged = self.stage(name, data)?;
        self.commit(staged)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        fs::read(self.path_of(name)).map_err(|e| self.classify("read", name, e))
    }

    /// Writes a temporary file beside the object's place, into the page cache.
    fn stage(&self, name: &str, data: &[u8]) -> Result<Staged, StorageError> {
        self.stage_with(name, |file| file.write_all(data))
    }

    /// Large objects are written with `O_DIRECT` (`write_direct`). Copying into page-cache
    /// pages was the largest cost of a copy to a second destination here, and the pages of an
    /// object nobody reads soon are wasted cache.
    fn stage_uncached(
        &self,
        name: &str,
        buf: &AlignedBuf,
        len: usize,
    ) -> Result<Staged, StorageError> {
        let data = &buf[..len];
        if len < DIRECT_MIN {
            return self.stage(name, data);
        }
        self.stage_with(name, |file| write_direct(file, data))
    }

    /// fsync, rename into place, fsync the folder: the same ordering as [`Backend::put`].
    ///
    /// Once durable, the object's pages leave the page cache (`POSIX_FADV_DONTNEED`). A backup
    /// writes gigabytes nobody reads soon; kept cached, they would push out the pages of the
    /// database being backed up. And the next object's writes reuse the pages just freed instead
    /// of new ones: on a virtual machine whose free memory goes back to the host, a new page
    /// costs a fault in the host, and writing into new pages took four times as long here
    /// (docs/design/repository.md).
    fn commit(&self, staged: Staged) -> Result<(), StorageError> {
        let Some(temp) = staged.temp else {
            return Ok(());
        };
        let path = self.path_of(&staged.name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let committed = (|| -> io::Result<()> {
            temp.file.sync_all()?;
            page_cache::drop_cached(&temp.file, 0, 0);
            fs::rename(&temp.path, &path)?;
            sync_dir(&dir)
        })();
        if let Err(e) = committed {
            let _ = fs::remove_file(&temp.path);
            return Err(self.classify("write", &staged.name, e));
        }
        Ok(())
    }

    fn discard(&self, staged: Staged) {
        if let Some(temp) = staged.temp {
            let _ = fs::remove_file(temp.path);
        }
    }

    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queues the file's dirty pages for writing and
    /// returns. The committer calls it, never a writer: it can block while the disk's queue is
    /// full, and waiting on the disk is the committer's part.
    fn start_writeback(&self, staged: &Staged) {
        if let Some(temp) = &staged.temp {
            page_cache::start_writeback(&temp.file, 0, 0);
        }
    }

    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>, StorageError> {
        let mut buf = vec![0u8; length];
        let filled = self.read_range_into(name, offset, &mut buf)?;
        buf.truncate(filled);
        Ok(buf)
    }

    fn read_range_into(
        &self,
        name: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let file = File::open(self.path_of(name)).map_err(|e| self.classify("read", name, e))?;
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.classify("read", name, e)),
            }
        }
        Ok(filled)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        if !self.root.is_dir() {
            return Err(StorageError::DestinationMissing {
                destination: self.describe(),
            });
        }
        let mut found = Vec::new();
        let start = self.path_of(prefix.trim_end_matches('/'));
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.classify("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.classify("list", prefix, e))?;
                let file_name = entry.file_name();
                let Some(file_name) = file_name.to_str() else {
                    continue;
                };
                if file_name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.classify("list", prefix, e)),
                };
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if meta.is_file() {
                    let Ok(relative) = entry.path().strip_prefix(&self.root).map(Path::to_path_buf)
                    else {
                        continue;
                    };
                    if let Some(name) = relative.to_str() {
                        found.push(ObjectInfo {
                            name: name.to_string(),
                            size: meta.len(),
                        });
                    }
                }
            }
        }
        Ok(found)
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        match fs::remove_file(self.path_of(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.root.is_dir() => Ok(()),
            Err(e) => Err(self.classify("delete", name, e)),
        }
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.path_of(name)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) => match self.classify("stat", name, e) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn root_exists(&self) -> Result<bool, StorageError> {
        Ok(self.root.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_object_appears_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let staged = backend
            .stage("packs/cd/cdef.pack", b"staged bytes")
            .unwrap();
        assert_eq!(backend.size("packs/cd/cdef.pack").unwrap(), None);
        assert!(backend.list("packs/").unwrap().is_empty());
        backend.commit(staged).unwrap();
        assert_eq!(backend.get("packs/cd/cdef.pack").unwrap(), b"staged bytes");
        let dropped = backend.stage("packs/cd/other.pack", b"never").unwrap();
        backend.discard(dropped);
        let left: Vec<_> = fs::read_dir(dir.path().join("packs/cd"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("cdef.pack")]);
    }

    #[test]
    fn an_aligned_object_written_past_the_page_cache_reads_back_whole() {
        use crate::storage::aligned::{AlignedBuf, DIRECT_ALIGN};
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        // Whole blocks go direct, the odd tail buffered; and the same bytes staged the usual
        // way take the buffered path.
        let len = DIRECT_MIN + 3 * DIRECT_ALIGN + 123;
        let mut buf = AlignedBuf::new();
        buf.reserve(len + 1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        for (name, uncached) in [
            ("packs/ab/direct.pack", true),
            ("packs/ab/cached.pack", false),
        ] {
            let data = &buf[..len];
            let staged = if uncached {
                backend.stage_uncached(name, &buf, len)
            } else {
                backend.stage(name, data)
            };
            backend.commit(staged.unwrap()).unwrap();
            assert!(
                backend.get(name).unwrap() == data,
                "{name} reads back as written"
            );
        }
    }

    #[test]
    fn put_get_range_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        backend.put("packs/ab/abcd.pack", b"hello world").unwrap();
        assert_eq!(backend.get("packs/ab/abcd.pack").unwrap(), b"hello world");
        assert_eq!(
            backend.get_range("packs/ab/abcd.pack", 6, 100).unwrap(),
            b"world"
        );
        assert_eq!(backend.size("packs/ab/abcd.pack").unwrap(), Some(11));
        assert_eq!(backend.size("packs/ab/none").unwrap(), None);
        fs::write(dir.path().join("packs/ab/.tmp-leftover"), b"partial").unwrap();
        let listed = backend.list("packs/").unwrap();
        assert_eq!(
            listed,
            vec![ObjectInfo {
                name: "packs/ab/abcd.pack".into(),
                size: 11
            }]
        );
        backend.delete("packs/ab/abcd.pack").unwrap();
        backend.delete("packs/ab/abcd.pack").unwrap();
        assert!(matches!(
            backend.get("packs/ab/abcd.pack"),
            Err(StorageError::NotFound { .. })
        ));
    }

    #[test]
    fn vanished_root_is_reported_as_missing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        fs::create_dir(&root).unwrap();
        let backend = LocalBackend::new(root.clone());
        backend.put("sets/1/1.set", b"{}").unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert!(matches!(
            backend.put("sets/1/2.set", b"{}"),
            Err(StorageError::DestinationMissing { .. })
        ));
        assert!(matches!(
            backend.get("sets/1/1.set"),
            Err(StorageError::DestinationMissing { .. })
        ));
        assert!(matches!(
            backend.list("sets/"),
            Err(StorageError::DestinationMissing { .. })
        ));
    }
}
