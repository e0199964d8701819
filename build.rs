//! Link settings for the `backstop` executable.

fn main() {
    // Relative relocations packed as a bitmap (DT_RELR; glibc 2.36, binutils 2.38): the dynamic
    // loader reads about 50 KiB at start instead of a 5 MiB table that then stays resident.
    // Older linkers warn and ignore it.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}
