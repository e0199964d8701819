//! Encrypted repositories: the data key, its passphrase slots, and the sealing of stored bytes.
//!
//! An encrypted destination has one random 256-bit master key. Two keys are derived from it
//! (BLAKE3 `derive_key`): the data key of the AEAD that seals every stored object, and the key
//! of the keyed BLAKE3 that names chunks, so a plaintext cannot be confirmed by its hash while
//! equal chunks still deduplicate within the repository.
//!
//! Sealed bytes are `nonce ‖ ciphertext ‖ tag`, with a random nonce: 12 bytes under AES-256-GCM
//! (chosen when the CPU has AES instructions), 24 under XChaCha20-Poly1305. Packs seal each blob
//! and their trailer separately, so a restore still reads single blobs by range; every other
//! object (index files, manifest segments, checkpoints, set descriptors) is sealed whole, and an
//! archived segment's payload is sealed with its header as associated data. Content-addressed
//! objects are named by the BLAKE3 of their sealed bytes, so a copy moves them without the key.
//!
//! The master key is stored only wrapped: each passphrase has a key slot
//! (`keys/<16 hex>.key`, JSON) holding its Argon2id parameters and salt and the master key
//! sealed under the key Argon2id derives from the passphrase. Adding, removing or rotating a
//! passphrase rewrites slots only. The format file names the cipher and the key's id (a
//! fingerprint derived from the master key), so a reader with the wrong key is told so before
//! it reads anything else.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::chunker::ContentId;
use super::error::EngineError;
use crate::storage::{Backend, ObjectInfo, Staged, StorageError, aligned};

/// Folder of the key slots.
pub const KEYS_PREFIX: &str = "keys/";
const TAG_LEN: usize = 16;
/// Argon2id cost of new slots: 64 MiB, 3 passes, 4 lanes, RFC 9106's second recommendation.
/// The lanes are computed on threads of their own: on two cores a password takes 0.10 s
/// instead of 0.15 s with one lane, for the same memory and passes (an attacker's cost per
/// guess). Slots written with one lane (before 2026-12-08) keep theirs: each slot stores its
/// own parameters.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_ITERATIONS: u32 = 3;
const ARGON2_LANES: u32 = 4;

/// The AEAD a repository seals with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cipher {
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
}

impl Cipher {
    /// AES-256-GCM where the CPU has AES and carry-less multiply instructions, else
    /// XChaCha20-Poly1305 (as fast in software, and constant-time without AES-NI).
    pub fn for_this_cpu() -> Cipher {
        #[cfg(target_arch = "x86_64")]
        let hardware = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq");
        #[cfg(target_arch = "aarch64")]
        let hardware = std::arch::is_aarch64_feature_detected!("aes");
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let hardware = false;
        if hardware {
            Cipher::Aes256Gcm
        } else {
            Cipher::XChaCha20Poly1305
        }
    }

    fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes256Gcm => 12,
            Cipher::XChaCha20Poly1305 => 24,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }
}

/// The repository's master key. Never stored in the clear in a destination.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.key_id())
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut key[..]);
        MasterKey(key)
    }

    /// The key as 64 hex digits, for the server's catalog.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex(&self.0[..]))
    }

    pub fn from_hex(text: &str) -> Option<MasterKey> {
        let bytes = unhex(text)?;
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return None;
        }
        key.copy_from_slice(&bytes);
        Some(MasterKey(key))
    }

    /// The key's public fingerprint: names it in the format file and the catalog.
    pub fn key_id(&self) -> String {
        hex(&blake3::derive_key("backstop 2026-12 repository key id", &self.0[..])[..8])
    }

    fn derive(&self, context: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(context, &self.0[..]))
    }
}

enum Aead {
    Aes(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

/// Seals and opens a repository's stored bytes, and names its chunks.
pub struct Sealer {
    cipher: Cipher,
    aead: Aead,
    id_key: Zeroizing<[u8; 32]>,
    key_id: String,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("cipher", &self.cipher)
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Sealer {
    pub fn new(master: &MasterKey, cipher: Cipher) -> Sealer {
        let data_key = master.derive("backstop 2026-12 repository data key");
        let aead = match cipher {
            Cipher::Aes256Gcm => Aead::Aes(Box::new(
                Aes256Gcm::new_from_slice(&data_key[..]).expect("a 32-byte key"),
            )),
            Cipher::XChaCha20Poly1305 => Aead::XChaCha(Box::new(
                XChaCha20Poly1305::new_from_slice(&data_key[..]).expect("a 32-byte key"),
            )),
        };
        Sealer {
            cipher,
            aead,
            id_key: master.derive("backstop 2026-12 chunk id key"),
            key_id: master.key_id(),
        }
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Bytes sealing adds to a plaintext.
    pub fn overhead(&self) -> usize {
        self.cipher.nonce_len() + TAG_LEN
    }

    /// The keyed BLAKE3 of a chunk.
    pub fn content_id(&self, data: &[u8]) -> ContentId {
        ContentId(*blake3::keyed_hash(&self.id_key, data).as_bytes())
    }

    /// Appends `nonce ‖ ciphertext ‖ tag` of `plain` to `out`.
    pub fn seal_append(&self, plain: &[u8], aad: &[u8], out: &mut Vec<u8>) {
        let nonce_len = self.cipher.nonce_len();
        let start = out.len();
        out.resize(start + nonce_len, 0);
        rand::rng().fill_bytes(&mut out[start..]);
        out.extend_from_slice(plain);
        let (nonce, body) = out[start..].split_at_mut(nonce_len);
        let tag = match &self.aead {
            Aead::Aes(aead) => aead.encrypt_in_place_detached(nonce[..].into(), aad, body),
            Aead::XChaCha(aead) => aead.encrypt_in_place_detached(nonce[..].into(), aad, body),
        }
        .expect("sealing fails only on inputs of 64 GiB");
        out.extend_from_slice(&tag);
    }

    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + self.overhead());
        self.seal_append(plain, aad, &mut out);
        out
    }

    /// Opens sealed bytes into `out` (cleared first); `object` names them in the error.
    pub fn open_into(
        &self,
        object: &str,
        sealed: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EngineError> {
        let nonce_len = self.cipher.nonce_len();
        if sealed.len() < nonce_len + TAG_LEN {
            return Err(EngineError::corrupt(
                object,
                format!(
                    "{} bytes: too short to be sealed (truncated?)",
                    sealed.len()
                ),
            ));
        }
        let (nonce, rest) = sealed.split_at(nonce_len);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        out.clear();
        out.extend_from_slice(body);
        let opened = match &self.aead {
            Aead::Aes(aead) => aead.decrypt_in_place_detached(nonce.into(), aad, out, tag.into()),
            Aead::XChaCha(aead) => {
                aead.decrypt_in_place_detached(nonce.into(), aad, out, tag.into())
            }
        };
        opened.map_err(|_| {
            out.zeroize();
            EngineError::corrupt(
                object,
                format!(
                    "does not authenticate under key {} (damaged, or sealed under another key)",
                    self.key_id
                ),
            )
        })
    }

    pub fn open(&self, object: &str, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, EngineError> {
        let mut out = Vec::new();
        self.open_into(object, sealed, aad, &mut out)?;
        Ok(out)
    }
}

/// The id of a chunk: keyed when the repository is encrypted.
pub fn chunk_id(sealer: Option<&Sealer>, data: &[u8]) -> ContentId {
    match sealer {
        Some(sealer) => sealer.content_id(data),
        None => ContentId::of(data),
    }
}

/// The bytes to store for a whole object: sealed when the repository is encrypted.
pub fn seal_object(sealer: Option<&Sealer>, plain: Vec<u8>) -> Vec<u8> {
    match sealer {
        Some(sealer) => sealer.seal(&plain, b""),
        None => plain,
    }
}

/// The plaintext of a whole stored object.
pub fn open_object<'a>(
    sealer: Option<&Sealer>,
    object: &str,
    stored: &'a [u8],
) -> Result<Cow<'a, [u8]>, EngineError> {
    match sealer {
        Some(sealer) => sealer.open(object, stored, b"").map(Cow::Owned),
        None => Ok(Cow::Borrowed(stored)),
    }
}

/// One passphrase's wrapping of the master key: `keys/<slot>.key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// Always `argon2id`.
    pub kdf: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
    /// Hex.
    pub salt: String,
    /// The id of the master key it wraps.
    pub key_id: String,
    /// XChaCha20-Poly1305 of the master key under the Argon2id key: nonce ‖ ciphertext ‖ tag,
    /// hex, with the key id as associated data.
    pub wrapped: String,
    pub created: String,
}

/// The object name of a key slot.
pub fn slot_object(slot: &str) -> String {
    format!("{KEYS_PREFIX}{slot}.key")
}

fn passphrase_key(
    passphrase: &str,
    salt: &[u8],
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = argon2::Params::new(memory_kib, iterations, lanes, Some(32))
        .map_err(|e| format!("invalid Argon2id parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|e| format!("Argon2id failed: {e}"))?;
    Ok(key)
}

impl KeySlot {
    /// Wraps `master` under `passphrase` with fresh salt.
    pub fn wrap(master: &MasterKey, passphrase: &str) -> KeySlot {
        Self::wrap_with(master, passphrase, ARGON2_LANES)
    }

    fn wrap_with(master: &MasterKey, passphrase: &str, lanes: u32) -> KeySlot {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let kek = passphrase_key(
            passphrase,
            &salt,
            ARGON2_MEMORY_KIB,
            ARGON2_ITERATIONS,
            lanes,
        )
        .expect("the built-in Argon2id parameters are valid");
        let aead = XChaCha20Poly1305::new_from_slice(&kek[..]).expect("a 32-byte key");
        let key_id = master.key_id();
        let mut sealed = vec![0u8; 24];
        rand::rng().fill_bytes(&mut sealed);
        sealed.extend_from_slice(&master.0[..]);
        let (nonce, body) = sealed.split_at_mut(24);
        let tag = aead
            .encrypt_in_place_detached(nonce[..].into(), key_id.as_bytes(), body)
            .expect("32 bytes always seal");
        sealed.extend_from_slice(&tag);
        KeySlot {
            kdf: "argon2id".into(),
            memory_kib: ARGON2_MEMORY_KIB,
            iterations: ARGON2_ITERATIONS,
            lanes,
            salt: hex(&salt),
            key_id,
            wrapped: hex(&sealed),
            created: chrono::Utc::now().to_rfc3339(),
        }
    }

    /// The master key, if `passphrase` is this slot's. `Err` when the slot itself is unreadable.
    pub fn unwrap_key(
        &self,
        object: &str,
        passphrase: &str,
    ) -> Result<Option<MasterKey>, EngineError> {
        let bad = |what: &str| EngineError::corrupt(object, format!("key slot {what}"));
        if self.kdf != "argon2id" {
            return Err(bad("names an unknown key derivation"));
        }
        // A slot cannot make the server spend more than 1 GiB or 100 passes on a passphrase.
        if self.memory_kib > 1 << 20 || self.iterations > 100 || self.lanes > 64 {
            return Err(bad("asks for more Argon2id work than backstop allows"));
        }
        let salt = unhex(&self.salt).ok_or_else(|| bad("has a malformed salt"))?;
        let sealed = unhex(&self.wrapped).ok_or_else(|| bad("has a malformed wrapped key"))?;
        if sealed.len() != 24 + 32 + TAG_LEN {
            return Err(bad("has a wrapped key of the wrong length"));
        }
        let kek = passphrase_key(
            passphrase,
            &salt,
            self.memory_kib,
            self.iterations,
            self.lanes,
        )
        .map_err(|e| bad(&e))?;
        let aead = XChaCha20Poly1305::new_from_slice(&kek[..]).expect("a 32-byte key");
        let (nonce, rest) = sealed.split_at(24);
        let (body, tag) = rest.split_at(32);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(body);
        if aead
            .decrypt_in_place_detached(
                nonce.into(),
                self.key_id.as_bytes(),
                &mut key[..],
                tag.into(),
            )
            .is_err()
        {
            return Ok(None);
        }
        let master = MasterKey(key);
        if master.key_id() != self.key_id {
            return Err(bad("wraps a key other than the one it names"));
        }
        Ok(Some(master))
    }
}

/// The key slots of a destination, by slot name.
pub fn list_slots(backend: &dyn Backend) -> Result<Vec<(String, KeySlot)>, EngineError> {
    let mut slots = Vec::new();
    for object in backend.list(KEYS_PREFIX)? {
        let Some(slot) = object
            .name
            .strip_prefix(KEYS_PREFIX)
            .and_then(|n| n.strip_suffix(".key"))
        else {
            continue;
        };
        let bytes = backend.get(&object.name)?;
        let parsed: KeySlot = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::corrupt(&object.name, format!("unreadable key slot: {e}")))?;
        slots.push((slot.to_string(), parsed));
    }
    slots.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(slots)
}

/// Tries each passphrase on each slot of key `key_id`; the master key and the slot that opened.
pub fn unlock(
    backend: &dyn Backend,
    key_id: &str,
    passphrases: &[String],
) -> Result<Option<(MasterKey, String)>, EngineError> {
    let slots = list_slots(backend)?;
    for passphrase in passphrases {
        for (name, slot) in slots.iter().filter(|(_, s)| s.key_id == key_id) {
            if let Some(master) = slot.unwrap_key(&slot_object(name), passphrase)? {
                return Ok(Some((master, name.clone())));
            }
        }
    }
    Ok(None)
}

/// Stores a new slot wrapping `master` under `passphrase`; returns its name.
pub fn add_slot(
    backend: &dyn Backend,
    master: &MasterKey,
    passphrase: &str,
) -> Result<String, EngineError> {
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let name = hex(&id);
    let slot = KeySlot::wrap(master, passphrase);
    let bytes = serde_json::to_vec_pretty(&slot).expect("a key slot always serializes");
    backend.put(&slot_object(&name), &bytes)?;
    Ok(name)
}

/// Gives destination `to` the key slot `slot` of destination `from`, as stored, unless `to`
/// holds a slot of that name already; returns whether it wrote one. Destinations sealed under
/// one key (a source and its copies) share their slots this way.
pub fn share_slot(from: &dyn Backend, to: &dyn Backend, slot: &str) -> Result<bool, EngineError> {
    let object = slot_object(slot);
    if to.size(&object)?.is_some() {
        return Ok(false);
    }
    to.put(&object, &from.get(&object)?)?;
    Ok(true)
}

/// A destination's backend with the key that opens its sealed objects.
#[derive(Debug)]
pub struct SealedBackend {
    inner: Arc<dyn Backend>,
    sealer: Arc<Sealer>,
}

impl SealedBackend {
    pub fn new(inner: Arc<dyn Backend>, sealer: Arc<Sealer>) -> SealedBackend {
        SealedBackend { inner, sealer }
    }
}

impl Backend for SealedBackend {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        self.inner.put(name, data)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.get(name)
    }
    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>, StorageError> {
        self.inner.get_range(name, offset, length)
    }
    fn read_range_into(
        &self,
        name: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        self.inner.read_range_into(name, offset, buf)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.inner.list(prefix)
    }
    fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.inner.delete(name)
    }
    fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(name)
    }
    fn root_exists(&self) -> Result<bool, StorageError> {
        self.inner.root_exists()
    }
    fn remove_temporaries(&self, prefix: &str) -> Result<(u64, u64), StorageError> {
        self.inner.remove_temporaries(prefix)
    }
    fn stage(&self, name: &str, data: &[u8]) -> Result<Staged, StorageError> {
        self.inner.stage(name, data)
    }
    fn stage_uncached(
        &self,
        name: &str,
        buf: &aligned::AlignedBuf,
        len: usize,
    ) -> Result<Staged, StorageError> {
        self.inner.stage_uncached(name, buf, len)
    }
    fn commit(&self, staged: Staged) -> Result<(), StorageError> {
        self.inner.commit(staged)
    }
    fn discard(&self, staged: Staged) {
        self.inner.discard(staged)
    }
    fn start_writeback(&self, staged: &Staged) {
        self.inner.start_writeback(staged)
    }
    fn sealer(&self) -> Option<&Sealer> {
        Some(&self.sealer)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBackend;

    #[test]
    fn sealed_bytes_open_only_under_their_key_and_unchanged() {
        for cipher in [Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305] {
            let sealer = Sealer::new(&MasterKey::generate(), cipher);
            let sealed = sealer.seal(b"backstop", b"head");
            assert_eq!(sealed.len(), 8 + sealer.overhead());
            assert!(!sealed.windows(8).any(|w| w == b"backstop"));
            assert_eq!(sealer.open("o", &sealed, b"head").unwrap(), b"backstop");
            assert!(sealer.open("o", &sealed, b"other").is_err());
            let mut flipped = sealed.clone();
            flipped[sealer.cipher.nonce_len() + 2] ^= 1;
            let err = sealer.open("packs/x", &flipped, b"head").unwrap_err();
            assert!(err.to_string().contains("packs/x"), "{err}");
            let other = Sealer::new(&MasterKey::generate(), cipher);
            assert!(other.open("o", &sealed, b"head").is_err());
            assert!(sealer.open("o", &sealed[..10], b"head").is_err());
            // Chunk ids are keyed: the plain BLAKE3 of a chunk does not name it.
            assert_ne!(sealer.content_id(b"x"), ContentId::of(b"x"));
            assert_ne!(sealer.content_id(b"x"), other.content_id(b"x"));
            assert_eq!(sealer.content_id(b"x"), sealer.content_id(b"x"));
        }
    }

    #[test]
    fn slots_unwrap_with_their_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let master = MasterKey::generate();
        let id = master.key_id();
        add_slot(&backend, &master, "first").unwrap();
        add_slot(&backend, &master, "second").unwrap();
        let opened = |p: &str| unlock(&backend, &id, &[p.to_string()]).unwrap();
        assert_eq!(opened("second").unwrap().0.key_id(), id);
        assert_eq!(opened("first").unwrap().0.to_hex(), master.to_hex());
        assert!(opened("wrong").is_none());
        assert!(
            unlock(&backend, "0000", &["first".into()])
                .unwrap()
                .is_none()
        );
        let (name, mut slot) = list_slots(&backend).unwrap().remove(0);
        slot.memory_kib = 4 << 20;
        let err = slot.unwrap_key(&slot_object(&name), "first").unwrap_err();
        assert!(err.to_string().contains("Argon2id"), "{err}");
        let text = serde_json::to_string(&list_slots(&backend).unwrap()).unwrap();
        assert!(!text.contains(master.to_hex().as_str()));
    }

    #[test]
    fn a_slot_opens_with_the_lanes_it_was_written_with() {
        let master = MasterKey::generate();
        let new = KeySlot::wrap(&master, "pw");
        assert_eq!(new.lanes, 4);
        // Written as every slot was before new slots had four lanes.
        let old = KeySlot::wrap_with(&master, "pw", 1);
        assert_eq!(old.lanes, 1);
        for slot in [&new, &old] {
            let opened = slot.unwrap_key("keys/x.key", "pw").unwrap().unwrap();
            assert_eq!(opened.to_hex(), master.to_hex());
        }
        // The lanes are part of the derivation: the same salt with other lanes is another key.
        let mut relabelled = old.clone();
        relabelled.lanes = 4;
        assert!(relabelled.unwrap_key("keys/x.key", "pw").unwrap().is_none());
    }
}
