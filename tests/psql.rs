//! psql, installed from Debian's packages by scripts/setup-test-env.sh, against the server:
//! `\d`, `\dv`, `\dn`, `\d view`, the `+` forms, `\df`, `\l`, `\du`, and TLS.

mod common;

use common::{TestServer, psql};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_describes_the_views() {
    let server = TestServer::start().await;
    let port = server.port();
    let out = tokio::task::spawn_blocking(move || {
        (
            stdout(&psql(port, &["-c", "\\dv"])),
            stdout(&psql(port, &["-c", "\\d"])),
            stdout(&psql(port, &["-c", "\\dn"])),
            stdout(&psql(port, &["-c", "\\d oceanbase.cdb_ob_backup_jobs"])),
            stdout(&psql(port, &["-c", "\\dv backstop.*"])),
        )
    })
    .await
    .unwrap();
    let (dv, d, dn, jobs, base) = out;
    assert!(
        dv.contains("cdb_ob_backup_jobs") && dv.contains("dba_ob_tenants"),
        "{dv}"
    );
    assert!(dv.contains("| view"), "{dv}");
    assert!(d.contains("cdb_ob_archivelog_piece_files"), "{d}");
    assert!(dn.contains("oceanbase") && dn.contains("backstop"), "{dn}");
    assert!(
        jobs.contains("View \"oceanbase.cdb_ob_backup_jobs\""),
        "{jobs}"
    );
    assert!(jobs.contains("job_id") && jobs.contains("bigint"), "{jobs}");
    assert!(
        jobs.contains("start_timestamp") && jobs.contains("timestamp without time zone"),
        "{jobs}"
    );
    assert!(base.contains("tenant") && base.contains("job"), "{base}");
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_lists_schemas_functions_databases_and_roles() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE USER watcher PASSWORD 'watch-secret' ROLE monitor")
        .await
        .unwrap();
    let port = server.port();
    let (dv_plus, d_plus, df, l, du, dn) = tokio::task::spawn_blocking(move || {
        (
            stdout(&psql(port, &["-c", "\\dv+ cdb_ob_backup_set*"])),
            stdout(&psql(port, &["-c", "\\d+ cdb_ob_backup_set_files"])),
            stdout(&psql(port, &["-c", "\\df"])),
            stdout(&psql(port, &["-c", "\\l"])),
            stdout(&psql(port, &["-c", "\\du"])),
            stdout(&psql(port, &["-c", "\\dn+"])),
        )
    })
    .await
    .unwrap();
    // \dv+ adds persistence, size and the description of each view.
    assert!(
        dv_plus.contains("cdb_ob_backup_set_files")
            && dv_plus.contains("permanent")
            && dv_plus.contains("OceanBase view CDB_OB_BACKUP_SET_FILES"),
        "{dv_plus}"
    );
    // \d+ adds storage and description columns, and prints the view's definition.
    assert!(
        d_plus.contains("Storage")
            && d_plus.contains("backup_set_id")
            && d_plus.contains("View definition:"),
        "{d_plus}"
    );
    assert!(
        df.contains("backstop_display_bytes") && df.contains("bigint"),
        "{df}"
    );
    assert!(l.contains("backstop") && l.contains("UTF8"), "{l}");
    assert!(
        du.contains("admin") && du.contains("watcher") && du.contains("Superuser"),
        "{du}"
    );
    let watcher = du.lines().find(|l| l.contains("watcher")).unwrap();
    assert!(
        !watcher.contains("Superuser"),
        "a monitor is no superuser: {watcher}"
    );
    assert!(
        dn.contains("oceanbase") && dn.contains("the OceanBase backup views"),
        "{dn}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_runs_statements_and_reports_errors() {
    let server = TestServer::start().await;
    let port = server.port();
    let (ok, bad) = tokio::task::spawn_blocking(move || {
        (
            psql(
                port,
                &[
                    "-c",
                    "ALTER SYSTEM SET backup_concurrency = 3",
                    "-c",
                    "SELECT value FROM cdb_ob_backup_parameter WHERE name = 'backup_concurrency'",
                ],
            ),
            psql(port, &["-c", "ALTER SYSTEM BACKUP FOO"]),
        )
    })
    .await
    .unwrap();
    let out = stdout(&ok);
    assert!(out.contains("ALTER SYSTEM") && out.contains(" 3"), "{out}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("syntax error at or near \"FOO\""), "{err}");
    assert!(
        err.contains("LINE 1: ALTER SYSTEM BACKUP FOO") && err.contains("^"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_connections_with_sslmode_require() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("server.crt");
    let key = tmp.path().join("server.key");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = backstop::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: tmp.path().join("data"),
        admin_password: Some(common::ADMIN_PASSWORD.into()),
        tls_cert: Some(cert),
        tls_key: Some(key),
        tls_required: true,
    };
    let server = backstop::server::start(config).await.unwrap();
    let port = server.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .args(["-X", "-At", "-c", "SELECT 1"])
            .arg(format!(
                "host=127.0.0.1 port={port} user=admin dbname=backstop sslmode=require"
            ))
            .env("PGPASSWORD", common::ADMIN_PASSWORD)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // --tls-required: a client that does not negotiate TLS is refused before it logs in.
    let plain = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .args(["-X", "-At", "-c", "SELECT 1"])
            .arg(format!(
                "host=127.0.0.1 port={port} user=admin dbname=backstop sslmode=disable"
            ))
            .env("PGPASSWORD", common::ADMIN_PASSWORD)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!plain.status.success());
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(said.contains("TLS connections only"), "{said}");
}
