//! `backstop server --metrics 127.0.0.1:9187`: the server's state in Prometheus' text format,
//! computed from the catalog (and the live figures of running work) at every scrape.
//!
//! The endpoint answers `GET /metrics` and nothing else; it reads no request body and holds no
//! state, so a scraper that drops or stalls costs one bounded task.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::connections::Connections;
use crate::catalog::{Catalog, CatalogError, SYS_TENANT_ID, Value, now_micros};

/// The longest request head read, and how long a client may take to send it.
const MAX_REQUEST: usize = 8 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a scrape reads.
pub struct Sources {
    pub catalog: Arc<Catalog>,
    pub connections: Arc<Connections>,
    pub data_dir: PathBuf,
}

/// Serves `GET /metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((socket, peer)) = accepted else {
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(socket, sources).await {
                tracing::debug!(%peer, error = %e, "metrics request ended with an error");
            }
        });
    }
}

async fn answer(mut socket: TcpStream, sources: Arc<Sources>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body, kind) = if method != "GET" {
        (
            "405 Method Not Allowed",
            "only GET\n".to_string(),
            "text/plain",
        )
    } else if path != "/metrics" && !path.starts_with("/metrics?") {
        ("404 Not Found", "see /metrics\n".to_string(), "text/plain")
    } else {
        let rendered = tokio::task::spawn_blocking(move || render(&sources))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        match rendered {
            Ok(text) => ("200 OK", text, "text/plain; version=0.0.4; charset=utf-8"),
            Err(e) => (
                "503 Service Unavailable",
                format!("the catalog cannot be read: {e}\n"),
                "text/plain",
            ),
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Every metric, as text.
pub fn render(sources: &Sources) -> Result<String, CatalogError> {
    let catalog = &sources.catalog;
    let now = now_micros();
    let mut out = String::with_capacity(8 << 10);
    let tenants: BTreeMap<i64, String> = catalog
        .read(
            "SELECT tenant_id, tenant_name FROM tenant WHERE drop_time IS NULL",
            &[],
        )?
        .iter()
        .map(|r| (int(&r[0]), text(&r[1])))
        .collect();
    let tenant = |id: i64| {
        if id == SYS_TENANT_ID {
            "sys".to_string()
        } else {
            tenants.get(&id).cloned().unwrap_or_else(|| id.to_string())
        }
    };

    let mut f = Family::start(
        &mut out,
        "backstop_info",
        "gauge",
        "the server's version and repository format",
    );
    f.sample(
        "backstop_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            (
                "format_version",
                &crate::engine::format::FORMAT_VERSION.to_string(),
            ),
        ],
        1.0,
    );

    let mut f = Family::start(
        &mut out,
        "backstop_jobs",
        "gauge",
        "jobs by kind and status",
    );
    for r in catalog.read(
        "SELECT job_kind, status, count(*) FROM job GROUP BY job_kind, status ORDER BY 1, 2",
        &[],
    )? {
        f.sample(
            "backstop_jobs",
            &[("kind", &text(&r[0])), ("status", &text(&r[1]))],
            int(&r[2]) as f64,
        );
    }

    // Bytes read and written: the tasks' durable figures, with the live ones of running tasks
    // over them, and what restores wrote.
    let live = catalog.live_progress().snapshot();
    let mut read: BTreeMap<String, i64> = BTreeMap::new();
    let mut written: BTreeMap<String, i64> = BTreeMap::new();
    for r in catalog.read(
        "SELECT t.task_id, j.job_kind, coalesce(t.input_bytes, 0), coalesce(t.output_bytes, 0) \
         FROM task t JOIN job j ON j.job_id = t.job_id",
        &[],
    )? {
        let (input, output) = match live.tasks.get(&int(&r[0])) {
            Some(p) => (p.input_bytes, p.output_bytes),
            None => (int(&r[2]), int(&r[3])),
        };
        *read.entry(text(&r[1])).or_default() += input;
        *written.entry(text(&r[1])).or_default() += output;
    }
    for r in catalog.read(
        "SELECT job_id, coalesce(finish_bytes, 0) FROM job WHERE job_kind = 'RESTORE'",
        &[],
    )? {
        let bytes = live.jobs.get(&int(&r[0])).map_or(int(&r[1]), |f| f.bytes);
        *written.entry("RESTORE".into()).or_default() += bytes;
    }
    let mut f = Family::start(
        &mut out,
        "backstop_read_bytes_total",
        "counter",
        "bytes read by jobs' tasks (backups read sources, validations and copies read sets)",
    );
    for (kind, bytes) in &read {
        f.sample(
            "backstop_read_bytes_total",
            &[("kind", kind)],
            *bytes as f64,
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_written_bytes_total",
        "counter",
        "bytes written by jobs (to destinations, or restored to targets)",
    );
    for (kind, bytes) in &written {
        f.sample(
            "backstop_written_bytes_total",
            &[("kind", kind)],
            *bytes as f64,
        );
    }

    let durations = catalog.read(
        "SELECT job_kind, count(*), sum(end_ts - start_ts), max(end_ts - start_ts) FROM job \
         WHERE end_ts IS NOT NULL AND start_ts IS NOT NULL GROUP BY job_kind ORDER BY 1",
        &[],
    )?;
    let mut f = Family::start(
        &mut out,
        "backstop_job_duration_seconds",
        "summary",
        "how long ended jobs ran, by kind",
    );
    for r in &durations {
        let kind = text(&r[0]);
        f.sample(
            "backstop_job_duration_seconds_sum",
            &[("kind", &kind)],
            seconds(int(&r[2])),
        );
        f.sample(
            "backstop_job_duration_seconds_count",
            &[("kind", &kind)],
            int(&r[1]) as f64,
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_job_duration_seconds_max",
        "gauge",
        "the longest an ended job of the kind ran",
    );
    for r in &durations {
        f.sample(
            "backstop_job_duration_seconds_max",
            &[("kind", &text(&r[0]))],
            seconds(int(&r[3])),
        );
    }

    let completed = catalog.read(
        "SELECT tenant_id, max(end_ts) FROM backup_set WHERE status = 'COMPLETED' \
         AND copy_id = 0 GROUP BY tenant_id ORDER BY 1",
        &[],
    )?;
    let mut f = Family::start(
        &mut out,
        "backstop_backup_last_completed_timestamp_seconds",
        "gauge",
        "when the newest completed backup set of the tenant ended (Unix time)",
    );
    for r in &completed {
        f.sample(
            "backstop_backup_last_completed_timestamp_seconds",
            &[("tenant", &tenant(int(&r[0])))],
            seconds(int(&r[1])),
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_backup_age_seconds",
        "gauge",
        "age of the newest completed backup set of the tenant",
    );
    for r in &completed {
        f.sample(
            "backstop_backup_age_seconds",
            &[("tenant", &tenant(int(&r[0])))],
            seconds(now - int(&r[1])),
        );
    }

    // Archive log: how far the running round's checkpoint is behind now, when the last segment
    // was archived, and the target the lag is held against.
    let rounds = catalog.read(
        "SELECT tenant_id, max(checkpoint_scn) FROM archive_round WHERE status NOT IN ('PREPARE', 'STOPPING', 'STOP') \
         GROUP BY tenant_id ORDER BY 1",
        &[],
    )?;
    let mut f = Family::start(
        &mut out,
        "backstop_archive_lag_seconds",
        "gauge",
        "how far the checkpoint of the tenant's archive round (running, deferred or \
         interrupted) is behind now",
    );
    for r in &rounds {
        let checkpoint_micros = int(&r[1]) / 1000;
        f.sample(
            "backstop_archive_lag_seconds",
            &[("tenant", &tenant(int(&r[0])))],
            seconds((now - checkpoint_micros).max(0)),
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_archive_lag_target_seconds",
        "gauge",
        "the tenant's archive_lag_target parameter, for alerting on the lag",
    );
    for r in &rounds {
        let id = int(&r[0]);
        let target = catalog
            .parameter(id, "archive_lag_target")?
            .and_then(|v| crate::catalog::parameters::parse_duration(&v))
            .unwrap_or(Duration::from_secs(120));
        f.sample(
            "backstop_archive_lag_target_seconds",
            &[("tenant", &tenant(id))],
            target.as_secs_f64(),
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_archive_last_segment_timestamp_seconds",
        "gauge",
        "when the tenant's newest archived log segment was archived (Unix time)",
    );
    for r in catalog.read(
        "SELECT tenant_id, max(archived_ts) FROM archive_segment GROUP BY tenant_id ORDER BY 1",
        &[],
    )? {
        f.sample(
            "backstop_archive_last_segment_timestamp_seconds",
            &[("tenant", &tenant(int(&r[0])))],
            seconds(int(&r[1])),
        );
    }

    let mut f = Family::start(
        &mut out,
        "backstop_restartable_contexts",
        "gauge",
        "interrupted backup tasks that can go on from a checkpoint",
    );
    let contexts = catalog.read(
        "SELECT count(*) FROM restartable_context WHERE is_restartable = 1",
        &[],
    )?;
    f.sample(
        "backstop_restartable_contexts",
        &[],
        contexts.first().map_or(0, |r| int(&r[0])) as f64,
    );

    let mut f = Family::start(
        &mut out,
        "backstop_task_checkpoint_age_seconds",
        "gauge",
        "time since a running task's last checkpoint (since it started, before the first; \
         only backups take checkpoints, so for other kinds it is the task's age)",
    );
    for r in catalog.read(
        "SELECT t.task_id, t.job_id, t.tenant_id, coalesce(t.checkpoint_time, t.start_ts), \
         j.job_kind FROM task t JOIN job j ON j.job_id = t.job_id \
         WHERE t.status = 'DOING' ORDER BY t.task_id",
        &[],
    )? {
        let since = int(&r[3]);
        if since == 0 {
            continue;
        }
        f.sample(
            "backstop_task_checkpoint_age_seconds",
            &[
                ("job_id", &text_of(&r[1])),
                ("task_id", &text_of(&r[0])),
                ("tenant", &tenant(int(&r[2]))),
                ("kind", &text(&r[4])),
            ],
            seconds((now - since).max(0)),
        );
    }

    let mut f = Family::start(
        &mut out,
        "backstop_catalog_rows",
        "gauge",
        "rows of the catalog's main tables",
    );
    for table in ["job", "task", "backup_set", "archive_segment", "tenant"] {
        let n = catalog.read(&format!("SELECT count(*) FROM {table}"), &[])?;
        f.sample(
            "backstop_catalog_rows",
            &[("table", table)],
            n.first().map_or(0, |r| int(&r[0])) as f64,
        );
    }
    let mut f = Family::start(
        &mut out,
        "backstop_catalog_size_bytes",
        "gauge",
        "size of the catalog's files (catalog.db and its write-ahead log)",
    );
    let size: u64 = ["catalog.db", "catalog.db-wal"]
        .iter()
        .filter_map(|n| std::fs::metadata(sources.data_dir.join(n)).ok())
        .map(|m| m.len())
        .sum();
    f.sample("backstop_catalog_size_bytes", &[], size as f64);

    let mut f = Family::start(
        &mut out,
        "backstop_connections",
        "gauge",
        "client connections open now",
    );
    f.sample(
        "backstop_connections",
        &[],
        sources.connections.count() as f64,
    );
    Ok(out)
}

fn text_of(v: &Value) -> String {
    int(v).to_string()
}
