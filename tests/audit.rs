//! The audit trail as a DBA reads it: CDB_OB_AUDIT holds every statement that changed anything
//! or tried to, with user, client address, time, masked text and result, and keeps it across a
//! kill -9 of the server.

mod common;

use common::{ChildServer, connect_as, rows, value};

#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_audited_masked_and_kept_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ChildServer::start(&data);
    let admin = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    admin
        .batch_execute(
            "CREATE USER watcher PASSWORD 'watcher-secret-1' ROLE monitor; \
             ALTER SYSTEM SET max_connections = 50; \
             CREATE VIEW oceanbase.my_jobs AS SELECT job_id FROM oceanbase.cdb_ob_backup_jobs; \
             SET ENCRYPTION ON IDENTIFIED BY 'encryption-secret-2' ONLY",
        )
        .await
        .unwrap();
    // Reads are not audited; a failed change is, with its SQLSTATE.
    value(&admin, "SELECT count(*) FROM oceanbase.cdb_ob_backup_jobs").await;
    admin
        .batch_execute("ALTER SYSTEM BACKUP TENANT nosuch")
        .await
        .unwrap_err();
    let watcher = connect_as(server.port, "watcher", "watcher-secret-1").await;
    watcher
        .batch_execute("ALTER SYSTEM SET max_connections = 1")
        .await
        .unwrap_err();

    let expected = [
        ("admin", "CREATE USER", "SUCCESS", "NULL"),
        ("admin", "ALTER SYSTEM SET", "SUCCESS", "NULL"),
        ("admin", "CREATE VIEW", "SUCCESS", "NULL"),
        ("admin", "SET ENCRYPTION", "SUCCESS", "NULL"),
        ("admin", "ALTER SYSTEM BACKUP TENANT", "FAILED", "42704"),
        ("watcher", "ALTER SYSTEM SET", "FAILED", "42501"),
    ];
    let check = |trail: &[Vec<String>]| {
        let got: Vec<(&str, &str, &str, &str)> = trail
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()))
            .collect();
        assert_eq!(got, expected);
        for row in trail {
            assert!(row[4].starts_with("127.0.0.1:"), "{row:?}");
            for secret in ["watcher-secret-1", "encryption-secret-2"] {
                assert!(!row.iter().any(|c| c.contains(secret)), "{row:?}");
            }
        }
        assert!(
            trail[0][5].contains("PASSWORD '********'"),
            "{:?}",
            trail[0]
        );
        assert!(
            trail[3][5].contains("IDENTIFIED BY '********'"),
            "{:?}",
            trail[3]
        );
        assert!(trail[2][5].contains("my_jobs"), "{:?}", trail[2]);
    };
    let query = "SELECT user_name, statement_type, result, error_code, client_address, statement \
                 FROM oceanbase.CDB_OB_AUDIT ORDER BY audit_id";
    let trail = rows(&admin, query).await;
    check(&trail);
    assert_eq!(
        value(
            &admin,
            "SELECT count(*) FROM oceanbase.CDB_OB_AUDIT WHERE time > now() - INTERVAL '1 hour'"
        )
        .await,
        "6"
    );

    let port = server.port;
    server.kill();
    let server = ChildServer::start_at(&data, port);
    let admin = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    check(&rows(&admin, query).await);
}
