//! Index files, named by their own hash so that decoding goes past the name check.
#![no_main]
use libfuzzer_sys::fuzz_target;

use backstop::engine::chunker::ContentId;
use backstop::engine::index::{decode_index, index_object_name};

fuzz_target!(|data: &[u8]| {
    let name = index_object_name(&ContentId::of(data));
    let _ = decode_index(None, &name, data);
});
