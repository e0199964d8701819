//! Faults at the destination and at the source drive SPEC §4.5's rules through a real server:
//! an I/O error is retried 3 times `backup_retry_delay` apart, a full destination is not, and the
//! COMMENT says what failed, where and why. Destination faults are injected with
//! `BACKSTOP_STORAGE_FAULTS` (src/storage/faults.rs). Every story ends in a restore compared
//! with the source.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tree::{assert_same_tree, copy_tree, noise};
use common::{ADMIN_PASSWORD, ChildServer, connect_as, sqlstate, value};
use tokio_postgres::Client;

fn tree(root: &Path, seed: u64, files: u64, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..files {
        std::fs::write(root.join(format!("file{i:02}")), noise(seed + i, mib << 20)).unwrap();
    }
}

async fn setup(client: &Client, source: &Path, dest: &Path, retry_delay: &str) {
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET backup_retry_delay = '{retry_delay}'",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
}

async fn restore_and_compare(
    client: &Client,
    name: &str,
    until_set: Option<&str>,
    expected: &Path,
) {
    let target = expected.parent().unwrap().join(name);
    let until = until_set.map_or(String::new(), |s| format!(" UNTIL BACKUPSET {s}"));
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE {name} FROM app{until} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap();
    assert_same_tree(expected, &target);
}

/// `BACKUP ... WAIT` under a time limit: a rule that retried where it must not would hang.
async fn backup(client: &Client) -> Result<(), tokio_postgres::Error> {
    tokio::time::timeout(
        Duration::from_secs(120),
        client.batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT"),
    )
    .await
    .expect("the backup ends within 2 minutes")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_fails_twice_is_retried_and_the_backup_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    tree(&source, 1, 4, 2);
    let server = ChildServer::start_with_env(
        &tmp.path().join("data"),
        &[("BACKSTOP_STORAGE_FAULTS", "put:eio:2:packs/")],
    );
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, &source, &dest, "100ms").await;

    backup(&client).await.unwrap();
    assert_eq!(
        value(&client, "SELECT status FROM cdb_ob_backup_job_history").await,
        "COMPLETED"
    );
    restore_and_compare(&client, "r", None, &source).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_keeps_failing_fails_the_job_after_three_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest, data) = (
        tmp.path().join("source"),
        tmp.path().join("dest"),
        tmp.path().join("data"),
    );
    tree(&source, 10, 3, 2);
    let first = tmp.path().join("first");
    copy_tree(&source, &first);
    {
        let server = ChildServer::start(&data);
        let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
        setup(&client, &source, &dest, "100ms").await;
        backup(&client).await.unwrap();
        server.kill();
    }

    // The destination now fails every pack write with EIO.
    tree(&source, 20, 3, 2);
    let server =
        ChildServer::start_with_env(&data, &[("BACKSTOP_STORAGE_FAULTS", "put:eio:*:packs/")]);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let err = backup(&client).await.unwrap_err();
    assert_eq!(sqlstate(&err), "58030", "{err:?}");
    let comment = value(
        &client,
        "SELECT status || ': ' || comment FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1",
    )
    .await;
    assert!(comment.starts_with("FAILED: "), "{comment}");
    for what in ["backup of tenant app", "after 3 retries", "packs/", "write"] {
        assert!(comment.contains(what), "{comment} does not say {what:?}");
    }
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_set_files WHERE status = 'COMPLETED'"
        )
        .await,
        "1"
    );
    // The set made before the faults still restores, identical to the tree it was made from.
    let set = value(
        &client,
        "SELECT min(backup_set_id) FROM cdb_ob_backup_set_files",
    )
    .await;
    restore_and_compare(&client, "r", Some(&set), &first).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_destination_fails_at_once_without_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    tree(&source, 30, 3, 2);
    let server = ChildServer::start_with_env(
        &tmp.path().join("data"),
        &[("BACKSTOP_STORAGE_FAULTS", "put:enospc:1:packs/")],
    );
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    // A retry would wait an hour; the time limit of `backup` catches it.
    setup(&client, &source, &dest, "1h").await;

    let err = backup(&client).await.unwrap_err();
    assert_eq!(sqlstate(&err), "53100", "{err:?}");
    let comment = value(&client, "SELECT comment FROM cdb_ob_backup_job_history").await;
    assert!(comment.contains("full"), "{comment}");
    assert!(!comment.contains("retries"), "{comment}");

    // Room again (the one injected fault is spent): the next backup completes and restores.
    backup(&client).await.unwrap();
    restore_and_compare(&client, "r", None, &source).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_before_the_first_task_started_fails_the_job_as_canceled_by_user() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    tree(&source, 40, 4, 2);
    // Every job waits 2 s before its first task (BACKSTOP_HOLD_JOBS), so the STOP comes first.
    let server =
        ChildServer::start_with_env(&tmp.path().join("data"), &[("BACKSTOP_HOLD_JOBS", "2s")]);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, &source, &dest, "1s").await;

    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app")
        .await
        .unwrap();
    client
        .batch_execute("ALTER SYSTEM STOP BACKUP")
        .await
        .unwrap();
    let job = wait_for_end(&client).await;
    assert_eq!(
        value(
            &client,
            &format!("SELECT status || ': ' || comment FROM cdb_ob_backup_job_history WHERE job_id = {job}"),
        )
        .await,
        "FAILED: Operation was canceled by user"
    );
    assert_eq!(
        value(
            &client,
            &format!("SELECT status FROM cdb_ob_backup_task_history WHERE job_id = {job}"),
        )
        .await,
        "CANCELED"
    );
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_set_files").await,
        "0"
    );

    // The server goes on: a plain backup completes and restores.
    backup(&client).await.unwrap();
    restore_and_compare(&client, "r", None, &source).await;
}

/// Waits until no backup job is running, and returns the newest one's id.
async fn wait_for_end(client: &Client) -> String {
    tokio::time::timeout(Duration::from_secs(60), async {
        while value(client, "SELECT count(*) FROM cdb_ob_backup_jobs").await != "0" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stopped job ends within a minute");
    value(client, "SELECT max(job_id) FROM cdb_ob_backup_job_history").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_source_fails_at_once_without_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    tree(&source, 50, 2, 1);
    let first = tmp.path().join("first");
    copy_tree(&source, &first);
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    // A retry would wait an hour; the time limit of `backup` catches it.
    setup(&client, &source, &dest, "1h").await;
    backup(&client).await.unwrap();

    std::fs::remove_dir_all(&source).unwrap();
    let err = backup(&client).await.unwrap_err();
    assert_eq!(sqlstate(&err), "58P01", "{err:?}");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(message.contains(&source.display().to_string()), "{message}");
    assert!(!message.contains("retries"), "{message}");
    // The set made before still restores.
    restore_and_compare(&client, "r", None, &first).await;
}
