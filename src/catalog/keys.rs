//! The keys of encrypted destinations, as this server keeps them.
//!
//! A destination's master key is stored in the catalog (`destination_key`, never queryable)
//! once it was created here by `SET ENCRYPTION` or unlocked by a passphrase, so scheduled and
//! resumed work needs no passphrase after a restart. Whoever reads the catalog file reads these
//! keys: see docs/encryption.md for what that means and how to protect it. Every destination the
//! executor opens goes through [`Catalog::destination_backend`], which hands out the backend
//! carrying the key when there is one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{Catalog, CatalogError, now_micros};
use crate::engine::crypto::{Cipher, MasterKey, SealedBackend, Sealer};
use crate::storage::{Backend, LocalBackend, StorageError};

/// Sealers of the destinations whose keys were read, by root.
#[derive(Debug, Default)]
pub struct KeyCache {
    sealers: RwLock<HashMap<PathBuf, Option<Arc<Sealer>>>>,
}

fn cipher_name(cipher: Cipher) -> &'static str {
    cipher.name()
}

fn cipher_of(name: &str) -> Option<Cipher> {
    [Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305]
        .into_iter()
        .find(|c| c.name() == name)
}

impl Catalog {
    /// The sealer of the destination at `root`, if this server holds its key.
    pub fn destination_sealer(&self, root: &Path) -> Result<Option<Arc<Sealer>>, CatalogError> {
        if let Some(known) = self
            .keys
            .sealers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(root)
        {
            return Ok(known.clone());
        }
        let rows = self.read(
            "SELECT cipher, master_key FROM destination_key WHERE root = ?",
            &[root.display().to_string().into()],
        )?;
        let sealer = match rows.into_iter().next() {
            None => None,
            Some(row) => {
                let cipher = row[0].as_str().and_then(cipher_of);
                let master = row[1].as_str().and_then(MasterKey::from_hex);
                match (cipher, master) {
                    (Some(cipher), Some(master)) => Some(Arc::new(Sealer::new(&master, cipher))),
                    _ => {
                        return Err(CatalogError::Corrupt(format!(
                            "the key this server keeps for destination {} is unreadable; \
                             unlock it again with SET DECRYPTION IDENTIFIED BY its passphrase",
                            root.display()
                        )));
                    }
                }
            }
        };
        self.keys
            .sealers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(root.to_path_buf(), sealer.clone());
        Ok(sealer)
    }

    /// The master key this server keeps for the destination at `root`, with its cipher.
    pub fn destination_master(
        &self,
        root: &Path,
    ) -> Result<Option<(MasterKey, Cipher)>, CatalogError> {
        let rows = self.read(
            "SELECT cipher, master_key FROM destination_key WHERE root = ?",
            &[root.display().to_string().into()],
        )?;
        Ok(rows.into_iter().next().and_then(|row| {
            Some((
                row[1].as_str().and_then(MasterKey::from_hex)?,
                row[0].as_str().and_then(cipher_of)?,
            ))
        }))
    }

    /// The destinations this server keeps key `key_id` for (a source and its copies).
    pub fn destinations_of_key(&self, key_id: &str) -> Result<Vec<PathBuf>, CatalogError> {
        let rows = self.read(
            "SELECT root FROM destination_key WHERE key_id = ? ORDER BY root",
            &[key_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|row| row[0].as_str().map(PathBuf::from))
            .collect())
    }

    /// Keeps the master key of the destination at `root`.
    pub fn remember_destination_key(
        &self,
        root: &Path,
        master: &MasterKey,
        cipher: Cipher,
    ) -> Result<(), CatalogError> {
        let hex = master.to_hex();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO destination_key (root, key_id, cipher, master_key, create_time) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (root) DO UPDATE SET \
                 key_id = excluded.key_id, cipher = excluded.cipher, \
                 master_key = excluded.master_key",
                &[
                    root.display().to_string().into(),
                    master.key_id().into(),
                    cipher_name(cipher).into(),
                    hex.as_str().into(),
                    now_micros().into(),
                ],
            )?;
            Ok(())
        })?;
        self.keys
            .sealers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                root.to_path_buf(),
                Some(Arc::new(Sealer::new(master, cipher))),
            );
        Ok(())
    }

    /// The backend of the destination at `root`, carrying its key when this server holds one
    /// and the destination is (or is about to be) encrypted under it: its format file names the
    /// key, or it has no encrypted format yet and holds a key slot of it. A destination wiped and
    /// set up again is never encrypted under a key none of its slots can give back.
    pub fn destination_at(&self, root: &Path) -> Result<Arc<dyn Backend>, StorageError> {
        let plain: Arc<dyn Backend> = Arc::new(LocalBackend::new(root.to_path_buf()));
        match self.destination_sealer(root) {
            Ok(Some(sealer)) if key_belongs(plain.as_ref(), sealer.key_id()) => {
                Ok(Arc::new(SealedBackend::new(plain, sealer)))
            }
            Ok(Some(_)) => Ok(plain),
            Ok(None) => Ok(plain),
            Err(e) => Err(StorageError::Unsupported {
                uri: format!("file://{}", root.display()),
                reason: e.to_string(),
            }),
        }
    }

    /// [`Catalog::destination_at`] of the destination a URI names.
    pub fn destination_backend(&self, uri: &str) -> Result<Arc<dyn Backend>, StorageError> {
        match crate::storage::uri::Destination::parse(uri) {
            Ok(crate::storage::uri::Destination::File(root)) => self.destination_at(&root),
            // Refused by the same parse, with its reason.
            Err(_) => crate::storage::open_destination(uri),
        }
    }
}

/// Whether the destination is encrypted under `key_id`, or will be: its format file names the
/// key, or (no encrypted format yet) one of its key slots wraps it. Unreadable means no.
fn key_belongs(destination: &dyn Backend, key_id: &str) -> bool {
    match crate::engine::format::read_format(destination) {
        Ok(Some(format)) if format.encryption.is_some() => {
            format.encryption.is_some_and(|e| e.key_id == key_id)
        }
        Ok(_) => crate::engine::crypto::list_slots(destination)
            .is_ok_and(|slots| slots.iter().any(|(_, s)| s.key_id == key_id)),
        Err(_) => true,
    }
}
