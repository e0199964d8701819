//! Shared test helpers: fixture trees, a byte-for-byte and metadata-for-metadata tree
//! comparison, and short-hands for backing up and restoring.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::backup::{BackupRequest, BackupSummary, backup};
use super::error::EngineError;
use super::progress::Progress;
use super::repository::{Repository, TenantRef};
use super::restore::{RestoreMethod, RestoreSummary, restore};
use crate::source::{DirectoryWalk, EntryKind};

pub const TENANT: i64 = 1001;

/// Random bytes that zstd cannot shrink.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

/// Text that compresses well but does not repeat exactly.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let words = [
        "backup ",
        "restore ",
        "tenant ",
        "archive ",
        "checkpoint\n",
        "set ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(words[rng.random_range(0..words.len())].as_bytes());
    }
    out.truncate(len);
    out
}

/// Builds a tree with every fidelity case except huge sparse files.
pub fn fidelity_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/b/c/deep.txt"), text(1, 10_000)).unwrap();
    fs::create_dir(root.join("emptydir")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("noise.bin"), noise(2, 3 << 20)).unwrap();
    fs::write(root.join("text.log"), text(3, 5 << 20)).unwrap();
    fs::write(root.join("zeroes.bin"), vec![0u8; 2 << 20]).unwrap();
    fs::write(root.join("secret"), b"only me").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("script.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        b"non-utf8 name",
    )
    .unwrap();
    fs::create_dir(root.join(OsStr::from_bytes(b"dir-\xff\xfe"))).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"dir-\xff\xfe/inner")),
        b"inside a non-utf8 directory",
    )
    .unwrap();
    symlink("a/b/c/deep.txt", root.join("link")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    fs::create_dir(root.join("locked")).unwrap();
    fs::write(root.join("locked/file"), b"in a 0750 directory").unwrap();
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o750)).unwrap();
}

/// Makes a sparse file of `size` bytes with a few written blocks.
pub fn sparse_file(path: &Path, size: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    file.write_all_at(&noise(10, 1 << 20), 0).unwrap();
    file.write_all_at(&text(11, 300_000), size / 2).unwrap();
    file.write_all_at(b"the end", size - 7).unwrap();
}

/// Asserts that two trees are identical: same entries, kinds, modes, owners, mtimes, symlink
/// targets, sizes and bytes.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let left: Vec<_> = DirectoryWalk::new(expected).map(|e| e.unwrap()).collect();
    let right: Vec<_> = DirectoryWalk::new(actual).map(|e| e.unwrap()).collect();
    let names = |list: &[crate::source::WalkEntry]| -> Vec<String> {
        list.iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect()
    };
    assert_eq!(
        names(&left),
        names(&right),
        "the trees hold different entries"
    );
    for (a, b) in left.iter().zip(&right) {
        let at = String::from_utf8_lossy(&a.path);
        assert_eq!(a.meta.kind, b.meta.kind, "kind of {at:?}");
        assert_eq!(a.meta.mode, b.meta.mode, "mode of {at:?}");
        assert_eq!(
            (a.meta.uid, a.meta.gid),
            (b.meta.uid, b.meta.gid),
            "owner of {at:?}"
        );
        assert_eq!(a.meta.mtime_ns, b.meta.mtime_ns, "mtime of {at:?}");
        assert_eq!(
            a.symlink_target, b.symlink_target,
            "symlink target of {at:?}"
        );
        if a.meta.kind == EntryKind::File {
            assert_eq!(a.meta.size, b.meta.size, "size of {at:?}");
            assert_same_bytes(&a.full_path, &b.full_path);
        }
    }
}

fn assert_same_bytes(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        assert_eq!(
            na,
            nb,
            "lengths of {} and {} differ",
            a.display(),
            b.display()
        );
        assert!(
            ba[..na] == bb[..nb],
            "{} and {} differ in the MiB at {offset}",
            a.display(),
            b.display()
        );
        if na == 0 {
            return;
        }
        offset += na as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).unwrap();
        if n == 0 {
            break;
        }
        filled += n;
    }
    filled
}

/// A fresh repository owned by installation `test-installation`.
pub fn new_repo(root: &Path) -> Repository {
    Repository::create_or_open(root, "test-installation").unwrap()
}

/// The repository at `root` opened with `master` as its key (created encrypted when new).
pub fn encrypted_repo(root: &Path, master: &super::crypto::MasterKey) -> Repository {
    fs::create_dir_all(root).unwrap();
    Repository::create_or_open_backend(sealed_backend(root, master), "test-installation").unwrap()
}

/// The local backend at `root`, carrying the key `master`.
pub fn sealed_backend(
    root: &Path,
    master: &super::crypto::MasterKey,
) -> std::sync::Arc<dyn crate::storage::Backend> {
    use super::crypto::{Cipher, SealedBackend, Sealer};
    std::sync::Arc::new(SealedBackend::new(
        std::sync::Arc::new(crate::storage::LocalBackend::new(root.to_path_buf())),
        std::sync::Arc::new(Sealer::new(master, Cipher::for_this_cpu())),
    ))
}

/// A backup request with test defaults.
pub fn request(set_id: i64, source: &Path) -> BackupRequest {
    BackupRequest {
        tenant_name: "files".into(),
        tenant_id: TENANT,
        set_id,
        source: source.to_path_buf(),
        parent_set_id: None,
        compression_level: 1,
        concurrency: 2,
        checkpoint_interval: Duration::from_secs(30),
        skip_unreadable: false,
        resume: false,
        net_limit: 0,
        rules: crate::source::TreeRules::Everything,
        verify_pages_before: None,
    }
}

pub fn run_backup(repo: &Repository, req: &BackupRequest) -> Result<BackupSummary, EngineError> {
    backup(
        repo,
        req,
        &Progress::new(),
        &CancellationToken::new(),
        &mut |_| {},
    )
}

pub fn run_restore(
    repo: &Repository,
    set_id: i64,
    target: &Path,
    method: RestoreMethod,
) -> Result<RestoreSummary, EngineError> {
    restore(
        repo,
        &TenantRef::Id(TENANT),
        set_id,
        target,
        method,
        2,
        &Progress::new(),
        &CancellationToken::new(),
    )
}

/// Restores a set into a new folder under `scratch` and compares it with `source`.
pub fn assert_restores_to(
    repo: &Repository,
    set_id: i64,
    source: &Path,
    scratch: &Path,
) -> PathBuf {
    let target = scratch.join(format!(
        "restore-{set_id}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    run_restore(repo, set_id, &target, RestoreMethod::Full).unwrap();
    assert_same_tree(source, &target);
    target
}

/// Validates a set reading every byte, and requires it intact.
pub fn physical_ok(repo: &Repository, set_id: i64) {
    let report = crate::engine::validate::validate(
        repo,
        &TenantRef::Id(TENANT),
        set_id,
        crate::engine::validate::ValidateLevel::Physical,
        &Progress::new(),
        &CancellationToken::new(),
    )
    .unwrap();
    assert!(report.is_intact(), "{report:?}");
}

/// Sets a file's or directory's modification time.
pub fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    File::open(path).unwrap().set_modified(mtime).unwrap();
}

/// Every object under a folder of the repository, by name.
pub fn objects(repo_root: &Path, folder: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![repo_root.join(folder)];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// A local destination with faults a test injects: it runs out of space after `budget` bytes,
/// leaving a partial temporary file behind as a real full disk would; and it runs an action
/// once, at the first listing of a prefix and before answering it, the seam for racing another
/// writer against a reader in the middle of its work.
pub struct FaultyBackend {
    pub inner: crate::storage::LocalBackend,
    pub budget: std::sync::atomic::AtomicU64,
    #[allow(clippy::type_complexity)]
    on_list: std::sync::Mutex<Option<(String, Box<dyn FnOnce() + Send>)>>,
}

impl FaultyBackend {
    /// The local destination at `root`, with no fault yet.
    pub fn new(root: &Path) -> FaultyBackend {
        FaultyBackend {
            inner: crate::storage::LocalBackend::new(root.to_path_buf()),
            budget: std::sync::atomic::AtomicU64::new(u64::MAX),
            on_list: std::sync::Mutex::new(None),
        }
    }

    /// Full once `budget` more bytes are written.
    pub fn filling_after(self, budget: u64) -> FaultyBackend {
        self.budget
            .store(budget, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// Runs `action` when `prefix` is first listed, before the listing is read.
    pub fn on_first_list(self, prefix: &str, action: impl FnOnce() + Send + 'static) -> Self {
        *self.on_list.lock().unwrap() = Some((prefix.to_string(), Box::new(action)));
        self
    }
}

impl std::fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FaultyBackend({})",
            crate::storage::Backend::describe(&self.inner)
        )
    }
}

impl crate::storage::Backend for FaultyBackend {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<(), crate::storage::StorageError> {
        use std::sync::atomic::Ordering;
        let left = self.budget.load(Ordering::SeqCst);
        if (data.len() as u64) > left {
            let partial = self
                .inner
                .root()
                .join(format!(".tmp-partial-{}", uuid::Uuid::new_v4()));
            fs::write(partial, &data[..left as usize]).unwrap();
            self.budget.store(0, Ordering::SeqCst);
            return Err(crate::storage::StorageError::DestinationFull {
                destination: self.describe(),
                object: name.to_string(),
            });
        }
        self.budget.fetch_sub(data.len() as u64, Ordering::SeqCst);
        self.inner.put(name, data)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, crate::storage::StorageError> {
        self.inner.get(name)
    }

    fn get_range(
        &self,
        name: &str,
        offset: u64,
        length: usize,
    ) -> Result<Vec<u8>, crate::storage::StorageError> {
        self.inner.get_range(name, offset, length)
    }

    fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<crate::storage::ObjectInfo>, crate::storage::StorageError> {
        let action = {
            let mut hook = self.on_list.lock().unwrap();
            match hook.as_ref() {
                Some((on, _)) if on == prefix => hook.take().map(|(_, action)| action),
                _ => None,
            }
        };
        if let Some(action) = action {
            action();
        }
        self.inner.list(prefix)
    }

    fn delete(&self, name: &str) -> Result<(), crate::storage::StorageError> {
        self.inner.delete(name)
    }

    fn size(&self, name: &str) -> Result<Option<u64>, crate::storage::StorageError> {
        self.inner.size(name)
    }

    fn root_exists(&self) -> Result<bool, crate::storage::StorageError> {
        self.inner.root_exists()
    }
}
