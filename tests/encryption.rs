//! Encrypted backups as a DBA runs them: `SET ENCRYPTION` before the first backup to an empty
//! destination, `SET DECRYPTION` before a restore or validation, passwords added, rotated and
//! removed, a server killed and restarted, and a new server restoring `AT` the destination with
//! the password alone. Every restore is compared with its source; the destination is searched
//! for the source's plaintext and the passwords are searched for in the server's log.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::tree::{assert_same_tree, fidelity_tree};
use common::{ChildServer, assert_refused, connect_as, value};
use tokio_postgres::Client;

const MARKER: &[u8] = b"backstop-encryption-test-plaintext ";

/// Every file under `root` (relative path -> bytes), `keys/` left out.
fn files_outside_keys(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if relative.starts_with("keys") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                found.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

async fn admin(port: u16) -> Client {
    connect_as(port, "admin", common::ADMIN_PASSWORD).await
}

async fn restore(client: &Client, name: &str, at: Option<&Path>, target: &Path) {
    let at = at
        .map(|p| format!(" AT 'file://{}'", p.display()))
        .unwrap_or_default();
    let sql = format!(
        "ALTER SYSTEM RESTORE {name} FROM app{at} TO 'dir://{}' WAIT",
        target.display()
    );
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_backups_need_their_password_and_survive_restarts_and_new_servers() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fidelity_tree(&source);
    std::fs::write(source.join("marker.txt"), MARKER.repeat(3000)).unwrap();
    let dest = dir.path().join("dest");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let server = ChildServer::start_logging_to(&data, &log);
    let c = admin(server.port).await;
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'; \
         ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
        source.display(),
        dest.display()
    ))
    .await
    .unwrap();

    // The first backup of a session with SET ENCRYPTION encrypts the empty destination.
    c.batch_execute("SET ENCRYPTION ON IDENTIFIED BY 'first-secret' ONLY")
        .await
        .unwrap();
    c.batch_execute("ALTER SYSTEM BACKUP DATABASE WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &c,
            "SELECT encryption_mode FROM oceanbase.CDB_OB_BACKUP_SET_FILES"
        )
        .await,
        "PASSWORD"
    );
    assert_eq!(
        value(
            &c,
            "SELECT encryption_mode FROM oceanbase.CDB_OB_BACKUP_JOB_HISTORY"
        )
        .await,
        "PASSWORD"
    );
    let stored = files_outside_keys(&dest);
    assert!(stored.len() > 4, "{:?}", stored.keys());
    for (path, bytes) in &stored {
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "{} holds the source's plaintext",
            path.display()
        );
        assert!(
            !bytes.windows(10).any(|w| w == b"marker.txt"),
            "{} holds a file name",
            path.display()
        );
    }

    // Another session backs up without a password: the server keeps the key.
    let other = admin(server.port).await;
    other
        .batch_execute("ALTER SYSTEM BACKUP INCREMENTAL DATABASE WAIT")
        .await
        .unwrap();

    // A restore or validation without the password, or with a wrong one, writes nothing.
    let refused_target = dir.path().join("refused");
    let restore_sql = format!(
        "ALTER SYSTEM RESTORE r0 FROM app TO 'dir://{}' WAIT",
        refused_target.display()
    );
    assert_refused(&other, &restore_sql, "55000", "tenant app").await;
    assert_refused(
        &other,
        "ALTER SYSTEM VALIDATE BACKUPSET 1 LEVEL = 'physical' WAIT",
        "55000",
        "backup set 1",
    )
    .await;
    other
        .batch_execute("SET DECRYPTION IDENTIFIED BY 'not-it'")
        .await
        .unwrap();
    assert_refused(&other, &restore_sql, "28P01", "tenant app").await;
    assert!(!refused_target.exists());

    // With the right one among others, it restores exactly.
    other
        .batch_execute("SET DECRYPTION IDENTIFIED BY 'not-it', 'first-secret'")
        .await
        .unwrap();
    let target = dir.path().join("r1");
    restore(&other, "r1", None, &target).await;
    assert_same_tree(&source, &target);
    other
        .batch_execute("ALTER SYSTEM VALIDATE BACKUPSET 2 LEVEL = 'physical' WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &other,
            "SELECT status FROM oceanbase.CDB_OB_BACKUP_SET_FILES WHERE backup_set_id = 2"
        )
        .await,
        "COMPLETED"
    );

    // Passwords are added, rotated and removed by rewriting key slots only.
    let before = files_outside_keys(&dest);
    c.batch_execute(
        "ALTER SYSTEM ADD BACKUP PASSWORD 'second-secret' IDENTIFIED BY 'first-secret'",
    )
    .await
    .unwrap();
    assert_refused(
        &c,
        "ALTER SYSTEM ADD BACKUP PASSWORD 'third' IDENTIFIED BY 'guess'",
        "28P01",
        "does not open",
    )
    .await;
    c.batch_execute("ALTER SYSTEM DROP BACKUP PASSWORD 'first-secret'")
        .await
        .unwrap();
    c.batch_execute("ALTER SYSTEM CHANGE BACKUP PASSWORD 'second-secret' TO 'rotated-secret'")
        .await
        .unwrap();
    assert_refused(
        &c,
        "ALTER SYSTEM DROP BACKUP PASSWORD 'rotated-secret'",
        "55000",
        "last password",
    )
    .await;
    assert_eq!(
        files_outside_keys(&dest),
        before,
        "a password change rewrote data"
    );
    let keys = std::fs::read_dir(dest.join("keys")).unwrap().count();
    assert_eq!(keys, 1);
    // The old password no longer opens it.
    assert_refused(&other, &restore_sql, "28P01", "tenant app").await;

    // A killed server restarts and backs up without the password being typed again (app, and
    // r1, the tenant the restore registered).
    let port = server.port;
    server.kill();
    let server = ChildServer::start_at(&data, port);
    let c = admin(server.port).await;
    c.batch_execute("ALTER SYSTEM BACKUP INCREMENTAL DATABASE WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &c,
            "SELECT string_agg(encryption_mode || ' ' || status, ',' ORDER BY backup_set_id) \
             FROM oceanbase.CDB_OB_BACKUP_SET_FILES"
        )
        .await,
        ["PASSWORD COMPLETED"; 4].join(",")
    );
    drop(c);
    server.kill();

    // A new server restores AT the destination with the password alone.
    let fresh = ChildServer::start(&dir.path().join("fresh-data"));
    let n = admin(fresh.port).await;
    let at_target = dir.path().join("r2");
    let at_sql = format!(
        "ALTER SYSTEM RESTORE r2 FROM app AT 'file://{}' TO 'dir://{}' WAIT",
        dest.display(),
        at_target.display()
    );
    assert_refused(&n, &at_sql, "55000", "SET DECRYPTION").await;
    n.batch_execute("SET DECRYPTION IDENTIFIED BY 'rotated-secret'")
        .await
        .unwrap();
    restore(&n, "r2", Some(&dest), &at_target).await;
    assert_same_tree(&source, &at_target);
    drop(fresh);

    // No password ever reached the log.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("destination encrypted"), "{logged}");
    for secret in ["first-secret", "second-secret", "rotated-secret", "not-it"] {
        assert!(!logged.contains(secret), "the log shows {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_with_plain_backups_is_not_encrypted_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fidelity_tree(&source);
    let server = ChildServer::start(&dir.path().join("data"));
    let c = admin(server.port).await;
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'; \
         ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
         ALTER SYSTEM BACKUP DATABASE WAIT",
        source.display(),
        dir.path().join("plain").display()
    ))
    .await
    .unwrap();
    assert_eq!(
        value(
            &c,
            "SELECT encryption_mode FROM oceanbase.CDB_OB_BACKUP_SET_FILES"
        )
        .await,
        "NONE"
    );
    c.batch_execute("SET ENCRYPTION ON IDENTIFIED BY 'late' ONLY")
        .await
        .unwrap();
    assert_refused(
        &c,
        "ALTER SYSTEM BACKUP DATABASE WAIT",
        "55000",
        "unencrypted backups",
    )
    .await;
    assert_refused(&c, "SET DECRYPTION IDENTIFIED BY ''", "22023", "non-empty").await;
    // A plain destination restores without any password.
    let target = dir.path().join("r");
    restore(&c, "r", None, &target).await;
    assert_same_tree(&source, &target);
}

/// A copy of an encrypted set is sealed under its source's key and opened by the source's
/// passwords; a password added, changed or dropped at the source is added, changed or dropped
/// at its copies too, so that a leaked password rotated away opens none of them.
#[tokio::test(flavor = "multi_thread")]
async fn copies_share_their_source_key_and_follow_its_password_changes() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fidelity_tree(&source);
    std::fs::write(source.join("marker.txt"), MARKER.repeat(3000)).unwrap();
    let (dest, copies) = (dir.path().join("dest"), dir.path().join("copies"));
    let server = ChildServer::start(&dir.path().join("data"));
    let c = admin(server.port).await;
    c.batch_execute(&format!(
        "CREATE TENANT app SOURCE = 'dir://{}'; \
         ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
         ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}'; \
         SET ENCRYPTION ON IDENTIFIED BY 'leaked' ONLY; \
         ALTER SYSTEM BACKUP DATABASE WAIT; \
         ALTER SYSTEM BACKUP BACKUPSET ALL WAIT",
        source.display(),
        dest.display(),
        copies.display()
    ))
    .await
    .unwrap();
    assert_eq!(
        value(
            &c,
            "SELECT string_agg(CAST(copy_id AS VARCHAR) || ' ' || encryption_mode || ' ' || status, \
             ',' ORDER BY copy_id) FROM oceanbase.CDB_OB_BACKUP_SET_FILES"
        )
        .await,
        "0 PASSWORD COMPLETED,1 PASSWORD COMPLETED"
    );
    // The copy holds none of the source's plaintext.
    for (path, bytes) in files_outside_keys(&copies) {
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "{} holds plaintext",
            path.display()
        );
    }
    let restore_copy = |name: &str| {
        format!(
            "ALTER SYSTEM RESTORE {name} FROM app AT 'file://{}' TO 'dir://{}' WAIT",
            copies.display(),
            dir.path().join(name).display()
        )
    };
    c.batch_execute("SET DECRYPTION IDENTIFIED BY 'leaked'")
        .await
        .unwrap();
    c.batch_execute(&restore_copy("before")).await.unwrap();
    assert_same_tree(&source, &dir.path().join("before"));

    // Rotated at the source, without AT: the copy follows.
    c.batch_execute("ALTER SYSTEM CHANGE BACKUP PASSWORD 'leaked' TO 'rotated'")
        .await
        .unwrap();
    assert_refused(&c, &restore_copy("with_leaked"), "28P01", "no password").await;
    c.batch_execute("SET DECRYPTION IDENTIFIED BY 'rotated'")
        .await
        .unwrap();
    c.batch_execute(&restore_copy("after")).await.unwrap();
    assert_same_tree(&source, &dir.path().join("after"));

    // Added at the source: it opens the copy too; dropped there: it opens neither.
    c.batch_execute("ALTER SYSTEM ADD BACKUP PASSWORD 'spare' IDENTIFIED BY 'rotated'")
        .await
        .unwrap();
    c.batch_execute("SET DECRYPTION IDENTIFIED BY 'spare'")
        .await
        .unwrap();
    c.batch_execute(&restore_copy("spare")).await.unwrap();
    c.batch_execute("ALTER SYSTEM DROP BACKUP PASSWORD 'rotated'")
        .await
        .unwrap();
    c.batch_execute("SET DECRYPTION IDENTIFIED BY 'rotated'")
        .await
        .unwrap();
    assert_refused(&c, &restore_copy("dropped"), "28P01", "no password").await;
    for root in [&dest, &copies] {
        assert_eq!(
            std::fs::read_dir(root.join("keys")).unwrap().count(),
            1,
            "{}: only the spare password's slot is left",
            root.display()
        );
    }

    // A copy that cannot be read is named, after the change was made at the source.
    let format = copies.join("backstop.format");
    let kept = std::fs::read(&format).unwrap();
    std::fs::remove_file(&format).unwrap();
    std::fs::create_dir(&format).unwrap();
    assert_refused(
        &c,
        "ALTER SYSTEM ADD BACKUP PASSWORD 'later' IDENTIFIED BY 'spare'",
        "58030",
        &format!(
            "not at the copies that share its key: file://{}",
            copies.display()
        ),
    )
    .await;
    std::fs::remove_dir(&format).unwrap();
    std::fs::write(&format, kept).unwrap();
    assert_eq!(std::fs::read_dir(dest.join("keys")).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(copies.join("keys")).unwrap().count(), 1);
}
