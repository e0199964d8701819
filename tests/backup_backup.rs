//! Backup-backup of sets through the wire (SPEC §2.4): copies to BACKUP_BACKUP_DEST carry
//! COPY_ID ≥ 1, send only what the second destination lacks and restore on their own; CANCEL
//! BACKUP BACKUPSET ends the job at once and a new copy starts over; STOP BACKUP BACKUPSET is
//! graceful. Every story ends in a restore from the copy compared with the source.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tree::{assert_same_tree, copy_tree, fidelity_tree, noise};
use common::{ADMIN_PASSWORD, ChildServer, connect_as, sqlstate, until, value};
use tokio_postgres::Client;

async fn setup(client: &Client, root: &Path) {
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}'",
            root.join("source").display(),
            root.join("dest").display(),
            root.join("copy").display()
        ))
        .await
        .unwrap();
}

/// A server in `root/data` with tenant app and both destinations set, as [`setup`] makes them.
async fn start_with_app(root: &Path) -> (ChildServer, Client) {
    let server = ChildServer::start(&root.join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, root).await;
    (server, client)
}

fn big_files(root: &Path, seed: u64, files: u64, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..files {
        std::fs::write(root.join(format!("big{i:02}")), noise(seed + i, mib << 20)).unwrap();
    }
}

async fn restore_from_copy(client: &Client, root: &Path, name: &str, set: i64, expected: &Path) {
    let target = root.join(name);
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE {name} FROM app AT 'file://{}' UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
            root.join("copy").display(),
            target.display()
        ))
        .await
        .unwrap();
    assert_same_tree(expected, &target);
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_restore_on_their_own_and_carry_their_copy_id() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    fidelity_tree(&source);
    let (_server, client) = start_with_app(root).await;
    // No set yet: a nightly script's copy succeeds with nothing to do, recorded as a job of no
    // tasks (tests/progress.rs checks its NOTICE).
    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET ALL WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT status || ' ' || result || ' ' || comment FROM cdb_ob_backup_backupset_job_history").await,
        "FINISH 0 nothing to copy: no backup set needed a copy"
    );
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_backupset_task_history"
        )
        .await,
        "0"
    );

    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();
    let first = root.join("first");
    copy_tree(&source, &first);
    big_files(&source.join("more"), 5, 2, 2);
    client
        .batch_execute("ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT")
        .await
        .unwrap();

    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET ALL WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status || ' ' || result || ' ' || type FROM cdb_ob_backup_backupset_job_history"
        )
        .await,
        "FINISH 0 A"
    );
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_backupset_job").await,
        "0"
    );
    assert_eq!(
        value(&client, "SELECT string_agg(backup_set_id || ':' || copy_id, ',' ORDER BY backup_set_id, copy_id) FROM cdb_ob_backup_set_files").await,
        "1:0,1:1,2:0,2:1"
    );
    let second_task = value(
        &client,
        "SELECT comment FROM cdb_ob_backup_backupset_task_history WHERE backup_set_id = 2",
    )
    .await;
    assert!(
        second_task.contains("already there"),
        "set 2 shares objects with set 1: {second_task}"
    );

    // Both copies restore from the copy destination alone.
    restore_from_copy(&client, root, "r1", 1, &first).await;
    restore_from_copy(&client, root, "r2", 2, &source).await;

    // Nothing left to copy there: a job of no tasks; a second copy elsewhere gets COPY_ID 2.
    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET ALL WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT comment FROM cdb_ob_backup_backupset_job_history ORDER BY job_id DESC LIMIT 1"
        )
        .await,
        "nothing to copy: no backup set needed a copy"
    );
    client
        .batch_execute(&format!(
            "ALTER SYSTEM BACKUP BACKUPSET 2 BACKUP_BACKUP_DEST = 'file://{}' WAIT",
            root.join("copy2").display()
        ))
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT max(copy_id) FROM cdb_ob_backup_set_files WHERE backup_set_id = 2"
        )
        .await,
        "2"
    );
    let err = client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET 9")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_ends_the_copy_at_once_and_issuing_it_again_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    big_files(&source, 100, 24, 16);
    let (_server, client) = start_with_app(root).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();
    let err = client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP BACKUPSET")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    assert!(
        err.as_db_error()
            .unwrap()
            .detail()
            .unwrap()
            .contains("9049")
    );

    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET 1")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_backupset_job WHERE status = 'BACKUP'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP BACKUPSET")
        .await
        .unwrap();
    // As OceanBase documents it: the job leaves the view at once, for the _HISTORY with CANCEL.
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.CDB_OB_BACKUP_BACKUPSET_JOB"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &client,
            "SELECT status FROM cdb_ob_backup_backupset_job_history"
        )
        .await,
        "CANCEL"
    );
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_backupset_task_history WHERE status = 'CANCEL'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_set_files WHERE copy_id > 0"
        )
        .await,
        "0"
    );

    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET 1 WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT status || ' ' || result FROM cdb_ob_backup_backupset_job_history ORDER BY job_id DESC LIMIT 1").await,
        "FINISH 0"
    );
    assert_eq!(
        value(
            &client,
            "SELECT copy_id FROM cdb_ob_backup_set_files WHERE copy_id > 0"
        )
        .await,
        "1",
        "the cancelled copy left no copy behind"
    );
    restore_from_copy(&client, root, "r", 1, &source).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_lets_the_set_being_copied_finish_and_starts_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    big_files(&source, 200, 12, 16);
    let (_server, client) = start_with_app(root).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();
    let first = root.join("first");
    copy_tree(&source, &first);
    big_files(&source, 300, 12, 16);
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();

    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPSET ALL")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_backupset_task WHERE status = 'BACKUP'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM STOP BACKUP BACKUPSET")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_backupset_job",
        "0",
        Duration::from_secs(120),
    )
    .await;
    let end = value(
        &client,
        "SELECT status || ': ' || comment FROM cdb_ob_backup_backupset_job_history",
    )
    .await;
    assert!(
        end.starts_with("CANCEL: stopped gracefully by user: 1 set(s) copied, 1 not started"),
        "{end}"
    );
    assert_eq!(
        value(&client, "SELECT string_agg(backup_set_id || ':' || copy_id, ',') FROM cdb_ob_backup_set_files WHERE copy_id > 0").await,
        "1:1"
    );
    restore_from_copy(&client, root, "r", 1, &first).await;
}

/// A tenant whose log is archived into pieces of `per_piece` segments each, all frozen.
async fn archived_pieces(client: &Client, root: &Path, pieces: u64, per_piece: u64, mib: usize) {
    let log = root.join("log");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::create_dir_all(root.join("source")).unwrap();
    client
        .batch_execute(&format!(
            "ALTER TENANT app SET LOG_SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{} PIECE_SWITCH_INTERVAL=1s'; \
             ALTER SYSTEM SET log_segment_quiet_time = '100ms'; \
             ALTER SYSTEM ARCHIVELOG WAIT",
            log.display(),
            root.join("arch").display()
        ))
        .await
        .unwrap();
    let mut n = 0;
    for _ in 0..pieces {
        for _ in 0..per_piece {
            n += 1;
            std::fs::write(log.join(format!("seg{n:06}")), noise(n, mib << 20)).unwrap();
        }
        until(
            client,
            "SELECT count(*) FROM backstop.archive_segment",
            &n.to_string(),
            Duration::from_secs(60),
        )
        .await;
        // Wait until the pieces holding them have frozen (how many depends on the machine's
        // speed against PIECE_SWITCH_INTERVAL).
        until(
            client,
            "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE status <> 'FROZEN' AND file_count > 0",
            "0",
            Duration::from_secs(60),
        )
        .await;
    }
}

/// Every segment of the frozen pieces is in the copy destination, byte for byte as archived.
fn assert_pieces_copied(root: &Path, copy: &str) {
    let archived = root.join("arch/archive/1001");
    for entry in std::fs::read_dir(&archived).unwrap() {
        let entry = entry.unwrap();
        let copied = root.join(copy).join("archive/1001").join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&copied).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pieces_are_copied_and_a_cancelled_piece_copy_leaves_the_view() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("source")).unwrap();
    let (_server, client) = start_with_app(root).await;
    let err = client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP BACKUPPIECE")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    archived_pieces(&client, root, 2, 12, 4).await;
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG WAIT")
        .await
        .unwrap();

    // Cancel while it copies: retried with a fresh destination if a copy ended first.
    let mut cancelled = false;
    for attempt in 0..5 {
        let dest = root.join(format!("cancelled{attempt}"));
        client
            .batch_execute(&format!(
                "ALTER SYSTEM BACKUP BACKUPPIECE ALL BACKUP_BACKUP_DEST = 'file://{}'",
                dest.display()
            ))
            .await
            .unwrap();
        if client
            .batch_execute("ALTER SYSTEM CANCEL BACKUP BACKUPPIECE")
            .await
            .is_ok()
        {
            cancelled = true;
            break;
        }
    }
    assert!(cancelled, "every piece copy ended before its cancel");
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.CDB_OB_BACKUP_BACKUPPIECE_JOB"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &client,
            "SELECT status FROM cdb_ob_backup_backuppiece_job_history ORDER BY job_id DESC LIMIT 1"
        )
        .await,
        "CANCEL"
    );

    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPPIECE ALL WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT status || ' ' || result || ' ' || type FROM cdb_ob_backup_backuppiece_job_history ORDER BY job_id DESC LIMIT 1").await,
        "FINISH 0 0"
    );
    let frozen = value(
        &client,
        "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE status = 'FROZEN'",
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_piece_files WHERE copy_id = 1"
        )
        .await,
        frozen
    );
    assert_pieces_copied(root, "copy");
    // Nothing left to copy: success, and a job of no tasks.
    client
        .batch_execute("ALTER SYSTEM BACKUP BACKUPPIECE ALL WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT status || ' ' || result || ' ' || comment FROM cdb_ob_backup_backuppiece_job_history ORDER BY job_id DESC LIMIT 1").await,
        "FINISH 0 nothing to copy: no backup piece needed a copy"
    );

    // A piece copy has no graceful stop; CANCEL ALL BACKUP FORCE ends one in its own words
    // and it leaves the live view (it stayed there for ever when FORCE wrote 4.x words).
    client
        .batch_execute(&format!(
            "ALTER SYSTEM BACKUP BACKUPPIECE ALL NOT BACKED UP 2 TIMES BACKUP_BACKUP_DEST = 'file://{}'",
            root.join("forced").display()
        ))
        .await
        .unwrap();
    common::assert_refused(
        &client,
        "ALTER SYSTEM STOP BACKUP BACKUPPIECE",
        "55000",
        "CANCEL BACKUP BACKUPPIECE",
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_backuppiece_job"
        )
        .await,
        "0"
    );
    let ended = value(
        &client,
        "SELECT status FROM cdb_ob_backup_backuppiece_job_history ORDER BY job_id DESC LIMIT 1",
    )
    .await;
    assert!(ended == "CANCEL" || ended == "FINISH", "{ended}");
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_log_is_copied_continuously_and_stop_pauses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("source")).unwrap();
    let (_server, client) = start_with_app(root).await;
    let err = client
        .batch_execute("ALTER SYSTEM STOP BACKUP ARCHIVELOG")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    archived_pieces(&client, root, 1, 4, 1).await;

    client
        .batch_execute("ALTER SYSTEM START BACKUP ARCHIVELOG")
        .await
        .unwrap();
    let archived =
        || async { value(&client, "SELECT sum(size) FROM backstop.archive_segment").await };
    let total = archived().await;
    until(
        &client,
        "SELECT input_bytes FROM oceanbase.CDB_OB_BACKUP_BACKUP_ARCHIVELOG WHERE tenant_id = 1001",
        &total,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT status FROM oceanbase.CDB_OB_BACKUP_BACKUP_ARCHIVELOG WHERE tenant_id = 1"
        )
        .await,
        "DOING"
    );
    let err = client
        .batch_execute("ALTER SYSTEM START BACKUP ARCHIVELOG")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");

    // As OceanBase documents it: STOP leaves the system's row PAUSED.
    client
        .batch_execute("ALTER SYSTEM STOP BACKUP ARCHIVELOG")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status FROM oceanbase.CDB_OB_BACKUP_BACKUP_ARCHIVELOG WHERE tenant_id = 1"
        )
        .await,
        "PAUSED"
    );
    // Paused: newly archived segments are not copied; START goes on with them.
    let log = root.join("log");
    for n in 5..=7u64 {
        std::fs::write(log.join(format!("seg{n:06}")), noise(n, 1 << 20)).unwrap();
    }
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        "7",
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        value(
            &client,
            "SELECT input_bytes FROM cdb_ob_backup_backup_archivelog WHERE tenant_id = 1001"
        )
        .await,
        total
    );
    client
        .batch_execute("ALTER SYSTEM START BACKUP ARCHIVELOG")
        .await
        .unwrap();
    let total = archived().await;
    until(
        &client,
        "SELECT input_bytes FROM cdb_ob_backup_backup_archivelog WHERE tenant_id = 1001",
        &total,
        Duration::from_secs(60),
    )
    .await;
    assert_pieces_copied(root, "copy");
    until(
        &client,
        "SELECT count(*) > 0 FROM cdb_ob_backup_piece_files WHERE copy_id = 1",
        "t",
        Duration::from_secs(60),
    )
    .await;
    // A round started after START is followed too.
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG WAIT; ALTER SYSTEM ARCHIVELOG WAIT")
        .await
        .unwrap();
    for n in 8..=9u64 {
        std::fs::write(log.join(format!("seg{n:06}")), noise(n, 1 << 20)).unwrap();
    }
    until(
        &client,
        "SELECT log_archive_round || ' ' || status FROM cdb_ob_backup_backup_archivelog \
         WHERE tenant_id = 1001",
        "2 DOING",
        Duration::from_secs(60),
    )
    .await;
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment WHERE round_id = 2",
        "2",
        Duration::from_secs(60),
    )
    .await;
    let round_two = value(
        &client,
        "SELECT sum(size) FROM backstop.archive_segment WHERE round_id = 2",
    )
    .await;
    until(
        &client,
        "SELECT input_bytes FROM cdb_ob_backup_backup_archivelog WHERE tenant_id = 1001",
        &round_two,
        Duration::from_secs(60),
    )
    .await;
    assert_pieces_copied(root, "copy");
    // CANCEL ALL BACKUP FORCE ends it.
    client
        .batch_execute("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status FROM cdb_ob_backup_backup_archivelog WHERE tenant_id = 1"
        )
        .await,
        "STOP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_restores_until_a_time_with_its_copied_log_when_the_originals_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    fidelity_tree(&source);
    let (_server, client) = start_with_app(root).await;
    archived_pieces(&client, root, 1, 3, 1).await;
    client
        .batch_execute(
            "ALTER SYSTEM BACKUP TENANT app WAIT; \
             ALTER SYSTEM NOARCHIVELOG WAIT; \
             ALTER SYSTEM BACKUP BACKUPSET ALL WAIT; \
             ALTER SYSTEM BACKUP BACKUPPIECE ALL WAIT",
        )
        .await
        .unwrap();
    // The data destination and the archive are lost; only the copy is left.
    std::fs::rename(root.join("dest"), root.join("dest-lost")).unwrap();
    std::fs::rename(root.join("arch"), root.join("arch-lost")).unwrap();
    let until: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
    let restore = |name: &str, at: &str| {
        format!(
            "ALTER SYSTEM RESTORE {name} FROM app AT 'file://{}' UNTIL TIME = '{}' TO 'dir://{}' WAIT",
            root.join(at).display(),
            until.format("%Y-%m-%d %H:%M:%S%.6f"),
            root.join(name).display()
        )
    };
    // From the data destination alone the log cannot be read: refused before anything is
    // written, naming what is missing.
    common::assert_refused(&client, &restore("r0", "dest-lost"), "58P01", "/arch").await;
    assert!(!root.join("r0").exists());
    client.batch_execute(&restore("r", "copy")).await.unwrap();
    let target = root.join("r");
    assert_same_tree(&source, &target);
    for n in 1..=3u64 {
        assert_eq!(
            std::fs::read(root.join("r.log").join(format!("seg{n:06}"))).unwrap(),
            noise(n, 1 << 20),
            "segment {n} restored from the copy"
        );
    }
}
