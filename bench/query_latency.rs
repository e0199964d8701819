//! Query latency and throughput of backstop's views, beside PostgreSQL answering the same
//! queries over a table of the same rows.
//!
//! `bench/query-latency.sh` runs it. It fills `job` with 100k ended backup jobs, then measures
//! p50/p99 latency of three typical DBA queries on `CDB_OB_BACKUP_JOB_HISTORY` (one client,
//! extended protocol), and queries per second with 8 concurrent clients.

#[path = "pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backstop::catalog::{Catalog, Value};
use tokio_postgres::{Client, NoTls};

const ROWS: i64 = 100_000;
const SAMPLES: usize = 300;
const CLIENTS: usize = 8;
const THROUGHPUT_SECONDS: u64 = 5;

const QUERIES: &[(&str, &str)] = &[
    (
        "point",
        "SELECT * FROM cdb_ob_backup_job_history WHERE job_id = 77777",
    ),
    (
        "newest",
        "SELECT job_id, status, start_timestamp FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 10",
    ),
    (
        "aggregate",
        "SELECT status, count(*), max(end_timestamp) FROM cdb_ob_backup_job_history GROUP BY status ORDER BY status",
    ),
];

fn fill_catalog(data_dir: &std::path::Path) {
    let catalog = Catalog::open(data_dir).unwrap();
    catalog
        .write(|tx| {
            for id in 1..=ROWS {
                let start = 1_700_000_000_000_000 + id * 60_000_000;
                let status = match id % 10 {
                    0 => "FAILED",
                    1 => "CANCELED",
                    _ => "COMPLETED",
                };
                tx.execute(
                    "INSERT INTO job (job_id, job_kind, tenant_id, incarnation, backup_set_id, \
                     initiator_tenant_id, initiator_job_id, executor_tenant_id, plus_archivelog, \
                     backup_type, job_level, encryption_mode, start_ts, end_ts, status, result, \
                     comment, description, path, stop_mode, restart_pass) VALUES \
                     (?, 'BACKUP', ?, 1, ?, 1, 0, ?, 0, ?, 'USER_TENANT', 'NONE', ?, ?, ?, 0, '', \
                     'nightly', 'file:///backup', 'NONE', 0)",
                    &[
                        id.into(),
                        (1001 + id % 20).into(),
                        id.into(),
                        (1001 + id % 20).to_string().into(),
                        Value::from(if id % 7 == 0 { "FULL" } else { "INC" }),
                        start.into(),
                        (start + 30_000_000).into(),
                        status.into(),
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
}

async fn fill_postgres(client: &Client) {
    client
        .batch_execute(&format!(
            "CREATE TABLE job AS SELECT id AS job_id, 'BACKUP'::text AS job_kind, \
             1001 + id % 20 AS tenant_id, 1::bigint AS incarnation, id AS backup_set_id, \
             1::bigint AS initiator_tenant_id, 0::bigint AS initiator_job_id, \
             (1001 + id % 20)::text AS executor_tenant_id, 0 AS plus_archivelog, \
             CASE WHEN id % 7 = 0 THEN 'FULL' ELSE 'INC' END AS backup_type, \
             'USER_TENANT'::text AS job_level, 'NONE'::text AS encryption_mode, \
             to_timestamp(1700000000 + id * 60) AS start_ts, \
             to_timestamp(1700000000 + id * 60 + 30) AS end_ts, \
             CASE id % 10 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELED' ELSE 'COMPLETED' END AS status, \
             0 AS result, ''::text AS comment, 'nightly'::text AS description, \
             'file:///backup'::text AS path, 'NONE'::text AS stop_mode, 0 AS restart_pass, \
             NULL::text AS plan_name, NULL::bigint AS chain_id \
             FROM generate_series(1, {ROWS}) id; \
             ALTER TABLE job ADD PRIMARY KEY (job_id); ANALYZE job; \
             CREATE VIEW cdb_ob_backup_job_history AS \
             SELECT tenant_id, job_id, incarnation, backup_set_id, initiator_tenant_id, \
             initiator_job_id, executor_tenant_id, \
             CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog, \
             backup_type, job_level, encryption_mode, start_ts AS start_timestamp, \
             end_ts AS end_timestamp, status, result, comment, description, path, stop_mode, \
             restart_pass, plan_name, chain_id FROM job WHERE job_kind = 'BACKUP' \
             AND status IN ('COMPLETED', 'FAILED', 'CANCELED');"
        ))
        .await
        .unwrap();
}

async fn connect(dsn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(client: &Client, sql: &str) -> (Duration, Duration) {
    for _ in 0..20 {
        client.query(sql, &[]).await.unwrap();
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        client.query(sql, &[]).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

async fn throughput(dsn: &str, sql: &'static str) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Arc::new(connect(dsn).await));
    }
    let deadline = Instant::now() + Duration::from_secs(THROUGHPUT_SECONDS);
    let mut tasks = Vec::new();
    for client in clients {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                client.query(sql, &[]).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / THROUGHPUT_SECONDS as f64
}

/// What a server start pays to open this catalog, its integrity check (`PRAGMA quick_check`)
/// included: three opens, the median with min and max.
fn catalog_open_cost(data_dir: &std::path::Path) {
    let mut opens: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            drop(Catalog::open(data_dir).unwrap());
            start.elapsed()
        })
        .collect();
    opens.sort();
    let bytes: u64 = std::fs::read_dir(data_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "catalog open with {ROWS} job rows ({:.1} MiB, quick_check included): median {} [{} - {}]",
        bytes as f64 / (1 << 20) as f64,
        ms(opens[1]),
        ms(opens[0]),
        ms(opens[2])
    );
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("backstop");
    fill_catalog(&data_dir);
    catalog_open_cost(&data_dir);
    let server = backstop::server::start(backstop::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        admin_password: Some("bench".into()),
        tls_cert: None,
        tls_key: None,
        tls_required: false,
    })
    .await
    .unwrap();
    let backstop_dsn = format!(
        "host=127.0.0.1 port={} user=admin password=bench dbname=backstop",
        server.addr.port()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let postgres = pg::Postgres::start(&tmp.path().join("pg"), port);
    let pg_client = connect(&postgres.dsn()).await;
    fill_postgres(&pg_client).await;
    let backstop_client = connect(&backstop_dsn).await;

    println!("{ROWS} rows in CDB_OB_BACKUP_JOB_HISTORY; {SAMPLES} samples per query; 1 client");
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "query", "backstop p50", "backstop p99", "pg p50", "pg p99", "p50 x"
    );
    for (name, sql) in QUERIES {
        let (b50, b99) = latency(&backstop_client, sql).await;
        let (p50, p99) = latency(&pg_client, sql).await;
        println!(
            "{name:<10} {:>12} {:>12} {:>12} {:>12} {:>8.2}",
            ms(b50),
            ms(b99),
            ms(p50),
            ms(p99),
            b50.as_secs_f64() / p50.as_secs_f64()
        );
    }
    println!("\nqueries per second, {CLIENTS} clients, {THROUGHPUT_SECONDS} s, query 'newest'");
    let b = throughput(&backstop_dsn, QUERIES[1].1).await;
    let p = throughput(&postgres.dsn(), QUERIES[1].1).await;
    println!(
        "backstop {b:.0} qps, PostgreSQL {p:.0} qps, ratio {:.2}",
        b / p
    );
    server.shutdown.cancel();
}
