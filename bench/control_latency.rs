//! How fast a running backup answers CANCEL, SUSPEND and STOP, and what resuming a killed backup
//! costs. `bench/control-latency.sh` runs it; it is not a test: these machines are shared and
//! noisy, so it prints figures and asserts nothing.
//!
//! 1. Latency: a server (the release binary, a child process on loopback) backs up a tenant of
//!    large incompressible files; at a random moment of each run the statement is sent, and the
//!    latency is the time from sending it until the job's row shows its end state (CANCELED,
//!    SUSPENDED, or for STOP, which lets the running task finish, COMPLETED). p50 and p99 over
//!    `RUNS` runs each.
//! 2. Resume cost: the same backup uninterrupted, and killed with SIGKILL once half its input is
//!    read, then restarted automatically from its checkpoint: bytes the resumed run read (the
//!    engine's own counter) and wall time of both parts, against the uninterrupted run.

#[path = "server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use server::{Server, one, until};
use tokio_postgres::Client;

const RUNS: usize = 30;
const FILES: u64 = 8;
const FILE_MIB: usize = 128;

/// Incompressible files, written once (xorshift: fast, and zstd cannot shrink it).
fn make_source(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..FILES {
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i + 1);
        let mut data = vec![0u8; FILE_MIB << 20];
        for word in data.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(root.join(format!("file{i:02}")), data).unwrap();
    }
}

async fn setup(client: &Client, source: &Path, dest: &Path) {
    client
        .batch_execute(&format!(
            "CREATE TENANT a SOURCE = 'dir://{}'; ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET backup_checkpoint_interval = '1s'; \
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'; \
             ALTER SYSTEM SET backup_restart_delay = '0s'",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One statement, `RUNS` times: the time from sending it to the job's end state.
async fn latencies(
    client: &Client,
    statement: &str,
    end: &[&str],
    seed: &mut u64,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        client
            .batch_execute("ALTER SYSTEM BACKUP TENANT a")
            .await
            .unwrap();
        let job = one(client, "SELECT max(job_id) FROM backstop.job").await;
        let state = format!("SELECT status FROM backstop.job WHERE job_id = {job}");
        until(client, &state, Duration::from_secs(30), |s| s == "DOING").await;
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(50 + (*seed >> 33) % 400)).await;
        let sent = Instant::now();
        client.batch_execute(statement).await.unwrap();
        let status = until(client, &state, Duration::from_secs(120), |s| {
            !matches!(s, "INIT" | "DOING" | "CANCELING" | "SUSPENDING")
        })
        .await;
        samples.push(sent.elapsed());
        assert!(
            end.contains(&status.as_str()),
            "{statement} ended the job {status}"
        );
        if status == "SUSPENDED" {
            client
                .batch_execute("ALTER SYSTEM CANCEL BACKUP")
                .await
                .unwrap();
            until(client, &state, Duration::from_secs(30), |s| s == "CANCELED").await;
        }
    }
    samples.sort();
    samples
}

/// A backup from start to its set, on a fresh server and destination: wall time and bytes read.
async fn uninterrupted(root: &Path, source: &Path) -> (Duration, u64) {
    let server = Server::start(&root.join("data-whole"));
    let client = server.client().await;
    setup(&client, source, &root.join("dest-whole")).await;
    let started = Instant::now();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a WAIT")
        .await
        .unwrap();
    let wall = started.elapsed();
    let read = one(&client, "SELECT bytes_read FROM backstop.task").await;
    (wall, read.parse().unwrap())
}

/// The same backup killed once half its input is read, resumed by the restarted server.
async fn killed_and_resumed(
    root: &Path,
    source: &Path,
    total: u64,
) -> (Duration, Duration, u64, u64) {
    let data = root.join("data-killed");
    let server = Server::start(&data);
    let client = server.client().await;
    setup(&client, source, &root.join("dest-killed")).await;
    let started = Instant::now();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    let half = format!("SELECT input_bytes >= {} FROM backstop.task", total / 2);
    until(&client, &half, Duration::from_secs(120), |s| s == "t").await;
    let before_kill = started.elapsed();
    let checkpointed = one(&client, "SELECT checkpoint_bytes FROM backstop.task").await;
    server.kill();

    let restarted = Instant::now();
    let server = Server::start(&data);
    let client = server.client().await;
    until(
        &client,
        "SELECT count(*) FROM backstop.backup_set WHERE status = 'COMPLETED'",
        Duration::from_secs(300),
        |s| s == "1",
    )
    .await;
    let after = restarted.elapsed();
    let read = one(
        &client,
        "SELECT bytes_read FROM backstop.task WHERE status = 'COMPLETED'",
    )
    .await;
    (
        before_kill,
        after,
        read.parse().unwrap(),
        checkpointed.parse().unwrap_or(0),
    )
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let root: PathBuf = tmp.path().to_path_buf();
    let source = root.join("source");
    make_source(&source);
    let total = FILES * ((FILE_MIB as u64) << 20);

    let server = Server::start(&root.join("data"));
    let client = server.client().await;
    setup(&client, &source, &root.join("dest")).await;
    println!(
        "backup of {} MiB in {FILES} incompressible files; {RUNS} runs per statement",
        total >> 20
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "statement", "p50", "p99", "max"
    );
    let mut seed = 11u64;
    for (name, statement, end) in [
        ("CANCEL", "ALTER SYSTEM CANCEL BACKUP", &["CANCELED"][..]),
        ("SUSPEND", "ALTER SYSTEM SUSPEND BACKUP", &["SUSPENDED"][..]),
        (
            "STOP",
            "ALTER SYSTEM STOP BACKUP",
            &["COMPLETED", "CANCELED"][..],
        ),
    ] {
        let samples = latencies(&client, statement, end, &mut seed).await;
        println!(
            "{name:<10} {:>10} {:>10} {:>10}",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99)),
            ms(*samples.last().unwrap())
        );
    }
    println!(
        "(STOP is graceful: the running task finishes, so its figure is the rest of that task)"
    );
    drop(server);

    let (whole_wall, whole_read) = uninterrupted(&root, &source).await;
    let (before, after, resumed_read, checkpointed) =
        killed_and_resumed(&root, &source, total).await;
    println!("\nresume after SIGKILL at 50% of the input");
    println!(
        "uninterrupted: {:.2} s, read {} MiB",
        whole_wall.as_secs_f64(),
        whole_read >> 20
    );
    println!(
        "killed at {:.2} s with {} MiB checkpointed; resumed run {:.2} s (server start included), read {} MiB = {:.1}% of the input",
        before.as_secs_f64(),
        checkpointed >> 20,
        after.as_secs_f64(),
        resumed_read >> 20,
        resumed_read as f64 * 100.0 / total as f64
    );
    println!(
        "both parts: {:.2} s = {:.2} x the uninterrupted run",
        (before + after).as_secs_f64(),
        (before + after).as_secs_f64() / whole_wall.as_secs_f64()
    );
}
