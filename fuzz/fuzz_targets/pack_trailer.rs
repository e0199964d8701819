//! Pack trailers: garbage is an error naming the pack, never a panic or a huge allocation; a
//! blob the trailer lists decodes or is refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

use backstop::engine::pack::{decode_blob, read_pack_trailer};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = read_pack_trailer(None, "packs/00/fuzz.pack", data) else {
        return;
    };
    let mut decompressor = zstd::bulk::Decompressor::new().unwrap();
    for entry in entries.iter().take(64) {
        let start = entry.offset as usize;
        let Some(stored) = data.get(start..start + entry.length as usize) else {
            panic!("a trailer entry past the blobs was accepted: {entry:?}");
        };
        let _ = decode_blob(&mut decompressor, None, "packs/00/fuzz.pack", entry, stored);
    }
});
