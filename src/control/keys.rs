//! The session's backup passwords and the keys of encrypted destinations.
//!
//! `SET ENCRYPTION ON IDENTIFIED BY 'pwd' ONLY` makes the session's next backups encrypted: the
//! first one written to a destination creates its master key, wrapped by that password in a key
//! slot, and this server keeps the key so that later backups (scheduled ones, resumed ones) need
//! no password. `SET DECRYPTION IDENTIFIED BY 'pwd'[, ...]` is what a RESTORE or VALIDATE of an
//! encrypted destination needs: the server's own copy of the key is never enough to read one
//! back. Passwords live in the session only and never reach a log line, a view or an error.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::catalog::Catalog;
use crate::engine::crypto::{self, Cipher, MasterKey};
use crate::engine::format::read_format;
use crate::error::{SqlError, SqlResult, from_engine, sqlstate};
use crate::storage::{Backend, LocalBackend};

/// The passwords a session gave.
#[derive(Clone, Default)]
pub struct SessionKeys {
    /// `SET ENCRYPTION`: the password the session's backups are encrypted with.
    pub encryption: Option<Zeroizing<String>>,
    /// `SET DECRYPTION`: the passwords its restores and validations may try.
    pub decryption: Vec<Zeroizing<String>>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("encryption", &self.encryption.as_ref().map(|_| "***"))
            .field("decryption", &self.decryption.len())
            .finish()
    }
}

/// What `SET ENCRYPTION` / `SET DECRYPTION` change in the session.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyChange {
    Encryption(Zeroizing<String>),
    Decryption(Vec<Zeroizing<String>>),
}

impl fmt::Debug for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyChange::Encryption(_) => f.write_str("Encryption(***)"),
            KeyChange::Decryption(p) => write!(f, "Decryption({} passwords)", p.len()),
        }
    }
}

impl SessionKeys {
    pub fn apply(&mut self, change: KeyChange) {
        match change {
            KeyChange::Encryption(password) => self.encryption = Some(password),
            KeyChange::Decryption(passwords) => self.decryption = passwords,
        }
    }
}

/// Checks a `SET ENCRYPTION` / `SET DECRYPTION` before the session keeps it.
pub fn change(encryption: Option<&str>, decryption: &[String]) -> SqlResult<KeyChange> {
    match encryption {
        Some("") => Err(SqlError::invalid_value(
            "SET ENCRYPTION needs a non-empty password",
        )),
        Some(password) => Ok(KeyChange::Encryption(Zeroizing::new(password.to_string()))),
        None if decryption.is_empty() || decryption.iter().any(String::is_empty) => Err(
            SqlError::invalid_value("SET DECRYPTION needs one or more non-empty passwords"),
        ),
        None => Ok(KeyChange::Decryption(
            decryption
                .iter()
                .map(|p| Zeroizing::new(p.clone()))
                .collect(),
        )),
    }
}

fn engine_error(e: crate::engine::EngineError) -> SqlError {
    from_engine(&e)
}

/// Makes the destination at `uri` ready for the session's next backup: with `SET ENCRYPTION`, a
/// new (or still empty) destination gets its key and key slot, and an encrypted one must open
/// with the session's password; without it, an encrypted destination needs its key on this
/// server. Returns whether the destination is encrypted.
pub fn prepare_for_writing(catalog: &Catalog, keys: &SessionKeys, uri: &str) -> SqlResult<bool> {
    let root = crate::executor::destination_root(uri)?;
    let raw = LocalBackend::new(root.clone());
    let format = match read_format(&raw) {
        Ok(format) => format,
        // Without a password to apply, a destination that cannot be read now (gone, damaged)
        // is the job's to report, as for any backup: it fails with the reason in its COMMENT.
        Err(_) if keys.encryption.is_none() => return Ok(false),
        Err(e) => return Err(engine_error(e)),
    };
    let encryption = format.as_ref().and_then(|f| f.encryption.clone());
    let Some(password) = &keys.encryption else {
        return match encryption {
            None => Ok(false),
            Some(held) => match catalog.destination_sealer(&root)? {
                Some(sealer) if sealer.key_id() == held.key_id => Ok(true),
                _ => Err(SqlError::wrong_state(format!(
                    "destination {} is encrypted and this server holds no key for it",
                    crate::catalog::mask_secrets(uri)
                ))
                .with_hint("SET ENCRYPTION ON IDENTIFIED BY its password ONLY, then back up")),
            },
        };
    };
    match encryption {
        Some(held) => {
            let passwords = [password.to_string()];
            match crypto::unlock(&raw, &held.key_id, &passwords).map_err(engine_error)? {
                Some((master, _)) => {
                    catalog.remember_destination_key(&root, &master, held.cipher)?;
                    Ok(true)
                }
                None => Err(SqlError::new(
                    sqlstate::INVALID_PASSWORD,
                    format!(
                        "the password of SET ENCRYPTION does not open the key of destination {}, \
                         which is already encrypted",
                        crate::catalog::mask_secrets(uri)
                    ),
                )
                .with_hint(
                    "use one of its passwords, or add this one with ALTER SYSTEM ADD BACKUP \
                     PASSWORD",
                )),
            }
        }
        None => {
            if format.is_some()
                && crate::engine::repository::holds_backups(&raw).map_err(engine_error)?
            {
                return Err(SqlError::wrong_state(format!(
                    "destination {} holds unencrypted backups; encryption covers a whole \
                     destination",
                    crate::catalog::mask_secrets(uri)
                ))
                .with_hint("set an empty DATA_BACKUP_DEST for encrypted backup sets"));
            }
            // The key goes to the catalog before its slot, so a crash between the two leaves an
            // orphan key row and never a destination whose key nobody holds.
            let master = MasterKey::generate();
            let cipher = Cipher::for_this_cpu();
            std::fs::create_dir_all(&root).map_err(|e| {
                SqlError::new(
                    sqlstate::IO_ERROR,
                    format!(
                        "cannot create destination directory {}: {e}",
                        root.display()
                    ),
                )
            })?;
            catalog.remember_destination_key(&root, &master, cipher)?;
            crypto::add_slot(&raw, &master, password).map_err(engine_error)?;
            // The format file becomes version 2 when the backup opens the destination.
            crate::executor::destination::create_or_open(catalog, &root, catalog.installation_id())
                .map_err(engine_error)?;
            tracing::info!(
                destination = %crate::catalog::mask_secrets(uri),
                key_id = %master.key_id(),
                cipher = cipher.name(),
                "destination encrypted"
            );
            Ok(true)
        }
    }
}

/// Requires the session's `SET DECRYPTION` passwords to open the destination at `uri` when it
/// is encrypted, before `what` (a restore or validation naming its sets) reads it; the key is
/// then kept so that the job reads it, after a restart too.
pub fn unlock_for_reading(
    catalog: &Catalog,
    keys: &SessionKeys,
    uri: &str,
    what: &str,
) -> SqlResult<()> {
    let root = crate::executor::destination_root(uri)?;
    unlock_root(catalog, keys, &root, uri, what)
}

fn unlock_root(
    catalog: &Catalog,
    keys: &SessionKeys,
    root: &Path,
    uri: &str,
    what: &str,
) -> SqlResult<()> {
    let raw = LocalBackend::new(root.to_path_buf());
    let Some(held) = read_format(&raw)
        .map_err(engine_error)?
        .and_then(|f| f.encryption)
    else {
        return Ok(());
    };
    let shown = crate::catalog::mask_secrets(uri);
    if keys.decryption.is_empty() {
        return Err(SqlError::wrong_state(format!(
            "cannot read {what}: destination {shown} is encrypted (key {}) and this session gave \
             no password with SET DECRYPTION",
            held.key_id
        ))
        .with_hint("SET DECRYPTION IDENTIFIED BY 'password' first"));
    }
    let passwords: Vec<String> = keys.decryption.iter().map(|p| p.to_string()).collect();
    match crypto::unlock(&raw, &held.key_id, &passwords).map_err(engine_error)? {
        Some((master, _)) => {
            catalog.remember_destination_key(root, &master, held.cipher)?;
            Ok(())
        }
        None => Err(SqlError::new(
            sqlstate::INVALID_PASSWORD,
            format!(
                "cannot read {what}: no password given by SET DECRYPTION opens destination \
                 {shown} (key {})",
                held.key_id
            ),
        )
        .with_hint("SET DECRYPTION IDENTIFIED BY the password the set was encrypted with")),
    }
}

/// The encrypted destination at `uri`, its raw backend and key id; refused when it is plain.
fn encrypted_destination(
    uri: &str,
) -> SqlResult<(LocalBackend, crate::engine::format::FormatEncryption)> {
    let root = crate::executor::destination_root(uri)?;
    let raw = LocalBackend::new(root);
    match read_format(&raw).map_err(engine_error)?.and_then(|f| f.encryption) {
        Some(held) => Ok((raw, held)),
        None => Err(SqlError::wrong_state(format!(
            "destination {} is not encrypted; it has no passwords",
            crate::catalog::mask_secrets(uri)
        ))
        .with_hint("SET ENCRYPTION ON IDENTIFIED BY 'password' ONLY before the first backup to an empty destination")),
    }
}

/// `ALTER SYSTEM ADD BACKUP PASSWORD`: a key slot more, opened by `password`, added by someone
/// who knows `existing`. Only the slot is written.
pub fn add_password(catalog: &Catalog, uri: &str, existing: &str, password: &str) -> SqlResult<()> {
    if password.is_empty() {
        return Err(SqlError::invalid_value("a backup password cannot be empty"));
    }
    let (raw, held) = encrypted_destination(uri)?;
    let (master, _) = crypto::unlock(&raw, &held.key_id, &[existing.to_string()])
        .map_err(engine_error)?
        .ok_or_else(|| wrong_password(uri, &held.key_id))?;
    if crypto::unlock(&raw, &held.key_id, &[password.to_string()])
        .map_err(engine_error)?
        .is_some()
    {
        return Err(SqlError::duplicate(format!(
            "that password already opens destination {}",
            crate::catalog::mask_secrets(uri)
        )));
    }
    let slot = crypto::add_slot(&raw, &master, password).map_err(engine_error)?;
    let root = crate::executor::destination_root(uri)?;
    catalog.remember_destination_key(&root, &master, held.cipher)?;
    tracing::info!(destination = %crate::catalog::mask_secrets(uri), slot = %slot, "backup password added");
    for_each_sharing_key(
        catalog,
        &root,
        &held.key_id,
        "added",
        |copy| match crypto::unlock(copy, &held.key_id, &[password.to_string()]) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => crypto::share_slot(&raw, copy, &slot)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    )
}

/// Applies a password change made at the destination at `root` to every other destination
/// this server keeps the same key for (the copies of a source, or the source of a copy): a
/// copy is sealed under its source's key, so a password dropped at the source must open none
/// of its copies, and one added there opens them too. A destination that cannot be changed
/// now (unreachable, or holding that password's only slot) is named in the error, after the
/// change was made everywhere else.
fn for_each_sharing_key(
    catalog: &Catalog,
    root: &std::path::Path,
    key_id: &str,
    done: &str,
    change: impl Fn(&LocalBackend) -> Result<(), String>,
) -> SqlResult<()> {
    let mut missed = Vec::new();
    for other in catalog.destinations_of_key(key_id)? {
        if other == root {
            continue;
        }
        let copy = LocalBackend::new(other.clone());
        // One that no longer holds this key (wiped, set up again) is not changed; one that
        // cannot be read is named.
        let done_here = match read_format(&copy) {
            Ok(Some(format))
                if format
                    .encryption
                    .as_ref()
                    .is_some_and(|e| e.key_id == key_id) =>
            {
                change(&copy)
            }
            Ok(_) => continue,
            Err(e) => Err(e.to_string()),
        };
        match done_here {
            Ok(()) => {
                tracing::info!(destination = %copy.describe(), "backup password {done} here too: it holds the same key")
            }
            Err(e) => missed.push(format!("{} ({e})", copy.describe())),
        }
    }
    if missed.is_empty() {
        return Ok(());
    }
    Err(SqlError::new(
        sqlstate::IO_ERROR,
        format!(
            "the password was {done} at file://{} but not at the copies that share its key: {}",
            root.display(),
            missed.join("; ")
        ),
    )
    .with_hint("run the statement again with AT that destination once it is reachable"))
}

/// `ALTER SYSTEM DROP BACKUP PASSWORD`: removes the key slot `password` opens; the last one
/// stays, or nobody could restore.
pub fn drop_password(catalog: &Catalog, uri: &str, password: &str) -> SqlResult<()> {
    let (raw, held) = encrypted_destination(uri)?;
    match drop_slot(&raw, &held.key_id, password).map_err(engine_error)? {
        Dropped::Slot(slot) => {
            tracing::info!(destination = %crate::catalog::mask_secrets(uri), slot = %slot, "backup password removed");
        }
        Dropped::NotOpened => return Err(wrong_password(uri, &held.key_id)),
        Dropped::Last => {
            return Err(SqlError::wrong_state(format!(
                "that is the last password of destination {}; without it nobody could restore",
                crate::catalog::mask_secrets(uri)
            ))
            .with_hint("add another one first with ALTER SYSTEM ADD BACKUP PASSWORD"));
        }
    }
    let root = crate::executor::destination_root(uri)?;
    for_each_sharing_key(
        catalog,
        &root,
        &held.key_id,
        "removed",
        |copy| match drop_slot(copy, &held.key_id, password) {
            Ok(Dropped::Slot(_) | Dropped::NotOpened) => Ok(()),
            Ok(Dropped::Last) => Err(
                "that password opens its only key slot; add another password there first".into(),
            ),
            Err(e) => Err(e.to_string()),
        },
    )
}

enum Dropped {
    Slot(String),
    NotOpened,
    Last,
}

/// Removes the slot of key `key_id` that `password` opens, unless it is the last one.
fn drop_slot(
    destination: &dyn crate::storage::Backend,
    key_id: &str,
    password: &str,
) -> Result<Dropped, crate::engine::EngineError> {
    let slots = crypto::list_slots(destination)?;
    let Some((_, slot)) = crypto::unlock(destination, key_id, &[password.to_string()])? else {
        return Ok(Dropped::NotOpened);
    };
    let others = slots
        .iter()
        .filter(|(name, s)| *name != slot && s.key_id == key_id)
        .count();
    if others == 0 {
        return Ok(Dropped::Last);
    }
    destination.delete(&crypto::slot_object(&slot))?;
    Ok(Dropped::Slot(slot))
}

fn wrong_password(uri: &str, key_id: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_PASSWORD,
        format!(
            "the password given does not open destination {} (key {key_id})",
            crate::catalog::mask_secrets(uri)
        ),
    )
}
