//! A byte buffer whose start is aligned for direct I/O (`O_DIRECT`): a destination can write
//! such a buffer's bytes to the disk without passing them through the page cache.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

/// The alignment direct I/O needs of a buffer's address, offset and length on the filesystems
/// we write to (their logical block size is at most this).
pub const DIRECT_ALIGN: usize = 4096;

/// A zero-filled buffer of `len` bytes starting on a [`DIRECT_ALIGN`] boundary.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its allocation outright, like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer; it allocates on the first [`AlignedBuf::reserve`].
    pub fn new() -> AlignedBuf {
        AlignedBuf {
            ptr: NonNull::<Page>::dangling().cast(),
            len: 0,
        }
    }

    /// Makes the buffer at least `len` bytes long (rounded up to whole pages); the bytes it held
    /// are not kept when it grows.
    pub fn reserve(&mut self, len: usize) {
        if len <= self.len {
            return;
        }
        let len = len.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        let layout = Layout::from_size_align(len, DIRECT_ALIGN).expect("a buffer size in range");
        // SAFETY: `layout` has a non-zero size (len > self.len >= 0 and rounded up to a page).
        let ptr = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout);
        };
        self.release();
        self.ptr = ptr;
        self.len = len;
    }

    fn release(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `reserve` with exactly this layout.
            unsafe {
                dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.len, DIRECT_ALIGN),
                )
            };
            self.len = 0;
        }
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf::new()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        self.release();
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes (dangling only when `len` is 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Only names the alignment for the empty buffer's dangling pointer.
#[repr(align(4096))]
struct Page;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_aligned_zeroed_and_grows() {
        let mut buf = AlignedBuf::new();
        assert!(buf.is_empty());
        buf.reserve(10);
        assert_eq!(buf.len(), DIRECT_ALIGN);
        let aligned = |buf: &AlignedBuf| (buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN);
        assert!(aligned(&buf) && buf.iter().all(|&b| b == 0));
        buf[0] = 7;
        buf.reserve(100);
        assert_eq!(buf[0], 7, "a reserve within the length keeps the bytes");
        buf.reserve(3 * DIRECT_ALIGN + 1);
        assert_eq!(buf.len(), 4 * DIRECT_ALIGN);
        assert!(aligned(&buf));
    }
}
