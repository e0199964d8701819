//! The page-cache advice a destination and a restore give the kernel about files they wrote:
//! start writing a range back, wait until it is written, drop it from the cache. Each is only
//! advice: a failure changes memory use or timing, never the data, so none is reported.
//! A length of 0 means to the end of the file.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Queues the range's dirty pages for writing and returns (it may block while the disk's queue
/// is full).
pub fn start_writeback(file: &File, start: u64, len: u64) {
    sync_file_range(file, start, len, libc::SYNC_FILE_RANGE_WRITE);
}

/// Writes the range's dirty pages and waits until they are on disk. It writes no metadata and
/// flushes no device cache: it makes pages clean, it does not make them durable.
pub fn wait_written(file: &File, start: u64, len: u64) {
    sync_file_range(
        file,
        start,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
}

/// Drops the range's clean pages from the page cache (dirty ones stay).
pub fn drop_cached(file: &File, start: u64, len: u64) {
    // SAFETY: a plain syscall on a descriptor `file` owns for the call's duration.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            start as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
}

fn sync_file_range(file: &File, start: u64, len: u64, flags: libc::c_uint) {
    // SAFETY: a plain syscall on a descriptor `file` owns for the call's duration.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            start as libc::off64_t,
            len as libc::off64_t,
            flags,
        )
    };
}
