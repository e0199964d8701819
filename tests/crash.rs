//! kill -9 of the server during a backup: the destination stays a valid repository, every
//! earlier set still validates and restores, and the interrupted job shows why it ended.

mod common;

use std::time::Duration;

use common::tree::{assert_same_tree, copy_tree, noise};
use common::{ADMIN_PASSWORD, ChildServer, connect_as, value};

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_server_mid_backup_leaves_every_earlier_set_restorable() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let source = tmp.path().join("source");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..12 {
        std::fs::write(source.join(format!("file{i:02}")), noise(i, 16 << 20)).unwrap();
    }
    let snapshot = tmp.path().join("snapshot");

    let server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    copy_tree(&source, &snapshot);
    // Later backups write at most 32 MiB/s, so that the kills below land while they write.
    client
        .batch_execute("ALTER SYSTEM SET backup_net_limit = '32MB'")
        .await
        .unwrap();
    let mut server = Some(server);
    let mut kills_while_writing = 0;

    // Three kills at different moments of later backups, each followed by a restart.
    for (round, delay_ms) in [(0u64, 150u64), (1, 400), (2, 900)] {
        for i in 0..4 {
            std::fs::write(
                source.join(format!("file{i:02}")),
                noise(100 + round * 10 + i, 16 << 20),
            )
            .unwrap();
        }
        let running = server.take().unwrap();
        let client = connect_as(running.port, "admin", ADMIN_PASSWORD).await;
        client
            .batch_execute("ALTER SYSTEM BACKUP TENANT app")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let writing = value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING'",
        )
        .await
            == "1";
        running.kill();
        kills_while_writing += u32::from(writing);

        let restarted = ChildServer::start(&data_dir);
        let client = connect_as(restarted.port, "admin", ADMIN_PASSWORD).await;
        let interrupted = value(&client, "SELECT status || ' ' || comment FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1").await;
        assert!(
            interrupted.starts_with("COMPLETED") || interrupted.contains("SERVER_RESTART"),
            "{interrupted}"
        );
        assert_eq!(
            value(&client, "SELECT count(*) FROM cdb_ob_backup_jobs").await,
            "0"
        );
        // Everything the catalog knows, and everything the destination holds, validates.
        client
            .batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
            .await
            .unwrap();
        client
            .batch_execute(&format!(
                "ALTER SYSTEM VALIDATE DATABASE AT 'file://{}' LEVEL = 'physical' WAIT",
                dest.display()
            ))
            .await
            .unwrap();
        server = Some(restarted);
    }

    assert!(
        kills_while_writing >= 2,
        "only {kills_while_writing} of 3 kills landed while data was being written"
    );

    // The first set restores exactly; and new backups still work on the same destination.
    let running = server.take().unwrap();
    let client = connect_as(running.port, "admin", ADMIN_PASSWORD).await;
    let first = value(
        &client,
        "SELECT min(backup_set_id) FROM cdb_ob_backup_set_files",
    )
    .await;
    let target = tmp.path().join("restored");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE first FROM app UNTIL BACKUPSET = {first} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap();
    assert_same_tree(&snapshot, &target);
    client
        .batch_execute("ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT")
        .await
        .unwrap();
    let latest = tmp.path().join("latest");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE latest FROM app TO 'dir://{}' WAIT",
            latest.display()
        ))
        .await
        .unwrap();
    assert_same_tree(&source, &latest);
}
