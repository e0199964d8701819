//! The drivers DBAs' tools are built on, run for real against the server: psycopg 3 (Python
//! scripts, Grafana's query builder queries), node-postgres (services, pgAdmin/DBeaver browser
//! queries) and pgjdbc (Java, DBeaver, DataGrip). Each connects, runs simple and extended
//! queries and a prepared statement, meets errors with their SQLSTATE, receives a NOTICE,
//! cancels a WAIT on a running job, and reads the catalog's metadata. They are installed by
//! scripts/setup-test-env.sh; the scripts are in tests/drivers/.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::tree::noise;
use common::{ADMIN_PASSWORD, TestServer, value};

/// A server with tenant `app`, both destinations, and a backup slowed to run for minutes: the
/// job the drivers wait on and cancel their wait of.
async fn server_with_a_running_backup() -> (TestServer, tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..4 {
        std::fs::write(source.join(format!("f{i}")), noise(i, 2 << 20)).unwrap();
    }
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET backup_net_limit = '32KB'; \
             ALTER SYSTEM BACKUP TENANT app",
            source.display(),
            tmp.path().join("dest").display(),
            tmp.path().join("copy").display()
        ))
        .await
        .unwrap();
    let job = value(&client, "SELECT max(job_id) FROM cdb_ob_backup_jobs").await;
    (server, tmp, job)
}

fn drivers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drivers")
}

/// Runs a driver's check script; every check it prints must pass.
async fn run(program: &str, args: &[&str], env: &[(&'static str, String)]) {
    let (server, _tmp, job) = server_with_a_running_backup().await;
    let output = tokio::task::spawn_blocking({
        let (program, args) = (
            program.to_string(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        let mut env = env.to_vec();
        env.push(("BACKSTOP_PORT", server.port().to_string()));
        env.push(("BACKSTOP_PASSWORD", ADMIN_PASSWORD.to_string()));
        env.push(("BACKSTOP_SLOW_JOB", job.clone()));
        move || {
            Command::new(&program)
                .args(&args)
                .envs(env)
                .current_dir(drivers_dir())
                .output()
                .unwrap_or_else(|e| {
                    panic!("{program} runs (scripts/setup-test-env.sh installs it): {e}")
                })
        }
    })
    .await
    .unwrap();
    // The canceled waits left the backup running; it is canceled now, so that the server stops
    // at once whatever the driver said.
    let client = server.connect().await;
    let still_running = value(
        &client,
        &format!("SELECT count(*) FROM cdb_ob_backup_jobs WHERE job_id = {job}"),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("all checks passed"),
        "{program} failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(still_running, "1", "the backup outlived the canceled waits");
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg3() {
    run("/usr/bin/python3", &["psycopg_check.py"], &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_postgres() {
    let modules = std::env::var("BACKSTOP_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/backstop-node")
        })
        .join("node_modules");
    run(
        "node",
        &["node_check.js"],
        &[("NODE_PATH", modules.display().to_string())],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pgjdbc() {
    run(
        "java",
        &["-cp", "/usr/share/java/postgresql.jar", "JdbcCheck.java"],
        &[],
    )
    .await;
}
