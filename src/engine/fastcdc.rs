//! FastCDC 2020's cut-point search, giving exactly the cuts of `fastcdc::v2020::cut` at about
//! twice its speed.
//!
//! The gear hash is `h = (h << 1) + GEAR[byte]`, one dependent shift-add per byte, so a single
//! scan runs at the latency of that chain and leaves most of the core idle. But a 64-bit hash
//! forgets a byte 64 bytes after it: the hash at any position is a function of the 64 bytes
//! before it (or of the bytes since the search began, nearer its start). So the search is split
//! into [`LANES`] segments hashed side by side, each warmed up on the 64 bytes before it; a block
//! where any lane matches is then scanned again by one exact scan, which finds the first match.
//! The reference makes its check at even positions on the hash shifted left once, with the mask
//! shifted left once: the same as checking the hash itself with that mask shifted back.

use std::sync::OnceLock;

/// Segments hashed side by side.
const LANES: usize = 4;
/// Bytes of each segment: a block of `LANES * LANE` bytes is scanned twice when it holds a cut,
/// so the second scan costs about a sixtieth of an average chunk's search.
const LANE: usize = 8 * 1024;
/// Bytes a 64-bit gear hash depends on.
const WINDOW: usize = 64;

fn gear() -> &'static [u64; 256] {
    static GEAR: OnceLock<Box<[u64; 256]>> = OnceLock::new();
    GEAR.get_or_init(|| fastcdc::v2020::get_gear_with_seed(0).0)
}

/// The masks of one size region: `even` checks positions `start + 2k`, `odd` the others.
#[derive(Clone, Copy)]
struct Masks {
    even: u64,
    odd: u64,
}

/// The length of the chunk at the start of `src`, with the arguments and the result of
/// `fastcdc::v2020::cut` (its hash aside).
#[allow(clippy::too_many_arguments)]
pub fn cut(
    src: &[u8],
    min_size: usize,
    avg_size: usize,
    max_size: usize,
    mask_s: u64,
    mask_l: u64,
    mask_s_ls: u64,
    mask_l_ls: u64,
) -> usize {
    let mut remaining = src.len();
    if remaining <= min_size {
        return remaining;
    }
    let mut center = avg_size;
    if remaining > max_size {
        remaining = max_size;
    } else if remaining < center {
        center = remaining;
    }
    // The reference steps two bytes at a time from min_size / 2 * 2, switching masks and
    // stopping at pair boundaries.
    let start = min_size / 2 * 2;
    let mid = (center / 2 * 2).max(start);
    let end = (remaining / 2 * 2).max(mid);
    let small = Masks {
        even: mask_s_ls >> 1,
        odd: mask_s,
    };
    let large = Masks {
        even: mask_l_ls >> 1,
        odd: mask_l,
    };
    search(src, start, start, mid, small)
        .or_else(|| search(src, start, mid, end, large))
        .unwrap_or(remaining)
}

/// The first match in `[lo, hi)` (an even number of bytes) of a search that began at `start`.
fn search(src: &[u8], start: usize, lo: usize, hi: usize, masks: Masks) -> Option<usize> {
    let gear = gear();
    let mut at = lo;
    while hi - at >= LANES * LANE {
        if block_matches(src, start, at, masks, gear) {
            return scan(src, start, at, at + LANES * LANE, masks, gear);
        }
        at += LANES * LANE;
    }
    scan(src, start, at, hi, masks, gear)
}

/// The hash of the bytes that position `at` depends on, as the search that began at `start`
/// has it just before hashing `src[at]`.
#[inline]
fn warmed_hash(src: &[u8], start: usize, at: usize, gear: &[u64; 256]) -> u64 {
    let from = at.saturating_sub(WINDOW).max(start);
    src[from..at]
        .iter()
        .fold(0u64, |h, &b| (h << 1).wrapping_add(gear[b as usize]))
}

/// One exact scan of `[lo, hi)`: the first position that matches.
fn scan(
    src: &[u8],
    start: usize,
    lo: usize,
    hi: usize,
    masks: Masks,
    gear: &[u64; 256],
) -> Option<usize> {
    let mut h = warmed_hash(src, start, lo, gear);
    for (pair, bytes) in src[lo..hi].chunks_exact(2).enumerate() {
        h = (h << 1).wrapping_add(gear[bytes[0] as usize]);
        if h & masks.even == 0 {
            return Some(lo + 2 * pair);
        }
        h = (h << 1).wrapping_add(gear[bytes[1] as usize]);
        if h & masks.odd == 0 {
            return Some(lo + 2 * pair + 1);
        }
    }
    None
}

/// Whether any position in the `LANES * LANE` bytes from `at` matches.
#[inline]
fn block_matches(src: &[u8], start: usize, at: usize, masks: Masks, gear: &[u64; 256]) -> bool {
    let mut h: [u64; LANES] =
        std::array::from_fn(|lane| warmed_hash(src, start, at + lane * LANE, gear));
    let segments: [&[u8]; LANES] =
        std::array::from_fn(|lane| &src[at + lane * LANE..at + (lane + 1) * LANE]);
    for i in (0..LANE).step_by(2) {
        let mut miss = true;
        for lane in 0..LANES {
            h[lane] = (h[lane] << 1).wrapping_add(gear[segments[lane][i] as usize]);
            miss &= h[lane] & masks.even != 0;
            h[lane] = (h[lane] << 1).wrapping_add(gear[segments[lane][i + 1] as usize]);
            miss &= h[lane] & masks.odd != 0;
        }
        if !miss {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastcdc::v2020;
    use rand::{Rng, SeedableRng};

    const MIN: usize = 512 * 1024;
    const AVG: usize = 1024 * 1024;
    const MAX: usize = 4 * 1024 * 1024;

    fn masks(avg: usize) -> (u64, u64) {
        let bits = v2020::logarithm2(avg as u32) as usize;
        (v2020::MASKS[bits + 1], v2020::MASKS[bits - 1])
    }

    /// Every cut of `data`, by this search and by the reference, must be the same.
    fn assert_same_cuts(data: &[u8], min: usize, avg: usize, max: usize) {
        let (s, l) = masks(avg);
        let mut pos = 0;
        while pos < data.len() {
            let ours = cut(&data[pos..], min, avg, max, s, l, s << 1, l << 1);
            let (_, theirs) = v2020::cut(&data[pos..], min, avg, max, s, l, s << 1, l << 1);
            assert_eq!(ours, theirs, "cut at {pos} of {}", data.len());
            pos += ours.max(1);
        }
    }

    #[test]
    fn the_gear_tables_are_what_the_even_check_assumes() {
        let (gear, gear_ls) = v2020::get_gear_with_seed(0);
        assert!(gear.iter().zip(gear_ls.iter()).all(|(g, ls)| g << 1 == *ls));
    }

    #[test]
    fn cuts_are_the_reference_cuts_on_random_data() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut data = vec![0u8; 40 << 20];
        rng.fill(&mut data[..]);
        assert_same_cuts(&data, MIN, AVG, MAX);
        // Odd sizes and small chunks exercise every boundary: lanes, pairs, mask switch, ends.
        for (min, avg, max) in [(4097, 8192, 65537), (2048, 4096, 16384), (63, 256, 1025)] {
            assert_same_cuts(&data[..3 << 20], min, avg, max);
        }
        for len in [
            0,
            1,
            MIN - 1,
            MIN,
            MIN + 1,
            MIN + 63,
            MIN + 64,
            AVG - 1,
            AVG + 1,
            MAX + 1,
        ] {
            assert_same_cuts(&data[..len], MIN, AVG, MAX);
        }
    }

    #[test]
    fn cuts_are_the_reference_cuts_on_repetitive_data() {
        // Low-entropy data rarely matches: most chunks end at the maximum or at a rare pattern.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let words: [&[u8]; 4] = [b"backup ", b"restore ", b"    ", b"\0\0\0\0\0\0\0\0"];
        let mut data = Vec::with_capacity(30 << 20);
        while data.len() < 30 << 20 {
            data.extend_from_slice(words[rng.random_range(0..words.len())]);
        }
        assert_same_cuts(&data, MIN, AVG, MAX);
        assert_same_cuts(&vec![0u8; 9 << 20], MIN, AVG, MAX);
        assert_same_cuts(&data[..4 << 20], 4096, 16384, 65536);
    }
}
