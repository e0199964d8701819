//! Direct I/O for large objects: written from our own memory straight to the disk.
//!
//! A buffered write copies every byte into freshly allocated page-cache pages, which the commit's
//! fsync then writes out anyway; for packs that copy was an eighth of a full backup's CPU. With
//! `O_DIRECT` the disk reads the pack from the writer's buffer instead. The kernel wants the
//! buffer, the file offset and the length aligned to the device's block, so packs are built in an
//! [`AlignedBuf`] and the last partial block is written padded, then the file is cut to its
//! length. Filesystems without direct I/O (tmpfs, some network mounts) refuse it when the file is
//! opened or first written; the object is then written the buffered way.

use std::alloc::{self, Layout};
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

/// Alignment of buffers, offsets and lengths for direct I/O: the largest block of the devices
/// we expect (4 KiB sectors), which also serves the 512-byte ones.
pub const DIRECT_ALIGN: usize = 4096;

/// Objects smaller than this are written the buffered way: for them the copy costs little and
/// the padding and the extra truncation would cost more.
pub const DIRECT_MIN: usize = 1 << 20;

/// A growable byte buffer whose memory starts at a [`DIRECT_ALIGN`] boundary.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer that allocates nothing until it is first filled.
    pub const fn new() -> AlignedBuf {
        AlignedBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Forgets the contents and keeps the memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for at least `additional` more bytes, moving the contents once if needed.
    pub fn reserve_exact(&mut self, additional: usize) {
        let needed = self
            .len
            .checked_add(additional)
            .expect("buffer size overflow");
        if needed <= self.cap {
            return;
        }
        let cap = needed.next_multiple_of(DIRECT_ALIGN);
        let layout = Layout::from_size_align(cap, DIRECT_ALIGN).expect("buffer layout");
        // SAFETY: the layout has a non-zero size (needed > cap >= 0).
        let fresh = unsafe { alloc::alloc(layout) };
        let Some(fresh) = NonNull::new(fresh) else {
            alloc::handle_alloc_error(layout);
        };
        if self.cap > 0 {
            // SAFETY: both regions are valid for len bytes and distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), fresh.as_ptr(), self.len);
                alloc::dealloc(self.ptr.as_ptr(), self.layout());
            }
        }
        self.ptr = fresh;
        self.cap = cap;
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.cap - self.len < bytes.len() {
            // Grow geometrically, as Vec does, for callers that did not reserve.
            self.reserve_exact(bytes.len().max(self.cap));
        }
        // SAFETY: reserved above; the source cannot overlap memory we own exclusively.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
    }

    fn layout(&self) -> Layout {
        Layout::from_size_align(self.cap, DIRECT_ALIGN).expect("buffer layout")
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf::new()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: allocated in reserve_exact with this very layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout()) }
        }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first len bytes are initialised; a dangling pointer is fine for len 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} of {} bytes)", self.len, self.cap)
    }
}

/// Whether `data` can be written with direct I/O without a copy.
pub fn suits_direct(data: &[u8]) -> bool {
    data.len() >= DIRECT_MIN && (data.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
}

/// Writes `data` (which [`suits_direct`]) at the start of `file`, opened with `O_DIRECT`: the
/// aligned body straight from `data`, the last partial block through a padded copy, then the
/// file is cut to `data.len()`.
pub fn write_all_direct(file: &File, data: &[u8]) -> io::Result<()> {
    debug_assert!(suits_direct(data));
    let body = data.len() - data.len() % DIRECT_ALIGN;
    write_all_at(file, &data[..body], 0)?;
    if body < data.len() {
        let mut tail = AlignedBuf::new();
        tail.reserve_exact(DIRECT_ALIGN);
        tail.extend_from_slice(&data[body..]);
        tail.extend_from_slice(&[0u8; DIRECT_ALIGN][..DIRECT_ALIGN - tail.len()]);
        write_all_at(file, &tail, body as u64)?;
        file.set_len(data.len() as u64)?;
    }
    Ok(())
}

/// `write_all_at` that keeps every piece aligned: direct I/O may write less than asked (a
/// signal), and the rest must start on a block boundary again.
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        match file.write_at(data, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n % DIRECT_ALIGN != 0 && n != data.len() => {
                return Err(io::Error::other(format!(
                    "direct write stopped at {n} bytes, off a block boundary"
                )));
            }
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn aligned_buffers_grow_keep_contents_and_alignment() {
        let mut buf = AlignedBuf::new();
        assert!(buf.is_empty());
        for i in 0..10_000u32 {
            buf.extend_from_slice(&i.to_le_bytes());
        }
        assert_eq!(buf.len(), 40_000);
        assert!((buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN));
        assert_eq!(&buf[4 * 9_999..], &9_999u32.to_le_bytes());
        let cap = buf.capacity();
        buf.clear();
        buf.extend_from_slice(b"again");
        assert_eq!((&buf[..], buf.capacity()), (&b"again"[..], cap));
    }

    #[test]
    fn a_direct_write_of_an_odd_length_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object");
        let mut data = AlignedBuf::new();
        let len = DIRECT_MIN + 12_345;
        data.reserve_exact(len);
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        data.extend_from_slice(&bytes);
        assert!(suits_direct(&data));
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path);
        // A filesystem without direct I/O (tmpfs) refuses at open; write the same way then.
        let file = match direct {
            Ok(file) => file,
            Err(_) => std::fs::File::create(&path).unwrap(),
        };
        match write_all_direct(&file, &data) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) => panic!("{e}"),
        }
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
