//! A repository: a destination holding backstop's format, opened for reading or writing.
//!
//! Opening checks the format file; writing additionally requires that this installation owns
//! the destination. Everything else about a repository is found by listing and reading its
//! objects, so a destination is restorable without any catalog.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint::checkpoint_object_name;
use super::error::EngineError;
use super::format::{FormatFile, read_format, stamp_format};
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
            Some(format) => format,
            None => stamp_format(backend.as_ref(), installation_id)?,
        };
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
        let mut sets = Vec::new();
        for object in self.backend.list(SETS_PREFIX)? {
            if !object.name.ends_with(".set") {
                continue;
            }
            let decoded = self
                .backend
                .get(&object.name)
                .map_err(EngineError::from)
                .and_then(|bytes| decode_set(&object.name, &bytes));
            match decoded {
                Ok(set) => sets.push(set),
                Err(e) => {
                    tracing::warn!(object = %object.name, error = %e, "skipping unreadable set descriptor")
                }
            }
        }
        sets.sort_by_key(|s| (s.tenant_id, s.set_id));
        Ok(sets)
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
