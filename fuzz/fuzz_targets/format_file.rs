//! The format file and the key slots, the only objects read before a key is known.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backstop::engine::format::decode_format("file:///fuzz", data);
    let _ = serde_json::from_slice::<backstop::engine::crypto::KeySlot>(data);
});
