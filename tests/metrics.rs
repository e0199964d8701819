//! `--metrics`: Prometheus scrapes the server while it works, and the values move with the work:
//! a running backup shows as a DOING job with its bytes growing and its checkpoint age, a
//! completed one as a completed job with a duration and a fresh newest set for its tenant. Logs
//! for shippers are JSON lines that carry their job, task and tenant.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::tree::noise;
use common::{ADMIN_PASSWORD, ChildServer, TestServer, connect_as, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scrape: status line and the samples by their full name with labels.
async fn scrape(addr: SocketAddr, path: &str) -> (String, HashMap<String, f64>) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    if !status.ends_with("200 OK") {
        return (status, HashMap::new());
    }
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, v) = l.rsplit_once(' ').unwrap();
            (name.to_string(), v.parse().unwrap())
        })
        .collect();
    (status, samples)
}

fn get(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in {samples:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_a_running_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..8 {
        std::fs::write(source.join(format!("f{i}")), noise(i, 4 << 20)).unwrap();
    }
    let server = TestServer::start().await;
    let metrics = server
        .server
        .serve_metrics("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = server.connect().await;

    let (status, before) = scrape(metrics, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(get(&before, "backstop_connections"), 1.0);
    assert_eq!(
        get(
            &before,
            "backstop_info{version=\"0.1.0\",format_version=\"1\"}"
        ),
        1.0
    );
    assert!(
        !before.keys().any(|k| k.starts_with("backstop_jobs{")),
        "{before:?}"
    );
    let (status, _) = scrape(metrics, "/other").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // A backup slowed to 4 MB/s with a checkpoint every second: 32 MiB (four packs) take
    // several seconds.
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET backup_net_limit = '4MB'; \
             ALTER SYSTEM SET backup_checkpoint_interval = '1s'; \
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'; \
             ALTER SYSTEM BACKUP TENANT app",
            source.display(),
            tmp.path().join("dest").display()
        ))
        .await
        .unwrap();
    let job = value(&client, "SELECT max(job_id) FROM cdb_ob_backup_jobs").await;
    // Scrapes while it runs: it is DOING, its written bytes move, its checkpoint has an age.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut written = Vec::new();
    let mut checkpoint_seen = false;
    loop {
        let (_, running) = scrape(metrics, "/metrics").await;
        if running
            .get("backstop_jobs{kind=\"BACKUP\",status=\"COMPLETED\"}")
            .is_some()
        {
            break;
        }
        if running.get("backstop_jobs{kind=\"BACKUP\",status=\"DOING\"}") == Some(&1.0) {
            written.push(get(
                &running,
                "backstop_written_bytes_total{kind=\"BACKUP\"}",
            ));
            checkpoint_seen |= running.keys().any(|k| {
                k.starts_with(&format!(
                    "backstop_task_checkpoint_age_seconds{{job_id=\"{job}\""
                )) && k.contains("tenant=\"app\"")
                    && k.contains("kind=\"BACKUP\"")
            });
        }
        assert!(
            Instant::now() < deadline,
            "the backup did not end: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let total = 32.0 * 1024.0 * 1024.0;
    assert!(
        written.iter().any(|w| *w > 0.0 && *w < total),
        "written bytes move during the backup: {written:?}"
    );
    assert!(checkpoint_seen, "a running task shows its checkpoint age");

    let (_, after) = scrape(metrics, "/metrics").await;
    assert_eq!(
        get(
            &after,
            "backstop_jobs{kind=\"BACKUP\",status=\"COMPLETED\"}"
        ),
        1.0
    );
    assert!(get(&after, "backstop_written_bytes_total{kind=\"BACKUP\"}") >= total);
    assert!(get(&after, "backstop_read_bytes_total{kind=\"BACKUP\"}") >= total);
    assert_eq!(
        get(
            &after,
            "backstop_job_duration_seconds_count{kind=\"BACKUP\"}"
        ),
        1.0
    );
    assert!(get(&after, "backstop_job_duration_seconds_sum{kind=\"BACKUP\"}") >= 1.0);
    let age = get(&after, "backstop_backup_age_seconds{tenant=\"app\"}");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(get(&after, "backstop_catalog_rows{table=\"job\"}") >= 1.0);
    assert!(get(&after, "backstop_catalog_size_bytes") > 0.0);
    assert_eq!(get(&after, "backstop_restartable_contexts"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_carry_their_job_task_and_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("f"), noise(7, 1 << 20)).unwrap();
    let log = tmp.path().join("server.log");
    let server = ChildServer::start_logging_json_to(&tmp.path().join("data"), &log);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            tmp.path().join("dest").display()
        ))
        .await
        .unwrap();
    let job = value(&client, "SELECT max(job_id) FROM cdb_ob_backup_job_history").await;
    drop(client);
    server.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in {text}"))
    };
    // A task's line names its job, task and tenant; a job's line its job, kind and tenant.
    let task_line = &find("backup set completed")["span"];
    assert_eq!(task_line["job_id"].to_string(), job);
    assert!(task_line["task_id"].as_i64().is_some(), "{task_line}");
    assert_eq!(task_line["tenant"], "app");
    let job_line = &find("data backup job ended")["span"];
    assert_eq!(job_line["job_id"].to_string(), job);
    assert_eq!(job_line["kind"], "BACKUP");
    assert!(job_line["tenant_id"].as_i64().is_some(), "{job_line}");
}
