//! The packer of a backup: appends compressed chunks to packs, writes manifest segments in walk
//! order, tracks which entries are durable, and decides when to save a checkpoint.
//!
//! Every chunk has a sequence number. The watermark is the lowest number not yet in a durable
//! pack (or not yet received); an entry whose chunks all lie below it is durable, and since
//! numbers grow in walk order the durable entries form a prefix of the walk: what a checkpoint
//! stores.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backup::{BackupRequest, BatchChunk, PackerMsg, PendingEntry, Shared, Stored, WriteJob};
use super::checkpoint::Checkpoint;
use super::chunker::ContentId;
use super::error::EngineError;
use super::format::FORMAT_VERSION;
use super::index::{IndexedPack, RepositoryIndex, encode_index};
use super::manifest::{Extent, ManifestEntry, SegmentBuilder, SegmentRef};
use super::pack::{Compression, PackBuilder, pack_object_name};
use super::progress::Progress;
use super::set::ObjectRef;
use crate::source::EntryKind;

/// A checkpoint due to the 1% rule seals the open pack early only when it holds this much.
const EARLY_SEAL_MIN: usize = 4 << 20;
/// How often the packer wakes up when no message arrives, to look at checkpoints.
const PACKER_TICK: Duration = Duration::from_millis(20);
/// A checkpoint due to the 1% rule waits until this long after the previous one: a fast backup
/// would otherwise spend its time (and fsyncs) on checkpoints that save little re-reading.
const PERCENT_MIN_GAP: Duration = Duration::from_millis(500);

/// What the packer hands back when the input is exhausted.
pub(super) struct PackerOutcome {
    /// Durable packs not yet listed in an index file.
    pub(super) unindexed: Vec<IndexedPack>,
    /// Index files written for checkpoints.
    pub(super) index_files: Vec<ObjectRef>,
    /// Numbers of repository index files locating chunks this set reused.
    pub(super) needed_index_files: HashSet<u32>,
    pub(super) segments: Vec<SegmentRef>,
    pub(super) files: u64,
    pub(super) bytes: u64,
}

/// What a checkpoint may name: see [`Packer::durable_prefix`].
struct DurablePrefix {
    durable_segments: usize,
    tail_entries: usize,
    files_done: u64,
    bytes_done: u64,
}

/// A finished manifest segment and what its entries depend on.
struct WrittenSegment {
    reference: SegmentRef,
    max_dep: u64,
    files: u64,
    bytes: u64,
}

pub(super) struct Packer<'a> {
    shared: &'a Arc<Shared>,
    repo_index: &'a RepositoryIndex,
    session: &'a Mutex<HashMap<ContentId, u32>>,
    req: &'a BackupRequest,
    progress: &'a Progress,
    write_tx: SyncSender<WriteJob>,
    open: PackBuilder,
    open_number: u32,
    /// Sealed packs not yet in an index file, by number.
    sealed: BTreeMap<u32, IndexedPack>,
    /// Lowest chunk number depending on each pack that is not known durable yet.
    pending_packs: BTreeMap<u32, u64>,
    /// Every chunk numbered below this has been received.
    received_below: u64,
    received_ahead: BTreeSet<u64>,
    /// The ids the workers computed, by chunk number, until an entry takes them.
    chunk_ids: BTreeMap<u64, ContentId>,
    /// Entries whose chunks have not all been received yet, in walk order.
    waiting: VecDeque<PendingEntry>,
    needed_index_files: HashSet<u32>,
    segments: Vec<WrittenSegment>,
    builder: SegmentBuilder,
    /// (dep, files so far, bytes so far) for each entry of `builder`.
    builder_deps: Vec<(u64, u64, u64)>,
    files: u64,
    bytes: u64,
    index_files: Vec<ObjectRef>,
    last_checkpoint: Instant,
    last_checkpoint_input: u64,
    last_checkpoint_files: u64,
    interval_due: bool,
}

impl<'a> Packer<'a> {
    pub(super) fn new(
        shared: &'a Arc<Shared>,
        repo_index: &'a RepositoryIndex,
        session: &'a Mutex<HashMap<ContentId, u32>>,
        req: &'a BackupRequest,
        progress: &'a Progress,
        write_tx: SyncSender<WriteJob>,
    ) -> Packer<'a> {
        Packer {
            shared,
            repo_index,
            session,
            req,
            progress,
            write_tx,
            open: PackBuilder::new(),
            open_number: 0,
            sealed: BTreeMap::new(),
            pending_packs: BTreeMap::new(),
            received_below: 0,
            received_ahead: BTreeSet::new(),
            chunk_ids: BTreeMap::new(),
            waiting: VecDeque::new(),
            needed_index_files: HashSet::new(),
            segments: Vec::new(),
            builder: SegmentBuilder::new(),
            builder_deps: Vec::new(),
            files: 0,
            bytes: 0,
            index_files: Vec::new(),
            last_checkpoint: Instant::now(),
            last_checkpoint_input: 0,
            last_checkpoint_files: 0,
            interval_due: false,
        }
    }

    /// A resumed run writes no checkpoint that covers fewer entries than the one it goes on
    /// from: a kill in between would otherwise lose the progress of the runs before.
    pub(super) fn resume_after(&mut self, files_done: u64) {
        self.last_checkpoint_files = files_done;
    }

    pub(super) fn run(mut self, rx: Receiver<PackerMsg>) -> PackerOutcome {
        let finished = loop {
            if self.shared.stop.is_cancelled() {
                break false;
            }
            let handled = match rx.recv_timeout(PACKER_TICK) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => Ok(()),
                // The senders go away both when the walk is done and when a cancel stopped
                // them: only the first is an end whose entries must all be complete.
                Err(RecvTimeoutError::Disconnected) => break !self.shared.stop.is_cancelled(),
            };
            self.progress.output_bytes.store(
                self.shared.bytes_written.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            if let Err(e) = handled.and_then(|()| self.maybe_checkpoint()) {
                self.shared.fail(e);
                break false;
            }
        };
        if finished && let Err(e) = self.finish() {
            self.shared.fail(e);
        }
        PackerOutcome {
            unindexed: self.sealed.into_values().collect(),
            index_files: self.index_files,
            needed_index_files: self.needed_index_files,
            segments: self.segments.into_iter().map(|s| s.reference).collect(),
            files: self.files,
            bytes: self.bytes,
        }
    }

    fn handle(&mut self, msg: PackerMsg) -> Result<(), EngineError> {
        match msg {
            PackerMsg::Chunks {
                input,
                output,
                chunks,
            } => {
                let mut added = Ok(());
                for (chunk, stored) in chunks {
                    let BatchChunk {
                        seq,
                        id,
                        start,
                        len,
                    } = chunk;
                    let stored = match stored {
                        Stored::Known => None,
                        Stored::Raw => Some((&input[start..start + len], Compression::Raw)),
                        Stored::Zstd { start, len } => {
                            Some((&output[start..start + len], Compression::Zstd))
                        }
                    };
                    added = self.add_chunk(seq, id, len as u32, stored);
                    if added.is_err() {
                        break;
                    }
                }
                self.shared.batch_buffers.give(input);
                self.shared.output_buffers.give(output);
                added?;
                self.release_entries()
            }
            PackerMsg::Entries(entries) => {
                self.waiting.extend(entries);
                self.release_entries()
            }
        }
    }

    /// Moves the waiting entries whose chunks have all been received into the manifest, in
    /// walk order, with their chunk ids filled in.
    fn release_entries(&mut self) -> Result<(), EngineError> {
        while self
            .waiting
            .front()
            .is_some_and(|w| w.dep <= self.received_below)
        {
            let PendingEntry {
                mut entry,
                dep,
                first_chunk,
            } = self.waiting.pop_front().expect("checked just above");
            if let Some(first) = first_chunk {
                self.resolve_ids(&mut entry, first)?;
            }
            self.add_entry(entry, dep)?;
        }
        Ok(())
    }

    /// Fills the ids of a file's chunk extents, numbered from `first`. Numbers below the last
    /// one taken are forgotten: they belonged to a read of a file that changed and was read
    /// again.
    fn resolve_ids(&mut self, entry: &mut ManifestEntry, first: u64) -> Result<(), EngineError> {
        let mut seq = first;
        for extent in &mut entry.extents {
            if let Extent::Chunk { id, .. } = extent {
                *id = self.chunk_ids.remove(&seq).ok_or_else(|| {
                    EngineError::corrupt(
                        &format!("chunk {seq} of {}", String::from_utf8_lossy(&entry.path)),
                        "its id never came back from the workers (internal error)",
                    )
                })?;
                seq += 1;
            }
        }
        while let Some(orphan) = self.chunk_ids.first_entry() {
            if *orphan.key() >= seq {
                break;
            }
            orphan.remove();
        }
        Ok(())
    }

    fn add_chunk(
        &mut self,
        seq: u64,
        id: ContentId,
        raw_length: u32,
        stored: Option<(&[u8], Compression)>,
    ) -> Result<(), EngineError> {
        self.received_ahead.insert(seq);
        while self.received_ahead.remove(&self.received_below) {
            self.received_below += 1;
        }
        self.chunk_ids.insert(seq, id);
        if let Some(location) = self.repo_index.lookup(&id) {
            self.needed_index_files.insert(location.index_file);
            return Ok(());
        }
        let in_session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied();
        let pack = match (in_session, stored) {
            (Some(pack), _) => pack,
            (None, Some((data, compression))) => {
                self.open
                    .add(self.shared.sealer(), id, data, raw_length, compression);
                self.session
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, self.open_number);
                self.open_number
            }
            (None, None) => {
                // Workers only skip compressing chunks that the repository index or this
                // session already holds, and neither ever forgets one.
                return Err(EngineError::corrupt(
                    &format!("chunk {id}"),
                    "reported as already stored, but found nowhere (internal error)",
                ));
            }
        };
        let lowest = self.pending_packs.entry(pack).or_insert(seq);
        *lowest = (*lowest).min(seq);
        if self.open.is_full() {
            self.seal_open()?;
        }
        Ok(())
    }

    fn seal_open(&mut self) -> Result<(), EngineError> {
        let fresh = PackBuilder::with_buffer(self.shared.pack_buffers.take());
        let pack = std::mem::replace(&mut self.open, fresh).seal(self.shared.sealer());
        let number = self.open_number;
        self.open_number += 1;
        let object = pack_object_name(&pack.id);
        self.sealed.insert(
            number,
            IndexedPack {
                id: pack.id,
                size: pack.data.len() as u64,
                blobs: pack.entries,
            },
        );
        self.send_write(WriteJob::Pack {
            number,
            object,
            data: pack.data,
        })
    }

    /// Hands a job to the writers, waiting while they are busy. A stop never leaves this
    /// waiting: the writers stop with it and drop their queue, which fails the send.
    fn send_write(&self, job: WriteJob) -> Result<(), EngineError> {
        if self.shared.stop.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        self.write_tx.send(job).map_err(|_| EngineError::Cancelled)
    }

    fn add_entry(&mut self, entry: ManifestEntry, dep: u64) -> Result<(), EngineError> {
        self.files += 1;
        if entry.kind == EntryKind::File {
            self.bytes += entry.size;
        }
        self.builder.push(&entry);
        self.builder_deps.push((dep, self.files, self.bytes));
        if self.builder.is_full() {
            self.flush_segment()?;
        }
        Ok(())
    }

    fn flush_segment(&mut self) -> Result<(), EngineError> {
        let (reference, stored) = self
            .builder
            .finish(self.shared.sealer(), self.req.compression_level);
        self.shared.put(&reference.object, &stored)?;
        let (max_dep, files, bytes) = self.builder_deps.last().copied().unwrap_or((0, 0, 0));
        self.segments.push(WrittenSegment {
            reference,
            max_dep,
            files,
            bytes,
        });
        self.builder = SegmentBuilder::new();
        self.builder_deps.clear();
        Ok(())
    }

    /// The lowest chunk number that is not yet in a durable pack.
    fn watermark(&mut self) -> u64 {
        let durable = self
            .shared
            .durable_packs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.pending_packs.retain(|pack, _| !durable.contains(pack));
        self.pending_packs
            .values()
            .copied()
            .min()
            .unwrap_or(u64::MAX)
            .min(self.received_below)
    }

    fn maybe_checkpoint(&mut self) -> Result<(), EngineError> {
        if self.shared.checkpoint_busy.load(Ordering::Acquire) {
            return Ok(());
        }
        let input = self.progress.input_bytes.load(Ordering::Relaxed);
        let total = self.progress.total_bytes.load(Ordering::Relaxed);
        let percent_due = total > 0
            && input - self.last_checkpoint_input.min(input) >= (total / 100).max(1)
            && self.last_checkpoint.elapsed() >= PERCENT_MIN_GAP;
        self.interval_due |= self.last_checkpoint.elapsed() >= self.req.checkpoint_interval;
        if !self.interval_due && !percent_due {
            return Ok(());
        }
        let DurablePrefix {
            durable_segments,
            tail_entries,
            files_done,
            bytes_done,
        } = self.durable_prefix();
        if files_done <= self.last_checkpoint_files {
            // Nothing new is durable: the open pack holds it. Seal it now when the interval
            // demands a checkpoint, or when it is big enough not to make a tiny pack.
            if !self.open.is_empty()
                && (self.interval_due || self.open.stored_len() >= EARLY_SEAL_MIN)
                && self.pending_packs.contains_key(&self.open_number)
            {
                self.seal_open()?;
            }
            return Ok(());
        }
        let index = self.index_durable_packs();
        let mut manifest: Vec<SegmentRef> = self.segments[..durable_segments]
            .iter()
            .map(|s| s.reference.clone())
            .collect();
        // The durable entries of the segment being built become a segment of the set of their
        // own: the checkpoint names it, and so will the set, so nothing is written twice.
        let tail = (tail_entries > 0).then(|| {
            let (reference, bytes) = self
                .builder
                .split_off_prefix(tail_entries)
                .finish(self.shared.sealer(), self.req.compression_level);
            let (max_dep, files, bytes_so_far) = self.builder_deps[tail_entries - 1];
            self.builder_deps.drain(..tail_entries);
            self.segments.push(WrittenSegment {
                reference: reference.clone(),
                max_dep,
                files,
                bytes: bytes_so_far,
            });
            manifest.push(reference.clone());
            (reference, bytes)
        });
        let checkpoint = Checkpoint {
            format_version: FORMAT_VERSION,
            tenant_id: self.req.tenant_id,
            set_id: self.req.set_id,
            created: chrono::Utc::now().to_rfc3339(),
            manifest,
            index_files: self.index_files.clone(),
            bytes_done,
            files_done,
        };
        self.shared.checkpoint_busy.store(true, Ordering::Release);
        self.send_write(WriteJob::Checkpoint {
            index,
            tail,
            checkpoint,
        })?;
        self.last_checkpoint = Instant::now();
        self.last_checkpoint_input = input;
        self.last_checkpoint_files = files_done;
        self.interval_due = false;
        Ok(())
    }

    /// How much of the set is durable: the written segments whose chunks are all in durable
    /// packs, the entries of the segment being built that are, and the files and bytes they
    /// hold.
    fn durable_prefix(&mut self) -> DurablePrefix {
        let watermark = self.watermark();
        let durable_segments = self
            .segments
            .iter()
            .take_while(|s| s.max_dep <= watermark)
            .count();
        let tail_entries = if durable_segments == self.segments.len() {
            self.builder_deps
                .iter()
                .take_while(|(dep, _, _)| *dep <= watermark)
                .count()
        } else {
            0
        };
        let (files_done, bytes_done) = match tail_entries {
            0 => durable_segments.checked_sub(1).map_or((0, 0), |last| {
                (self.segments[last].files, self.segments[last].bytes)
            }),
            n => (self.builder_deps[n - 1].1, self.builder_deps[n - 1].2),
        };
        DurablePrefix {
            durable_segments,
            tail_entries,
            files_done,
            bytes_done,
        }
    }

    /// An index file for the sealed packs that have become durable, if any: the checkpoint
    /// names it, so a resumed run finds their chunks.
    fn index_durable_packs(&mut self) -> Option<(String, Vec<u8>)> {
        let durable: HashSet<u32> = self
            .shared
            .durable_packs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let ready: Vec<u32> = self
            .sealed
            .keys()
            .copied()
            .filter(|n| durable.contains(n))
            .collect();
        (!ready.is_empty()).then(|| {
            let packs: Vec<IndexedPack> =
                ready.iter().filter_map(|n| self.sealed.remove(n)).collect();
            let (object, bytes) = encode_index(self.shared.sealer(), &packs);
            self.index_files.push(ObjectRef {
                object: object.clone(),
                size: bytes.len() as u64,
            });
            (object, bytes)
        })
    }

    fn finish(&mut self) -> Result<(), EngineError> {
        self.release_entries()?;
        if let Some(stuck) = self.waiting.front() {
            return Err(EngineError::corrupt(
                &String::from_utf8_lossy(&stuck.entry.path),
                "some of its chunks never came back from the workers (internal error)",
            ));
        }
        if !self.open.is_empty() {
            self.seal_open()?;
        }
        if !self.builder.is_empty() || self.segments.is_empty() {
            self.flush_segment()?;
        }
        Ok(())
    }
}
