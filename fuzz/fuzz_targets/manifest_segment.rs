//! Manifest segments: the first byte chooses whether the rest is taken as stored bytes or as
//! entries (compressed here, so that decoding reaches the entry decoder); the reference's
//! counts come from the input too.
#![no_main]
use libfuzzer_sys::fuzz_target;

use backstop::engine::chunker::ContentId;
use backstop::engine::manifest::{SegmentRef, decode_segment};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stored = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut raw = b"BKSTMS01".to_vec();
        raw.extend_from_slice(rest);
        zstd::bulk::compress(&raw, 1).unwrap()
    };
    let reference = SegmentRef {
        object: format!("manifests/{}.seg", ContentId::of(&stored).to_hex()),
        stored_size: stored.len() as u64,
        raw_size: (mode as u64) << 12,
        entries: (mode >> 1) as u64,
    };
    let _ = decode_segment(None, &reference, &stored);
});
