//! `ALTER SYSTEM DELETE BACKUPSET` over the wire: the set leaves the destination at once, the
//! collector reclaims its space (at once with a grace period of 0, later otherwise), the sets
//! that stay restore byte for byte, and the last restorable set is never deleted.

mod common;

use std::path::Path;

use common::tree::{assert_same_tree, noise};
use common::{TestServer, assert_refused, value};

/// Bytes of packs, index files and manifest segments in a destination.
fn stored(dest: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let meta = e.metadata().unwrap();
                if meta.is_dir() {
                    walk(&e.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }
    ["packs", "index", "manifests"]
        .iter()
        .map(|d| walk(&dest.join(d)))
        .sum()
}

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
        "0A000",
        "DELETE BACKUPSET",
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
        comment
            .starts_with("DELETE BACKUP SET COMPLETED collector: 0 object(s), 0 bytes reclaimed"),
        "{comment}"
    );
    assert!(comment.contains("marked"), "{comment}");
    assert_eq!(
        stored(&dest),
        before,
        "nothing is deleted before the grace period"
    );
    assert_eq!(
        value(
            &client,
            "SELECT backup_set_id || ' ' || status FROM oceanbase.cdb_ob_backup_delete_task_history"
        )
        .await,
        "1 COMPLETED"
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
    // Set 1's own data is reclaimed, but for what shares a pack with live data (packs are not
    // rewritten): several MiB here, and every byte that stays is live.
    assert!(
        before - after > 4 << 20,
        "set 1's own data is reclaimed: {before} -> {after}"
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
    let restored = tmp.path().join("restored");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE app2 FROM app TO 'dir://{}' WAIT",
            restored.display()
        ))
        .await
        .unwrap();
    assert_same_tree(&source, &restored);
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
    let from_copy = tmp.path().join("from-copy");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE app3 FROM app AT 'file://{}' TO 'dir://{}' WAIT",
            copies.display(),
            from_copy.display()
        ))
        .await
        .unwrap();
    assert_same_tree(&source, &from_copy);
}
