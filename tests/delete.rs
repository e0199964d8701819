//! `ALTER SYSTEM DELETE BACKUPSET` over the wire: the set leaves the destination at once, the
//! collector reclaims its space (at once with a grace period of 0, later otherwise), the sets
//! that stay restore byte for byte, and the last restorable set is never deleted.

mod common;

use std::time::Duration;

use common::repo::{live_bytes_in, stored};
use common::tree::{assert_same_tree, noise};
use common::{TestServer, assert_refused, until, value};

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_set_reclaims_what_only_it_held_and_keeps_the_others_restorable() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    std::fs::create_dir_all(&source).unwrap();
    // Incompressible, so that sizes say what was reclaimed.
    std::fs::write(source.join("old"), noise(1, 12 << 20)).unwrap();
    std::fs::write(source.join("kept"), noise(2, 3 << 20)).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    std::fs::remove_file(source.join("old")).unwrap();
    std::fs::write(source.join("new"), noise(3, 2 << 20)).unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();

    assert_refused(&client, "ALTER SYSTEM DELETE BACKUPSET 99", "42704", "99").await;
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1 COPY 1",
        "42704",
        "backup set 1 copy 1 does not exist",
    )
    .await;
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1 TENANT nobody",
        "42704",
        "nobody",
    )
    .await;
    // Both sets at once would leave nothing restorable.
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1, 2",
        "55000",
        "last restorable set",
    )
    .await;

    // With the default grace period the space is only marked.
    let before = stored(&dest);
    client
        .batch_execute("ALTER SYSTEM DELETE BACKUPSET 1 WAIT")
        .await
        .unwrap();
    let comment = value(
        &client,
        "SELECT type || ' ' || status || ' ' || comment FROM oceanbase.cdb_ob_backup_delete_job_history",
    )
    .await;
    assert!(
        comment.starts_with("DELETE BACKUP SET COMPLETED 1 deleted; collector in file://"),
        "{comment}"
    );
    assert!(
        comment.contains(": 0 object(s), 0 bytes reclaimed"),
        "{comment}"
    );
    assert!(comment.contains("marked"), "{comment}");
    // Nothing is deleted before the grace period (a repack may add packs meanwhile).
    assert!(stored(&dest) >= before, "{comment}");
    assert_eq!(
        value(
            &client,
            "SELECT is_cleanup_pending FROM oceanbase.cdb_ob_backup_set_files WHERE backup_set_id = 1"
        )
        .await,
        "t"
    );
    assert_eq!(
        value(
            &client,
            "SELECT task_type || ' ' || id || ' ' || status || ' ' || copy_id \
             FROM oceanbase.cdb_ob_backup_delete_task_history"
        )
        .await,
        "BACKUP SET 1 COMPLETED 0"
    );
    assert_eq!(
        value(
            &client,
            "SELECT file_status FROM oceanbase.cdb_ob_backup_set_files WHERE backup_set_id = 1"
        )
        .await,
        "DELETED"
    );
    assert!(
        !dest.join("sets/1001/1.set").exists(),
        "set 1 is not restorable any more"
    );

    // The last restorable set stays, whatever the statement says.
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 2",
        "55000",
        "last restorable set",
    )
    .await;
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1",
        "42704",
        "already deleted",
    )
    .await;

    // A third set, then set 2 deleted with no grace period: set 1's and set 2's own data go.
    std::fs::write(source.join("newer"), noise(4, 1 << 20)).unwrap();
    client
        .batch_execute(
            "ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT;
             ALTER SYSTEM SET backup_gc_grace_period = '0s';
             ALTER SYSTEM DELETE BACKUPSET 2 WAIT",
        )
        .await
        .unwrap();
    let after = stored(&dest);
    // Set 1's and set 2's own data is reclaimed (sparse packs are repacked), and every byte
    // that stays is live.
    assert!(
        before - after > 8 << 20,
        "set 1's own data is reclaimed: {before} -> {after}"
    );
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_set_files WHERE is_cleanup_pending"
        )
        .await,
        "0",
        "nothing waits for the collector any more"
    );
    let comment = value(
        &client,
        "SELECT comment FROM oceanbase.cdb_ob_backup_delete_job_history \
         ORDER BY job_id DESC LIMIT 1",
    )
    .await;
    let live: u64 = comment
        .split("; ")
        .find_map(|part| part.strip_suffix(" bytes live"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{comment}"));
    assert_eq!(after, live, "every stored byte is referenced: {comment}");
    assert!(!comment.contains("marked"), "{comment}");
    restore_and_compare(&client, "app2", None, &source, &tmp.path().join("restored")).await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_job_history WHERE status = 'COMPLETED'"
        )
        .await,
        "2"
    );

    // What stays validates whole, and copies to a second destination that then restores on
    // its own: the index files it keeps name packs that are gone, and neither trips on them.
    let copies = tmp.path().join("copies");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT;
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM BACKUP BACKUPSET ALL WAIT",
            copies.display()
        ))
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(DISTINCT file_status, ',') FROM oceanbase.cdb_ob_backup_set_files \
             WHERE file_status <> 'DELETED'"
        )
        .await,
        "AVAILABLE"
    );
    restore_and_compare(
        &client,
        "app3",
        Some(&copies),
        &source,
        &tmp.path().join("from-copy"),
    )
    .await;
}

/// Restores tenant app (from `at`, a destination, when given) as `name` into `target` and
/// compares the result with `expected` byte for byte.
async fn restore_and_compare(
    client: &tokio_postgres::Client,
    name: &str,
    at: Option<&std::path::Path>,
    expected: &std::path::Path,
    target: &std::path::Path,
) {
    let at = at.map_or(String::new(), |d| format!(" AT 'file://{}'", d.display()));
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE {name} FROM app{at} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap();
    assert_same_tree(expected, target);
}

/// The COMMENT of the newest ended delete job.
async fn last_delete_comment(client: &tokio_postgres::Client) -> String {
    value(
        client,
        "SELECT status || ' ' || comment FROM oceanbase.cdb_ob_backup_delete_job_history \
         ORDER BY job_id DESC LIMIT 1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_waits_for_the_copy_reading_its_set_can_be_cancelled_and_copies_go_with_copy() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (dest, copies) = (tmp.path().join("dest"), tmp.path().join("copies"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("big"), noise(21, 16 << 20)).unwrap();
    std::fs::write(b.join("small"), noise(22, 1 << 20)).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             CREATE TENANT other SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_gc_grace_period = '0s';
             ALTER SYSTEM BACKUP TENANT app WAIT",
            a.display(),
            b.display(),
            dest.display(),
            copies.display()
        ))
        .await
        .unwrap();
    std::fs::write(a.join("later"), noise(23, 1 << 20)).unwrap();
    client
        .batch_execute(
            "ALTER SYSTEM BACKUP TENANT app WAIT;
             ALTER SYSTEM BACKUP TENANT other WAIT",
        )
        .await
        .unwrap();

    // Set 3 is the other tenant's, and its only one.
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 3 TENANT app",
        "42704",
        "of tenant app",
    )
    .await;
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 3",
        "55000",
        "last restorable",
    )
    .await;

    // A copy of set 1 that takes seconds (16 MiB at 4 MiB/s): the delete task waits for it.
    client
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '4MB';
             ALTER SYSTEM BACKUP BACKUPSET 1;
             ALTER SYSTEM DELETE BACKUPSET 1",
        )
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_tasks WHERE comment LIKE \
         'waiting for job % (BACKUP_BACKUPSET), which uses backup set 1'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        dest.join("sets/1001/1.set").exists(),
        "deleted while copied"
    );
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1",
        "55000",
        "already being deleted",
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM CANCEL DELETE BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT COALESCE(max(status), 'none yet') FROM oceanbase.cdb_ob_backup_delete_job_history",
        "CANCELED",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT file_status FROM oceanbase.cdb_ob_backup_set_files WHERE backup_set_id = 1 \
             AND copy_id = 0"
        )
        .await,
        "AVAILABLE"
    );
    assert!(
        dest.join("sets/1001/1.set").exists(),
        "a cancelled delete leaves the set"
    );
    assert_refused(
        &client,
        "ALTER SYSTEM CANCEL DELETE BACKUP",
        "55000",
        "no deletion",
    )
    .await;

    // Again, waited for: it goes once the copy has ended, and the copy is whole.
    client
        .batch_execute("ALTER SYSTEM DELETE BACKUPSET 1 WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status || ' ' || result FROM oceanbase.cdb_ob_backup_backupset_job_history"
        )
        .await,
        "FINISH 0"
    );
    assert!(!dest.join("sets/1001/1.set").exists());
    let comment = last_delete_comment(&client).await;
    assert_eq!(
        std::fs::metadata(&dest).map(|_| stored(&dest)).unwrap(),
        live_bytes_in(&comment, &dest),
        "{comment}"
    );

    // The copy in the second destination is its only set there: kept, until set 2 is copied.
    client
        .batch_execute("ALTER SYSTEM SET backup_net_limit = '0'")
        .await
        .unwrap();
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPSET 1 COPY 1",
        "55000",
        "last restorable",
    )
    .await;
    client
        .batch_execute(
            "ALTER SYSTEM BACKUP BACKUPSET 2 WAIT;
             ALTER SYSTEM DELETE BACKUPSET 1 COPY 1 TENANT = app WAIT",
        )
        .await
        .unwrap();
    assert!(!copies.join("sets/1001/1.set").exists());
    assert!(copies.join("sets/1001/2.set").exists());
    let comment = last_delete_comment(&client).await;
    assert_eq!(
        stored(&copies),
        live_bytes_in(&comment, &copies),
        "the second destination is collected too: {comment}"
    );
    assert_eq!(
        value(
            &client,
            "SELECT type || ' ' || parameter || ' ' || task_count || ' ' || success_task_count \
             FROM oceanbase.cdb_ob_backup_delete_job_history ORDER BY job_id DESC LIMIT 1"
        )
        .await,
        "DELETE BACKUP SET 1 1 1"
    );
    assert_eq!(
        value(
            &client,
            "SELECT file_status FROM oceanbase.cdb_ob_backup_set_files WHERE backup_set_id = 1 \
             AND copy_id = 1"
        )
        .await,
        "DELETED"
    );
    restore_and_compare(
        &client,
        "app2",
        Some(&copies),
        &a,
        &tmp.path().join("restored"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_policy_runs_by_itself_on_its_clock_and_keeps_the_recovery_window() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    std::fs::create_dir_all(&source).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_gc_grace_period = '0s'",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    for n in 0..3u64 {
        std::fs::write(source.join(format!("f{n}")), noise(30 + n, 2 << 20)).unwrap();
        client
            .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
            .await
            .unwrap();
    }
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE OBSOLETE BACKUP",
        "55000",
        "no delete policy",
    )
    .await;
    assert_refused(
        &client,
        "ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW 'a week'",
        "22023",
        "RECOVERY_WINDOW",
    )
    .await;
    client
        .batch_execute(
            "ALTER SYSTEM ADD DELETE BACKUP POLICY = 'default' RECOVERY_WINDOW = '1d' TENANT = app",
        )
        .await
        .unwrap();
    assert_refused(
        &client,
        "ALTER SYSTEM ADD DELETE BACKUP POLICY 'other' RECOVERY_WINDOW '2d' TENANT app",
        "42710",
        "'default' already applies to tenant app",
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT tenant_id || ' ' || policy_name || ' ' || recovery_window \
             FROM oceanbase.cdb_ob_backup_delete_policy"
        )
        .await,
        "1001 default 1d"
    );

    // Now, every set is younger than the window: nothing is obsolete, the job says when
    // things expire (now - 1d).
    client
        .batch_execute("ALTER SYSTEM DELETE OBSOLETE BACKUP TENANT app WAIT")
        .await
        .unwrap();
    let (status, parameter) = (
        last_delete_comment(&client).await,
        value(
            &client,
            "SELECT parameter FROM oceanbase.cdb_ob_backup_delete_job_history",
        )
        .await,
    );
    assert!(status.starts_with("COMPLETED 0 deleted"), "{status}");
    let expiry = chrono::NaiveDateTime::parse_from_str(&parameter, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{parameter}: {e}"));
    let age = chrono::Utc::now().naive_utc() - expiry;
    assert!(
        (age.num_seconds() - 86_400).abs() < 600,
        "PARAMETER is now - 1d: {parameter}"
    );

    // Two days later on the policy's clock: the hourly run comes by itself, and keeps the
    // newest set that ended before the window (set 3) and everything after it.
    client
        .batch_execute("ALTER SYSTEM SET _backup_clock_offset = '2d'")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_job_history \
         WHERE comment LIKE 'started by the delete policy: 2 deleted%'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(backup_set_id || ' ' || file_status, ',' ORDER BY backup_set_id) \
             FROM oceanbase.cdb_ob_backup_set_files"
        )
        .await,
        "1 DELETED,2 DELETED,3 AVAILABLE"
    );
    // Once an hour, not once a tick: no second run follows.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_job_history"
        )
        .await,
        "2"
    );
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(type || ' ' || status, ',' ORDER BY job_id) \
             FROM oceanbase.cdb_ob_backup_clean_history"
        )
        .await,
        "DELETE OBSOLETE BACKUP COMPLETED,DELETE OBSOLETE BACKUP COMPLETED"
    );
    let comment = last_delete_comment(&client).await;
    assert_eq!(stored(&dest), live_bytes_in(&comment, &dest), "{comment}");
    restore_and_compare(&client, "app2", None, &source, &tmp.path().join("restored")).await;

    client
        .batch_execute("ALTER SYSTEM DROP DELETE BACKUP POLICY 'default' TENANT app")
        .await
        .unwrap();
    assert_refused(
        &client,
        "ALTER SYSTEM DROP DELETE BACKUP POLICY 'default' TENANT app",
        "42704",
        "does not exist",
    )
    .await;
    assert_refused(
        &client,
        "ALTER SYSTEM DELETE OBSOLETE BACKUP",
        "55000",
        "no delete policy",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_during_a_backup_only_marks_and_a_released_context_is_collected_later() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("first"), noise(41, 6 << 20)).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_gc_grace_period = '0s';
             ALTER SYSTEM SET backup_concurrency = 1;
             ALTER SYSTEM SET backup_checkpoint_interval = '1s';
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB';
             ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW '30d';
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    std::fs::remove_file(source.join("first")).unwrap();
    std::fs::write(source.join("second"), noise(42, 2 << 20)).unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();

    // A backup that takes seconds (288 MiB at 64 MiB/s) while set 1 is deleted. Checkpoints
    // come at file ends, and only once reading waits for the writers: more than the 256 MiB
    // of staged packs.
    let third = source.join("third");
    std::fs::create_dir_all(&third).unwrap();
    for n in 0..12u64 {
        std::fs::write(third.join(format!("part{n}")), noise(43 + n, 24 << 20)).unwrap();
    }
    client
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '64MB';
             ALTER SYSTEM BACKUP TENANT app",
        )
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_tasks WHERE status = 'DOING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    // It has a checkpoint past the unchanged 2 MiB file, holding new data: a suspend keeps a
    // context whose partial data is more than what set 2 already holds.
    until(
        &client,
        "SELECT count(*) FROM backstop.task WHERE status = 'DOING' \
         AND checkpoint_bytes > 4194304",
        "1",
        Duration::from_secs(30),
    )
    .await;
    let before = stored(&dest);
    client
        .batch_execute("ALTER SYSTEM DELETE BACKUPSET 1 WAIT")
        .await
        .unwrap();
    let comment = last_delete_comment(&client).await;
    assert!(
        comment.contains("once no backup, copy, restore or validation uses the destination"),
        "{comment}"
    );
    assert!(
        stored(&dest) >= before,
        "nothing is deleted under a running backup: {comment}"
    );
    // Suspended, the backup keeps a context whose partial data the collector keeps.
    client
        .batch_execute("ALTER SYSTEM SUSPEND BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM oceanbase.cdb_ob_backup_jobs",
        "SUSPENDED",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '0'; ALTER SYSTEM DELETE OBSOLETE BACKUP WAIT",
        )
        .await
        .unwrap();
    let comment = last_delete_comment(&client).await;
    assert!(!comment.contains("marked"), "set 1 is swept now: {comment}");
    let with_context = stored(&dest);
    assert_eq!(with_context, live_bytes_in(&comment, &dest), "{comment}");
    let checkpoints = std::fs::read_dir(dest.join("checkpoints/1001"))
        .unwrap()
        .count();
    assert_eq!(checkpoints, 1, "the context's checkpoint stays");

    // Released, the context waits for the collector, which then reclaims its partial data.
    let id = value(
        &client,
        "SELECT context_id FROM oceanbase.cdb_ob_backup_restartable_contexts",
    )
    .await;
    client
        .batch_execute(&format!("ALTER SYSTEM DELETE BACKUP CONTEXT '{id}'"))
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT is_cleanup_pending || ' ' || is_restartable \
             FROM oceanbase.cdb_ob_backup_restartable_contexts"
        )
        .await,
        "true false"
    );
    client
        .batch_execute("ALTER SYSTEM DELETE OBSOLETE BACKUP WAIT")
        .await
        .unwrap();
    let comment = last_delete_comment(&client).await;
    assert!(
        stored(&dest) + (1 << 20) <= with_context,
        "the partial data is reclaimed: {with_context} -> {} ({comment})",
        stored(&dest)
    );
    assert_eq!(stored(&dest), live_bytes_in(&comment, &dest), "{comment}");
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_restartable_contexts"
        )
        .await,
        "0"
    );
    std::fs::remove_dir_all(&third).unwrap();
    restore_and_compare(&client, "app2", None, &source, &tmp.path().join("restored")).await;
}
