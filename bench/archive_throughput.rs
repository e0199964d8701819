//! Archive log speed: `archive-push` of 16 MiB segments back to back, the way PostgreSQL's
//! `archive_command` calls it (one process per segment), and the lag of a directory tenant's log
//! folder (from a segment closing to it being durable in the archive). `bench/archive.sh` runs
//! it; it prints figures and asserts nothing.

#[path = "server.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use server::{PASSWORD, Server, one, until};

const SEGMENT: usize = 16 << 20;
const PUSHED: u64 = 48;
const SHIPPED: u64 = 30;
const WRITE_EVERY: Duration = Duration::from_millis(250);

/// WAL-like content: runs of page headers and zeros with random tuples, about half compressible.
fn segment(seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; SEGMENT];
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ seed;
    for (page, chunk) in data.chunks_mut(8192).enumerate() {
        chunk[..8].copy_from_slice(&(page as u64 ^ seed).to_le_bytes());
        for word in chunk[8..4096].chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
    }
    data
}

fn wal_name(i: u64) -> String {
    format!("{:08X}{:08X}{:08X}", 1, i >> 8, i & 0xff)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn push(port: u16, path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args([
            "archive-push",
            "--tenant",
            "app",
            "--port",
            &port.to_string(),
        ])
        .arg(path)
        .env("BACKSTOP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (source, log, wal) = (root.join("source"), root.join("log"), root.join("pg_wal"));
    for d in [&source, &log, &wal] {
        std::fs::create_dir_all(d).unwrap();
    }
    let server = Server::start(&root.join("data"));
    let client = server.client().await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}' LOG_SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{} BINDING=MANDATORY PIECE_SWITCH_INTERVAL=10s'; \
             ALTER SYSTEM SET log_segment_quiet_time = '1h'; \
             ALTER SYSTEM ARCHIVELOG TENANT = app WAIT",
            source.display(),
            log.display(),
            root.join("arch").display()
        ))
        .await
        .unwrap();

    // 1. archive-push, back to back, one process per segment.
    for i in 1..=PUSHED {
        std::fs::write(wal.join(wal_name(i)), segment(i)).unwrap();
    }
    let mut pushes = Vec::new();
    let started = Instant::now();
    for i in 1..=PUSHED {
        let t = Instant::now();
        push(server.port, &wal.join(wal_name(i)));
        pushes.push(t.elapsed());
    }
    let total = started.elapsed();
    pushes.sort();
    let mib = (PUSHED as usize * SEGMENT) as f64 / (1 << 20) as f64;
    println!("archive-push of {PUSHED} segments of 16 MiB, back to back (one process each)");
    println!(
        "  per segment: p50 {}  p99 {}  max {}",
        ms(percentile(&pushes, 0.5)),
        ms(percentile(&pushes, 0.99)),
        ms(*pushes.last().unwrap())
    );
    println!(
        "  throughput: {:.0} MiB/s, {:.1} segments/s",
        mib / total.as_secs_f64(),
        PUSHED as f64 / total.as_secs_f64()
    );
    let stored = one(
        &client,
        "SELECT sum(stored_size) FROM backstop.archive_segment",
    )
    .await;
    println!(
        "  stored: {} MiB for {mib:.0} MiB",
        stored.parse::<u64>().unwrap_or(0) >> 20
    );

    // 2. Lag of the log folder: a segment closes when the next one appears.
    let mut closed_at = Vec::new();
    for i in 1..=SHIPPED + 1 {
        let name = format!("app-{i:06}.log");
        std::fs::write(log.join(&name), segment(1000 + i)).unwrap();
        if i > 1 {
            closed_at.push((format!("app-{:06}.log", i - 1), now_micros()));
        }
        std::thread::sleep(WRITE_EVERY);
    }
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment WHERE name LIKE 'app-%'",
        Duration::from_secs(120),
        |n| n == SHIPPED.to_string(),
    )
    .await;
    let mut lags = Vec::new();
    for (name, closed) in closed_at {
        let archived = one(
            &client,
            &format!("SELECT CAST(archived_ts AS BIGINT) FROM backstop.archive_segment WHERE name = '{name}'"),
        )
        .await;
        let lag = archived.parse::<i64>().unwrap() - closed;
        lags.push(Duration::from_micros(lag.max(0) as u64));
    }
    lags.sort();
    println!(
        "\nlog folder, {SHIPPED} segments of 16 MiB written every {} ms: lag from closing to durable in the archive",
        WRITE_EVERY.as_millis()
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        ms(*lags.last().unwrap())
    );
}
