//! Content-defined chunking (FastCDC 2020) and BLAKE3 content ids.
//!
//! Cut points depend only on the bytes before them, so an insertion in a file moves the chunk
//! boundaries near it and nowhere else, and unchanged regions keep their chunk ids. Chunks are
//! 512 KiB to 4 MiB, about 1 MiB on average (the cut-point search skips the first 512 KiB
//! of each chunk, so a larger minimum means less hashing): large enough to keep per-chunk costs
//! (hashing calls, index entries, pack entries) small, small enough to deduplicate partly
//! changed files. The search is FastCDC's own, hashed in parallel lanes ([`super::fastcdc`]).

use std::fmt;

use fastcdc::v2020;

/// Smallest chunk, except the last one of a data region.
pub const MIN_CHUNK: usize = 512 * 1024;
/// Target average chunk size.
pub const AVG_CHUNK: usize = 1024 * 1024;
/// Largest chunk.
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// A BLAKE3 digest naming a chunk or a content-addressed object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// Stands for the id of a chunk whose hash a compression worker has yet to compute; the
    /// packer replaces it before the entry reaches a manifest.
    pub(crate) const UNRESOLVED: ContentId = ContentId([0; 32]);

    /// The id of `data`.
    pub fn of(data: &[u8]) -> ContentId {
        ContentId(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex, as used in object names.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<ContentId> {
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| ContentId(*h.as_bytes()))
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Finds chunk boundaries in a stream of bytes held in a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    mask_s: u64,
    mask_l: u64,
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker::new()
    }
}

impl Chunker {
    pub fn new() -> Chunker {
        // Normalization level 1, as FastCDC recommends: masks one bit harder below the average
        // size and one bit easier above it.
        let bits = v2020::logarithm2(AVG_CHUNK as u32) as usize;
        Chunker {
            mask_s: v2020::MASKS[bits + 1],
            mask_l: v2020::MASKS[bits - 1],
        }
    }

    /// The length of the chunk that starts at `data[0]`, or `None` when more bytes are needed
    /// to decide. With `at_end` the data is all there is and a chunk is always found.
    ///
    /// A cut found inside `data` is the cut the whole stream would give, however it was split
    /// into reads: FastCDC looks at each position with a mask that depends only on the
    /// position, and stops at the first match. Only when no position matched does it cut where
    /// the data ends, and that end is a real cut only at [`MAX_CHUNK`] or at the stream's end.
    pub fn next_cut(&self, data: &[u8], at_end: bool) -> Option<usize> {
        if data.is_empty() {
            return None;
        }
        let cut = super::fastcdc::cut(
            data,
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        let cut = cut.clamp(1, data.len());
        (cut < data.len() || at_end || data.len() >= MAX_CHUNK).then_some(cut)
    }
}

/// Whether every byte of `data` is zero (such chunks are stored as holes, not as data).
pub fn is_zero(data: &[u8]) -> bool {
    static ZEROES: [u8; 4096] = [0; 4096];
    data.chunks(ZEROES.len())
        .all(|part| part == &ZEROES[..part.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn cut_all(chunker: &Chunker, data: &[u8]) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let len = chunker.next_cut(&data[pos..], true).unwrap();
            pos += len;
            cuts.push(pos);
        }
        cuts
    }

    /// `len` random bytes from `seed`, and the generator to draw more from.
    fn random_bytes(seed: u64, len: usize) -> (rand::rngs::StdRng, Vec<u8>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut data = vec![0u8; len];
        rng.fill(&mut data[..]);
        (rng, data)
    }

    #[test]
    fn cuts_resynchronise_after_an_insertion() {
        let (_, data) = random_bytes(7, 12 << 20);
        let chunker = Chunker::new();
        let before = cut_all(&chunker, &data);
        assert!(before.len() > 3);
        assert!(before.windows(2).all(|w| w[1] - w[0] <= MAX_CHUNK));
        let mut edited = data.clone();
        edited.splice(100..100, [1u8, 2, 3]);
        let after: Vec<usize> = cut_all(&chunker, &edited)
            .into_iter()
            .map(|c| c - 3)
            .collect();
        let common = before.iter().filter(|c| after.contains(c)).count();
        assert!(common >= before.len() - 2, "{before:?} vs {after:?}");
    }

    #[test]
    fn cuts_do_not_depend_on_how_the_stream_was_read() {
        let (mut rng, data) = random_bytes(11, 24 << 20);
        let chunker = Chunker::new();
        let whole = cut_all(&chunker, &data);
        // A reader that holds what it has not cut yet and adds reads of random sizes.
        let (mut cuts, mut head, mut filled) = (Vec::new(), 0usize, 0usize);
        while head < data.len() {
            let at_end = filled == data.len();
            match chunker.next_cut(&data[head..filled], at_end) {
                Some(len) => {
                    head += len;
                    cuts.push(head);
                }
                None => filled = (filled + rng.random_range(1..3 << 20)).min(data.len()),
            }
        }
        assert_eq!(cuts, whole);
    }

    #[test]
    fn more_data_is_asked_for_only_when_needed() {
        let chunker = Chunker::new();
        let data = vec![5u8; 1000];
        assert_eq!(chunker.next_cut(&data, false), None);
        assert_eq!(chunker.next_cut(&data, true), Some(1000));
        let long = vec![5u8; MAX_CHUNK + 10];
        assert_eq!(chunker.next_cut(&long[..MAX_CHUNK - 1], false), None);
        assert_eq!(chunker.next_cut(&long, false), Some(MAX_CHUNK));
        assert!(is_zero(&[0u8; 10000]));
        assert!(!is_zero(&[0, 0, 1]));
    }
}
