//! Directory trees: a sorted depth-first walk and change-aware reads of regular files.
//!
//! The walk yields a directory, then its children sorted by their raw name bytes, recursively
//! (pre-order). Relative paths join names with `/`, and [`compare_paths`] orders them exactly as
//! the walk yields them, so a manifest written in walk order can be merge-joined with a new walk.
//! Memory is bounded by the largest directory times the depth, never by the tree size.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

/// Which entries of a tree a backup copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeRules {
    /// Every entry; symlinks are never followed.
    #[default]
    Everything,
    /// A PostgreSQL data directory: PostgreSQL's own exclusions, tablespace links followed
    /// (see [`crate::source::postgres::layout`]).
    PostgresData,
}

impl TreeRules {
    /// Removes from `names`, the children of folder `dir`, what the backup leaves out.
    pub fn prune(self, dir: &[u8], names: &mut Vec<Vec<u8>>) {
        if self == TreeRules::PostgresData {
            super::postgres::layout::prune(dir, names);
        }
    }

    /// Whether the symlink at `path` is followed as the folder it points to.
    pub fn follows_symlink(self, path: &[u8]) -> bool {
        self == TreeRules::PostgresData && super::postgres::layout::follows_symlink(path)
    }
}

/// The kind of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// Devices, FIFOs and sockets: seen by the walk, not backed up.
    Special,
}

/// Metadata captured for an entry (from `lstat`, or `fstat` on an open file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size in bytes (for symlinks, the length of the target).
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time in nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
}

impl Metadata {
    /// Captures the fields backstop records from a std metadata value.
    pub fn from_fs(meta: &fs::Metadata) -> Metadata {
        let file_type = meta.file_type();
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Special
        };
        Metadata {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// One entry of a walk.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Path relative to the walk's root, names joined by `/`, raw bytes; empty for the root.
    pub path: Vec<u8>,
    /// Absolute path on this machine.
    pub full_path: PathBuf,
    pub meta: Metadata,
    /// The target of a symlink, as raw bytes.
    pub symlink_target: Option<Vec<u8>>,
}

/// Why the walk could not deliver an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkErrorKind {
    /// The root of the walk does not exist or is not a directory.
    RootMissing,
    /// The entry disappeared between listing its folder and looking at it.
    Vanished,
    /// The entry exists but cannot be read (permissions, I/O error).
    Unreadable,
}

/// A problem with one entry of a walk; the walk goes on after it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WalkError {
    pub kind: WalkErrorKind,
    /// Absolute path of the entry.
    pub path: PathBuf,
    /// Relative path of the entry (raw bytes, `/`-joined).
    pub relative: Vec<u8>,
    #[source]
    pub source: io::Error,
}

/// Orders relative paths the way the walk yields them: component by component, by raw bytes.
/// Names never contain `/` or NUL, so comparing with `/` ranked below every other byte is the
/// same as comparing component-wise.
pub fn compare_paths(a: &[u8], b: &[u8]) -> Ordering {
    let rank = |byte: u8| if byte == b'/' { 0u16 } else { byte as u16 + 1 };
    a.iter().map(|&x| rank(x)).cmp(b.iter().map(|&x| rank(x)))
}

struct Folder {
    path: Vec<u8>,
    full_path: PathBuf,
    /// Remaining child names, sorted descending so `pop` yields them in ascending order.
    names: Vec<Vec<u8>>,
}

/// A deterministic, sorted, depth-first walk of a directory tree that never follows symlinks.
pub struct DirectoryWalk {
    root: PathBuf,
    rules: TreeRules,
    started: bool,
    folders: Vec<Folder>,
}

impl DirectoryWalk {
    /// A walk of the tree under `root` (the root itself is the first entry).
    pub fn new(root: &Path) -> DirectoryWalk {
        DirectoryWalk::with_rules(root, TreeRules::Everything)
    }

    /// A walk that leaves out what `rules` say a backup of this kind of tree does not copy.
    pub fn with_rules(root: &Path, rules: TreeRules) -> DirectoryWalk {
        DirectoryWalk {
            root: root.to_path_buf(),
            rules,
            started: false,
            folders: Vec::new(),
        }
    }

    fn read_folder(&self, path: Vec<u8>, full_path: PathBuf) -> io::Result<Folder> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&full_path)? {
            names.push(entry?.file_name().as_bytes().to_vec());
        }
        self.rules.prune(&path, &mut names);
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Folder {
            path,
            full_path,
            names,
        })
    }

    fn visit(&mut self, path: Vec<u8>, full_path: PathBuf) -> Result<WalkEntry, WalkError> {
        let fail = |kind, source| WalkError {
            kind,
            path: full_path.clone(),
            relative: path.clone(),
            source,
        };
        // The root may be a symlink to the tree (a common way to point at a data directory);
        // below it, symlinks are entries of their own and never followed, but for those the
        // rules name (a PostgreSQL tablespace).
        let looked_up = if path.is_empty() || self.rules.follows_symlink(&path) {
            fs::metadata(&full_path)
        } else {
            fs::symlink_metadata(&full_path)
        };
        let meta = match looked_up {
            Ok(meta) => Metadata::from_fs(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let kind = if path.is_empty() {
                    WalkErrorKind::RootMissing
                } else {
                    WalkErrorKind::Vanished
                };
                return Err(fail(kind, e));
            }
            Err(e) => return Err(fail(WalkErrorKind::Unreadable, e)),
        };
        let mut symlink_target = None;
        match meta.kind {
            EntryKind::Directory => {
                let folder = self
                    .read_folder(path.clone(), full_path.clone())
                    .map_err(|e| fail(WalkErrorKind::Unreadable, e))?;
                self.folders.push(folder);
            }
            EntryKind::Symlink => {
                let target =
                    fs::read_link(&full_path).map_err(|e| fail(WalkErrorKind::Unreadable, e))?;
                symlink_target = Some(target.as_os_str().as_bytes().to_vec());
            }
            EntryKind::File | EntryKind::Special => {}
        }
        if path.is_empty() && meta.kind != EntryKind::Directory {
            return Err(fail(
                WalkErrorKind::RootMissing,
                io::Error::new(io::ErrorKind::NotADirectory, "source is not a directory"),
            ));
        }
        Ok(WalkEntry {
            path,
            full_path,
            meta,
            symlink_target,
        })
    }
}

impl Iterator for DirectoryWalk {
    type Item = Result<WalkEntry, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            let root = self.root.clone();
            return Some(self.visit(Vec::new(), root));
        }
        loop {
            let folder = self.folders.last_mut()?;
            let Some(name) = folder.names.pop() else {
                self.folders.pop();
                continue;
            };
            let mut path = folder.path.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            let full_path = folder.full_path.join(OsStr::from_bytes(&name));
            return Some(self.visit(path, full_path));
        }
    }
}

/// Counts the bytes of regular files and the entries under `root`, for progress totals.
/// Entries that cannot be read are left out; the backup itself reports them.
pub fn scan_totals(root: &Path, rules: TreeRules, cancel: &CancellationToken) -> (u64, u64) {
    let mut bytes = 0;
    let mut entries = 0;
    for entry in DirectoryWalk::with_rules(root, rules).flatten() {
        if cancel.is_cancelled() {
            break;
        }
        if entry.meta.kind == EntryKind::File {
            bytes += entry.meta.size;
        }
        entries += 1;
    }
    (bytes, entries)
}

/// How a file changed while it was being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChange {
    pub before: Metadata,
    pub after: Metadata,
}

/// A regular file opened for backup: positional reads, its data regions (holes skipped), and a
/// check whether it changed since it was opened.
pub struct SourceFile {
    file: File,
    opened: Metadata,
}

impl SourceFile {
    /// Opens a regular file for reading without following symlinks and, where permitted,
    /// without updating its access time.
    pub fn open(path: &Path) -> io::Result<SourceFile> {
        let open = |flags| {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_NOFOLLOW)
                .open(path)
        };
        let file = match open(libc::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0)?,
            other => other?,
        };
        let opened = Metadata::from_fs(&file.metadata()?);
        if opened.kind != EntryKind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file any more",
            ));
        }
        // SAFETY: posix_fadvise only takes a valid descriptor and plain integers.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
        Ok(SourceFile { file, opened })
    }

    /// Metadata as of opening the file.
    pub fn metadata(&self) -> &Metadata {
        &self.opened
    }

    /// The next region holding data at or after `from`, as `(start, end)`, or `None` when only
    /// a hole (or nothing) is left. Filesystems without SEEK_DATA report the whole file as data.
    pub fn next_data_region(&self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        if from >= size {
            return Ok(None);
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: lseek on a valid descriptor with plain integer arguments.
        let start = unsafe { libc::lseek(fd, from as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENXIO) => Ok(None),
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(Some((from, size))),
                _ => Err(err),
            };
        }
        let start = start as u64;
        if start >= size {
            return Ok(None);
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start as libc::off_t, libc::SEEK_HOLE) };
        if end < 0 {
            return Ok(Some((start, size)));
        }
        Ok(Some((start, (end as u64).min(size))))
    }

    /// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// Looks at the file again: `Some` when its size, mtime or ctime differ from when it was
    /// opened, meaning what was read may mix old and new contents.
    pub fn change_since_open(&self) -> io::Result<Option<FileChange>> {
        let now = Metadata::from_fs(&self.file.metadata()?);
        let before = self.opened;
        if now.size != before.size
            || now.mtime_ns != before.mtime_ns
            || now.ctime_ns != before.ctime_ns
        {
            return Ok(Some(FileChange { before, after: now }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_is_sorted_depth_first_with_raw_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("a")).unwrap();
        fs::write(root.join("a/x"), b"1").unwrap();
        fs::write(root.join("a-b"), b"2").unwrap();
        fs::write(root.join(OsStr::from_bytes(b"n\xffme")), b"3").unwrap();
        symlink("missing", root.join("link")).unwrap();
        let paths: Vec<Vec<u8>> = DirectoryWalk::new(root).map(|e| e.unwrap().path).collect();
        let expected: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a/x".to_vec(),
            b"a-b".to_vec(),
            b"link".to_vec(),
            b"n\xffme".to_vec(),
        ];
        assert_eq!(paths, expected);
        let mut sorted = expected.clone();
        sorted.sort_by(|a, b| compare_paths(a, b));
        assert_eq!(sorted, expected);
    }

    #[test]
    fn missing_root_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut walk = DirectoryWalk::new(&dir.path().join("nope"));
        let err = walk.next().unwrap().unwrap_err();
        assert_eq!(err.kind, WalkErrorKind::RootMissing);
        assert!(walk.next().is_none());
    }

    #[test]
    fn data_regions_skip_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let file = File::create(&path).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_at(b"data", 32 << 20).unwrap();
        drop(file);
        let source = SourceFile::open(&path).unwrap();
        let size = source.metadata().size;
        let (start, end) = source.next_data_region(0, size).unwrap().unwrap();
        assert!(start <= 32 << 20 && end > 32 << 20);
        if start > 0 {
            assert!(source.next_data_region(end, size).unwrap().is_none());
        }
    }
}
