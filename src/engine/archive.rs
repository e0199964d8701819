//! Archived log segments in a destination: one object per segment, `archive/<tenant_id>/<name>`,
//! named by the segment's own name so that `archive-get` finds it without an index.
//!
//! ```text
//! object = "BKSTSEG1" codec:u8 size:u64le close_scn:i64le blake3:[32] payload
//! ```
//! `codec` 0 stores the segment as it was, 1 as one zstd frame (used only when it saves space).
//! `blake3` is the hash of the segment's original bytes (keyed, in an encrypted repository),
//! checked on every read; in an encrypted repository the payload is sealed with the header as
//! associated data, so the header cannot be changed unnoticed either; `close_scn` is
//! when the segment was closed, in nanoseconds since the Unix epoch, so a destination alone says
//! which segments restore the log up to a time.

use tokio_util::sync::CancellationToken;

use crate::storage::{Backend, StorageError};

use super::crypto::{Sealer, chunk_id};
use super::error::EngineError;

const MAGIC: &[u8; 8] = b"BKSTSEG1";
const HEADER_LEN: usize = 8 + 1 + 8 + 8 + 32;
/// No log segment is larger (PostgreSQL's WAL segments are at most 1 GiB; a segment is archived
/// from memory): a header claiming more is damage, never an allocation.
const MAX_SEGMENT_SIZE: u64 = 4 << 30;
const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// What the header of an archived segment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub size: u64,
    pub close_scn: i64,
    pub hash: [u8; 32],
}

impl SegmentHeader {
    pub fn hash_hex(&self) -> String {
        blake3::Hash::from_bytes(self.hash).to_hex().to_string()
    }
}

/// Where a tenant's segment lives in the destination.
pub fn segment_object(tenant_id: i64, name: &str) -> String {
    format!("archive/{tenant_id}/{name}")
}

/// Whether `name` can name a segment: a plain file name, no path, not hidden.
pub fn valid_segment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\0')
}

/// Compresses, checksums and stores one segment; it is durable when this returns. Returns the
/// header and the number of bytes stored.
pub fn put_segment(
    backend: &dyn Backend,
    tenant_id: i64,
    name: &str,
    data: &[u8],
    close_scn: i64,
    level: i32,
) -> Result<(SegmentHeader, u64), EngineError> {
    let header = SegmentHeader {
        size: data.len() as u64,
        close_scn,
        hash: chunk_id(backend.sealer(), data).0,
    };
    let compressed = if level > 0 {
        zstd::bulk::compress(data, level).ok()
    } else {
        None
    };
    let (codec, payload) = match &compressed {
        Some(c) if c.len() < data.len() => (ZSTD, c.as_slice()),
        _ => (RAW, data),
    };
    let mut object = Vec::with_capacity(HEADER_LEN + payload.len());
    object.extend_from_slice(MAGIC);
    object.push(codec);
    object.extend_from_slice(&header.size.to_le_bytes());
    object.extend_from_slice(&header.close_scn.to_le_bytes());
    object.extend_from_slice(&header.hash);
    match backend.sealer() {
        Some(sealer) => {
            let head = object.clone();
            sealer.seal_append(payload, &head, &mut object);
        }
        None => object.extend_from_slice(payload),
    }
    backend.put(&segment_object(tenant_id, name), &object)?;
    Ok((header, object.len() as u64))
}

/// Reads one segment back, verified against its hash.
pub fn get_segment(
    backend: &dyn Backend,
    tenant_id: i64,
    name: &str,
) -> Result<(SegmentHeader, Vec<u8>), EngineError> {
    let object_name = segment_object(tenant_id, name);
    let object = read_object(backend, &object_name)?;
    decode_segment(backend.sealer(), &object_name, &object)
}

/// Copies one archived segment to another destination, checked on the way (its checksum must
/// hold). Returns the bytes sent, 0 when the destination already held it. What the destination
/// holds is compared by its header's checksum, not its size: a segment kept beside a set made
/// `PLUS ARCHIVELOG` while it was still being written is the same size (a preallocated log
/// file) with other bytes when a later backup keeps it again. A header the destination cannot
/// read is sent over.
pub fn copy_segment(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant_id: i64,
    name: &str,
) -> Result<u64, EngineError> {
    let wanted = segment_header(from, tenant_id, name)?;
    send_segment(from, to, tenant_id, name, wanted.as_ref())
}

/// [`copy_segment`] with the source's header already read (`None`: the source lacks it, and the
/// read that follows says so).
fn send_segment(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant_id: i64,
    name: &str,
    wanted: Option<&SegmentHeader>,
) -> Result<u64, EngineError> {
    let object_name = segment_object(tenant_id, name);
    if let (Some(wanted), Ok(Some(held))) = (wanted, segment_header(to, tenant_id, name))
        && *wanted == held
    {
        return Ok(0);
    }
    let object = read_object(from, &object_name)?;
    decode_segment(from.sealer(), &object_name, &object)?;
    to.put(&object_name, &object)?;
    Ok(object.len() as u64)
}

/// Copies the log a set made `PLUS ARCHIVELOG` keeps beside it: every segment of the tenant in
/// `from` closed by `until` (the set's end, in nanoseconds since the Unix epoch), the segments a
/// restore of that set brings back. Each is checked on the way and durable in `to` when this
/// returns. Returns the segments sent and their stored bytes.
pub fn copy_kept_segments(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant_id: i64,
    until: i64,
    cancel: &CancellationToken,
) -> Result<(u64, u64), EngineError> {
    let (mut segments, mut bytes) = (0, 0);
    for (name, header) in list_segments(from, tenant_id)? {
        if header.close_scn > until {
            continue;
        }
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let sent = send_segment(from, to, tenant_id, &name, Some(&header))?;
        if sent > 0 {
            segments += 1;
            bytes += sent;
        }
    }
    Ok((segments, bytes))
}

/// What a validation expects of an archived segment: what the catalog recorded when it was
/// archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSegment {
    pub name: String,
    pub stored_size: u64,
    /// BLAKE3 of the original bytes, in hex.
    pub hash: String,
}

/// Checks one archived segment: at `Basic` level that it exists with the recorded size and a
/// header carrying the recorded checksum, at `Physical` level also that every byte decodes to
/// that checksum. Returns the problem found, or `None` when the segment is intact; storage
/// failures (a destination that is gone) are errors, not damage.
pub fn check_segment(
    backend: &dyn Backend,
    tenant_id: i64,
    expected: &ExpectedSegment,
    physical: bool,
) -> Result<Option<String>, EngineError> {
    let object_name = segment_object(tenant_id, &expected.name);
    let Some(size) = backend.size(&object_name)? else {
        return Ok(Some("missing".into()));
    };
    if size != expected.stored_size {
        return Ok(Some(format!(
            "{size} bytes where {} were archived",
            expected.stored_size
        )));
    }
    let checked = if physical {
        read_object(backend, &object_name)
            .and_then(|o| decode_segment(backend.sealer(), &object_name, &o))
    } else {
        backend
            .get_range(&object_name, 0, HEADER_LEN)
            .map_err(EngineError::from)
            .and_then(|head| parse_header(&object_name, &head))
            .map(|(_, header)| (header, Vec::new()))
    };
    match checked {
        Ok((header, _)) if header.hash_hex() == expected.hash => Ok(None),
        Ok(_) => Ok(Some(
            "its checksum is not the one the catalog recorded".into(),
        )),
        Err(EngineError::CorruptObject { detail, .. }) => Ok(Some(detail)),
        Err(e) => Err(e),
    }
}

fn read_object(backend: &dyn Backend, object_name: &str) -> Result<Vec<u8>, EngineError> {
    match backend.get(object_name) {
        Ok(object) => Ok(object),
        Err(StorageError::NotFound { .. }) => Err(EngineError::corrupt(
            object_name,
            "missing: the archive does not hold this segment",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Decodes a stored archived segment (header, then payload), checked against its checksum.
pub fn decode_segment(
    sealer: Option<&Sealer>,
    object_name: &str,
    object: &[u8],
) -> Result<(SegmentHeader, Vec<u8>), EngineError> {
    let (codec, header) = parse_header(object_name, object)?;
    if header.size > MAX_SEGMENT_SIZE {
        return Err(EngineError::corrupt(
            object_name,
            format!(
                "its header claims {} bytes, more than any segment",
                header.size
            ),
        ));
    }
    let (head, payload) = object.split_at(HEADER_LEN);
    let payload = match sealer {
        Some(sealer) => std::borrow::Cow::Owned(sealer.open(object_name, payload, head)?),
        None => std::borrow::Cow::Borrowed(payload),
    };
    let data = match codec {
        RAW => payload.into_owned(),
        // Streamed, so memory follows what the frame really holds, never what the header says.
        _ => {
            use std::io::Read;
            let mut data = Vec::new();
            zstd::stream::read::Decoder::new(&payload[..])
                .and_then(|d| d.take(header.size + 1).read_to_end(&mut data))
                .map_err(|e| {
                    EngineError::corrupt(object_name, format!("cannot decompress: {e}"))
                })?;
            data
        }
    };
    if data.len() as u64 != header.size || chunk_id(sealer, &data).0 != header.hash {
        return Err(EngineError::corrupt(
            object_name,
            "its content does not match the checksum it was archived with",
        ));
    }
    Ok((header, data))
}

/// The header of a segment the destination holds, or `None`.
pub fn segment_header(
    backend: &dyn Backend,
    tenant_id: i64,
    name: &str,
) -> Result<Option<SegmentHeader>, EngineError> {
    let object = segment_object(tenant_id, name);
    match backend.get_range(&object, 0, HEADER_LEN) {
        Ok(head) => parse_header(&object, &head).map(|(_, h)| Some(h)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every segment of a tenant in the destination with its header, in name order: what a server
/// without the catalog needs to restore the log up to a time.
pub fn list_segments(
    backend: &dyn Backend,
    tenant_id: i64,
) -> Result<Vec<(String, SegmentHeader)>, EngineError> {
    let mut found = Vec::new();
    for name in segment_names(backend, tenant_id)? {
        let object = segment_object(tenant_id, &name);
        let head = backend.get_range(&object, 0, HEADER_LEN)?;
        let (_, header) = parse_header(&object, &head)?;
        found.push((name, header));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The names of every segment of a tenant in the destination, in no order: one listing, no
/// reads.
pub fn segment_names(backend: &dyn Backend, tenant_id: i64) -> Result<Vec<String>, EngineError> {
    let prefix = segment_object(tenant_id, "");
    Ok(backend
        .list(&prefix)?
        .into_iter()
        .map(|info| info.name[prefix.len()..].to_string())
        .collect())
}

fn parse_header(object: &str, bytes: &[u8]) -> Result<(u8, SegmentHeader), EngineError> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(EngineError::corrupt(
            object,
            "not an archived log segment (bad header)",
        ));
    }
    let codec = bytes[8];
    if codec != RAW && codec != ZSTD {
        return Err(EngineError::corrupt(
            object,
            format!("unknown codec {codec}"),
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[25..57]);
    Ok((
        codec,
        SegmentHeader {
            size: u64_at(9),
            close_scn: u64_at(17) as i64,
            hash,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `archived_segment` fuzz target: a header claiming 236 GiB made the decoder
    /// allocate that much up front, and the allocation failure aborted the whole server.
    #[test]
    fn a_header_claiming_a_huge_size_is_damage_not_an_allocation() {
        let crash: &[u8] = &[
            66, 75, 83, 84, 83, 69, 71, 49, 1, 0, 0, 0, 0, 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 45, 0, 0, 0, 0,
            0, 87, 0, 0, 10,
        ];
        let err = decode_segment(None, "archive/1/seg", crash).unwrap_err();
        assert!(matches!(err, EngineError::CorruptObject { .. }), "{err}");
        // A zstd frame that inflates far past its header's size stops one byte past it.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
        let mut object = b"BKSTSEG1".to_vec();
        object.push(ZSTD);
        object.extend_from_slice(&1000u64.to_le_bytes());
        object.extend_from_slice(&0i64.to_le_bytes());
        object.extend_from_slice(&[0u8; 32]);
        object.extend_from_slice(&bomb);
        let err = decode_segment(None, "archive/1/bomb", &object).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
    use crate::storage::LocalBackend;

    #[test]
    fn segments_round_trip_compressed_or_raw_and_are_listed_with_their_times() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let text = b"log line\n".repeat(10_000);
        let noise: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (h1, stored1) = put_segment(&backend, 7, "000001", &text, 100, 1).unwrap();
        assert!(stored1 < text.len() as u64 / 10, "text compresses");
        put_segment(&backend, 7, "000002", &noise, 200, 1).unwrap();
        assert_eq!(
            get_segment(&backend, 7, "000001").unwrap(),
            (h1.clone(), text.clone())
        );
        assert_eq!(get_segment(&backend, 7, "000002").unwrap().1, noise);
        let listed = list_segments(&backend, 7).unwrap();
        let names: Vec<(&str, i64)> = listed
            .iter()
            .map(|(n, h)| (n.as_str(), h.close_scn))
            .collect();
        assert_eq!(names, vec![("000001", 100), ("000002", 200)]);
        assert!(list_segments(&backend, 8).unwrap().is_empty());
    }

    #[test]
    fn damaged_or_missing_segments_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        put_segment(&backend, 1, "a", &b"x".repeat(1000), 5, 1).unwrap();
        let path = dir.path().join("archive/1/a");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = get_segment(&backend, 1, "a").unwrap_err().to_string();
        assert!(err.contains("archive/1/a"), "{err}");
        let err = get_segment(&backend, 1, "b").unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn checks_find_missing_resized_and_flipped_segments() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        let mut expected = Vec::new();
        for name in ["s1", "s2", "s3", "s4"] {
            let data = format!("{name} ").repeat(5000).into_bytes();
            let (header, stored) = put_segment(&backend, 3, name, &data, 1, 1).unwrap();
            expected.push(ExpectedSegment {
                name: name.into(),
                stored_size: stored,
                hash: header.hash_hex(),
            });
        }
        let check = |e: &ExpectedSegment, physical| check_segment(&backend, 3, e, physical);
        assert_eq!(check(&expected[0], true).unwrap(), None);
        std::fs::remove_file(dir.path().join("archive/3/s2")).unwrap();
        assert_eq!(
            check(&expected[1], false).unwrap().as_deref(),
            Some("missing")
        );
        let path = dir.path().join("archive/3/s3");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(
            check(&expected[2], false)
                .unwrap()
                .unwrap()
                .contains("bytes where")
        );
        // A flipped payload byte passes the basic check and fails the physical one.
        let path = dir.path().join("archive/3/s4");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(check(&expected[3], false).unwrap(), None);
        assert!(check(&expected[3], true).unwrap().is_some());
    }

    #[test]
    fn kept_segments_are_copied_up_to_the_set_end_and_again_only_when_their_bytes_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("from")).unwrap();
        std::fs::create_dir_all(dir.path().join("to")).unwrap();
        let from = LocalBackend::new(dir.path().join("from"));
        let to = LocalBackend::new(dir.path().join("to"));
        let cancel = CancellationToken::new();
        put_segment(&from, 7, "s1", &[1u8; 4096], 100, 1).unwrap();
        put_segment(&from, 7, "s2", &[2u8; 4096], 200, 1).unwrap();
        put_segment(&from, 7, "s3", &[3u8; 4096], 300, 1).unwrap();
        // A segment damaged in the source is refused, not copied.
        put_segment(&from, 7, "s0", &[9u8; 4096], 50, 0).unwrap();
        let damaged = dir.path().join("from/archive/7/s0");
        let mut bytes = std::fs::read(&damaged).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&damaged, bytes).unwrap();
        let err = copy_kept_segments(&from, &to, 7, 200, &cancel).unwrap_err();
        assert!(err.to_string().contains("archive/7/s0"), "{err}");
        std::fs::remove_file(&damaged).unwrap();

        let (sent, _) = copy_kept_segments(&from, &to, 7, 200, &cancel).unwrap();
        assert_eq!(sent, 2, "s1 and s2 are closed by the end, s3 is not");
        assert_eq!(get_segment(&to, 7, "s2").unwrap().1, vec![2u8; 4096]);
        assert_eq!(segment_header(&to, 7, "s3").unwrap(), None);
        assert_eq!(
            copy_kept_segments(&from, &to, 7, 200, &cancel).unwrap().0,
            0
        );
        // s2 kept again by a later backup with other bytes of the same length goes over again.
        put_segment(&from, 7, "s2", &[5u8; 4096], 200, 1).unwrap();
        assert_eq!(
            copy_kept_segments(&from, &to, 7, 200, &cancel).unwrap().0,
            1
        );
        assert_eq!(get_segment(&to, 7, "s2").unwrap().1, vec![5u8; 4096]);
        cancel.cancel();
        put_segment(&from, 7, "s1", &[6u8; 4096], 100, 1).unwrap();
        assert!(matches!(
            copy_kept_segments(&from, &to, 7, 200, &cancel),
            Err(EngineError::Cancelled)
        ));
    }

    #[test]
    fn segment_names_are_plain_file_names() {
        assert!(valid_segment_name("000000010000000000000001"));
        assert!(!valid_segment_name("../x"));
        assert!(!valid_segment_name(".hidden"));
        assert!(!valid_segment_name(""));
    }
}
