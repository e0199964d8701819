//! Checkpoints.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backstop::engine::checkpoint::decode_checkpoint(None, "checkpoints/1/1.ckpt", data);
});
