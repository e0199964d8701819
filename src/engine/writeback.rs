//! Write-back of restored data while the restore goes on: each region a restore thread wrote is
//! written to disk and then dropped from the page cache, so that the writes which follow reuse
//! those pages.
//!
//! Left to the kernel, a restore fills gigabytes of new page-cache pages and writes them back
//! long after. New pages are the costly part on a virtual machine whose free memory goes back to
//! the host: each one faults in the host first (writing 1 GiB into new pages took 3.3 s here,
//! into pages just freed 0.3 s). Recycling also keeps a restore from pushing everything else out
//! of the cache. Recycling is only an optimisation: when the disk falls behind, a region's
//! write-back is started where it was written and its pages are left cached, instead of
//! slowing the restore down. Starting it is not optional: a region left to the kernel is
//! written only by the restore's final syncfs (background write-back starts at a tenth of
//! memory), and a restore of many small files (a range hands over one region per file, up to
//! 64) then ended with half a second to a second of the disk alone.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};

use crate::storage::page_cache;

/// Regions whose write-back has been started and not yet waited for. Regions are up to 16 MiB
/// (a restore job's), so at most about 400 MiB are dirty before their pages are reused: a
/// window of 96 regions let most of a 2.6 GB restore fill new pages first (restore 1.64-2.06 s
/// against 1.67-1.79 s with this one).
const AHEAD: usize = 8;
/// Regions that may wait to be started.
const QUEUED: usize = 16;

/// Bytes `[start, end)` of a file, just written through `file`.
pub struct WrittenRegion {
    pub file: File,
    pub start: u64,
    pub end: u64,
}

/// Where restore threads hand their written regions.
pub struct Regions(SyncSender<WrittenRegion>);

impl Regions {
    /// Hands a region over without waiting. A full queue means the disk is behind: the
    /// region's write-back is started here and its pages are not recycled. Left to the kernel,
    /// it would be written only at the restore's final syncfs (a machine with gigabytes of
    /// memory starts background write-back late), which then waited for every such region.
    pub fn hand_over(&self, region: WrittenRegion) {
        if let Err(TrySendError::Full(region) | TrySendError::Disconnected(region)) =
            self.0.try_send(region)
        {
            page_cache::start_writeback(&region.file, region.start, region.len());
        }
    }
}

impl WrittenRegion {
    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// The two ends: [`Regions`] for the restore threads, and the loop that writes back what they
/// hand over, to run on a thread of its own until every [`Regions`] is dropped.
pub fn channel() -> (Regions, impl FnOnce() + Send) {
    let (tx, rx) = mpsc::sync_channel(QUEUED);
    (Regions(tx), move || write_back(rx))
}

fn write_back(rx: Receiver<WrittenRegion>) {
    let mut started: VecDeque<WrittenRegion> = VecDeque::with_capacity(AHEAD);
    let mut open = true;
    // Once the restore threads are done, no write will reuse a page: what is still being
    // written back is left to the kernel here, and the restore's final syncfs waits for it.
    loop {
        // Start whatever has arrived, up to AHEAD; block for more only with nothing to finish.
        while open && started.len() < AHEAD {
            let next = if started.is_empty() {
                rx.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match next {
                Ok(region) => {
                    page_cache::start_writeback(&region.file, region.start, region.len());
                    started.push_back(region);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if !open {
            break;
        }
        if let Some(region) = started.pop_front() {
            page_cache::wait_written(&region.file, region.start, region.len());
            page_cache::drop_cached(&region.file, region.start, region.len());
        }
    }
}
