//! Validation of a backup set: does the destination still hold everything it needs?
//!
//! Basic: the set's index files, manifest segments and the packs holding its chunks exist with
//! their recorded sizes, and every chunk is indexed. Physical: additionally every byte is read
//! back: index files and segments against the ids in their names, packs against theirs, and
//! when a pack fails, each chunk the set needs from it, so the report names what is damaged.
//! Validation never stops at the first problem and never trusts what it reads.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;
use zstd::bulk::Decompressor;

use super::chunker::ContentId;
use super::error::EngineError;
use super::index::{ChunkLocation, RepositoryIndex, decode_index};
use super::manifest::{Extent, decode_segment};
use super::pack::{BlobScratch, decode_blob_into, pack_object_name};
use super::progress::Progress;
use super::repository::{Repository, TenantRef};
use super::set::SetDescriptor;
use crate::storage::Backend;

/// How thoroughly to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateLevel {
    /// Every object exists with the right size.
    Basic,
    /// Every byte is read back and checked.
    Physical,
}

/// One damaged or missing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Object name (`packs/…`, `index/…`, `manifests/…`, `sets/…`) or `chunk <id>`.
    pub object: String,
    pub problem: String,
}

/// The outcome of a validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateReport {
    pub tenant: String,
    pub set_id: i64,
    pub level: ValidateLevel,
    pub objects_checked: u64,
    pub bytes_read: u64,
    pub damaged: Vec<Damage>,
}

impl ValidateReport {
    /// Whether the set is intact.
    pub fn is_intact(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Validates set `set_id` of `tenant`.
pub fn validate(
    repo: &Repository,
    tenant: &TenantRef,
    set_id: i64,
    level: ValidateLevel,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<ValidateReport, EngineError> {
    let mut report = ValidateReport {
        tenant: tenant.to_string(),
        set_id,
        level,
        objects_checked: 0,
        bytes_read: 0,
        damaged: Vec::new(),
    };
    let set = match repo.find_set(tenant, set_id) {
        Ok(set) => set,
        Err(EngineError::CorruptObject { object, detail }) => {
            report.damaged.push(Damage {
                object,
                problem: detail,
            });
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let backend = repo.backend();
    let (index, _) = RepositoryIndex::load(backend)?;
    check_index_files(backend, &set, level, &mut report)?;
    let needed_packs = packs_needed(backend, &index, &set, &mut report, cancel)?;
    let total: u64 = needed_packs.keys().map(|&p| index.pack(p).1).sum();
    progress.total_bytes.store(total, Ordering::Relaxed);
    progress
        .total_files
        .store(needed_packs.len() as u64, Ordering::Relaxed);
    report.objects_checked += needed_packs.len() as u64;
    let found = check_packs(repo, &index, needed_packs, level, progress, cancel)?;
    report.bytes_read += found.bytes_read;
    report.damaged.extend(found.damaged);
    Ok(report)
}

/// The index files a set names: present with their size (basic), or decodable (physical).
fn check_index_files(
    backend: &dyn Backend,
    set: &SetDescriptor,
    level: ValidateLevel,
    report: &mut ValidateReport,
) -> Result<(), EngineError> {
    for needed in &set.index_files {
        report.objects_checked += 1;
        let problem = match level {
            ValidateLevel::Basic => check_size(backend, &needed.object, needed.size)?,
            ValidateLevel::Physical => match backend.get(&needed.object) {
                Ok(bytes) => {
                    report.bytes_read += bytes.len() as u64;
                    decode_index(backend.sealer(), &needed.object, &bytes)
                        .err()
                        .map(detail_of)
                }
                Err(e) => Some(detail_of(EngineError::from(e))),
            },
        };
        if let Some(problem) = problem {
            report.damaged.push(Damage {
                object: needed.object.clone(),
                problem,
            });
        }
    }
    Ok(())
}

/// Reads the set's manifest and locates every chunk it names in a pack, by pack; a segment that
/// cannot be read and a chunk no index locates are damage.
fn packs_needed(
    backend: &dyn Backend,
    index: &RepositoryIndex,
    set: &SetDescriptor,
    report: &mut ValidateReport,
    cancel: &CancellationToken,
) -> Result<BTreeMap<u32, Vec<(ContentId, ChunkLocation)>>, EngineError> {
    let mut needed_packs: BTreeMap<u32, Vec<(ContentId, ChunkLocation)>> = BTreeMap::new();
    let mut seen: HashSet<ContentId> = HashSet::new();
    for segment in &set.manifest {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        report.objects_checked += 1;
        let entries = match backend.get(&segment.object) {
            Ok(bytes) => {
                report.bytes_read += bytes.len() as u64;
                decode_segment(backend.sealer(), segment, &bytes)
            }
            Err(e) => Err(EngineError::from(e)),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                report.damaged.push(Damage {
                    object: segment.object.clone(),
                    problem: detail_of(e),
                });
                continue;
            }
        };
        for entry in entries {
            for extent in &entry.extents {
                let Extent::Chunk { id, .. } = extent else {
                    continue;
                };
                if !seen.insert(*id) {
                    continue;
                }
                match index.lookup(id) {
                    Some(location) => needed_packs
                        .entry(location.pack)
                        .or_default()
                        .push((*id, *location)),
                    None => report.damaged.push(Damage {
                        object: format!("chunk {id}"),
                        problem: format!(
                            "needed by {} but listed in no readable index file",
                            String::from_utf8_lossy(&entry.path)
                        ),
                    }),
                }
            }
        }
    }
    Ok(needed_packs)
}

fn detail_of(err: EngineError) -> String {
    match err {
        EngineError::CorruptObject { detail, .. } => detail,
        other => other.to_string(),
    }
}

fn check_size(
    backend: &dyn Backend,
    object: &str,
    expected: u64,
) -> Result<Option<String>, EngineError> {
    Ok(match backend.size(object)? {
        None => Some("missing".into()),
        Some(size) if size != expected => Some(format!("{size} bytes, {expected} expected")),
        Some(_) => None,
    })
}

#[derive(Default)]
struct PackFindings {
    bytes_read: u64,
    damaged: Vec<Damage>,
}

/// Checks the packs in parallel; each worker takes the next pack.
fn check_packs(
    repo: &Repository,
    index: &RepositoryIndex,
    packs: BTreeMap<u32, Vec<(ContentId, ChunkLocation)>>,
    level: ValidateLevel,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<PackFindings, EngineError> {
    let queue = Mutex::new(packs.into_iter());
    let findings = Mutex::new(PackFindings::default());
    let failure: Mutex<Option<EngineError>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let Ok(mut decompressor) = Decompressor::new() else {
                    return;
                };
                loop {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((pack, chunks)) = next else { return };
                    let checked = check_pack(repo, index, pack, &chunks, level, &mut decompressor);
                    match checked {
                        Ok((read, damage)) => {
                            progress.add_input(index.pack(pack).1);
                            progress.finish_file();
                            let mut found = findings.lock().unwrap_or_else(|p| p.into_inner());
                            found.bytes_read += read;
                            found.damaged.extend(damage);
                        }
                        Err(e) => {
                            failure
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let mut findings = findings.into_inner().unwrap_or_else(|p| p.into_inner());
    findings.damaged.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(findings)
}

/// Checks one pack; returns bytes read and the damage found. Errors only when the destination
/// itself fails (full, missing, I/O), not when the pack is bad.
fn check_pack(
    repo: &Repository,
    index: &RepositoryIndex,
    pack: u32,
    chunks: &[(ContentId, ChunkLocation)],
    level: ValidateLevel,
    decompressor: &mut Decompressor<'static>,
) -> Result<(u64, Option<Damage>), EngineError> {
    let (pack_id, size) = index.pack(pack);
    let object = pack_object_name(&pack_id);
    let backend = repo.backend();
    let damage = |problem: String| Damage {
        object: object.clone(),
        problem,
    };
    if level == ValidateLevel::Basic {
        return Ok((0, check_size(backend, &object, size)?.map(damage)));
    }
    let bytes = match backend.get(&object) {
        Ok(bytes) => bytes,
        Err(e) => match EngineError::from(e) {
            EngineError::CorruptObject { .. } => return Ok((0, Some(damage("missing".into())))),
            other => return Err(other),
        },
    };
    // Every chunk this set needs is decoded and checked against its id where the index puts
    // it, even in a pack whose bytes match its name: a stale index, or a pack that holds a
    // chunk's id over other bytes, is found only so.
    let intact = ContentId::of(&bytes) == pack_id;
    let mut bad = Vec::new();
    let mut scratch = BlobScratch::default();
    for (id, location) in chunks {
        let start = location.offset as usize;
        let stored = bytes
            .get(start..start + location.length as usize)
            .unwrap_or(&[]);
        if decode_blob_into(
            decompressor,
            backend.sealer(),
            &object,
            &location.blob_entry(*id),
            stored,
            &mut scratch,
        )
        .is_err()
        {
            bad.push(id.to_hex());
        }
    }
    if bad.is_empty() && intact {
        return Ok((bytes.len() as u64, None));
    }
    let problem = if bad.is_empty() {
        format!(
            "content does not match its name ({} bytes, {size} expected); the chunks this set needs are intact",
            bytes.len()
        )
    } else {
        format!(
            "{} of the {} chunks this set needs fail their checksum: {}",
            bad.len(),
            chunks.len(),
            bad.join(", ")
        )
    };
    Ok((bytes.len() as u64, Some(damage(problem))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::restore::RestoreMethod;
    use crate::engine::testkit::*;
    use std::fs;
    use std::path::Path;

    fn check(repo: &Repository, set_id: i64, level: ValidateLevel) -> ValidateReport {
        validate(
            repo,
            &TenantRef::Id(TENANT),
            set_id,
            level,
            &Progress::new(),
            &CancellationToken::new(),
        )
        .unwrap()
    }

    fn backed_up() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        (dir, repo)
    }

    fn relative(repo_root: &Path, path: &Path) -> String {
        path.strip_prefix(repo_root)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn an_intact_set_passes_both_levels() {
        let (_dir, repo) = backed_up();
        let basic = check(&repo, 1, ValidateLevel::Basic);
        assert!(basic.is_intact(), "{basic:?}");
        let physical = check(&repo, 1, ValidateLevel::Physical);
        assert!(physical.is_intact(), "{physical:?}");
        assert!(physical.bytes_read > 1 << 20);
    }

    #[test]
    fn flipped_bytes_in_a_pack_are_found_and_restore_names_the_pack() {
        let (dir, repo) = backed_up();
        let root = dir.path().join("repo");
        let pack = objects(&root, "packs").into_iter().next().unwrap();
        let mut bytes = fs::read(&pack).unwrap();
        for at in [100, 101, 5000] {
            bytes[at] ^= 0x5a;
        }
        fs::write(&pack, &bytes).unwrap();
        let name = relative(&root, &pack);

        assert!(check(&repo, 1, ValidateLevel::Basic).is_intact());
        let physical = check(&repo, 1, ValidateLevel::Physical);
        assert_eq!(physical.damaged.len(), 1, "{physical:?}");
        assert_eq!(physical.damaged[0].object, name);
        assert!(physical.damaged[0].problem.contains("fail their checksum"));

        let err =
            run_restore(&repo, 1, &dir.path().join("target"), RestoreMethod::Full).unwrap_err();
        match &err {
            EngineError::CorruptObject { object, .. } => assert_eq!(object, &name),
            other => panic!("expected a damaged pack, got {other}"),
        }
        assert!(
            dir.path()
                .join("target")
                .join(crate::engine::restore::INCOMPLETE_MARKER)
                .exists()
        );
    }

    #[test]
    fn a_deleted_index_file_is_named_by_validate_and_restore() {
        let (dir, repo) = backed_up();
        let root = dir.path().join("repo");
        let index = objects(&root, "index").into_iter().next().unwrap();
        fs::remove_file(&index).unwrap();
        let name = relative(&root, &index);

        let basic = check(&repo, 1, ValidateLevel::Basic);
        assert!(
            basic
                .damaged
                .iter()
                .any(|d| d.object == name && d.problem == "missing"),
            "{basic:?}"
        );
        assert!(basic.damaged.iter().any(|d| d.object.starts_with("chunk ")));
        let err =
            run_restore(&repo, 1, &dir.path().join("target"), RestoreMethod::Full).unwrap_err();
        assert!(err.to_string().contains(&name), "{err}");
    }

    #[test]
    fn a_truncated_manifest_is_reported() {
        let (dir, repo) = backed_up();
        let root = dir.path().join("repo");
        let set = repo.find_set(&TenantRef::Id(TENANT), 1).unwrap();
        let name = set.manifest[0].object.clone();
        let segment = root.join(&name);
        let bytes = fs::read(&segment).unwrap();
        fs::write(&segment, &bytes[..bytes.len() / 2]).unwrap();

        for level in [ValidateLevel::Basic, ValidateLevel::Physical] {
            let report = check(&repo, 1, level);
            assert_eq!(report.damaged.len(), 1, "{report:?}");
            assert_eq!(report.damaged[0].object, name);
        }
        let err =
            run_restore(&repo, 1, &dir.path().join("target"), RestoreMethod::Full).unwrap_err();
        assert!(err.to_string().contains(&name), "{err}");
    }

    #[test]
    fn garbage_set_descriptors_are_reported_not_fatal() {
        let (dir, repo) = backed_up();
        fs::write(dir.path().join("repo/sets/1001/2.set"), b"\x00\xffnot json").unwrap();
        let report = check(&repo, 2, ValidateLevel::Physical);
        assert_eq!(report.damaged[0].object, "sets/1001/2.set");
        assert_eq!(repo.list_sets().unwrap().len(), 1);
    }
}
