//! Pack files: many chunks in one object, so a destination holds few large objects.
//!
//! A pack is its blobs back to back, then a trailer that lists them, so a pack describes itself
//! and the index can be rebuilt from packs alone:
//!
//! ```text
//! blob*  trailer  trailer_length:u32le  "BKSTPK01"
//! trailer = count:varint (id:[u8;32] offset:varint length:varint raw_length:varint compression:u8)*
//! ```
//!
//! A blob is a chunk stored raw or as one zstd frame. A pack is named by the BLAKE3 of all its
//! bytes (`packs/<2 hex>/<64 hex>.pack`), and every blob is checked against its chunk id when it
//! is read, so damage is always detected and named. In an encrypted repository each blob and the
//! trailer are sealed on their own (`nonce ‖ ciphertext ‖ tag`, see [`super::crypto`]), so a
//! blob is still read alone by its range, and the trailer's offsets and lengths are those of
//! the sealed blobs.

use zstd::bulk::{Compressor, Decompressor};

use super::chunker::ContentId;
use super::codec::{Decoder, Encoder};
use super::crypto::{Sealer, chunk_id};
use super::error::EngineError;

/// Folder of the packs.
pub const PACKS_PREFIX: &str = "packs/";

/// A pack is sealed once it holds this many bytes. 8 MiB keeps the packs in memory (the open
/// one plus two being written) small while a pack still costs only one put per 8 MiB.
pub const PACK_TARGET: usize = 8 << 20;
const PACK_MAGIC: &[u8; 8] = b"BKSTPK01";
/// Chunks smaller than this are compressed without first testing a sample.
const SAMPLE_THRESHOLD: usize = 256 * 1024;
const SAMPLE_LEN: usize = 64 * 1024;

/// How a blob's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Raw,
    Zstd,
}

impl Compression {
    pub(crate) fn code(self) -> u8 {
        match self {
            Compression::Raw => 0,
            Compression::Zstd => 1,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Compression> {
        match code {
            0 => Some(Compression::Raw),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Where one chunk lies in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: ContentId,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub compression: Compression,
}

/// The object name of a pack.
pub fn pack_object_name(id: &ContentId) -> String {
    let hex = id.to_hex();
    format!("packs/{}/{hex}.pack", &hex[..2])
}

/// A compressor set up for blobs at `level`. At the fast levels (1 and 2) the minimum match is
/// 5 bytes instead of 6: about 10% smaller on database files and binaries for a few percent of
/// speed, the same trade zstd's level 3 makes at twice the cost.
pub fn blob_compressor(level: i32) -> std::io::Result<Compressor<'static>> {
    let mut compressor = Compressor::new(level)?;
    if (1..=2).contains(&level) {
        compressor.set_parameter(zstd::zstd_safe::CParameter::MinMatch(5))?;
    }
    Ok(compressor)
}

/// Appends the zstd frame of `data` to `out`; returns its length, or `None` on failure.
fn compress_append(
    compressor: &mut Compressor<'static>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Option<usize> {
    let start = out.len();
    out.reserve(zstd::zstd_safe::compress_bound(data.len()));
    let mut cursor = std::io::Cursor::new(&mut *out);
    cursor.set_position(start as u64);
    match compressor.compress_to_buffer(data, &mut cursor) {
        Ok(n) => Some(n),
        Err(_) => {
            out.truncate(start);
            None
        }
    }
}

/// Compresses a chunk, appending the stored bytes to `out` when zstd saves at least 1/64 of it;
/// returns `Raw` (and leaves `out` as it was) otherwise. With `sample`, a large chunk is first
/// judged on a sample from its middle, so that incompressible data (media, archives, encrypted
/// files) costs almost nothing to store. A stream of chunks samples only after a chunk that did
/// not compress ([`ChunkStream`]): in a run of compressible ones the sample is a sixteenth more
/// work for nothing.
pub fn compress_chunk_into(
    compressor: &mut Compressor<'static>,
    raw: &[u8],
    out: &mut Vec<u8>,
    sample: bool,
) -> Compression {
    let saves_enough = |raw_len: usize, stored: usize| stored + raw_len / 64 < raw_len;
    let start = out.len();
    if sample && raw.len() >= SAMPLE_THRESHOLD {
        let at = raw.len() / 2 - SAMPLE_LEN / 2;
        let sample = &raw[at..at + SAMPLE_LEN];
        let judged = compress_append(compressor, sample, out);
        out.truncate(start);
        match judged {
            Some(stored) if saves_enough(sample.len(), stored) => {}
            _ => return Compression::Raw,
        }
    }
    match compress_append(compressor, raw, out) {
        Some(stored) if saves_enough(raw.len(), stored) => Compression::Zstd,
        _ => {
            out.truncate(start);
            Compression::Raw
        }
    }
}

/// Whether the next chunk of a stream is judged on a sample first: only after one that did
/// not compress (and for the first).
#[derive(Debug)]
pub struct ChunkStream {
    last: Compression,
}

impl Default for ChunkStream {
    fn default() -> ChunkStream {
        ChunkStream {
            last: Compression::Raw,
        }
    }
}

impl ChunkStream {
    /// [`compress_chunk_into`], sampling as the stream's last chunk says.
    pub fn compress_into(
        &mut self,
        compressor: &mut Compressor<'static>,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Compression {
        let sample = self.last == Compression::Raw;
        self.last = compress_chunk_into(compressor, raw, out, sample);
        self.last
    }
}

/// Compresses a chunk at the compressor's level, or keeps it raw when compression does not save
/// at least 1/64 of it (see [`compress_chunk_into`]).
pub fn compress_chunk(compressor: &mut Compressor<'static>, raw: &[u8]) -> (Vec<u8>, Compression) {
    let mut out = Vec::new();
    match compress_chunk_into(compressor, raw, &mut out, true) {
        Compression::Zstd => (out, Compression::Zstd),
        Compression::Raw => (raw.to_vec(), Compression::Raw),
    }
}

/// Turns a stored blob back into its chunk, checking length and id; `object` names the pack in
/// the error when anything is wrong.
pub fn decode_blob(
    decompressor: &mut Decompressor<'static>,
    sealer: Option<&Sealer>,
    object: &str,
    entry: &BlobEntry,
    stored: &[u8],
) -> Result<Vec<u8>, EngineError> {
    let mut scratch = BlobScratch::default();
    Ok(decode_blob_into(decompressor, sealer, object, entry, stored, &mut scratch)?.to_vec())
}

/// The buffers [`decode_blob_into`] reuses from blob to blob.
#[derive(Debug, Default)]
pub struct BlobScratch {
    opened: Vec<u8>,
    inflated: Vec<u8>,
}

/// Like [`decode_blob`] without copying: a raw plain blob is checked where it lies, a sealed one
/// is opened and a compressed one inflated into `scratch`. The returned bytes are verified.
pub fn decode_blob_into<'s>(
    decompressor: &mut Decompressor<'static>,
    sealer: Option<&Sealer>,
    object: &str,
    entry: &BlobEntry,
    stored: &'s [u8],
    scratch: &'s mut BlobScratch,
) -> Result<&'s [u8], EngineError> {
    let damaged = |what: String| {
        EngineError::corrupt(
            object,
            format!("chunk {} at offset {}: {what}", entry.id, entry.offset),
        )
    };
    if entry.raw_length as usize > super::chunker::MAX_CHUNK {
        return Err(damaged(format!(
            "{} bytes claimed, more than any chunk",
            entry.raw_length
        )));
    }
    if stored.len() != entry.length as usize {
        return Err(damaged(format!(
            "{} bytes stored, {} expected (pack truncated?)",
            stored.len(),
            entry.length
        )));
    }
    let BlobScratch { opened, inflated } = scratch;
    let stored: &[u8] = match sealer {
        Some(sealer) => {
            sealer
                .open_into(object, stored, b"", opened)
                .map_err(|_| damaged("does not authenticate (damaged, or another key)".into()))?;
            opened
        }
        None => stored,
    };
    let scratch = inflated;
    let raw: &[u8] = match entry.compression {
        Compression::Raw => stored,
        Compression::Zstd => {
            scratch.clear();
            // A frame that inflates beyond the recorded raw length fails the length check below
            // (or, beyond the buffer, decompression itself).
            scratch.reserve_exact(entry.raw_length as usize);
            let mut limited = std::io::Cursor::new(&mut *scratch);
            decompressor
                .decompress_to_buffer(stored, &mut limited)
                .map_err(|e| damaged(format!("does not decompress: {e}")))?;
            &scratch[..]
        }
    };
    if raw.len() != entry.raw_length as usize {
        return Err(damaged(format!(
            "{} bytes after decompression, {} expected",
            raw.len(),
            entry.raw_length
        )));
    }
    if chunk_id(sealer, raw) != entry.id {
        return Err(damaged("content does not match its checksum".into()));
    }
    Ok(raw)
}

/// A pack being filled.
#[derive(Debug)]
pub struct PackBuilder {
    data: Vec<u8>,
    entries: Vec<BlobEntry>,
}

/// A finished pack, ready to be stored under [`pack_object_name`] of its id.
#[derive(Debug)]
pub struct SealedPack {
    pub id: ContentId,
    pub data: Vec<u8>,
    pub entries: Vec<BlobEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        PackBuilder::new()
    }
}

impl PackBuilder {
    pub fn new() -> PackBuilder {
        PackBuilder::with_buffer(Vec::new())
    }

    /// A pack that fills `buffer` (cleared; a buffer handed back from an earlier pack keeps its
    /// memory, so no fresh pages are touched per pack).
    pub fn with_buffer(mut buffer: Vec<u8>) -> PackBuilder {
        buffer.clear();
        PackBuilder {
            data: buffer,
            entries: Vec::new(),
        }
    }

    /// Appends a stored blob, sealed when the repository is encrypted.
    pub fn add(
        &mut self,
        sealer: Option<&Sealer>,
        id: ContentId,
        stored: &[u8],
        raw_length: u32,
        compression: Compression,
    ) {
        if self.data.capacity() < PACK_TARGET {
            // Room for the last chunk and the trailer, so the buffer never grows by copying.
            let room = PACK_TARGET + super::chunker::MAX_CHUNK + PACK_TARGET / 16;
            self.data.reserve_exact(room - self.data.len());
        }
        let offset = self.data.len();
        match sealer {
            Some(sealer) => sealer.seal_append(stored, b"", &mut self.data),
            None => self.data.extend_from_slice(stored),
        }
        self.entries.push(BlobEntry {
            id,
            offset: offset as u32,
            length: (self.data.len() - offset) as u32,
            raw_length,
            compression,
        });
    }

    /// Appends a blob as another pack stored it (already sealed, if it was): a repack moves
    /// blobs without opening them.
    pub fn add_stored(
        &mut self,
        id: ContentId,
        stored: &[u8],
        raw_length: u32,
        compression: Compression,
    ) {
        self.add(None, id, stored, raw_length, compression)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of blobs added so far.
    pub fn stored_len(&self) -> usize {
        self.data.len()
    }

    /// Whether the pack has reached its target size and should be sealed.
    pub fn is_full(&self) -> bool {
        self.data.len() >= PACK_TARGET
    }

    /// Appends the trailer (sealed when the repository is encrypted) and names the pack.
    pub fn seal(self, sealer: Option<&Sealer>) -> SealedPack {
        let PackBuilder { mut data, entries } = self;
        let mut trailer = Encoder::new();
        trailer.u64(entries.len() as u64);
        for entry in &entries {
            trailer.raw(&entry.id.0);
            trailer.u64(entry.offset as u64);
            trailer.u64(entry.length as u64);
            trailer.u64(entry.raw_length as u64);
            trailer.u8(entry.compression.code());
        }
        let trailer = match sealer {
            Some(sealer) => sealer.seal(&trailer.buf, b"pack trailer"),
            None => trailer.buf,
        };
        data.extend_from_slice(&trailer);
        data.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        data.extend_from_slice(PACK_MAGIC);
        SealedPack {
            id: ContentId::of(&data),
            data,
            entries,
        }
    }
}

/// Reads the blob list from a whole pack, checking it is consistent with the pack's size.
pub fn read_pack_trailer(
    sealer: Option<&Sealer>,
    object: &str,
    pack: &[u8],
) -> Result<Vec<BlobEntry>, EngineError> {
    let bad = |what: String| EngineError::corrupt(object, format!("pack trailer {what}"));
    if pack.len() < 12 || &pack[pack.len() - 8..] != PACK_MAGIC {
        return Err(bad("missing (not a pack, or truncated)".into()));
    }
    let length_at = pack.len() - 12;
    let trailer_len =
        u32::from_le_bytes(pack[length_at..length_at + 4].try_into().expect("4 bytes")) as usize;
    if trailer_len > length_at {
        return Err(bad("length is larger than the pack".into()));
    }
    let blobs_end = length_at - trailer_len;
    let trailer = match sealer {
        Some(sealer) => std::borrow::Cow::Owned(
            sealer
                .open(object, &pack[blobs_end..length_at], b"pack trailer")
                .map_err(|_| bad("does not authenticate (damaged, or another key)".into()))?,
        ),
        None => std::borrow::Cow::Borrowed(&pack[blobs_end..length_at]),
    };
    let mut dec = Decoder::new(&trailer);
    let decode = |dec: &mut Decoder| -> Result<Vec<BlobEntry>, super::codec::DecodeError> {
        let count = dec.u64()?;
        let mut entries = Vec::new();
        for _ in 0..count {
            let id = ContentId(dec.array::<32>()?);
            let offset = dec.u32()?;
            let length = dec.u32()?;
            let raw_length = dec.u32()?;
            let compression =
                Compression::from_code(dec.u8()?).ok_or(super::codec::DecodeError {
                    what: "unknown compression",
                    offset: dec.position(),
                })?;
            entries.push(BlobEntry {
                id,
                offset,
                length,
                raw_length,
                compression,
            });
        }
        Ok(entries)
    };
    let entries = decode(&mut dec).map_err(|e| bad(format!("unreadable: {e}")))?;
    if let Some(entry) = entries
        .iter()
        .find(|e| e.offset as usize + e.length as usize > blobs_end)
    {
        return Err(bad(format!("lists chunk {} past the blobs", entry.id)));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn packs_round_trip_and_damage_is_named() {
        let mut compressor = Compressor::new(1).unwrap();
        let mut decompressor = Decompressor::new().unwrap();
        let text = b"backstop ".repeat(50_000);
        let mut noise = vec![0u8; 300_000];
        rand::rngs::StdRng::seed_from_u64(1).fill(&mut noise[..]);
        let mut builder = PackBuilder::new();
        for raw in [&text[..], &noise[..]] {
            let (stored, compression) = compress_chunk(&mut compressor, raw);
            builder.add(
                None,
                ContentId::of(raw),
                &stored,
                raw.len() as u32,
                compression,
            );
        }
        let sealed = builder.seal(None);
        assert_eq!(sealed.entries[0].compression, Compression::Zstd);
        assert_eq!(sealed.entries[1].compression, Compression::Raw);
        let name = pack_object_name(&sealed.id);
        let entries = read_pack_trailer(None, &name, &sealed.data).unwrap();
        assert_eq!(entries, sealed.entries);
        for (entry, raw) in entries.iter().zip([&text[..], &noise[..]]) {
            let stored = &sealed.data[entry.offset as usize..][..entry.length as usize];
            assert_eq!(
                decode_blob(&mut decompressor, None, &name, entry, stored).unwrap(),
                raw
            );
        }
        let mut damaged = sealed.data.clone();
        damaged[entries[0].offset as usize + 10] ^= 0xff;
        let stored = &damaged[entries[0].offset as usize..][..entries[0].length as usize];
        let err = decode_blob(&mut decompressor, None, &name, &entries[0], stored).unwrap_err();
        assert!(err.to_string().contains(&name), "{err}");
    }

    /// After a compressible chunk the next is compressed whole, without a sample: noise must
    /// still be stored raw, with nothing left in the output, and text after it compressed.
    #[test]
    fn a_stream_stores_noise_raw_after_text_without_a_sample() {
        let mut compressor = Compressor::new(1).unwrap();
        let text = b"backstop ".repeat(100_000);
        let mut noise = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(3).fill(&mut noise[..]);
        let mut stream = ChunkStream::default();
        let mut out = Vec::new();
        assert_eq!(
            stream.compress_into(&mut compressor, &text, &mut out),
            Compression::Zstd
        );
        let after_text = out.len();
        assert!(after_text < text.len() / 10);
        assert_eq!(
            stream.compress_into(&mut compressor, &noise, &mut out),
            Compression::Raw
        );
        assert_eq!(out.len(), after_text);
        assert_eq!(
            stream.compress_into(&mut compressor, &noise, &mut out),
            Compression::Raw
        );
        assert_eq!(
            stream.compress_into(&mut compressor, &text, &mut out),
            Compression::Zstd
        );
        let mut decompressor = Decompressor::new().unwrap();
        let second = decompressor
            .decompress(&out[after_text..], text.len())
            .unwrap();
        assert_eq!(second, text);
    }

    #[test]
    fn sealed_packs_round_trip_and_open_under_their_key_only() {
        use crate::engine::crypto::{Cipher, MasterKey};
        let sealer = Sealer::new(&MasterKey::generate(), Cipher::for_this_cpu());
        let mut compressor = Compressor::new(1).unwrap();
        let mut decompressor = Decompressor::new().unwrap();
        let text = b"backstop encrypts ".repeat(20_000);
        let (stored, compression) = compress_chunk(&mut compressor, &text);
        let id = sealer.content_id(&text);
        let mut builder = PackBuilder::new();
        builder.add(Some(&sealer), id, &stored, text.len() as u32, compression);
        let sealed = builder.seal(Some(&sealer));
        assert!(!sealed.data.windows(17).any(|w| w == &text[..17]));
        assert!(read_pack_trailer(None, "p", &sealed.data).is_err());
        let entries = read_pack_trailer(Some(&sealer), "p", &sealed.data).unwrap();
        let blob = &sealed.data[entries[0].offset as usize..][..entries[0].length as usize];
        let opened = decode_blob(&mut decompressor, Some(&sealer), "p", &entries[0], blob);
        assert_eq!(opened.unwrap(), text);
        let other = Sealer::new(&MasterKey::generate(), Cipher::for_this_cpu());
        let err = decode_blob(&mut decompressor, Some(&other), "p", &entries[0], blob);
        assert!(err.unwrap_err().to_string().contains("authenticate"));
    }

    #[test]
    fn garbage_trailers_are_errors_not_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for len in [0usize, 5, 12, 13, 100, 4096] {
            for _ in 0..50 {
                let mut garbage = vec![0u8; len];
                rng.fill(&mut garbage[..]);
                if len >= 8 {
                    garbage[len - 8..].copy_from_slice(PACK_MAGIC);
                }
                let _ = read_pack_trailer(None, "packs/x", &garbage);
            }
        }
    }
}
