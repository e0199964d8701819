//! A repository: a destination holding backstop's format, opened for reading or writing.
//!
//! Opening checks the format file; writing additionally requires that this installation owns
//! the destination. Everything else about a repository is found by listing and reading its
//! objects, so a destination is restorable without any catalog.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint::checkpoint_object_name;
use super::crypto::Sealer;
use super::error::EngineError;
use super::format::{
    ENCRYPTED_FORMAT_VERSION, FormatEncryption, FormatFile, read_format, stamp_format, write_format,
};
use super::pack::PACKS_PREFIX;
use super::set::{SETS_PREFIX, SetDescriptor, decode_set, read_set};
use crate::storage::{Backend, LocalBackend};

/// Which tenant a request is about: by id, or by name (for destinations of other installations,
/// whose tenant ids this server does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    Id(i64),
    Name(String),
}

impl std::fmt::Display for TenantRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantRef::Id(id) => write!(f, "{id}"),
            TenantRef::Name(name) => f.write_str(name),
        }
    }
}

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    backend: Arc<dyn Backend>,
    format: FormatFile,
    writable: bool,
}

impl Repository {
    /// Opens the repository at `root` for writing, creating it (and stamping its format file
    /// with `installation_id`) on first use. A destination owned by another installation is
    /// refused.
    pub fn create_or_open(root: &Path, installation_id: &str) -> Result<Repository, EngineError> {
        std::fs::create_dir_all(root).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSPC) => EngineError::DestinationFull {
                destination: format!("file://{}", root.display()),
                object: "backstop.format".into(),
            },
            _ => EngineError::io("create destination folder", root, e),
        })?;
        Repository::create_or_open_backend(
            Arc::new(LocalBackend::new(root.to_path_buf())),
            installation_id,
        )
    }

    /// Like [`Repository::create_or_open`] on any backend.
    pub fn create_or_open_backend(
        backend: Arc<dyn Backend>,
        installation_id: &str,
    ) -> Result<Repository, EngineError> {
        let format = match read_format(backend.as_ref())? {
            Some(format) => encrypt_if_empty(backend.as_ref(), format)?,
            None => stamp_format(backend.as_ref(), installation_id)?,
        };
        check_key(backend.as_ref(), &format)?;
        if format.installation_id != installation_id {
            return Err(EngineError::ForeignDestination {
                destination: backend.describe(),
                owner: format.installation_id,
                ours: installation_id.to_string(),
            });
        }
        Ok(Repository {
            backend,
            format,
            writable: true,
        })
    }

    /// Opens an existing repository for writing: the destination must still hold the format
    /// file naming `installation_id`. A destination that vanished (an unmounted disk, a moved
    /// folder) is reported, never silently created anew in its place.
    pub fn open_for_write(root: &Path, installation_id: &str) -> Result<Repository, EngineError> {
        Repository::open_for_write_backend(
            Arc::new(LocalBackend::new(root.to_path_buf())),
            installation_id,
        )
    }

    /// Like [`Repository::open_for_write`] on any backend.
    pub fn open_for_write_backend(
        backend: Arc<dyn Backend>,
        installation_id: &str,
    ) -> Result<Repository, EngineError> {
        let mut repo = Repository::open_backend(backend)?;
        if repo.format.installation_id != installation_id {
            return Err(EngineError::ForeignDestination {
                destination: repo.backend.describe(),
                owner: repo.format.installation_id.clone(),
                ours: installation_id.to_string(),
            });
        }
        repo.writable = true;
        Ok(repo)
    }

    /// Opens a repository to repair its index, whatever installation owns it.
    pub fn open_for_repair(backend: Arc<dyn Backend>) -> Result<Repository, EngineError> {
        let mut repo = Repository::open_backend(backend)?;
        repo.writable = true;
        Ok(repo)
    }

    /// Opens the repository at `root` for reading (restore, validate, listing), whatever
    /// installation owns it.
    pub fn open(root: &Path) -> Result<Repository, EngineError> {
        Repository::open_backend(Arc::new(LocalBackend::new(root.to_path_buf())))
    }

    /// Like [`Repository::open`] on any backend.
    pub fn open_backend(backend: Arc<dyn Backend>) -> Result<Repository, EngineError> {
        if !backend.root_exists()? {
            return Err(EngineError::DestinationMissing {
                destination: backend.describe(),
            });
        }
        let format = read_format(backend.as_ref())?.ok_or_else(|| EngineError::NotARepository {
            destination: backend.describe(),
        })?;
        check_key(backend.as_ref(), &format)?;
        Ok(Repository {
            backend,
            format,
            writable: false,
        })
    }

    /// The installation that owns the destination.
    pub fn installation_id(&self) -> &str {
        &self.format.installation_id
    }

    /// The key sealing this repository's objects; `None` for a plain repository.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.backend.sealer()
    }

    /// The format file's description of its encryption.
    pub fn encryption(&self) -> Option<&FormatEncryption> {
        self.format.encryption.as_ref()
    }

    /// Whether backups may be written (opened with [`Repository::create_or_open`]).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub(crate) fn backend_arc(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// Every backup set in the destination, ordered by tenant and set id. Damaged descriptors
    /// are left out with a warning; `validate` names them.
    pub fn list_sets(&self) -> Result<Vec<SetDescriptor>, EngineError> {
        Ok(self.list_sets_and_damage()?.0)
    }

    /// Every readable set descriptor, and the error of each unreadable one.
    pub fn list_sets_and_damage(
        &self,
    ) -> Result<(Vec<SetDescriptor>, Vec<EngineError>), EngineError> {
        let mut sets = Vec::new();
        let mut damaged = Vec::new();
        for object in self.backend.list(SETS_PREFIX)? {
            if !object.name.ends_with(".set") {
                continue;
            }
            let decoded = self
                .backend
                .get(&object.name)
                .map_err(EngineError::from)
                .and_then(|bytes| decode_set(self.sealer(), &object.name, &bytes));
            match decoded {
                Ok(set) => sets.push(set),
                Err(e) => {
                    tracing::warn!(object = %object.name, error = %e, "skipping unreadable set descriptor");
                    damaged.push(e);
                }
            }
        }
        sets.sort_by_key(|s| (s.tenant_id, s.set_id));
        Ok((sets, damaged))
    }

    /// The descriptor of one set.
    pub fn find_set(&self, tenant: &TenantRef, set_id: i64) -> Result<SetDescriptor, EngineError> {
        let found = match tenant {
            TenantRef::Id(tenant_id) => read_set(self.backend(), *tenant_id, set_id)?,
            TenantRef::Name(name) => self
                .list_sets()?
                .into_iter()
                .find(|s| &s.tenant_name == name && s.set_id == set_id),
        };
        found.ok_or_else(|| EngineError::SetNotFound {
            destination: self.backend.describe(),
            tenant: tenant.to_string(),
            set_id,
        })
    }

    /// Drops the checkpoint of an interrupted backup (its packs become garbage for cleanup).
    pub fn delete_checkpoint(&self, tenant_id: i64, set_id: i64) -> Result<(), EngineError> {
        Ok(self
            .backend
            .delete(&checkpoint_object_name(tenant_id, set_id))?)
    }
}

/// Refuses to read an encrypted repository without its key (or with another key), and a plain
/// one through a key: its objects would not open.
fn check_key(backend: &dyn Backend, format: &FormatFile) -> Result<(), EngineError> {
    match (&format.encryption, backend.sealer()) {
        (None, None) => Ok(()),
        (Some(wanted), Some(sealer)) if wanted.key_id == sealer.key_id() => Ok(()),
        (Some(wanted), _) => Err(EngineError::Locked {
            destination: backend.describe(),
            key_id: wanted.key_id.clone(),
        }),
        (None, Some(_)) => Err(EngineError::PlainDestination {
            destination: backend.describe(),
        }),
    }
}

/// Whether a destination holds anything of a backup yet (a set, a pack, a checkpoint, an
/// archived segment): only one that holds nothing may become encrypted.
pub fn holds_backups(backend: &dyn Backend) -> Result<bool, EngineError> {
    for prefix in [SETS_PREFIX, PACKS_PREFIX, "checkpoints/", "archive/"] {
        if !backend.list(prefix)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A plain repository written to with a key becomes encrypted if it holds nothing yet (no set,
/// no pack, no checkpoint): only its format file changes.
fn encrypt_if_empty(backend: &dyn Backend, format: FormatFile) -> Result<FormatFile, EngineError> {
    let Some(sealer) = backend.sealer() else {
        return Ok(format);
    };
    if format.encryption.is_some() {
        return Ok(format);
    }
    if holds_backups(backend)? {
        return Err(EngineError::PlainDestination {
            destination: backend.describe(),
        });
    }
    let encrypted = FormatFile {
        version: ENCRYPTED_FORMAT_VERSION,
        encryption: Some(FormatEncryption {
            cipher: sealer.cipher(),
            key_id: sealer.key_id().to_string(),
        }),
        ..format
    };
    write_format(backend, &encrypted)?;
    Ok(encrypted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::restore::RestoreMethod;
    use crate::engine::testkit::*;
    use std::fs;

    #[test]
    fn leftovers_of_interrupted_writes_do_not_hurt_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &source)).unwrap();
        // What a crash at each step of a later backup leaves: half-written temporary files
        // everywhere, a pack without index, a segment without set, a checkpoint.
        for folder in [
            "",
            "packs/00",
            "index",
            "manifests",
            "sets/1001",
            "checkpoints/1001",
        ] {
            fs::create_dir_all(root.join(folder)).unwrap();
            fs::write(root.join(folder).join(".tmp-0123abcd"), b"half writ").unwrap();
        }
        fs::write(root.join("packs/00/00aa.pack"), noise(1, 1000)).unwrap();
        fs::write(root.join("manifests/00bb.seg"), b"orphan").unwrap();
        fs::write(root.join("checkpoints/1001/2.ckpt"), b"{\"partial\": ").unwrap();

        let reopened = Repository::create_or_open(&root, "test-installation").unwrap();
        let sets: Vec<i64> = reopened
            .list_sets()
            .unwrap()
            .iter()
            .map(|s| s.set_id)
            .collect();
        assert_eq!(sets, vec![1]);
        assert_restores_to(&reopened, 1, &source, dir.path());
        physical_ok(&reopened, 1);
        let mut req = request(2, &source);
        req.resume = true;
        req.parent_set_id = Some(1);
        run_backup(&reopened, &req).unwrap();
        assert_restores_to(&reopened, 2, &source, dir.path());
        assert!(Repository::open(&root).unwrap().list_sets().unwrap().len() == 2);
    }

    #[test]
    fn a_full_destination_fails_cleanly_and_earlier_sets_stay_restorable() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let root = dir.path().join("repo");
        run_backup(&new_repo(&root), &request(1, &source)).unwrap();
        let root_mtime = fs::metadata(&source).unwrap().modified().unwrap();
        for i in 0..3 {
            fs::write(source.join(format!("big-{i}")), noise(300 + i, 12 << 20)).unwrap();
        }
        let filling = Arc::new(FaultyBackend::new(&root).filling_after(5 << 20));
        let repo = Repository::create_or_open_backend(filling, "test-installation").unwrap();
        let err = run_backup(&repo, &request(2, &source)).unwrap_err();
        assert!(matches!(err, EngineError::DestinationFull { .. }), "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("full"));

        let repo = new_repo(&root);
        let sets: Vec<i64> = repo.list_sets().unwrap().iter().map(|s| s.set_id).collect();
        assert_eq!(sets, vec![1]);
        physical_ok(&repo, 1);
        for i in 0..3 {
            fs::remove_file(source.join(format!("big-{i}"))).unwrap();
        }
        set_mtime(&source, root_mtime);
        assert_restores_to(&repo, 1, &source, dir.path());
        run_backup(&repo, &request(2, &source)).unwrap();
    }

    #[test]
    fn an_encrypted_repository_restores_and_leaks_no_plaintext_or_plain_hash() {
        use crate::engine::crypto::MasterKey;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let marker = b"backstop-plaintext-marker-4711 ".repeat(4000);
        fs::write(source.join("marker-named-file.txt"), &marker).unwrap();
        let root = dir.path().join("repo");
        let master = MasterKey::generate();
        let repo = encrypted_repo(&root, &master);
        assert!(repo.encryption().is_some());
        run_backup(&repo, &request(1, &source)).unwrap();
        let packs_after_first = objects(&root, "packs").len();
        let mut second = request(2, &source);
        second.parent_set_id = Some(1);
        run_backup(&repo, &second).unwrap();
        // Deduplication still works: the second set stored no new pack.
        assert_eq!(objects(&root, "packs").len(), packs_after_first);
        assert_restores_to(&repo, 1, &source, dir.path());
        assert_restores_to(&repo, 2, &source, dir.path());
        physical_ok(&repo, 2);

        // No stored object holds a file's bytes, its name, or the plain BLAKE3 of a chunk.
        let plain_id = crate::engine::chunker::ContentId::of(&marker);
        let plain_hex = plain_id.to_hex();
        let needles: [&[u8]; 4] = [
            &marker[..31],
            b"marker-named-file",
            &plain_id.0,
            plain_hex.as_bytes(),
        ];
        for folder in ["packs", "index", "manifests", "sets"] {
            for object in objects(&root, folder) {
                let bytes = fs::read(&object).unwrap();
                for needle in needles {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle),
                        "{} holds plaintext",
                        object.display()
                    );
                }
            }
        }

        // Without its key, or with another, the destination is refused before anything is read.
        for opened in [
            Repository::open(&root),
            Repository::open_backend(sealed_backend(&root, &MasterKey::generate())),
        ] {
            assert!(
                matches!(opened, Err(EngineError::Locked { .. })),
                "{opened:?}"
            );
        }
        // A plain repository with sets is never written to with a key.
        let plain_root = dir.path().join("plain");
        run_backup(&new_repo(&plain_root), &request(1, &source)).unwrap();
        let refused = Repository::create_or_open_backend(
            sealed_backend(&plain_root, &master),
            "test-installation",
        );
        assert!(
            matches!(refused, Err(EngineError::PlainDestination { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_vanished_destination_is_reported_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &source)).unwrap();
        let moved = dir.path().join("unmounted");
        fs::rename(&root, &moved).unwrap();

        let err = run_backup(&repo, &request(2, &source)).unwrap_err();
        assert!(
            matches!(err, EngineError::DestinationMissing { .. }),
            "{err}"
        );
        let err = run_restore(&repo, 1, &dir.path().join("t"), RestoreMethod::Full).unwrap_err();
        assert!(
            matches!(err, EngineError::DestinationMissing { .. }),
            "{err}"
        );
        assert!(matches!(
            Repository::open(&root),
            Err(EngineError::DestinationMissing { .. })
        ));

        fs::rename(&moved, &root).unwrap();
        assert_restores_to(&repo, 1, &source, dir.path());
    }
}
