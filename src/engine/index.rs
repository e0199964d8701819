//! The index: which pack holds each chunk, and where in it.
//!
//! An index file lists whole packs with their blobs; it is named by the BLAKE3 of its bytes
//! (`index/<64 hex>.idx`) and written only after every pack it lists is durable, so an index
//! entry never points at a pack that a crash could have lost. The repository index is the union
//! of all index files, held in memory as one hash map (about 64 bytes per unique chunk).
//!
//! ```text
//! "BKSTIX01" pack_count:varint
//!   (pack_id:[u8;32] pack_size:varint blob_count:varint
//!     (chunk_id:[u8;32] offset:varint length:varint raw_length:varint compression:u8)*)*
//! ```

use std::collections::HashMap;

use super::chunker::ContentId;
use super::codec::{DecodeError, Decoder, Encoder};
use super::crypto::{Sealer, open_object, seal_object};
use super::error::EngineError;
use super::pack::{BlobEntry, Compression};
use crate::storage::Backend;

const INDEX_MAGIC: &[u8; 8] = b"BKSTIX01";
/// Folder of index files.
pub const INDEX_PREFIX: &str = "index/";

/// One pack as listed in an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: ContentId,
    pub size: u64,
    pub blobs: Vec<BlobEntry>,
}

/// The object name of an index file.
pub fn index_object_name(id: &ContentId) -> String {
    format!("{INDEX_PREFIX}{}.idx", id.to_hex())
}

/// Encodes an index file (sealed when the repository is encrypted); returns its object name,
/// the BLAKE3 of the stored bytes, and those bytes.
pub fn encode_index(sealer: Option<&Sealer>, packs: &[IndexedPack]) -> (String, Vec<u8>) {
    let mut enc = Encoder::new();
    enc.raw(INDEX_MAGIC);
    enc.u64(packs.len() as u64);
    for pack in packs {
        enc.raw(&pack.id.0);
        enc.u64(pack.size);
        enc.u64(pack.blobs.len() as u64);
        for blob in &pack.blobs {
            enc.raw(&blob.id.0);
            enc.u64(blob.offset as u64);
            enc.u64(blob.length as u64);
            enc.u64(blob.raw_length as u64);
            enc.u8(blob.compression.code());
        }
    }
    let stored = seal_object(sealer, enc.buf);
    (index_object_name(&ContentId::of(&stored)), stored)
}

/// Decodes an index file, checking its bytes against the id in its name.
pub fn decode_index(
    sealer: Option<&Sealer>,
    object: &str,
    bytes: &[u8],
) -> Result<Vec<IndexedPack>, EngineError> {
    let expected = object
        .strip_prefix(INDEX_PREFIX)
        .and_then(|rest| rest.strip_suffix(".idx"))
        .and_then(ContentId::from_hex);
    if expected != Some(ContentId::of(bytes)) {
        return Err(EngineError::corrupt(
            object,
            "content does not match its name (damaged or truncated)",
        ));
    }
    let plain = open_object(sealer, object, bytes)?;
    decode_body(&plain).map_err(|e| EngineError::corrupt(object, format!("unreadable index: {e}")))
}

fn decode_body(bytes: &[u8]) -> Result<Vec<IndexedPack>, DecodeError> {
    let mut dec = Decoder::new(bytes);
    if dec.raw(INDEX_MAGIC.len())? != INDEX_MAGIC {
        return Err(DecodeError {
            what: "not an index file",
            offset: 0,
        });
    }
    let pack_count = dec.u64()?;
    let mut packs = Vec::new();
    for _ in 0..pack_count {
        let id = ContentId(dec.array::<32>()?);
        let size = dec.u64()?;
        let blob_count = dec.u64()?;
        let mut blobs = Vec::new();
        for _ in 0..blob_count {
            let blob_id = ContentId(dec.array::<32>()?);
            let offset = dec.u32()?;
            let length = dec.u32()?;
            let raw_length = dec.u32()?;
            let compression = Compression::from_code(dec.u8()?).ok_or(DecodeError {
                what: "unknown compression",
                offset: dec.position(),
            })?;
            blobs.push(BlobEntry {
                id: blob_id,
                offset,
                length,
                raw_length,
                compression,
            });
        }
        packs.push(IndexedPack { id, size, blobs });
    }
    if !dec.is_empty() {
        return Err(DecodeError {
            what: "trailing bytes",
            offset: dec.position(),
        });
    }
    Ok(packs)
}

/// Where a chunk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    /// Number of the pack in [`RepositoryIndex::pack`].
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub compression: Compression,
    /// Number of the index file that lists it, in [`RepositoryIndex::index_file`].
    pub index_file: u32,
}

impl ChunkLocation {
    /// The pack entry this location describes, for [`super::pack::decode_blob`].
    pub fn blob_entry(&self, id: ContentId) -> BlobEntry {
        BlobEntry {
            id,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
            compression: self.compression,
        }
    }
}

/// An index file that could not be loaded.
#[derive(Debug)]
pub struct UnreadableIndex {
    pub object: String,
    pub error: EngineError,
}

/// The union of a repository's index files.
#[derive(Debug, Default)]
pub struct RepositoryIndex {
    packs: Vec<(ContentId, u64)>,
    pack_numbers: HashMap<ContentId, u32>,
    index_files: Vec<(String, u64)>,
    chunks: HashMap<ContentId, ChunkLocation>,
}

impl RepositoryIndex {
    /// Reads every index file of the destination. Damaged ones are returned beside the index
    /// (their chunks are simply not found) so a restore can name them and a validation report
    /// them.
    ///
    /// Packs the collector deleted are skipped (an index file a set keeps may still name one).
    pub fn load(
        backend: &dyn Backend,
    ) -> Result<(RepositoryIndex, Vec<UnreadableIndex>), EngineError> {
        let retired = super::gc::Retired::read(backend)?;
        RepositoryIndex::load_without(backend, &retired, false)
    }

    /// The index a new backup deduplicates against: also without the packs the collector
    /// marked as garbage, so that no new set ever comes to depend on one.
    pub fn load_for_backup(
        backend: &dyn Backend,
    ) -> Result<(RepositoryIndex, Vec<UnreadableIndex>), EngineError> {
        let retired = super::gc::Retired::read(backend)?;
        RepositoryIndex::load_without(backend, &retired, true)
    }

    fn load_without(
        backend: &dyn Backend,
        retired: &super::gc::Retired,
        skip_marked: bool,
    ) -> Result<(RepositoryIndex, Vec<UnreadableIndex>), EngineError> {
        let marked = if skip_marked {
            retired.marked_packs()
        } else {
            std::collections::HashSet::new()
        };
        let mut index = RepositoryIndex::default();
        let mut unreadable = Vec::new();
        let mut objects = backend.list(INDEX_PREFIX)?;
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        for object in objects {
            let loaded = backend
                .get(&object.name)
                .map_err(EngineError::from)
                .and_then(|bytes| decode_index(backend.sealer(), &object.name, &bytes));
            match loaded {
                Ok(mut packs) => {
                    packs.retain(|p| {
                        !marked.contains(&p.id) && !retired.is_gone(&p.id, &object.name)
                    });
                    index.add_index_file(&object.name, object.size, &packs)
                }
                Err(error) => unreadable.push(UnreadableIndex {
                    object: object.name,
                    error,
                }),
            }
        }
        Ok((index, unreadable))
    }

    /// Adds the contents of one index file.
    pub fn add_index_file(&mut self, object: &str, size: u64, packs: &[IndexedPack]) {
        let file_number = match self.index_files.iter().position(|(f, _)| f == object) {
            Some(n) => n as u32,
            None => {
                self.index_files.push((object.to_string(), size));
                (self.index_files.len() - 1) as u32
            }
        };
        for pack in packs {
            let pack_number = *self.pack_numbers.entry(pack.id).or_insert_with(|| {
                self.packs.push((pack.id, pack.size));
                (self.packs.len() - 1) as u32
            });
            for blob in &pack.blobs {
                self.chunks.entry(blob.id).or_insert(ChunkLocation {
                    pack: pack_number,
                    offset: blob.offset,
                    length: blob.length,
                    raw_length: blob.raw_length,
                    compression: blob.compression,
                    index_file: file_number,
                });
            }
        }
    }

    pub fn lookup(&self, id: &ContentId) -> Option<&ChunkLocation> {
        self.chunks.get(id)
    }

    pub fn contains(&self, id: &ContentId) -> bool {
        self.chunks.contains_key(id)
    }

    /// A pack's id and size by number.
    pub fn pack(&self, number: u32) -> (ContentId, u64) {
        self.packs[number as usize]
    }

    /// An index file's object name and size by number.
    pub fn index_file(&self, number: u32) -> (&str, u64) {
        let (name, size) = &self.index_files[number as usize];
        (name, *size)
    }

    /// Whether the index file was loaded.
    pub fn has_index_file(&self, object: &str) -> bool {
        self.index_files.iter().any(|(f, _)| f == object)
    }

    /// How many packs the index knows.
    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sample() -> Vec<IndexedPack> {
        vec![IndexedPack {
            id: ContentId::of(b"pack"),
            size: 1234,
            blobs: vec![BlobEntry {
                id: ContentId::of(b"chunk"),
                offset: 0,
                length: 100,
                raw_length: 200,
                compression: Compression::Zstd,
            }],
        }]
    }

    #[test]
    fn index_files_round_trip_and_reject_damage() {
        let (name, bytes) = encode_index(None, &sample());
        assert_eq!(decode_index(None, &name, &bytes).unwrap(), sample());
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        let err = decode_index(None, &name, &damaged).unwrap_err();
        assert!(err.to_string().contains(&name));
        assert!(decode_index(None, &name, &bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn garbage_bodies_are_errors_not_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for len in [0usize, 8, 9, 50, 500] {
            for _ in 0..100 {
                let mut garbage = vec![0u8; len];
                rng.fill(&mut garbage[..]);
                if len >= 8 {
                    garbage[..8].copy_from_slice(INDEX_MAGIC);
                }
                let _ = decode_body(&garbage);
            }
        }
    }
}
