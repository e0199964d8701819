//! A lost catalog and lost index files lose no backup: `ALTER SYSTEM REPAIR BACKUP DEST`
//! rebuilds the index from the packs and the catalog's view from the set descriptors, and every
//! set restores. A damaged catalog file stops the server at start with a message naming the
//! file and the way back.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tree::{assert_same_tree, copy_tree, fidelity_tree, noise};
use common::{ChildServer, connect_as, value};

fn remove_catalog(data: &Path) {
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("catalog.db")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_catalog_and_lost_index_files_lose_no_backup() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fidelity_tree(&source);
    let dest = dir.path().join("dest");
    let data = dir.path().join("data");
    let server = ChildServer::start(&data);
    let c = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'; ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
         ALTER SYSTEM BACKUP DATABASE WAIT",
        source.display(),
        dest.display()
    ))
    .await
    .unwrap();
    let first = dir.path().join("as-of-first");
    copy_tree(&source, &first);
    std::fs::write(source.join("added"), noise(5, 3 << 20)).unwrap();
    c.batch_execute("ALTER SYSTEM BACKUP INCREMENTAL DATABASE WAIT")
        .await
        .unwrap();
    drop(c);
    server.kill();

    // The catalog and every index file are gone.
    remove_catalog(&data);
    let mut removed = 0;
    for entry in std::fs::read_dir(dest.join("index")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
        removed += 1;
    }
    assert!(removed >= 2);

    let server = ChildServer::start(&data);
    let c = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'",
        source.display()
    ))
    .await
    .unwrap();
    let uri = format!("file://{}", dest.display());
    let rows = c
        .simple_query(&format!("ALTER SYSTEM REPAIR BACKUP DEST '{uri}'"))
        .await
        .unwrap();
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a summary row");
    assert_ne!(row.get("packs_indexed"), Some("0"));
    assert_eq!(row.get("sets"), Some("2"));
    assert_eq!(row.get("sets_repointed"), Some("2"));
    assert_eq!(row.get("sets_registered"), Some("2"));
    assert_eq!(row.get("unrepairable"), Some(""));
    assert!(row.get("adopted_from").is_some_and(|o| !o.is_empty()));
    assert_eq!(
        value(
            &c,
            "SELECT string_agg(backup_type || ' ' || file_status, ',' ORDER BY backup_set_id) \
             FROM oceanbase.CDB_OB_BACKUP_SET_FILES"
        )
        .await,
        "FULL AVAILABLE,INC AVAILABLE"
    );
    let sets: Vec<String> = value(
        &c,
        "SELECT string_agg(CAST(backup_set_id AS VARCHAR), ',' ORDER BY backup_set_id) \
         FROM oceanbase.CDB_OB_BACKUP_SET_FILES",
    )
    .await
    .split(',')
    .map(str::to_string)
    .collect();

    // Every set restores, and validates.
    c.batch_execute(&format!("ALTER SYSTEM SET DATA_BACKUP_DEST = '{uri}'"))
        .await
        .unwrap();
    for (set, expected) in sets.iter().zip([&first, &source]) {
        let target = dir.path().join(format!("restored-{set}"));
        c.batch_execute(&format!(
            "ALTER SYSTEM RESTORE r{set} FROM app UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap();
        assert_same_tree(expected, &target);
    }
    c.batch_execute("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'physical' WAIT")
        .await
        .unwrap();
    // The repaired server backs up into it again, past the sets it registered.
    c.batch_execute("ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(&c, "SELECT count(*) FROM oceanbase.CDB_OB_BACKUP_SET_FILES").await,
        "3"
    );
}

#[test]
fn a_damaged_catalog_stops_the_server_naming_the_file_and_the_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(ChildServer::start(&data));
    let catalog = data.join("catalog.db");
    let mut bytes = std::fs::read(&catalog).unwrap();
    for b in &mut bytes[..100] {
        *b = 0x5a;
    }
    std::fs::write(&catalog, bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("catalog.db{suffix}")));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("BACKSTOP_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server started on a damaged catalog"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(said.contains(&catalog.display().to_string()), "{said}");
    assert!(said.contains("REPAIR BACKUP DEST"), "{said}");
}
