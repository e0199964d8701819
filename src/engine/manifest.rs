//! Manifests: the tree of a backup set, streamed in walk order.
//!
//! A manifest is a list of segments. A segment is up to about 4 MiB of encoded entries,
//! compressed with zstd and named by the BLAKE3 of its stored bytes
//! (`manifests/<64 hex>.seg`). Entries appear in the walk's order ([`compare_paths`]), so a
//! manifest is written and read one segment at a time and merge-joined with a new walk for
//! incremental backups: memory never depends on the size of the tree.
//!
//! ```text
//! segment (before zstd) = "BKSTMS01" entry*
//! entry = kind:u8 path:bytes mode uid gid size:varint mtime_ns ctime_ns:zigzag inode dev:varint
//!         flags:u8 [target:bytes if symlink] [extent_count (tag:u8 ...)* if file]
//! extent = 0 chunk_id:[u8;32] length:varint | 1 zero_length:varint
//! ```

use serde::{Deserialize, Serialize};

use super::chunker::ContentId;
use super::codec::{DecodeError, Decoder, Encoder};
use super::crypto::{Sealer, open_object, seal_object};
use super::error::EngineError;
use crate::source::{EntryKind, compare_paths};
use crate::storage::Backend;

const SEGMENT_MAGIC: &[u8; 8] = b"BKSTMS01";
/// A segment is closed once its encoded entries reach this size.
pub const SEGMENT_TARGET: usize = 4 << 20;
/// Refuse to inflate a segment beyond this, whatever its reference claims.
const SEGMENT_LIMIT: u64 = 1 << 30;
const FLAG_CHANGED_DURING_READ: u8 = 1;

/// A piece of a file's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Bytes stored as a chunk.
    Chunk { id: ContentId, length: u32 },
    /// A run of zero bytes (a hole in the source, or a chunk of zeroes); restored as a hole.
    Zero { length: u64 },
}

impl Extent {
    pub fn length(&self) -> u64 {
        match self {
            Extent::Chunk { length, .. } => *length as u64,
            Extent::Zero { length } => *length,
        }
    }
}

/// One entry of a backup set: a file, directory or symlink with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative path (raw bytes, `/`-joined); empty for the root.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
    /// The file kept changing while it was read; its contents are the last read.
    pub changed_during_read: bool,
    pub symlink_target: Vec<u8>,
    /// Contents of a file, in order; their lengths add up to `size`.
    pub extents: Vec<Extent>,
}

/// A segment as referenced from a set descriptor or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Object name, `manifests/<hex>.seg`.
    pub object: String,
    /// Stored (compressed) size in bytes.
    pub stored_size: u64,
    /// Size of the encoded entries before compression.
    pub raw_size: u64,
    /// Number of entries.
    pub entries: u64,
}

fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 1,
        EntryKind::Directory => 2,
        EntryKind::Symlink => 3,
        EntryKind::Special => 4,
    }
}

fn encode_entry(enc: &mut Encoder, entry: &ManifestEntry) {
    enc.u8(kind_code(entry.kind));
    enc.bytes(&entry.path);
    enc.u64(entry.mode as u64);
    enc.u64(entry.uid as u64);
    enc.u64(entry.gid as u64);
    enc.u64(entry.size);
    enc.i64(entry.mtime_ns);
    enc.i64(entry.ctime_ns);
    enc.u64(entry.inode);
    enc.u64(entry.dev);
    enc.u8(if entry.changed_during_read {
        FLAG_CHANGED_DURING_READ
    } else {
        0
    });
    match entry.kind {
        EntryKind::Symlink => enc.bytes(&entry.symlink_target),
        EntryKind::File => {
            enc.u64(entry.extents.len() as u64);
            for extent in &entry.extents {
                match extent {
                    Extent::Chunk { id, length } => {
                        enc.u8(0);
                        enc.raw(&id.0);
                        enc.u64(*length as u64);
                    }
                    Extent::Zero { length } => {
                        enc.u8(1);
                        enc.u64(*length);
                    }
                }
            }
        }
        EntryKind::Directory | EntryKind::Special => {}
    }
}

fn decode_entry(dec: &mut Decoder) -> Result<ManifestEntry, DecodeError> {
    let fail = |what, dec: &Decoder| DecodeError {
        what,
        offset: dec.position(),
    };
    let kind = match dec.u8()? {
        1 => EntryKind::File,
        2 => EntryKind::Directory,
        3 => EntryKind::Symlink,
        4 => EntryKind::Special,
        _ => return Err(fail("unknown entry kind", dec)),
    };
    let path = dec.bytes()?.to_vec();
    let mode = dec.u32()?;
    let uid = dec.u32()?;
    let gid = dec.u32()?;
    let size = dec.u64()?;
    let mtime_ns = dec.i64()?;
    let ctime_ns = dec.i64()?;
    let inode = dec.u64()?;
    let dev = dec.u64()?;
    let flags = dec.u8()?;
    let mut entry = ManifestEntry {
        path,
        kind,
        mode,
        uid,
        gid,
        size,
        mtime_ns,
        ctime_ns,
        inode,
        dev,
        changed_during_read: flags & FLAG_CHANGED_DURING_READ != 0,
        symlink_target: Vec::new(),
        extents: Vec::new(),
    };
    match kind {
        EntryKind::Symlink => entry.symlink_target = dec.bytes()?.to_vec(),
        EntryKind::File => {
            let count = dec.u64()?;
            let mut total = 0u64;
            for _ in 0..count {
                let extent = match dec.u8()? {
                    0 => Extent::Chunk {
                        id: ContentId(dec.array::<32>()?),
                        length: dec.u32()?,
                    },
                    1 => Extent::Zero { length: dec.u64()? },
                    _ => return Err(fail("unknown extent kind", dec)),
                };
                total = total
                    .checked_add(extent.length())
                    .ok_or(fail("extent lengths overflow", dec))?;
                entry.extents.push(extent);
            }
            if total != entry.size {
                return Err(fail("extent lengths do not add up to the file size", dec));
            }
        }
        EntryKind::Directory | EntryKind::Special => {}
    }
    Ok(entry)
}

/// Collects entries into one segment.
#[derive(Debug)]
pub struct SegmentBuilder {
    enc: Encoder,
    entries: u64,
    /// Where each entry's encoding ends, so a checkpoint can store a prefix of the segment.
    ends: Vec<usize>,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        SegmentBuilder::new()
    }
}

impl SegmentBuilder {
    pub fn new() -> SegmentBuilder {
        let mut enc = Encoder::new();
        enc.raw(SEGMENT_MAGIC);
        SegmentBuilder {
            enc,
            entries: 0,
            ends: Vec::new(),
        }
    }

    pub fn push(&mut self, entry: &ManifestEntry) {
        encode_entry(&mut self.enc, entry);
        self.entries += 1;
        self.ends.push(self.enc.buf.len());
    }

    /// A segment holding only the first `entries` entries of this one.
    pub fn prefix(&self, entries: usize) -> SegmentBuilder {
        let entries = entries.min(self.ends.len());
        let end = if entries == 0 {
            SEGMENT_MAGIC.len()
        } else {
            self.ends[entries - 1]
        };
        SegmentBuilder {
            enc: Encoder {
                buf: self.enc.buf[..end].to_vec(),
            },
            entries: entries as u64,
            ends: self.ends[..entries].to_vec(),
        }
    }

    /// Takes the first `entries` entries out into a segment of their own; this one keeps the
    /// rest.
    pub fn split_off_prefix(&mut self, entries: usize) -> SegmentBuilder {
        let prefix = self.prefix(entries);
        let taken = prefix.ends.len();
        let cut = prefix.enc.buf.len();
        let magic = SEGMENT_MAGIC.len();
        let mut rest = Vec::with_capacity(self.enc.buf.len() - cut + magic);
        rest.extend_from_slice(SEGMENT_MAGIC);
        rest.extend_from_slice(&self.enc.buf[cut..]);
        self.enc.buf = rest;
        self.ends = self.ends[taken..]
            .iter()
            .map(|end| end - cut + magic)
            .collect();
        self.entries -= taken as u64;
        prefix
    }

    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether the segment reached its target size.
    pub fn is_full(&self) -> bool {
        self.enc.buf.len() >= SEGMENT_TARGET
    }

    /// Compresses (and, when the repository is encrypted, seals) the segment; returns its
    /// reference and the bytes to store.
    pub fn finish(&self, sealer: Option<&Sealer>, level: i32) -> (SegmentRef, Vec<u8>) {
        let compressed = zstd::bulk::compress(&self.enc.buf, level.clamp(1, 19))
            .expect("zstd compresses any input in memory");
        let stored = seal_object(sealer, compressed);
        let object = format!("manifests/{}.seg", ContentId::of(&stored).to_hex());
        let reference = SegmentRef {
            object,
            stored_size: stored.len() as u64,
            raw_size: self.enc.buf.len() as u64,
            entries: self.entries,
        };
        (reference, stored)
    }
}

/// Decodes a stored segment, checking it against its reference.
pub fn decode_segment(
    sealer: Option<&Sealer>,
    reference: &SegmentRef,
    stored: &[u8],
) -> Result<Vec<ManifestEntry>, EngineError> {
    let object = &reference.object;
    let expected = object
        .strip_prefix("manifests/")
        .and_then(|rest| rest.strip_suffix(".seg"))
        .and_then(ContentId::from_hex);
    if expected != Some(ContentId::of(stored)) {
        return Err(EngineError::corrupt(
            object,
            format!(
                "content does not match its name ({} bytes, {} expected: damaged or truncated)",
                stored.len(),
                reference.stored_size
            ),
        ));
    }
    let capacity = reference.raw_size.min(SEGMENT_LIMIT) as usize;
    let compressed = open_object(sealer, object, stored)?;
    let raw = zstd::bulk::decompress(&compressed, capacity)
        .map_err(|e| EngineError::corrupt(object, format!("does not decompress: {e}")))?;
    let mut dec = Decoder::new(&raw);
    let bad = |e: DecodeError| EngineError::corrupt(object, format!("unreadable manifest: {e}"));
    if dec.raw(SEGMENT_MAGIC.len()).map_err(bad)? != SEGMENT_MAGIC {
        return Err(EngineError::corrupt(object, "not a manifest segment"));
    }
    let mut entries = Vec::new();
    while !dec.is_empty() {
        entries.push(decode_entry(&mut dec).map_err(bad)?);
    }
    if entries.len() as u64 != reference.entries {
        return Err(EngineError::corrupt(
            object,
            format!("{} entries, {} expected", entries.len(), reference.entries),
        ));
    }
    Ok(entries)
}

/// Streams the entries of a manifest, one segment in memory at a time, checking their order.
pub struct ManifestReader<'a> {
    backend: &'a dyn Backend,
    segments: std::slice::Iter<'a, SegmentRef>,
    current: std::vec::IntoIter<ManifestEntry>,
    current_object: String,
    last_path: Option<Vec<u8>>,
    /// Directories enclosing the current entry, outermost first.
    open_dirs: Vec<Vec<u8>>,
    failed: bool,
}

impl<'a> ManifestReader<'a> {
    pub fn new(backend: &'a dyn Backend, segments: &'a [SegmentRef]) -> ManifestReader<'a> {
        ManifestReader {
            backend,
            segments: segments.iter(),
            current: Vec::new().into_iter(),
            current_object: String::new(),
            last_path: None,
            open_dirs: Vec::new(),
            failed: false,
        }
    }

    fn load_next_segment(&mut self) -> Option<Result<(), EngineError>> {
        let reference = self.segments.next()?;
        self.current_object = reference.object.clone();
        let loaded = self
            .backend
            .get(&reference.object)
            .map_err(EngineError::from)
            .and_then(|stored| decode_segment(self.backend.sealer(), reference, &stored));
        Some(loaded.map(|entries| self.current = entries.into_iter()))
    }
}

impl ManifestReader<'_> {
    /// Refuses entries a walk cannot produce: the first must be the root directory, paths must
    /// strictly increase, names must be plain (no `.`, `..`, empty or NUL), and every entry's
    /// parent must be a directory of the manifest. A restore relies on this never to write
    /// outside its target or through a symlink.
    fn check_place(&mut self, entry: &ManifestEntry) -> Result<(), &'static str> {
        if let Some(last) = &self.last_path
            && compare_paths(last, &entry.path) != std::cmp::Ordering::Less
        {
            return Err("entries out of order");
        }
        if entry.path.is_empty() {
            if self.last_path.is_some() || entry.kind != EntryKind::Directory {
                return Err("misplaced root entry");
            }
            self.open_dirs.push(Vec::new());
            return Ok(());
        }
        let names_ok = entry
            .path
            .split(|&b| b == b'/')
            .all(|name| !name.is_empty() && name != b"." && name != b".." && !name.contains(&0));
        if !names_ok {
            return Err("invalid path");
        }
        let parent = match entry.path.iter().rposition(|&b| b == b'/') {
            Some(at) => &entry.path[..at],
            None => &[][..],
        };
        while self
            .open_dirs
            .last()
            .is_some_and(|dir| dir.as_slice() != parent)
        {
            self.open_dirs.pop();
        }
        if self.open_dirs.is_empty() {
            return Err("entry outside any directory of the manifest");
        }
        if entry.kind == EntryKind::Directory {
            self.open_dirs.push(entry.path.clone());
        }
        Ok(())
    }
}

impl Iterator for ManifestReader<'_> {
    type Item = Result<ManifestEntry, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(entry) = self.current.next() {
                if let Err(problem) = self.check_place(&entry) {
                    self.failed = true;
                    return Some(Err(EngineError::corrupt(
                        &self.current_object,
                        format!("{problem} at {}", String::from_utf8_lossy(&entry.path)),
                    )));
                }
                self.last_path = Some(entry.path.clone());
                return Some(Ok(entry));
            }
            match self.load_next_segment()? {
                Ok(()) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Finds entries of a reference manifest by path while a walk advances in the same order.
pub struct ManifestCursor<'a> {
    reader: ManifestReader<'a>,
    head: Option<ManifestEntry>,
}

impl<'a> ManifestCursor<'a> {
    pub fn new(reader: ManifestReader<'a>) -> ManifestCursor<'a> {
        ManifestCursor { reader, head: None }
    }

    /// The entry at `path`, if the reference has one. Paths must be asked in walk order.
    pub fn find(&mut self, path: &[u8]) -> Result<Option<&ManifestEntry>, EngineError> {
        loop {
            if self.head.is_none() {
                match self.reader.next() {
                    None => return Ok(None),
                    Some(entry) => self.head = Some(entry?),
                }
            }
            let head = self.head.as_ref().expect("just filled");
            match compare_paths(&head.path, path) {
                std::cmp::Ordering::Less => self.head = None,
                std::cmp::Ordering::Equal => return Ok(self.head.as_ref()),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBackend;
    use rand::{Rng, SeedableRng};

    pub(crate) fn file_entry(path: &[u8], size: u64) -> ManifestEntry {
        ManifestEntry {
            path: path.to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 1,
            gid: 2,
            size,
            mtime_ns: -5,
            ctime_ns: 1_700_000_000_000_000_000,
            inode: 77,
            dev: 3,
            changed_during_read: true,
            symlink_target: Vec::new(),
            extents: vec![
                Extent::Chunk {
                    id: ContentId::of(path),
                    length: 10,
                },
                Extent::Zero { length: size - 10 },
            ],
        }
    }

    #[test]
    fn a_split_off_prefix_and_the_rest_hold_every_entry_once() {
        let entries: Vec<ManifestEntry> = [&b"a"[..], b"b", b"c", b"d", b"e"]
            .iter()
            .map(|p| file_entry(p, 100))
            .collect();
        let mut builder = SegmentBuilder::new();
        for entry in &entries {
            builder.push(entry);
        }
        let decoded = |builder: &SegmentBuilder| {
            let (reference, stored) = builder.finish(None, 1);
            decode_segment(None, &reference, &stored).unwrap()
        };
        let first = builder.split_off_prefix(2);
        assert_eq!(decoded(&first), entries[..2]);
        assert_eq!(builder.len(), 3);
        let second = builder.split_off_prefix(1);
        assert_eq!(decoded(&second), entries[2..3]);
        builder.push(&file_entry(b"f", 100));
        let mut rest = entries[3..].to_vec();
        rest.push(file_entry(b"f", 100));
        assert_eq!(decoded(&builder), rest);
        assert_eq!(decoded(&builder.prefix(1)), rest[..1]);
    }

    #[test]
    fn segments_round_trip_and_stream_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let mut refs = Vec::new();
        let mut all = Vec::new();
        let batches: [&[&[u8]]; 2] = [&[b"", b"a"], &[b"a/x", b"a-b", b"n\xffme"]];
        for batch in batches {
            let mut builder = SegmentBuilder::new();
            for path in batch {
                let mut entry = file_entry(path, 100);
                if path.len() <= 1 {
                    entry.kind = EntryKind::Directory;
                    entry.extents.clear();
                    entry.size = 0;
                }
                builder.push(&entry);
                all.push(entry);
            }
            let (reference, stored) = builder.finish(None, 3);
            backend.put(&reference.object, &stored).unwrap();
            refs.push(reference);
        }
        let read: Vec<ManifestEntry> = ManifestReader::new(&backend, &refs)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, all);
        let mut cursor = ManifestCursor::new(ManifestReader::new(&backend, &refs));
        assert!(cursor.find(b"").unwrap().is_some());
        assert!(cursor.find(b"a").unwrap().is_some());
        assert_eq!(cursor.find(b"a/x").unwrap().unwrap().path, b"a/x");
        assert!(cursor.find(b"a/y").unwrap().is_none());
        assert_eq!(cursor.find(b"n\xffme").unwrap().unwrap().size, 100);
        assert!(cursor.find(b"z").unwrap().is_none());
    }

    #[test]
    fn entries_a_walk_cannot_produce_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let mut root = file_entry(b"", 10);
        root.kind = EntryKind::Directory;
        root.extents.clear();
        root.size = 0;
        let mut link = file_entry(b"a", 10);
        link.kind = EntryKind::Symlink;
        link.extents.clear();
        let cases: Vec<Vec<ManifestEntry>> = vec![
            vec![root.clone(), file_entry(b"../escape", 10)],
            vec![root.clone(), file_entry(b"x/./y", 10)],
            vec![root.clone(), link, file_entry(b"a/through-symlink", 10)],
            vec![file_entry(b"no-root-first", 10)],
            vec![root.clone(), file_entry(b"b", 10), file_entry(b"a", 10)],
        ];
        for entries in cases {
            let mut builder = SegmentBuilder::new();
            for entry in &entries {
                builder.push(entry);
            }
            let (reference, stored) = builder.finish(None, 1);
            backend.put(&reference.object, &stored).unwrap();
            let refs = [reference];
            let read: Result<Vec<_>, _> = ManifestReader::new(&backend, &refs).collect();
            let err = read.unwrap_err();
            assert!(err.to_string().contains(&refs[0].object), "{err}");
        }
    }

    #[test]
    fn truncated_or_garbage_segments_are_named() {
        let mut builder = SegmentBuilder::new();
        builder.push(&file_entry(b"f", 20));
        let (reference, stored) = builder.finish(None, 1);
        let err = decode_segment(None, &reference, &stored[..stored.len() / 2]).unwrap_err();
        assert!(err.to_string().contains(&reference.object), "{err}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for len in [0usize, 8, 9, 64, 1000] {
            for _ in 0..100 {
                let mut garbage = vec![0u8; len];
                rng.fill(&mut garbage[..]);
                if len >= 8 {
                    garbage[..8].copy_from_slice(SEGMENT_MAGIC);
                }
                let mut dec = Decoder::new(&garbage[8.min(len)..]);
                while !dec.is_empty() {
                    if decode_entry(&mut dec).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
