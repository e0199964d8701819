//! Set descriptors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backstop::engine::set::decode_set(None, "sets/1/1.set", data);
});
