//! Archived log segments: header, codec, payload and checksum.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backstop::engine::archive::decode_segment(None, "archive/1/seg", data);
});
