//! Page checksums of PostgreSQL relation files, verified while a backup reads them.
//!
//! The algorithm is PostgreSQL's (`src/include/storage/checksum_impl.h`): 32 parallel FNV-1a
//! style sums over the 8 KiB page read as 32-bit words, with the checksum field taken as zero,
//! folded, mixed with the block number and reduced to 1..=65535. A page is accepted, as
//! PostgreSQL's own `PageIsVerified` does, when it is all zeroes (never initialised), or when its
//! stored checksum matches. A page whose LSN is at or past the backup's start LSN is not
//! judged: it was written during the backup, may be torn in the copy, and recovery replays it
//! from the full-page image the WAL holds for it.

/// PostgreSQL's block size (the packages' default; `SHOW block_size`).
pub const PAGE: usize = 8192;
/// Blocks per segment file of a relation (1 GiB files; `RELSEG_SIZE`).
pub const SEGMENT_BLOCKS: u64 = 131_072;

const N_SUMS: usize = 32;
const FNV_PRIME: u32 = 16_777_619;
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

#[inline(always)]
fn mix(sum: u32, value: u32) -> u32 {
    let tmp = sum ^ value;
    tmp.wrapping_mul(FNV_PRIME) ^ (tmp >> 17)
}

/// The checksum PostgreSQL stores in the header of block `block` holding `page`.
pub fn page_checksum(page: &[u8], block: u32) -> u16 {
    debug_assert_eq!(page.len(), PAGE);
    let mut sums = BASE_OFFSETS;
    for (row, words) in page.chunks_exact(4 * N_SUMS).enumerate() {
        for (j, sum) in sums.iter_mut().enumerate() {
            let at = 4 * j;
            let mut word =
                u32::from_le_bytes([words[at], words[at + 1], words[at + 2], words[at + 3]]);
            // The checksum field (bytes 8..10 of the page) counts as zero.
            if row == 0 && j == 2 {
                word &= 0xFFFF_0000;
            }
            *sum = mix(*sum, word);
        }
    }
    for _ in 0..2 {
        for sum in sums.iter_mut() {
            *sum = mix(*sum, 0);
        }
    }
    let folded = sums.iter().fold(0u32, |acc, s| acc ^ s) ^ block;
    ((folded % 65535) + 1) as u16
}

/// The page's LSN (`pd_lsn`: high word, then low word, each in the machine's order).
pub fn page_lsn(page: &[u8]) -> u64 {
    let high = u32::from_le_bytes([page[0], page[1], page[2], page[3]]) as u64;
    let low = u32::from_le_bytes([page[4], page[5], page[6], page[7]]) as u64;
    (high << 32) | low
}

/// Whether a backup may store `page` (block `block` of its relation) as it read it.
pub fn page_is_sound(page: &[u8], block: u32, start_lsn: u64) -> bool {
    let upper = u16::from_le_bytes([page[14], page[15]]);
    if upper == 0 {
        // A new page must be all zeroes.
        return page.iter().all(|&b| b == 0);
    }
    if page_lsn(page) >= start_lsn {
        return true;
    }
    let stored = u16::from_le_bytes([page[8], page[9]]);
    stored == page_checksum(page, block)
}

/// Checks the pages of one relation file as its bytes stream past, in any slices and with holes
/// (which read as zero pages, always sound). Pages that fail are remembered by block number, to
/// be read once more before they are reported (a page being written can be torn in one read).
#[derive(Debug)]
pub struct PageVerifier {
    start_lsn: u64,
    first_block: u64,
    /// Bytes of the page being assembled.
    page: Vec<u8>,
    /// File offset of the next byte expected.
    pos: u64,
    suspects: Vec<u64>,
}

impl PageVerifier {
    /// A verifier for segment `segment` of a relation file, for a backup that started at
    /// `start_lsn`.
    pub fn new(segment: u32, start_lsn: u64) -> PageVerifier {
        PageVerifier {
            start_lsn,
            first_block: segment as u64 * SEGMENT_BLOCKS,
            page: Vec::with_capacity(PAGE),
            pos: 0,
            suspects: Vec::new(),
        }
    }

    /// Feeds the bytes read at `offset`.
    pub fn feed(&mut self, offset: u64, mut data: &[u8]) {
        if offset > self.pos {
            self.skip_to(offset);
        }
        if offset < self.pos {
            // Read again from an earlier offset: a new read of the file starts over.
            self.page.clear();
            self.pos = offset - offset % PAGE as u64;
            let behind = (offset - self.pos) as usize;
            if behind > 0 {
                // The start of this page was not fed: it cannot be judged.
                let skip = (PAGE - behind).min(data.len());
                data = &data[skip..];
                self.pos = offset + skip as u64;
            }
        }
        while !data.is_empty() {
            let take = (PAGE - self.page.len()).min(data.len());
            self.page.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.pos += take as u64;
            if self.page.len() == PAGE {
                let block = self.pos / PAGE as u64 - 1;
                self.judge(block);
                self.page.clear();
            }
        }
    }

    /// A hole up to `offset`: its pages read as zeroes.
    fn skip_to(&mut self, offset: u64) {
        if !self.page.is_empty() {
            let fill = (PAGE - self.page.len()).min((offset - self.pos) as usize);
            self.page.resize(self.page.len() + fill, 0);
            self.pos += fill as u64;
            if self.page.len() == PAGE {
                let block = self.pos / PAGE as u64 - 1;
                self.judge(block);
                self.page.clear();
            }
        }
        if offset > self.pos {
            let page_start = offset - offset % PAGE as u64;
            if page_start > self.pos {
                self.pos = page_start;
            }
            let lead = (offset - self.pos) as usize;
            self.page.resize(lead, 0);
            self.pos = offset;
        }
    }

    fn judge(&mut self, block_in_file: u64) {
        let block = self.first_block + block_in_file;
        if !page_is_sound(&self.page, block as u32, self.start_lsn) {
            self.suspects.push(block_in_file);
        }
    }

    /// The blocks (numbered within this file) that failed their check; a trailing partial page
    /// is not judged (the file is being extended).
    pub fn suspects(&self) -> &[u64] {
        &self.suspects
    }

    /// Block `block_in_file` read again: whether it now passes.
    pub fn passes_on_reread(&self, block_in_file: u64, page: &[u8]) -> bool {
        page.len() == PAGE
            && page_is_sound(
                page,
                (self.first_block + block_in_file) as u32,
                self.start_lsn,
            )
    }

    /// The block number PostgreSQL gives `block_in_file` (counted across segment files).
    pub fn relation_block(&self, block_in_file: u64) -> u64 {
        self.first_block + block_in_file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with_checksum(block: u32, lsn: u64) -> Vec<u8> {
        let mut page = vec![0u8; PAGE];
        page[0..4].copy_from_slice(&((lsn >> 32) as u32).to_le_bytes());
        page[4..8].copy_from_slice(&(lsn as u32).to_le_bytes());
        page[12..14].copy_from_slice(&24u16.to_le_bytes());
        page[14..16].copy_from_slice(&8000u16.to_le_bytes());
        for (i, b) in page.iter_mut().enumerate().skip(8000) {
            *b = (i % 251) as u8;
        }
        let sum = page_checksum(&page, block);
        page[8..10].copy_from_slice(&sum.to_le_bytes());
        page
    }

    #[test]
    fn the_checksum_ignores_its_own_field_and_depends_on_the_block() {
        let page = page_with_checksum(7, 0x1_0000_0000);
        let mut other = page.clone();
        other[8] ^= 0xFF;
        assert_eq!(page_checksum(&page, 7), page_checksum(&other, 7));
        assert_ne!(page_checksum(&page, 7), page_checksum(&page, 8));
        assert!(page_is_sound(&page, 7, u64::MAX));
        assert!(!page_is_sound(&page, 8, u64::MAX));
    }

    #[test]
    fn damaged_pages_are_found_in_any_slicing_and_late_pages_are_not_judged() {
        let start_lsn = 0x2_0000_0000;
        let mut file = Vec::new();
        for block in 0..4u32 {
            file.extend(page_with_checksum(block, 0x1_0000_0000));
        }
        file[2 * PAGE + 100] ^= 1; // block 2 damaged
        let mut late = page_with_checksum(3, start_lsn + 5);
        late[5000] ^= 1; // damaged, but written after the start: recovery replays it
        file[3 * PAGE..].copy_from_slice(&late);
        for slice in [1, 100, 4096, PAGE, 3 * PAGE + 7, file.len()] {
            let mut verifier = PageVerifier::new(0, start_lsn);
            for (i, part) in file.chunks(slice).enumerate() {
                verifier.feed((i * slice) as u64, part);
            }
            assert_eq!(verifier.suspects(), [2], "slices of {slice}");
        }
    }

    #[test]
    fn holes_are_zero_pages_and_segments_number_blocks_on() {
        let mut verifier = PageVerifier::new(1, u64::MAX);
        let block = SEGMENT_BLOCKS as u32 + 2;
        let page = page_with_checksum(block, 1);
        verifier.feed(2 * PAGE as u64, &page);
        assert!(verifier.suspects().is_empty());
        let mut wrong = PageVerifier::new(0, u64::MAX);
        wrong.feed(2 * PAGE as u64, &page);
        assert_eq!(wrong.suspects(), [2]);
        assert_eq!(wrong.relation_block(2), 2);
        assert_eq!(verifier.relation_block(2), SEGMENT_BLOCKS + 2);
    }
}
