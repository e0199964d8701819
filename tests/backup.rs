//! Data backup, restore and validation of directory tenants, through the wire, the way a DBA
//! runs them. Every backup is restored and compared with its source.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::tree::{assert_same_tree, copy_tree, fidelity_tree, noise};
use common::{TestServer, noticing_client, sqlstate};
use tokio_postgres::Client;

struct Fixture {
    server: TestServer,
    client: Client,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = TestServer::start().await;
        let client = server.connect().await;
        Fixture {
            server,
            client,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn sql(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    async fn value(&self, sql: &str) -> String {
        common::value(&self.client, sql).await
    }

    async fn tenant(&self, name: &str, source: &Path) {
        self.sql(&format!(
            "CREATE TENANT {name} SOURCE = 'dir://{}'",
            source.display()
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_and_incremental_backups_restore_exactly() {
    let f = Fixture::new().await;
    let source = f.path("source");
    fidelity_tree(&source);
    f.tenant("app", &source).await;
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        f.path("dest").display()
    ))
    .await;

    // A full backup, waited for with progress NOTICEs.
    let (waiting, mut notices) = noticing_client(f.server.port()).await;
    waiting
        .batch_execute("ALTER SYSTEM BACKUP TENANT app DESCRIPTION 'first' WAIT")
        .await
        .unwrap();
    let notice = notices.recv().await.expect("a progress notice");
    assert!(notice.starts_with("job "), "{notice}");
    let snapshot = f.path("snapshot");
    copy_tree(&source, &snapshot);

    assert_eq!(f.value("SELECT status || ' ' || backup_type || ' ' || job_level || ' ' || description FROM cdb_ob_backup_job_history").await, "COMPLETED FULL USER_TENANT first");
    assert_eq!(
        f.value("SELECT count(*) FROM cdb_ob_backup_jobs").await,
        "0"
    );
    assert_eq!(f.value("SELECT status || ' ' || data_progress || ' ' || (file_count = finish_file_count) FROM cdb_ob_backup_task_history").await, "COMPLETED 100.0 true");
    assert_eq!(
        f.value(
            "SELECT backup_type || ' ' || status || ' ' || file_status FROM cdb_ob_backup_set_files"
        )
        .await,
        "FULL COMPLETED AVAILABLE"
    );
    assert_eq!(
        f.value("SELECT status FROM cdb_ob_backup_set_details")
            .await,
        "COMPLETED"
    );
    let full_id = f
        .value("SELECT backup_set_id FROM cdb_ob_backup_set_files")
        .await;

    f.sql(&format!(
        "ALTER SYSTEM RESTORE app_copy FROM app TO 'dir://{}' WAIT",
        f.path("r1").display()
    ))
    .await;
    assert_same_tree(&source, &f.path("r1"));
    assert_eq!(
        f.value("SELECT status || ' ' || backup_set_list FROM cdb_ob_restore_history")
            .await,
        format!("COMPLETED {full_id}")
    );
    // The restored tree is registered as a tenant, ready to be protected in turn.
    assert_eq!(
        f.value("SELECT kind FROM dba_ob_tenants WHERE tenant_name = 'app_copy'")
            .await,
        "directory"
    );

    // Change some files, then an incremental backup.
    std::fs::write(source.join("small.txt"), b"changed content\n").unwrap();
    std::fs::write(source.join("dir/new-file"), noise(7, 100_000)).unwrap();
    std::fs::remove_file(source.join("dir/nested/deeper/leaf")).unwrap();
    f.sql("ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT")
        .await;
    let inc_id = f
        .value("SELECT max(backup_set_id) FROM cdb_ob_backup_set_files")
        .await;
    assert_eq!(
        f.value(&format!("SELECT backup_type || ' ' || prev_full_backup_set_id || ' ' || prev_inc_backup_set_id FROM cdb_ob_backup_set_files WHERE backup_set_id = {inc_id}")).await,
        format!("INC {full_id} {full_id}")
    );

    // Each set restores on its own.
    f.sql(&format!(
        "ALTER SYSTEM RESTORE inc_copy FROM app UNTIL BACKUPSET = {inc_id} TO 'dir://{}' WAIT",
        f.path("r2").display()
    ))
    .await;
    assert_same_tree(&source, &f.path("r2"));
    f.sql(&format!(
        "ALTER SYSTEM RESTORE old_copy FROM app UNTIL BACKUPSET = {full_id} TO 'dir://{}' WAIT",
        f.path("r3").display()
    ))
    .await;
    assert_same_tree(&snapshot, &f.path("r3"));

    // A non-empty target is refused; method=delta rewrites only what differs.
    let e = f
        .client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE again FROM app TO 'dir://{}'",
            f.path("r1").display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    f.sql(&format!(
        "ALTER SYSTEM RESTORE delta_copy FROM app TO 'dir://{}' WITH 'method=delta' WAIT",
        f.path("r1").display()
    ))
    .await;
    assert_same_tree(&source, &f.path("r1"));

    // PREVIEW shows the set a restore would use.
    let rows = f
        .client
        .simple_query("ALTER SYSTEM RESTORE FROM app UNTIL TIME = '2999-01-01 00:00:00' PREVIEW")
        .await
        .unwrap();
    let preview: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(format!("{} {}", r.get(1).unwrap(), r.get(2).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(preview, [format!("{inc_id} INC")]);
    let e = f
        .client
        .simple_query("ALTER SYSTEM RESTORE FROM app UNTIL TIME = '2000-01-01 00:00:00' PREVIEW")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704");
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_without_a_full_runs_full_and_busy_tenants_are_refused() {
    let f = Fixture::new().await;
    let source = f.path("big");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..6 {
        std::fs::write(source.join(format!("part{i}")), noise(i, 40 << 20)).unwrap();
    }
    f.tenant("big", &source).await;
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        f.path("dest").display()
    ))
    .await;

    f.sql("ALTER SYSTEM BACKUP INCREMENTAL TENANT big").await;
    let e = f
        .client
        .batch_execute("ALTER SYSTEM BACKUP TENANT big")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    assert!(
        e.as_db_error()
            .unwrap()
            .detail()
            .unwrap()
            .contains("OB_BACKUP_IN_PROGRESS")
    );
    // A destination cannot change under running work.
    let e = f
        .client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
            f.path("other").display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");

    // The job is visible in the views while it runs, and its task moves forward.
    let job_id = f.value("SELECT max(job_id) FROM cdb_ob_backup_jobs").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let rows = f
            .client
            .simple_query("SELECT status FROM cdb_ob_backup_tasks")
            .await
            .unwrap();
        let running: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
                _ => None,
            })
            .collect();
        if running.is_empty() {
            break;
        }
        seen.extend(running);
        assert!(Instant::now() < deadline, "backup did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!seen.is_empty());
    f.sql(&format!("ALTER SYSTEM WAIT JOB {job_id}")).await;
    assert_eq!(
        f.value("SELECT backup_type FROM cdb_ob_backup_set_files")
            .await,
        "FULL"
    );
    assert_eq!(
        f.value("SELECT input_bytes FROM cdb_ob_backup_task_history")
            .await,
        (240u64 << 20).to_string()
    );
    f.sql(&format!(
        "ALTER SYSTEM RESTORE big2 FROM big TO 'dir://{}' WAIT",
        f.path("r").display()
    ))
    .await;
    assert_same_tree(&source, &f.path("r"));

    // An unchanged incremental reads nothing again.
    f.sql("ALTER SYSTEM BACKUP INCREMENTAL TENANT big WAIT")
        .await;
    assert_eq!(
        f.value(
            "SELECT backup_type FROM cdb_ob_backup_set_files ORDER BY backup_set_id DESC LIMIT 1"
        )
        .await,
        "INC"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn database_backups_cover_every_tenant_in_id_order() {
    let f = Fixture::new().await;
    for name in ["zeta", "alpha"] {
        let source = f.path(name);
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("data"), noise(name.len() as u64, 1 << 20)).unwrap();
        f.tenant(name, &source).await;
    }
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        f.path("dest").display()
    ))
    .await;
    f.sql("ALTER SYSTEM SET backup_concurrency = 1").await;
    f.sql("ALTER SYSTEM BACKUP DATABASE WAIT").await;
    assert_eq!(
        f.value("SELECT tenant_id || ' ' || job_level || ' ' || executor_tenant_id FROM cdb_ob_backup_job_history").await,
        "1 CLUSTER 1001,1002"
    );
    assert_eq!(f.value("SELECT string_agg(CAST(tenant_id AS VARCHAR), ',' ORDER BY task_id) FROM cdb_ob_backup_task_history").await, "1001,1002");
    for name in ["zeta", "alpha"] {
        f.sql(&format!(
            "ALTER SYSTEM RESTORE {name}_r FROM {name} TO 'dir://{}' WAIT",
            f.path(&format!("{name}_r")).display()
        ))
        .await;
        assert_same_tree(&f.path(name), &f.path(&format!("{name}_r")));
    }
    // DBA_ views show the session's tenant.
    f.sql("SET tenant = alpha").await;
    assert_eq!(
        f.value("SELECT count(*) FROM dba_ob_backup_set_files")
            .await,
        "1"
    );
}

fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    files
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no file under {}", dir.display()))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_finds_damage_and_restore_refuses_it() {
    let f = Fixture::new().await;
    let source = f.path("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a"), noise(3, 2 << 20)).unwrap();
    std::fs::write(source.join("b"), "text\n".repeat(100_000)).unwrap();
    f.tenant("app", &source).await;
    let dest = f.path("dest");
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        dest.display()
    ))
    .await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;
    let set = f
        .value("SELECT backup_set_id FROM cdb_ob_backup_set_files")
        .await;

    f.sql(&format!(
        "ALTER SYSTEM VALIDATE BACKUPSET {set} LEVEL = 'physical' WAIT"
    ))
    .await;
    assert_eq!(
        f.value("SELECT status || ' ' || level FROM cdb_ob_backup_validate_job_history")
            .await,
        "COMPLETED physical"
    );

    // Flip bytes in the middle of a pack.
    let pack = first_file(&dest.join("packs"));
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&pack, bytes).unwrap();

    // basic only checks sizes: the pack still has its size.
    f.sql(&format!("ALTER SYSTEM VALIDATE BACKUPSET = {set} WAIT"))
        .await;
    let e = f
        .client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE BACKUPSET {set} LEVEL = 'physical' WAIT"
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    let pack_name = pack.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        e.as_db_error().unwrap().message().contains(&pack_name[..8]),
        "{e:?}"
    );
    assert_eq!(
        f.value("SELECT file_status FROM cdb_ob_backup_set_files")
            .await,
        "BROKEN"
    );
    assert!(
        f.value(
            "SELECT comment FROM cdb_ob_backup_validate_task_history ORDER BY task_id DESC LIMIT 1"
        )
        .await
        .contains("damaged")
    );

    let e = f
        .client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE bad FROM app TO 'dir://{}' WAIT",
            f.path("r").display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    assert!(
        f.value("SELECT comment FROM cdb_ob_restore_history")
            .await
            .contains("packs/")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_index_and_truncated_manifest_are_reported() {
    let f = Fixture::new().await;
    let source = f.path("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a"), noise(5, 1 << 20)).unwrap();
    f.tenant("app", &source).await;
    let dest = f.path("dest");
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        dest.display()
    ))
    .await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;

    let index = first_file(&dest.join("index"));
    let saved = std::fs::read(&index).unwrap();
    std::fs::remove_file(&index).unwrap();
    let e = f
        .client
        .batch_execute("ALTER SYSTEM VALIDATE DATABASE WAIT")
        .await
        .unwrap_err();
    assert!(
        e.as_db_error().unwrap().message().contains("index/"),
        "{e:?}"
    );
    std::fs::write(&index, saved).unwrap();

    for manifest in walk(&dest.join("manifests")) {
        let len = std::fs::metadata(&manifest).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&manifest)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    }
    let e = f
        .client
        .batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap_err();
    assert!(
        e.as_db_error().unwrap().message().contains("manifests/"),
        "{e:?}"
    );
    assert_eq!(
        f.value("SELECT count(*) FROM cdb_ob_backup_set_files WHERE file_status = 'BROKEN'")
            .await,
        "2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_full_destination_fails_cleanly_and_earlier_sets_restore() {
    let f = Fixture::new().await;
    let source = f.path("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a"), noise(9, 1 << 20)).unwrap();
    f.tenant("app", &source).await;
    let dest = f.path("dest");
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        dest.display()
    ))
    .await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;

    // The destination disappears.
    let moved = f.path("dest-moved");
    std::fs::rename(&dest, &moved).unwrap();
    let e = f
        .client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap_err();
    assert_ne!(sqlstate(&e), "XX000", "{e:?}");
    let comment = f
        .value("SELECT comment FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1")
        .await;
    assert!(
        comment.contains("backup of tenant app to file://"),
        "{comment}"
    );
    std::fs::rename(&moved, &dest).unwrap();
    f.sql(&format!(
        "ALTER SYSTEM RESTORE r1 FROM app TO 'dir://{}' WAIT",
        f.path("r1").display()
    ))
    .await;
    assert_same_tree(&source, &f.path("r1"));

    // A full destination: a 4 MiB tmpfs (needs root to mount; said so when it cannot run).
    let small = f.path("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "the full-destination half mounts a 4 MiB tmpfs: run the tests as root, as CI does"
    );
    std::fs::write(source.join("big"), noise(10, 16 << 20)).unwrap();
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}/repo' TENANT = app",
        small.display()
    ))
    .await;
    std::fs::write(source.join("small-only"), b"x").unwrap();
    let e = f
        .client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "53100", "{e:?}");
    assert!(e.as_db_error().unwrap().message().contains("full"), "{e:?}");
    let _ = std::process::Command::new("umount").arg(&small).status();
    // The set in the other destination still restores.
    f.sql(&format!(
        "ALTER SYSTEM RESTORE r2 FROM app AT 'file://{}' TO 'dir://{}' WAIT",
        dest.display(),
        f.path("r2").display()
    ))
    .await;
    assert_eq!(std::fs::read(f.path("r2/a")).unwrap(), noise(9, 1 << 20));
}

/// A destination holds everything a restore needs: a new server with an empty catalog restores
/// from it with `AT`.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_server_restores_from_the_destination_alone() {
    let f = Fixture::new().await;
    let source = f.path("source");
    fidelity_tree(&source);
    f.tenant("app", &source).await;
    let dest = f.path("dest");
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        dest.display()
    ))
    .await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;

    let fresh = TestServer::start().await;
    let client = fresh.connect().await;
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE app FROM app AT 'file://{}' TO 'dir://{}' WAIT",
            dest.display(),
            f.path("r").display()
        ))
        .await
        .unwrap();
    assert_same_tree(&source, &f.path("r"));
    // It reads the destination but does not write to another installation's destination.
    let e = client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
            dest.display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_can_be_cancelled_and_leaves_the_target_marked() {
    let f = Fixture::new().await;
    let source = f.path("source");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..8 {
        std::fs::write(source.join(format!("f{i}")), noise(20 + i, 32 << 20)).unwrap();
    }
    f.tenant("app", &source).await;
    f.sql(&format!(
        "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        f.path("dest").display()
    ))
    .await;
    f.sql("ALTER SYSTEM BACKUP TENANT app WAIT").await;
    f.sql(&format!(
        "ALTER SYSTEM RESTORE slow FROM app TO 'dir://{}'",
        f.path("r").display()
    ))
    .await;
    let canceled = f
        .client
        .batch_execute("ALTER SYSTEM CANCEL RESTORE slow")
        .await;
    let job_id = f.value("SELECT max(job_id) FROM backstop.job").await;
    let e = f
        .client
        .batch_execute(&format!("ALTER SYSTEM WAIT JOB {job_id}"))
        .await;
    match canceled {
        Ok(()) => {
            assert_eq!(sqlstate(&e.unwrap_err()), "57014");
            assert_eq!(
                f.value("SELECT status FROM cdb_ob_restore_history").await,
                "CANCELED"
            );
            assert!(
                walk(&f.path("r"))
                    .iter()
                    .any(|p| p.to_string_lossy().contains("incomplete")),
                "no marker"
            );
        }
        // The restore ended before the cancel arrived: nothing to cancel, said clearly.
        Err(c) => assert_eq!(sqlstate(&c), "55000"),
    }
}
