//! The wire protocol as real clients use it: tokio-postgres with the extended protocol and
//! parameters, authentication and roles, query cancel, and durability across `kill -9`.

mod common;

use std::time::Duration;

use common::{ADMIN_PASSWORD, ChildServer, TestServer, connect_as, sqlstate, try_connect_as};
use tokio_postgres::error::ErrorPosition;

#[tokio::test]
async fn extended_protocol_binds_parameters() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let rows = client
        .query(
            "SELECT name, value FROM cdb_ob_backup_parameter WHERE name = $1",
            &[&"backup_concurrency"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "0");

    let statement = client
        .prepare("SELECT count(*) FROM dba_ob_tenants WHERE tenant_id >= $1")
        .await
        .unwrap();
    let all: i64 = client.query_one(&statement, &[&1i64]).await.unwrap().get(0);
    let none: i64 = client.query_one(&statement, &[&2i64]).await.unwrap().get(0);
    assert_eq!((all, none), (1, 0));

    // backstop's own statements work through the extended protocol too.
    client
        .execute("ALTER SYSTEM SET backup_concurrency = 2", &[])
        .await
        .unwrap();
    let value: String = client
        .query_one(
            "SELECT value FROM cdb_ob_backup_parameter WHERE name = 'backup_concurrency'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, "2");
}

#[tokio::test]
async fn binary_results_decode_in_the_driver() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let row = client
        .query_one(
            "SELECT tenant_id, tenant_name, create_time, tenant_id = 1 AS is_sys, 1.5 AS ratio \
             FROM dba_ob_tenants",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, String>(1), "sys");
    let created: std::time::SystemTime = row.get(2);
    assert!(created.elapsed().unwrap() < Duration::from_secs(600));
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, f64>(4), 1.5);
}

#[tokio::test]
async fn syntax_errors_carry_the_position_of_the_offending_token() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let e = client
        .simple_query("ALTER SYSTEM BACKUP FOO")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42601");
    assert_eq!(db.position(), Some(&ErrorPosition::Original(21)));
    // A failed statement leaves the session usable.
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn roles_are_enforced() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    admin
        .batch_execute("CREATE USER watcher PASSWORD 'w-pw' ROLE monitor")
        .await
        .unwrap();
    admin
        .batch_execute("CREATE USER ops PASSWORD 'o-pw' ROLE operator")
        .await
        .unwrap();

    let monitor = connect_as(server.port(), "watcher", "w-pw").await;
    monitor
        .simple_query("SELECT * FROM cdb_ob_backup_jobs")
        .await
        .unwrap();
    let e = monitor
        .simple_query("ALTER SYSTEM SET backup_concurrency = 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("needs the admin role")
    );
    let e = monitor
        .simple_query("CREATE VIEW v AS SELECT 1 AS x")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");

    let operator = connect_as(server.port(), "ops", "o-pw").await;
    let e = operator
        .simple_query("CREATE USER x PASSWORD 'y'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    operator
        .simple_query("CREATE VIEW mine AS SELECT 1 AS x")
        .await
        .unwrap();

    // A role change applies to the next statement of an open session.
    admin
        .batch_execute("ALTER USER watcher ROLE admin")
        .await
        .unwrap();
    monitor
        .simple_query("ALTER SYSTEM SET backup_concurrency = 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_are_refused() {
    let server = TestServer::start().await;
    let e = try_connect_as(server.port(), "admin", "wrong")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "28P01");
    let e = try_connect_as(server.port(), "nobody", "x")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "28P01");
}

#[tokio::test]
async fn query_cancel_answers_57014_and_keeps_the_session() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    // The bound only keeps a broken cancel from hanging the suite.
    let e = tokio::time::timeout(
        Duration::from_secs(300),
        client.simple_query("SELECT count(*) FROM range(1, 100000000000) a"),
    )
    .await
    .expect("the cancel request ends the query")
    .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(sqlstate(&e), "57014");
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn the_first_admin_password_is_generated_once_into_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config = backstop::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        admin_password: None,
        tls_cert: None,
        tls_key: None,
        tls_required: false,
    };
    let server = backstop::server::start(config.clone()).await.unwrap();
    let file = data_dir.join("admin-password");
    let password = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    connect_as(server.addr.port(), "admin", &password).await;
    server.shutdown.cancel();

    let public = backstop::server::ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: tmp.path().join("other"),
        ..config
    };
    let refused = backstop::server::start(public)
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("without a password"),
        "{refused}"
    );
}

/// Every acknowledged change is on disk when the statement returns: kill -9 right after it.
#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let source = tmp.path().join("src");
    std::fs::create_dir(&source).unwrap();

    let server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    client
        .batch_execute(&format!(
            "CREATE TENANT durable SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET backup_checkpoint_interval = '45s'; \
             CREATE USER kept PASSWORD 'kept-pw' ROLE operator; \
             CREATE VIEW kept_view AS SELECT tenant_name FROM dba_ob_tenants",
            source.display()
        ))
        .await
        .unwrap();
    server.kill();

    let server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "kept", "kept-pw").await;
    let names: Vec<String> = client
        .query(
            "SELECT tenant_name FROM kept_view ORDER BY tenant_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["durable", "sys"]);
    let interval: String = client
        .query_one(
            "SELECT value FROM cdb_ob_backup_parameter WHERE name = 'backup_checkpoint_interval'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(interval, "45s");
}

/// Nothing a client sends crashes the server: garbage, then a normal query on a new session.
#[tokio::test]
async fn malformed_input_does_not_hurt_the_server() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    for garbage in [
        &b"\x00\x00\x00\x08\x04\xd2\x16\x2f"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xff; 64],
    ] {
        let mut socket = tokio::net::TcpStream::connect(server.server.addr)
            .await
            .unwrap();
        let _ = socket.write_all(garbage).await;
        drop(socket);
    }
    let client = server.connect().await;
    for sql in [
        "ALTER SYSTEM SET",
        "ALTER SYSTEM RESTORE",
        "CREATE TENANT 'x'",
        "\u{0}",
        "SELECT '\u{feff}'",
    ] {
        let _ = client.simple_query(sql).await;
    }
    client.simple_query("SELECT 1").await.unwrap();
}
