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

/// Hand-overs whose write-back has been started and not yet waited for. A hand-over is the
/// regions one range of a pack wrote, up to 16 MiB together, so at most about 400 MiB are dirty
/// before their pages are reused: a window of 96 regions let most of a 2.6 GB restore fill new
/// pages first (restore 1.64-2.06 s against 1.67-1.79 s with this one).
const AHEAD: usize = 8;
/// Hand-overs that may wait to be started.
const QUEUED: usize = 16;

/// Bytes `[start, end)` of a file, just written through `file`.
pub struct WrittenRegion {
    pub file: File,
    pub start: u64,
    pub end: u64,
}

/// Where restore threads hand their written regions.
pub struct Regions(SyncSender<Vec<WrittenRegion>>);

impl Regions {
    /// Hands over the regions one range wrote, without waiting: one message for all of them,
    /// since a range of small files writes up to 64 (a wake-up of the write-back thread for
    /// each was two context switches per restored file). A full queue means the disk is
    /// behind: their write-back is started here and their pages are not recycled. Left to the
    /// kernel, they would be written only at the restore's final syncfs (a machine with
    /// gigabytes of memory starts background write-back late), which then waited for them all.
    pub fn hand_over(&self, regions: Vec<WrittenRegion>) {
        if regions.is_empty() {
            return;
        }
        if let Err(TrySendError::Full(regions) | TrySendError::Disconnected(regions)) =
            self.0.try_send(regions)
        {
            for region in &regions {
                page_cache::start_writeback(&region.file, region.start, region.len());
            }
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

fn write_back(rx: Receiver<Vec<WrittenRegion>>) {
    let mut started: VecDeque<Vec<WrittenRegion>> = VecDeque::with_capacity(AHEAD);
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
                Ok(regions) => {
                    for region in &regions {
                        page_cache::start_writeback(&region.file, region.start, region.len());
                    }
                    started.push_back(regions);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if !open {
            break;
        }
        for region in started.pop_front().into_iter().flatten() {
            page_cache::wait_written(&region.file, region.start, region.len());
            page_cache::drop_cached(&region.file, region.start, region.len());
        }
    }
}
