//! Damaged storage, kind by kind: each fixture damages one tenant's destination the way disks,
//! networks and people do, and then `VALIDATE DATABASE LEVEL = 'physical'` must mark that set
//! BROKEN with the damaged object named in its COMMENT, and `RESTORE` must refuse it with
//! XX001 before a wrong byte reaches the target. A wrong format version, a wrong key and a
//! wrong passphrase are refused as a whole, before anything is read.

mod common;

use std::path::{Path, PathBuf};

use backstop::engine::index::{decode_index, encode_index};
use backstop::engine::pack::{Compression, PackBuilder, pack_object_name};
use backstop::engine::set::{ObjectRef, SetDescriptor};
use backstop::storage::{Backend, LocalBackend};
use common::tree::noise;
use common::{TestServer, sqlstate, value};

/// What a fixture did, and the object the validation must name.
struct Damaged {
    kind: &'static str,
    named: String,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().to_string()
}

/// The one set descriptor of a destination, decoded (these destinations are not encrypted).
fn descriptor(dest: &Path) -> (PathBuf, SetDescriptor) {
    let path = files(&dest.join("sets")).remove(0);
    let set = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, set)
}

fn rewrite_descriptor(path: &Path, set: &SetDescriptor) {
    std::fs::write(path, serde_json::to_vec_pretty(set).unwrap()).unwrap();
}

/// Replaces the set's index file by one `edit` made of it.
fn rewrite_index(dest: &Path, edit: impl FnOnce(&mut Vec<backstop::engine::index::IndexedPack>)) {
    let backend = LocalBackend::new(dest.to_path_buf());
    let (set_path, mut set) = descriptor(dest);
    let old = set.index_files[0].object.clone();
    let mut packs = decode_index(None, &old, &backend.get(&old).unwrap()).unwrap();
    edit(&mut packs);
    let (name, bytes) = encode_index(None, &packs);
    backend.put(&name, &bytes).unwrap();
    backend.delete(&old).unwrap();
    set.index_files[0] = ObjectRef {
        object: name,
        size: bytes.len() as u64,
    };
    rewrite_descriptor(&set_path, &set);
}

fn damage(kind: &'static str, dest: &Path) -> Damaged {
    let pack = files(&dest.join("packs")).remove(0);
    let named = match kind {
        "truncated pack" => {
            let bytes = std::fs::read(&pack).unwrap();
            std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
            stem(&pack)
        }
        "flipped bit in a chunk" => {
            let mut bytes = std::fs::read(&pack).unwrap();
            let at = bytes.len() / 3;
            bytes[at] ^= 0x10;
            std::fs::write(&pack, bytes).unwrap();
            stem(&pack)
        }
        "missing pack" => {
            std::fs::remove_file(&pack).unwrap();
            stem(&pack)
        }
        "missing index file" => {
            let index = files(&dest.join("index")).remove(0);
            std::fs::remove_file(&index).unwrap();
            stem(&index)
        }
        "stale index pointing at the wrong offset" => {
            // Every blob of the first pack is said to start 7 bytes later than it does.
            let mut named = String::new();
            rewrite_index(dest, |packs| {
                named = packs[0].id.to_hex();
                for blob in &mut packs[0].blobs {
                    blob.offset += 7;
                }
            });
            named
        }
        "duplicated chunk with other bytes" => {
            // A second pack holds the set's first chunk with other bytes, and the index now
            // finds the chunk there only.
            let backend = LocalBackend::new(dest.to_path_buf());
            let mut named = String::new();
            rewrite_index(dest, |packs| {
                let original = packs[0].blobs.remove(0);
                let other = noise(99, original.raw_length as usize);
                let mut builder = PackBuilder::new();
                builder.add(
                    None,
                    original.id,
                    &other,
                    original.raw_length,
                    Compression::Raw,
                );
                let sealed = builder.seal(None);
                backend
                    .put(&pack_object_name(&sealed.id), &sealed.data)
                    .unwrap();
                named = sealed.id.to_hex();
                packs.push(backstop::engine::index::IndexedPack {
                    id: sealed.id,
                    size: sealed.data.len() as u64,
                    blobs: sealed.entries,
                });
            });
            named
        }
        "truncated manifest segment" => {
            let segment = files(&dest.join("manifests")).remove(0);
            let bytes = std::fs::read(&segment).unwrap();
            std::fs::write(&segment, &bytes[..bytes.len() - 3]).unwrap();
            stem(&segment)
        }
        "garbage set descriptor" => {
            let (path, _) = descriptor(dest);
            std::fs::write(&path, b"{\"format_version\": 1, \"tenant").unwrap();
            path.file_name().unwrap().to_string_lossy().to_string()
        }
        other => panic!("no fixture {other}"),
    };
    Damaged { kind, named }
}

/// Every byte the refused restore left in `target` is the source's (or a hole it had not
/// filled yet, zeroes): no wrong byte was written.
fn no_wrong_byte(kind: &str, source: &Path, target: &Path) {
    for file in files(target) {
        let relative = file.strip_prefix(target).unwrap();
        if relative.to_string_lossy().starts_with(".backstop-restore") {
            continue;
        }
        let expected = std::fs::read(source.join(relative))
            .unwrap_or_else(|_| panic!("{} is not in the source", relative.display()));
        let written = std::fs::read(&file).unwrap();
        assert!(
            written.len() <= expected.len(),
            "{kind}: {} grew",
            relative.display()
        );
        // A chunk not yet written reads as zeroes (the file is created at its size), so a byte
        // is either the source's or a zero of a chunk that never came.
        for (i, block) in written.chunks(4096).enumerate() {
            let want = &expected[i * 4096..i * 4096 + block.len()];
            let holds = block.iter().zip(want).all(|(w, e)| w == e || *w == 0);
            assert!(
                holds,
                "{kind}: {} block {i} is neither the source's nor empty",
                relative.display()
            );
        }
    }
}

const KINDS: [&str; 8] = [
    "truncated pack",
    "flipped bit in a chunk",
    "missing pack",
    "missing index file",
    "stale index pointing at the wrong offset",
    "duplicated chunk with other bytes",
    "truncated manifest segment",
    "garbage set descriptor",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_damage_is_found_by_validation_and_refused_by_restore() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = Vec::new();
    for (i, _) in KINDS.iter().enumerate() {
        let name = format!("d{i}");
        let source = dir.path().join(format!("source-{i}"));
        std::fs::create_dir_all(source.join("sub")).unwrap();
        std::fs::write(source.join("noise"), noise(i as u64, 3 << 20)).unwrap();
        std::fs::write(source.join("text"), "some text\n".repeat(200_000)).unwrap();
        std::fs::write(source.join("sub/small"), b"small").unwrap();
        let dest = dir.path().join(format!("dest-{i}"));
        c.batch_execute(&format!(
            "CREATE TENANT {name} SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}' TENANT = {name}",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
        tenants.push((name, source, dest));
    }
    c.batch_execute("ALTER SYSTEM BACKUP DATABASE WAIT")
        .await
        .unwrap();
    c.batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap();

    let damaged: Vec<Damaged> = KINDS
        .iter()
        .zip(&tenants)
        .map(|(kind, (_, _, dest))| damage(kind, dest))
        .collect();
    let err = c
        .batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "XX001", "{err:?}");

    for (d, (name, source, _)) in damaged.iter().zip(&tenants) {
        let set = value(
            &c,
            &format!(
                "SELECT s.backup_set_id FROM cdb_ob_backup_set_files s \
                 JOIN dba_ob_tenants t ON s.tenant_id = t.tenant_id WHERE t.tenant_name = '{name}'"
            ),
        )
        .await;
        assert_eq!(
            value(
                &c,
                &format!(
                    "SELECT file_status FROM cdb_ob_backup_set_files WHERE backup_set_id = {set}"
                )
            )
            .await,
            "BROKEN",
            "{}",
            d.kind
        );
        let comment = value(
            &c,
            &format!(
                "SELECT comment FROM cdb_ob_backup_validate_task_history \
                 WHERE backup_set_id = {set} ORDER BY task_id DESC LIMIT 1"
            ),
        )
        .await;
        assert!(
            comment.contains(&d.named),
            "{}: the comment does not name {}: {comment}",
            d.kind,
            d.named
        );

        let target = dir.path().join(format!("restored-{name}"));
        let err = c
            .batch_execute(&format!(
                "ALTER SYSTEM RESTORE r{name} FROM {name} TO 'dir://{}' WAIT",
                target.display()
            ))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err), "XX001", "{}: {err:?}", d.kind);
        no_wrong_byte(d.kind, source, &target);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_format_a_wrong_key_and_a_wrong_passphrase_are_refused_before_any_read() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("f"), noise(1, 1 << 20)).unwrap();
    let dest = dir.path().join("dest");
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'; \
         ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
         SET ENCRYPTION ON IDENTIFIED BY 'right' ONLY; \
         ALTER SYSTEM BACKUP DATABASE WAIT; \
         SET DECRYPTION IDENTIFIED BY 'wrong'",
        source.display(),
        dest.display()
    ))
    .await
    .unwrap();
    let target = dir.path().join("r");
    let restore = format!(
        "ALTER SYSTEM RESTORE r FROM app TO 'dir://{}' WAIT",
        target.display()
    );
    // A wrong passphrase.
    let err = c
        .batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "28P01", "{err:?}");
    let err = c.batch_execute(&restore).await.unwrap_err();
    assert_eq!(sqlstate(&err), "28P01", "{err:?}");

    // A wrong key: the format file names another key than the one the slots hold.
    let format_path = dest.join("backstop.format");
    let original = std::fs::read_to_string(&format_path).unwrap();
    let mut format: serde_json::Value = serde_json::from_str(&original).unwrap();
    format["encryption"]["key_id"] = "0123456789abcdef".into();
    std::fs::write(&format_path, format.to_string()).unwrap();
    c.batch_execute("SET DECRYPTION IDENTIFIED BY 'right'")
        .await
        .unwrap();
    let err = c.batch_execute(&restore).await.unwrap_err();
    assert_eq!(sqlstate(&err), "28P01", "{err:?}");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("0123456789abcdef"),
        "{err:?}"
    );

    // A format version from the future.
    let mut format: serde_json::Value = serde_json::from_str(&original).unwrap();
    format["version"] = 99.into();
    std::fs::write(&format_path, format.to_string()).unwrap();
    let err = c.batch_execute(&restore).await.unwrap_err();
    assert_eq!(sqlstate(&err), "0A000", "{err:?}");
    assert!(
        err.as_db_error().unwrap().message().contains("version 99"),
        "{err:?}"
    );
    let err = c
        .batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000", "{err:?}");
    assert!(!target.exists());
}
