//! Backups, copies, restores, deletions and the delete policy run together while the server is
//! killed (-9) at chosen moments, twenty-odd times. Afterwards every remaining set validates
//! physically and restores, the newest byte for byte, and a last collection leaves nothing
//! unreferenced: every stored byte of both destinations is one the collector counts as live.

mod common;

use std::time::Duration;

use common::repo::{live_bytes_in, stored};
use common::tree::{assert_same_tree, noise};
use common::{ADMIN_PASSWORD, ChildServer, connect_as, until, value};

const KILLS: u64 = 22;

/// A small deterministic generator: the same moments every run.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_at_once_killed_twenty_times_keeps_every_set_and_leaves_no_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let (source, dest, copies) = (
        tmp.path().join("source"),
        tmp.path().join("dest"),
        tmp.path().join("copies"),
    );
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..8u64 {
        std::fs::write(source.join(format!("file{i}")), noise(i, 3 << 20)).unwrap();
    }
    let server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_gc_grace_period = '0s';
             ALTER SYSTEM SET backup_gc_repack_threshold = 80;
             ALTER SYSTEM SET backup_restart_delay = '0s';
             ALTER SYSTEM SET backup_delete_policy_interval = '2s';
             ALTER SYSTEM SET backup_net_limit = '4MB';
             ALTER SYSTEM BACKUP TENANT app WAIT;
             ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW '4s'",
            source.display(),
            dest.display(),
            copies.display()
        ))
        .await
        .unwrap();
    drop(client);
    let mut server = Some(server);
    let mut moments = Moments(0x5eed);
    let mut busy_at_kill = 0;
    for round in 0..KILLS {
        let running = match server.take() {
            Some(s) => s,
            None => ChildServer::start(&data_dir),
        };
        let client = connect_as(running.port, "admin", ADMIN_PASSWORD).await;
        // Two files change every round: new sets share most chunks with older ones.
        for k in 0..2 {
            let i = moments.next(8);
            std::fs::write(
                source.join(format!("file{i}")),
                noise(1000 + round * 2 + k, 3 << 20),
            )
            .unwrap();
        }
        // Sets accumulate: most rounds first finish a backup (after the one a restart resumed).
        if round % 3 != 0 {
            until(
                &client,
                "SELECT count(*) FROM backstop.job WHERE job_kind = 'BACKUP' \
                 AND status IN ('INIT', 'DOING')",
                "0",
                Duration::from_secs(60),
            )
            .await;
            client
                .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
                .await
                .ok();
        }
        // Refusals (a job of that kind running, nothing to copy, the last set) are expected:
        // only what runs matters here.
        let oldest = value(
            &client,
            "SELECT COALESCE(min(backup_set_id), 0) FROM cdb_ob_backup_set_files \
             WHERE copy_id = 0 AND file_status = 'AVAILABLE'",
        )
        .await;
        let statements = [
            "ALTER SYSTEM BACKUP TENANT app".to_string(),
            format!("ALTER SYSTEM DELETE BACKUPSET {oldest}"),
            "ALTER SYSTEM BACKUP BACKUPSET ALL".to_string(),
            format!(
                "ALTER SYSTEM RESTORE r{round} FROM app TO 'dir://{}'",
                tmp.path().join(format!("r{round}")).display()
            ),
        ];
        for sql in &statements {
            client.batch_execute(sql).await.ok();
        }
        tokio::time::sleep(Duration::from_millis(100 + moments.next(1200))).await;
        let busy = value(
            &client,
            "SELECT count(*) FROM backstop.job WHERE status = 'DOING' \
             AND job_kind IN ('BACKUP', 'DELETE')",
        )
        .await;
        busy_at_kill += u32::from(busy != "0");
        running.kill();
    }
    assert!(
        busy_at_kill >= KILLS as u32 / 2,
        "most kills land while a backup or a deletion writes: {busy_at_kill} of {KILLS}"
    );

    // Quiet: no policy, no limit; what was interrupted resumes or ends by itself.
    let server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    client
        .batch_execute(
            "ALTER SYSTEM DROP DELETE BACKUP POLICY 'default';
             ALTER SYSTEM SET backup_net_limit = '0'",
        )
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM backstop.job WHERE status NOT IN \
         ('COMPLETED', 'FAILED', 'CANCELED', 'FINISH', 'SUSPENDED')",
        "0",
        Duration::from_secs(120),
    )
    .await;
    // Contexts left by the kills are released: their partial data is garbage now.
    let contexts = value(
        &client,
        "SELECT COALESCE(string_agg(context_id, ','), '') FROM cdb_ob_backup_restartable_contexts \
         WHERE is_restartable",
    )
    .await;
    for id in contexts.split(',').filter(|c| !c.is_empty()) {
        client
            .batch_execute(&format!("ALTER SYSTEM DELETE BACKUP CONTEXT '{id}'"))
            .await
            .unwrap();
    }

    // The deletions really ran under the kills, by statement and by policy.
    let deleted: u64 = value(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_set_files WHERE file_status = 'DELETED'",
    )
    .await
    .parse()
    .unwrap();
    let by_policy: u64 = value(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_delete_job_history WHERE type = 'DELETE OBSOLETE BACKUP'",
    )
    .await
    .parse()
    .unwrap();
    eprintln!("{busy_at_kill} kills while busy; {deleted} sets deleted; {by_policy} policy runs");
    assert!(
        deleted >= 3 && by_policy >= 1,
        "{deleted} deleted, {by_policy} policy runs"
    );

    // Every set the catalog keeps, in both destinations, validates whole and restores.
    client
        .batch_execute(
            "ALTER SYSTEM BACKUP TENANT app WAIT;
             ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT",
        )
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_set_files WHERE copy_id = 0 \
             AND file_status NOT IN ('AVAILABLE', 'DELETED')"
        )
        .await,
        "0"
    );
    let sets = value(
        &client,
        "SELECT string_agg(CAST(backup_set_id AS VARCHAR), ',' ORDER BY backup_set_id) \
         FROM cdb_ob_backup_set_files WHERE copy_id = 0 AND file_status = 'AVAILABLE'",
    )
    .await;
    let newest: i64 = sets.split(',').next_back().unwrap().parse().unwrap();
    for set in sets.split(',') {
        let target = tmp.path().join(format!("check{set}"));
        client
            .batch_execute(&format!(
                "ALTER SYSTEM RESTORE c{set} FROM app UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
                target.display()
            ))
            .await
            .unwrap_or_else(|e| panic!("set {set} restores: {e:?}"));
        if set.parse::<i64>().unwrap() == newest {
            assert_same_tree(&source, &target);
        }
    }
    let copied = value(
        &client,
        "SELECT COALESCE(string_agg(CAST(backup_set_id AS VARCHAR), ','), '') \
         FROM cdb_ob_backup_set_files WHERE copy_id > 0 AND file_status = 'AVAILABLE'",
    )
    .await;
    for set in copied.split(',').filter(|s| !s.is_empty()) {
        client
            .batch_execute(&format!(
                "ALTER SYSTEM RESTORE k{set} FROM app AT 'file://{}' UNTIL BACKUPSET = {set} \
                 TO 'dir://{}' WAIT",
                copies.display(),
                tmp.path().join(format!("copy{set}")).display()
            ))
            .await
            .unwrap_or_else(|e| panic!("copy of set {set} restores: {e:?}"));
    }

    // A last collection: every stored byte is referenced.
    client
        .batch_execute(
            "ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW '3650d';
             ALTER SYSTEM DELETE OBSOLETE BACKUP WAIT",
        )
        .await
        .unwrap();
    let comment = value(
        &client,
        "SELECT comment FROM cdb_ob_backup_delete_job_history ORDER BY job_id DESC LIMIT 1",
    )
    .await;
    assert!(!comment.contains("marked"), "{comment}");
    for dir in [&dest, &copies] {
        if !dir.join("packs").exists() {
            continue;
        }
        let live = live_bytes_in(&comment, dir);
        assert_eq!(stored(dir), live, "{}: {comment}", dir.display());
    }
    assert_eq!(
        std::fs::read_dir(dest.join("checkpoints/1001"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "no checkpoint outlives its context"
    );
}
